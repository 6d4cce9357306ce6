"""Celery: the seed's identities on every task, through Celery's own signals.

Beside the stock instrumentation (``opentelemetry-instrumentation-celery``, which makes
the ``apply_async/<task>`` producer and ``run/<task>`` consumer spans) and
``tracebraid.instrument()`` (the propagator and the span processor)::

    tracebraid.instrument()
    CeleryInstrumentor().instrument()            # use_span_links=True works too
    tracebraid.integrations.celery.instrument()

A task message is an event whose identity is the **task id**:

- **publish** (``before_task_publish``): the message carries ``x-event-id`` = its task
  id and, through tracebraid's propagator, the workflow's correlation ID and its cause
  (the task being run, whose message is the sending task's). A retry republishes the
  running task under the same id, and Celery drops custom headers on the way: the
  retry keeps the correlation and causation the task arrived with.
- **run** (``task_prerun``/``task_postrun``): the consumer span gets the event ID (the
  task id), the event name (``x-event-name`` when the sender named the event, else the
  task name), the **task name as the business step** (``tracebraid.step``), the
  causation ID (``x-causation-id``, else Celery's own ``parent_id``: the sending
  task's id), the correlation ID, and the **attempt** (``request.retries + 1``); the
  message becomes the one being processed (``tracebraid.current_processing()``).
- **retry** (``task_retry``): the attempt ends as ``retry`` with the reason recorded
  (the stock instrumentation leaves it OK); a **final failure** is its ERROR status.
- a task whose **worker is lost** mid-task never ends its span; the span processor's
  start marker has already shown it in flight.

With the propagator off (``tracebraid.instrument(propagator=False)``) no correlation
crosses the broker, so the lint reports the break (TB201); the task id, the step, the
attempt and Celery's ``parent_id`` are Celery's own and still known.

Example::

    >>> instrument()
    >>> instrument()   # twice is harmless
    >>> uninstrument()
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tracebraid import semconv
from tracebraid.errors import MissingExtraError
from tracebraid.instrument import uses_tracebraid_propagator
from tracebraid.model import AttributeValue
from tracebraid.propagator import TracebraidPropagator
from tracebraid.sdk import carriers as h
from tracebraid.sdk.stock import finished, restore

try:
    from celery import current_task, signals
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtraError("celery", "celery") from error

__all__ = ["TaskMessage", "instrument", "task_message", "uninstrument"]

_PROPAGATOR = TracebraidPropagator()
_lock = threading.Lock()
_connected = False


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """The identities of the task message a worker runs, read from its request."""

    event_id: str
    event_name: str
    step: str
    attempt: int
    correlation_id: str | None
    causation_id: str | None
    queue: str | None

    def attributes(self) -> dict[str, AttributeValue]:
        """The span attributes that say so (tracebraid's and the messaging conventions')."""
        found: dict[str, AttributeValue] = {
            # A start marker copies these: without an operation it would not be a consumer's.
            semconv.OPERATION_TYPE: "process",
            semconv.MESSAGE_ID: self.event_id,
            semconv.EVENT_NAME: self.event_name,
            semconv.STEP: self.step,
            # A task is its own consumer: the workers running it take its messages.
            semconv.CONSUMER_GROUP: self.step,
            semconv.ATTEMPT: self.attempt,
        }
        for key, value in (
            (semconv.CORRELATION_ID, self.correlation_id),
            (semconv.CAUSATION_ID, self.causation_id),
            (semconv.DESTINATION, self.queue),
        ):
            if value is not None:
                found[key] = value
        return found


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def task_message(task: Any) -> TaskMessage | None:
    """The message ``task`` (a Celery task, during its run) is running, ``None`` outside
    a run. The headers tracebraid's propagator wrote are attributes of Celery's request."""
    request = getattr(task, "request", None)
    task_id = _text(getattr(request, "id", None))
    if request is None or task_id is None:
        return None
    name = _text(getattr(task, "name", None)) or "celery-task"
    retries = getattr(request, "retries", 0)
    delivery = getattr(request, "delivery_info", None)
    queue = delivery.get("routing_key") if isinstance(delivery, Mapping) else None
    return TaskMessage(
        event_id=_text(getattr(request, h.EVENT_ID_HEADER, None)) or task_id,
        event_name=_text(getattr(request, h.EVENT_NAME_HEADER, None)) or name,
        step=name,
        attempt=retries + 1 if isinstance(retries, int) and retries >= 0 else 1,
        correlation_id=_text(getattr(request, h.CORRELATION_ID_HEADER, None)),
        # Celery carries the sending task's id itself: the cause, propagator or not.
        causation_id=_text(getattr(request, h.CAUSATION_ID_HEADER, None))
        or _text(getattr(request, "parent_id", None)),
        queue=_text(queue),
    )


def _running_span(kind: SpanKind) -> Span | None:
    """The current span when it is a recording span of ``kind`` (the stock one's)."""
    span = trace.get_current_span()
    if isinstance(span, ReadableSpan) and span.kind is kind and span.is_recording():
        return span
    return None


def _before_publish(headers: object = None, sender: object = None, **_: object) -> None:
    try:
        if not isinstance(headers, dict):
            return  # task protocol 1: nothing to carry the identities in
        task_id = _text(headers.get("id"))
        if task_id is None:
            return
        running = current_task
        request = getattr(running, "request", None) if running else None
        retrying = request is not None and getattr(request, "id", None) == task_id
        if retrying:
            _retrying(running, headers)
        headers.setdefault(h.EVENT_ID_HEADER, task_id)
        producer = _running_span(SpanKind.PRODUCER)
        if producer is not None:
            updates: dict[str, AttributeValue] = {}
            name = _text(headers.get(h.EVENT_NAME_HEADER)) or _text(sender)
            if name is not None:
                updates[semconv.EVENT_NAME] = name
            cause = _text(headers.get(h.CAUSATION_ID_HEADER))
            if retrying and cause is not None:
                # The processor named the running task as the cause: it is the message.
                updates[semconv.CAUSATION_ID] = cause
            producer.set_attributes(updates)
        if uses_tracebraid_propagator(propagate.get_global_textmap()):
            # Also without the stock instrumentation; it never overwrites what is there.
            _PROPAGATOR.inject(headers)
    except Exception:  # publishing must never fail because of tracing
        return


def _retrying(task: Any, headers: dict[str, Any]) -> None:
    """The running task republishes itself: Celery's ``retry``. The message keeps the
    identities it arrived with (Celery drops custom headers), and the attempt ends as a
    retry now: the stock instrumentation keys a run's span by task id, so a retry that
    starts before this attempt's postrun ends this attempt's span early."""
    message = task_message(task)
    if message is None:
        return
    for name, value in (
        (h.CORRELATION_ID_HEADER, message.correlation_id),
        (h.CAUSATION_ID_HEADER, message.causation_id),
        (h.EVENT_NAME_HEADER, message.event_name),
    ):
        if value is not None:
            headers.setdefault(name, value)
    span = _consumer_span()
    if span is not None:
        span.set_attribute(semconv.OUTCOME, "retry")
        span.set_status(Status(StatusCode.ERROR, "retried"))


def _consumer_span() -> Span | None:
    """The running task's consumer span: the current span, when a recording CONSUMER
    span (at prerun it is not there yet when the stock receivers come after these)."""
    return _running_span(SpanKind.CONSUMER)


def _stamp(task: object, *, restoring: bool) -> None:
    message = task_message(task)
    if message is None:
        return
    request = getattr(task, "request", None)
    for name, value in (
        (h.EVENT_ID_HEADER, message.event_id),
        (h.EVENT_NAME_HEADER, message.event_name),
        (h.CAUSATION_ID_HEADER, message.causation_id),
        (h.ATTEMPT_HEADER, str(message.attempt)),
    ):
        # The stock instrumentation extracts from the request: when its prerun comes
        # after this one, tracebraid's propagator reads these there.
        if value is not None and getattr(request, name, None) is None:
            setattr(request, name, value)
    span = _consumer_span()
    if span is not None:
        span.set_attributes(message.attributes())
    if restoring:
        restore(
            span if span is not None else trace.INVALID_SPAN,
            message.event_id,
            message.correlation_id,
            message.event_name,
        )


def _prerun(task: object = None, **_: object) -> None:
    try:
        _stamp(task, restoring=True)
    except Exception:  # tracing must never break the task
        return


def _postrun(task: object = None, **_: object) -> None:
    try:
        # When this runs before the stock instrumentation's prerun, its span is only
        # current now (and still open: the stock postrun ends it after this one).
        _stamp(task, restoring=False)
    except Exception:
        return
    finally:
        # A worker thread runs the next task, or the task's own caller goes on: neither
        # is a follow-up of this task's message.
        finished()


def _retry(reason: object = None, **_: object) -> None:
    try:
        span = _consumer_span()
        if span is None:
            return
        cause = getattr(reason, "exc", None) or reason
        span.set_attribute(semconv.OUTCOME, "retry")
        span.set_status(Status(StatusCode.ERROR, str(cause)))
        if isinstance(cause, BaseException):
            span.record_exception(cause)
    except Exception:
        return


_RECEIVERS = (
    (signals.before_task_publish, _before_publish),
    (signals.task_prerun, _prerun),
    (signals.task_postrun, _postrun),
    (signals.task_retry, _retry),
)


def instrument() -> None:
    """Connect tracebraid's receivers to Celery's signals (once; again is harmless).

    Call it beside ``tracebraid.instrument()`` and the stock ``CeleryInstrumentor``, in
    every process that sends or runs tasks; the order of the three does not matter.
    """
    global _connected
    with _lock:
        if _connected:
            return
        for signal, receiver in _RECEIVERS:
            signal.connect(receiver, weak=False)
        _connected = True


def uninstrument() -> None:
    """Disconnect what ``instrument`` connected."""
    global _connected
    with _lock:
        for signal, receiver in _RECEIVERS:
            signal.disconnect(receiver)
        _connected = False
