"""A real ``tracebraid serve`` process for the collector tests, restartable on its port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx

__all__ = ["ServeProcess"]

_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class ServeProcess:
    """``python -m tracebraid serve`` on a free loopback port, restartable on that port."""

    def __init__(self, store_url: str, *extra: str, token: str | None = None) -> None:
        self.store_url = store_url
        self.extra = extra
        self.token = token
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.stderr: list[str] = []
        self.client: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self, timeout_s: float = 20.0) -> None:
        command = [sys.executable, "-m", "tracebraid", "serve", "--port", str(self.port)]
        command += ["--store", self.store_url, *self.extra]
        env = {**os.environ, "TRACEBRAID_TOKEN": self.token or ""}
        self.proc = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        found = threading.Event()
        proc = self.proc

        def drain() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.stderr.append(line)
                match = _LISTENING.search(line)
                if match:
                    self.port = int(match.group(1))
                    found.set()

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        if not found.wait(timeout_s):
            self.stop()
            raise AssertionError(f"serve did not start: {''.join(self.stderr)}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", headers=self.headers).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"serve never became healthy: {''.join(self.stderr)}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no drain, exactly like a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._reap()

    def _reap(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        self._drain.join(10)
        self.proc.stderr.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self._reap()
