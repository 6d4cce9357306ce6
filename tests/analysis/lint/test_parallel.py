"""Linting a store with worker processes gives the same report as one process: workflows
linted in the workers, and those that point beyond themselves finished in the main one."""

from __future__ import annotations

import pytest

from tracebraid.analysis.lint import LintReport, lint_store, lint_store_url
from tracebraid.model import SpanKind
from tracebraid.store import SqliteStore
from tracebraid.testing.workflows import DEFAULT_START_NS, islands, order_flow, spread_over_traces

from .shapes import Spans


def _same(a: LintReport, b: LintReport) -> None:
    def key(report: LintReport) -> list[tuple[str, str, str, str, int]]:
        return sorted((f.rule, f.service, f.step, f.key, f.count) for f in report.findings)

    assert key(a) == key(b)
    assert (a.workflows, a.traces, a.spans, a.coverage) == (
        b.workflows,
        b.traces,
        b.spans,
        b.coverage,
    )


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("parallel") / "spans.db"
    s = Spans()  # stock spans: an island joined only by its links, finished in pass 2
    post = s.add("POST /orders", SpanKind.SERVER, "shop")
    sent = s.aio_pika_publish(post, "orders", "reserve", message_id="m-1")
    for at, service in ((6.0, "audit"), (7.0, "archive")):
        s.add(
            "orders receive",
            SpanKind.CONSUMER,
            service,
            links=(sent,),
            at=at,
            attributes={"messaging.operation": "receive", "messaging.destination": "orders"},
        )
    with SqliteStore(path) as store:
        for spans in (
            order_flow().spans,
            islands(3).spans,
            spread_over_traces(6, propagate=False).spans,
            s.spans,
        ):
            store.write(spans)
    return f"sqlite:///{path}"


def test_workers_answer_as_one_process_does(url: str) -> None:
    with SqliteStore(url.removeprefix("sqlite:///")) as store:
        alone = lint_store(store)
    seen: list[int] = []
    together = lint_store_url(url, workers=2, progress=lambda tally: seen.append(tally.workflows))
    _same(together, alone)
    assert seen[-1] == alone.workflows == 4  # the second reader adds to the first's workflow


def test_a_window_answers_the_same_too(url: str) -> None:
    window = {"since_ns": DEFAULT_START_NS, "until_ns": DEFAULT_START_NS + 10**9}
    with SqliteStore(url.removeprefix("sqlite:///")) as store:
        alone = lint_store(store, **window)
    assert alone.workflows == 4 and alone.findings  # the window holds the workflows
    _same(lint_store_url(url, workers=2, **window), alone)
