"""The seed's JSON envelope: identities inside the message body, for brokers without headers.

Fields: ``eventId``, ``traceId``, ``correlationId``, ``parentSpanId``, ``eventName``
(the seed's record), plus ``causationId``, ``attempt`` and the W3C ``traceparent``,
``tracestate`` and ``baggage`` strings. ``parentSpanId`` is the message's creation span
(the producer span), the parent of whoever consumes it. Absent identities are left out,
never written as ``null``. The payload is the caller's business: merge the envelope into
your own record, ``extract_envelope`` ignores keys it does not know.

Example::

    >>> from tracebraid.sdk.context import MessageContext
    >>> message = MessageContext(trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    ...     span_id="00f067aa0ba902b7", correlation_id="order_441", event_id="evt_8821",
    ...     causation_id=None, event_name="payment.authorized")
    >>> envelope = to_envelope(message)
    >>> envelope["parentSpanId"], envelope["eventId"]
    ('00f067aa0ba902b7', 'evt_8821')
    >>> extract_envelope(envelope).context == message
    True
"""

from __future__ import annotations

from collections.abc import Mapping

from tracebraid.model import is_valid_span_id, is_valid_trace_id
from tracebraid.sdk import carriers as h
from tracebraid.sdk._header_values import MAX_ATTEMPT
from tracebraid.sdk.context import MessageContext
from tracebraid.sdk.propagation import Extracted, NoParent, from_texts, inject

__all__ = ["ENVELOPE_FIELDS", "extract_envelope", "to_envelope"]

# envelope field -> the header it is read as
ENVELOPE_FIELDS: Mapping[str, str] = {
    "traceparent": h.TRACEPARENT_HEADER,
    "tracestate": h.TRACESTATE_HEADER,
    "baggage": h.BAGGAGE_HEADER,
    "correlationId": h.CORRELATION_ID_HEADER,
    "eventId": h.EVENT_ID_HEADER,
    "causationId": h.CAUSATION_ID_HEADER,
    "eventName": h.EVENT_NAME_HEADER,
}


def to_envelope(message: MessageContext) -> dict[str, object]:
    """The envelope fields for ``message`` (a new dict; add your payload to it)."""
    headers: dict[str, str] = {}
    inject(message, headers)
    envelope: dict[str, object] = {}
    if message.event_id is not None:
        envelope["eventId"] = message.event_id
    if message.trace_id is not None:
        envelope["traceId"] = message.trace_id
    if message.correlation_id is not None:
        envelope["correlationId"] = message.correlation_id
    if message.span_id is not None:
        envelope["parentSpanId"] = message.span_id
    if message.event_name is not None:
        envelope["eventName"] = message.event_name
    if message.causation_id is not None:
        envelope["causationId"] = message.causation_id
    if message.attempt is not None:
        envelope["attempt"] = message.attempt
    for name in ("traceparent", "tracestate", "baggage"):
        if name in headers:
            envelope[name] = headers[name]
    return envelope


def _string_field(envelope: Mapping[object, object], name: str, problems: list[str]) -> str | None:
    value = envelope.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    problems.append(f"envelope field {name!r} is a {type(value).__name__}, expected a string")
    return None


def extract_envelope(envelope: object) -> Extracted:
    """Read the identities of an envelope; never raises, never invents a parent.

    ``traceparent`` wins; without it, a valid ``traceId`` and ``parentSpanId`` pair (the
    seed's form) is the parent. Fields of the wrong type are reported in ``problems``.
    """
    if not isinstance(envelope, Mapping):
        message = MessageContext(None, None, None, None, None, None)
        return Extracted(
            message,
            NoParent(f"the envelope is a {type(envelope).__name__}, expected a JSON object"),
        )
    problems: list[str] = []
    try:
        texts: dict[str, str | None] = {
            header: _string_field(envelope, name, problems)
            for name, header in ENVELOPE_FIELDS.items()
        }
        attempt = envelope.get("attempt")
        if isinstance(attempt, int) and not isinstance(attempt, bool):
            # Range first: str() of a 5,000-digit int raises.
            if 1 <= attempt <= MAX_ATTEMPT:
                texts[h.ATTEMPT_HEADER] = str(attempt)
            else:
                problems.append(
                    f"envelope field 'attempt' must be from 1 to {MAX_ATTEMPT}; ignored"
                )
        elif isinstance(attempt, str):
            texts[h.ATTEMPT_HEADER] = attempt
        elif attempt is not None:
            problems.append(
                f"envelope field 'attempt' is a {type(attempt).__name__}, expected an integer"
            )
        trace_id = _string_field(envelope, "traceId", problems)
        parent = _string_field(envelope, "parentSpanId", problems)
        fallback = None
        missing = "the envelope carries neither traceparent nor traceId and parentSpanId"
        if "traceparent" in envelope and texts[h.TRACEPARENT_HEADER] is None:
            why = [p for p in problems if p.startswith("envelope field 'traceparent'")]
            missing = why[0] if why else "envelope field 'traceparent' is empty"
        elif trace_id is not None and parent is not None:
            if is_valid_trace_id(trace_id) and is_valid_span_id(parent):
                fallback = (trace_id, parent)
            else:
                missing = (
                    f"envelope traceId {trace_id!r} / parentSpanId {parent!r} are not W3C "
                    "hex IDs (32 and 16 lowercase hex digits) and there is no traceparent"
                )
        elif trace_id is not None or parent is not None:
            missing = "the envelope has only one of traceId and parentSpanId, and no traceparent"
        extracted = from_texts(texts, problems, trace_id_fallback=fallback, missing_reason=missing)
        if (
            extracted.has_parent
            and trace_id is not None
            and extracted.context.trace_id != trace_id
            and fallback is not None
        ):
            problems.append(
                f"envelope traceId {trace_id!r} disagrees with its traceparent; "
                "the traceparent was used"
            )
            return Extracted(extracted.context, None, tuple(problems), extracted.span_context)
        return extracted
    except Exception as exc:  # a consume loop must never see an extraction error
        message = MessageContext(None, None, None, None, None, None)
        return Extracted(
            message, NoParent(f"the envelope could not be read: {type(exc).__name__}: {exc}")
        )
