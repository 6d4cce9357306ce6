"""Start markers: in-flight work made visible before its span ends.

OpenTelemetry exports a span only when it ends, so work that is slow, stuck or lost
with its process would be invisible. A start marker is a tiny span, started and ended
at once, from the instrumentation scope ``semconv.START_MARKER_SCOPE``, child of the
span it announces, with ``tracebraid.marker.span_id`` naming that span and the same
identity attributes. The analysis reads a marker with no finished span as work in
flight (or stuck).

Why markers are deferred: a span that ends within a batch exporter's delay (5 s by
default) reaches the backend as soon as its marker would, so a marker for quick work
buys nothing and costs a third span per hop. With ``after_ms > 0`` the marker is
scheduled on one background clock thread and cancelled when processing ends first;
it still carries the processing's real start time. ``after_ms == 0`` emits at once.

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
from collections import deque
from collections.abc import Mapping

from opentelemetry import trace

from tracebraid import semconv
from tracebraid.model import AttributeValue

__all__ = ["MarkerClock", "PendingMarker", "schedule_start_marker"]

_MIN_TICK_S = 0.01  # the clock thread wakes at most 100 times a second


class PendingMarker:
    """A start marker waiting to be emitted; ``cancel`` once the real span has ended."""

    # Only small immutable things are kept: a pending marker must not keep the span (and
    # everything it references) alive for the garbage collector to walk.
    __slots__ = ("announced", "attributes", "cancelled", "due_ns", "start_ns", "step", "tracer")

    def __init__(
        self,
        tracer: trace.Tracer,
        step: str,
        announced: trace.SpanContext,
        attributes: Mapping[str, AttributeValue],
        start_ns: int,
        due_ns: int = 0,
    ) -> None:
        self.tracer = tracer
        self.step = step
        self.announced = announced
        self.attributes = attributes
        self.start_ns = start_ns
        self.due_ns = due_ns
        self.cancelled = False

    def cancel(self) -> None:
        """Do not emit: the span this marker announces has ended."""
        self.cancelled = True

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


class MarkerClock:
    """One daemon thread emitting the markers whose delay has passed, in due order.

    Every marker has the same delay, so due times arrive in order and a deque is
    enough; appending is thread-safe and costs well under a microsecond.
    """

    def __init__(self) -> None:
        self._queue: deque[PendingMarker] = deque()
        self._wake = threading.Event()
        self._idle = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def schedule(self, pending: PendingMarker) -> None:
        """Emit ``pending`` at its due time unless it is cancelled first."""
        self._queue.append(pending)
        if self._thread is None:
            self._start()
        if self._idle:
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name="tracebraid-start-markers", daemon=True
                )
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._idle = True
                if not queue:
                    self._wake.wait()
                self._wake.clear()
                self._idle = False
                continue
            wait_ns = queue[0].due_ns - time.monotonic_ns()
            if wait_ns > 0:
                time.sleep(max(wait_ns / 1e9, _MIN_TICK_S))
            now = time.monotonic_ns()
            while queue and queue[0].due_ns <= now:
                pending = queue.popleft()
                if not pending.cancelled:
                    # A marker that cannot be emitted must never stop the clock.
                    with contextlib.suppress(Exception):
                        pending.emit()

    def _after_fork(self) -> None:
        self._queue = deque()
        self._wake = threading.Event()
        self._idle = False
        self._thread = None
        self._start_lock = threading.Lock()


_clock = MarkerClock()
os.register_at_fork(after_in_child=_clock._after_fork)


def schedule_start_marker(pending: PendingMarker, after_ms: float) -> PendingMarker | None:
    """Emit now (``after_ms <= 0``) or schedule ``pending`` ``after_ms`` from now.

    Returns the scheduled marker (cancel it when the span ends), or None if emitted.
    """
    if after_ms <= 0:
        pending.emit()
        return None
    pending.due_ns = time.monotonic_ns() + int(after_ms * 1_000_000)
    _clock.schedule(pending)
    return pending
