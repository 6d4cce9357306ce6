"""A real collector on loopback, in the test's own process: ``running_collector(store)``.

The app ``tracebraid serve`` runs (OTLP ingest, the API, the store reads a
``RemoteStore`` uses) under uvicorn, on a thread: started in milliseconds rather than
the second a process takes, so a suite can start one per test. Point an OTLP exporter
or a ``RemoteStore`` at the URL it yields.

Example::

    >>> from tracebraid.store import SqliteStore, open_store
    >>> backing = SqliteStore(":memory:")
    >>> with running_collector(backing) as url:
    ...     remote = open_store(url)
    ...     print(remote.span_count())
    ...     remote.close()
    0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tracebraid.collector import create_app
from tracebraid.collector.server import bind
from tracebraid.store.base import SpanStore
from tracebraid.views.api import api_routes
from tracebraid.views.web.reader import WorkflowReader

__all__ = ["running_collector"]


@contextmanager
def running_collector(
    store: SpanStore, *, token: str | None = None, api: bool = True
) -> Iterator[str]:
    """Serve ``store``'s collector and API on a free loopback port; yields the base URL.

    ``api=False`` serves the collector alone, as ``serve --no-ui`` does.
    """
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    routes = api_routes(WorkflowReader(store)) if api else []
    app = create_app(store, token=token, extra_routes=routes)
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the collector did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
