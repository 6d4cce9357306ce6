"""Files that are not span files are refused quickly and with a reason: zeros (framed as
empty records), a 2 GB sparse file, a FIFO; and time options past 2262 are not a crash."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from collector_spans import make_span

from tracebraid.collector import encode_protobuf
from tracebraid.collector.files import read_span_file
from tracebraid.errors import InputError
from tracebraid.store import SqliteStore
from tracebraid.views.cli import main
from tracebraid.views.lint_cli import EXIT_NOTHING


def _import(capsys: pytest.CaptureFixture[str], db: Path, path: Path) -> tuple[int, str]:
    code = main(["import", str(path), "--store", f"sqlite:///{db}"])
    return code, capsys.readouterr().err


def test_a_file_of_zeros_is_not_a_span_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "zeros.bin"
    path.write_bytes(bytes(20 * 1024 * 1024))
    started = time.perf_counter()
    code, err = _import(capsys, tmp_path / "spans.db", path)
    assert time.perf_counter() - started < 2.0
    assert code == 2  # nothing imported
    assert "not a span file" in err and not (tmp_path / "spans.db").exists()


def test_two_gigabytes_of_sparse_zeros_are_refused_in_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(2 * 1024**3)
    started = time.perf_counter()
    problems = [p for chunk in read_span_file(path) for p in chunk.problems]
    assert time.perf_counter() - started < 1.0
    assert len(problems) == 1
    assert "not a span file" in problems[0].reason


def test_empty_records_between_real_ones_are_skipped(tmp_path: Path) -> None:
    """A few empty records do not stop a real file: only a run of them does."""
    records = [encode_protobuf([make_span(n)]) for n in range(3)]
    framed = b""
    for record in records:
        framed += len(record).to_bytes(4, "big") + record + bytes(4) * 3  # 3 empty records
    path = tmp_path / "spans.pb"
    path.write_bytes(framed)
    chunks = list(read_span_file(path))
    assert sum(len(c.spans) for c in chunks) == 3
    assert not [p for c in chunks for p in c.problems]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spans.fifo"
    os.mkfifo(path)
    with pytest.raises(InputError, match=r"not a regular file.*FIFO"):
        next(iter(read_span_file(path)))
    code, err = _import(capsys, tmp_path / "spans.db", path)
    assert code == 2
    assert "FIFO" in err


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="a directory"):
        next(iter(read_span_file(tmp_path)))


@pytest.mark.parametrize("until", ["2300-01-01", "9000-01-01T00:00:00Z", "99999999d"])
def test_lint_until_past_2262_is_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], until: str
) -> None:
    db = tmp_path / "spans.db"
    SqliteStore(db).close()
    code = main(["lint", "--until", until, "--since", "99999999d", "--store", f"sqlite:///{db}"])
    captured = capsys.readouterr()
    assert code == EXIT_NOTHING, captured.err  # an empty store: nothing linted, not "passing"
    assert "Traceback" not in captured.err
