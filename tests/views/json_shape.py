"""Check a JSON document against the TypedDicts of ``tracebraid.views.schema``.

The TypedDicts are the documented v1 shapes; walking their type hints checks that
every required key is present, that no undocumented key slipped in, and that every
value has the declared type (``None`` only where the shape says ``| None``).
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin, get_type_hints

from tracebraid.views import schema


def _is_typeddict(shape: Any) -> bool:
    return isinstance(shape, type) and hasattr(shape, "__required_keys__")


def check(value: Any, shape: Any, where: str = "$") -> None:
    """Raise ``AssertionError`` naming the path of the first value that does not fit."""
    origin = get_origin(shape)
    if origin in (Union, types.UnionType):
        options = get_args(shape)
        if value is None and type(None) in options:
            return
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                check(value, option, where)
                return
            except AssertionError as error:
                errors.append(str(error))
        raise AssertionError(f"{where}: {value!r} fits none of {options}: {errors}")
    if _is_typeddict(shape):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        hints = get_type_hints(shape, vars(schema))
        missing = set(shape.__required_keys__) - set(value)
        extra = set(value) - set(hints)
        assert not missing, f"{where}: missing keys {sorted(missing)}"
        assert not extra, f"{where}: undocumented keys {sorted(extra)}"
        for key, hint in hints.items():
            check(value[key], hint, f"{where}.{key}")
        return
    if origin is list:
        assert isinstance(value, list), f"{where}: expected a list, got {value!r}"
        (item,) = get_args(shape)
        for position, element in enumerate(value):
            check(element, item, f"{where}[{position}]")
        return
    if origin is dict:
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        key_type, item = get_args(shape)
        for key, element in value.items():
            check(key, key_type, f"{where} key")
            check(element, item, f"{where}.{key}")
        return
    if shape is float:
        assert isinstance(value, int | float) and not isinstance(value, bool), where
        return
    if shape is int:
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r}"
        return
    if shape in (str, bool):
        assert isinstance(value, shape), f"{where}: expected {shape.__name__}, got {value!r}"
        return
    raise AssertionError(f"{where}: shape {shape!r} is not handled")  # pragma: no cover


DOCUMENTS: dict[str, Any] = {
    "tracebraid.workflow/v1": schema.WorkflowDocument,
    "tracebraid.why/v1": schema.WhyDocument,
    "tracebraid.pending/v1": schema.PendingDocument,
    "tracebraid.retries/v1": schema.RetriesDocument,
    "tracebraid.latency/v1": schema.LatencyDocument,
    "tracebraid.mermaid/v1": schema.MermaidDocument,
    "tracebraid.demo/v1": schema.DemoDocument,
}


def check_document(document: Any) -> None:
    """A document fits the shape its ``"schema"`` key names."""
    assert isinstance(document, dict) and "schema" in document, "no schema key"
    assert document["schema"] in DOCUMENTS, f"unknown schema {document['schema']!r}"
    check(document, DOCUMENTS[document["schema"]])


__all__ = ["DOCUMENTS", "check", "check_document"]
