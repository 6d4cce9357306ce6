"""The analysis on the shapes stock instrumentations write: structure before identity,
outcomes only from evidence, attempts across retry patterns, polls that are no islands."""

from __future__ import annotations

from tracebraid.analysis import (
    AttemptKind,
    AttemptOutcome,
    BranchStatus,
    ConsumerIdentity,
    EdgeKind,
    IslandCause,
    analyze,
)
from tracebraid.model import SpanKind, StatusCode

from .stock_spans import AIO_PIKA, CELERY, CONFLUENT, MS, StockSpans


def test_a_consumer_under_a_producer_is_its_delivery_though_the_producer_has_no_id() -> None:
    s = StockSpans()
    sent = s.aiokafka_send("checkout", "orders", at_ms=0)
    s.aiokafka_receive(sent, "payment", "orders", 0, at_ms=5)
    analysis = analyze(s.spans)
    (branch,) = analysis.branches
    assert branch.producer is not None and branch.producer.service == "checkout"
    assert not branch.stitched
    (delivery,) = analysis.deliveries
    assert (delivery.via, delivery.queue_wait_ns) == (EdgeKind.DELIVERY, 4 * MS)
    assert analysis.islands == () and analysis.unconsumed == ()


def test_receive_only_redeliveries_of_one_offset_are_one_branch_of_unknown_outcome() -> None:
    # aiokafka seek-back: the same offset delivered three times; the spans end before
    # the handler runs, so nothing says whether any attempt worked.
    s = StockSpans()
    sent = s.aiokafka_send("checkout", "orders", at_ms=0)
    for n in range(3):
        s.aiokafka_receive(sent, "loyalty", "orders", 0, at_ms=5 + 400 * n)
    (branch,) = analyze(s.spans).branches
    assert [a.outcome for a in branch.attempts] == [AttemptOutcome.UNKNOWN] * 3
    assert [a.kind for a in branch.attempts] == [
        AttemptKind.FIRST, AttemptKind.REDELIVERY, AttemptKind.REDELIVERY,
    ]  # fmt: skip
    assert (branch.status, branch.retries, branch.duplicates, branch.redeliveries) == (
        BranchStatus.UNKNOWN, 0, 0, 2,
    )  # fmt: skip
    assert not branch.succeeded


def test_an_island_redelivered_by_offset_stays_one_branch() -> None:
    # No context at all (propagation broke): the Kafka offset still names the message.
    s = StockSpans()
    for n in range(2):
        s.aiokafka_receive(None, "loyalty", "orders", 7, at_ms=5 + 400 * n)
    (branch,) = analyze(s.spans).branches
    assert len(branch.attempts) == 2


def test_a_receive_only_handlers_publish_is_work_of_the_delivery_it_follows() -> None:
    # aiokafka leaves the producer's context current while the handler runs: the
    # handler's publish is a child of the *producer's* span, not of the receive span.
    s = StockSpans()
    placed = s.aiokafka_send("checkout", "orders", at_ms=0)
    s.aiokafka_receive(placed, "payment", "orders", 0, at_ms=5)
    paid = s.aiokafka_send("payment", "payments", at_ms=8, parent=placed)
    s.aiokafka_receive(paid, "shipping", "payments", 0, at_ms=12)
    analysis = analyze(s.spans)
    payment, shipping = analysis.branches
    assert shipping.caused_by == payment.id
    assert payment.downstream_events == (shipping.event_id,)


def test_a_retry_topic_is_the_same_message_on_another_route() -> None:
    s = StockSpans()
    placed = s.aiokafka_send("checkout", "orders", at_ms=0)
    s.aiokafka_receive(placed, "payment", "orders", 0, at_ms=5)
    retry = s.aiokafka_send("payment", "orders.payment.retry", at_ms=8, parent=placed)
    s.aiokafka_receive(retry, "payment", "orders.payment.retry", 0, at_ms=410)
    parked = s.aiokafka_send("payment", "orders.payment.dlt", at_ms=420, parent=retry)
    analysis = analyze(s.spans)
    (branch,) = analysis.branches
    assert len(branch.attempts) == 2
    assert branch.dead_lettered and branch.status is BranchStatus.DEAD_LETTERED
    # Nobody reads the dead-letter topic: that route of the message is unconsumed.
    (unread,) = analysis.unconsumed
    assert (unread.destination, unread.producer.span_id) == ("orders.payment.dlt", parked.span_id)


