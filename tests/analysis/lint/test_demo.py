"""The demo, run for real through the SDK: clean it lints clean; with the planted mistakes
each one is found exactly once, at the service and step it was planted in."""

from __future__ import annotations

from tracebraid.analysis.lint import LintReport, lint, lint_store
from tracebraid.demo.mistakes import MISTAKES
from tracebraid.model import Span
from tracebraid.store import SqliteStore


def test_the_clean_demo_lints_clean(demo_spans: list[Span]) -> None:
    report = lint(demo_spans)
    assert report.findings == () and report.suppressed == 0
    assert all(c.ratio == 1.0 for c in report.coverage)


def test_each_planted_mistake_is_found_once_where_it_was_planted(
    mistaken_report: LintReport,
) -> None:
    found = sorted((f.rule, f.service, f.step) for f in mistaken_report.findings)
    planted = sorted((m.rule, m.service, m.step) for m in MISTAKES)
    assert found == planted
    assert len(MISTAKES) == len({m.rule for m in MISTAKES}) == 6
    assert all(f.count == 2 for f in mistaken_report.findings)  # two orders, same mistakes


def test_the_broken_publish_lowers_coverage_only_where_it_happens(
    mistaken_report: LintReport,
) -> None:
    ratios = {c.service: c.ratio for c in mistaken_report.coverage}
    assert ratios["summary"] == 0.0 and ratios["payment"] == 0.5
    assert ratios["inventory"] == ratios["warehouse"] == ratios["checkout-api"] == 1.0


def test_linting_the_store_finds_the_same(mistaken_spans: list[Span]) -> None:
    with SqliteStore(":memory:") as store:
        store.write(mistaken_spans)
        report = lint_store(store)
    assert report.workflows == 2
    assert sorted((f.rule, f.service, f.step, f.count) for f in report.findings) == sorted(
        (m.rule, m.service, m.step, 2) for m in MISTAKES
    )
