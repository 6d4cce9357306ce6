"""Memory soak: the worst bodies the limits admit, sent concurrently, against the formula.

A ``tracebraid serve`` process (its default ingest processes, a fresh SQLite file) is
sent, by ``--clients`` threads at once for ``--seconds``, bodies of ``--max-body-bytes``
each (the limit) of the kinds that cost the most memory per byte:

- ``pb-min``: protobuf, the smallest valid spans (48 bytes each; ~480 decoded), random IDs;
- ``pb-empty``: protobuf, empty spans (2 bytes each, all refused: what upb parses dearest);
- ``pb-gzip``: ``pb-min`` gzip-compressed, inflating to the limit;
- ``json-min``: OTLP/JSON, the smallest valid spans;
- ``json-empty``: OTLP/JSON, ``{}`` spans (all refused);
- ``json-attrs``: OTLP/JSON spans with twenty small attributes each.

The RSS of the collector and its ingest processes is sampled every 50 ms
(``/proc``), and each process's own peak (``VmHWM``) read at the end. It prints the
peak against ``tracebraid.collector.memory.memory_bound`` for the same limits, and the
answers the clients got (a 503 with ``Retry-After`` is the collector holding its bound).

    .venv/bin/python bench/soak_memory.py [--seconds 60] [--clients 16] [--max-body-bytes N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tracebraid.collector.app import Limits
from tracebraid.collector.connections import Deadlines
from tracebraid.collector.ingest_processes import default_processes
from tracebraid.collector.memory import memory_bound

MiB = 1 << 20
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _varint(len(value)) + value


def _request(spans: bytes) -> bytes:
    return _field(0x0A, _field(0x12, spans))  # resource_spans { scope_spans { spans... } }


def pb_min(limit: int) -> bytes:
    one = 48  # a Span field: trace_id, span_id, start, end
    count = (limit - 16) // one
    parts = []
    for _ in range(count):
        span = (
            _field(0x0A, os.urandom(16))
            + _field(0x12, os.urandom(8))
            + b"\x39"
            + (1_700_000_000_000_000_000).to_bytes(8, "little")
            + b"\x41"
            + (1_700_000_000_000_000_500).to_bytes(8, "little")
        )
        parts.append(_field(0x12, span))
    return _request(b"".join(parts))


def pb_empty(limit: int) -> bytes:
    return _request(b"\x12\x00" * ((limit - 16) // 2))


def _json(spans: list[str]) -> bytes:
    return ('{"resourceSpans":[{"scopeSpans":[{"spans":[' + ",".join(spans) + "]}]}]}").encode()


def _fill_json(limit: int, make: object) -> bytes:
    spans: list[str] = []
    size = 64
    while True:
        one = make()  # type: ignore[operator]
        if size + len(one) + 1 > limit:
            return _json(spans)
        spans.append(one)
        size += len(one) + 1


def _json_span(attributes: str = "") -> str:
    return (
        f'{{"traceId":"{os.urandom(16).hex()}","spanId":"{os.urandom(8).hex()}",'
        f'"startTimeUnixNano":1700000000000000000,"endTimeUnixNano":1700000000000000500'
        f"{attributes}}}"
    )


_ATTRS = (
    ',"attributes":['
    + ",".join(f'{{"key":"k{i}","value":{{"intValue":{i}}}}}' for i in range(20))
    + "]"
)


def bodies(limit: int) -> dict[str, tuple[bytes, dict[str, str]]]:
    pb = {"Content-Type": "application/x-protobuf"}
    js = {"Content-Type": "application/json"}
    minimal = pb_min(limit)
    packed = gzip.compress(minimal, compresslevel=1)
    return {
        "pb-min": (minimal, pb),
        "pb-empty": (pb_empty(limit), pb),
        "pb-gzip": (packed, {**pb, "Content-Encoding": "gzip"}),
        "json-min": (_fill_json(limit, _json_span), js),
        "json-empty": (_json(["{}"] * ((limit - 64) // 3)), js),
        "json-attrs": (_fill_json(limit, lambda: _json_span(_ATTRS)), js),
    }


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _status(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-body-bytes", type=int, default=Limits().max_body_bytes)
    parser.add_argument("--ingest-processes", type=int, default=default_processes())
    args = parser.parse_args()

    limits = Limits(max_body_bytes=args.max_body_bytes, ingest_processes=args.ingest_processes)
    bound = memory_bound(limits, processes=args.ingest_processes, deadlines=Deadlines())
    print(f"building bodies of {args.max_body_bytes / MiB:.0f} MiB ...", flush=True)
    kinds = bodies(args.max_body_bytes)
    for name, (body, _) in kinds.items():
        print(f"  {name:<11} {len(body) / MiB:6.1f} MiB on the wire")

    workdir = tempfile.mkdtemp(prefix="tracebraid-soak-")
    command = [
        sys.executable, "-m", "tracebraid", "serve", "--port", "0",
        "--store", f"sqlite:///{workdir}/soak.db",
        "--max-body-bytes", str(args.max_body_bytes),
        "--ingest-processes", str(args.ingest_processes),
    ]  # fmt: skip
    serve = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert serve.stderr is not None
    port = 0
    while not port:
        line = serve.stderr.readline()
        if not line:
            raise SystemExit("serve did not start")
        sys.stdout.write("  " + line)
        if match := _LISTENING.search(line):
            port = int(match.group(1))
    threading.Thread(target=lambda: [None for _ in serve.stderr], daemon=True).start()  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    time.sleep(2)  # the ingest processes settle
    idle = sum(_status(pid, "VmRSS") for pid in _tree(serve.pid))

    stop = time.monotonic() + args.seconds
    answers: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()
    peak = [0]

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, timeout=120) as http:
            while time.monotonic() < stop:
                name = rng.choice(list(kinds))
                body, headers = kinds[name]
                try:
                    status = http.post("/v1/traces", content=body, headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    answers[(name, status)] += 1

    def sample() -> None:
        while time.monotonic() < stop + 5:
            total = sum(_status(pid, "VmRSS") for pid in _tree(serve.pid))
            peak[0] = max(peak[0], total)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    clients = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    try:
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        sampler.join()
        pids = _tree(serve.pid)
        peaks = {pid: _status(pid, "VmHWM") for pid in pids}
        stats = httpx.get(f"{url}/stats", timeout=60).json()
    finally:
        # Killed, not drained: what the workers still hold is not what is measured.
        serve.kill()
        serve.wait(60)

    print(f"\n{args.clients} clients for {args.seconds:.0f} s; answers (kind, status): ")
    for (name, status), n in sorted(answers.items()):
        print(f"  {name:<11} {status}: {n}")
    print(f"spans stored {stats['spans_accepted']:,}, refused {stats['spans_rejected']:,}")
    print(f"idle RSS (all processes)          {idle / MiB:8,.0f} MiB")
    print(f"peak RSS sampled (all processes)  {peak[0] / MiB:8,.0f} MiB")
    print(
        "peak RSS per process (VmHWM)      "
        + ", ".join(f"{v / MiB:,.0f}" for v in sorted(peaks.values(), reverse=True))
        + f" MiB; summed {sum(peaks.values()) / MiB:,.0f} MiB"
    )
    print(f"formula (memory_bound)            {bound}")
    held = sum(peaks.values()) <= bound.total
    print(json.dumps({"peak_sampled_mib": peak[0] // MiB, "peak_summed_mib":
                      sum(peaks.values()) // MiB, "bound_mib": bound.total // MiB,
                      "holds": held}))  # fmt: skip
    return 0 if held else 1


if __name__ == "__main__":
    raise SystemExit(main())
