"""Two ways to reach ClickHouse, one SQL: a server over HTTP, or chDB in-process.

A backend runs SQL text with ``{name:Type}`` parameters and answers rows as
JSON (``JSONCompactEachRow``, 64-bit integers unquoted), so the store above it
never knows which engine it talks to. ``HttpBackend`` wraps clickhouse-connect
(a server or a cluster); ``ChdbBackend`` wraps chDB, the ClickHouse engine as a
Python library, which keeps one embedded server per process at one directory.

Example::

    >>> backend = ChdbBackend.open(None)  # a throw-away in-memory engine
    >>> backend.rows("SELECT {n:UInt8} + 1", {"n": 1})
    [[2]]
    >>> backend.close()
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from tracebraid.errors import MissingExtraError, StoreError

__all__ = ["Backend", "ChdbBackend", "HttpBackend", "Params"]

Params = Mapping[str, str | int | float | Sequence[str] | Sequence[int]]
"""Values for a query's ``{name:Type}`` placeholders."""

_ROW_FORMAT = "JSONCompactEachRow"
_SETTINGS: Mapping[str, int] = {
    "output_format_json_quote_64bit_integers": 0,
    # LIMIT BY and the aggregates must see every row, never a sample.
    "max_result_rows": 0,
}


class Backend(Protocol):
    """What the store needs from a ClickHouse connection."""

    description: str
    """Where the backend points, for messages (no password)."""

    def rows(self, sql: str, params: Params | None = None) -> list[list[Any]]:
        """Run a query and return all its rows."""
        ...

    def command(self, sql: str, params: Params | None = None) -> None:
        """Run a statement that returns nothing (DDL, INSERT ... SELECT)."""
        ...

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` (column name -> value) into ``table`` (a quoted name)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def _json_lines(payload: bytes) -> list[list[Any]]:
    return [json.loads(line) for line in payload.splitlines() if line]


def _each_row(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)


def _literal(value: str | int | float | Sequence[str] | Sequence[int]) -> str:
    """A parameter as chDB's text protocol takes it: arrays as ``['a','b']`` literals."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    items = ", ".join(
        "'" + item.replace("\\", "\\\\").replace("'", "\\'") + "'"
        if isinstance(item, str)
        else str(item)
        for item in value
    )
    return f"[{items}]"


def _store_error(what: str, where: str, error: Exception) -> StoreError:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return StoreError(f"ClickHouse at {where} failed to {what}: {first_line}")


class ChdbBackend:
    """chDB in-process: one embedded engine per process, shared by every store on its path."""

    _lock: ClassVar[threading.RLock] = threading.RLock()
    _session: ClassVar[Any] = None
    _path: ClassVar[str | None] = None
    _users: ClassVar[int] = 0

    def __init__(self, path: str | None) -> None:
        self.description = f"chdb:///{path.lstrip('/')}" if path else "chdb (in memory)"
        self._closed = False

    @classmethod
    def open(cls, path: str | None) -> ChdbBackend:
        """Attach to the process's chDB engine at ``path`` (``None``: a temporary one).

        chDB keeps one engine per process and locks its directory to that process,
        so a second path while the first is open is refused with a clear error.
        """
        try:
            from chdb import session as chdb_session
        except ImportError as error:
            raise MissingExtraError("clickhouse", "chdb") from error
        with cls._lock:
            if cls._session is not None and cls._path != path:
                raise StoreError(
                    f"chDB already has {cls._path or 'an in-memory engine'} open in this "
                    f"process and runs one engine per process; close that store before "
                    f"opening {path or 'an in-memory one'}, or use one path with several "
                    "databases (chdb:///path?database=NAME)"
                )
            if cls._session is None:
                try:
                    cls._session = (
                        chdb_session.Session(path)  # type: ignore[no-untyped-call]
                        if path
                        else chdb_session.Session()  # type: ignore[no-untyped-call]
                    )
                except Exception as error:  # chDB raises RuntimeError and its own types
                    raise _store_error("open", path or "memory", error) from error
                cls._path = path
                for name, value in _SETTINGS.items():
                    cls._session.query(f"SET {name} = {value}")
            cls._users += 1
            return cls(path)

    def _run(self, sql: str, params: Params | None, fmt: str) -> bytes:
        if self._closed:
            raise StoreError(f"{self.description} is closed")
        text = {name: _literal(value) for name, value in (params or {}).items()}
        with self._lock:
            try:
                result = self._session.query(sql, fmt, params=text or None)
            except Exception as error:
                raise _store_error("run a query", self.description, error) from error
        payload: bytes = result.bytes() if result is not None else b""
        return payload

    def rows(self, sql: str, params: Params | None = None) -> list[list[Any]]:
        return _json_lines(self._run(sql, params, _ROW_FORMAT))

    def command(self, sql: str, params: Params | None = None) -> None:
        self._run(sql, params, "CSV")

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        payload = _each_row(rows)
        with self._lock:
            try:
                with self._session.send_insert(f"INSERT INTO {table}", "JSONEachRow") as inserter:
                    inserter.append(payload)
                    inserter.finish()
            except Exception as error:
                raise _store_error("insert", self.description, error) from error

    def close(self) -> None:
        cls = type(self)
        with cls._lock:
            if self._closed:
                return
            self._closed = True
            cls._users -= 1
            if cls._users == 0 and cls._session is not None:
                cls._session.close()
                cls._session = None
                cls._path = None


class HttpBackend:
    """A ClickHouse server or cluster over HTTP(S), through clickhouse-connect."""

    def __init__(self, client: Any, description: str) -> None:
        self._client = client
        self.description = description

    @classmethod
    def connect(
        cls,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        database: str,
        secure: bool,
    ) -> HttpBackend:
        """Connect to ``host:port``; the database must exist (the store never creates one)."""
        try:
            import clickhouse_connect
        except ImportError as error:
            raise MissingExtraError("clickhouse", "clickhouse-connect") from error
        scheme = "https" if secure else "http"
        where = f"{scheme}://{username}@{host}:{port}/{database}"
        try:
            client = clickhouse_connect.get_client(
                host=host,
                port=port,
                username=username,
                password=password,
                database=database,
                secure=secure,
                settings=dict(_SETTINGS),
                autogenerate_session_id=False,
            )
        except Exception as error:  # clickhouse-connect raises OperationalError and others
            raise _store_error("connect", where, error) from error
        return cls(client, where)

    def rows(self, sql: str, params: Params | None = None) -> list[list[Any]]:
        try:
            payload = self._client.raw_query(sql, parameters=dict(params or {}), fmt=_ROW_FORMAT)
        except Exception as error:
            raise _store_error("run a query", self.description, error) from error
        return _json_lines(payload)

    def command(self, sql: str, params: Params | None = None) -> None:
        try:
            self._client.command(sql, parameters=dict(params or {}))
        except Exception as error:
            raise _store_error("run a statement", self.description, error) from error

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        try:
            self._client.command(
                f"INSERT INTO {table} FORMAT JSONEachRow", data=_each_row(rows).encode()
            )
        except Exception as error:
            raise _store_error("insert", self.description, error) from error

    def close(self) -> None:
        self._client.close()
