"""Redis stream entries <-> messages: the payload, the message ID and the headers.

An entry tracebraid writes has at most three fields: the payload under
``tb:payload``, the message ID under ``tb:message-id`` and the headers, as one JSON
object of strings, under ``tb:headers`` (left out when there are none). One field for
all headers, not a field per header: redis-py encodes every argument and parses every
reply in Python, so each field costs two arguments on ``XADD`` and two replies on
``XREADGROUP``, several microseconds a field on each side, where one JSON object of
the same headers costs about one (a traced message carries four or five headers).
An ``x-event-id`` header equal to the message ID is not written a second time; it is
restored from ``tb:message-id`` on delivery.

Entries written otherwise are read too: any other field (an entry of an earlier
tracebraid that wrote a field per header, or of another producer) is a header under
its own name, and an entry another producer wrote (no ``tb:payload``) is delivered
with all its fields as headers and as a JSON object payload, and its entry ID as
message ID. A ``tb:headers`` that is not a JSON object is ignored, and so is any value
in it that is neither text nor a number.

Example::

    >>> fields = entry_fields(b"{}", {"traceparent": "00-ab", "x-event-id": "evt_1"}, "evt_1")
    >>> fields
    {'tb:payload': b'{}', 'tb:message-id': 'evt_1', 'tb:headers': '{"traceparent":"00-ab"}'}
    >>> entry_delivery("orders", "g", b"1-0", {k.encode(): v if isinstance(v, bytes)
    ...                else v.encode() for k, v in fields.items()}, 1).headers
    {'traceparent': '00-ab', 'x-event-id': 'evt_1'}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tracebraid.errors import ConfigurationError
from tracebraid.sdk.broker.base import Delivery, Headers
from tracebraid.sdk.carriers import EVENT_ID_HEADER

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

__all__ = ["MESSAGE_ID_FIELD", "PAYLOAD_FIELD", "entry_delivery", "entry_fields"]

PAYLOAD_FIELD = "tb:payload"
MESSAGE_ID_FIELD = "tb:message-id"
HEADERS_FIELD = "tb:headers"
_RESERVED_PREFIX = "tb:"
_PAYLOAD_KEY = PAYLOAD_FIELD.encode()
_MESSAGE_ID_KEY = MESSAGE_ID_FIELD.encode()
_HEADERS_KEY = HEADERS_FIELD.encode()
_AS_TEXT = (str, int, float)
_pack = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_unpack = json.JSONDecoder().decode


def entry_fields(payload: bytes, headers: Headers, message_id: str) -> dict[FieldT, EncodableT]:
    """The fields ``XADD`` writes for one message."""
    reserved = [name for name in headers if name.startswith(_RESERVED_PREFIX)]
    if reserved:
        raise ConfigurationError(
            f"headers {reserved} use the prefix {_RESERVED_PREFIX!r} that Redis stream entries "
            "reserve for tracebraid's own fields; rename them"
        )
    fields: dict[FieldT, EncodableT] = {PAYLOAD_FIELD: bytes(payload), MESSAGE_ID_FIELD: message_id}
    if headers:
        if headers.get(EVENT_ID_HEADER) == message_id:  # tb:message-id carries it
            headers = {k: v for k, v in headers.items() if k != EVENT_ID_HEADER}
        if headers:
            try:
                fields[HEADERS_FIELD] = _pack(headers if type(headers) is dict else dict(headers))
            except TypeError:  # bytes values, which a field per header used to take
                fields[HEADERS_FIELD] = _pack(_texts(headers))
    return fields


def _texts(headers: Mapping[str, object]) -> dict[str, object]:
    """Header values JSON can hold: bytes as their UTF-8 text (undecodable ones left out,
    as they were when read back from a field of their own), everything else as it is."""
    texts: dict[str, object] = {}
    for name, value in headers.items():
        if isinstance(value, bytes | bytearray | memoryview):
            try:
                texts[name] = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                continue
        else:
            texts[name] = value
    return texts


def entry_delivery(
    stream: str, group: str, entry_id: bytes, fields: Mapping[bytes, bytes], count: int
) -> Delivery:
    """The ``Delivery`` an entry is, for ``group``, delivered ``count`` times so far."""
    payload = fields.get(_PAYLOAD_KEY)
    carried = fields.get(_MESSAGE_ID_KEY)
    packed = fields.get(_HEADERS_KEY)
    headers: dict[str, str] | None = None
    if payload is not None and carried is not None and len(fields) == 2 + (packed is not None):
        # What tracebraid writes: the payload stays bytes, the rest is one look-up each.
        try:
            message_id = carried.decode("utf-8")
            headers = {} if packed is None else _unpacked(packed.decode("utf-8"))
        except UnicodeDecodeError:
            headers = None
    if headers is None:
        texts: dict[str, str] = {}
        for raw_name, raw_value in fields.items():
            try:  # not contextlib.suppress: a context manager per field costs more
                texts[raw_name.decode("utf-8")] = raw_value.decode("utf-8")
            except UnicodeDecodeError:
                continue
        if payload is None:  # another producer's entry: its fields are the message
            payload = json.dumps(texts, separators=(",", ":")).encode()
        message_id = texts.get(MESSAGE_ID_FIELD) or ""
        headers = {k: v for k, v in texts.items() if not k.startswith(_RESERVED_PREFIX)}
        if HEADERS_FIELD in texts:
            headers.update(_unpacked(texts[HEADERS_FIELD]))
    if message_id and EVENT_ID_HEADER not in headers:
        headers[EVENT_ID_HEADER] = message_id
    assert payload is not None, "both paths found or made one"
    return Delivery(
        destination=stream,
        group=group,
        message_id=message_id or entry_id.decode(),
        payload=payload,
        headers=headers,
        delivery_count=count,
    )


def _unpacked(packed: str) -> dict[str, str]:
    """The headers in a ``tb:headers`` field: its strings, and its numbers as text (as
    redis-py writes them); none when it is not a JSON object."""
    try:
        headers = _unpack(packed)
    except ValueError:
        return {}
    if type(headers) is not dict:
        return {}
    for value in headers.values():
        if type(value) is not str:
            # Numbers as redis-py wrote them in a field of their own; nothing else.
            return {
                k: v if type(v) is str else repr(v)
                for k, v in headers.items()
                if type(v) in _AS_TEXT
            }
    unpacked: dict[str, str] = headers
    return unpacked
