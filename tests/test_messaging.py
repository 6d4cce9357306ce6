from __future__ import annotations

import pytest

import tracebraid
import tracebraid.analysis
from tracebraid import semconv
from tracebraid.messaging import (
    AttemptOutcome,
    ConsumerIdentity,
    Role,
    is_dead_letter_destination,
    normalize,
)
from tracebraid.model import (
    AttributeValue,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    StatusCode,
    TraceId,
)


def make(
    attributes: dict[str, AttributeValue] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    status: StatusCode = StatusCode.UNSET,
    status_message: str = "",
    events: tuple[SpanEvent, ...] = (),
    name: str = "work",
    service: str = "svc",
    scope: str = "",
) -> Span:
    return Span(
        trace_id=TraceId("4bf92f3577b34da6a3ce929d0e0e4736"),
        span_id=SpanId("00f067aa0ba902b7"),
        parent_span_id=None,
        name=name,
        kind=kind,
        start_ns=1,
        end_ns=2,
        service=service,
        status=status,
        status_message=status_message,
        attributes=attributes or {},
        events=events,
        scope=scope,
    )


@pytest.mark.parametrize(
    ("operation", "kind", "role"),
    [
        ("create", SpanKind.INTERNAL, Role.PRODUCER),
        ("send", SpanKind.CLIENT, Role.PRODUCER),
        ("publish", SpanKind.PRODUCER, Role.PRODUCER),
        ("receive", SpanKind.CONSUMER, Role.CONSUMER),
        ("process", SpanKind.INTERNAL, Role.CONSUMER),
        ("deliver", SpanKind.CONSUMER, Role.CONSUMER),
        ("Process", SpanKind.CONSUMER, Role.CONSUMER),
        ("settle", SpanKind.CONSUMER, Role.OTHER),
        (None, SpanKind.PRODUCER, Role.PRODUCER),
        (None, SpanKind.CONSUMER, Role.CONSUMER),
        (None, SpanKind.INTERNAL, Role.INTERNAL),
        (None, SpanKind.SERVER, Role.OTHER),
    ],
)
@pytest.mark.parametrize("key", ["messaging.operation.type", "messaging.operation"])
def test_role_comes_from_the_operation_of_either_generation_then_the_kind(
    operation: str | None, kind: SpanKind, role: Role, key: str
) -> None:
    attributes: dict[str, AttributeValue] = {key: operation} if operation else {}
    assert normalize(make(attributes, kind=kind)).role is role


@pytest.mark.parametrize(
    "keys",
    [
        ("messaging.destination.name", "messaging.message.id", "messaging.consumer.group.name",
         "messaging.message.conversation_id"),
        ("messaging.destination", "messaging.message_id", "messaging.kafka.consumer.group",
         "messaging.conversation_id"),
    ],
)  # fmt: skip
def test_identities_are_read_from_current_and_older_keys(keys: tuple[str, ...]) -> None:
    destination, message_id, group, conversation = keys
    view = normalize(
        make(
            {destination: "orders", message_id: "evt_1", group: "billing", conversation: "o_9"},
            kind=SpanKind.CONSUMER,
        )
    )
    assert (view.destination, view.event_id, view.consumer, view.correlation_id) == (
        "orders",
        "evt_1",
        "billing",
        "o_9",
    )
    assert view.consumer_identified_by is ConsumerIdentity.GROUP


def test_consumer_without_group_is_identified_by_service_and_destination_and_says_so() -> None:
    view = normalize(
        make({"messaging.destination": "orders"}, kind=SpanKind.CONSUMER, service="inventory")
    )
    assert view.consumer == "inventory:orders"
    assert view.consumer_identified_by is ConsumerIdentity.SERVICE_DESTINATION
    bare = normalize(make(kind=SpanKind.CONSUMER, service="inventory", name="on-order"))
    assert (bare.consumer, bare.consumer_identified_by) == (
        "inventory:on-order",
        ConsumerIdentity.SERVICE_NAME,
    )


def test_producers_have_no_consumer_name() -> None:
    assert (
        normalize(make({"messaging.destination": "orders"}, kind=SpanKind.PRODUCER)).consumer
        is None
    )


@pytest.mark.parametrize(
    ("attributes", "attempt"),
    [
        ({semconv.ATTEMPT: 3}, 3),
        ({semconv.ATTEMPT: "2"}, 2),
        ({"celery.retries": 0}, 1),
        ({"celery.retries": 2}, 3),
        ({"messaging.gcp_pubsub.message.delivery_attempt": 4}, 4),
        ({}, None),
        ({semconv.ATTEMPT: "many"}, None),
        # As the OpenTelemetry Collector's ClickHouse exporter stores them: strings.
        ({semconv.ATTEMPT: " 3 "}, 3),
        ({semconv.ATTEMPT: "2.0"}, 2),
        ({semconv.ATTEMPT: 2.0}, 2),
        ({semconv.ATTEMPT: "2.5"}, None),
        ({semconv.ATTEMPT: "nan"}, None),
        ({"celery.retries": "1"}, 2),
        ({"messaging.gcp_pubsub.message.delivery_attempt": "5"}, 5),
        # Attempts count from 1 (celery.retries from 0): anything less is not a number.
        ({semconv.ATTEMPT: 0}, None),
        ({semconv.ATTEMPT: "-1"}, None),
        ({"celery.retries": -1}, None),
    ],
)
def test_attempt_numbers_from_tracebraid_celery_or_nothing(
    attributes: dict[str, AttributeValue], attempt: int | None
) -> None:
    assert normalize(make(attributes, kind=SpanKind.CONSUMER)).attempt == attempt


