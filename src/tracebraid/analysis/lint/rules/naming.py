"""Technical span names (TB501): consumer spans named after the library, not the business step.

With ``spanNaming.style: business-step-first`` a consumer span must say what the
step does (``reserve-inventory``). A name is *technical-only* when nothing is left of
it once the messaging vocabulary (``process``, ``consume``, ``receive``, ``handle``...),
HTTP methods, broker and library names, the span's own destination and the
project's ``technicalNames`` are taken away: ``process``, ``consume``,
``orders receive``, ``orders process`` (stock instrumentation's
``<destination> <operation>``). A consumer span named like an HTTP route
(``POST /orders``) is technical too: a messaging step is not a request.

The finding lists the names seen and suggests one: the consumer group when it reads
like a business step, else a verb-noun step.

Example::

    >>> is_technical("orders receive", destination="orders")
    True
    >>> is_technical("reserve-inventory", destination="orders")
    False
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator

from tracebraid.analysis.lint.catalog import TECHNICAL_SPAN_NAME
from tracebraid.analysis.lint.conventions import Conventions, NamingStyle
from tracebraid.analysis.lint.findings import Finding
from tracebraid.analysis.workflow import WorkflowAnalysis
from tracebraid.messaging import ConsumerIdentity, Role, system_of

__all__ = ["TECHNICAL_WORDS", "is_technical", "technical_span_names"]

TECHNICAL_WORDS = frozenset(
    {
        # messaging operations and their nouns
        "process", "processing", "processor", "consume", "consumer", "consuming", "receive",
        "received", "receiver", "deliver", "delivery", "handle", "handler", "handling",
        "message", "messages", "msg", "event", "events", "publish", "send", "create",
        "settle", "ack", "poll", "dispatch", "dispatcher", "listener", "listen", "subscriber",
        "subscription", "callback", "on", "run", "execute", "exec", "task", "job", "worker",
        "work", "queue", "topic", "stream", "batch",
        # HTTP
        "http", "https", "get", "post", "put", "patch", "delete", "head", "options",
        # brokers and libraries that name spans after themselves
        "amqp", "rabbitmq", "pika", "aio", "kafka", "aiokafka", "confluent", "nats",
        "jetstream", "redis", "sqs", "sns", "pubsub", "celery", "dramatiq", "rq", "faust",
        "memory", "inproc", "tracebraid",
    }
)  # fmt: skip
"""Words that say how a message was handled, never which business step handled it."""

_WORD = re.compile(r"[a-z0-9]+")
_HTTP_ROUTE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+/", re.IGNORECASE)


def is_technical(
    name: str,
    *,
    destination: str | None = None,
    system: str | None = None,
    extra: Collection[str] = (),
) -> bool:
    """True when ``name`` says nothing about the business step (see the module docstring)."""
    if _HTTP_ROUTE.match(name) or name.lower() in extra:
        return True
    words = _WORD.findall(name.lower())
    noise = set(TECHNICAL_WORDS)
    for text in (destination, system):
        if text:
            noise.update(_WORD.findall(text.lower()))
    for term in extra:
        noise.update(_WORD.findall(term.lower()))
    return not [w for w in words if w not in noise and not w.isdigit()]


def _suggestion(group: str | None, step: str, destination: str | None) -> str:
    for candidate in (group, step):
        if candidate and not is_technical(candidate, destination=destination):
            return candidate
    about = destination or "the event"
    return f"a verb-noun business step saying what it does with {about} (e.g. reserve-inventory)"


def technical_span_names(analysis: WorkflowAnalysis, conventions: Conventions) -> Iterator[Finding]:
    """TB501: one finding per (service, consumer) whose consumer spans have technical names."""
    graph = analysis.graph
    groups: dict[tuple[str, str], list[int]] = {}
    # Consumers repeat the same few names: judge each (service, name, destination) once.
    judged: dict[tuple[str, str, str | None, object], bool] = {}
    for node, view in enumerate(graph.views):
        if view.role is not Role.CONSUMER:
            continue
        span = graph.spans[node]
        system = system_of(span)
        key = (span.service, span.name, view.destination, system)
        technical = judged.get(key)
        if technical is None:
            rules = conventions.for_service(span.service)
            technical = rules.naming is NamingStyle.BUSINESS_STEP_FIRST and is_technical(
                span.name,
                destination=view.destination,
                system=system if isinstance(system, str) else None,
                extra=rules.technical_names,
            )
            judged[key] = technical
        if technical:
            groups.setdefault((span.service, view.consumer or span.name), []).append(node)
    for (service, _consumer), nodes in groups.items():
        view = graph.views[nodes[0]]
        names = tuple(dict.fromkeys(graph.spans[n].name for n in nodes))
        group = view.consumer if view.consumer_identified_by is ConsumerIdentity.GROUP else None
        suggestion = _suggestion(group, view.step, view.destination)
        step = view.step
        quoted = ", ".join(repr(n) for n in names)
        yield Finding.of(
            TECHNICAL_SPAN_NAME,
            service=service,
            step=step,
            message=(
                f"{service} names its consumer span{'s' if len(names) > 1 else ''} {quoted}: "
                f"technical terms only; suggested: {suggestion}"
            ),
            spans=(graph.ref(n) for n in nodes),
            key=" | ".join(names),
            count=len(nodes),
            fix=(
                f"Name the consumer span after its business step, e.g. {suggestion!r}: pass "
                "step= to tracebraid.sdk.consuming / EventBus.consumer, or rename the span."
                if " " not in suggestion
                else TECHNICAL_SPAN_NAME.fix
            ),
            details={"names": names, "suggestion": suggestion},
        )
