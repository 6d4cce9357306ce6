"""``tracebraid lint`` end to end: store and span files (OTLP protobuf, OTLP JSON, Jaeger
JSON), conventions, time window, --fail-on, text and JSON output, and every exit code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan

from tracebraid.demo.mistakes import MISTAKES
from tracebraid.model import Span
from tracebraid.store import SqliteStore
from tracebraid.views.cli import main


def _hex_ids(node: object) -> object:
    """OTLP/JSON writes IDs as hex, where protobuf's JSON mapping writes base64."""
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in _ID_KEYS and isinstance(v, str) else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


_ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def otlp_json(spans: tuple[ReadableSpan, ...]) -> str:
    """The spans as one OTLP/JSON document, as the specification writes it."""
    return json.dumps(_hex_ids(MessageToDict(encode_spans(spans))))


def _store(path: Path, spans: list[Span]) -> str:
    with SqliteStore(path) as store:
        store.write(spans)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory: pytest.TempPathFactory, demo_spans: list[Span]) -> str:
    return _store(tmp_path_factory.mktemp("lint") / "clean.db", demo_spans)


@pytest.fixture(scope="module")
def mistaken_store(tmp_path_factory: pytest.TempPathFactory, mistaken_spans: list[Span]) -> str:
    return _store(tmp_path_factory.mktemp("lint") / "mistaken.db", mistaken_spans)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["lint", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_rules_lists_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--rules")
    assert code == 0
    for rule in ("TB101", "TB102", "TB201", "TB304", "TB401", "TB501", "TB602", "TB701"):
        assert rule in out


def test_the_clean_demo_passes(capsys: pytest.CaptureFixture[str], clean_store: str) -> None:
    code, out, _ = _run(capsys, "--store", clean_store, "--fail-on", "warning")
    assert code == 0
    assert "linted 1 workflows" in out and "0 error, 0 warning, 0 info" in out
    assert "propagation coverage per service" in out and "passing" in out


def test_the_planted_mistakes_fail_the_build(
    capsys: pytest.CaptureFixture[str], mistaken_store: str
) -> None:
    code, out, _ = _run(capsys, "--store", mistaken_store)
    assert code == 1
    assert "ERROR   TB101 broken-causality  payment › authorize-payment" in out
    assert "failing: findings at or above error" in out
    for mistake in MISTAKES:
        assert f"{mistake.rule} " in out and f"{mistake.service} › {mistake.step}" in out
    assert _run(capsys, "--store", mistaken_store, "--fail-on", "never")[0] == 0


def test_conventions_can_lower_the_gate(
    capsys: pytest.CaptureFixture[str], mistaken_store: str, tmp_path: Path
) -> None:
    conventions = tmp_path / "conventions.yaml"
    conventions.write_text(
        "traceConventions:\n  rules: {TB101: warning, TB201: warning}\n"
        "  allow:\n    - rule: TB701\n      reason: replaced next sprint\n"
    )
    code, out, _ = _run(capsys, "--store", mistaken_store, "--conventions", str(conventions))
    assert code == 0
    assert "0 error, 5 warning" in out and "2 allowed by the conventions" in out
    assert (
        _run(
            capsys,
            "--store",
            mistaken_store,
            "--conventions",
            str(conventions),
            "--fail-on",
            "warning",
        )[0]
        == 1
    )


def test_json_output(capsys: pytest.CaptureFixture[str], mistaken_store: str) -> None:
    code, out, _ = _run(capsys, "--store", mistaken_store, "--json")
    document = json.loads(out)
    assert code == document["exit_code"] == 1
    assert document["schema"] == "tracebraid.lint/v1"
    assert (document["workflows"], document["counts"]) == (
        2,
        {"info": 0, "warning": 4, "error": 2},
    )
    first = document["findings"][0]
    assert first["rule"] == "TB101" and first["severity"] == "error" and first["count"] == 2
    assert set(first) >= {"service", "step", "message", "why", "fix", "spans", "details"}
    assert first["spans"][0]["name"] == "payment.authorized publish"
    payment = next(c for c in document["coverage"] if c["service"] == "payment")
    assert payment == {
        "service": "payment",
        "sent": 2,
        "sent_intact": 0,
        "received": 2,
        "received_intact": 2,
        "ratio": 0.5,
    }


def test_otlp_protobuf_and_json_files(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mistaken_readable: tuple[ReadableSpan, ...],
) -> None:
    request = encode_spans(mistaken_readable)
    protobuf = tmp_path / "spans.pb"
    protobuf.write_bytes(request.SerializeToString())
    document = tmp_path / "spans.json"
    document.write_text(otlp_json(mistaken_readable))
    for path in (protobuf, document):
        code, out, _ = _run(capsys, str(path), "--json")
        document = json.loads(out)
        assert code == 1
        assert sorted(f["rule"] for f in document["findings"]) == sorted(m.rule for m in MISTAKES)


def _jaeger(tmp_path: Path) -> Path:
    trace_a, trace_b = "a" * 32, "b" * 32

    def span(
        trace: str,
        span_id: str,
        name: str,
        kind: str,
        process: str,
        tags: dict[str, str],
        parent: str | None = None,
    ) -> dict[str, object]:
        return {
            "traceID": trace,
            "spanID": span_id,
            "operationName": name,
            "references": [{"refType": "CHILD_OF", "traceID": trace, "spanID": parent}]
            if parent
            else [],
            "startTime": 1_767_225_600_000_000 + int(span_id[0]) * 1000,
            "duration": 1000,
            "tags": [{"key": "span.kind", "type": "string", "value": kind}]
            + [{"key": k, "type": "string", "value": v} for k, v in tags.items()],
            "processID": process,
        }

    messaging = {
        "messaging.system": "rabbitmq",
        "messaging.destination": "orders",
        "messaging.message_id": "m-1",
    }
    doc = {
        "data": [
            {
                "traceID": trace_a,
                "spans": [
                    span(trace_a, "1" * 16, "POST /orders", "server", "p1", {}),
                    span(trace_a, "2" * 16, "orders send", "producer", "p1", messaging, "1" * 16),
                ],
                "processes": {"p1": {"serviceName": "checkout-api", "tags": []}},
            },
            {
                "traceID": trace_b,
                "spans": [
                    span(
                        trace_b,
                        "3" * 16,
                        "orders receive",
                        "consumer",
                        "p2",
                        {**messaging, "messaging.operation": "receive"},
                    ),
                ],
                "processes": {"p2": {"serviceName": "inventory", "tags": []}},
            },
        ]
    }
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps(doc))
    return path


