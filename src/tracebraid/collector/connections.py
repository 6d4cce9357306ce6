"""Deadlines on every connection, and admission by requests in progress, not sockets.

A collector must not be starved by clients that hold connections without finishing
requests. uvicorn alone gives an idle keep-alive timeout, but nothing bounds the time
to send a request head or a body, and its ``limit_concurrency`` counts open sockets:
515 idle sockets made every route answer 503. Here:

- **Request head**: from the moment a connection opens (or its last response ends), the
  complete request line and headers must arrive within ``Deadlines.head_s``, or the
  connection is closed (with 408 if part of a head came). Sending a byte now and then
  does not reset it.
- **Body**: a body may take ``body_grace_s`` plus its bytes so far at ``body_min_rate``
  bytes a second: a stalled body is cut after the grace, a trickle soon after, a large
  body sent at a sane rate never. Time while the collector itself stops reading (flow
  control, while it is busy) does not count. Cut: 408 and the connection closed.
- **Idle keep-alive**: ``keep_alive_s`` after a response, an idle connection closes.
- **Sockets**: past ``max_connections`` open connections, the idle ones (between
  requests) are closed, oldest first, to make room; a new connection is refused only
  when every open one is busy with a request.
- **Admission** (``RequestAdmission``): at most ``max_requests`` requests in progress;
  past it, 503 with ``Retry-After``. ``/healthz`` is always answered, so it can say so.

Example::

    config = uvicorn.Config(app, http=deadline_protocol(Deadlines(head_s=5)))
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["Deadlines", "RequestAdmission", "deadline_protocol"]


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long a connection may take over each part of a request (module docstring)."""

    head_s: float = 10.0
    body_grace_s: float = 10.0
    body_min_rate: int = 16 * 1024
    keep_alive_s: float = 5.0
    max_connections: int = 4096
    max_requests: int = 512

    def body_allowance_s(self, received: int) -> float:
        """Seconds a body that has sent ``received`` bytes may have taken so far."""
        return self.body_grace_s + received / self.body_min_rate


def deadline_protocol(deadlines: Deadlines) -> type[H11Protocol]:
    """uvicorn's h11 protocol with ``deadlines`` enforced, for ``uvicorn.Config(http=...)``."""
    return type("DeadlineProtocol", (_DeadlineProtocol,), {"deadlines": deadlines})


class _DeadlineProtocol(H11Protocol):
    """``H11Protocol`` with a head deadline, a body rate deadline and idle eviction.

    h11's ``their_state`` says where the client is: ``IDLE`` until a request head is
    complete, ``SEND_BODY`` while its body arrives, ``DONE`` after.
    """

    deadlines: ClassVar[Deadlines]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._opened = time.monotonic()
        self._head_timer: Any = None
        self._head_bytes = 0
        self._body_timer: Any = None
        self._body_started = 0.0
        self._body_bytes = 0
        self._arm_head()
        if len(self.connections) > self.deadlines.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head()
        self._cancel_body()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        before = self.conn.their_state
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:
            self._head_bytes += len(data)
            return
        self._cancel_head()
        if state is h11.SEND_BODY:
            if self._body_timer is None:
                self._body_started = time.monotonic()
                self._body_bytes = 0
                self._arm_body()
            if before is h11.SEND_BODY:
                self._body_bytes += len(data)
        else:
            self._cancel_body()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._head_bytes = 0
            self._arm_head()

    # -- the request head ----------------------------------------------------------

    def _arm_head(self) -> None:
        self._cancel_head()
        self._head_timer = self.loop.call_later(self.deadlines.head_s, self._head_expired)

    def _cancel_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being written: the head deadline starts after it
        if self._head_bytes:
            self._close_with_408(
                f"the request head did not arrive within {self.deadlines.head_s:g} s"
            )
        else:
            self.transport.close()  # idle: nothing to answer

    # -- the body ------------------------------------------------------------------

    def _arm_body(self) -> None:
        tick = min(1.0, self.deadlines.body_grace_s / 4)
        self._body_timer = self.loop.call_later(tick, self._check_body, tick)

    def _cancel_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _check_body(self, tick: float) -> None:
        self._body_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        if self.flow.read_paused:
            # The collector stopped reading, not the client: that time is not theirs.
            self._body_started += tick
        elapsed = time.monotonic() - self._body_started
        if elapsed > self.deadlines.body_allowance_s(self._body_bytes):
            self._close_with_408(
                f"the request body arrived too slowly ({self._body_bytes} bytes in "
                f"{elapsed:.0f} s); send at least {self.deadlines.body_min_rate} bytes/s"
            )
            return
        self._arm_body()

    def _close_with_408(self, reason: str) -> None:
        if self.cycle is None or not self.cycle.response_started:
            body = json.dumps({"error": reason, "status": 408}).encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
        self.logger.info("closing a connection from %s: %s", self.client, reason)
        self.transport.close()

    # -- too many sockets ----------------------------------------------------------

    def _is_idle(self) -> bool:
        return self.conn.their_state is h11.IDLE and (
            self.cycle is None or self.cycle.response_complete
        )

    def _make_room(self) -> None:
        """Close idle connections, oldest first, until there is room; else refuse this one."""
        excess = len(self.connections) - self.deadlines.max_connections
        idle = sorted(
            (
                c
                for c in self.connections
                if c is not self and isinstance(c, _DeadlineProtocol) and c._is_idle()
            ),
            key=lambda c: c._opened,
        )
        for connection in idle[:excess]:
            connection.transport.close()
        if len(idle) < excess:
            self.transport.close()


_EXEMPT = frozenset({"/healthz", "/v1/traces"})


class RequestAdmission:
    """ASGI middleware: at most ``limit`` HTTP requests in progress; past it, 503 + Retry-After.

    ``/healthz`` is exempt: it must answer even when everything else is refused. So is
    ``/v1/traces``, which admits by its own, finer rule (``Collector``: bodies charged
    in bytes as they arrive, decoding by count): counted here from its first byte, a
    body that never comes would hold a slot until its deadline.
    """

    def __init__(self, app: ASGIApp, limit: int, *, exempt: frozenset[str] = _EXEMPT) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.limit:
            body = json.dumps(
                {
                    "error": f"{self.in_progress} requests are in progress, the most this "
                    "collector takes at once; retry after the Retry-After delay",
                    "status": 503,
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", b"1"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1
