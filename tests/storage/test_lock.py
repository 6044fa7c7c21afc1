"""The LOCK file and StoreLockedError never persist or echo a secret from the command line."""

import fcntl
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

import gleandb
from gleandb.storage.lock import REDACTED, ProcessLock, redact_args

SECRETS = ("s3cr3t-token", "bob:pw-basic", "k3y-value", "hunter2")


def test_redact_args_hides_values_of_secret_options_in_both_forms():
    args = ["run", "--path", "/d", "--auth-token", "s3cr3t-token", "--auth-basic=bob:pw-basic",
            "--api-key", "k3y-value", "--db-password=hunter2", "--port", "8000", "--Secret", "x", "--credentials=y"]
    out = redact_args(args)
    assert out == ["run", "--path", "/d", "--auth-token", REDACTED, f"--auth-basic={REDACTED}",
                   "--api-key", REDACTED, f"--db-password={REDACTED}", "--port", "8000", "--Secret", REDACTED,
                   f"--credentials={REDACTED}"]


HOLDER = textwrap.dedent(
    """
    import sys, gleandb
    c = gleandb.PersistentClient(sys.argv[1])
    print("READY", flush=True)
    sys.stdin.readline()
    """
)


def test_lock_file_is_private_and_holds_no_secret(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    argv = [sys.executable, "-c", HOLDER, str(tmp_path), "--auth-token", SECRETS[0],
            f"--auth-basic={SECRETS[1]}", "--api-key", SECRETS[2], "--password", SECRETS[3]]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        lock = tmp_path / "LOCK"
        assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
        raw = lock.read_text()
        info = json.loads(raw)
        assert info["pid"] == proc.pid and "--auth-token" in info["args"] and REDACTED in info["args"]
        with pytest.raises(gleandb.errors.StoreLockedError) as e:
            gleandb.PersistentClient(str(tmp_path))
        msg = str(e.value)
        assert f"pid {proc.pid}" in msg and "--auth-token" in msg
        for secret in SECRETS:
            assert secret not in raw and secret not in msg
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_old_lock_file_is_redacted_when_read_and_made_private(tmp_path):
    # a LOCK written by an older version: 0644, full command line
    lock = tmp_path / "LOCK"
    lock.write_text(json.dumps({"pid": 4242, "host": "h", "since": "t",
                                "command": f"/usr/bin/glean run --auth-token {SECRETS[0]} --auth-basic={SECRETS[1]}"}))
    os.chmod(lock, 0o644)
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: conflicts even in-process
    try:
        with pytest.raises(gleandb.errors.StoreLockedError) as e:
            ProcessLock(str(tmp_path)).acquire()
        msg = str(e.value)
        assert "pid 4242" in msg and "glean run --auth-token" in msg
        assert SECRETS[0] not in msg and SECRETS[1] not in msg
    finally:
        os.close(fd)
    held = ProcessLock(str(tmp_path))
    held.acquire()
    try:
        assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
        assert SECRETS[0] not in lock.read_text()
    finally:
        held.release()