def test_jaeger_json_with_a_dropped_header(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _run(capsys, str(_jaeger(tmp_path)), "--json")
    document = json.loads(out)
    assert code == 1
    broken = document["findings"][0]
    assert (broken["rule"], broken["service"], broken["step"]) == (
        "TB101",
        "checkout-api",
        "POST /orders",
    )
    assert {f["rule"] for f in document["findings"]} == {"TB101", "TB401", "TB501"}


def test_the_time_window(capsys: pytest.CaptureFixture[str], clean_store: str) -> None:
    assert '"workflows": 1' in _run(capsys, "--store", clean_store, "--since", "1d", "--json")[1]
    old = _run(capsys, "--store", clean_store, "--until", "2001-01-01T00:00:00Z", "--json")[1]
    assert json.loads(old)["workflows"] == 0
    code, _, err = _run(capsys, "--store", clean_store, "--since", "yesterday")
    assert code == 2 and "--since 'yesterday' is neither a duration" in err


def test_bad_conventions_exit_2_naming_the_line(
    capsys: pytest.CaptureFixture[str], clean_store: str, tmp_path: Path
) -> None:
    conventions = tmp_path / "bad.yaml"
    conventions.write_text("traceConventions:\n  requiredFields:\n    - corelationId\n")
    code, out, err = _run(capsys, "--store", clean_store, "--conventions", str(conventions))
    assert (code, out) == (2, "")
    assert f"{conventions}:3: unknown field 'corelationId'" in err


def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], clean_store: str, tmp_path: Path
) -> None:
    spans = _jaeger(tmp_path)
    assert _run(capsys, str(spans), "--store", clean_store)[0] == 2
    code, _, err = _run(capsys, str(tmp_path / "missing.json"))
    assert code == 2 and "no such span file" in err
    with pytest.raises(SystemExit) as raised:
        main(["lint", "--fail-on", "sometimes"])
    assert raised.value.code == 2


def test_an_unreadable_store_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "--store", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 3 and "no store at" in err
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    code, _, err = _run(capsys, "--store", f"sqlite:///{garbage}")
    assert code == 3 and "not a tracebraid store" in err


def test_a_malformed_line_is_reported_and_the_rest_linted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mistaken_readable: tuple[ReadableSpan, ...]
) -> None:
    lines = tmp_path / "spans.jsonl"
    lines.write_text(f"{otlp_json(mistaken_readable)}\nnot json\n")
    code, out, err = _run(capsys, str(lines), "--json")
    assert code == 1 and f"{lines}:2: not valid JSON" in err
    assert len(json.loads(out)["findings"]) == len(MISTAKES)


def test_workers_give_the_same_report(
    capsys: pytest.CaptureFixture[str], mistaken_store: str
) -> None:
    one = json.loads(_run(capsys, "--store", mistaken_store, "--json")[1])
    code, out, _ = _run(capsys, "--store", mistaken_store, "--json", "--workers", "2")
    assert code == 1 and json.loads(out) == one
    code, _, err = _run(capsys, "--store", mistaken_store, "--workers", "0")
    assert code == 2 and "--workers must be at least 1" in err
