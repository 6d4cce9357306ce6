"""Retries that stay visible: every attempt is its own span, back-off is a visible gap.

``retrying`` decorates a sync or async function. Each call makes up to ``attempts``
attempts; each attempt is an INTERNAL span named after the business step with
``tracebraid.attempt``, ``tracebraid.outcome`` (``retry`` when another attempt follows,
``error`` when it was the last, ``ok``), the exception, and ``tracebraid.backoff_ms``
on the attempts that are retried. The sleep happens between the spans, so the gap
between attempts in a trace *is* the back-off. Nothing merges attempts.

Example::

    >>> calls = []
    >>> @retrying("send-warehouse-webhook", attempts=3, backoff=0)
    ... def send() -> str:
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise TimeoutError("warehouse did not answer")
    ...     return "sent"
    >>> send(), len(calls)
    ('sent', 3)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from contextvars import Token
from typing import Any, ParamSpec, TypeVar, cast, overload

from opentelemetry import trace
from opentelemetry.context import Context

from tracebraid import semconv
from tracebraid.errors import ConfigurationError
from tracebraid.sdk.context import Outcome
from tracebraid.sdk.step import end_step_span, start_step_span

__all__ = ["Backoff", "Retrying", "exponential_backoff", "retrying"]

P = ParamSpec("P")
R = TypeVar("R")

Backoff = Callable[[int], float]
"""Milliseconds to wait after failed attempt number ``n`` (1-based) before the next."""


def exponential_backoff(
    base_ms: float = 100.0, factor: float = 2.0, max_ms: float = 30_000.0
) -> Backoff:
    """``base_ms``, then times ``factor`` per attempt, capped at ``max_ms``.

    Example::

        >>> [exponential_backoff(200)(n) for n in (1, 2, 3)]
        [200.0, 400.0, 800.0]
    """

    def delay(attempt: int) -> float:
        return float(min(max_ms, base_ms * factor ** (attempt - 1)))

    return delay


def _constant(ms: float) -> Backoff:
    def delay(attempt: int) -> float:
        return ms

    return delay


class Retrying:
    """The ``retrying`` decorator; see there."""

    __slots__ = ("_attempts", "_backoff", "_provider", "_retry_on", "step")

    def __init__(
        self,
        step: str,
        *,
        attempts: int,
        backoff: float | Backoff,
        retry_on: tuple[type[BaseException], ...],
        tracer_provider: trace.TracerProvider | None,
    ) -> None:
        if attempts < 1:
            raise ConfigurationError(f"retrying({step!r}) needs attempts >= 1, got {attempts}")
        self.step = step
        self._attempts = attempts
        self._backoff: Backoff = backoff if callable(backoff) else _constant(float(backoff))
        self._retry_on = retry_on
        self._provider = tracer_provider

    def _failed(
        self, span: trace.Span, token: Token[Context], exc: BaseException, attempt: int
    ) -> float:
        """End a failed attempt's span; the back-off in seconds, or -1 to give up."""
        retry = isinstance(exc, self._retry_on) and attempt < self._attempts
        delay_ms = self._backoff(attempt) if retry else 0.0
        span.set_attribute(semconv.OUTCOME, Outcome.RETRY.value if retry else Outcome.ERROR.value)
        if retry:
            span.set_attribute(semconv.BACKOFF_MS, delay_ms)
        end_step_span(span, token, exc)
        return delay_ms / 1000.0 if retry else -1.0

    def _start(self, attempt: int) -> tuple[trace.Span, Token[Context]]:
        return start_step_span(self.step, None, self._provider, {semconv.ATTEMPT: attempt})

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                attempt = 1
                while True:
                    span, token = self._start(attempt)
                    try:
                        result = await fn(*args, **kwargs)
                    except Exception as exc:
                        delay = self._failed(span, token, exc, attempt)
                        if delay < 0:
                            raise
                        await asyncio.sleep(delay)
                        attempt += 1
                        continue
                    except BaseException as exc:  # cancellation: record it, never retry
                        span.set_attribute(semconv.OUTCOME, Outcome.ERROR.value)
                        end_step_span(span, token, exc)
                        raise
                    span.set_attribute(semconv.OUTCOME, Outcome.OK.value)
                    end_step_span(span, token, None)
                    return result

            return cast(Callable[P, Any], run_async)

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> Any:
            attempt = 1
            while True:
                span, token = self._start(attempt)
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    delay = self._failed(span, token, exc, attempt)
                    if delay < 0:
                        raise
                    time.sleep(delay)
                    attempt += 1
                    continue
                except BaseException as exc:
                    span.set_attribute(semconv.OUTCOME, Outcome.ERROR.value)
                    end_step_span(span, token, exc)
                    raise
                span.set_attribute(semconv.OUTCOME, Outcome.OK.value)
                end_step_span(span, token, None)
                return result

        return run


def retrying(
    step: str,
    *,
    attempts: int = 3,
    backoff: float | Backoff | None = None,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    tracer_provider: trace.TracerProvider | None = None,
) -> Retrying:
    """Retry a sync or async function up to ``attempts`` times as business step ``step``.

    ``backoff`` is milliseconds (a number, or a function of the failed attempt number);
    the default is ``exponential_backoff()`` (100 ms, 200 ms, ...). Only exceptions in
    ``retry_on`` are retried; others fail at once with outcome ``error``.
    """
    return Retrying(
        step,
        attempts=attempts,
        backoff=exponential_backoff() if backoff is None else backoff,
        retry_on=retry_on,
        tracer_provider=tracer_provider,
    )
