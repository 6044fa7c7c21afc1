"""Restarts, the store lock, authentication and configuration of ``glean run``."""

from __future__ import annotations

import base64
import subprocess
import sys

import httpx
import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb", reason="the chromadb client is installed by gleandb's test extra")
from chromadb import errors as cerr  # noqa: E402

from conftest import Server  # noqa: E402

from gleandb.server.config import load_settings  # noqa: E402


def _client(s: Server, **settings):
    return chromadb.HttpClient(host="127.0.0.1", port=s.port,
                               settings=chromadb.Settings(anonymized_telemetry=False, **settings))


def test_data_survives_restart_and_sigterm_exits_cleanly(tmp_path):
    path = tmp_path / "data"
    s = Server(path).start()
    try:
        c = _client(s)
        col = c.create_collection("persist", metadata={"hnsw:space": "ip"})
        vecs = np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32)
        col.add(ids=[str(i) for i in range(50)], embeddings=vecs, documents=[f"d{i}" for i in range(50)])
        col.delete(ids=["3"])
        col.update(ids=["4"], documents=["changed"], embeddings=vecs[4:5])
    finally:
        assert s.stop() == 0  # graceful SIGTERM: exit status 0
    s = Server(path).start()
    try:
        col = _client(s).get_collection("persist")
        assert col.count() == 49
        assert col.configuration_json["hnsw"]["space"] == "ip"
        assert col.get(ids=["4"])["documents"] == ["changed"]
        assert col.get(ids=["3"])["ids"] == []
        q = col.query(query_embeddings=vecs[10:11], n_results=1)
        scores = vecs @ vecs[10]
        scores[3] = -np.inf  # deleted
        assert q["ids"] == [[str(int(np.argmax(scores)))]]
    finally:
        assert s.stop() == 0


def test_second_server_on_same_path_is_refused(tmp_path):
    s = Server(tmp_path / "data").start()
    try:
        other = subprocess.run(
            [sys.executable, "-m", "gleandb.cli.main", "run", "--path", str(tmp_path / "data"), "--port", "1"],
            capture_output=True, text=True, timeout=120,
        )
        assert other.returncode == 1
        assert "already open for writing by another process" in other.stderr, other.stderr
        assert httpx.get(s.url + "/api/v2/heartbeat").status_code == 200
    finally:
        assert s.stop() == 0


def test_token_and_basic_auth(tmp_path):
    s = Server(tmp_path / "data", "--auth-token", "s3cret-token", "--auth-basic", "admin:pa55").start()
    try:
        url = s.url
        for path in ("/api/v2", "/api/v2/heartbeat", "/api/v2/healthcheck", "/api/v2/version"):
            assert httpx.get(url + path).status_code == 200, path
        for path in ("/api/v2/auth/identity", "/api/v2/tenants/default_tenant", "/metrics", "/openapi.json"):
            r = httpx.get(url + path)
            assert r.status_code == 401, path
            assert r.json()["error"] == "AuthError" and r.headers["chroma-trace-id"]
        assert httpx.get(url + "/api/v2/auth/identity", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url + "/api/v2/auth/identity",
                         headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert httpx.get(url + "/api/v2/auth/identity", headers={"X-Chroma-Token": "s3cret-token"}).status_code == 200
        basic = base64.b64encode(b"admin:pa55").decode()
        assert httpx.get(url + "/api/v2/auth/identity", headers={"Authorization": "Basic " + basic}).status_code == 200
        bad = base64.b64encode(b"admin:nope").decode()
        assert httpx.get(url + "/api/v2/auth/identity", headers={"Authorization": "Basic " + bad}).status_code == 401

        # the official client's auth providers
        with pytest.raises(cerr.ChromaAuthError):
            _client(s)
        token_client = _client(s, chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
                               chroma_client_auth_credentials="s3cret-token")
        col = token_client.create_collection("authd")
        col.add(ids=["a"], embeddings=[[1.0, 2.0]])
        header_client = _client(s, chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
                                chroma_client_auth_credentials="s3cret-token",
                                chroma_auth_token_transport_header="X-Chroma-Token")
        assert header_client.get_collection("authd").count() == 1
        basic_client = _client(s, chroma_client_auth_provider="chromadb.auth.basic_authn.BasicAuthClientProvider",
                               chroma_client_auth_credentials="admin:pa55")
        assert basic_client.get_collection("authd").count() == 1
    finally:
        assert s.stop() == 0


def test_settings_precedence(tmp_path):
    cfg = tmp_path / "glean.yaml"
    cfg.write_text("path: /from/file\nport: 7000\nallow_reset: true\nauth_tokens: [a, b]\nmax_body_bytes: 123\n")
    s = load_settings({}, str(cfg), environ={})
    assert (s.path, s.port, s.allow_reset, s.auth_tokens, s.max_body_bytes) == ("/from/file", 7000, True, ["a", "b"], 123)
    s = load_settings({}, str(cfg), environ={"GLEAN_PORT": "7100", "GLEAN_ALLOW_RESET": "false"})
    assert (s.port, s.allow_reset, s.path) == (7100, False, "/from/file")
    s = load_settings({"port": 7200, "path": None}, str(cfg), environ={"GLEAN_PORT": "7100"})
    assert (s.port, s.path) == (7200, "/from/file")
    s = load_settings({}, None, environ={"GLEAN_CONFIG": str(cfg), "GLEAN_AUTH_TOKENS": "x, y"})
    assert s.auth_tokens == ["x", "y"] and s.port == 7000
    with pytest.raises(ValueError, match="unknown server setting"):
        load_settings({}, None, environ={}) and load_settings({"nope": 1}, None, environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("port: eighty\n")
    with pytest.raises(ValueError, match="port"):
        load_settings({}, str(bad), environ={})


def test_env_and_config_file_reach_the_server(tmp_path):
    cfg = tmp_path / "glean.yaml"
    cfg.write_text("allow_reset: true\nmax_body_bytes: 1000\n")
    s = Server(tmp_path / "data", "--config", str(cfg), env={"GLEAN_AUTH_TOKENS": "envtok"}).start()
    try:
        h = {"X-Chroma-Token": "envtok"}
        assert httpx.post(s.url + "/api/v2/reset").status_code == 401
        assert httpx.post(s.url + "/api/v2/reset", headers=h).json() is True
        r = httpx.post(s.url + "/api/v2/tenants", headers=h, json={"name": "x" * 2000})
        assert r.status_code == 413
    finally:
        assert s.stop() == 0
