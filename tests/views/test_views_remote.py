"""Every operator command against a remote collector (``--store http://...``) answers as locally.

The demo's store is served by a real collector on loopback; each command runs once on
the file and once through the collector's API, with the clock held still, and the two
answers must be the same document.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from tracebraid.store import SqliteStore, open_store
from tracebraid.testing import running_collector
from tracebraid.views.cli import main
from tracebraid.views.commands import EXIT_USAGE


@pytest.fixture(scope="module")
def collector(demo_store: str) -> Iterator[str]:
    store = SqliteStore(demo_store.removeprefix("sqlite:///"))
    with running_collector(store, token="s3cret") as url:
        yield url
    store.close()


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold the wall clock still: pending and in-flight figures are measured from now."""
    now = time.time_ns()
    monkeypatch.setattr(time, "time_ns", lambda: now)


def _answer(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert not err, err
    return code, out


def _both(
    capsys: pytest.CaptureFixture[str], local: str, remote: str, *argv: str
) -> tuple[str, str]:
    code_local, out_local = _answer(capsys, *argv, "--store", local)
    code_remote, out_remote = _answer(capsys, *argv, "--store", remote)
    assert code_local == code_remote
    return out_local, out_remote


def _key_and_event(store_url: str) -> tuple[str, str]:
    with closing(open_store(store_url)) as store:
        summary = store.recent_traces(1)[0]
        event = next(
            s.attributes["messaging.message.id"]
            for s in store.spans_of_correlation(summary.correlation_ids[0])
            if s.attributes.get("tracebraid.event_name") == "inventory.reserved"
        )
    return summary.correlation_ids[0], str(event)


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize(
    "command",
    [
        ("show", "{key}", "--json"),
        ("show", "{key}", "--ids"),
        ("latency", "{key}", "--json"),
        ("why", "{event}", "--json"),
        ("export", "{key}", "--mermaid"),
        ("pending", "--json"),
        ("retries", "--json"),
        ("retries", "{key}", "--json"),
        ("lint", "--json"),
    ],
    ids=lambda c: " ".join(c),
)
def test_a_remote_collector_answers_as_the_file_does(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    demo_store: str,
    collector: str,
    command: tuple[str, ...],
) -> None:
    monkeypatch.setenv("TRACEBRAID_TOKEN", "s3cret")
    key, event = _key_and_event(demo_store)
    argv = [part.format(key=key, event=event) for part in command]
    local, remote = _both(capsys, demo_store, collector, *argv)
    if "--json" in argv:
        local_doc: Any = json.loads(local)
        remote_doc: Any = json.loads(remote)
        # lint names the store it read: the one difference there may be.
        assert remote_doc.pop("source", collector) == collector
        assert local_doc.pop("source", demo_store) == demo_store
        assert remote_doc == local_doc
        assert local_doc  # a real answer, not an empty one
    else:
        assert remote == local and local.strip()


def test_without_the_token_the_command_says_which_variable_to_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, collector: str
) -> None:
    monkeypatch.delenv("TRACEBRAID_TOKEN", raising=False)
    code = main(["pending", "--store", collector])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "wants a bearer token: set TRACEBRAID_TOKEN" in err


def test_an_address_nothing_listens_on_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["pending", "--store", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code != 0
    assert "cannot reach the collector at http://127.0.0.1:9" in err
