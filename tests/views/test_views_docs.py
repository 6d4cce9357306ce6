"""The examples in the views' (and the web UI's) docstrings run, so they cannot drift
from the code."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tracebraid.views",
    "tracebraid.views.documents",
    "tracebraid.views.layout",
    "tracebraid.views.lint_json",
    "tracebraid.views.mermaid",
    "tracebraid.views.notes",
    "tracebraid.views.recent",
    "tracebraid.views.reports",
    "tracebraid.views.schema",
    "tracebraid.views.serialize",
    "tracebraid.views.tree",
    "tracebraid.views.units",
    "tracebraid.views.web.openapi",
    "tracebraid.views.web.records",
    # The web UI's search; also run by tests/store, here it must keep an example.
    "tracebraid.store.search",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no example"


def test_json_schema_doc_lists_every_shape_and_key() -> None:
    """docs/json-schema.md documents each TypedDict of the schema with all of its keys."""
    from pathlib import Path
    from typing import get_type_hints

    from tracebraid.views import schema

    doc = (Path(__file__).parents[2] / "docs" / "json-schema.md").read_text(encoding="utf-8")
    sections = {part.split("\n", 1)[0].strip(): part for part in doc.split("\n### ")[1:]}
    for name in schema.__all__:
        if name == "SCHEMAS":
            continue
        title = name.removesuffix("Json")
        assert title in sections, f"docs/json-schema.md has no section for {title}"
        for key in get_type_hints(getattr(schema, name), vars(schema)):
            assert f"| `{key}` |" in sections[title], f"{title}.{key} is not documented"
    for document in schema.SCHEMAS.values():
        assert document in doc
