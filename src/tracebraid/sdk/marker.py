"""Start markers: in-flight work made visible before its span ends.

OpenTelemetry exports a span only when it ends, so work that is slow, stuck or lost
with its process would be invisible. A start marker is a tiny span, started and ended
at once, from the instrumentation scope ``semconv.START_MARKER_SCOPE``, child of the
span it announces, with ``tracebraid.marker.span_id`` naming that span and the same
identity attributes. The analysis reads a marker with no finished span as work in
flight (or stuck).

Why markers are deferred: a span that ends within a batch exporter's delay (5 s by
default) reaches the backend as soon as its marker would, so a marker for quick work
buys nothing and costs a third span per hop. With ``after_ms > 0`` a consume only
enters a set of work in flight (and leaves it when it ends); one background clock
thread emits the marker of whatever is still in the set ``after_ms`` after it began,
with the processing's real start time. ``after_ms == 0`` emits at once.

Example::

    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> tracer = TracerProvider().get_tracer(semconv.START_MARKER_SCOPE)
    >>> announced = trace.SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0xF067AA0BA902B7, False)
    >>> pending = PendingMarker(tracer, "reserve-inventory", announced, {}, 0)
    >>> pending.emit()
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping
from typing import Protocol

from opentelemetry import trace

from tracebraid import semconv
from tracebraid.model import AttributeValue

__all__ = ["CLOCK", "InFlight", "MarkerClock", "PendingMarker"]

_MIN_TICK_S = 0.01  # the clock thread wakes at most 100 times a second
_QUIET_TICK_S = 0.05
_QUIET_TICKS_BEFORE_BLOCKING = 20


class PendingMarker:
    """A start marker for one processing, built when it is due; ``emit`` sends it."""

    __slots__ = ("announced", "attributes", "start_ns", "step", "tracer")

    def __init__(
        self,
        tracer: trace.Tracer,
        step: str,
        announced: trace.SpanContext,
        attributes: Mapping[str, AttributeValue],
        start_ns: int,
    ) -> None:
        self.tracer = tracer
        self.step = step
        self.announced = announced
        self.attributes = attributes
        self.start_ns = start_ns

    def emit(self) -> None:
        """Emit the marker span now (start and end at the processing's start time)."""
        attributes = dict(self.attributes)
        attributes[semconv.MARKER_FOR_SPAN] = format(self.announced.span_id, "016x")
        marker = self.tracer.start_span(
            f"{self.step} started",
            context=trace.set_span_in_context(trace.NonRecordingSpan(self.announced)),
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=self.start_ns,
        )
        marker.end(end_time=self.start_ns)


class InFlight(Protocol):
    """Work the clock may announce: when (wall clock, ns) and how to build its marker."""

    _marker_due_ns: int

    def _start_marker(self) -> PendingMarker: ...


class MarkerClock:
    """One daemon thread emitting the start markers of work still in flight when due.

    Entering and leaving the set costs well under a microsecond and allocates nothing
    per consume. The thread sleeps until the earliest marker is due; with nothing in
    flight it looks again every ``_QUIET_TICK_S`` and only after a quiet second blocks
    until work arrives. Waking a blocked thread costs microseconds (a lock, a notify,
    a thread switch), so a busy consumer must never pay it per message.
    """

    def __init__(self) -> None:
        # Consumers add and discard themselves directly (``track`` and ``untrack`` spelled
        # out on the hot path): one set operation, and ``unblock`` only when blocked.
        self.in_flight: set[InFlight] = set()
        self._wake = threading.Event()
        self.blocked = True  # no thread yet: the first ``track`` starts it
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def track(self, work: InFlight) -> None:
        """Emit ``work``'s marker at ``work._marker_due_ns`` unless it is untracked first."""
        self.in_flight.add(work)
        if self.blocked:
            self.unblock()

    def untrack(self, work: InFlight) -> None:
        """``work`` has ended: no marker for it, if none was emitted yet."""
        self.in_flight.discard(work)

    def unblock(self) -> None:
        """Start the clock thread, or wake it from its quiet block."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(
                        target=self._run, name="tracebraid-start-markers", daemon=True
                    )
                    self.blocked = False
                    thread.start()
                    self._thread = thread
                    return
        self._wake.set()

    def _run(self) -> None:
        quiet = 0
        while True:
            in_flight = self.in_flight
            if not in_flight:
                quiet += 1
                if quiet < _QUIET_TICKS_BEFORE_BLOCKING:
                    time.sleep(_QUIET_TICK_S)
                    continue
                self.blocked = True
                if not in_flight:  # ``track`` adds before it looks at ``_blocked``
                    self._wake.wait()
                self._wake.clear()
                self.blocked = False
                quiet = 0
                continue
            quiet = 0
            now = time.time_ns()
            next_due: int | None = None
            # tuple() copies the set in one step under the GIL while consumers add to it.
            for work in tuple(in_flight):
                due = work._marker_due_ns
                if due <= now:
                    in_flight.discard(work)
                    # A marker that cannot be emitted must never stop the clock.
                    with contextlib.suppress(Exception):
                        marker = work._start_marker()
                        if marker.announced.is_valid:  # not for a no-op tracer's spans
                            marker.emit()
                elif next_due is None or due < next_due:
                    next_due = due
            if next_due is not None:
                time.sleep(max((next_due - now) / 1e9, _MIN_TICK_S))

    def _after_fork(self) -> None:
        self.in_flight = set()
        self._wake = threading.Event()
        self.blocked = True
        self._thread = None
        self._start_lock = threading.Lock()


CLOCK = MarkerClock()
"""The process's one marker clock."""
os.register_at_fork(after_in_child=CLOCK._after_fork)
