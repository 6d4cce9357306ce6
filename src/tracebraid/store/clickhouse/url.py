"""``--store`` URLs for ClickHouse: ``clickhouse://user:pass@host:8123/db`` and ``chdb:///path``.

Query options, for both: ``table`` (default ``otel_traces``), ``create_schema``
(default ``1``: create the exporter's tables in an empty database, as the
Collector does; ``0`` refuses instead), ``ttl_days`` (TTL of tables created).
``clickhouse`` also takes ``secure=1`` (HTTPS, default port 8443); ``chdb`` takes
``database`` (default ``otel``), since its path is the engine's directory.

Example::

    >>> parse_url("chdb:///var/lib/tracebraid?database=shop").database
    'shop'
    >>> parse_url("clickhouse://reader@ch1:8123/otel").host
    'ch1'
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from tracebraid.errors import ConfigurationError

__all__ = ["SCHEMES", "ClickHouseUrl", "parse_url"]

SCHEMES = ("clickhouse", "chdb")

_OPTIONS = {"table", "create_schema", "ttl_days", "secure", "database"}


@dataclass(frozen=True, slots=True)
class ClickHouseUrl:
    """A parsed ``clickhouse://`` or ``chdb://`` URL."""

    scheme: str
    database: str
    table: str = "otel_traces"
    path: str | None = None
    host: str = "localhost"
    port: int = 8123
    username: str = "default"
    password: str = ""
    secure: bool = False
    create_schema: bool = True
    ttl_days: int | None = None


def _flag(text: str, name: str, url: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name}={text!r} in {url!r}: use 1 or 0")


def parse_url(url: str) -> ClickHouseUrl:
    """Parse a store URL; a wrong scheme, option or port is a ``ConfigurationError``."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"{url!r} is not a ClickHouse store URL; use clickhouse://user@host:8123/db "
            "or chdb:///path"
        )
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - _OPTIONS
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(sorted(unknown))} in {url!r}; "
            f"known: {', '.join(sorted(_OPTIONS))}"
        )
    try:
        ttl_days = int(query["ttl_days"]) if "ttl_days" in query else None
        port = parts.port
    except ValueError as error:
        raise ConfigurationError(f"{url!r}: {error}") from error
    table = query.get("table", "otel_traces")
    create_schema = _flag(query.get("create_schema", "1"), "create_schema", url)
    if parts.scheme == "chdb":
        raw_path = unquote((parts.netloc or "") + parts.path)
        path = None if raw_path in ("", "/", "/:memory:", ":memory:") else raw_path
        return ClickHouseUrl(
            scheme="chdb",
            database=query.get("database", "otel"),
            table=table,
            path=path,
            create_schema=create_schema,
            ttl_days=ttl_days,
        )
    if "database" in query:
        raise ConfigurationError(f"{url!r}: give the database as the URL path (…:8123/DB)")
    secure = _flag(query.get("secure", "0"), "secure", url)
    return ClickHouseUrl(
        scheme="clickhouse",
        database=parts.path.strip("/") or "default",
        host=parts.hostname or "localhost",
        port=port or (8443 if secure else 8123),
        username=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
        secure=secure,
        table=table,
        create_schema=create_schema,
        ttl_days=ttl_days,
    )
