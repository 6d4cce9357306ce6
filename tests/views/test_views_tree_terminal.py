"""The tree in a terminal and in a pipe: no dim base style, 80 columns with guides kept,
whole lines with no trailing spaces when piped, and ``--summary`` folding healthy branches."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.text import Text

from tracebraid.analysis import WorkflowAnalysis, analyze
from tracebraid.testing.workflows import fan_out
from tracebraid.views import tree
from tracebraid.views.cli import main
from tracebraid.views.commands._options import show
from tracebraid.views.layout import build_tree
from tracebraid.views.tree import FittedLines, branch_count, render_tree, tree_lines

GUIDES = "│├└─▶ "


def in_terminal(renderable: object, width: int) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    console.print(renderable)
    return out.getvalue().splitlines()


def long_lines(analysis: WorkflowAnalysis) -> list[Text]:
    """The demo tree with every identity: lines of 100+ columns."""
    lines = tree_lines(analysis, ids=True)
    assert max(len(line.plain) for line in lines) > 100
    return lines


def test_no_base_style_dims_a_line(order_analysis: WorkflowAnalysis) -> None:
    lines = tree_lines(order_analysis)
    assert all(not line.style for line in lines)
    failed = next(line for line in lines if "✗" in line.plain)
    cross = failed.plain.index("✗")
    styles = [str(span.style) for span in failed.spans if span.start <= cross < span.end]
    assert styles == ["red"]  # the failure is red, and nothing dims it
    guides = next(span for span in failed.spans if span.start == 0)
    assert str(guides.style) == "dim"  # only the guides are


def test_80_columns_keep_the_guides_and_elide_the_middle(
    order_analysis: WorkflowAnalysis,
) -> None:
    lines = long_lines(order_analysis)
    shown = in_terminal(FittedLines(lines), 80)
    assert len(shown) == len(lines)  # one terminal line per tree line: nothing wrapped
    for line, screen in zip(lines, shown, strict=True):
        assert len(screen) <= 80
        plain = line.plain
        guides = plain[: len(plain) - len(plain.lstrip(GUIDES))]
        assert screen.startswith(guides)
        if len(plain) <= 80:
            assert screen == plain
        else:
            head, _, tail = screen.partition("…")
            assert plain.startswith(head) and plain.endswith(tail) and tail


def test_piped_lines_are_whole_without_trailing_spaces(
    order_analysis: WorkflowAnalysis, capsys: pytest.CaptureFixture[str]
) -> None:
    show(render_tree(order_analysis, ids=True))
    out = capsys.readouterr().out.splitlines()
    for line in long_lines(order_analysis):
        assert line.plain in out  # not cut, not wrapped
    assert all(line == line.rstrip() for line in out)


def test_summary_keeps_every_branch_with_something_to_see(
    order_analysis: WorkflowAnalysis,
) -> None:
    folded = "\n".join(line.plain for line in tree_lines(order_analysis, summary=True))
    # retried (and critical), in flight, and the parent of an in-flight branch all stay
    for kept in (
        "send-warehouse-webhook",
        "attempt 1 ✗",
        "award-loyalty-points",
        "authorize-payment",
    ):
        assert kept in folded


def test_summary_folds_healthy_branches_past_a_size(monkeypatch: pytest.MonkeyPatch) -> None:
    wide = analyze(fan_out(250).spans)
    assert branch_count(build_tree(wide)) == 250 > tree.SUMMARY_BRANCHES
    lines = [line.plain for line in tree_lines(wide, summary=None)]
    # the critical branch stays; the other 249 healthy ones are one line, the last child
    assert len(lines) == 4 and lines[2].startswith("    ├─▶ ◆ handle-")
    assert lines[3].startswith("    └─▶ ✓ 249 healthy branches folded (handle-")
    assert len(tree_lines(wide, summary=False)) == 252
    narrow = analyze(fan_out(5).spans)
    assert len(tree_lines(narrow, summary=None)) == 7  # under the size: every branch
    assert len(tree_lines(narrow, summary=True)) == 4
    monkeypatch.setattr(tree, "SUMMARY_BRANCHES", 4)
    assert len(tree_lines(narrow, summary=None)) == 4


def test_show_summary_and_full_options(capsys: pytest.CaptureFixture[str], demo_store: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["show", "x", "--store", demo_store, "--summary", "--full"])
    assert exit_info.value.code == 2
    assert "not allowed with argument --summary" in capsys.readouterr().err
    assert main(["list", "--store", demo_store]) == 0
    key = capsys.readouterr().out.splitlines()[1].split()[2]
    assert main(["show", key, "--store", demo_store, "--summary"]) == 0
    out = capsys.readouterr().out
    assert "send-warehouse-webhook" in out and "attempt 2 ✗" in out
