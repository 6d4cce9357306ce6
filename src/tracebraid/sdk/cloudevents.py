"""CloudEvents: the seed's identities in a CloudEvent, binary mode (headers) and structured
mode (a JSON envelope), and the mapping between a CloudEvent and the seed's envelope.

A CloudEvent carries tracebraid's identities in its own attributes and two extensions:

=====================  ==================  =====================================
seed envelope          CloudEvent          binary-mode header (HTTP/AMQP, Kafka)
=====================  ==================  =====================================
``eventId``            ``id``              ``ce-id``, ``ce_id``
``eventName``          ``type``            ``ce-type``, ``ce_type``
(none)                 ``source``          ``ce-source``, ``ce_source``
``correlationId``      ``correlationid``   ``ce-correlationid`` (Correlation ext.)
``causationId``        ``causationid``     ``ce-causationid`` (Correlation ext.)
``traceparent``        ``traceparent``     ``ce-traceparent`` (Distributed Tracing)
``tracestate``         ``tracestate``      ``ce-tracestate`` (Distributed Tracing)
``baggage``            ``baggage``         ``ce-baggage``
``attempt``            ``attempt``         ``ce-attempt``
``traceId``            from ``traceparent``
``parentSpanId``       from ``traceparent``
=====================  ==================  =====================================

A CloudEvent needs ``id``, ``type`` and ``source``; the envelope has no ``source``, so
``envelope_to_cloudevent`` takes it as an argument and ``cloudevent_to_envelope`` drops
it. AMQP's ``cloudEvents_``/``cloudEvents:`` prefixes are read as well. Reading never
raises: what is malformed gives ``NoParent(reason)`` or a ``problems`` entry, like
``tracebraid.extract``. The ``cloudevents`` SDK (``pip install 'tracebraid[cloudevents]'``)
is needed only for ``to_cloudevent``/``from_cloudevent``, which speak its ``CloudEvent``.

Example::

    >>> from tracebraid.sdk.context import MessageContext
    >>> message = MessageContext(trace_id=None, span_id=None, correlation_id="order_441",
    ...     event_id="evt_1", causation_id=None, event_name="order.placed")
    >>> headers = to_binary_headers(message, source="/checkout", style=KAFKA)
    >>> headers["ce_type"], headers["ce_correlationid"]
    ('order.placed', 'order_441')
    >>> extract_binary(headers).context.event_id
    'evt_1'
    >>> extract_binary({"ce-id": "evt_2", "ce-traceparent": "junk"}).no_parent.reason[:24]
    "traceparent 'junk' is ma"
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracebraid.errors import InputError, MissingExtraError
from tracebraid.model import is_valid_span_id, is_valid_trace_id
from tracebraid.sdk import carriers as h
from tracebraid.sdk.context import MessageContext
from tracebraid.sdk.envelope import extract_envelope, to_envelope
from tracebraid.sdk.propagation import Extracted, NoParent, extract

if TYPE_CHECKING:
    from cloudevents.core.base import BaseCloudEvent

__all__ = [
    "CAUSATION_EXTENSION",
    "CORRELATION_EXTENSION",
    "HTTP",
    "KAFKA",
    "BinaryStyle",
    "CloudEventIdentity",
    "binary_attributes",
    "cloudevent_identity",
    "cloudevent_to_envelope",
    "envelope_to_cloudevent",
    "extract_binary",
    "extract_structured",
    "from_cloudevent",
    "headers_from_attributes",
    "to_binary_headers",
    "to_cloudevent",
    "to_structured",
]

SPECVERSION = "1.0"
CORRELATION_EXTENSION = "correlationid"
CAUSATION_EXTENSION = "causationid"
ATTEMPT_EXTENSION = "attempt"


class BinaryStyle(enum.StrEnum):
    """The header prefix of a binary-mode CloudEvent: ``ce-`` (HTTP, AMQP 0-9-1 as the
    RabbitMQ binding writes it) or ``ce_`` (the Kafka protocol binding)."""

    HTTP = "ce-"
    KAFKA = "ce_"


HTTP = BinaryStyle.HTTP
KAFKA = BinaryStyle.KAFKA

# Header prefixes of binary mode, lowercased: HTTP/RabbitMQ, Kafka, and AMQP 1.0's two.
_PREFIXES = ("ce-", "ce_", "cloudevents_", "cloudevents:")

# CloudEvent attribute -> the tracebraid header its value is read as.
_AS_HEADER: Mapping[str, str] = {
    "id": h.EVENT_ID_HEADER,
    "type": h.EVENT_NAME_HEADER,
    CORRELATION_EXTENSION: h.CORRELATION_ID_HEADER,
    CAUSATION_EXTENSION: h.CAUSATION_ID_HEADER,
    "traceparent": h.TRACEPARENT_HEADER,
    "tracestate": h.TRACESTATE_HEADER,
    "baggage": h.BAGGAGE_HEADER,
    ATTEMPT_EXTENSION: h.ATTEMPT_HEADER,
}

# envelope field <-> CloudEvent attribute, for the fields that map one to one.
_ENVELOPE_TO_CLOUDEVENT: Mapping[str, str] = {
    "eventId": "id",
    "eventName": "type",
    "correlationId": CORRELATION_EXTENSION,
    "causationId": CAUSATION_EXTENSION,
    "traceparent": "traceparent",
    "tracestate": "tracestate",
    "baggage": "baggage",
    "attempt": ATTEMPT_EXTENSION,
}


@dataclass(frozen=True, slots=True)
class CloudEventIdentity:
    """What names a CloudEvent: ``id`` and ``source`` together identify it, ``type`` says
    what happened (the span attributes ``cloudevents.event_id``/``event_type``/
    ``event_source``)."""

    id: str
    type: str | None
    source: str | None


def _pairs(carrier: object) -> Iterable[tuple[object, object]]:
    if isinstance(carrier, Mapping):
        return carrier.items()
    if isinstance(carrier, list | tuple):
        return (p for p in carrier if isinstance(p, tuple) and len(p) == 2)
    return ()


def binary_attributes(carrier: object) -> dict[str, object]:
    """The CloudEvent attributes in a binary-mode header carrier, by lowercase attribute
    name, values as found (str or bytes); the first of several equal names wins.

    ``carrier`` is a mapping of headers or a Kafka-style list of ``(name, bytes)`` pairs;
    anything else has no attributes.
    """
    found: dict[str, object] = {}
    try:
        for name, value in _pairs(carrier):
            if not isinstance(name, str) or len(name) < 4:
                continue
            lowered = name.lower()
            for prefix in _PREFIXES:
                if lowered.startswith(prefix):
                    found.setdefault(lowered[len(prefix) :], value)
                    break
    except Exception:  # a carrier that cannot be iterated has no CloudEvent in it
        return {}
    return found


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8") or None
        except UnicodeDecodeError:
            return None
    return None


def cloudevent_identity(attributes: Mapping[str, object]) -> CloudEventIdentity | None:
    """The identity of a CloudEvent from its attributes (``None`` without a readable ``id``)."""
    event_id = _text(attributes.get("id"))
    if event_id is None:
        return None
    return CloudEventIdentity(
        event_id, _text(attributes.get("type")), _text(attributes.get("source"))
    )


def headers_from_attributes(attributes: Mapping[str, object]) -> dict[str, object]:
    """tracebraid's header names for the CloudEvent attributes that carry its identities."""
    return {
        header: attributes[name]
        for name, header in _AS_HEADER.items()
        if attributes.get(name) is not None
    }


