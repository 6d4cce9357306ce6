"""Hypothesis strategies: synthetic workflows written through the public builder.

``workflows()`` draws a small program of builder calls (user actions, publishes,
consumers with failing tries, back-off, clock skew, dropped or link-only context,
work in flight, batch consumers, links both ways), so the workflows it yields cover
the adversarial shapes the analysis must survive: overlaps, skew, cycles, islands.
"""

from __future__ import annotations

from hypothesis import strategies as st

from tracebraid.model import Span
from tracebraid.testing.workflows import Message, Try, Workflow, WorkflowBuilder

__all__ = ["workflows"]

_GROUPS = ("payment", "inventory", "audit")
_EVENTS = ("order.placed", "payment.authorized")
_ERRORS = (None, None, "TimeoutError: dependency timed out")

_MS = st.floats(min_value=0.0, max_value=60.0, allow_nan=False)
_TRIES = st.lists(
    st.builds(
        Try,
        duration_ms=st.floats(min_value=0.0, max_value=40.0, allow_nan=False),
        error=st.sampled_from(_ERRORS),
        backoff_ms=st.floats(min_value=-20.0, max_value=30.0, allow_nan=False),
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def workflows(draw: st.DrawFn) -> Workflow:
    """A random workflow of one to a few dozen spans (see the module docstring)."""
    b = WorkflowBuilder(
        correlation_id="order_h",
        seed=draw(st.integers(0, 2**16)),
        markers=draw(st.booleans()),
    )
    messages: list[Message] = []
    workers: list[Span] = []
    for _ in range(draw(st.integers(1, 2))):
        post = b.action("POST /orders", service="api", at_ms=draw(_MS), duration_ms=draw(_MS))
        messages.append(b.publish(post, draw(st.sampled_from(_EVENTS)), destination="bus"))
    for _ in range(draw(st.integers(0, 8))):
        operation = draw(st.sampled_from(["consume", "consume", "publish", "batch", "link"]))
        if operation == "consume":
            group = draw(st.sampled_from(_GROUPS))
            consumed = b.consume(
                draw(st.sampled_from(messages)),
                f"{group}-step",
                service=group,
                wait_ms=draw(_MS),
                tries=draw(_TRIES),
                propagate=draw(st.booleans()),
                link_only=draw(st.booleans()),
                in_flight=draw(st.booleans()),
                clock_skew_ms=draw(st.sampled_from([0.0, 0.0, 5.0, 50.0])),
            )
            workers.extend(consumed.attempts)
        elif operation == "publish" and workers:
            parent = draw(st.sampled_from(workers))
            at_ms = draw(st.none() | _MS)
            messages.append(
                b.publish(parent, draw(st.sampled_from(_EVENTS)), destination="bus", at_ms=at_ms)
            )
        elif operation == "batch":
            taken = draw(st.lists(st.sampled_from(messages), min_size=1, max_size=3))
            group = draw(st.sampled_from(_GROUPS))
            workers.append(
                b.batch(taken, f"{group}-batch", service=group, at_ms=draw(_MS),
                        duration_ms=draw(_MS))
            )  # fmt: skip
        elif operation == "link" and len(workers) > 1:
            holder, target = draw(st.sampled_from(workers)), draw(st.sampled_from(workers))
            workers[workers.index(holder)] = b.add_link(holder, target)
    return b.build()
