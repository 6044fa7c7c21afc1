"""Shared by the SIGKILL tests: run a child process against a store and follow its log."""

from __future__ import annotations

import os
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def child_env() -> dict:
    """The environment of a child that must import this checkout's gleandb, unbuffered."""
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(HERE)), "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def read_lines(path: str) -> list[str]:
    with open(path) as f:
        return f.read().splitlines()


def wait_for(pred, log: str, proc, timeout: float) -> list[str]:
    """Poll the child's log until ``pred(lines)``; fail if it exits or stalls first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = read_lines(log)
        if pred(lines):
            return lines
        if proc.poll() is not None:
            raise AssertionError(f"child exited early (rc={proc.returncode}): {lines[-8:]}")
        time.sleep(0.002)
    raise AssertionError(f"child made no progress in {timeout}s: {read_lines(log)[-5:]}")


def kill_child(argv: list[str], log: str, wait, what: str = "child") -> tuple[list[int], list[int], list[str]]:
    """Start ``argv`` (output to ``log``), call ``wait(proc)``, which returns when the moment to
    kill has come, then SIGKILL the child. Returns the op numbers it printed as ``ACK n`` and
    ``BEGIN n`` (acknowledged, begun) and all its lines."""
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=child_env())
    try:
        wait(proc)
        assert proc.poll() is None, f"{what} died by itself: {read_lines(log)[-10:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    lines = read_lines(log)
    acks = [int(ln.split()[1]) for ln in lines if ln.startswith("ACK ")]
    begins = [int(ln.split()[1]) for ln in lines if ln.startswith("BEGIN ")]
    return acks, begins, lines
