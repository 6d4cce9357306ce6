"""The Mermaid export: the seed's flowchart style, with retries, pending and stitched edges."""

from __future__ import annotations

import re

from tracebraid.analysis import WorkflowAnalysis, analyze
from tracebraid.testing.workflows import WorkflowBuilder, islands
from tracebraid.views.mermaid import to_mermaid


def labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'^\s+(n\d+)[\[(]+"(.*?)"[\])]+$', text, flags=re.M))


def edges(text: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^\s+(n\d+) (-->|-\.->|-\. stitched \.->) (n\d+)$", text, flags=re.M)


def test_structure_of_the_order_flow(order_analysis: WorkflowAnalysis) -> None:
    text = to_mermaid(order_analysis)
    assert text.startswith("flowchart TD\n") and text.endswith("\n")
    names = labels(text)
    by_label = {label.split(" (")[0]: node for node, label in names.items()}
    assert {"POST /orders", "order.placed", "authorize-payment", "reserve-inventory",
            "payment.authorized", "inventory.reserved", "send-warehouse-webhook",
            "project-order-summary", "award-loyalty-points"} <= set(by_label)  # fmt: skip
    assert names[by_label["send-warehouse-webhook"]] == "send-warehouse-webhook (2 retries)"
    links = {(s, t): arrow for s, arrow, t in edges(text)}
    assert links[by_label["POST /orders"], by_label["order.placed"]] == "-->"
    assert links[by_label["order.placed"], by_label["reserve-inventory"]] == "-->"
    loyalty = by_label["award-loyalty-points"]
    assert links[by_label["payment.authorized"], loyalty] == "-.->"  # pending: dashed
    assert re.search(rf"class [n\d,]*\b{loyalty}\b[n\d,]* pending", text)
    critical = re.search(r"class ([n\d,]+) critical", text)
    assert critical is not None
    on_path = set(critical.group(1).split(","))
    assert by_label["send-warehouse-webhook"] in on_path
    assert by_label["authorize-payment"] not in on_path
    assert len(edges(text)) == len(names) - 1  # a tree: every node but the root has one parent


def test_stitched_edges_are_marked() -> None:
    text = to_mermaid(analyze(islands(2).spans))
    stitched = [e for e in edges(text) if "stitched" in e[1]]
    names = labels(text)
    assert len(stitched) == 2
    assert all(names[target] == "legacy-audit" for _, _, target in stitched)


def test_labels_are_escaped() -> None:
    builder = WorkflowBuilder(correlation_id="order_1")
    post = builder.action('POST /orders "quoted" <b>', service="checkout-api", duration_ms=5)
    placed = builder.publish(post, "order.placed", destination="orders")
    builder.consume(placed, "reserve-inventory", service="inventory", wait_ms=1)
    text = to_mermaid(analyze(builder.build().spans))
    assert '"POST /orders #quot;quoted#quot; #lt;b#gt;"' in text
