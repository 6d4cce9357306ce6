"""Header carriers: the header names tracebraid writes, and OpenTelemetry getters/setters.

Three carrier shapes are supported, each with a ``Getter`` and a ``Setter`` usable with
any OpenTelemetry propagator:

- ``dict[str, str]`` (HTTP-like headers, NATS, Redis stream fields): ``STR_HEADERS``;
- ``dict[str, bytes]`` (AMQP header tables, some clients): ``BYTES_HEADERS``;
- ``list[tuple[str, bytes]]`` (Kafka record headers): ``KAFKA_HEADERS``.

Getters look a key up exactly first, then case-insensitively (brokers and proxies
change header case). They return ``None`` for bytes that are not UTF-8, as
OpenTelemetry's propagators expect for a missing header; ``raw`` returns the value
undecoded so ``tracebraid.sdk.propagation`` can say why a header was unusable.

Example::

    >>> from opentelemetry.propagate import extract
    >>> headers = [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    >>> KAFKA_HEADERS.get(headers, "TraceParent")
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import TypeAlias

from opentelemetry.propagators.textmap import Getter, Setter

__all__ = [
    "ATTEMPT_HEADER",
    "BAGGAGE_HEADER",
    "BYTES_HEADERS",
    "CAUSATION_ID_HEADER",
    "CORRELATION_ID_HEADER",
    "EVENT_ID_HEADER",
    "EVENT_NAME_HEADER",
    "KAFKA_HEADERS",
    "STR_HEADERS",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "BytesHeaders",
    "HeaderCarrier",
    "HeaderGetter",
    "KafkaHeaders",
    "StrHeaders",
]

TRACEPARENT_HEADER = "traceparent"
TRACESTATE_HEADER = "tracestate"
BAGGAGE_HEADER = "baggage"
CORRELATION_ID_HEADER = "x-correlation-id"
EVENT_ID_HEADER = "x-event-id"
CAUSATION_ID_HEADER = "x-causation-id"
EVENT_NAME_HEADER = "x-event-name"
ATTEMPT_HEADER = "x-attempt"

HeaderCarrier: TypeAlias = (
    MutableMapping[str, str] | MutableMapping[str, bytes] | list[tuple[str, bytes]]
)
"""Any carrier ``inject`` writes into."""

_RawValue: TypeAlias = str | bytes | bytearray | memoryview


def _decode(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


class HeaderGetter(Getter[object]):
    """Base of the getters: ``raw`` finds a value, ``get`` decodes it for OpenTelemetry."""

    def raw(self, carrier: object, key: str) -> object | None:
        """The value stored under ``key`` (any case), undecoded; ``None`` when absent."""
        raise NotImplementedError

    def get(self, carrier: object, key: str) -> list[str] | None:
        text = _decode(self.raw(carrier, key))
        return None if text is None else [text]


class _MappingGetter(HeaderGetter):
    def raw(self, carrier: object, key: str) -> object | None:
        if not isinstance(carrier, Mapping):
            return None
        value: object | None = carrier.get(key)
        if value is not None:
            return value
        lowered = key.lower()
        for name, candidate in carrier.items():
            if isinstance(name, str) and name.lower() == lowered:
                found: object = candidate
                return found
        return None

    def keys(self, carrier: object) -> list[str]:
        if not isinstance(carrier, Mapping):
            return []
        return [k for k in carrier if isinstance(k, str)]


class _PairsGetter(HeaderGetter):
    def raw(self, carrier: object, key: str) -> object | None:
        if not isinstance(carrier, Iterable):
            return None
        lowered = None
        found: object | None = None
        for pair in carrier:
            if not isinstance(pair, tuple) or len(pair) != 2:
                continue
            name = pair[0]
            if name == key:
                value: object = pair[1]
                return value
            if found is None and isinstance(name, str):
                lowered = lowered or key.lower()
                if name.lower() == lowered:
                    found = pair[1]
        return found

    def keys(self, carrier: object) -> list[str]:
        if not isinstance(carrier, Iterable):
            return []
        return [
            p[0] for p in carrier if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
        ]


class StrHeaders(_MappingGetter, Setter[MutableMapping[str, str]]):
    """Getter and setter for ``dict[str, str]`` headers (reads bytes values too)."""

    def set(self, carrier: MutableMapping[str, str], key: str, value: str) -> None:
        carrier[key] = value


class BytesHeaders(_MappingGetter, Setter[MutableMapping[str, bytes]]):
    """Getter and setter for ``dict[str, bytes]`` headers (reads str values too)."""

    def set(self, carrier: MutableMapping[str, bytes], key: str, value: str) -> None:
        carrier[key] = value.encode("utf-8")


class KafkaHeaders(_PairsGetter, Setter[list[tuple[str, bytes]]]):
    """Getter and setter for Kafka-style ``list[tuple[str, bytes]]`` record headers.

    Setting a key replaces an earlier header with the same name, so re-publishing a
    consumed record never carries two ``traceparent`` headers.
    """

    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier[:] = [pair for pair in carrier if pair[0] != key]
        carrier.append((key, value.encode("utf-8")))


STR_HEADERS = StrHeaders()
BYTES_HEADERS = BytesHeaders()
KAFKA_HEADERS = KafkaHeaders()
