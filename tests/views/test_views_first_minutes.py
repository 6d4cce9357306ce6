"""The first five minutes: the demo's hints run as printed, one default store, IDs by the
prefix the tree prints, ``list``, ``--version``, and every bad input a clear usage error."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from demo_settings import TIME_SCALE

from tracebraid import __version__
from tracebraid.views.cli import main
from tracebraid.views.commands import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from tracebraid.views.lint_cli import EXIT_NOTHING
from tracebraid.views.source import DEFAULT_STORE, PROGRAM_ENV, STORE_ENV


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """What argparse says on stderr for a bad option (it exits 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == EXIT_USAGE
    return capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tracebraid {__version__}"


def test_the_demo_and_the_commands_share_the_default_store_and_its_hints_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STORE_ENV, raising=False)
    monkeypatch.setenv(PROGRAM_ENV, "./scripts/tracebraid")
    code, out, err = run(capsys, "demo", "--time-scale", str(TIME_SCALE))
    assert code == EXIT_OK, err
    assert (tmp_path / DEFAULT_STORE.removeprefix("sqlite:///")).exists()
    assert f"stored in {DEFAULT_STORE}" in out
    hints = [line.strip() for line in out.splitlines() if line.startswith("  ./scripts/")]
    assert len(hints) >= 6 and not any("--store" in hint for hint in hints)
    for hint in hints:
        argv = hint.split()[1:]
        code, answer, err = run(capsys, *argv)
        assert code in (EXIT_OK, EXIT_FINDINGS), (hint, err)
        assert answer.strip() and "no store" not in err, hint


def test_missing_store_hint_is_true_and_names_the_slashes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///data/x.db"
    code, out, err = run(capsys, "show", "order_1", "--store", url)
    assert code == EXIT_USAGE and out == ""
    assert str(tmp_path / "data" / "x.db") in err and "four slashes" in err
    hint = re.search(r"run `tracebraid (demo[^`]*)`", err)
    assert hint is not None and not (tmp_path / "data").exists()
    code, _, err = run(capsys, *hint.group(1).split(), "--time-scale", str(TIME_SCALE))
    assert code == EXIT_OK, err
    assert (tmp_path / "data" / "x.db").exists()


def test_ids_by_the_prefix_the_tree_prints(
    capsys: pytest.CaptureFixture[str], demo_store: str
) -> None:
    code, out, err = run(capsys, "show", "order_", "--store", demo_store)
    assert code == EXIT_FINDINGS and out == ""
    assert "'order_' begins 2 IDs" in err and "give more of it" in err
    _, listed, _ = run(capsys, "list", "--store", demo_store)
    key = listed.splitlines()[1].split()[2]
    code, tree, err = run(capsys, "show", key, "--store", demo_store)
    assert code == EXIT_OK, err
    trace = re.search(r"trace ([0-9a-f]{8})…", tree)
    event = re.search(r"(evt_[0-9a-f]{8})…", tree)
    assert trace is not None and event is not None
    for shortened in (trace.group(0).removeprefix("trace "), trace.group(1)):
        code, again, err = run(capsys, "show", shortened, "--store", demo_store)
        assert code == EXIT_OK, err
        assert again.splitlines()[0] == tree.splitlines()[0]
    code, why, err = run(capsys, "why", event.group(0), "--store", demo_store)
    assert code == EXIT_OK, err
    assert why.strip()


def test_list_shows_each_workflow_newest_first_with_counts(
    capsys: pytest.CaptureFixture[str], demo_store: str, tmp_path: Path
) -> None:
    code, out, err = run(capsys, "list", "--store", demo_store)
    assert code == EXIT_OK, err
    header, *rows = out.splitlines()
    assert header.split()[:5] == ["started", "workflow", "root", "traces", "spans"]
    orders = [row for row in rows if "order_" in row]
    assert len(orders) == 2 and all("POST /orders" in row for row in orders)
    # the demo: two retries of the warehouse webhook, one loyalty branch in flight
    assert all(row.split()[-5:-3] == ["2", "0"] for row in orders)
    assert "2 workflow(s) in " in out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("pending", "--limit", "-3"), "argument --limit: must be at least 1, got -3"),
        (("retries", "--limit", "0"), "argument --limit: must be at least 1, got 0"),
        (("list", "--limit", "many"), "argument --limit: 'many' is not a whole number"),
    ],
)
def test_bad_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], said: str
) -> None:
    assert said in usage_error(capsys, *argv)


def test_list_limit_above_a_page(capsys: pytest.CaptureFixture[str], demo_store: str) -> None:
    code, out, err = run(capsys, "list", "--store", demo_store, "--limit", "201")
    assert code == EXIT_USAGE and out == "" and "--limit must be between 1 and 200" in err


def test_lint_on_nothing_does_not_pass(capsys: pytest.CaptureFixture[str], demo_store: str) -> None:
    window = ("--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z")
    code, out, _ = run(capsys, "lint", "--store", demo_store, *window)
    assert code == EXIT_NOTHING
    assert "nothing linted: no spans in" in out and "passing" not in out
    code, out, _ = run(capsys, "lint", "--store", demo_store)
    assert code == EXIT_OK and "passing" in out


def test_scripts_tracebraid_runs_the_venv_command_where_you_are(tmp_path: Path) -> None:
    """``./scripts/tracebraid`` (and so ``./scripts/demo``) runs ``.venv``'s command in the
    caller's directory, naming itself in hints. A stand-in ``.venv`` (already installed,
    per its stamp) records what it was run with, so nothing is installed here."""
    repo = Path(__file__).resolve().parents[2]
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    for name in ("_env.sh", "tracebraid", "demo"):
        shutil.copy2(repo / "scripts" / name, copy / "scripts" / name)
    shutil.copy2(repo / "pyproject.toml", copy / "pyproject.toml")
    bin_dir = copy / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    stamp = hashlib.sha256((copy / "pyproject.toml").read_bytes()).hexdigest()
    (copy / ".venv" / ".tracebraid-installed").write_text(stamp + "\n")
    for name in ("python", "tracebraid"):
        fake = bin_dir / name
        fake.write_text('#!/bin/sh\necho "$PWD|$TRACEBRAID_PROGRAM|$*"\n')
        fake.chmod(0o755)
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != PROGRAM_ENV}
    for script, args in (("tracebraid", ["list", "--limit", "3"]), ("demo", [])):
        done = subprocess.run(
            [str(copy / "scripts" / script), *args],
            cwd=elsewhere, env=env, capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        expected = " ".join(args) if script == "tracebraid" else "demo"
        assert done.stdout.strip() == f"{elsewhere}|./scripts/tracebraid|{expected}"
