"""Business steps: INTERNAL spans named in business terms (``reserve-inventory``).

``step`` works as a decorator on sync and async functions and as a sync or async
context manager. One ``step`` object may be entered by many tasks at once: the open
span lives in the current context, not on the object.

Example::

    >>> @step("reserve-inventory")
    ... def reserve(order: str) -> str:
    ...     return order
    >>> reserve("order_441")
    'order_441'
    >>> with step("authorize-payment"):
    ...     pass
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from contextvars import Token
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tracebraid import semconv
from tracebraid.model import Attributes, AttributeValue
from tracebraid.sdk import _tracers
from tracebraid.sdk.context import current_correlation_id

__all__ = ["Step", "end_step_span", "start_step_span", "step"]

P = ParamSpec("P")
R = TypeVar("R")

# Open step spans of the current context, innermost last: (span, otel token).
_open: contextvars.ContextVar[tuple[tuple[Span, Token[Context]], ...]] = contextvars.ContextVar(
    "tracebraid_open_steps", default=()
)


def start_step_span(
    name: str,
    attributes: Attributes | None,
    provider: trace.TracerProvider | None,
    extra: dict[str, AttributeValue] | None = None,
) -> tuple[Span, Token[Context]]:
    """Start an INTERNAL span ``name`` as the current span; returns (span, token)."""
    span_attributes: dict[str, AttributeValue] = {semconv.STEP: name}
    correlation = current_correlation_id()
    if correlation is not None:
        span_attributes[semconv.CORRELATION_ID] = correlation
    if extra:
        span_attributes.update(extra)
    if attributes:
        span_attributes.update(attributes)
    span = _tracers.tracers(provider).spans.start_span(
        name,
        kind=SpanKind.INTERNAL,
        attributes=span_attributes,
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    return span, token


def end_step_span(span: Span, token: Token[Context], exc: BaseException | None) -> None:
    """Record ``exc`` (if any) with ERROR status, end the span and restore the context."""
    try:
        if exc is not None:
            span.record_exception(exc, escaped=True)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()
    finally:
        otel_context.detach(token)


class Step:
    """A business step: decorator and (async) context manager. See ``step``."""

    __slots__ = ("_attributes", "_provider", "name")

    def __init__(
        self,
        name: str,
        *,
        attributes: Attributes | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.name = name
        self._attributes = attributes
        self._provider = tracer_provider

    def __enter__(self) -> Span:
        span, token = start_step_span(self.name, self._attributes, self._provider)
        _open.set((*_open.get(), (span, token)))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frames = _open.get()
        span, token = frames[-1]
        _open.set(frames[:-1])
        end_step_span(span, token, exc)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        name, attributes, provider = self.name, self._attributes, self._provider
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                span, token = start_step_span(name, attributes, provider)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    end_step_span(span, token, exc)
                    raise
                end_step_span(span, token, None)
                return result

            return cast(Callable[P, Any], run_async)

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> Any:
            span, token = start_step_span(name, attributes, provider)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                end_step_span(span, token, exc)
                raise
            end_step_span(span, token, None)
            return result

        return run


def step(
    name: str,
    *,
    attributes: Attributes | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Step:
    """A business-named INTERNAL span: ``@step("x")``, ``with step("x"):``, ``async with``."""
    return Step(name, attributes=attributes, tracer_provider=tracer_provider)
