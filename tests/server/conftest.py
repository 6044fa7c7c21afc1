"""Fixtures: ``glean run`` as a real subprocess on a free loopback port.

The tests drive it with the official chromadb HTTP client (installed by the
``test`` extra); they are skipped only where that client cannot be imported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

# upper bound for start/stop, not a speed expectation: a loaded CI machine may be slow
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, path: Path, *args: str, env: dict | None = None, log: Path | None = None):
        self.path = path
        self.args = list(args)
        self.env = env or {}
        self.port = _free_port()
        self.log = log or path.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        env = {**os.environ, **self.env}
        env.pop("GLEAN_CONFIG", None)
        cmd = [sys.executable, "-m", "gleandb.cli.main", "run", "--path", str(self.path),
               "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", *self.args]
        self._logfh = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._logfh, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"glean run exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/api/v2/heartbeat", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"glean run did not answer within {START_TIMEOUT_S} s:\n{self.log.read_text()}")

    def stop(self) -> int | None:
        """SIGTERM (graceful), then the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logfh.close()
        rc = self.proc.returncode
        self.proc = None
        return rc


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for a test module (reset allowed, so tests can start from an empty store)."""
    s = Server(tmp_path_factory.mktemp("srv") / "data", "--allow-reset").start()
    yield s
    assert s.stop() == 0


@pytest.fixture
def http_client(server):
    chromadb = pytest.importorskip("chromadb", reason="the chromadb client is installed by gleandb's test extra")
    c = chromadb.HttpClient(host="127.0.0.1", port=server.port,
                            settings=chromadb.Settings(anonymized_telemetry=False, allow_reset=True))
    c.reset()
    return c