def extract_binary(carrier: object) -> Extracted:
    """Read the identities of a binary-mode CloudEvent (``ce-``/``ce_`` headers); never
    raises, never invents a parent. tracebraid's own headers, when present too, win.

    A plain ``traceparent`` header (the W3C one) is the parent when there is no
    ``ce-traceparent``.
    """
    try:
        headers = headers_from_attributes(binary_attributes(carrier))
        for name, value in _pairs(carrier):
            if isinstance(name, str) and name.lower() in _TRACEBRAID_HEADERS:
                headers[name.lower()] = value
    except Exception as exc:  # a consume loop must never see an extraction error
        message = MessageContext(None, None, None, None, None, None)
        return Extracted(message, NoParent(f"the CloudEvent headers could not be read: {exc}"))
    return extract(headers)


_TRACEBRAID_HEADERS = frozenset(
    (
        h.TRACEPARENT_HEADER,
        h.TRACESTATE_HEADER,
        h.BAGGAGE_HEADER,
        h.CORRELATION_ID_HEADER,
        h.EVENT_ID_HEADER,
        h.CAUSATION_ID_HEADER,
        h.EVENT_NAME_HEADER,
        h.ATTEMPT_HEADER,
    )
)


def to_binary_headers(
    message: MessageContext, *, source: str, style: BinaryStyle = HTTP
) -> dict[str, str]:
    """Binary-mode CloudEvent headers for ``message`` (``ce-`` or ``ce_`` per ``style``).

    Raises ``InputError`` when the message has no event ID or event name: a CloudEvent
    cannot exist without ``id`` and ``type``. Values are written as text.
    """
    attributes = envelope_to_cloudevent(to_envelope(message), source=source)
    prefix = style.value
    return {prefix + name: str(value) for name, value in attributes.items()}


