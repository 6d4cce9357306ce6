"""A fast path for the one W3C ``traceparent`` shape almost every message carries.

OpenTelemetry's ``TraceContextTextMapPropagator`` handles every shape the W3C Trace
Context spec allows, through getters, a regex search and a new ``Context`` per call:
a few microseconds on each hop. Nearly every message carries the canonical version-00
form, ``00-<32 hex>-<16 hex>-<2 hex>`` with nothing around it; this module reads and
writes exactly that form and answers ``None`` for anything else, so the caller hands the
unusual cases (blanks, future versions, trailing data, all-zero IDs) to OpenTelemetry.
``tests/sdk/test_traceparent.py`` holds the fast path to OpenTelemetry's output and
verdicts on random valid and invalid input.

Example::

    >>> context = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    >>> format_traceparent(context)
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    >>> parse_traceparent(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") is None
    True
"""

from __future__ import annotations

import re

from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

__all__ = ["format_traceparent", "parse_traceparent"]

_CANONICAL = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_new_tuple = tuple.__new__
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16
# One TraceFlags per byte value: the propagator builds a new one on every extract.
_FLAGS = tuple(TraceFlags(value) for value in range(256))
_FLAGS_SUFFIX = tuple(f"-{value:02x}" for value in range(256))


def parse_traceparent(value: str) -> SpanContext | None:
    """The remote span context of a canonical version-00 ``traceparent`` with non-zero IDs;
    ``None`` for every other value (the caller asks OpenTelemetry's propagator then)."""
    if len(value) != 55 or _CANONICAL.fullmatch(value) is None:
        return None
    trace_id = value[3:35]
    span_id = value[36:52]
    if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        return None
    # SpanContext is a tuple (trace_id, span_id, is_remote, trace_flags, trace_state,
    # is_valid), as its declared type says; its __new__ would only fill in the default
    # trace state and work out is_valid, which the checks above already settled (32 and
    # 16 hex digits, not all zero). tests/sdk/test_traceparent.py holds the result equal
    # to OpenTelemetry's own, field for field.
    return _new_tuple(
        SpanContext,
        (
            int(trace_id, 16),
            int(span_id, 16),
            True,
            _FLAGS[int(value[53:55], 16)],
            DEFAULT_TRACE_STATE,
            True,
        ),
    )


def format_traceparent(context: SpanContext) -> str | None:
    """The ``traceparent`` OpenTelemetry's propagator writes for a valid span context;
    ``None`` for an invalid one (the caller asks OpenTelemetry's propagator then)."""
    # The tuple's fields in one step (its declared type), not four property calls.
    trace_id, span_id, _, flags, _, valid = context
    if not valid:
        return None
    # A valid context's IDs fit 16 and 8 bytes; ``to_bytes().hex()`` is their lowercase
    # zero-padded hex at a third of the cost of format(..., "032x").
    suffix = _FLAGS_SUFFIX[flags] if flags < 256 else f"-{flags:02x}"
    return f"00-{trace_id.to_bytes(16).hex()}-{span_id.to_bytes(8).hex()}{suffix}"