@pytest.mark.parametrize(
    ("attributes", "status", "outcome"),
    [
        ({}, StatusCode.UNSET, AttemptOutcome.OK),
        ({}, StatusCode.OK, AttemptOutcome.OK),
        ({}, StatusCode.ERROR, AttemptOutcome.ERROR),
        ({semconv.OUTCOME: "retry"}, StatusCode.ERROR, AttemptOutcome.RETRY),
        ({semconv.OUTCOME: "dead_letter"}, StatusCode.ERROR, AttemptOutcome.DEAD_LETTER),
        ({semconv.DEAD_LETTER: True}, StatusCode.UNSET, AttemptOutcome.DEAD_LETTER),
        ({semconv.OUTCOME: "nonsense"}, StatusCode.ERROR, AttemptOutcome.ERROR),
        ({semconv.OUTCOME: " Retry "}, StatusCode.ERROR, AttemptOutcome.RETRY),
        ({semconv.DEAD_LETTER: "true"}, StatusCode.ERROR, AttemptOutcome.DEAD_LETTER),
        ({semconv.DEAD_LETTER: "True"}, StatusCode.ERROR, AttemptOutcome.DEAD_LETTER),
        ({semconv.DEAD_LETTER: "false"}, StatusCode.ERROR, AttemptOutcome.ERROR),
    ],
)
def test_outcome(
    attributes: dict[str, AttributeValue], status: StatusCode, outcome: AttemptOutcome
) -> None:
    assert normalize(make(attributes, status=status)).outcome is outcome


def test_error_prefers_the_exception_event_then_the_status_message() -> None:
    exception = SpanEvent(
        "exception", 5, {"exception.type": "TimeoutError", "exception.message": "too slow"}
    )
    with_event = make(status=StatusCode.ERROR, status_message="boom", events=(exception,))
    assert normalize(with_event).error == "TimeoutError: too slow"
    assert normalize(make(status=StatusCode.ERROR, status_message="boom")).error == "boom"
    assert normalize(make(status=StatusCode.ERROR)).error == "error (no message recorded)"
    assert normalize(make(status_message="ignored on success")).error is None


@pytest.mark.parametrize(
    ("destination", "dead"),
    [
        ("orders.dlq", True),
        ("orders-DLQ", True),
        ("orders_dlx", True),
        ("orders.dead-letter", True),
        ("dlq", True),
        ("orders", False),
        ("dlq-monitor.events", False),
        ("", False),
        (None, False),
    ],
)
def test_dead_letter_destinations(destination: str | None, dead: bool) -> None:
    assert is_dead_letter_destination(destination) is dead


def test_start_markers_name_the_span_they_announce() -> None:
    marker = make({semconv.MARKER_FOR_SPAN: "1111111111111111"}, scope=semconv.START_MARKER_SCOPE)
    assert normalize(marker).marker_for == "1111111111111111"
    assert normalize(make()).marker_for is None


def test_step_is_the_business_name_when_given() -> None:
    assert normalize(make({semconv.STEP: "reserve-inventory"}, name="orders process")).step == (
        "reserve-inventory"
    )
    assert normalize(make(name="orders process")).step == "orders process"


def test_one_outcome_vocabulary_what_the_sdk_writes_the_analysis_reads() -> None:
    # The SDK's Outcome is what a consumer writes (tracebraid.outcome); the analysis's
    # AttemptOutcome is how an attempt stands, which may also be "in flight". No second
    # enum called Outcome: `attempt.outcome is tracebraid.Outcome.OK` would silently fail.
    assert getattr(tracebraid.analysis, "Outcome", tracebraid.Outcome) is tracebraid.Outcome
    for written in tracebraid.Outcome:
        view = normalize(make({semconv.OUTCOME: written.value}, status=StatusCode.ERROR))
        assert view.outcome is AttemptOutcome(written.value)
    assert {o.value for o in AttemptOutcome} - {o.value for o in tracebraid.Outcome} == {
        AttemptOutcome.IN_FLIGHT.value
    }


@pytest.mark.parametrize("flag", [True, "true", "TRUE"])
def test_a_dead_letter_flag_as_text_marks_the_span(flag: AttributeValue) -> None:
    view = normalize(make({semconv.DEAD_LETTER: flag}, kind=SpanKind.CONSUMER))
    assert view.dead_letter and view.outcome is AttemptOutcome.DEAD_LETTER
