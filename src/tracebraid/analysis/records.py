"""Small records every analysis result shares: a reference to a span, and a limitation.

Results name spans by ``SpanRef`` (identities plus the business name), never by an
index into some list, so a result serialises on its own (``dataclasses.asdict``).

Example::

    >>> from tracebraid.model import SpanId, TraceId
    >>> ref = SpanRef(TraceId("4bf92f3577b34da6a3ce929d0e0e4736"), SpanId("00f067aa0ba902b7"),
    ...               "reserve-inventory", "inventory")
    >>> ref.name
    'reserve-inventory'
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebraid.model import Span, SpanId, TraceId

__all__ = ["Limitation", "SpanRef"]


@dataclass(frozen=True, slots=True)
class SpanRef:
    """Which span a result talks about: its identities, business name and service."""

    trace_id: TraceId
    span_id: SpanId
    name: str
    service: str

    @classmethod
    def of(cls, span: Span) -> SpanRef:
        """The reference to ``span``."""
        return cls(span.trace_id, span.span_id, span.name, span.service)


@dataclass(frozen=True, slots=True)
class Limitation:
    """Something the spans cannot tell, said instead of guessed.

    ``code`` is stable (``no_correlation_id``, ``consumer_group_unknown``, ...) for
    tools to match on; ``message`` is for people; ``count`` is how many spans or
    items it affects (0 when it is about the input as a whole).
    """

    code: str
    message: str
    count: int = 0
