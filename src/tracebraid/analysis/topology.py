"""Which consumers every event is expected to reach, and by when: declared or learned.

A topology file is YAML::

    # topology.yaml
    default_deadline: 5m          # optional: applies to events without their own
    events:
      order.placed:
        consumers: [payment, inventory]
        deadline: 30s             # optional: from the publish to a successful attempt
      payment.authorized:
        consumers: [summary]
      inventory.reserved: [warehouse]   # shorthand: just the consumers

- Keys are event names (``tracebraid.event_name``). Spans from stock
  instrumentation carry no event name; their events are matched by destination
  (``messaging.destination.name``) instead, so a key may also be a destination.
- A consumer entry matches a branch whose consumer name (the consumer group, or
  ``service:destination``), service or step name equals it, so ``payment``,
  ``authorize-payment`` and a group called ``payment`` all work.
- Deadlines are numbers of seconds or strings with a unit: ``250ms``, ``30s``,
  ``5m``, ``1h`` (also ``us``, ``ns``, ``d``). A branch that has not succeeded once
  its deadline has passed is *lost*, not pending.

``parse_topology`` is pure (text in, ``Topology`` out); ``load_topology`` reads a
file; ``learn_topology`` derives expectations from past spans (the store's history):
the consumers that processed each event name before, and a deadline of
``LEARNED_DEADLINE_FACTOR`` times the slowest publish-to-finish seen (at least
``LEARNED_DEADLINE_MIN_NS``). A declared deadline always overrides a learned one.

Example::

    >>> topology = parse_topology("events: {order.placed: {consumers: [payment], deadline: 30s}}")
    >>> topology.expectation("order.placed")
    EventExpectation(event_name='order.placed', consumers=('payment',), deadline_ns=30000000000, \
source='topology')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from tracebraid.errors import ConfigurationError
from tracebraid.messaging import (
    Role,
    is_dead_letter_destination,
    is_start_marker,
    normalize,
)
from tracebraid.model import EventId, Span

__all__ = [
    "LEARNED_DEADLINE_FACTOR",
    "LEARNED_DEADLINE_MIN_NS",
    "EventExpectation",
    "Topology",
    "learn_topology",
    "load_topology",
    "parse_duration",
    "parse_topology",
]

_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
          "h": 3_600_000_000_000, "d": 86_400_000_000_000}  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h|d)?\s*$")
LEARNED_DEADLINE_FACTOR = 10
"""A learned deadline is this many times the slowest publish-to-finish seen in history..."""
LEARNED_DEADLINE_MIN_NS = 60_000_000_000
"""...and never less than a minute, so a fast history does not make every pause a loss."""


@dataclass(frozen=True, slots=True)
class EventExpectation:
    """The consumers one event name must reach, the deadline to reach them (ns), and
    where the expectation came from: ``topology`` (declared) or ``history`` (learned)."""

    event_name: str
    consumers: tuple[str, ...]
    deadline_ns: int | None = None
    source: str = "topology"


@dataclass(frozen=True, slots=True)
class Topology:
    """Expected consumers per event name (or destination), with a default deadline."""

    events: tuple[EventExpectation, ...]
    default_deadline_ns: int | None = None

    def expectation(self, key: str | None) -> EventExpectation | None:
        """The expectation for an event name (or destination), with the default deadline."""
        if key is None:
            return None
        for expected in self.events:
            if expected.event_name == key:
                if expected.deadline_ns is None and self.default_deadline_ns is not None:
                    return EventExpectation(
                        key, expected.consumers, self.default_deadline_ns, expected.source
                    )
                return expected
        return None

    def merged_with(self, fallback: Topology) -> Topology:
        """This topology, plus ``fallback``'s expectations for events it does not declare."""
        declared = {expected.event_name for expected in self.events}
        extra = tuple(e for e in fallback.events if e.event_name not in declared)
        return Topology(self.events + extra, self.default_deadline_ns)


def parse_duration(value: object, *, where: str = "deadline") -> int:
    """Nanoseconds in ``value``: a number of seconds, or ``"250ms"``, ``"30s"``, ``"5m"``..."""
    if isinstance(value, bool):
        raise ConfigurationError(f"{where}: {value!r} is not a duration; write e.g. 500ms or 30s")
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigurationError(f"{where}: a duration cannot be negative, got {value!r}")
        return round(value * 1_000_000_000)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigurationError(
            f"{where}: {value!r} is not a duration; write a number of seconds or a number "
            "with a unit, e.g. 500ms, 30s, 5m or 1h"
        )
    return round(float(match.group(1)) * _UNITS[match.group(2) or "s"])


