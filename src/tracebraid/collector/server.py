"""``tracebraid serve``: the collector (and whatever else is mounted on it) under uvicorn.

Binds 127.0.0.1:4318 by default, OTLP/HTTP's port, so any OpenTelemetry SDK's
default exporter reaches it unchanged. Listening on any other address without a
token is refused: whoever reaches the port could write spans into the store (and
the UI served beside it reads them back), so that needs ``--token`` or an explicit
``--insecure``.

Example::

    $ tracebraid serve --store sqlite:///spans.db
    tracebraid serve: listening on http://127.0.0.1:4318 (store sqlite:///spans.db; 2 ingest
    processes)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import ipaddress
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from tracebraid.collector.app import Limits, create_app, ingest_reopener
from tracebraid.collector.connections import Deadlines, RequestAdmission, deadline_protocol
from tracebraid.collector.holding import HoldingFile
from tracebraid.collector.hosts import HostGuard, allowed_hosts
from tracebraid.collector.ingest_processes import default_processes
from tracebraid.collector.memory import memory_bound
from tracebraid.collector.retention import RetainingStore, RetentionPolicy
from tracebraid.errors import ConfigurationError, TracebraidError
from tracebraid.model import Span
from tracebraid.store.base import SpanStore

if TYPE_CHECKING:
    from tracebraid.analysis import Topology

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_STORE",
    "TOKEN_ENV",
    "bind",
    "is_loopback",
    "register",
    "serve",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4318
DEFAULT_STORE = "sqlite:///tracebraid.db"
TOKEN_ENV = "TRACEBRAID_TOKEN"
STORE_ENV = "TRACEBRAID_STORE"


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_exposure(host: str, token: str | None, insecure: bool) -> None:
    """Refuse a non-loopback address without a token unless ``insecure``; say why."""
    if token or insecure or is_loopback(host):
        return
    raise ConfigurationError(
        f"refusing to listen on {host} without a token: anyone who can reach that address "
        "could write spans into the store and read them back. Set --token (or the "
        f"{TOKEN_ENV} environment variable) and send 'Authorization: Bearer <token>', "
        "or pass --insecure if every machine on that network is trusted."
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket names its protocol, and without it every response waits 40 ms
    # for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "is another collector running there? pick another --port"
        ) from None
    return sock


def serve(
    store: SpanStore,
    sock: socket.socket,
    *,
    token: str | None = None,
    limits: Limits | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    deadlines: Deadlines | None = None,
    hosts: frozenset[str] | None = None,
    log_level: str = "warning",
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
) -> None:
    """Run the collector on ``sock`` until SIGINT/SIGTERM, then drain the write queue.

    ``wrap`` puts something in front of the app, outside the token guard (the web UI's
    data-free static shell, ``tracebraid.views.web``). ``deadlines`` bound every
    connection and the requests in progress (``connections``); ``hosts``, when given,
    are the only ``Host`` names answered (``hosts``).
    """
    deadlines = deadlines or Deadlines()
    app: ASGIApp = create_app(store, token=token, limits=limits, extra_routes=extra_routes)
    if wrap is not None:
        app = wrap(app)
    # Requests in progress, not open sockets, are what is admitted (uvicorn's own
    # limit_concurrency counts sockets: idle ones would starve everyone).
    app = RequestAdmission(app, deadlines.max_requests)
    if hosts is not None:
        app = HostGuard(app, hosts)
    _raise_open_files_limit(deadlines.max_connections)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        http=deadline_protocol(deadlines),
        timeout_keep_alive=max(1, round(deadlines.keep_alive_s)),
    )
    uvicorn.Server(config).run(sockets=[sock])


def _raise_open_files_limit(connections: int) -> None:
    """Lift the soft limit on open files towards the hard one, for ``connections`` sockets."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256  # the store, ingest pipes, logs
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _tune_gc() -> None:
    """Collect cycles less often: ingest makes millions of short-lived, acyclic objects.

    Reference counting frees every span as soon as it is stored, so memory stays as
    flat as before; what the default thresholds (a collection every 700 allocations)
    added was ~15% of the decoding time, traversing young spans that are not garbage
    yet. Freezing moves the start-up objects out of every future collection.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def register(subparsers: Any) -> None:
    """Add the ``serve`` sub-command."""
    parser = subparsers.add_parser(
        "serve",
        help="receive OTLP/HTTP spans (protobuf or JSON) into the store",
        description=(
            "Run the OTLP/HTTP collector: POST /v1/traces (application/x-protobuf or "
            "application/json, gzip or not), GET /healthz, GET /stats. A request is "
            "acknowledged only once its spans are committed to the store. The same port "
            "serves the web UI at / and its JSON API under /api (docs/ui.md)."
        ),
    )
    defaults = Limits()
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (%(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (%(default)s; 0 picks a free one)"
    )
    parser.add_argument(
        "--store",
        default=os.environ.get(STORE_ENV, DEFAULT_STORE),
        help=f"store URL (%(default)s; env {STORE_ENV})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"bearer token required on every request (env {TOKEN_ENV})",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback address without a token",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=defaults.max_body_bytes,
        help="largest request body, as sent and decompressed (%(default)s)",
    )
    parser.add_argument(
        "--queue-spans",
        type=int,
        default=defaults.max_queue_spans,
        help="spans held for the store before clients are told to retry, when ingesting "
        "in one process (%(default)s)",
    )
    parser.add_argument(
        "--batch-spans",
        type=int,
        default=defaults.batch_spans,
        help="spans merged into one store transaction, when ingesting in one process "
        "(%(default)s; ingest processes commit each request on its own)",
    )
    parser.add_argument(
        "--requests-in-progress",
        type=int,
        default=defaults.max_unqueued_requests,
        help="requests being read, decoded or stored at once before new ones get 503 with "
        "Retry-After (%(default)s); with --max-body-bytes, what bounds memory",
    )
    parser.add_argument(
        "--max-buffered-bytes",
        type=int,
        default=None,
        help="request bodies held at once, charged as they arrive and until stored, past "
        "which requests get 503 with Retry-After (default 256 MiB, or two bodies if more); "
        "with --max-body-bytes, what bounds memory (docs/operations.md)",
    )
    parser.add_argument(
        "--ingest-processes",
        type=int,
        default=None,
        help=(
            "worker processes that decode and store requests beside the collector "
            f"(default: one per CPU, here {default_processes()}; 0: the collector "
            "process does it all, as it always does for a store in memory)"
        ),
    )
    timing = Deadlines()
    parser.add_argument(
        "--max-requests",
        type=int,
        default=timing.max_requests,
        help="requests in progress on every route before new ones get 503 with Retry-After "
        "(%(default)s; /healthz is always answered)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=timing.max_connections,
        help="open connections; past it idle ones are closed, oldest first (%(default)s)",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=timing.head_s,
        metavar="SECONDS",
        help="time for a request line and headers to arrive, from connect or the last "
        "response (%(default)s)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=timing.body_grace_s,
        metavar="SECONDS",
        help="time a body may take, plus its size at --body-min-rate (%(default)s)",
    )
    parser.add_argument(
        "--body-min-rate",
        type=int,
        default=timing.body_min_rate,
        metavar="BYTES_PER_S",
        help="slowest a body may arrive after --body-timeout (%(default)s)",
    )
    parser.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=timing.keep_alive_s,
        metavar="SECONDS",
        help="idle time before a kept-alive connection is closed (%(default)s)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name to answer besides the bound address and localhost (repeatable; "
        "the name a reverse proxy forwards). On a loopback address every other Host is "
        "refused with 421 (DNS rebinding)",
    )
    _retention_options(parser)
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (%(default)s)")
    parser.add_argument(
        "--max-view-spans",
        type=int,
        default=None,
        metavar="N",
        help="spans one workflow view analyses at most; past it the view says what it left "
        "out and how to narrow it (default 20,000)",
    )
    parser.add_argument(
        "--no-ui", action="store_true", help="serve the collector only, without the web UI and API"
    )
    parser.add_argument(
        "--topology",
        metavar="FILE",
        help="the UI's expected consumers per event (else learned from recent history)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The ``serve`` handler: check, bind, open the store, serve; exit code out."""
    from tracebraid.analysis import load_topology
    from tracebraid.store import open_store

    try:
        check_exposure(args.host, args.token, args.insecure)
        limits = Limits(
            max_body_bytes=_positive(args.max_body_bytes, "--max-body-bytes"),
            max_queue_spans=_positive(args.queue_spans, "--queue-spans"),
            batch_spans=_positive(args.batch_spans, "--batch-spans"),
            max_unqueued_requests=_positive(args.requests_in_progress, "--requests-in-progress"),
            ingest_processes=(
                default_processes() if args.ingest_processes is None else args.ingest_processes
            ),
            max_buffered_bytes=args.max_buffered_bytes,
        )
        if limits.buffered_bytes < limits.max_body_bytes:
            raise ConfigurationError(
                f"--max-buffered-bytes ({limits.buffered_bytes}) must be at least "
                f"--max-body-bytes ({limits.max_body_bytes}), or no full body is ever taken"
            )
        if limits.ingest_processes < 0:
            raise ConfigurationError(
                f"--ingest-processes must be 0 or more, not {limits.ingest_processes}"
            )
        deadlines = Deadlines(
            head_s=_positive_s(args.header_timeout, "--header-timeout"),
            body_grace_s=_positive_s(args.body_timeout, "--body-timeout"),
            body_min_rate=_positive(args.body_min_rate, "--body-min-rate"),
            keep_alive_s=_positive_s(args.keep_alive_timeout, "--keep-alive-timeout"),
            max_connections=_positive(args.max_connections, "--max-connections"),
            max_requests=_positive(args.max_requests, "--max-requests"),
        )
        hosts = _hosts(args.host, args.allowed_host)
        if args.max_view_spans is not None:
            _positive(args.max_view_spans, "--max-view-spans")
        topology = None if args.topology is None else load_topology(args.topology)
        policy = _retention_policy(args)
        sock = bind(args.host, args.port)
        store = open_store(args.store)
        collected = store if policy is None else _retaining(store, args, policy, topology)
    except TracebraidError as exc:
        print(f"tracebraid serve: {exc}", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"tracebraid serve: listening on http://{shown}:{port} (store {args.store}; "
        f"{_ingest_mode(collected, limits)})",
        file=sys.stderr,
        flush=True,
    )
    processes = limits.ingest_processes if ingest_reopener(store, limits) is not None else 0
    bound = memory_bound(limits, processes=processes, deadlines=deadlines)
    print(f"tracebraid serve: memory bound {bound}", file=sys.stderr, flush=True)
    ui = None
    if not args.no_ui:
        from tracebraid.views.web import web_ui

        sized = {} if args.max_view_spans is None else {"max_view_spans": args.max_view_spans}
        ui = web_ui(store, topology=topology, **sized)
        print(f"tracebraid serve: web UI on http://{shown}:{port}/", file=sys.stderr, flush=True)
    try:
        serve(
            collected,
            sock,
            token=args.token,
            limits=limits,
            deadlines=deadlines,
            hosts=hosts,
            log_level=args.log_level,
            extra_routes=() if ui is None else ui.routes,
            wrap=None if ui is None else ui.wrap,
        )
    finally:
        if collected is not store:
            collected.close()
        store.close()
    return 0


