"""``WorkflowSampler``: keep or drop whole workflows, decided by the correlation ID.

Trace-ID sampling breaks asynchronous workflows: a link-only or batch consumer starts
a new trace and is sampled on its own, so a kept workflow loses branches and a dropped
one leaves fragments. This sampler decides by the correlation ID every tracebraid span
carries as an attribute (and every other span finds in the baggage of its context), so
each branch, attempt and follow-up of one workflow, in every trace and every service,
is recorded or not together (``tracebraid.sampling.keeps``).

A span with no correlation anywhere falls back to the parent's decision, and a root to
the trace ID against the same ratio (OpenTelemetry's ``ParentBased(TraceIdRatioBased)``).
An unsampled span is OpenTelemetry's non-recording span: it still has a span context,
so the message still carries every identity (traceparent with the sampled flag off,
correlation, causation, event, attempt) at the cost of the hash.

``keep_retries=True`` also records, in a workflow sampled out, every attempt after the
first and every failed attempt, marked ``tracebraid.sampling.partial`` so the analysis
knows the workflow around them is missing (docs/sampling.md).

Kept spans of a workflow sampled below 100 % carry ``tracebraid.sampling.ratio``: the
analysis scales fleet figures by it.

Example::

    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> provider = TracerProvider(sampler=WorkflowSampler(0.1, keep_retries=True))
    >>> WorkflowSampler(0.25).get_description()
    'WorkflowSampler{0.25}'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    get_current_span,
)
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from tracebraid import semconv
from tracebraid.errors import ConfigurationError
from tracebraid.sampling import check_ratio, workflow_hash
from tracebraid.sdk.context import _BAGGAGE_KEY, _SPAN_KEY, BAGGAGE_CORRELATION_KEY, _random_bits

__all__ = ["WorkflowSampler", "dropped_span", "from_env_arg"]

_DROP = SamplingResult(Decision.DROP)
_RANDOM = 0x02  # W3C trace-flags: the trace ID is random (set by OpenTelemetry's SDK too)
_FLAGS = {0: TraceFlags(0), _RANDOM: TraceFlags(_RANDOM)}  # not sampled, by randomness
_KEEP = "failure"  # the value of SAMPLING_KEEP the SDK sets on a failed attempt


class WorkflowSampler(Sampler):
    """Sample whole workflows: ``ratio`` of correlation IDs, every span of each kept.

    ``keep_retries`` records retries and failures of dropped workflows too (marked
    partial). ``fallback`` decides spans that belong to no workflow (default:
    ``ParentBased(TraceIdRatioBased(ratio))``).

    Example::

        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> import tracebraid
        >>> provider = TracerProvider(sampler=tracebraid.WorkflowSampler(0.1))
    """

    def __init__(
        self,
        ratio: float = 1.0,
        *,
        keep_retries: bool = False,
        fallback: Sampler | None = None,
    ) -> None:
        self.ratio = check_ratio(ratio, "WorkflowSampler's ratio")
        self.keep_retries = keep_retries
        self._bound = int(self.ratio * 2**64)
        self._fallback = fallback or ParentBased(TraceIdRatioBased(self.ratio))
        # The decision per correlation ID, for the few most recent workflows: a hop
        # makes several spans (producer, consumer, marker) of one workflow in a row.
        self._recent: dict[str, bool] = {}

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """Keep or drop one span (OpenTelemetry calls this as each span starts)."""
        correlation = attributes.get(semconv.CORRELATION_ID) if attributes else None
        if correlation is None:
            # None means the current context (OpenTelemetry passes the caller's argument).
            found = otel_context.get_current() if parent_context is None else parent_context
            baggage = found.get(_BAGGAGE_KEY)
            if isinstance(baggage, Mapping):
                correlation = baggage.get(BAGGAGE_CORRELATION_KEY)
        if not isinstance(correlation, str) or not correlation:
            return self._fallback.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        state = _parent_state(parent_context)
        ratio = self.ratio
        if ratio >= 1.0:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)
        if self.kept(correlation):
            # With keep_retries a later attempt is kept whatever the workflow's fate:
            # it stands for itself alone (ratio 1), or fleet estimates count it twice.
            recorded = 1.0 if self.keep_retries and _later_attempt(attributes) else ratio
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE,
                {**(attributes or {}), semconv.SAMPLING_RATIO: recorded},
                state,
            )
        if self.keep_retries and attributes:
            if _later_attempt(attributes):
                recorded = 1.0
            elif attributes.get(semconv.SAMPLING_KEEP) == _KEEP:
                # A failed first attempt: the kept workflows' failures (weighed by the
                # ratio) already estimate it; it is kept to be seen, not counted.
                recorded = ratio
            else:
                return _DROP
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE,
                {**attributes, semconv.SAMPLING_RATIO: recorded, semconv.SAMPLING_PARTIAL: True},
                state,
            )
        return _DROP

    def kept(self, correlation: str) -> bool:
        """True when the workflow ``correlation`` is among those kept."""
        kept = self._recent.get(correlation)
        if kept is None:
            kept = workflow_hash(correlation) < self._bound
            recent = self._recent
            if len(recent) >= 64:
                recent.clear()
            recent[correlation] = kept
        return kept

    def drops(self, correlation: str, attempt: int = 1) -> bool:
        """True when every span of this workflow (at this attempt) would be dropped: the
        SDK's hot path asks this first and skips building a span nobody records."""
        if self.ratio >= 1.0 or (self.keep_retries and attempt > 1):
            return False
        return not self.kept(correlation)

    @staticmethod
    def dropped_span(parent_context: Context) -> NonRecordingSpan:
        """``dropped_span``, for the SDK's hot path (which does not import this module)."""
        return dropped_span(parent_context)

    def get_description(self) -> str:
        """The sampler's name and ratio, as OpenTelemetry's samplers describe themselves."""
        suffix = ",keep_retries" if self.keep_retries else ""
        return f"WorkflowSampler{{{self.ratio}{suffix}}}"