def _consumers(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise ConfigurationError(
            f"{where}: consumers must be a list of consumer names, e.g. [payment, inventory]; "
            f"got {value!r}"
        )
    return tuple(dict.fromkeys(value))


def parse_topology(text: str, *, origin: str = "topology") -> Topology:
    """Parse topology YAML (format in the module docstring); ``origin`` names it in errors."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{origin}: not valid YAML: {error}") from error
    if not isinstance(document, Mapping) or not isinstance(document.get("events"), Mapping):
        raise ConfigurationError(
            f"{origin}: expected a mapping with an 'events' key, e.g. "
            "'events: {order.placed: {consumers: [payment]}}'"
        )
    unknown = sorted(set(document) - {"events", "default_deadline", "version"})
    if unknown:
        raise ConfigurationError(
            f"{origin}: unknown top-level keys {unknown}; allowed: events, default_deadline"
        )
    default = document.get("default_deadline")
    default_ns = None
    if default is not None:
        default_ns = parse_duration(default, where=f"{origin}: default_deadline")
    expectations: list[EventExpectation] = []
    for name, entry in document["events"].items():
        where = f"{origin}: events.{name}"
        if isinstance(entry, list | str):
            expectations.append(EventExpectation(str(name), _consumers(entry, where)))
            continue
        if not isinstance(entry, Mapping) or "consumers" not in entry:
            raise ConfigurationError(
                f"{where}: expected 'consumers' (and optionally 'deadline'), "
                f"e.g. {{consumers: [payment], deadline: 30s}}; got {entry!r}"
            )
        extra = sorted(set(entry) - {"consumers", "deadline"})
        if extra:
            raise ConfigurationError(f"{where}: unknown keys {extra}; allowed: consumers, deadline")
        deadline = entry.get("deadline")
        expectations.append(
            EventExpectation(
                str(name),
                _consumers(entry["consumers"], f"{where}.consumers"),
                None if deadline is None else parse_duration(deadline, where=f"{where}.deadline"),
            )
        )
    return Topology(tuple(expectations), default_ns)


def load_topology(path: str | Path) -> Topology:
    """Read and parse a topology file (the I/O edge of ``parse_topology``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(
            f"cannot read topology file {str(path)!r}: {error.strerror or error}; "
            "check the path given with --topology"
        ) from error
    return parse_topology(text, origin=str(path))


def learn_topology(history: Iterable[Span]) -> Topology:
    """Expected consumers learned from past spans: every consumer seen per event name
    (readers of dead-letter queues excluded: they only see the events given up on).

    Events without an event name are keyed by their producer's destination (found
    through the event ID), else by the consumer's own destination.
    """
    producer_key: dict[EventId, str] = {}
    published: dict[EventId, int] = {}
    consumers: list[tuple[EventId | None, str | None, str, int]] = []
    for span in history:
        if is_start_marker(span):
            continue
        view = normalize(span)
        if is_dead_letter_destination(view.destination):
            # A dead-letter queue's readers expect only the events given up on, and a
            # republish there names the queue, not the event.
            continue
        if view.role is Role.PRODUCER and view.event_id is not None:
            key = view.event_name or view.destination
            if key:
                producer_key.setdefault(view.event_id, key)
                published[view.event_id] = min(published.get(view.event_id, span.end_ns),
                                               span.end_ns)  # fmt: skip
        elif view.role is Role.CONSUMER and view.consumer is not None:
            own = view.event_name or view.destination
            consumers.append((view.event_id, own, view.consumer, span.end_ns))
    learned: dict[str, dict[str, None]] = {}
    slowest: dict[str, int] = {}
    for event_id, own_key, consumer, finished in consumers:
        key = (producer_key.get(event_id) if event_id else None) or own_key
        if key:
            learned.setdefault(key, {})[consumer] = None
            if event_id is not None and event_id in published:
                took = max(0, finished - published[event_id])
                slowest[key] = max(slowest.get(key, 0), took)
    expectations = [
        EventExpectation(key, tuple(learned[key]), _learned_deadline(slowest.get(key)), "history")
        for key in sorted(learned)
    ]
    return Topology(tuple(expectations))


def _learned_deadline(slowest_ns: int | None) -> int | None:
    if slowest_ns is None:
        return None
    return max(LEARNED_DEADLINE_MIN_NS, LEARNED_DEADLINE_FACTOR * slowest_ns)
