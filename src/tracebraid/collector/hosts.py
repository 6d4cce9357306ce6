"""The ``Host`` allowlist: a collector on loopback answers only requests addressed to it.

A collector bound to 127.0.0.1 without a token trusts everything that reaches the port,
and a web page can reach it: DNS rebinding points the page's own domain at 127.0.0.1,
and the browser then sends requests there with ``Host: evil.example``, reading the API
and writing spans. A request must therefore name the collector in ``Host``: one of the
names and addresses it is bound to (``localhost``, ``127.0.0.1``, ``[::1]``, the bound
address), or a name the operator adds (``tracebraid serve --allowed-host``: the name a
reverse proxy forwards, unless it rewrites ``Host``). Anything else is refused with 421
Misdirected Request, before any route runs.

Example::

    >>> allowed = allowed_hosts("127.0.0.1", extra=("traces.internal",))
    >>> host_allowed(b"localhost:4318", allowed), host_allowed(b"evil.example:4318", allowed)
    (True, False)
    >>> host_allowed(b"TRACES.internal", allowed)
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HostGuard", "allowed_hosts", "host_allowed"]

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "localhost.localdomain")


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names a collector bound to ``bound`` answers to, lower case, no port."""
    names = {_name(bound), *_LOOPBACK_NAMES}
    names.update(_name(e) for e in extra if e.strip())
    return frozenset(names)


def _name(host: str) -> str:
    """``host`` without a port or IPv6 brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:4318
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:  # name:port; a bare IPv6 address has several colons
        return host.split(":", 1)[0]
    return host


def host_allowed(header: bytes, allowed: frozenset[str]) -> bool:
    """True when a ``Host`` header names one of ``allowed`` (any port)."""
    try:
        text = header.decode("ascii")
    except UnicodeDecodeError:
        return False
    return _name(text).rstrip(".") in allowed


class HostGuard:
    """ASGI middleware: HTTP and WebSocket requests whose ``Host`` is not allowed get 421.

    A request without ``Host`` (HTTP/1.0) passes: a browser always sends one.
    """

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            for name, value in scope["headers"]:
                if name == b"host":
                    if not host_allowed(value, self.allowed):
                        await self._refuse(scope, send, value)
                        return
                    break
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, host: bytes) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = host.decode("ascii", "backslashreplace")[:100]
        message = (
            f"Host {shown!r} is not a name this collector answers to "
            f"({', '.join(sorted(self.allowed))}); behind a reverse proxy, start it with "
            "--allowed-host NAME for the name the proxy forwards"
        )
        body = json.dumps({"error": message, "status": 421}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 421,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
