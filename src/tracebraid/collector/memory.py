"""How much memory a collector can take under any load its limits admit: the formula.

Every term is a limit the collector enforces, times what one byte of it can cost:

- **Bodies held** (``Limits.buffered_bytes``, B_held): a request body is charged as its
  bytes arrive and until it is decoded (ingest processes) or its spans are committed (in
  process): bodies in memory never exceed it, however many clients send at once.
- **Connections** (``Deadlines.max_connections``, C): uvicorn reads up to 64 KiB of a
  connection before the application takes it.
- **Ingest processes** (P, each one request at a time): a body arrives pickled, and is
  inflated, so a worker holds at most two bodies (2·B, B = ``max_body_bytes``) plus
  what decoding one costs: a protobuf body is decoded and stored a slice at a time
  (``otlp_slices``: ``SLICE_COST``), a JSON body is parsed whole
  (``DECODED_PER_BODY_BYTE`` · B). The collector process pickles at most P + 1 bodies
  for them at once.
- **In process** (no ingest processes): one body decodes at a time, and decoded spans
  wait for the store within the bodies charged: ``DECODED_PER_BODY_BYTE`` · B_held.

``BASE_*`` are what an idle process holds (imports, the store, the UI). The constants
were measured (``bench/soak_memory.py`` prints the bound beside the peak it measures):
the smallest valid span is 48 bytes on the wire and about 480 decoded, and a JSON
body's parsed objects cost about as much per byte.

Example::

    >>> from tracebraid.collector.app import Limits
    >>> bound = memory_bound(Limits(max_body_bytes=20 << 20), processes=2)
    >>> bound.total // (1 << 20)
    1612
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebraid.collector.app import Limits
from tracebraid.collector.connections import Deadlines

__all__ = [
    "BASE_COLLECTOR",
    "BASE_WORKER",
    "DECODED_PER_BODY_BYTE",
    "READ_BUFFER",
    "SLICE_COST",
    "MemoryBound",
    "memory_bound",
]

MiB = 1 << 20
BASE_COLLECTOR = 160 * MiB
"""An idle ``tracebraid serve`` process with the UI: interpreter, imports, store, caches."""
BASE_WORKER = 80 * MiB
"""An idle ingest process: interpreter, imports, its own connection to the store."""
DECODED_PER_BODY_BYTE = 16
"""Bytes of Python objects per body byte, decoded: 10 measured for the smallest valid
protobuf spans and for JSON spans with many small attributes; JSON denser in objects
than one per ``otlp_json.BYTES_PER_CONTAINER`` bytes is refused before parsing."""
SLICE_COST = 40 * MiB
"""Decoding and storing one protobuf slice (at most 256 KiB, 4,096 spans)."""
READ_BUFFER = 64 * 1024
"""What uvicorn reads from a connection before the application takes it."""


@dataclass(frozen=True, slots=True)
class MemoryBound:
    """The bound, per process: the collector process, and each ingest process."""

    collector: int
    per_worker: int
    workers: int

    @property
    def total(self) -> int:
        """All processes together."""
        return self.collector + self.workers * self.per_worker

    def __str__(self) -> str:
        workers = (
            f" + {self.workers} ingest processes x {self.per_worker / MiB:,.0f} MiB"
            if self.workers
            else ""
        )
        return f"{self.total / MiB:,.0f} MiB (collector {self.collector / MiB:,.0f} MiB{workers})"


def memory_bound(
    limits: Limits, *, processes: int, deadlines: Deadlines | None = None
) -> MemoryBound:
    """The most memory a collector with these limits takes (module docstring).

    ``processes`` is how many ingest processes it runs (0: it ingests in its own).
    """
    deadlines = deadlines or Deadlines()
    body = limits.max_body_bytes
    held = limits.buffered_bytes
    reading = deadlines.max_connections * READ_BUFFER
    if processes:
        per_worker = BASE_WORKER + 2 * body + max(SLICE_COST, DECODED_PER_BODY_BYTE * body)
        collector = BASE_COLLECTOR + held + reading + (processes + 1) * body
        return MemoryBound(collector, per_worker, processes)
    collector = BASE_COLLECTOR + reading + body + DECODED_PER_BODY_BYTE * (held + body)
    return MemoryBound(collector, 0, 0)
