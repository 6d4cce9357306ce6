"""The write queue: merged transactions, prepared rows beside plain spans, refusals."""

from __future__ import annotations

import threading
from collections.abc import Sequence, Sized
from pathlib import Path

import pytest

from tracebraid.collector import QueueFull, WriteQueue
from tracebraid.model import Span
from tracebraid.store import SqliteStore, WriteResult
from tracebraid.testing.workflows import order_flow


class GatedStore(SqliteStore):
    """A SQLite store whose writes wait for ``gate`` and are recorded, in order."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.calls: list[tuple[str, int]] = []

    def write(self, spans: Sequence[Span]) -> WriteResult:
        self.gate.wait(10)
        self.calls.append(("write", len(spans)))
        return super().write(spans)

    def write_prepared(self, batches: Sequence[Sized]) -> WriteResult:
        self.gate.wait(10)
        self.calls.append(("write_prepared", sum(len(b) for b in batches)))
        return super().write_prepared(batches)


@pytest.fixture
def store(tmp_path: Path) -> GatedStore:
    return GatedStore(tmp_path / "spans.db")


def test_plain_and_prepared_requests_are_never_merged(store: GatedStore) -> None:
    spans = order_flow().spans
    queue = WriteQueue(store, batch_spans=10_000)
    encode = store.row_encoder()
    first = queue.submit(spans[:1])  # the writer takes this one and waits at the gate
    futures = [
        queue.submit_prepared(encode(spans[1:5])),
        queue.submit_prepared(encode(spans[5:9])),
        queue.submit(spans[9:12]),
        queue.submit(spans[12:]),
    ]
    store.gate.set()
    results = [f.result(10) for f in (first, *futures)]
    queue.close()
    assert store.calls == [
        ("write", 1),
        ("write_prepared", 8),
        ("write", len(spans) - 9),
    ]
    assert sum(r.inserted for r in {id(r): r for r in results}.values()) == len(spans)
    assert store.span_count() == len(spans)
    store.close()


def test_prepared_rows_count_against_the_bound(store: GatedStore) -> None:
    spans = order_flow().spans
    queue = WriteQueue(store, max_spans=len(spans))
    encode = store.row_encoder()
    held = queue.submit_prepared(encode(spans))
    with pytest.raises(QueueFull, match=f"holds {len(spans)} of {len(spans)} spans"):
        queue.submit_prepared(encode(spans[:1]))
    store.gate.set()
    assert held.result(10).inserted == len(spans)
    queue.close()
    store.close()


class PlainStore:
    """Only what the SpanStore protocol's write needs: no prepared rows."""

    def write(self, spans: Sequence[Span]) -> WriteResult:
        return WriteResult(inserted=len(spans), duplicates=0)


def test_a_store_without_prepared_rows_says_so() -> None:
    queue = WriteQueue(PlainStore())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="PlainStore does not take prepared rows"):
        queue.submit_prepared([])
    queue.close()
