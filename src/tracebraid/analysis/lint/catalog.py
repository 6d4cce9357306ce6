"""Every lint rule's stable ID, default severity, and why it matters: the seed's mistakes.

IDs are grouped by the mistake they catch and never reused:

=====  ==========================  ========  ============================================
ID     name                        severity  what
=====  ==========================  ========  ============================================
TB101  broken-causality            error     a consumer started a new trace although its
                                             event was published in another one
TB102  orphan-consumer             error     a consumer with neither parent nor link, its
                                             producer nowhere to be found
TB201  lost-correlation            error     a follow-up event lost the correlation ID
                                             its cause carried
TB301  event-id-is-trace-id        warning   an event ID equal to its trace ID
TB302  event-id-is-correlation-id  warning   an event ID equal to its correlation ID
TB303  event-id-reused             error     one event ID used for different event names
TB304  correlation-id-is-trace-id  warning   a correlation ID that is just a trace ID,
                                             in a workflow of several traces
TB401  required-field-missing      warning   a field the conventions require is missing
TB501  technical-span-name         warning   a consumer span named after the library, not
                                             the business step
TB601  hidden-retries              warning   an event processed again with no attempt
                                             numbers telling the attempts apart
TB602  missing-attempts            warning   an attempt > 1 whose earlier attempts are
                                             missing
TB701  sync-only-messaging         warning   a message sent as a plain HTTP/RPC call, with
                                             no messaging span or attributes
=====  ==========================  ========  ============================================

Example::

    >>> RULES_BY_ID["TB101"].name
    'broken-causality'
"""

from __future__ import annotations

from collections.abc import Mapping

from tracebraid.analysis.lint.findings import RuleSpec, Severity

__all__ = [
    "BROKEN_CAUSALITY",
    "CATALOG",
    "CORRELATION_IS_TRACE_ID",
    "EVENT_ID_IS_CORRELATION_ID",
    "EVENT_ID_IS_TRACE_ID",
    "EVENT_ID_REUSED",
    "HIDDEN_RETRIES",
    "LOST_CORRELATION",
    "MISSING_ATTEMPTS",
    "ORPHAN_CONSUMER",
    "REQUIRED_FIELD_MISSING",
    "RULES_BY_ID",
    "SYNC_ONLY_MESSAGING",
    "TECHNICAL_SPAN_NAME",
]

_ISLANDS = (
    "Operators see isolated processing islands and cannot reconstruct the business path "
    "from the user action to this work (the seed's design-review case: broken causality)."
)

