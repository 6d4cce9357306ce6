"""Search says what the analysis says: for generated workflows written in every convention
generation and for the conformance corpus (stock instrumentations' spans), each
trace's search facts equal the analysis of that trace's spans, and the search filters
select exactly the traces whose facts match (the store's SQL keeps every candidate).
The fleet aggregates' SQL counts what the store's own reading counts, and on the
corpus what the analysis counts, but for the Kafka gaps listed below. On SQLite, and
on ClickHouse (chDB) where the attributes are stored as the Collector's strings."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from clickhouse_engine import chdb_store
from conventions import GENERATIONS, speak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracebraid.analysis import analyze
from tracebraid.collector.files import read_span_file
from tracebraid.messaging import normalize
from tracebraid.model import Span, TraceId
from tracebraid.store import SpanStore, SqliteAggregates, SqliteStore
from tracebraid.store._facts import branch_facts
from tracebraid.store.aggregates import FleetAggregates
from tracebraid.store.clickhouse import ClickHouseStore
from tracebraid.store.search import TraceFacts, TraceQuery, search_traces
from tracebraid.views.counts import analysed_counts

sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
from strategies import workflows

_FAILED = frozenset({"failed", "dead_lettered"})


def analysed_facts(spans: Sequence[Span]) -> tuple[int, int, int, int]:
    """(retries, failed branches, duplicates, in flight) as the workflow view counts them."""
    analysis = analyze(spans)
    return (
        sum(b.retries for b in analysis.branches),
        sum(b.status.value in _FAILED for b in analysis.branches),
        sum(b.duplicates for b in analysis.branches),
        len(analysis.in_flight),
    )


def searched_facts(facts: TraceFacts) -> tuple[int, int, int, int]:
    return (facts.retries, facts.failed, facts.duplicates, facts.in_flight)


def check(store: SpanStore, spans: Sequence[Span], *, filters: bool = True) -> None:
    by_trace: dict[TraceId, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    page = search_traces(store, TraceQuery(limit=200), facts=analysed_counts)
    assert {h.summary.trace_id for h in page.hits} == set(by_trace)
    expected = {t: analysed_facts(own) for t, own in by_trace.items()}
    assert {h.summary.trace_id: searched_facts(h.facts) for h in page.hits} == expected
    for flag, position in (("has_retries", 0), ("has_failed", 1), ("has_pending", 3)):
        if not filters:
            break
        for wanted in (True, False):
            query = TraceQuery(limit=200, **{flag: wanted})  # type: ignore[arg-type]
            hits = search_traces(store, query, facts=analysed_counts).hits
            found = {h.summary.trace_id for h in hits}
            assert found == {t for t, f in expected.items() if (f[position] > 0) == wanted}, flag


def fleet_of(store: SpanStore) -> FleetAggregates:
    fleet = SqliteAggregates(store) if isinstance(store, SqliteStore) else store
    assert isinstance(fleet, FleetAggregates)
    return fleet


def check_fleet(store: SpanStore, spans: Sequence[Span], counted: CountsOf) -> None:
    """The fleet aggregates count what ``counted`` counts over the same spans: retries
    per consumer, and each workflow's retries (listed, and as a filter)."""
    fleet = fleet_of(store)
    counts = fleet.retry_counts()
    assert (sum(c.deliveries for c in counts), sum(c.retries for c in counts)) == counted(spans)
    workflows: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        if (correlation := normalize(span).correlation_id) is not None:
            workflows[correlation].append(span)
    expected = {c: counted(own)[1] for c, own in workflows.items()}
    listed = {w.correlation_id: w.retry_count for w in fleet.recent_workflows(limit=1000)}
    assert listed == expected
    retried = {w.correlation_id for w in fleet.recent_workflows(limit=1000, retried_only=True)}
    assert retried == {c for c, n in expected.items() if n}


CountsOf = Callable[[Sequence[Span]], tuple[int, int]]


