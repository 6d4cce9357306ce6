"""Inject a message's identities into header carriers and extract them back, never raising.

Trace context and baggage go through OpenTelemetry's W3C ``TraceContextTextMapPropagator``
and ``W3CBaggagePropagator``; the correlation ID travels in baggage *and* in its own header,
and the event ID, causation ID, event name and attempt in headers of their own
(``tracebraid.sdk.carriers``).

Extraction is for consume loops, so it cannot fail: malformed input yields an
``Extracted`` whose ``no_parent`` says why there is no parent context. A parent is never
invented, and every identity that *was* readable is kept (a bad ``traceparent`` does not
lose the correlation ID).

Example::

    >>> from tracebraid.sdk.context import MessageContext
    >>> message = MessageContext(trace_id=None, span_id=None, correlation_id="order_441",
    ...                          event_id="evt_1", causation_id=None, event_name="order.placed")
    >>> headers: dict[str, str] = {}
    >>> inject(message, headers)
    >>> extract(headers).context.correlation_id
    'order_441'
    >>> bad = extract({"traceparent": "xyz", "x-correlation-id": "order_441"})
    >>> bad.has_parent, bad.context.correlation_id
    (False, 'order_441')
    >>> bad.no_parent.reason.startswith("traceparent 'xyz' is malformed")
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Setter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracebraid.sdk import carriers as h
from tracebraid.sdk._header_values import (
    BAGGAGE,
    CORRELATION_PREFIX,
    correlation_baggage,
    header_text,
    is_unquoted,
    parse_attempt,
    read_baggage,
    readable_text,
    traceparent_reason,
)
from tracebraid.sdk._records import layout_twin
from tracebraid.sdk._traceparent import format_traceparent, parse_traceparent
from tracebraid.sdk.context import (
    BAGGAGE_CORRELATION_KEY,
    MessageContext,
    _message_context,
    _MessageFields,
)

__all__ = [
    "PROPAGATOR",
    "Extracted",
    "NoParent",
    "extract",
    "inject",
    "otel_context",
    "remote_span_context",
]

_TRACE_CONTEXT = TraceContextTextMapPropagator()
PROPAGATOR = CompositePropagator([_TRACE_CONTEXT, BAGGAGE])
"""The one W3C trace-context + baggage propagator tracebraid uses (built once)."""

_IDENTITY_HEADERS = (
    h.CORRELATION_ID_HEADER,
    h.EVENT_ID_HEADER,
    h.CAUSATION_ID_HEADER,
    h.EVENT_NAME_HEADER,
    h.ATTEMPT_HEADER,
)
_W3C_HEADERS = (h.TRACEPARENT_HEADER, h.TRACESTATE_HEADER, h.BAGGAGE_HEADER)
_WANTED = frozenset((*_W3C_HEADERS, *_IDENTITY_HEADERS))
_ONLY_STR = {str}
_PLAIN_NAMES = (
    h.BAGGAGE_HEADER,
    h.CORRELATION_ID_HEADER,
    h.EVENT_ID_HEADER,
    h.CAUSATION_ID_HEADER,
    h.EVENT_NAME_HEADER,
    h.ATTEMPT_HEADER,
)


@dataclass(frozen=True, slots=True)
class NoParent:
    """Why an extracted message has no parent context; log it, do not raise it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Extracted:
    """The result of reading a carrier or envelope: always usable, never an exception.

    ``problems`` lists what else was ignored (a non-numeric attempt, oversized baggage...)
    while the parent context itself was fine or absent for the reason in ``no_parent``.
    """

    context: MessageContext
    no_parent: NoParent | None
    problems: tuple[str, ...] = ()
    # The parsed OpenTelemetry span context, so consuming need not parse it again.
    span_context: trace.SpanContext | None = field(default=None, compare=False, repr=False)

    @property
    def has_parent(self) -> bool:
        """True when a valid remote parent span context was found."""
        return self.no_parent is None


