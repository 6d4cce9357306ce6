"""The API's OpenAPI 3.1 document, made from the same endpoint table that builds the routes.

Each ``Endpoint`` names its parameters and the ``TypedDict`` it answers with; the
response schemas are those ``TypedDict`` s turned into JSON Schema (``json_schema``),
so the document cannot drift from the shapes mypy checks the serialisers against.

Example::

    >>> from typing import TypedDict
    >>> class Point(TypedDict):
    ...     x: int
    ...     label: str | None
    >>> components: dict[str, object] = {}
    >>> json_schema(Point, components)
    {'$ref': '#/components/schemas/Point'}
    >>> components["Point"]["properties"]["label"]
    {'type': ['string', 'null']}
"""

from __future__ import annotations

import types
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Endpoint", "Param", "json_schema", "openapi_document"]

Handler = Callable[[Request], Awaitable[Response]]

_SCALARS: dict[object, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class Param:
    """One path or query parameter."""

    name: str
    description: str
    type: Literal["string", "integer", "number", "boolean"] = "string"
    where: Literal["path", "query"] = "query"
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One ``GET`` route of the API: where, what it takes, what it answers."""

    path: str
    operation_id: str
    summary: str
    response: type
    handler: Handler
    params: tuple[Param, ...] = ()
    description: str = ""
    media_type: str = "application/json"
    """What the 200 answer is; anything but JSON is documented as a binary body."""


def _is_typed_dict(tp: object) -> bool:
    return isinstance(tp, type) and typing.is_typeddict(tp)


def json_schema(tp: object, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a type annotation; ``TypedDict`` s go to ``components`` by name."""
    if _is_typed_dict(tp):
        assert isinstance(tp, type)
        name = tp.__name__
        if name not in components:
            components[name] = {}  # placeholder: recursive shapes refer to themselves
            hints = typing.get_type_hints(tp)
            components[name] = {
                "type": "object",
                "properties": {key: json_schema(value, components) for key, value in hints.items()},
                "required": sorted(hints),
            }
        return {"$ref": f"#/components/schemas/{name}"}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if tp is type(None):
        return {"type": "null"}
    if tp is object or tp is Any:
        return {}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        options = [json_schema(arg, components) for arg in args]
        plain = [o.get("type") for o in options]
        if all(isinstance(t, str) for t in plain):
            return {"type": plain}
        return {"anyOf": options}
    if origin in (list, tuple, Sequence):
        return {"type": "array", "items": json_schema(args[0], components) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": json_schema(args[1], components)}
    if origin is Literal:
        return {"enum": list(args)}
    return {}


def _parameter(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": param.type}
    if param.enum:
        schema["enum"] = list(param.enum)
    if param.minimum is not None:
        schema["minimum"] = param.minimum
    if param.maximum is not None:
        schema["maximum"] = param.maximum
    return {
        "name": param.name,
        "in": param.where,
        "required": param.where == "path",
        "description": param.description,
        "schema": schema,
    }


_ERROR = {
    "description": "what was wrong and what to do",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
                "required": ["error", "status"],
            }
        }
    },
}


def openapi_document(
    endpoints: Sequence[Endpoint], *, version: str, description: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints`` (every one ``GET``, bearer token optional)."""
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": endpoint.operation_id,
            "summary": endpoint.summary,
            "parameters": [_parameter(p) for p in endpoint.params],
            "responses": {
                "200": {
                    "description": "the document",
                    "content": {
                        endpoint.media_type: {
                            "schema": json_schema(endpoint.response, components)
                            if endpoint.media_type == "application/json"
                            else {"type": "string", "format": "binary"}
                        }
                    },
                },
                "400": _ERROR,
                "401": {"description": "the bearer token is missing or wrong"},
                "404": _ERROR,
                "503": _ERROR,
            },
        }
        if endpoint.description:
            operation["description"] = endpoint.description
        paths[endpoint.path] = {"get": operation}
    return {
        "openapi": "3.1.0",
        "info": {"title": "tracebraid API", "version": version, "description": description},
        "servers": [{"url": "/"}],
        "security": [{}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "required when tracebraid serve runs with --token",
                }
            },
        },
    }
