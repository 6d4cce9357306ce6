from __future__ import annotations

from pathlib import Path

import pytest

from tracebraid.analysis import (
    EventExpectation,
    analyze,
    learn_topology,
    load_topology,
    parse_duration,
    parse_topology,
)
from tracebraid.analysis.topology import LEARNED_DEADLINE_FACTOR, LEARNED_DEADLINE_MIN_NS
from tracebraid.errors import ConfigurationError
from tracebraid.testing.workflows import Try, Workflow, WorkflowBuilder

SECOND = 1_000_000_000

TOPOLOGY = """
# which consumers every event must reach
default_deadline: 5m
events:
  order.placed:
    consumers: [payment, inventory]
    deadline: 30s
  payment.authorized:
    consumers: [summary]
  inventory.reserved: [warehouse]
"""


def test_parse_full_form_shorthand_and_default_deadline() -> None:
    topology = parse_topology(TOPOLOGY)
    assert topology.expectation("order.placed") == EventExpectation(
        "order.placed", ("payment", "inventory"), 30 * SECOND
    )
    assert topology.expectation("payment.authorized") == EventExpectation(
        "payment.authorized", ("summary",), 300 * SECOND
    )
    assert topology.expectation("inventory.reserved") == EventExpectation(
        "inventory.reserved", ("warehouse",), 300 * SECOND
    )
    assert topology.expectation("unknown") is None
    assert topology.expectation(None) is None


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        (30, 30 * SECOND),
        (1.5, 1_500_000_000),
        ("250ms", 250_000_000),
        ("30s", 30 * SECOND),
        ("5m", 300 * SECOND),
        ("1h", 3600 * SECOND),
        ("2d", 2 * 86_400 * SECOND),
        ("10us", 10_000),
        ("7ns", 7),
        (" 2 s ", 2 * SECOND),
    ],
)
def test_durations(text: object, nanoseconds: int) -> None:
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize("bad", ["30x", "", "-1s", True, [1], None, -3])
def test_bad_durations_say_how_to_write_one(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"deadline"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("events: [", "not valid YAML"),
        ("", "expected a mapping with an 'events' key"),
        ("consumers: [a]", "expected a mapping with an 'events' key"),
        ("events: {a: {consumers: [x]}}\nextra: 1", "unknown top-level keys"),
        ("events: {a: {deadline: 3s}}", "expected 'consumers'"),
        ("events: {a: {consumers: [x], colour: red}}", "unknown keys"),
        ("events: {a: {consumers: [1, 2]}}", "consumers must be a list of consumer names"),
        ("events: {a: {consumers: [x], deadline: soon}}", "events.a.deadline"),
        ("default_deadline: never\nevents: {}", "default_deadline"),
    ],
)
def test_bad_topologies_name_the_place_and_the_fix(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_topology(text, origin="topology.yaml")
    assert str(caught.value).startswith("topology.yaml")
    assert fragment in str(caught.value)


def test_load_topology_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY, encoding="utf-8")
    assert load_topology(path) == parse_topology(TOPOLOGY)


def test_load_topology_on_a_missing_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read topology file .*nope\.yaml"):
        load_topology(tmp_path / "nope.yaml")


def test_a_bad_file_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text("events: {a: {consumers: [x], deadline: soon}}", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=str(path)):
        load_topology(path)


def test_learned_topology_lists_the_consumers_seen_per_event_name(flow: Workflow) -> None:
    learned = learn_topology(flow.spans)
    consumers = {e.event_name: set(e.consumers) for e in learned.events}
    assert consumers == {
        "order.placed": {"payment", "inventory"},
        "payment.authorized": {"summary"},
        "inventory.reserved": {"warehouse"},
    }
    assert {e.source for e in learned.events} == {"history"}
    # Every flow here finishes within seconds: the learned deadline is the floor.
    assert {e.deadline_ns for e in learned.events} == {LEARNED_DEADLINE_MIN_NS}


def test_a_learned_deadline_is_a_multiple_of_the_slowest_publish_to_finish() -> None:
    b = WorkflowBuilder()
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    b.consume(placed, "reserve", service="inventory", wait_ms=30_000, duration_ms=10)
    (expected,) = learn_topology(b.build().spans).events
    assert expected.deadline_ns is not None
    assert expected.deadline_ns >= LEARNED_DEADLINE_FACTOR * 30_000_000_000


def test_stock_spans_are_learned_by_the_producers_destination(stock_flow: Workflow) -> None:
    learned = learn_topology(stock_flow.spans)
    consumers = {e.event_name: set(e.consumers) for e in learned.events}
    assert consumers == {
        "orders": {"payment", "inventory"},
        "payments": {"summary"},
        "inventory": {"warehouse"},
    }


def test_declared_expectations_win_over_learned_ones(flow: Workflow) -> None:
    declared = parse_topology("events: {order.placed: [payment]}")
    merged = declared.merged_with(learn_topology(flow.spans))
    placed = merged.expectation("order.placed")
    assert placed is not None and placed.consumers == ("payment",)
    assert placed.source == "topology"
    summary = merged.expectation("payment.authorized")
    assert summary is not None and summary.source == "history"


def dead_lettered_order(seed: int) -> Workflow:
    """order.placed: inventory gives up on it, republishes it to orders.dlq, and the
    operators' consumer reads it from there."""
    b = WorkflowBuilder(seed=seed)
    post = b.action("POST /orders", service="api", duration_ms=5)
    placed = b.publish(post, "order.placed", destination="orders")
    gave_up = b.consume(
        placed, "reserve", service="inventory", tries=[Try(10, error="E: x", dead_letter=True)]
    )
    parked = b.publish(gave_up.last, "order.placed", destination="orders.dlq",
                       event_id=placed.event_id)  # fmt: skip
    b.consume(parked, "inspect", service="operators")
    return b.build()


def test_dead_letter_readers_are_not_learned_as_consumers_of_every_event() -> None:
    learned = learn_topology(dead_lettered_order(seed=1).spans)
    assert [(e.event_name, e.consumers) for e in learned.events] == [
        ("order.placed", ("inventory",))
    ]
    b = WorkflowBuilder(seed=2)
    post = b.action("POST /orders", service="api", duration_ms=5)
    b.consume(b.publish(post, "order.placed", destination="orders"), "reserve",
              service="inventory")  # fmt: skip
    assert analyze(b.build().spans, topology=learned).pending == ()