def remote_span_context(message: MessageContext) -> trace.SpanContext | None:
    """The remote span context the message carries; ``None`` when it carries no trace IDs."""
    if message.trace_id is None or message.span_id is None:
        return None
    return trace.SpanContext(
        trace_id=int(message.trace_id, 16),
        span_id=int(message.span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(message.trace_flags),
        trace_state=trace.TraceState.from_header([message.trace_state])
        if message.trace_state
        else None,
    )


def otel_context(message: MessageContext, base: Context | None = None) -> Context:
    """An OpenTelemetry ``Context`` holding the message's span context and baggage."""
    ctx = base if base is not None else Context()
    span_context = remote_span_context(message)
    if span_context is not None:
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(span_context), ctx)
    if message.correlation_id is not None:
        ctx = otel_baggage.set_baggage(BAGGAGE_CORRELATION_KEY, message.correlation_id, ctx)
    for key, value in message.baggage.items():
        ctx = otel_baggage.set_baggage(key, value, ctx)
    return ctx


def _setter_for(carrier: object, as_bytes: bool) -> Setter[object]:
    if isinstance(carrier, list):
        return h.KAFKA_HEADERS  # type: ignore[return-value]
    return h.BYTES_HEADERS if as_bytes else h.STR_HEADERS  # type: ignore[return-value]


def _inject_identities(message: MessageContext, carrier: object, setter: Setter[object]) -> None:
    if setter is h.STR_HEADERS:
        _inject_str_identities(message, carrier)  # type: ignore[arg-type]
        return
    if message.correlation_id is not None:
        setter.set(carrier, h.CORRELATION_ID_HEADER, message.correlation_id)
    if message.event_id is not None:
        setter.set(carrier, h.EVENT_ID_HEADER, message.event_id)
    if message.causation_id is not None:
        setter.set(carrier, h.CAUSATION_ID_HEADER, message.causation_id)
    if message.event_name is not None:
        setter.set(carrier, h.EVENT_NAME_HEADER, message.event_name)
    if message.attempt is not None:
        setter.set(carrier, h.ATTEMPT_HEADER, str(message.attempt))


def _inject_str_identities(message: MessageContext, carrier: dict[str, str]) -> None:
    # The hot path of every publish: plain item assignment, no setter calls.
    if message.correlation_id is not None:
        carrier[h.CORRELATION_ID_HEADER] = message.correlation_id
    if message.event_id is not None:
        carrier[h.EVENT_ID_HEADER] = message.event_id
    if message.causation_id is not None:
        carrier[h.CAUSATION_ID_HEADER] = message.causation_id
    if message.event_name is not None:
        carrier[h.EVENT_NAME_HEADER] = message.event_name
    if message.attempt is not None:
        carrier[h.ATTEMPT_HEADER] = str(message.attempt)


def inject(message: MessageContext, carrier: h.HeaderCarrier, *, as_bytes: bool = False) -> None:
    """Write every identity of ``message`` into ``carrier``.

    A ``dict`` gets ``str`` values, or ``bytes`` with ``as_bytes=True``; a ``list`` is a
    Kafka-style ``list[tuple[str, bytes]]``.
    """
    inject_context(otel_context(message), message, carrier, as_bytes=as_bytes)


def inject_context(
    ctx: Context, message: MessageContext, carrier: h.HeaderCarrier, *, as_bytes: bool = False
) -> None:
    """Like ``inject``, with trace context and baggage taken from an OpenTelemetry context."""
    setter = _setter_for(carrier, as_bytes)
    span_context = trace.get_current_span(ctx).get_span_context()
    traceparent = format_traceparent(span_context)
    if traceparent is None:
        _TRACE_CONTEXT.inject(carrier, ctx, setter)
    else:
        setter.set(carrier, h.TRACEPARENT_HEADER, traceparent)
        if span_context.trace_state:
            setter.set(carrier, h.TRACESTATE_HEADER, span_context.trace_state.to_header())
    entries = otel_baggage.get_all(ctx)
    if len(entries) == 1 and BAGGAGE_CORRELATION_KEY in entries:
        baggage = correlation_baggage(str(entries[BAGGAGE_CORRELATION_KEY]))
        if baggage is not None:
            setter.set(carrier, h.BAGGAGE_HEADER, baggage)
    elif entries:
        BAGGAGE.inject(carrier, ctx, setter)
    _inject_identities(message, carrier, setter)


