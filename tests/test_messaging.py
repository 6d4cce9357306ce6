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
    is_retry_route,
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


def test_consumer_without_group_is_identified_by_its_service_never_its_destination() -> None:
    # A redelivery through a dead-letter exchange arrives from another destination: the
    # consumer's name must not change with it.
    names = {
        normalize(
            make({"messaging.destination": exchange}, kind=SpanKind.CONSUMER, service="inventory",
                 name=f"{exchange} receive")
        ).consumer
        for exchange in ("orders", "orders.retry")
    }  # fmt: skip
    assert names == {"inventory"}
    bare = normalize(make(kind=SpanKind.CONSUMER, service="inventory", name="on-order"))
    assert (bare.consumer, bare.consumer_identified_by) == ("inventory", ConsumerIdentity.SERVICE)


@pytest.mark.parametrize(
    ("attributes", "name", "consumer"),
    [
        ({"messaging.destination.subscription.name": "reserve"}, "x", "inventory:reserve"),
        ({"messaging.rabbitmq.queue": "reserve"}, "x", "inventory:reserve"),
        # amqplib names its consumer span after the queue it reads.
        ({"messaging.destination": "orders"}, "reserve process", "inventory:reserve"),
    ],
)
def test_a_consumer_without_group_is_named_by_its_queue_when_known(
    attributes: dict[str, AttributeValue], name: str, consumer: str
) -> None:
    view = normalize(make(attributes, kind=SpanKind.CONSUMER, service="inventory", name=name))
    assert (view.consumer, view.consumer_identified_by) == (consumer, ConsumerIdentity.QUEUE)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"messaging.message.id": "evt_1"}, [("evt_1", "message_id", "strong")]),
        ({"messaging.message_id": "evt_1"}, [("evt_1", "message_id", "strong")]),
        ({"cloudevents.event_id": "ce-1"}, [("ce-1", "cloudevents", "strong")]),
        ({"celery.task_id": "t-1", "messaging.message.id": "t-1"},
         [("t-1", "message_id", "strong")]),
        (
            {"messaging.destination.name": "orders", "messaging.kafka.message.offset": 7,
             "messaging.destination.partition.id": "0", "messaging.message.id": "orders.0.7"},
            [("orders.0.7", "message_id", "strong"),
             ("kafka:orders/0@7", "kafka_offset", "strong")],
        ),
        (
            {"messaging.destination": "orders", "messaging.kafka.offset": "7",
             "messaging.kafka.partition": 0, "messaging.kafka.message.key": "order-1"},
            [("kafka:orders/0@7", "kafka_offset", "strong"), ("order-1", "kafka_key", "weak")],
        ),
        # A key alone names no single message.
        ({"messaging.kafka.message.key": "order-1"}, [("order-1", "kafka_key", "weak")]),
        ({"messaging.kafka.message.offset": 7}, []),  # an offset without its partition
    ],
)  # fmt: skip
def test_message_identities_from_every_source_with_their_strength(
    attributes: dict[str, AttributeValue], expected: list[tuple[str, str, str]]
) -> None:
    view = normalize(make(attributes, kind=SpanKind.CONSUMER))
    assert [(i.value, i.source.value, i.strength.value) for i in view.identities] == expected
    strong = [value for value, _, strength in expected if strength == "strong"]
    assert view.event_id == (strong[0] if strong else None)


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
        # Celery: a RETRY run failed (status UNSET); FAILURE failed for good.
        ({"celery.state": "RETRY"}, StatusCode.UNSET, AttemptOutcome.RETRY),
        ({"celery.state": "FAILURE"}, StatusCode.ERROR, AttemptOutcome.ERROR),
        ({"celery.state": "SUCCESS"}, StatusCode.UNSET, AttemptOutcome.OK),
    ],
)
def test_outcome(
    attributes: dict[str, AttributeValue], status: StatusCode, outcome: AttemptOutcome
) -> None:
    assert normalize(make(attributes, status=status)).outcome is outcome


def test_an_exception_event_or_a_nack_message_is_a_failure_even_with_an_unset_status() -> None:
    exception = SpanEvent("exception", 5, {"exception.type": "KeyError"})
    assert normalize(make(events=(exception,))).outcome is AttemptOutcome.ERROR
    nacked = make(kind=SpanKind.CONSUMER, status_message="nack called on message")
    assert normalize(nacked).outcome is AttemptOutcome.ERROR


