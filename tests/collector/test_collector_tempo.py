"""``tracebraid import`` of Tempo's and Jaeger's API answers, and of files that are no span
file at all: named with the formats expected, non-zero exit, no store created."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tracebraid.collector.files import read_span_file
from tracebraid.collector.tempo import as_otlp, is_tempo
from tracebraid.store import open_store
from tracebraid.views.cli import main

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ROOT = "00f067aa0ba902b7"
CHILD = "b7ad6b7169203331"


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def _span(span_id: str, parent: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "traceId": _b64(TRACE),
        "spanId": _b64(span_id),
        "parentSpanId": _b64(parent) if parent else "",
        "name": name,
        "kind": "SPAN_KIND_SERVER" if not parent else "SPAN_KIND_CONSUMER",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000100000000",
        **extra,
    }


CORRELATED = {
    "attributes": [
        {"key": "messaging.message.conversation_id", "value": {"stringValue": "order_77"}}
    ]
}

# Tempo 1.x/2.x /api/traces/<id>: batches, the older instrumentationLibrary names, base64 IDs.
TEMPO_V1 = {
    "batches": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
            "instrumentationLibrarySpans": [
                {
                    "instrumentationLibrary": {"name": "lib"},
                    "spans": [
                        _span(ROOT, "", "POST /orders", **CORRELATED),
                        _span(CHILD, ROOT, "orders process", **CORRELATED),
                    ],
                }
            ],
        }
    ]
}
# Tempo's /api/v2/traces/<id>: {"trace": {"resourceSpans": [...]}} with scopeSpans.
TEMPO_V2 = {
    "trace": {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [{"scope": {"name": "lib"}, "spans": [_span(ROOT, "", "GET /")]}],
            }
        ]
    }
}


def _import(capsys: pytest.CaptureFixture[str], db: Path, *files: Path) -> tuple[int, str]:
    code = main(["import", *map(str, files), "--store", f"sqlite:///{db}"])
    return code, capsys.readouterr().err


def test_tempo_v1_ids_and_library_names_become_otlp() -> None:
    assert is_tempo(TEMPO_V1) and is_tempo(TEMPO_V2) and not is_tempo({"resourceSpans": []})
    (scope,) = as_otlp(TEMPO_V1)["resourceSpans"][0]["scopeSpans"]
    assert scope["scope"] == {"name": "lib"}
    assert [(s["spanId"], s["parentSpanId"]) for s in scope["spans"]] == [(ROOT, ""), (CHILD, ROOT)]
    assert scope["spans"][0]["traceId"] == TRACE


@pytest.mark.parametrize(("doc", "names"), [(TEMPO_V1, 2), (TEMPO_V2, 1)])
def test_tempo_answers_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: dict[str, Any], names: int
) -> None:
    path = tmp_path / "tempo.json"
    path.write_text(json.dumps(doc, indent=2))
    (chunk,) = list(read_span_file(path))
    assert chunk.problems == [] and len(chunk.spans) == names
    assert {s.trace_id for s in chunk.spans} == {TRACE}
    code, err = _import(capsys, tmp_path / "t.db", path)
    assert code == 0, err
    assert f"imported {names} spans" in err
    workflow = "order_77" if doc is TEMPO_V1 else TRACE
    assert f"workflows: {workflow} (then: tracebraid show {workflow} --store" in err


def test_jaeger_api_answer_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The query API's GET /api/traces/<id>: {"data": [trace], "total": 0, "errors": null, ...}
    answer = {
        "data": [
            {
                "traceID": TRACE,
                "spans": [
                    {
                        "traceID": TRACE,
                        "spanID": ROOT,
                        "operationName": "GET /",
                        "references": [],
                        "startTime": 1700000000000000,
                        "duration": 1000,
                        "tags": [],
                        "logs": [],
                        "processID": "p1",
                    }
                ],
                "processes": {"p1": {"serviceName": "api", "tags": []}},
            }
        ],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps(answer))
    code, err = _import(capsys, tmp_path / "j.db", path)
    assert code == 0, err
    assert f"workflows: {TRACE}" in err


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('{"foo": 1}', "its keys: foo"),
        ("hello world\n", "no span could be read"),
        ("", "no span could be read"),
    ],
)
def test_a_file_that_is_no_span_file_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, said: str
) -> None:
    path = tmp_path / "odd.json"
    path.write_text(content)
    db = tmp_path / "never.db"
    code, err = _import(capsys, db, path)
    assert code == 2
    assert said in err and str(path) in err
    assert "Jaeger JSON" in err and "Tempo JSON" in err and "OTLP JSON lines" in err
    assert "nothing imported" in err and not db.exists()


def test_a_missing_file_stops_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "tempo.json"
    good.write_text(json.dumps(TEMPO_V2))
    db = tmp_path / "never.db"
    code, err = _import(capsys, db, good, tmp_path / "typo.json")
    assert code == 2 and "no such file" in err and "typo.json" in err
    assert not db.exists()


def test_an_existing_store_is_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, odd = tmp_path / "tempo.json", tmp_path / "odd.json"
    good.write_text(json.dumps(TEMPO_V2))
    odd.write_text('{"foo": 1}')
    db = tmp_path / "s.db"
    assert _import(capsys, db, good)[0] == 0
    code, _ = _import(capsys, db, odd)
    assert code == 2
    store = open_store(f"sqlite:///{db}")
    try:
        assert [s.span_id for s in store.spans_of_trace(TRACE)] == [ROOT]  # type: ignore[arg-type]
    finally:
        store.close()
