"""Real processes on one store file: a reader alongside the writer, and two writers."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from store_factories import trace_of

from tracebraid.model import TraceId
from tracebraid.store import SqliteStore

BATCHES = 120
SPANS_PER_BATCH = 50

READER = textwrap.dedent(
    """
    import json, sys, time
    from tracebraid.store import SqliteStore

    path, expected = sys.argv[1], int(sys.argv[2])
    store = SqliteStore(path)
    print("ready", flush=True)
    counts, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        count = store.span_count()
        page = store.recent_traces(limit=3)
        if page:
            spans = store.spans_of_trace(page[0].trace_id)
            # A trace is written in one transaction: a reader sees all of it or none.
            assert len(spans) == page[0].span_count, (len(spans), page[0].span_count)
        counts.append(count)
        if count >= expected:
            break
    store.close()
    print(json.dumps(counts))
    """
)

WRITER = textwrap.dedent(
    """
    import sys
    from tracebraid.model import Span, SpanId, SpanKind, TraceId
    from tracebraid.store import SqliteStore

    path, batches, per_batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = SqliteStore(path)
    for b in range(batches):
        trace = TraceId(f"{0xFEED << 100 | b:032x}")
        store.write([
            Span(trace, SpanId(f"{i + 1:016x}"), None, "other-writer", SpanKind.INTERNAL,
                 i, i + 1, "writer-2")
            for i in range(per_batch)
        ])
    store.close()
    """
)


ACKNOWLEDGING_WRITER = textwrap.dedent(
    """
    import sys
    from tracebraid.model import Span, SpanId, SpanKind, TraceId
    from tracebraid.store import SqliteStore

    store = SqliteStore(sys.argv[1])
    for b in range(1_000_000):
        trace = TraceId(f"{b + 1:032x}")
        store.write([
            Span(trace, SpanId(f"{i + 1:016x}"), None, "step", SpanKind.INTERNAL, b, b + 1, "w")
            for i in range(100)
        ])
        print(b, flush=True)  # acknowledged: committed before write() returned
    """
)


def _python(script: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_reader_process_sees_a_growing_store_while_this_one_writes(tmp_path: Path) -> None:
    path = tmp_path / "spans.db"
    total = BATCHES * SPANS_PER_BATCH
    with SqliteStore(path) as store:
        store.write(trace_of(SPANS_PER_BATCH))
        reader = _python(READER, path, total)
        assert reader.stdout is not None
        assert reader.stdout.readline() == "ready\n"
        for i in range(1, BATCHES):
            store.write(trace_of(SPANS_PER_BATCH, start_ms=i))
            time.sleep(0.002)
        out, err = reader.communicate(timeout=90)
    assert reader.returncode == 0, err
    assert "locked" not in err
    counts = json.loads(out)
    print(f"reader made {len(counts)} reads, {len(set(counts))} distinct counts")
    assert counts == sorted(counts), "the reader saw the store shrink"
    assert counts[-1] == total
    assert len(set(counts)) > 1, "the reader should have seen the store grow"
    assert all(count % SPANS_PER_BATCH == 0 for count in counts), "saw half a batch"


def test_two_writer_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "spans.db"
    with SqliteStore(path) as store:
        other = _python(WRITER, path, BATCHES, SPANS_PER_BATCH)
        for i in range(BATCHES):
            store.write(trace_of(SPANS_PER_BATCH, start_ms=i))
        _, err = other.communicate(timeout=90)
        assert other.returncode == 0, err
        assert store.span_count() == 2 * BATCHES * SPANS_PER_BATCH
        assert len(store.recent_traces(limit=1000)) == 2 * BATCHES


def test_a_killed_writer_loses_nothing_it_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "spans.db"
    SqliteStore(path).close()
    writer = _python(ACKNOWLEDGING_WRITER, path)
    assert writer.stdout is not None
    acknowledged = -1
    while acknowledged < 150:
        acknowledged = int(writer.stdout.readline())
    writer.send_signal(signal.SIGKILL)  # mid-write, most likely
    writer.communicate(timeout=30)
    with SqliteStore(path) as store:
        count = store.span_count()
        assert count >= (acknowledged + 1) * 100
        assert count % 100 == 0, "a batch was stored in part"
        for b in range(acknowledged + 1):
            assert len(store.spans_of_trace(TraceId(f"{b + 1:032x}"))) == 100
        assert sum(summary.span_count for summary in store.recent_traces(limit=10**6)) == count
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
