"""Sync-only messaging (TB701): a message sent as a plain HTTP/RPC call.

A CLIENT or SERVER span with no ``messaging.*`` attribute is a messaging step in
disguise when what it calls (CLIENT spans, any method but GET) is a broker:
RabbitMQ's management API (``/api/exchanges/<vhost>/<exchange>/publish``), the Kafka REST proxy
(``/topics/<topic>``, ``/v3/clusters/.../records``), Google Pub/Sub
(``.../topics/<t>:publish``), AWS SNS/SQS/EventBridge/Kinesis RPCs, Redis
``PUBLISH``/``XADD`` recorded as a database call; or when a hand-made (non-HTTP) client
span's name says it publishes (``publish``, ``produce``, ``enqueue``, ``emit``); or, for
CLIENT and SERVER spans alike, when its path matches the project's
``syncMessaging.endpoints``. An HTTP route that merely contains such a word
(``POST /articles/{id}/publish``) is not a message. A call made inside a PRODUCER or CONSUMER
span is that span's transport, not the only record of it, and is left alone.

Example::

    >>> is_broker_path("/api/exchanges/%2F/audit/publish")
    True
    >>> is_broker_path("/webhooks/orders")
    False
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from tracebraid.analysis.graph import NO_NODE
from tracebraid.analysis.lint.catalog import SYNC_ONLY_MESSAGING
from tracebraid.analysis.lint.conventions import Conventions
from tracebraid.analysis.lint.findings import Finding
from tracebraid.analysis.lint.rules._where import step_of
from tracebraid.analysis.workflow import WorkflowAnalysis
from tracebraid.messaging import Role, has_messaging_attributes
from tracebraid.model import AttributeValue, Span, SpanKind

__all__ = ["BROKER_PATHS", "is_broker_path", "sync_only_messaging"]

BROKER_PATHS = (
    re.compile(r"/api/exchanges/[^/]+/[^/]+/publish/?$"),  # RabbitMQ management API
    re.compile(r"/topics/[^/]+/?$"),  # Kafka REST proxy v2
    re.compile(r"/v3/clusters/[^/]+/topics/[^/]+/records/?$"),  # Kafka REST proxy v3
    re.compile(r"/topics/[^/:]+:publish$"),  # Google Pub/Sub
    re.compile(r"/subscriptions/[^/:]+:(pull|acknowledge)$"),
)
"""URL paths of brokers' HTTP APIs that publish or take messages."""

_AWS_MESSAGING = {
    "sns": {"publish", "publishbatch"},
    "sqs": {"sendmessage", "sendmessagebatch", "receivemessage"},
    "eventbridge": {"putevents"},
    "kinesis": {"putrecord", "putrecords"},
}
_REDIS_COMMANDS = {"publish", "spublish", "xadd"}
_VERBS = re.compile(r"(?:^|[^a-z])(publish|produce|enqueue|emit)(?:[^a-z]|$)", re.IGNORECASE)
_HTTP_NAME = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\b", re.IGNORECASE)
_PATH_KEYS = ("url.full", "http.url", "url.path", "http.target", "http.route")


def is_broker_path(path: str) -> bool:
    """True when ``path`` (or a full URL) is a broker HTTP API endpoint for messages."""
    if "://" in path:
        path = urlsplit(path).path
    return any(pattern.search(path) for pattern in BROKER_PATHS)


def _text(value: AttributeValue | None) -> str:
    return value if isinstance(value, str) else ""


def _paths(span: Span) -> list[str]:
    paths = [_text(span.attributes.get(key)) for key in _PATH_KEYS]
    return [urlsplit(p).path if "://" in p else p for p in paths if p]


def _evidence(span: Span, endpoints: Sequence[re.Pattern[str]]) -> str | None:
    """Why ``span`` looks like a message sent or taken synchronously, or ``None``."""
    attributes = span.attributes
    method = _text(attributes.get("http.request.method") or attributes.get("http.method"))
    client = span.kind is SpanKind.CLIENT
    for path in _paths(span):
        if client and method.upper() != "GET" and is_broker_path(path):
            return f"it calls a broker's HTTP API ({path})"
        if any(p.search(path) for p in endpoints):
            return f"{path} carries messages (syncMessaging.endpoints)"
    if not client:
        return None  # a SERVER span is a messaging step only where the project says so
    rpc = _text(attributes.get("rpc.method")).lower()
    if rpc in _AWS_MESSAGING.get(_text(attributes.get("rpc.service")).lower(), ()):
        return f"it calls {attributes.get('rpc.service')}.{attributes.get('rpc.method')}"
    if _text(attributes.get("db.system")).lower() == "redis":
        statement = _text(attributes.get("db.operation") or attributes.get("db.operation.name"))
        statement = statement or _text(attributes.get("db.statement"))
        command = statement.split(" ", 1)[0].lower()
        if command in _REDIS_COMMANDS:
            return f"it sends Redis {command.upper()} as a database call"
    if not method and not _HTTP_NAME.match(span.name) and _VERBS.search(span.name):
        return f"its name {span.name!r} says it publishes"  # a hand-made client span
    return None


def sync_only_messaging(analysis: WorkflowAnalysis, conventions: Conventions) -> Iterator[Finding]:
    """TB701: one finding per (service, step, span name) sending messages as plain calls."""
    graph = analysis.graph
    endpoints = [re.compile(p) for p in conventions.sync_endpoints]
    groups: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
    for node, span in enumerate(graph.spans):
        if span.kind not in (SpanKind.CLIENT, SpanKind.SERVER):
            continue
        if has_messaging_attributes(span):
            continue
        parent = graph.parent[node]
        if parent != NO_NODE and graph.views[parent].role in (Role.PRODUCER, Role.CONSUMER):
            continue
        reason = _evidence(span, endpoints)
        if reason is not None:
            key = (span.service, step_of(graph, node), span.name)
            groups.setdefault(key, []).append((node, reason))
    for (service, step, name), items in groups.items():
        kind = graph.spans[items[0][0]].kind.name
        yield Finding.of(
            SYNC_ONLY_MESSAGING,
            service=service,
            step=step,
            message=(
                f"{step} sends a message as a plain {kind} call {name!r}: {items[0][1]}, "
                "but no messaging span or attribute records it"
            ),
            spans=(graph.ref(n) for n, _ in items),
            key=name,
            count=len(items),
            details={"reason": items[0][1]},
        )