def test_sibling_publishes_nothing_tells_apart_are_one_message_published_twice() -> None:
    s = StockSpans()
    placed = s.aiokafka_send("checkout", "orders", at_ms=0)
    first = s.aiokafka_send("inventory", "inventory", at_ms=8, parent=placed)
    again = s.aiokafka_send("inventory", "inventory", at_ms=9, parent=placed)
    s.aiokafka_receive(first, "warehouse", "inventory", 0, at_ms=12)
    s.aiokafka_receive(again, "warehouse", "inventory", 1, at_ms=14)
    analysis = analyze(s.spans)
    (published,) = analysis.duplicate_publishes
    assert {p.span_id for p in published.producers} == {first.span_id, again.span_id}
    (warehouse,) = analysis.branches
    assert [a.kind for a in warehouse.attempts] == [AttemptKind.FIRST, AttemptKind.FIRST]
    # Another key is another message.
    s.aiokafka_send("inventory", "inventory", at_ms=10, parent=placed, key="order-2")
    assert len(analyze(s.spans).duplicate_publishes) == 1


def test_a_getmany_poll_root_is_no_island_and_no_end_of_the_critical_path() -> None:
    # getmany: a poll root, a topic span under it linking the record spans, and the
    # record spans themselves children of their producers' spans.
    s = StockSpans()
    sent = s.aiokafka_send("checkout", "orders", at_ms=0)
    record = s.aiokafka_receive(sent, "payment", "orders", 0, at_ms=5)
    poll = s.add(
        "orders receive",
        SpanKind.CONSUMER,
        "payment",
        at_ms=4,
        ms=50,
        messaging__batch__message_count=1,
        messaging__operation__type="receive",
    )
    s.add("orders receive", SpanKind.CONSUMER, "payment", at_ms=4, ms=49, parent=poll,
          links=(record,), messaging__destination__name="orders",
          messaging__operation__type="receive")  # fmt: skip
    analysis = analyze(s.spans)
    assert analysis.islands == ()
    assert poll.span_id not in {r.span_id for r in analysis.roots}
    (branch,) = analysis.branches
    assert [a.span.span_id for a in branch.attempts] == [record.span_id]
    assert analysis.critical_path.steps[-1].span.span_id == record.span_id


def test_a_confluent_recv_root_is_a_poll_and_its_process_span_the_delivery() -> None:
    s = StockSpans()
    sent = s.add("orders send", SpanKind.PRODUCER, "checkout", at_ms=0, scope=CONFLUENT,
                 messaging__destination="orders", messaging__operation="publish")  # fmt: skip
    recv = s.add("recv", SpanKind.CONSUMER, "payment", at_ms=5, scope=CONFLUENT)
    process = s.add("orders process", SpanKind.CONSUMER, "payment", at_ms=5, ms=30,
                    parent=recv, links=(sent,), scope=CONFLUENT,
                    messaging__destination="orders", messaging__operation="process",
                    messaging__kafka__partition=0, messaging__message__id="orders.0.0")  # fmt: skip
    analysis = analyze(s.spans)
    assert analysis.islands == ()
    (branch,) = analysis.branches
    assert [a.span.span_id for a in branch.attempts] == [process.span_id]
    # Its spans never record how handling went: unknown, never "succeeded".
    assert branch.status is BranchStatus.UNKNOWN


def test_celery_retry_then_failure_is_one_failed_branch_with_one_retry() -> None:
    s = StockSpans()
    post = s.add("POST /orders", SpanKind.SERVER, "checkout", at_ms=0, ms=10)
    sent = s.add("apply_async/send_invoice", SpanKind.PRODUCER, "checkout", at_ms=2,
                 parent=post, scope=CELERY, messaging__message__id="t-1",
                 celery__action="apply_async")  # fmt: skip
    first = s.add("run/send_invoice", SpanKind.CONSUMER, "billing", at_ms=20, ms=5,
                  parent=sent, scope=CELERY, messaging__message__id="t-1",
                  celery__state="RETRY",
                  celery__retry__reason="Retry in 1s: ConnectionError")  # fmt: skip
    again = s.add("apply_async/send_invoice", SpanKind.PRODUCER, "billing", at_ms=24,
                  parent=first, scope=CELERY, messaging__message__id="t-1")  # fmt: skip
    s.add("run/send_invoice", SpanKind.CONSUMER, "billing", at_ms=1030, ms=5, parent=again,
          scope=CELERY, status=StatusCode.ERROR, status_message="ConnectionError: down",
          messaging__message__id="t-1", celery__state="FAILURE", celery__retries=1)  # fmt: skip
    analysis = analyze(s.spans)
    (branch,) = analysis.branches
    assert [a.outcome for a in branch.attempts] == [AttemptOutcome.RETRY, AttemptOutcome.ERROR]
    assert [a.kind for a in branch.attempts] == [AttemptKind.FIRST, AttemptKind.RETRY]
    assert (branch.status, branch.retries, branch.duplicates) == (BranchStatus.FAILED, 1, 0)
    assert branch.attempts[0].error == "Retry in 1s: ConnectionError"
    assert analysis.duplicate_publishes == ()  # the retry's apply_async re-sends it


