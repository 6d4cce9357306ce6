"""A partition's progress and processing marker: what is committed, what counts as handed out."""

from __future__ import annotations

from tracebraid.sdk.broker._kafka_progress import (
    PartitionProgress,
    ProcessingMarker,
    decode_marker,
)


def test_the_frontier_waits_for_the_lowest_record_in_process() -> None:
    progress = PartitionProgress(committed=10)
    assert [progress.start(offset) for offset in (10, 11, 12)] == [0, 0, 0]
    progress.finish(12)
    progress.finish(11)
    assert progress.frontier == 10 and progress.in_flight == {10}
    # all three were handed out: a lost member's successor counts each once more
    assert progress.marker("orders", 2) == ProcessingMarker(
        "orders", 2, 10, ((10, 1), (11, 1), (12, 1))
    )
    progress.finish(10)
    assert progress.frontier == 13
    assert progress.marker("orders", 2).started == ()


def test_a_successor_counts_the_records_its_predecessor_handed_out() -> None:
    lost = PartitionProgress(committed=4)
    lost.start(4)
    lost.start(5)
    lost.finish(5)  # 5 finished, but 4 had not: the commit stayed at 4
    marker = decode_marker(lost.marker("orders", 0).encode())
    assert marker is not None
    successor = PartitionProgress(marker.committed, dict(marker.started))
    assert (successor.start(4), successor.start(5), successor.start(6)) == (1, 1, 0)
    assert successor.marker().started == ((4, 2), (5, 2), (6, 1))


def test_marker_entries_before_the_committed_offset_are_finished_work() -> None:
    progress = PartitionProgress(committed=7, earlier={3: 2, 6: 1, 7: 1})
    assert progress.start(7) == 1
    assert progress.marker().started == ((7, 2),)


def test_a_gap_in_offsets_does_not_hold_the_commit_back() -> None:
    progress = PartitionProgress(committed=0)
    progress.start(0)
    progress.start(5)  # a compacted topic or a transaction marker leaves gaps
    progress.finish(0)
    progress.finish(5)
    assert progress.frontier == 6


def test_a_value_that_is_not_a_marker_is_none() -> None:
    assert decode_marker(None) is None
    assert decode_marker(b"") is None
    assert decode_marker(b"{not json") is None
    assert decode_marker(b'{"topic": 3}') is None