def _retention_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retain",
        type=float,
        metavar="RATIO",
        help="workflow-aware retention: hold spans per workflow, keep every workflow that "
        "retried, failed, dead-lettered, broke a link, lagged, duplicated or is pending "
        "whole, and this ratio of the healthy ones (docs/sampling.md); ingests in this process",
    )
    parser.add_argument(
        "--retain-window",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="quiet time after a workflow's last span before it is decided (%(default)s)",
    )
    parser.add_argument(
        "--retain-file",
        metavar="PATH",
        help="the holding file (default: beside a SQLite store, else tracebraid-retain.db)",
    )


def _retention_policy(args: argparse.Namespace) -> RetentionPolicy | None:
    if args.retain is None:
        return None
    window = args.retain_window
    return RetentionPolicy(ratio=args.retain, window_s=window, max_window_s=max(300.0, window))


def _retaining(
    store: SpanStore, args: argparse.Namespace, policy: RetentionPolicy, topology: Topology | None
) -> RetainingStore:
    """The store the collector writes through: retention judged by the analysis.

    The one place the collector meets the analysis: retention gets a function, and
    never imports what is behind it.
    """
    from tracebraid.analysis import analyze
    from tracebraid.analysis.sampling import interesting

    def judge(spans: Sequence[Span], now_ns: int) -> tuple[str, ...]:
        return interesting(analyze(spans, topology=topology, now_ns=now_ns))

    path = args.retain_file
    if path is None:
        prefix = "sqlite:///"
        local = args.store.startswith(prefix) and ":memory:" not in args.store
        path = (
            args.store[len(prefix) :].split("?")[0] + ".retain" if local else "tracebraid-retain.db"
        )
    return RetainingStore(store, HoldingFile(path), policy, judge)


def _ingest_mode(store: SpanStore, limits: Limits) -> str:
    if ingest_reopener(store, limits) is not None:
        return f"{limits.ingest_processes} ingest processes"
    return "ingest in this process"


def _hosts(bound: str, extra: Sequence[str]) -> frozenset[str] | None:
    """The ``Host`` names to answer: checked on a loopback bind, or once any are given."""
    if extra or is_loopback(bound):
        return allowed_hosts(bound, extra)
    return None


def _positive_s(value: float, option: str) -> float:
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(f"{option} must be a positive number of seconds, not {value}")
    return value


def _positive(value: int, option: str) -> int:
    if value < 1:
        raise ConfigurationError(f"{option} must be at least 1, not {value}")
    return value
