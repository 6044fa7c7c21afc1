"""OpenAIEmbeddingFunction against a local OpenAI-compatible server (stdlib, in a thread)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

pytest.importorskip("httpx")

import gleandb  # noqa: E402
from gleandb.embeddings.functions import build_ef, describe_ef  # noqa: E402
from gleandb.embeddings.openai import (  # noqa: E402
    OpenAIAuthenticationError,
    OpenAIEmbeddingError,
    OpenAIEmbeddingFunction,
    OpenAITimeoutError,
)

KEY = "sk-test-123"


def fake_vector(text: str, dim: int) -> list[float]:
    rng = np.random.default_rng(abs(hash(text)) % (2**32))
    v = rng.standard_normal(dim)
    return (v / np.linalg.norm(v)).tolist()


class FakeOpenAI:
    """POST /v1/embeddings. ``script`` holds (status, headers, body-or-None, delay_s) to
    answer with before serving normally; every request is recorded."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict, object, float]] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer.lock:
                    outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    step = outer.script.pop(0) if outer.script else None
                if step is not None:
                    status, headers, payload, delay = step
                    if delay:
                        time.sleep(delay)
                    self._send(status, headers, payload)
                    return
                if self.path.split("?")[0] != "/v1/embeddings":
                    self._send(404, {}, {"error": {"message": f"no route {self.path}"}})
                    return
                if self.headers.get("Authorization") != f"Bearer {KEY}":
                    self._send(401, {}, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
                    return
                dim = body.get("dimensions") or 8
                data = [{"object": "embedding", "index": i, "embedding": fake_vector(t, dim)} for i, t in enumerate(body["input"])]
                data.reverse()  # the index field, not the order, says which input a vector belongs to
                self._send(200, {}, {"object": "list", "data": data, "model": body["model"]})

            def _send(self, status, headers, payload):
                raw = json.dumps(payload).encode() if payload is not None else b""
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    s = FakeOpenAI()
    yield s
    s.close()


@pytest.fixture
def ef(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    f = OpenAIEmbeddingFunction(model_name="text-embedding-3-small", api_base=server.base, batch_size=3, timeout=2.0, max_retries=2)
    f.sleeps = []
    f._sleep = f.sleeps.append  # record backoff instead of sleeping
    yield f
    f.close()


def test_embeds_in_batches_in_input_order(ef, server):
    texts = [f"text {i}" for i in range(7)]
    out = ef(texts)
    assert len(out) == 7 and all(v.dtype == np.float32 and v.shape == (8,) for v in out)
    for t, v in zip(texts, out):
        np.testing.assert_allclose(v, fake_vector(t, 8), rtol=1e-6)
    assert [len(r["body"]["input"]) for r in server.requests] == [3, 3, 1]
    r = server.requests[0]
    assert r["path"] == "/v1/embeddings"
    assert r["headers"]["Authorization"] == f"Bearer {KEY}"
    assert r["body"]["model"] == "text-embedding-3-small" and r["body"]["encoding_format"] == "float"
    assert ef([]) == []


def test_dimensions_and_base_url_alias(server, monkeypatch):
    monkeypatch.setenv("MY_KEY", KEY)
    f = OpenAIEmbeddingFunction(model_name="m", base_url=server.base + "/", dimensions=5, api_key_env_var="MY_KEY")
    (v,) = f(["x"])
    assert v.shape == (5,) and server.requests[-1]["body"]["dimensions"] == 5
    f.close()


def test_config_stores_the_env_var_name_never_the_key(ef, server, monkeypatch):
    cfg = ef.get_config()
    assert cfg["api_key_env_var"] == "OPENAI_API_KEY"
    assert KEY not in json.dumps(describe_ef(ef)) and KEY not in repr(ef)
    direct = OpenAIEmbeddingFunction(api_key="sk-direct-secret", api_base=server.base)
    assert "sk-direct-secret" not in json.dumps(direct.get_config())
    rebuilt = build_ef(describe_ef(ef))
    assert isinstance(rebuilt, OpenAIEmbeddingFunction)
    assert rebuilt.get_config() == cfg
    np.testing.assert_allclose(rebuilt(["hello"])[0], ef(["hello"])[0])
    rebuilt.close()


def test_missing_key_names_the_env_var(server, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    f = OpenAIEmbeddingFunction(api_base=server.base, api_key_env_var="NO_SUCH_KEY_VAR")
    with pytest.raises(ValueError, match="NO_SUCH_KEY_VAR environment variable is not set"):
        f(["x"])
    assert server.requests == []


def test_401_is_not_retried_and_says_why(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    f = OpenAIEmbeddingFunction(api_base=server.base, max_retries=3)
    with pytest.raises(OpenAIAuthenticationError, match=r"401.*Incorrect API key.*OPENAI_API_KEY") as ei:
        f(["x"])
    assert ei.value.status_code == 401
    assert len(server.requests) == 1
    f.close()


def test_429_retry_after_is_honoured(ef, server):
    server.script = [
        (429, {"Retry-After": "3"}, {"error": {"message": "Rate limit reached"}}, 0),
        (429, {"retry-after-ms": "250"}, {"error": {"message": "Rate limit reached"}}, 0),
    ]
    (v,) = ef(["x"])
    assert v.shape == (8,)
    assert ef.sleeps == [3.0, 0.25]
    assert len(server.requests) == 3


def test_429_real_wait(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    f = OpenAIEmbeddingFunction(api_base=server.base, max_retries=1)
    server.script = [(429, {"Retry-After": "0.3"}, {"error": {"message": "slow down"}}, 0)]
    t = time.perf_counter()
    f(["x"])
    assert time.perf_counter() - t >= 0.3
    f.close()


def test_500_retried_with_backoff_then_fails_clearly(ef, server):
    server.script = [(500, {}, {"error": {"message": "The server had an error"}}, 0)] * 3
    with pytest.raises(OpenAIEmbeddingError, match=r"failed with 500 after 3 attempt\(s\): The server had an error") as ei:
        ef(["x"])
    assert ei.value.status_code == 500
    assert len(server.requests) == 3 and len(ef.sleeps) == 2
    assert 0 < ef.sleeps[0] < ef.sleeps[1] <= 8  # exponential backoff with jitter


def test_500_then_success(ef, server):
    server.script = [(503, {}, None, 0)]
    assert len(ef(["a", "b"])) == 2
    assert len(server.requests) == 2


def test_other_4xx_fails_at_once_with_server_message(ef, server):
    server.script = [(400, {}, {"error": {"message": "This model's maximum context length is 8192 tokens"}}, 0)]
    with pytest.raises(OpenAIEmbeddingError, match=r"failed with 400: This model's maximum context length") as ei:
        ef(["x"])
    assert ei.value.status_code == 400 and len(server.requests) == 1
    wrong = OpenAIEmbeddingFunction(api_base=server.base.replace("/v1", "/nope"), api_key=KEY)
    with pytest.raises(OpenAIEmbeddingError, match="404: no route /nope/embeddings"):
        wrong(["x"])
    wrong.close()


def test_timeout(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    f = OpenAIEmbeddingFunction(api_base=server.base, timeout=0.2, max_retries=1)
    f._sleep = lambda s: None
    server.script = [(200, {}, {"data": []}, 1.0)] * 2
    t = time.perf_counter()
    with pytest.raises(OpenAITimeoutError, match=r"timed out after 0.2 s.*2 attempt\(s\)"):
        f(["x"])
    assert time.perf_counter() - t < 1.5
    f.close()


def test_malformed_response(ef, server):
    server.script = [(200, {}, {"data": [{"index": 0, "embedding": [1.0]}]}, 0)]
    with pytest.raises(OpenAIEmbeddingError, match="1 vectors for 2 inputs"):
        ef(["a", "b"])


def test_connection_refused(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    f = OpenAIEmbeddingFunction(api_base=f"http://127.0.0.1:{port}/v1", max_retries=1)
    f._sleep = lambda s: None
    with pytest.raises(OpenAIEmbeddingError, match="connection failed"):
        f(["x"])
    f.close()


def test_collection_round_trip(server, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    client = gleandb.PersistentClient(path=str(tmp_path / "db"))
    col = client.create_collection("oai", embedding_function=OpenAIEmbeddingFunction(api_base=server.base, dimensions=16))
    cfg = col.configuration_json
    assert cfg["embedding_function"]["name"] == "openai"
    assert cfg["embedding_function"]["config"]["api_key_env_var"] == "OPENAI_API_KEY"
    assert cfg["hnsw"]["space"] == "cosine"
    col.add(ids=["a", "b"], documents=["alpha", "beta"])
    client.close()
    gleandb.ClientAPI.clear_system_cache()
    client2 = gleandb.PersistentClient(path=str(tmp_path / "db"))
    col2 = client2.get_collection("oai")
    assert isinstance(col2._embedding_function, OpenAIEmbeddingFunction)
    assert col2.query(query_texts=["beta"], n_results=1)["ids"] == [["b"]]
    client2.close()


def test_close_context_manager_and_collection(server, monkeypatch):
    """A dropped or exited function closes its pooled sockets (no 'unclosed socket' warning)."""
    import gc
    import warnings

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.server.RequestHandlerClass.protocol_version = "HTTP/1.1"  # connections stay pooled
    with OpenAIEmbeddingFunction(model_name="m", api_base=server.base) as f:
        f(["a"])
        assert f._client is not None and not f._client.is_closed
    assert f._client is None
    gc.collect()  # earlier tests' garbage first, outside the recording
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        g = OpenAIEmbeddingFunction(model_name="m", api_base=server.base)
        g(["b"])
        del g
        gc.collect()
    port = server.server.server_address[1]  # only sockets to this test's server are its business
    assert [w for w in ws if issubclass(w.category, ResourceWarning) and "unclosed" in str(w.message)
            and f", {port})" in str(w.message)] == []
