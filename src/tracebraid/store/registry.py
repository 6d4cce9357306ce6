"""Store URLs: ``--store sqlite:///spans.db`` and friends, resolved to a ``SpanStore``.

Each URL scheme maps to an opener, named as ``"module:function"`` so that a store
whose driver is an optional extra (ClickHouse, chDB) is imported only when its
scheme is used. The opener receives the whole URL. To add a store, add its scheme
to ``STORE_SCHEMES`` (or call ``register_store``)::

    STORE_SCHEMES["clickhouse"] = "tracebraid.store.clickhouse:open_url"

Example::

    >>> store = open_store("sqlite:///:memory:")
    >>> store.span_count()
    0
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

from tracebraid.errors import ConfigurationError
from tracebraid.store.base import SpanStore
from tracebraid.store.sqlite import SqliteStore

__all__ = ["STORE_SCHEMES", "StoreOpener", "open_sqlite_url", "open_store", "register_store"]

StoreOpener: TypeAlias = Callable[[str], SpanStore]
"""Opens a store from its full URL; raises ``ConfigurationError`` for a bad URL."""

STORE_SCHEMES: dict[str, str | StoreOpener] = {
    "sqlite": "tracebraid.store.registry:open_sqlite_url",
    "clickhouse": "tracebraid.store.clickhouse:open_clickhouse",
    "chdb": "tracebraid.store.clickhouse:open_clickhouse",
    # A tracebraid serve on another machine, read through its API.
    "http": "tracebraid.store.remote:open_remote",
    "https": "tracebraid.store.remote:open_remote",
}


def register_store(scheme: str, opener: str | StoreOpener) -> None:
    """Make ``open_store`` accept ``scheme://...`` URLs (``opener``: callable or "module:fn")."""
    STORE_SCHEMES[scheme.lower()] = opener


def open_store(url: str) -> SpanStore:
    """Open the store a URL names; a URL without a scheme is a path to an SQLite file.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
    ``sqlite:///:memory:`` and ``spans.db`` are all SQLite stores; other schemes are
    looked up in ``STORE_SCHEMES``.
    """
    scheme, sep, _ = url.partition("://")
    if not sep:
        if not url:
            raise ConfigurationError("the store URL is empty; pass e.g. sqlite:///spans.db")
        return SqliteStore(url)
    opener = STORE_SCHEMES.get(scheme.lower())
    if opener is None:
        supported = ", ".join(f"{name}://" for name in sorted(STORE_SCHEMES))
        raise ConfigurationError(
            f"unknown store URL scheme {scheme!r} in {url!r}; supported: {supported} "
            "(or a plain path to an SQLite file)"
        )
    if isinstance(opener, str):
        opener = _resolve(scheme, opener)
    return opener(url)


def _resolve(scheme: str, target: str) -> StoreOpener:
    module_name, _, attribute = target.partition(":")
    # A missing optional extra raises MissingExtraError (an ImportError) from inside
    # the store's module: that message names the extra to install, so let it through.
    module = importlib.import_module(module_name)
    opener = getattr(module, attribute, None)
    if not callable(opener):
        raise ConfigurationError(f"the {scheme}:// store opener {target!r} does not exist")
    resolved: StoreOpener = opener
    return resolved


def open_sqlite_url(url: str) -> SqliteStore:
    """Open ``sqlite:///path`` (three slashes, then the path; four for an absolute one).

    The query may set ``synchronous=FULL`` to survive power loss as well as process
    crashes, at the cost of an fsync per write (see ``SqliteStore``).
    """
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigurationError(
            f"{url!r} names a host ({parts.netloc!r}); an SQLite store is a local file: "
            "use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not path:
        raise ConfigurationError(
            f"{url!r} names no file; use sqlite:///spans.db or sqlite:///:memory:"
        )
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    synchronous = options.pop("synchronous", "NORMAL").upper()
    if options:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(sorted(options))} in {url!r}; "
            "the only SQLite option is synchronous=NORMAL|FULL"
        )
    if synchronous == "FULL":
        return SqliteStore(path, synchronous="FULL")
    if synchronous == "NORMAL":
        return SqliteStore(path)
    raise ConfigurationError(f"synchronous must be NORMAL or FULL in {url!r}")
