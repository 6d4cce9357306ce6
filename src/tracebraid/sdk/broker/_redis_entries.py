"""Redis stream entries <-> messages: headers as fields beside tracebraid's own two.

An entry holds the headers under their own names, the payload under ``tb:payload``
and the message ID under ``tb:message-id``. An entry another producer wrote (no
``tb:payload``) is delivered with all its fields as headers and as a JSON object
payload, and its entry ID as message ID.

Example::

    >>> fields = entry_fields(b"{}", {"traceparent": "00-ab"}, "evt_1")
    >>> sorted(fields)
    ['tb:message-id', 'tb:payload', 'traceparent']
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tracebraid.errors import ConfigurationError
from tracebraid.sdk.broker.base import Delivery, Headers

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

__all__ = ["MESSAGE_ID_FIELD", "PAYLOAD_FIELD", "entry_delivery", "entry_fields"]

PAYLOAD_FIELD = "tb:payload"
MESSAGE_ID_FIELD = "tb:message-id"
_RESERVED_PREFIX = "tb:"


def entry_fields(payload: bytes, headers: Headers, message_id: str) -> dict[FieldT, EncodableT]:
    """The fields ``XADD`` writes for one message."""
    reserved = [name for name in headers if name.startswith(_RESERVED_PREFIX)]
    if reserved:
        raise ConfigurationError(
            f"headers {reserved} use the prefix {_RESERVED_PREFIX!r} that Redis stream entries "
            "reserve for tracebraid's own fields; rename them"
        )
    fields: dict[FieldT, EncodableT] = {name: value for name, value in headers.items()}
    fields[PAYLOAD_FIELD] = bytes(payload)
    fields[MESSAGE_ID_FIELD] = message_id
    return fields


def entry_delivery(
    stream: str, group: str, entry_id: bytes, fields: Mapping[bytes, bytes], count: int
) -> Delivery:
    """The ``Delivery`` an entry is, for ``group``, delivered ``count`` times so far."""
    texts: dict[str, str] = {}
    for raw_name, raw_value in fields.items():
        with contextlib.suppress(UnicodeDecodeError):
            texts[raw_name.decode("utf-8")] = raw_value.decode("utf-8")
    payload = fields.get(PAYLOAD_FIELD.encode())
    if payload is None:  # another producer's entry: its fields are the message
        payload = json.dumps(texts, separators=(",", ":")).encode()
    message_id = texts.pop(MESSAGE_ID_FIELD, None) or entry_id.decode()
    headers = {k: v for k, v in texts.items() if not k.startswith(_RESERVED_PREFIX)}
    return Delivery(
        destination=stream,
        group=group,
        message_id=message_id,
        payload=payload,
        headers=headers,
        delivery_count=count,
    )
