"""The web UI served by ``tracebraid serve``: a static shell and the JSON API it reads.

``web_ui(store)`` gives the two halves ``tracebraid serve`` mounts on the collector's
port: ``routes`` (the API under ``/api``, guarded by the collector's bearer token
like every collector route) and ``wrap`` (serves the data-free shell at ``/`` and
``/ui/static`` before the token guard, so a browser can load the page and then
send the token with its API calls). See ``docs/ui.md``.

Example::

    ui = web_ui(store)
    app = ui.wrap(create_app(store, token=token, extra_routes=ui.routes))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from tracebraid.analysis import Topology
from tracebraid.store import SpanStore
from tracebraid.views.web.reader import MAX_VIEW_SPANS, WorkflowReader
from tracebraid.views.web.shell import PublicShell

__all__ = ["PublicShell", "WebUi", "WorkflowReader", "web_ui"]


@dataclass(frozen=True, slots=True)
class WebUi:
    """The UI's guarded API routes and the wrapper that serves its public shell."""

    routes: tuple[BaseRoute, ...]

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """``app`` with the shell answered in front of it."""
        return PublicShell(app)


def web_ui(
    store: SpanStore,
    *,
    topology: Topology | None = None,
    clock: Callable[[], int] = time.time_ns,
    max_view_spans: int = MAX_VIEW_SPANS,
) -> WebUi:
    """The UI over ``store``; ``topology`` declares expected consumers (else learned);
    a view analyses at most ``max_view_spans`` spans and says when it left some out."""
    from tracebraid.views.api import api_routes

    reader = WorkflowReader(store, topology=topology, clock=clock, max_view_spans=max_view_spans)
    reader.warm_up()
    return WebUi(tuple(api_routes(reader)))