def store_reading(spans: Sequence[Span]) -> tuple[int, int]:
    """(branches, retries) as the store's own reading counts them (``store._facts``)."""
    facts = branch_facts(spans)
    return facts.branches, facts.retries


def analysis_reading(spans: Sequence[Span]) -> tuple[int, int]:
    """(branches, retries) as the analysis counts them."""
    branches = analyze(spans).branches
    return len(branches), sum(b.retries for b in branches)


generations = st.sets(st.sampled_from(GENERATIONS))
_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_SETTINGS
@given(workflow=workflows(), spoken=generations)
def test_sqlite_search_and_aggregates_say_what_the_analysis_says(
    workflow: object, spoken: set[str]
) -> None:
    spans = speak(workflow.spans, spoken)  # type: ignore[attr-defined]
    with SqliteStore(":memory:") as store:
        store.write(spans)
        check(store, spans)
        check_fleet(store, spans, store_reading)


@pytest.fixture(scope="module")
def clickhouse() -> Iterator[ClickHouseStore]:
    with chdb_store(migrated=True) as store:
        yield store


@pytest.mark.slow
@settings(_SETTINGS, max_examples=6)
@given(workflow=workflows(), spoken=generations)
def test_clickhouse_search_and_aggregates_say_what_the_analysis_says(
    clickhouse: ClickHouseStore, workflow: object, spoken: set[str]
) -> None:
    spans = speak(workflow.spans, spoken | {"strings"})  # type: ignore[attr-defined]
    names = clickhouse.names
    for table in (names.traces, names.identities, names.lookup):
        clickhouse.backend.command(f"TRUNCATE TABLE {table}")
    clickhouse.write(spans)
    # The filters run the same Python on every store but SQLite: checked there.
    check(clickhouse, spans, filters=False)
    check_fleet(clickhouse, spans, store_reading)


CORPUS = Path(__file__).parents[1] / "corpus"
SCENARIOS = sorted(p.parent.name for p in CORPUS.glob("*/spans.jsonl"))


def corpus_spans(scenario: str) -> list[Span]:
    spans: list[Span] = []
    for chunk in read_span_file(CORPUS / scenario / "spans.jsonl"):
        spans.extend(chunk.spans)
    return spans


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_stock_instrumentation_spans_give_the_analysis_facts(scenario: str) -> None:
    """The conformance corpus: spans that stock instrumentations wrote against real brokers."""
    spans = corpus_spans(scenario)
    with SqliteStore(":memory:") as store:
        store.write(spans)
        check(store, spans)
        check_fleet(store, spans, store_reading)


# The analysis joins a Kafka message's deliveries by structure and by its copies (a
# poll's records, seek-back and retry-topic redeliveries) in ways the fleet SQL does
# not follow yet: there its retry counts split what the analysis counts as one branch.
_FLEET_GAPS = {"aiokafka-getmany", "aiokafka-retry-topic", "aiokafka-seek-back",
               "confluent-kafka", "kafka-python", "node-kafkajs"}  # fmt: skip


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(s, marks=pytest.mark.xfail(strict=True, reason="fleet SQL gap: Kafka"))
        if s in _FLEET_GAPS
        else s
        for s in SCENARIOS
    ],
)
def test_fleet_aggregates_count_what_the_analysis_counts(scenario: str) -> None:
    spans = corpus_spans(scenario)
    with SqliteStore(":memory:") as store:
        store.write(spans)
        check_fleet(store, spans, analysis_reading)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_stock_instrumentation_spans_on_clickhouse(
    clickhouse: ClickHouseStore, scenario: str
) -> None:
    """The corpus as the Collector stores it: every attribute a string."""
    spans = speak(corpus_spans(scenario), {"strings"})
    names = clickhouse.names
    for table in (names.traces, names.identities, names.lookup):
        clickhouse.backend.command(f"TRUNCATE TABLE {table}")
    clickhouse.write(spans)
    check(clickhouse, spans, filters=False)
    check_fleet(clickhouse, spans, store_reading)
