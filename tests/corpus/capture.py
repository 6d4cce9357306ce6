"""A stand-alone OTLP/HTTP receiver that writes what exporters send as OTLP JSON lines.

The corpus scenarios point stock OpenTelemetry exporters (any language) at it, so the
spans on disk are exactly what the instrumentation exported, and tracebraid plays no
part in recording them. Protobuf bodies are re-encoded to OTLP/JSON (trace and span
IDs as hex, as the OTLP/JSON mapping requires); JSON bodies are kept as sent.

Run it as a module beside a scenario::

    python tests/corpus/capture.py spans.jsonl --port 4399 &
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4399 python scenario.py

or in process with ``Receiver(path).start()``. Only the standard library,
``opentelemetry-proto`` and ``protobuf`` are needed.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: Any) -> Any:
    """Protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants hex IDs."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                out[key] = base64.b64decode(value).hex()
            else:
                out[key] = _hex_ids(value)
        return out
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def to_otlp_json(body: bytes, content_type: str) -> dict[str, Any]:
    """One export request body, protobuf or JSON, as an OTLP/JSON document."""
    if "json" in content_type:
        document: dict[str, Any] = json.loads(body)
        return document
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    document = MessageToDict(request, preserving_proto_field_name=False)
    converted: dict[str, Any] = _hex_ids(document)
    return converted


class Receiver:
    """Receives OTLP/HTTP exports on 127.0.0.1 and appends them to ``path`` as JSON lines."""

    def __init__(self, path: str | Path, port: int = 0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self._body()
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path.rstrip("/").endswith("/v1/traces"):
                    receiver.append(to_otlp_json(body, self.headers.get("Content-Type", "")))
                kind = self.headers.get("Content-Type", "application/x-protobuf")
                self.send_response(200)
                self.send_header("Content-Type", "application/json" if "json" in kind else kind)
                reply = b"{}" if "json" in kind else b""
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def _body(self) -> bytes:
                # Node's OTLP exporter streams its body: chunked, with no Content-Length.
                if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
                    return self.rfile.read(int(self.headers.get("Content-Length", "0")))
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after each chunk
                while self.rfile.readline().strip():  # trailers, up to the blank line
                    pass
                return b"".join(chunks)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def append(self, document: dict[str, Any]) -> None:
        line = json.dumps(document, separators=(",", ":"), sort_keys=True)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def start(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--port", type=int, default=4399)
    args = parser.parse_args()
    receiver = Receiver(args.path, args.port)
    print(receiver.endpoint, flush=True)
    receiver.server.serve_forever()


if __name__ == "__main__":
    main()