def dropped_span(parent_context: Context) -> NonRecordingSpan:
    """The span a dropped workflow's hop gets without asking OpenTelemetry's SDK: what the
    SDK makes for a dropped span (a non-recording span with a fresh span ID, in the
    parent's trace or a new one), so the message still carries valid trace context."""
    parent = cast("Span | None", parent_context.get(_SPAN_KEY))
    span_id = _random_bits(64) or 1
    if parent is not None:
        # SpanContext is a tuple: unpacked at once, not through six properties.
        trace_id, _, _, flags, state, valid = parent.get_span_context()
        if valid:
            context = SpanContext(trace_id, span_id, False, _FLAGS[flags & _RANDOM], state)
            return NonRecordingSpan(context)
    trace_id = _random_bits(128) or 1
    return NonRecordingSpan(SpanContext(trace_id, span_id, False, _FLAGS[_RANDOM]))


def _later_attempt(attributes: Mapping[str, object] | None) -> bool:
    """An attempt after the first (its number is on the consumer span as it starts)."""
    attempt = attributes.get(semconv.ATTEMPT) if attributes else None
    return isinstance(attempt, int) and not isinstance(attempt, bool) and attempt > 1


def _parent_state(parent_context: Context | None) -> TraceState | None:
    parent = get_current_span(parent_context).get_span_context()
    return parent.trace_state if parent.is_valid else None


def from_env_arg(arg: str) -> WorkflowSampler:
    """The sampler ``OTEL_TRACES_SAMPLER=tracebraid_workflow`` builds from its argument.

    ``OTEL_TRACES_SAMPLER_ARG`` is the ratio, optionally followed by ``,keep_retries``
    (``0.1``, ``0.1,keep_retries``); empty means 1.0, as for OpenTelemetry's own.

    Example::

        >>> from_env_arg("0.1,keep_retries").get_description()
        'WorkflowSampler{0.1,keep_retries}'
    """
    parts = [p.strip() for p in arg.split(",") if p.strip()]
    ratio = 1.0
    keep_retries = False
    for index, part in enumerate(parts):
        if part in ("keep_retries", "keep_retries=true"):
            keep_retries = True
        elif index == 0:
            ratio = check_ratio(part.removeprefix("ratio="), "OTEL_TRACES_SAMPLER_ARG's ratio")
        else:
            raise ConfigurationError(
                f"OTEL_TRACES_SAMPLER_ARG={arg!r}: unknown option {part!r}; "
                "expected the ratio, then optionally keep_retries (e.g. '0.1,keep_retries')"
            )
    return WorkflowSampler(ratio, keep_retries=keep_retries)
