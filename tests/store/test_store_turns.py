"""Write turns between processes: one holder at a time, released when the holder dies."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

from tracebraid.store import SqliteStore
from tracebraid.store._turns import FileTurn
from tracebraid.testing.workflows import order_flow

HOLDER = """
import sys, time
from tracebraid.store._turns import FileTurn
from tracebraid.testing.workflows import order_flow
with FileTurn(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(60)
"""


def _wait_for_turn(turn: FileTurn, got: threading.Event) -> None:
    with turn:
        got.set()


def test_a_turn_held_by_a_killed_process_passes_to_the_next(tmp_path: Path) -> None:
    path = str(tmp_path / "spans.db-writer.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    got = threading.Event()
    waiter = threading.Thread(
        target=_wait_for_turn, args=(pickle.loads(pickle.dumps(FileTurn(path))), got)
    )
    waiter.start()
    assert not got.wait(0.5), "the turn was given while another process held it"
    killed_at = time.monotonic()
    holder.kill()
    holder.wait(10)
    holder.stdout.close()
    assert got.wait(10)
    # flock wakes the waiter as the kernel drops the dead holder's lock: no polling.
    assert time.monotonic() - killed_at < 1.0
    waiter.join()


def test_threads_of_one_process_take_turns_too(tmp_path: Path) -> None:
    turn = FileTurn(str(tmp_path / "lock"))
    inside = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(200):
            with turn:
                with guard:
                    inside += 1
                    most = max(most, inside)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_a_reopened_store_takes_turns_through_the_file_beside_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "spans.db")
    reopen = store.reopener()
    assert reopen is not None
    again = pickle.loads(pickle.dumps(reopen))()
    assert not (tmp_path / "spans.db-writer.lock").exists()
    span = order_flow().spans[0]
    assert again.write([span]).inserted == 1
    assert (tmp_path / "spans.db-writer.lock").exists()
    assert store.spans_of_trace(span.trace_id) == [span]
    again.close()
    store.close()
