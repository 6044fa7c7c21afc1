"""A real S3-compatible server on 127.0.0.1 for the tests: moto's WSGI app behind one lock.

moto's standalone server checks ``If-None-Match`` / ``If-Match`` on PUT but not under a lock,
so two racing writers can both win on a threaded server
(/work/shared/reference/object-storage-testing.md). Served here with one lock per request,
the check and the write are atomic, as on S3. Run as a script it prints its port and serves
until killed; ``S3Server`` starts that script as a subprocess (a test can kill its writers
without touching the server) and ``FaultProxy`` sits in front of it to inject 500/503s and
slow responses.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def _serve() -> None:  # pragma: no cover - runs in the subprocess
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:
            pass

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def locked(environ, start_response):
        with lock:  # the whole request, so a conditional check and its write are one step
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", 0, locked, threaded=True, request_handler=Quiet)
    print(server.server_port, flush=True)
    server.serve_forever()


class S3Server:
    """moto on a free loopback port, in a subprocess; ``endpoint`` is its URL."""

    def __init__(self) -> None:
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        self.proc = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE, env=env, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError(f"the test S3 server did not start (printed {line!r})")
        self.port = int(line)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # keep reading what it prints: a full pipe would block the server inside its lock
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for _line in self.proc.stdout:
            pass

    def new_bucket(self) -> str:
        """A fresh, empty bucket (one per test keeps tests independent)."""
        name = f"t-{uuid.uuid4().hex[:16]}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("PUT", f"/{name}", body=b"")
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"could not create bucket {name}: HTTP {resp.status}")
        finally:
            conn.close()
        return name

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class FaultProxy:
    """A small HTTP proxy in front of the S3 server that injects faults.

    ``rule(method, path, query)`` returns None (forward), ``("status", code)`` (answer ``code``
    without forwarding), ``("after", code)`` (forward, then answer ``code``: the write happened
    but the client is told it failed) or ``("delay", seconds)`` (forward after a pause).
    ``log`` records (method, path, outcome) of every request.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.rule = lambda method, path, query: None
        self.log: list[tuple[str, str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                action = proxy.rule(self.command, path, query)
                if action is not None and action[0] == "status":
                    proxy.log.append((self.command, path, f"injected {action[1]}"))
                    self._reply(action[1], {}, b"<Error><Code>InternalError</Code></Error>")
                    return
                if action is not None and action[0] == "delay":
                    time.sleep(action[1])
                status, headers, data = proxy._forward(self.command, self.path, self.headers, body)
                if action is not None and action[0] == "after":
                    proxy.log.append((self.command, path, f"forwarded {status}, injected {action[1]}"))
                    self._reply(action[1], {}, b"<Error><Code>InternalError</Code></Error>")
                    return
                proxy.log.append((self.command, path, str(status)))
                self._reply(status, headers, data)

            def _reply(self, status: int, headers: dict, data: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _forward(self, method: str, path: str, headers, body: bytes):
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            fwd = {k: v for k, v in headers.items() if k.lower() not in ("connection", "proxy-connection")}
            fwd["Connection"] = "close"  # one request per connection: the answer ends when it closes
            # the signature covers Host, so it stays the client's; moto reads it only for the bucket style
            conn.request(method, path, body=body if method in ("PUT", "POST") else None, headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict(resp.getheaders()), data
        finally:
            conn.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def clean_exit(rc: int, output: str) -> bool:
    """Whether a child that used obstore exited cleanly. obstore's runtime sometimes aborts the
    interpreter at exit (SIGABRT: rc -6, or 134 through a shell; see
    /work/shared/reference/object-storage-testing.md): that counts as clean only when the
    child's work was done and it printed no traceback, so a real failure is never hidden."""
    if rc == 0:
        return True
    return rc in (-6, 134) and "Traceback" not in output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":  # pragma: no cover
    _serve()


# ------------------------------------------------------------------ pytest fixtures
# imported by the conftest.py of tests/storage and tests/engine

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def s3_server():
    server = S3Server()
    yield server
    server.stop()


def s3_storage_for(server_or_endpoint, bucket: str, prefix: str = "store", **options):
    from gleandb.storage.s3 import S3Storage

    endpoint = getattr(server_or_endpoint, "endpoint", server_or_endpoint)
    options.setdefault("timeout", 10.0)
    return S3Storage(bucket, prefix, endpoint=endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                     region=REGION, **options)


@pytest.fixture
def s3_bucket(s3_server):
    return s3_server.new_bucket()


@pytest.fixture
def s3_env(monkeypatch, s3_server):
    """Credentials and endpoint in the environment, as a deployment sets them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", REGION)
    return s3_server
