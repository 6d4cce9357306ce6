"""What every ingested span must satisfy before it is stored, and how a refusal is described.

Every decoder (OTLP protobuf, OTLP/JSON, Jaeger JSON) builds ``Span`` records and asks
``span_problem`` about each one; a span with a problem is not stored but becomes a
``Rejection`` naming where it was and what was wrong, while the rest of its batch is kept.

Example::

    >>> from tracebraid.model import Span, SpanId, SpanKind, TraceId
    >>> span = Span(TraceId("0" * 32), SpanId("00f067aa0ba902b7"), None, "work",
    ...             SpanKind.INTERNAL, 1, 2, "svc")
    >>> span_problem(span)
    'trace_id is all zeros, which OTLP reserves for "no trace"'
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from tracebraid.model import AttributeValue, Span

__all__ = [
    "MAX_NESTING",
    "Decoded",
    "Rejection",
    "describe_rejections",
    "id_problem",
    "nested_text",
    "scalar_tuple",
    "span_problem",
]

MAX_NESTING = 32
"""Deepest nesting of array/kvlist attribute values accepted (deeper is refused, not truncated)."""

_HEX = frozenset("0123456789abcdef")
_ZERO_WORD = {16: "trace", 8: "span"}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Spans that were refused: where they were in the payload, and why.

    ``count`` is how many spans the refusal covers: 1 for a bad span, all of a
    resource's spans when the resource itself is malformed. ``ordinal`` is the
    span's position among all spans of the payload in document order (-1 when the
    refusal is not about one span), which lets file import find its line.
    """

    where: str
    reason: str
    count: int = 1
    ordinal: int = -1

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(slots=True)
class Decoded:
    """The outcome of decoding one payload: valid spans to store, refused spans explained."""

    spans: list[Span] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rejected_count(self) -> int:
        """How many spans were refused in total."""
        return sum(r.count for r in self.rejections)

    def extend(self, other: Decoded) -> None:
        """Append another payload's outcome to this one."""
        self.spans.extend(other.spans)
        self.rejections.extend(other.rejections)


def id_problem(name: str, value: str, nbytes: int) -> str | None:
    """Why ``value`` (hex) is not a valid ``nbytes``-byte W3C ID, or None when it is."""
    if len(value) == 2 * nbytes and _HEX.issuperset(value):
        if value.count("0") == len(value):
            return f'{name} is all zeros, which OTLP reserves for "no {_ZERO_WORD[nbytes]}"'
        return None
    if _HEX.issuperset(value) and len(value) % 2 == 0:
        got = f"{len(value) // 2} bytes"
    else:
        shown = value if len(value) <= 40 else value[:37] + "..."
        got = f"{shown!r}, which is not hex"
    return f"{name} must be {nbytes} bytes ({2 * nbytes} hex digits); got {got}"


def span_problem(span: Span) -> str | None:
    """The first reason ``span`` cannot be stored, or None when it is valid."""
    problem = id_problem("trace_id", span.trace_id, 16) or id_problem("span_id", span.span_id, 8)
    if problem:
        return problem
    if span.parent_span_id is not None:
        problem = id_problem("parent_span_id", span.parent_span_id, 8)
        if problem:
            return problem
    if span.start_ns <= 0:
        return "start_time_unix_nano is missing (0)"
    if span.end_ns < span.start_ns:
        return (
            f"end_time_unix_nano ({span.end_ns}) is before start_time_unix_nano ({span.start_ns})"
        )
    for i, link in enumerate(span.links):
        problem = id_problem(f"links[{i}].trace_id", link.trace_id, 16) or id_problem(
            f"links[{i}].span_id", link.span_id, 8
        )
        if problem:
            return problem
    return None


def describe_rejections(rejections: Sequence[Rejection], total: int, limit: int = 5) -> str:
    """One message for a response or a log: how many were refused and the first reasons."""
    rejected = sum(r.count for r in rejections)
    shown = "; ".join(str(r) for r in rejections[:limit])
    more = f"; and {len(rejections) - limit} more" if len(rejections) > limit else ""
    return f"{rejected} of {total} spans rejected: {shown}{more}"


def scalar_tuple(values: Sequence[object]) -> AttributeValue | None:
    """``values`` as a homogeneous tuple the model can hold, or None when they are mixed."""
    if not values:
        return ()
    first = type(values[0])
    if first not in (str, bool, int, float):
        return None
    for v in values:
        if type(v) is not first:
            return None
    return tuple(values)  # type: ignore[return-value]  # homogeneity checked above


def nested_text(value: object) -> str:
    """JSON text for a nested attribute value (kvlist, mixed array) the model cannot hold.

    Bytes become base64, as in OTLP/JSON. Raises ``ValueError`` past ``MAX_NESTING``.
    """
    return json.dumps(_plain(value, 0), ensure_ascii=False, separators=(",", ":"))


def _plain(value: object, depth: int) -> object:
    if depth > MAX_NESTING:
        raise ValueError(f"value nests deeper than {MAX_NESTING} levels")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    return value