def envelope_to_cloudevent(envelope: Mapping[str, object], *, source: str) -> dict[str, object]:
    """The CloudEvent attributes of a seed envelope (see the module's table).

    ``traceId`` and ``parentSpanId`` become a ``traceparent`` when the envelope has
    none. Raises ``InputError`` naming what is missing when the envelope has no
    ``eventId`` or ``eventName``, or ``source`` is empty.
    """
    if not source:
        raise InputError("a CloudEvent needs a source (a URI-reference naming the producer)")
    for needed in ("eventId", "eventName"):
        if not isinstance(envelope.get(needed), str) or not envelope.get(needed):
            raise InputError(
                f"a CloudEvent needs an id and a type; the envelope has no {needed!r} string"
            )
    attributes: dict[str, object] = {"specversion": SPECVERSION, "source": source}
    for field, name in _ENVELOPE_TO_CLOUDEVENT.items():
        value = envelope.get(field)
        if value is not None:
            attributes[name] = value
    trace_id, parent = envelope.get("traceId"), envelope.get("parentSpanId")
    if (
        "traceparent" not in attributes
        and isinstance(trace_id, str)
        and isinstance(parent, str)
        and is_valid_trace_id(trace_id)
        and is_valid_span_id(parent)
    ):
        attributes["traceparent"] = f"00-{trace_id}-{parent}-01"
    return attributes


def cloudevent_to_envelope(attributes: Mapping[str, object]) -> dict[str, object]:
    """The seed envelope of a CloudEvent's attributes (``source`` has no envelope field;
    ``traceId`` and ``parentSpanId`` come from a well-formed ``traceparent``)."""
    envelope: dict[str, object] = {}
    for field, name in _ENVELOPE_TO_CLOUDEVENT.items():
        value = attributes.get(name)
        if value is None:
            continue
        if field == "attempt" and isinstance(value, str) and value.isdigit():
            value = int(value)
        envelope[field] = value
    traceparent = attributes.get("traceparent")
    if isinstance(traceparent, str):
        parts = traceparent.split("-")
        if len(parts) == 4 and is_valid_trace_id(parts[1]) and is_valid_span_id(parts[2]):
            envelope["traceId"], envelope["parentSpanId"] = parts[1], parts[2]
    return envelope


def to_structured(
    message: MessageContext, *, source: str, data: object = None
) -> dict[str, object]:
    """A structured-mode CloudEvent (the JSON object, ``json.dumps`` it) for ``message``."""
    event = envelope_to_cloudevent(to_envelope(message), source=source)
    if data is not None:
        event["datacontenttype"] = "application/json"
        event["data"] = data
    return event


def extract_structured(body: object) -> Extracted:
    """Read the identities of a structured-mode CloudEvent: JSON text or bytes, or the
    parsed object. Never raises; what is not a JSON object gives ``NoParent(reason)``."""
    parsed = body
    if isinstance(body, bytes | bytearray | memoryview | str):
        try:
            parsed = json.loads(bytes(body) if not isinstance(body, str) else body)
        except (ValueError, UnicodeDecodeError) as exc:
            message = MessageContext(None, None, None, None, None, None)
            return Extracted(message, NoParent(f"the structured CloudEvent is not JSON: {exc}"))
    if not isinstance(parsed, Mapping):
        message = MessageContext(None, None, None, None, None, None)
        return Extracted(
            message,
            NoParent(
                f"the structured CloudEvent is a {type(parsed).__name__}, expected a JSON object"
            ),
        )
    try:
        attributes = {str(k).lower(): v for k, v in parsed.items()}
    except Exception as exc:  # a consume loop must never see an extraction error
        message = MessageContext(None, None, None, None, None, None)
        return Extracted(message, NoParent(f"the structured CloudEvent could not be read: {exc}"))
    return extract_envelope(cloudevent_to_envelope(attributes))


def to_cloudevent(message: MessageContext, *, source: str, data: object = None) -> BaseCloudEvent:
    """The ``cloudevents`` SDK's ``CloudEvent`` for ``message`` (its binding functions,
    ``to_binary``/``to_structured`` for HTTP, Kafka or AMQP, then write it)."""
    try:
        from cloudevents.core.v1.event import CloudEvent
    except ImportError as exc:
        raise MissingExtraError("cloudevents", "cloudevents") from exc
    attributes = envelope_to_cloudevent(to_envelope(message), source=source)
    if "attempt" in attributes:
        attributes["attempt"] = str(attributes["attempt"])
    return CloudEvent(attributes, data)  # type: ignore[arg-type]


def from_cloudevent(event: BaseCloudEvent) -> Extracted:
    """The identities of a ``cloudevents`` SDK event (as the SDK's bindings read it)."""
    try:
        attributes = {str(k).lower(): v for k, v in event.get_attributes().items()}
    except Exception as exc:  # a consume loop must never see an extraction error
        message = MessageContext(None, None, None, None, None, None)
        return Extracted(message, NoParent(f"the CloudEvent could not be read: {exc}"))
    return extract_envelope(cloudevent_to_envelope(attributes))
