"""What operators see: the causal tree, the four questions' answers, JSON and Mermaid.

- ``render_tree(analysis, ids=False)``: the rich causal tree (``tracebraid show``).
- ``render_chain``, ``render_pending``, ``render_retries``, ``render_latency``: the answers
  to ``why``, ``pending``, ``retries`` and ``latency`` as rich renderables.
- ``build_tree(analysis)``: the tree as frozen records, which the terminal, Mermaid and
  JSON all draw.
- ``workflow_document``, ``why_document``, ``latency_document``, ``pending_document``,
  ``retries_document``, ``mermaid_document``, ``to_json``: the versioned JSON
  (``tracebraid.<kind>/v1``; shapes in ``tracebraid.views.schema``).
- ``to_mermaid(analysis)``: a Mermaid flowchart in the seed's style.

The commands themselves live in ``tracebraid.views.commands`` and are wired up in
``tracebraid.views.cli``.

Example::

    >>> from tracebraid.analysis import analyze
    >>> from tracebraid.testing.workflows import order_flow
    >>> workflow_document(analyze(order_flow().spans), key=None)["schema"]
    'tracebraid.workflow/v1'
"""

from tracebraid.views.documents import (
    demo_document,
    latency_document,
    mermaid_document,
    to_json,
    why_document,
    workflow_document,
)
from tracebraid.views.layout import (
    ActionNode,
    BranchNode,
    EventNode,
    NodeState,
    PathStop,
    WorkflowTree,
    build_tree,
    path_stops,
)
from tracebraid.views.mermaid import to_mermaid
from tracebraid.views.recent import (
    ConsumerRetries,
    consumer_retries,
    pending_document,
    retries_document,
)
from tracebraid.views.reports import render_chain, render_latency, render_pending, render_retries
from tracebraid.views.schema import SCHEMAS
from tracebraid.views.source import LoadedWorkflow, UnknownKeyError
from tracebraid.views.tree import render_tree

__all__ = [
    "SCHEMAS",
    "ActionNode",
    "BranchNode",
    "ConsumerRetries",
    "EventNode",
    "LoadedWorkflow",
    "NodeState",
    "PathStop",
    "UnknownKeyError",
    "WorkflowTree",
    "build_tree",
    "consumer_retries",
    "demo_document",
    "latency_document",
    "mermaid_document",
    "path_stops",
    "pending_document",
    "render_chain",
    "render_latency",
    "render_pending",
    "render_retries",
    "render_tree",
    "retries_document",
    "to_json",
    "to_mermaid",
    "why_document",
    "workflow_document",
]
