"""open_store: --store URLs for the embedded store, and the scheme registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebraid.errors import ConfigurationError
from tracebraid.store import (
    STORE_SCHEMES,
    SpanStore,
    SqliteStore,
    open_store,
    register_store,
    registry,
)
from tracebraid.store.registry import open_sqlite_url


def _opened_path(store: SpanStore) -> Path:
    assert isinstance(store, SqliteStore)
    store.close()
    return Path(repr(store).removeprefix("SqliteStore('").removesuffix("')"))


def test_relative_absolute_and_plain_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _opened_path(open_store("sqlite:///data/spans.db")) == tmp_path / "data/spans.db"
    absolute = tmp_path / "abs" / "spans.db"
    assert _opened_path(open_store(f"sqlite:///{absolute}")) == absolute  # four slashes
    assert _opened_path(open_store("plain.db")) == tmp_path / "plain.db"
    assert _opened_path(open_store(str(tmp_path / "x.db"))) == tmp_path / "x.db"
    assert _opened_path(open_store("sqlite:///with%20space.db")) == tmp_path / "with space.db"
    assert (tmp_path / "data" / "spans.db").exists()


def test_memory_store() -> None:
    store = open_store("sqlite:///:memory:")
    assert isinstance(store, SqliteStore)
    assert store.span_count() == 0
    store.close()


def test_synchronous_option(tmp_path: Path) -> None:
    store = open_sqlite_url(f"sqlite:///{tmp_path}/full.db?synchronous=full")
    store.close()
    with pytest.raises(ConfigurationError, match="NORMAL or FULL"):
        open_store(f"sqlite:///{tmp_path}/x.db?synchronous=off")
    with pytest.raises(ConfigurationError, match="unknown option"):
        open_store(f"sqlite:///{tmp_path}/x.db?cache=big")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("sqlite:///", "names no file"),
        ("sqlite://example.com/spans.db", "names a host"),
        ("postgres://db/spans", r"unknown store URL scheme 'postgres'.*supported: .*sqlite://"),
    ],
)
def test_bad_urls_say_what_to_do(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_store(url)


def test_a_registered_scheme_opens_its_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "STORE_SCHEMES", dict(registry.STORE_SCHEMES))
    opened: list[str] = []

    def open_fake(url: str) -> SpanStore:
        opened.append(url)
        return SqliteStore(tmp_path / "fake.db")

    register_store("Fake", open_fake)
    store = open_store("fake://anything?x=1")
    store.close()
    assert opened == ["fake://anything?x=1"]
    assert "fake" not in STORE_SCHEMES  # the test's registry was a copy


def test_a_lazily_named_opener_that_does_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STORE_SCHEMES, "broken", "tracebraid.store.registry:no_such_opener")
    with pytest.raises(ConfigurationError, match="does not exist"):
        open_store("broken://x")