BROKEN_CAUSALITY = RuleSpec(
    "TB101",
    "broken-causality",
    Severity.ERROR,
    "consumer started a new trace although its event was published in another trace",
    _ISLANDS + " tracebraid could stitch it back only by event ID; other backends cannot.",
    "Inject the trace context (W3C traceparent) into the message headers or envelope when "
    "publishing (tracebraid.sdk.publishing / EventBus.publish do), and start the consumer "
    "span from the extracted context, or at least link to it.",
)
ORPHAN_CONSUMER = RuleSpec(
    "TB102",
    "orphan-consumer",
    Severity.ERROR,
    "consumer span with neither parent nor link, its producer nowhere in the spans",
    _ISLANDS + " Nothing ties this work to its cause, not even an event ID that was "
    "published elsewhere.",
    "Make the producer carry the trace context and event ID in the message, and start the "
    "consumer span from the extracted context (child, or link for batches).",
)
LOST_CORRELATION = RuleSpec(
    "TB201",
    "lost-correlation",
    Severity.ERROR,
    "follow-up event lost the correlation ID its cause carried",
    "The correlation ID is what groups every trace of one business workflow; a follow-up "
    "without it (or with a new one) falls out of the workflow, and its downstream work "
    "disappears from every query by order or request.",
    "Publish follow-up events inside the consume (the SDK carries the correlation ID and "
    "causation forward), or copy the incoming correlation ID onto the outgoing message "
    "(header x-correlation-id / baggage, attribute messaging.message.conversation_id).",
)
EVENT_ID_IS_TRACE_ID = RuleSpec(
    "TB301",
    "event-id-is-trace-id",
    Severity.WARNING,
    "event ID equal to its trace ID",
    "One ID made to mean both one event record and the whole causal path: every event of "
    "the trace then has the same ID, so retries, duplicates and deliveries cannot be told "
    "apart.",
    "Give every published event its own ID (tracebraid.sdk.new_event_id) and keep the "
    "trace ID in traceparent.",
)
EVENT_ID_IS_CORRELATION_ID = RuleSpec(
    "TB302",
    "event-id-is-correlation-id",
    Severity.WARNING,
    "event ID equal to its correlation ID",
    "One ID made to mean both one event record and the whole business workflow: the next "
    "event of the same workflow would get the same ID, and idempotency checks or delivery "
    "matching would treat different events as one.",
    "Mint a new event ID per published event (tracebraid.sdk.new_event_id) and carry the "
    "workflow's ID separately as the correlation ID.",
)
EVENT_ID_REUSED = RuleSpec(
    "TB303",
    "event-id-reused",
    Severity.ERROR,
    "one event ID used for different event names",
    "An event ID must name one event record. Reused across events, deliveries are matched "
    "to the wrong producer and deduplication drops events that were never processed.",
    "Mint a fresh event ID for every event published; do not derive it from a business "
    "key (order ID) that several events share.",
)
CORRELATION_IS_TRACE_ID = RuleSpec(
    "TB304",
    "correlation-id-is-trace-id",
    Severity.WARNING,
    "correlation ID that is just a trace ID, in a workflow spanning several traces",
    "Once a workflow spans several traces (link-only hand-offs, batches, scheduled steps), "
    "a correlation ID copied from one trace's ID reads like that trace's, and tools that "
    "follow trace IDs and correlation IDs differently disagree about the workflow.",
    "Use a business key (order_441) or a minted ID (tracebraid.sdk.new_correlation_id) as "
    "the correlation ID, set once at the edge (tracebraid.sdk.correlation).",
)
REQUIRED_FIELD_MISSING = RuleSpec(
    "TB401",
    "required-field-missing",
    Severity.WARNING,
    "field required by the conventions missing",
    "The conventions require these identities so every team's spans can be joined into one "
    "causal graph; without them the analysis falls back to guesses or stops.",
    "Set the missing identities on the spans (the SDK's publishing/consuming set them all); "
    "or relax the service's requiredFields in the conventions file if it cannot have them.",
)
TECHNICAL_SPAN_NAME = RuleSpec(
    "TB501",
    "technical-span-name",
    Severity.WARNING,
    "consumer span named in technical terms only",
    "Operators diagnosing a business failure look for the step (reserve-inventory), not "
    "for 'process' or 'orders receive'; library-default names make every consumer look "
    "alike.",
    "Name consumer spans after the business step, verb-noun (reserve-inventory): pass "
    "step= to tracebraid.sdk.consuming / EventBus.consumer, or rename the span.",
)
HIDDEN_RETRIES = RuleSpec(
    "TB601",
    "hidden-retries",
    Severity.WARNING,
    "event processed repeatedly with no attempt numbers telling the attempts apart",
    "Retries that look like first attempts hide which step retried, how often, and why: "
    "the diagnosis clue the seed says must stay visible.",
    "Record the attempt on each processing span (tracebraid.attempt, from the broker's "
    "delivery count: EventBus does this; tracebraid.sdk.consuming(attempt=...)).",
)
MISSING_ATTEMPTS = RuleSpec(
    "TB602",
    "missing-attempts",
    Severity.WARNING,
    "attempt > 1 whose earlier attempts are missing",
    "The failed attempts carry the errors and the back-off that explain the delay; without "
    "them a retry looks like a slow first attempt.",
    "Export a span for every attempt, failed ones included (end the span on failure rather "
    "than dropping it; do not sample retries away).",
)
SYNC_ONLY_MESSAGING = RuleSpec(
    "TB701",
    "sync-only-messaging",
    Severity.WARNING,
    "message sent as a plain HTTP/RPC call, with no messaging span or attributes",
    "Synchronous tracing patterns are not enough for event-driven flow: a publish recorded "
    "as an HTTP call has no event ID, destination or consumer, so the deliveries it causes "
    "cannot be joined to it.",
    "Publish through a messaging client with a PRODUCER span and messaging.* attributes "
    "(tracebraid.sdk.publishing around the call), and carry trace context in the message.",
)

CATALOG: tuple[RuleSpec, ...] = (
    BROKEN_CAUSALITY,
    ORPHAN_CONSUMER,
    LOST_CORRELATION,
    EVENT_ID_IS_TRACE_ID,
    EVENT_ID_IS_CORRELATION_ID,
    EVENT_ID_REUSED,
    CORRELATION_IS_TRACE_ID,
    REQUIRED_FIELD_MISSING,
    TECHNICAL_SPAN_NAME,
    HIDDEN_RETRIES,
    MISSING_ATTEMPTS,
    SYNC_ONLY_MESSAGING,
)
"""Every rule, in ID order."""

RULES_BY_ID: Mapping[str, RuleSpec] = {spec.id: spec for spec in CATALOG}
