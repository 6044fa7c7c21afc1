"""Hardening of ``glean run`` (issue 12): no secret on disk or in errors, start-up checks of
credentials, tenant/database names, Chroma-shaped error bodies for every error, disk full."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

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
        assert "already open for writing" in str(e.value) and "--auth-token" in str(e.value)
        for secret in (TOKEN, BASIC, "pw-8c1d-secret"):
            assert secret not in text and secret not in str(e.value)
        r = httpx.get(s.url + "/api/v2/tenants/default_tenant", auth=("bob", "pw-8c1d-secret"))
        assert r.status_code == 200
    finally:
        assert s.stop() == 0
