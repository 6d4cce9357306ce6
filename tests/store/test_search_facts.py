"""Search says what the analysis says: for generated workflows written in every convention
generation, each trace's search facts equal the analysis of that trace's spans, the
search filters select exactly the traces whose facts match, and the fleet aggregates
count the retries the analysis of all the spans counts. On SQLite, and on ClickHouse
(chDB) where the attributes are stored as the Collector's strings."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from clickhouse_engine import chdb_store
from conventions import GENERATIONS, speak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracebraid.analysis import analyze
from tracebraid.collector.files import read_span_file
from tracebraid.messaging import Role, is_start_marker, normalize
from tracebraid.model import Span, TraceId
from tracebraid.store import SpanStore, SqliteAggregates, SqliteStore
from tracebraid.store.aggregates import ConsumerRetries, FleetAggregates
from tracebraid.store.clickhouse import ClickHouseStore
from tracebraid.store.search import TraceFacts, TraceQuery, search_traces

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


def analysed_retries(spans: Sequence[Span]) -> list[ConsumerRetries]:
    """``retry_counts`` as the analysis of every span answers it."""
    per: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for branch in analyze(spans).branches:
        failed = sum(a.outcome.failed for a in branch.attempts)
        per[branch.consumer].append((len(branch.attempts), branch.retries, failed))
    rows = [
        ConsumerRetries(
            consumer,
            deliveries=len(found),
            attempts=sum(a for a, _, _ in found),
            retries=sum(r for _, r, _ in found),
            failed_attempts=sum(f for _, _, f in found),
            max_attempts=max(a for a, _, _ in found),
        )
        for consumer, found in per.items()
    ]
    return sorted(rows, key=lambda r: (-r.retries, r.consumer))


def marker_ties(spans: Sequence[Span]) -> bool:
    """Whether a start marker starts in the very nanosecond a consumer span of the same
    message starts: the analysis then orders the two by their positions in two different
    lists, which no SQL can repeat, so the fleet aggregates are not compared there."""
    starts: dict[bool, set[tuple[object, int]]] = {True: set(), False: set()}
    for span in spans:
        view = normalize(span)
        if view.role is Role.CONSUMER:
            starts[is_start_marker(span)].add((view.event_id, span.start_ns))
    return not starts[True].isdisjoint(starts[False])


def check(store: SpanStore, spans: Sequence[Span], *, filters: bool = True) -> None:
    by_trace: dict[TraceId, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    page = search_traces(store, TraceQuery(limit=200))
    assert {h.summary.trace_id for h in page.hits} == set(by_trace)
    expected = {t: analysed_facts(own) for t, own in by_trace.items()}
    assert {h.summary.trace_id: searched_facts(h.facts) for h in page.hits} == expected
    for flag, position in (("has_retries", 0), ("has_failed", 1), ("has_pending", 3)):
        if not filters:
            break
        for wanted in (True, False):
            query = TraceQuery(limit=200, **{flag: wanted})  # type: ignore[arg-type]
            found = {h.summary.trace_id for h in search_traces(store, query).hits}
            assert found == {t for t, f in expected.items() if (f[position] > 0) == wanted}, flag
    if marker_ties(spans):
        return
    fleet = SqliteAggregates(store) if isinstance(store, SqliteStore) else store
    assert isinstance(fleet, FleetAggregates)
    counts = analysed_retries(spans)
    assert fleet.retry_counts() == counts
    retried = {w.correlation_id for w in fleet.recent_workflows(limit=1000, retried_only=True)}
    workflows: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        if (correlation := normalize(span).correlation_id) is not None:
            workflows[correlation].append(span)
    assert retried == {c for c, own in workflows.items() if analysed_facts(own)[0]}
    listed = {w.correlation_id: w.retry_count for w in fleet.recent_workflows(limit=1000)}
    assert listed == {c: analysed_facts(own)[0] for c, own in workflows.items()}


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
