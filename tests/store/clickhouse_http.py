"""A ClickHouse HTTP endpoint on loopback, answered by the test process's chDB engine.

No ClickHouse server can be installed here (Debian's is 18.16), so this small
front-end speaks enough of ClickHouse's HTTP interface (query in the URL, the body or
a multipart form; ``param_*`` bindings; ``FORMAT`` clauses; errors as status 500 with
the exception code header) for clickhouse-connect to run against the real engine: the
SQL, the parameter binding and the wire formats are ClickHouse's own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from clickhouse_engine import engine

from tracebraid.errors import StoreError

__all__ = ["clickhouse_http"]


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a ``multipart/form-data`` body, by name."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        parts = urlsplit(self.path)
        query = {
            key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()
        }
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            # Large parameters come as form fields (clickhouse-connect past 4 KiB of them).
            query.update(_form_fields(content_type, raw))
            body = ""
        else:
            body = raw.decode()
        sql = f"{query['query']}\n{body}" if "query" in query else body
        params = {key[len("param_") :]: value for key, value in query.items()
                  if key.startswith("param_")}  # fmt: skip
        try:
            # _run: the engine's own entry point, lock included; TabSeparated is HTTP's default.
            payload = engine()._run(sql, params, "TabSeparated")
        except StoreError as error:
            message = str(error).encode()
            self.send_response(500)
            self.send_header("X-ClickHouse-Exception-Code", "1")
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            self.wfile.write(message)
            return
        self.send_response(200)
        self.send_header("X-ClickHouse-Timezone", "UTC")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def clickhouse_http() -> Iterator[int]:
    """Serve the engine over HTTP on a free loopback port; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
