"""Every operator command end to end through ``main``, against a store the demo filled."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from demo_settings import TIME_SCALE
from json_shape import check_document

from tracebraid.store import open_store
from tracebraid.testing.workflows import Workflow, islands
from tracebraid.views.cli import main
from tracebraid.views.commands import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """The command with ``--json``: its exit code and its document, checked against its shape."""
    code, out, _ = run(capsys, *argv, "--json")
    document = json.loads(out)
    check_document(document)
    return code, document


def workflows(url: str) -> list[str]:
    with closing(open_store(url)) as store:
        return sorted({c for s in store.recent_traces(10) for c in s.correlation_ids})


@pytest.fixture(scope="module")
def order(demo_store: str) -> str:
    return workflows(demo_store)[0]


def test_demo_prints_the_tree_read_back_from_the_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, out, err = run(capsys, "demo", "--store", url, "--time-scale", str(TIME_SCALE))
    assert code == EXIT_OK, err
    assert "read back from the store" in out
    attempts = [line for line in out.splitlines() if "attempt " in line and "✗" in line]
    assert len(attempts) == 2 and all("TimeoutError" in line for line in attempts)
    assert any("attempt 3 ✓" in line for line in out.splitlines())
    assert any("award-loyalty-points" in line and "in flight" in line for line in out.splitlines())
    assert "critical path (◆): POST /orders → reserve-inventory → send-warehouse-webhook" in out
    assert f"tracebraid pending --store {url}" in out
    assert len(workflows(url)) == 1


def test_demo_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'json.db'}"
    code, document = run_json(capsys, "demo", "--store", url, "--time-scale", "0.05")
    assert code == EXIT_OK
    assert document["store"] == url
    (placed,) = document["orders"]
    assert document["workflow"]["key"] == placed["correlation_id"]
    assert document["workflow"]["summary"]["retries"] == 2


def test_show(capsys: pytest.CaptureFixture[str], demo_store: str, order: str) -> None:
    code, out, _ = run(capsys, "show", order, "--store", demo_store)
    assert code == EXIT_OK
    assert out.startswith(order + " · trace ")
    assert "send-warehouse-webhook" in out and "attempt 2 ✗ TimeoutError" in out
    _, document = run_json(capsys, "show", order, "--store", demo_store)
    assert document["key"] == order and document["summary"]["correlation_ids"] == [order]


def test_show_ids_and_trace_key(
    capsys: pytest.CaptureFixture[str], demo_store: str, order: str
) -> None:
    _, document = run_json(capsys, "show", order, "--store", demo_store)
    trace_id = document["summary"]["trace_ids"][0]
    code, text, _ = run(capsys, "show", trace_id, "--store", demo_store, "--ids")
    assert code == EXIT_OK
    assert trace_id in text.splitlines()[0] and order in text.splitlines()[0]
    assert "caused by event evt_" in text


def test_show_with_a_topology(
    capsys: pytest.CaptureFixture[str], demo_store: str, order: str, tmp_path: Path
) -> None:
    topology = tmp_path / "topology.yaml"
    topology.write_text("events: {order.placed: [authorize-payment, reserve-inventory, fraud]}")
    code, out, _ = run(capsys, "show", order, "--store", demo_store, "--topology", str(topology))
    assert code == EXIT_OK
    assert any("fraud" in line and "not started" in line for line in out.splitlines())


def test_why(capsys: pytest.CaptureFixture[str], demo_store: str, order: str) -> None:
    _, document = run_json(capsys, "show", order, "--store", demo_store)
    webhook = next(b for b in document["branches"] if b["step"] == "send-warehouse-webhook")
    code, text, _ = run(capsys, "why", webhook["event_id"], "--store", demo_store)
    assert code == EXIT_OK
    rows = [line.split()[1] for line in text.splitlines() if line[:1].isdigit()]
    assert rows == ["POST", "order.placed", "reserve-inventory", "inventory.reserved"]
    assert "reaches the user action" in text
    span = webhook["attempts"][2]["span"]
    for target in (span["span_id"], f"{span['trace_id']}:{span['span_id']}"):
        code, chain = run_json(capsys, "why", target, "--store", demo_store)
        assert code == EXIT_OK and chain["steps"][-1]["span"]["span_id"] == span["span_id"]


def test_pending(capsys: pytest.CaptureFixture[str], demo_store: str) -> None:
    code, out, _ = run(capsys, "pending", "--store", demo_store)
    assert code == EXIT_OK
    rows = [line for line in out.splitlines() if "award-loyalty-points" in line]
    assert len(rows) == 2 and all("in flight" in row for row in rows)
    _, document = run_json(capsys, "pending", "--store", demo_store, "--since", "1h")
    assert document["totals"]["pending"] == 2 and len(document["workflows"]) == 2
    # The same window as an ISO 8601 time, as lint takes it; and one after every trace.
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    _, same = run_json(capsys, "pending", "--store", demo_store, "--since", an_hour_ago)
    assert same["totals"] == document["totals"]
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _, none = run_json(capsys, "retries", "--store", demo_store, "--since", later)
    assert none["workflows"] == []


def test_pending_lost_past_the_deadline_exits_1(
    capsys: pytest.CaptureFixture[str], demo_store: str, tmp_path: Path
) -> None:
    topology = tmp_path / "strict.yaml"
    topology.write_text(
        "events: {payment.authorized: {consumers: [award-loyalty-points], deadline: 1ms}}"
    )
    code, out, _ = run(capsys, "pending", "--store", demo_store, "--topology", str(topology))
    assert code == EXIT_FINDINGS
    assert "lost" in out and "0 pending, 2 lost" in out


def test_retries(capsys: pytest.CaptureFixture[str], demo_store: str, order: str) -> None:
    code, out, _ = run(capsys, "retries", "--store", demo_store)
    assert code == EXIT_OK
    lines = [line for line in out.splitlines() if "send-warehouse-webhook" in line]
    assert any("3 attempts, succeeded" in line and "TimeoutError ×2" in line for line in lines)
    consumer = next(line for line in lines if line.startswith("send-warehouse-webhook"))
    assert consumer.split()[1:5] == ["warehouse", "2", "2", "4"]  # 2 branches, 2 retried, 4 retries
    _, document = run_json(capsys, "retries", order, "--store", demo_store)
    (workflow,) = document["workflows"]
    assert workflow["key"] == order and workflow["total_retries"] == 2


def test_latency(capsys: pytest.CaptureFixture[str], demo_store: str, order: str) -> None:
    code, out, _ = run(capsys, "latency", order, "--store", demo_store)
    assert code == EXIT_OK
    assert "critical path segments, longest first" in out
    ranked = [line.split() for line in out.splitlines() if line[:2].strip().isdigit()]
    assert ranked[0][1:3] == ["failed", "attempt"]
    assert "lagging: project-order-summary waited" in out
    _, document = run_json(capsys, "latency", order, "--store", demo_store)
    assert [lag["consumer"] for lag in document["lagging"]] == ["project-order-summary"]


def test_export_mermaid(
    capsys: pytest.CaptureFixture[str], demo_store: str, order: str, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "export", order, "--mermaid", "--store", demo_store)
    assert code == EXIT_OK and out.startswith("flowchart TD\n")
    target = tmp_path / "flow.mmd"
    code, out, err = run(capsys, "export", order, "--store", demo_store, "-o", str(target))
    assert code == EXIT_OK and out == "" and "wrote" in err
    assert target.read_text(encoding="utf-8").startswith("flowchart TD\n")
    run_json(capsys, "export", order, "--store", demo_store)


@pytest.mark.parametrize("command", ["show", "latency", "export", "why", "retries"])
def test_unknown_key_says_what_exists(
    capsys: pytest.CaptureFixture[str], demo_store: str, order: str, command: str
) -> None:
    code, out, err = run(capsys, command, "order_nope", "--store", demo_store)
    assert code == EXIT_FINDINGS and out == ""
    assert f"tracebraid {command}: no " in err and "'order_nope'" in err
    assert "try `tracebraid show` with one of: " in err and order in err


def test_why_unknown_span_id(capsys: pytest.CaptureFixture[str], demo_store: str) -> None:
    code, _, err = run(capsys, "why", "00f067aa0ba902b7", "--store", demo_store)
    assert code == EXIT_FINDINGS and "TRACE_ID:SPAN_ID" in err


def test_bad_store_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "show", "order_1", "--store", "mongodb://somewhere/x")
    assert code == EXIT_USAGE and out == ""
    assert "unknown store URL scheme 'mongodb'" in err


def test_missing_store_file_is_not_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "absent.db"
    code, _, err = run(capsys, "pending", "--store", f"sqlite:///{path}")
    assert code == EXIT_USAGE and "does not exist" in err and "tracebraid demo" in err
    assert not path.exists()


def test_bad_topology_and_since(
    capsys: pytest.CaptureFixture[str], demo_store: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("consumers: [x]")
    code, _, err = run(capsys, "pending", "--store", demo_store, "--topology", str(broken))
    assert code == EXIT_USAGE and "'events'" in err
    code, _, err = run(capsys, "pending", "--store", demo_store, "--since", "yesterday")
    assert code == EXIT_USAGE
    assert "--since 'yesterday' is neither a duration (10m, 2h, 7d) nor an ISO 8601 time" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["show"])
    assert exit_info.value.code == EXIT_USAGE
    assert "TRACE_OR_CORRELATION" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--orders", "0"])
    assert exit_info.value.code == EXIT_USAGE
    assert "argument --orders: must be at least 1, got 0" in capsys.readouterr().err


def test_demo_on_an_unreachable_broker_names_the_address(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "x.db"
    code, _, err = run(
        capsys,
        "demo",
        "--broker",
        "redis",
        "--broker-url",
        "redis://127.0.0.1:1/0",
        "--store",
        f"sqlite:///{path}",
    )
    assert code == EXIT_USAGE
    assert "127.0.0.1:1" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def islands_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Workflow]:
    """A store holding two orders whose legacy-audit consumer started its own trace."""
    url = f"sqlite:///{tmp_path_factory.mktemp('islands') / 'islands.db'}"
    flow = islands(2)
    with closing(open_store(url)) as store:
        store.write(flow.spans)
    return url, flow


def test_stitched_hops_across_traces(
    capsys: pytest.CaptureFixture[str], islands_store: tuple[str, Workflow]
) -> None:
    url, flow = islands_store
    audit = next(s for s in flow.spans if s.name == "legacy-audit")
    code, out, _ = run(capsys, "why", f"{audit.trace_id}:{audit.span_id}", "--store", url)
    assert code == EXIT_OK
    stitched = [line for line in out.splitlines() if "stitched by event ID" in line]
    assert len(stitched) == 1 and "legacy-audit" in stitched[0]
    assert "crossed a propagation break" in out
    _, chain = run_json(capsys, "why", audit.span_id, "--store", url)
    assert chain["stitched_hops"] == 1 and chain["steps"][-1]["stitched"] is True
    code, out, _ = run(capsys, "show", audit.trace_id, "--store", url)
    assert code == EXIT_OK and "⚠ stitched" in out and "broken link:" in out
    code, out, _ = run(capsys, "export", audit.trace_id, "--store", url)
    assert "-. stitched .->" in out
