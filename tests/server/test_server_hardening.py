"""Hardening of ``glean run`` (issue 12): no secret on disk or in errors, start-up checks of
credentials, tenant/database names, Chroma-shaped error bodies for every error, disk full."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from urllib.parse import quote

import httpx
import pytest

from conftest import Server  # noqa: E402

TOKEN = "tok-3f9a-very-secret"
BASIC = "bob:pw-8c1d-secret"


def _glean_run(tmp_path, *args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GLEAN_")}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "gleandb.cli.main", "run", "--path", str(tmp_path / "data"),
                           "--port", "1", *args], capture_output=True, text=True, env=e, timeout=120)


@pytest.mark.parametrize("source", ["flag", "env", "yaml"])
def test_basic_credential_without_colon_is_refused_at_startup(tmp_path, source):
    secret = "justapassword-no-colon-77"
    if source == "flag":
        r = _glean_run(tmp_path, "--auth-basic", secret)
    elif source == "env":
        r = _glean_run(tmp_path, env={"GLEAN_AUTH_BASIC": f"alice:ok,{secret}"})
    else:
        cfg = tmp_path / "glean.yaml"
        cfg.write_text(f"auth_basic:\n  - {secret}\n")
        r = _glean_run(tmp_path, "--config", str(cfg))
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert secret not in out
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "auth_basic" in lines[0] and "user:password" in lines[0], out
    assert not (tmp_path / "data").exists()  # refused before the store was opened


def test_running_server_keeps_secrets_out_of_lock_file_and_errors(tmp_path):
    path = tmp_path / "data"
    s = Server(path, "--auth-token", TOKEN, f"--auth-basic={BASIC}").start()
    try:
        lock = path / "LOCK"
        assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
        text = lock.read_text()
        assert "--auth-token" in text and str(path) in text
        # a second server on the same store fails with the holder in its message
        second = Server(path, "--auth-token", TOKEN)
        with pytest.raises(RuntimeError) as e:
            second.start()
        assert second.stop() not in (0, None)  # it exited with an error (and its log is closed)
        assert "already open for writing" in str(e.value) and "--auth-token" in str(e.value)
        for secret in (TOKEN, BASIC, "pw-8c1d-secret"):
            assert secret not in text and secret not in str(e.value)
        r = httpx.get(s.url + "/api/v2/tenants/default_tenant", auth=("bob", "pw-8c1d-secret"))
        assert r.status_code == 200
    finally:
        assert s.stop() == 0


# ----------------------------------------------------------------- error shapes

DB = "/api/v2/tenants/default_tenant/databases/default_database"
CHROMA_NAMES = {"InvalidArgumentError", "NotFoundError", "InternalError", "ChromaError", "AuthError",
                "AuthorizationError", "VersionMismatchError"}


def _assert_chroma_shape(r: httpx.Response, status: int, name: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body, dict) and set(body) == {"error", "message"}, body
    assert body["error"] in CHROMA_NAMES and isinstance(body["message"], str) and body["message"], body
    if name is not None:
        assert body["error"] == name, body
    assert r.headers.get("chroma-trace-id")
    return body


@pytest.fixture
def base(server):
    r = httpx.post(server.url + DB + "/collections", json={"name": "shapes", "get_or_create": True})
    assert r.status_code == 200, r.text
    return server.url + DB + "/collections/" + r.json()["id"]


def _nested(depth: int) -> bytes:
    return ('{"where":' + '{"$and":[' * depth + '{"a":1}' + ']}' * depth + '}').encode()


FRAMEWORK_CASES = [
    # (method, path under the collection or absolute, body, status, error name)
    ("POST", "/add", b'{"ids":["\xff\xfe"],"embeddings":[[1.0]]}', 400, "InvalidArgumentError"),  # invalid UTF-8
    ("POST", "/add", b'{"ids":', 400, "InvalidArgumentError"),  # invalid JSON
    ("POST", "/get", b"[" * 100_000 + b"]" * 100_000, 400, "InvalidArgumentError"),  # parse failure at depth
    ("POST", "/get", _nested(5_000), 400, "InvalidArgumentError"),
    ("POST", "/add", b'{"ids":[1],"embeddings":[[1.0]]}', 422, "ChromaError"),  # body validation
    ("POST", "/get", b'"a string"', 422, "ChromaError"),
    ("POST", "/query", b'{"query_embeddings":[[1.0]],"include":["nope"]}', 422, "ChromaError"),
    ("GET", "ABS/api/v2/no-such-route", None, 404, "NotFoundError"),
    ("GET", "ABS/nothing/here", None, 404, "NotFoundError"),
    ("DELETE", "ABS/api/v2/heartbeat", None, 405, "ChromaError"),
    ("PUT", "/add", b"{}", 405, "ChromaError"),
    ("GET", "ABS" + DB + "/collections?limit=-1", None, 400, "InvalidArgumentError"),  # query validation
    ("GET", "ABS" + DB + "/collections?limit=abc", None, 400, "InvalidArgumentError"),
    ("POST", "ABS/api/v2/tenants", b'{"nom":"x"}', 422, "ChromaError"),
]


@pytest.mark.parametrize("case", range(len(FRAMEWORK_CASES)),
                         ids=lambda i: f"{FRAMEWORK_CASES[i][0]}-{FRAMEWORK_CASES[i][1][:30]}-{FRAMEWORK_CASES[i][3]}")
def test_every_framework_error_has_chromas_shape(server, base, case):
    method, path, body, status, name = FRAMEWORK_CASES[case]
    url = server.url + path[3:] if path.startswith("ABS") else base + path
    r = httpx.request(method, url, content=body, headers={"content-type": "application/json"}, timeout=60)
    msg = _assert_chroma_shape(r, status, name)["message"]
    if status == 400 and method == "POST":
        assert "Failed to parse the request body as JSON" in msg


def test_server_keeps_serving_after_framework_errors(server, base):
    r = httpx.post(base + "/add", json={"ids": ["ok"], "embeddings": [[1.0, 2.0]]})
    assert r.status_code == 201, r.text
    assert httpx.get(base + "/count").json() >= 1


# ------------------------------------------------------------ tenant/database names

BAD_NAMES = ["../../etc", "a/b/c", "ab\x00cd", "ab\ncd", "x" * 5000, "ab..cd", "-abc", "a b c"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n[:10]))
def test_bad_tenant_and_database_names_get_400(server, name):
    r = httpx.post(server.url + "/api/v2/tenants", json={"name": name})
    assert "tenant name" in _assert_chroma_shape(r, 400, "InvalidArgumentError")["message"]
    r = httpx.post(server.url + "/api/v2/tenants/default_tenant/databases", json={"name": name})
    assert "database name" in _assert_chroma_shape(r, 400, "InvalidArgumentError")["message"]
    names = [d["name"] for d in httpx.get(server.url + "/api/v2/tenants/default_tenant/databases").json()]
    assert name not in names
    if "/" not in name:  # a database under a missing tenant creates the tenant: its name is checked
        r = httpx.post(server.url + f"/api/v2/tenants/{quote(name, safe='')}/databases", json={"name": "fine"})
        assert "tenant name" in _assert_chroma_shape(r, 400, "InvalidArgumentError")["message"]
        assert httpx.get(server.url + f"/api/v2/tenants/{quote(name, safe='')}").status_code == 404


# -------------------------------------------------------------------- disk full


def test_disk_full_is_507_in_chromas_shape_and_reads_keep_working(tmp_path, monkeypatch):
    import errno

    from fastapi.testclient import TestClient

    import gleandb
    from gleandb.server.app import create_app

    gleandb.ClientAPI.clear_system_cache()
    app = create_app(str(tmp_path / "data"))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post(DB + "/collections", json={"name": "full"})
        col = DB + "/collections/" + r.json()["id"]
        assert c.post(col + "/add", json={"ids": ["a"], "embeddings": [[1.0, 0.0]]}).status_code == 201

        def no_space(fd, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", no_space)
        r = c.post(col + "/add", json={"ids": ["b"], "embeddings": [[0.0, 1.0]]})
        monkeypatch.undo()
        body = _assert_chroma_shape(r, 507, "ChromaError")
        assert str(tmp_path / "data") in body["message"] and "free" in body["message"]
        assert "Errno" not in body["message"]
        r = c.post(col + "/get", json={})
        assert r.status_code == 200 and r.json()["ids"] == ["a"]
        assert c.get(col + "/count").json() == 1


def test_gleandb_http_client_raises_insufficient_storage_for_507():
    from gleandb.api.http_client import _raise_for_response
    from gleandb.errors import ChromaError, InsufficientStorageError

    resp = httpx.Response(507, json={"error": "ChromaError", "message": "Insufficient storage: full"},
                          headers={"chroma-trace-id": "t1"})
    with pytest.raises(InsufficientStorageError, match="Insufficient storage") as e:
        _raise_for_response(resp)
    assert isinstance(e.value, ChromaError) and e.value.trace_id == "t1"


# ------------------------------------------------------------------- versions


def test_versions_chroma_compatible_and_gleandb_own(server):
    import re

    import gleandb

    assert httpx.get(server.url + "/api/v2/version").json() == "1.0.0"  # what Chroma's server says
    own = httpx.get(server.url + "/api/v2/gleandb/version").json()
    assert own == {"gleandb": gleandb.__version__, "chroma_server": "1.0.0", "chromadb_api": "1.5.9"}
    c = gleandb.HttpClient(host="127.0.0.1", port=server.port)
    assert re.fullmatch(r"\d+\.\d+\.\d+", c.get_version())
    c.close()
    gleandb.ClientAPI.clear_system_cache()
    e = gleandb.EphemeralClient()
    assert e.get_version() == "1.5.9"  # chromadb 1.5.9's embedded client reports its version