@pytest.mark.parametrize(
    "scope",
    [
        "opentelemetry.instrumentation.aiokafka",
        "opentelemetry.instrumentation.kafka",
        "opentelemetry.instrumentation.confluent_kafka",
    ],
)
def test_a_receive_only_consumer_span_has_an_unknown_outcome_never_ok(scope: str) -> None:
    view = normalize(make({"messaging.operation.type": "receive"}, kind=SpanKind.CONSUMER,
                          scope=scope))  # fmt: skip
    assert view.outcome is AttemptOutcome.UNKNOWN
    assert not view.outcome.failed
    failed = normalize(make(kind=SpanKind.CONSUMER, scope=scope, status=StatusCode.ERROR))
    assert failed.outcome is AttemptOutcome.ERROR
    # Their producer spans are ordinary: a send that ended is a send that happened.
    assert normalize(make(kind=SpanKind.PRODUCER, scope=scope)).outcome is AttemptOutcome.OK


def test_celery_retry_reason_is_the_error_of_a_retry_run() -> None:
    view = normalize(make({"celery.state": "RETRY", "celery.retry.reason": "Retry in 1s: boom"},
                          kind=SpanKind.CONSUMER))  # fmt: skip
    assert (view.outcome, view.error) == (AttemptOutcome.RETRY, "Retry in 1s: boom")


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
        AttemptOutcome.IN_FLIGHT.value,
        AttemptOutcome.UNKNOWN.value,
    }


@pytest.mark.parametrize("flag", [True, "true", "TRUE"])
def test_a_dead_letter_flag_as_text_marks_the_span(flag: AttributeValue) -> None:
    view = normalize(make({semconv.DEAD_LETTER: flag}, kind=SpanKind.CONSUMER))
    assert view.dead_letter and view.outcome is AttemptOutcome.DEAD_LETTER


@pytest.mark.parametrize(
    ("written", "destination"),
    [
        ("orders,", "orders"),
        ("orders,reserve", "orders"),
        (",reserve", "reserve"),
        ("orders", "orders"),
    ],
)
def test_aio_pikas_exchange_and_routing_key_destination_is_its_exchange(
    written: str, destination: str
) -> None:
    view = normalize(make({"messaging.destination": written}, kind=SpanKind.PRODUCER))
    assert view.destination == destination


@pytest.mark.parametrize(
    ("destination", "route"),
    [
        ("orders.payment.retry", True),
        ("orders-retry-2", True),
        ("orders.retry.30s", True),
        ("orders.loyalty.dlt", True),
        ("orders.dlq", True),
        ("corpus-aiokafka-retry-topic-orders", False),
        ("retry-topic-inventory", False),
        ("orders", False),
        (None, False),
    ],
)
def test_retry_routes_are_named_by_their_last_part(destination: str | None, route: bool) -> None:
    assert is_retry_route(destination) is route


def test_a_consumer_span_ended_by_a_closing_channel_has_an_unknown_outcome() -> None:
    # amqplib ends every unsettled span of a closing channel with ERROR "channel closed":
    # the handler may have done its work (an ack lost) or not, so neither OK nor failed.
    closed = make(kind=SpanKind.CONSUMER, status=StatusCode.ERROR, status_message="channel closed")
    view = normalize(closed)
    assert view.outcome is AttemptOutcome.UNKNOWN
    assert view.error == "channel closed"
    # An exception event on it says the handler itself failed.
    raised = SpanEvent("exception", 5, {"exception.type": "KeyError"})
    failed = make(kind=SpanKind.CONSUMER, status=StatusCode.ERROR,
                  status_message="channel closed", events=(raised,))  # fmt: skip
    assert normalize(failed).outcome is AttemptOutcome.ERROR
    nacked = make(kind=SpanKind.CONSUMER, status=StatusCode.ERROR,
                  status_message="nack called on message with requeue")  # fmt: skip
    assert normalize(nacked).outcome is AttemptOutcome.ERROR


def test_error_type_is_read_with_the_status_message_when_no_event_says_it() -> None:
    # kafkajs records the error's class as error.type and its message as the status.
    span = make({"error.type": "TimeoutError"}, kind=SpanKind.CONSUMER,
                status=StatusCode.ERROR, status_message="card gateway timed out")  # fmt: skip
    assert normalize(span).error == "TimeoutError: card gateway timed out"
