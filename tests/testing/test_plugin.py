"""The pytest plugin, installed through its ``pytest11`` entry point: its fixtures capture
what a test records, and the assertions fail a user's test with a readable explanation.
Each test runs an inner pytest session with ``pytester``."""

from __future__ import annotations

import pytest

INNER = """
from tracebraid.sdk import consuming, extract, publishing
from tracebraid.testing import assert_no_findings, assert_no_islands, assert_one_workflow


def hand_off(drop_traceparent):
    with publishing("order.placed", destination="orders") as publication:
        headers = publication.headers()
    if drop_traceparent:
        del headers["traceparent"]
    with consuming(extract(headers), step="reserve-inventory", consumer="reserve-inventory",
                   destination="orders"):
        pass


def test_kept(causal_capture, tracebraid_conventions):
    hand_off(drop_traceparent=False)
    assert [s.name for s in causal_capture.spans] == ["order.placed publish", "reserve-inventory"]
    assert_one_workflow(causal_capture)
    assert_no_islands(causal_capture)
    assert_no_findings(causal_capture, at_or_above="warning", conventions=tracebraid_conventions)


def test_broken(causal_capture):
    hand_off(drop_traceparent=True)
    assert_no_findings(causal_capture)


def test_split(causal_capture):
    hand_off(drop_traceparent=True)
    assert_one_workflow(causal_capture)


def test_island(causal_capture):
    hand_off(drop_traceparent=True)
    assert_no_islands(causal_capture)


def test_each_test_starts_empty(causal_capture):
    assert causal_capture.spans == []
"""


def test_the_entry_point_loads_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "def test_fixtures_exist(request):\n"
        "    assert request.getfixturevalue('causal_capture').spans == []\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=1)


def test_the_fixtures_and_assertions_in_a_users_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(INNER)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: expected no lint findings at or above error, found 1:",
            "*error TB101 broken-causality at test › order.placed publish",
            "*order.placed publish publishes order.placed without trace context*",
            "*fix: Inject the trace context (W3C traceparent)*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: expected one workflow, but the spans form 2 separate causal graphs:",
            "*1. starts at 'order.placed publish' (test)*",
            "*2. starts at 'reserve-inventory' (test)*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: expected no islands, found 1:",
            "*'reserve-inventory' (test) started trace *: its event evt_* was published by "
            "'order.placed publish' (test) in another trace, without trace context",
        ]
    )


def test_conventions_come_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        conventions="traceConventions:\n  requiredFields: [eventId, attempt]\n",
    )
    pytester.makeini("[pytest]\ntracebraid_conventions = conventions.yaml\n")
    pytester.makepyfile(
        "def test_read(tracebraid_conventions):\n"
        "    assert [f.value for f in tracebraid_conventions.required_fields] == "
        "['eventId', 'attempt']\n"
    )
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio").assert_outcomes(passed=1)


def test_a_bad_conventions_file_fails_with_its_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", conventions="traceConventions:\n  requiredFields: [evntId]\n")
    pytester.makeini("[pytest]\ntracebraid_conventions = conventions.yaml\n")
    pytester.makepyfile("def test_read(tracebraid_conventions):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*conventions.yaml:2: unknown field 'evntId' in requiredFields*"])


def test_without_the_ini_option_the_seeds_conventions_apply(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "from tracebraid.analysis.lint import DEFAULT_CONVENTIONS\n"
        "def test_read(tracebraid_conventions):\n"
        "    assert tracebraid_conventions is DEFAULT_CONVENTIONS\n"
    )
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio").assert_outcomes(passed=1)