def from_texts(
    texts: Mapping[str, str | None],
    problems: list[str],
    *,
    trace_id_fallback: tuple[str, str] | None = None,
    missing_reason: str = "the message carries no traceparent",
) -> Extracted:
    """Build an ``Extracted`` from decoded header texts (shared with the envelope reader)."""
    get = texts.get
    traceparent = get(h.TRACEPARENT_HEADER)
    span_context: trace.SpanContext | None = None
    no_parent: NoParent | None = None
    trace_id: str | None = None
    span_id: str | None = None
    if traceparent:
        tracestate = get(h.TRACESTATE_HEADER)
        span_context = None if tracestate else parse_traceparent(traceparent)
        if span_context is None:
            # Not the canonical shape: OpenTelemetry's propagator has the last word.
            w3c = {h.TRACEPARENT_HEADER: traceparent}
            if tracestate:
                w3c[h.TRACESTATE_HEADER] = tracestate
            found = trace.get_current_span(_TRACE_CONTEXT.extract(w3c)).get_span_context()
            if found.is_valid:
                span_context = found
            else:
                no_parent = NoParent(traceparent_reason(traceparent))
        if span_context is not None:
            # Validated: 'vv-<32 hex>-<16 hex>-ff' after optional blanks.
            bare = traceparent.lstrip(" \t")
            trace_id, span_id = bare[3:35], bare[36:52]
    elif trace_id_fallback is not None:
        span_context = trace.SpanContext(
            trace_id=int(trace_id_fallback[0], 16),
            span_id=int(trace_id_fallback[1], 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
        trace_id = format(span_context.trace_id, "032x")
        span_id = format(span_context.span_id, "016x")
    else:
        no_parent = NoParent(missing_reason)

    baggage_header = get(h.BAGGAGE_HEADER)
    entries: dict[str, str] = {}
    from_baggage = None
    if baggage_header:
        entries, from_baggage = read_baggage(baggage_header, problems)
    attempt = get(h.ATTEMPT_HEADER)
    # Each identity on its own: one that cannot be used is a problem, not the end.
    message = _message_context(
        trace_id,
        span_id,
        readable_text(h.CORRELATION_ID_HEADER, get(h.CORRELATION_ID_HEADER), problems)
        or from_baggage
        or None,
        readable_text(h.EVENT_ID_HEADER, get(h.EVENT_ID_HEADER), problems) or None,
        readable_text(h.CAUSATION_ID_HEADER, get(h.CAUSATION_ID_HEADER), problems) or None,
        readable_text(h.EVENT_NAME_HEADER, get(h.EVENT_NAME_HEADER), problems) or None,
        None if attempt is None else parse_attempt(attempt, problems),
        0x01 if span_context is None else int(span_context.trace_flags),
        span_context.trace_state.to_header()
        if span_context is not None and span_context.trace_state
        else "",
        entries,
    )
    return _extracted(message, no_parent, tuple(problems) if problems else (), span_context)


_ExtractedFields = layout_twin(Extracted)


def _extracted(
    context: MessageContext,
    no_parent: NoParent | None,
    problems: tuple[str, ...],
    span_context: trace.SpanContext | None,
) -> Extracted:
    """``Extracted(...)`` at a fifth of the cost, for the hot path (see ``_records``)."""
    fields = _ExtractedFields()
    fields.context = context
    fields.no_parent = no_parent
    fields.problems = problems
    fields.span_context = span_context
    fields.__class__ = Extracted
    record: Extracted = fields
    return record


def _empty(reason: str) -> Extracted:
    message = MessageContext(None, None, None, None, None, None)
    return Extracted(message, NoParent(reason))


def extract(carrier: object) -> Extracted:
    """Read every identity from a header carrier; never raises, never invents a parent.

    ``carrier`` is a mapping of ``str`` to ``str`` or ``bytes``, or a Kafka-style
    sequence of ``(str, bytes)`` pairs; anything else gives ``no_parent`` with the reason.
    """
    if type(carrier) is dict:
        try:
            plain = _extract_plain(carrier)
        except Exception:  # the long way below decides, and says why if it cannot read it
            plain = None
        if plain is not None:
            return plain
    pairs: Iterable[object]
    if isinstance(carrier, Mapping):
        pairs = carrier.items()
    elif isinstance(carrier, list | tuple):
        pairs = carrier
    else:
        return _empty(
            f"the carrier is a {type(carrier).__name__}, expected a mapping of headers "
            "or a list of (name, bytes) pairs"
        )
    problems: list[str] = []
    try:
        raw = _collect(pairs)
        texts = {
            name: (value or None) if type(value) is str else header_text(name, value, problems)
            for name, value in raw.items()
        }
        if texts.get(h.TRACEPARENT_HEADER) is None and problems:
            unreadable = [p for p in problems if p.startswith(f"header {h.TRACEPARENT_HEADER!r}")]
            if unreadable:
                return from_texts(texts, problems, missing_reason=unreadable[0])
        return from_texts(texts, problems)
    except Exception as exc:  # a consume loop must never see an extraction error
        return _empty(f"the carrier could not be read: {type(exc).__name__}: {exc}")


def _extract_plain(carrier: dict[str, str]) -> Extracted | None:
    """``extract`` of the common case in one look-up per header: a ``dict`` holding only
    ``str`` values, no other spelling of a header tracebraid reads, a canonical
    ``traceparent`` and no ``tracestate``. ``None`` for anything else (``extract`` then
    reads the carrier the long way)."""
    if set(map(type, carrier.values())) != _ONLY_STR:
        return None
    if not carrier.keys() <= _WANTED:
        for key in carrier:
            if key not in _WANTED and (type(key) is not str or key.lower() in _WANTED):
                return None
    get = carrier.get
    traceparent = get(h.TRACEPARENT_HEADER)
    if traceparent is None or h.TRACESTATE_HEADER in carrier:
        return None
    span_context = parse_traceparent(traceparent)
    if span_context is None:
        return None
    baggage, correlation, event_id, causation, event_name, attempt = map(get, _PLAIN_NAMES)
    for text in (correlation, event_id, causation, event_name):
        if text and not text.isascii():
            return None  # may hold a lone surrogate: the long way checks each one
    problems: list[str] = []
    entries: dict[str, str] = {}
    if baggage and not (
        # What tracebraid writes: the correlation ID alone, needing no decoding.
        correlation and baggage == CORRELATION_PREFIX + correlation and is_unquoted(correlation)
    ):
        entries, from_baggage = read_baggage(baggage, problems)
        correlation = correlation or from_baggage
    fields = _MessageFields()
    fields.trace_id = traceparent[3:35]
    fields.span_id = traceparent[36:52]
    fields.correlation_id = correlation or None
    fields.event_id = event_id or None
    fields.causation_id = causation or None
    fields.event_name = event_name or None
    fields.attempt = parse_attempt(attempt, problems) if attempt else None
    fields.trace_flags = int(span_context.trace_flags)
    fields.trace_state = ""
    fields.baggage = entries
    fields.__class__ = MessageContext
    extracted = _ExtractedFields()
    extracted.context = fields
    extracted.no_parent = None
    extracted.problems = tuple(problems) if problems else ()
    extracted.span_context = span_context
    extracted.__class__ = Extracted
    result: Extracted = extracted
    return result


def _collect(pairs: Iterable[object]) -> dict[str, object]:
    """The values of the headers tracebraid reads, in one pass; an exact name beats a
    differently-cased one, and the first of several equal names wins (Kafka)."""
    exact: dict[str, object] = {}
    folded: dict[str, object] = {}
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            continue
        name, value = pair
        if name in _WANTED:
            if name not in exact:
                exact[name] = value
        elif isinstance(name, str):
            lowered = name.lower()
            if lowered in _WANTED and lowered not in folded:
                folded[lowered] = value
    if folded:
        folded.update(exact)
        return folded
    return exact