def test_a_redelivery_through_a_dead_letter_exchange_stays_in_its_branch() -> None:
    # RabbitMQ's TTL retry queue: attempts 2 and 3 arrive through another exchange.
    s = StockSpans()
    sent = s.add("orders, send", SpanKind.PRODUCER, "checkout", at_ms=0, scope=AIO_PIKA,
                 messaging__destination="orders,", messaging__message__id="m-1")  # fmt: skip
    for n, exchange in enumerate(["orders", "orders.retry", "orders.retry"]):
        failed = n < 2
        s.add(f"{exchange} receive", SpanKind.CONSUMER, "billing", at_ms=5 + 250 * n,
              parent=sent, scope=AIO_PIKA, messaging__destination=exchange,
              messaging__message__id="m-1", messaging__operation="receive",
              status=StatusCode.ERROR if failed else StatusCode.UNSET)  # fmt: skip
    analysis = analyze(s.spans)
    (branch,) = analysis.branches
    assert (branch.consumer, branch.consumer_identified_by) == ("billing", ConsumerIdentity.SERVICE)
    assert (len(branch.attempts), branch.retries, branch.status) == (3, 2, BranchStatus.SUCCEEDED)
    assert analysis.lagging == () and analysis.dead_letters == ()


def test_a_publish_rooting_its_own_trace_after_a_delivery_is_an_island() -> None:
    s = StockSpans()
    placed = s.aiokafka_send("checkout", "orders", at_ms=0)
    s.aiokafka_receive(placed, "analytics", "orders", 0, at_ms=5)
    recorded = s.aiokafka_send("analytics", "analytics", at_ms=9)  # context dropped
    s.aiokafka_receive(recorded, "reporting", "analytics", 0, at_ms=12)
    analysis = analyze(s.spans)
    (island,) = analysis.islands
    assert (island.root.span_id, island.cause) == (recorded.span_id, IslandCause.CONTEXT_DROPPED)
    assert [r.service for r in analysis.roots] == ["checkout"]


def test_an_inferred_message_identity_is_said() -> None:
    s = StockSpans()
    placed = s.aiokafka_send("checkout", "orders", at_ms=0)
    s.aiokafka_receive(placed, "payment", "orders", 0, at_ms=5)
    s.aiokafka_send("payment", "orders.payment.retry", at_ms=8, parent=placed)
    s.aiokafka_send("inventory", "inventory", at_ms=8, parent=placed)
    s.aiokafka_send("inventory", "inventory", at_ms=9, parent=placed)
    said = analyze(s.spans).limitation("message_identity_inferred")
    assert said is not None and said.count == 2
    assert "1 sibling publishes" in said.message and "1 republishes" in said.message


def test_a_delivery_whose_handler_runs_outside_it_has_an_unknown_outcome() -> None:
    # An instrumentation tracebraid does not know, receive-only like aiokafka: the
    # handler's publish is a child of the producer's span, so the delivery span ended
    # before the handler ran and cannot say how it went.
    s = StockSpans()
    placed = s.aiokafka_send("checkout", "orders", at_ms=0)
    s.add("orders receive", SpanKind.CONSUMER, "payment", at_ms=5, ms=0.2, parent=placed,
          scope="some.kafka.client", messaging__destination__name="orders",
          messaging__operation__type="receive")  # fmt: skip
    s.aiokafka_send("payment", "payments", at_ms=8, parent=placed)
    payment = next(b for b in analyze(s.spans).branches if b.service == "payment")
    assert payment.attempts[0].outcome is AttemptOutcome.UNKNOWN
