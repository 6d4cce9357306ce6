"""What every ingested span must satisfy before it is stored, and how a refusal is described.

Every decoder (OTLP protobuf, OTLP/JSON, Jaeger JSON) builds ``Span`` records and asks
``span_problem`` about each one; a span with a problem is not stored but becomes a
``Rejection`` naming where it was and what was wrong, while the rest of its batch is kept.

``span_problem`` checks everything a store needs, so a span it passes is one every store
can hold: IDs, times within a signed 64-bit integer (what SQLite and ClickHouse keep),
integers within 64 bits and text that is valid Unicode (no lone surrogates, which
JSON's ``\ud800`` escapes can carry) in every field, attribute, event and link.
``value_problem`` is the part about values alone, which a decoder may skip when its
input cannot carry such values (protobuf: upb refuses bad UTF-8, ints are 64-bit).

Rejections are summarised rather than kept one per span (``Decoded.reject``): a count
per reason and the first few examples, so a body of a million bad spans costs a few
objects, not a million.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tracebraid.model import AttributeValue, Span

__all__ = [
    "MAX_EXAMPLES",
    "MAX_NESTING",
    "MAX_TIME_NS",
    "Decoded",
    "Rejection",
    "describe_rejections",
    "id_problem",
    "nested_text",
    "scalar_tuple",
    "span_problem",
    "storable_text",
    "value_problem",
]

MAX_NESTING = 32
"""Deepest nesting of array/kvlist attribute values accepted (deeper is refused, not truncated)."""

MAX_TIME_NS = 2**63 - 1
"""The latest time a store can hold: a signed 64-bit count of nanoseconds (year 2262)."""

MAX_EXAMPLES = 20
"""Rejections kept with their place and reason per payload; the rest are only counted."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

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
    """The outcome of decoding one payload: valid spans to store, refused spans explained.

    ``rejections`` holds at most ``MAX_EXAMPLES`` examples; ``rejected_count`` counts
    every refused span, and ``omitted`` the rejections not kept as examples.
    """

    spans: list[Span] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    rejected_count: int = 0
    omitted: int = 0

    @property
    def wants_example(self) -> bool:
        """True while another rejection would be kept: else ``count`` it, and skip making it."""
        return len(self.rejections) < MAX_EXAMPLES

    def count(self, spans: int = 1) -> None:
        """Count a refusal not kept as an example (``wants_example`` was False)."""
        self.rejected_count += spans
        self.omitted += 1

    def reject(self, rejection: Rejection) -> None:
        """Count a refusal; keep it as an example while there are fewer than ``MAX_EXAMPLES``."""
        self.rejected_count += rejection.count
        if len(self.rejections) < MAX_EXAMPLES:
            self.rejections.append(rejection)
        else:
            self.omitted += 1

    def extend(self, other: Decoded) -> None:
        """Append another payload's outcome to this one."""
        self.spans.extend(other.spans)
        room = max(0, MAX_EXAMPLES - len(self.rejections))
        self.rejections.extend(other.rejections[:room])
        self.omitted += other.omitted + max(0, len(other.rejections) - room)
        self.rejected_count += other.rejected_count


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


def span_problem(span: Span, *, values: bool = True) -> str | None:
    """The first reason ``span`` cannot be stored, or None when it is valid.

    ``values=False`` leaves out ``value_problem``, for a decoder whose input cannot
    carry an unstorable text or integer.
    """
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
    if span.end_ns > MAX_TIME_NS:
        return _too_late("end_time_unix_nano", span.end_ns)
    for i, event in enumerate(span.events):
        if not 0 <= event.time_ns <= MAX_TIME_NS:
            return _too_late(f"events[{i}].time_unix_nano", event.time_ns)
    for i, link in enumerate(span.links):
        problem = id_problem(f"links[{i}].trace_id", link.trace_id, 16) or id_problem(
            f"links[{i}].span_id", link.span_id, 8
        )
        if problem:
            return problem
    return value_problem(span) if values else None


def _too_late(name: str, value: int) -> str:
    return (
        f"{name} {value} is outside 0..{MAX_TIME_NS} (a signed 64-bit count of "
        "nanoseconds, year 2262), which the store cannot hold"
    )


def value_problem(span: Span) -> str | None:
    """Why a text or number of ``span`` cannot be stored, or None when every one can.

    Text must be valid Unicode (a lone surrogate cannot be written as UTF-8) and
    integers must fit in 64 signed bits, in every field, attribute, event and link.
    """
    for name, text in (
        ("name", span.name),
        ("service", span.service),
        ("status.message", span.status_message),
        ("scope.name", span.scope),
    ):
        if not storable_text(text):
            return f"{name} {_shown(text)} is not valid Unicode text (a lone surrogate)"
    problem = _attributes_problem("attribute", span.attributes) or _attributes_problem(
        "resource attribute", span.resource
    )
    if problem:
        return problem
    for i, event in enumerate(span.events):
        if not storable_text(event.name):
            return f"events[{i}].name {_shown(event.name)} is not valid Unicode text"
        problem = _attributes_problem(f"events[{i}] attribute", event.attributes)
        if problem:
            return problem
    for i, link in enumerate(span.links):
        problem = _attributes_problem(f"links[{i}] attribute", link.attributes)
        if problem:
            return problem
    return None


def storable_text(text: str) -> bool:
    """True when ``text`` can be written as UTF-8 (it holds no lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _attributes_problem(what: str, attributes: Mapping[str, AttributeValue]) -> str | None:
    for key, value in attributes.items():
        if not storable_text(key):
            return f"{what} key {_shown(key)} is not valid Unicode text (a lone surrogate)"
        items: tuple[object, ...] = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, str):
                if not storable_text(item):
                    return f"{what} {key!r}: the text is not valid Unicode (a lone surrogate)"
            elif isinstance(item, bool | float):
                continue
            elif isinstance(item, int):
                if not _INT64_MIN <= item <= _INT64_MAX:
                    return f"{what} {key!r}: the integer {_shown(item)} does not fit in 64 bits"
            else:
                return f"{what} {key!r}: a {type(item).__name__} is not an attribute value"
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_rejections(
    rejections: Sequence[Rejection], total: int, limit: int = 5, *, rejected: int | None = None
) -> str:
    """One message for a response or a log: how many were refused and the first reasons.

    ``rejected`` is the count of refused spans when ``rejections`` holds only examples.
    """
    rejected = sum(r.count for r in rejections) if rejected is None else rejected
    shown = "; ".join(str(r) for r in rejections[:limit])
    others = rejected - sum(r.count for r in rejections[:limit])
    more = f"; and {others} more" if others > 0 else ""
    # A reason may quote what the client sent, lone surrogates included: escaped here,
    # since a reply must be UTF-8.
    message = f"{rejected} of {total} spans rejected: {shown}{more}"
    return message.encode("utf-8", "backslashreplace").decode()


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
