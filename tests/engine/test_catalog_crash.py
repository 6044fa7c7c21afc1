"""Crash safety of the catalog log (issue 13): SIGKILL a process that creates, forks,
renames and deletes collections while the catalog checkpoints every few edits; reopen
and require the catalog to be the acknowledged state (or that plus the op in flight,
whole), every fork's data intact, and no referenced file deleted. Several rounds."""

import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import crash_catalog  # noqa: E402
from crash_support import child_env, kill_child, wait_for  # noqa: E402

RUNNER = os.path.join(HERE, "crash_catalog.py")
ROUNDS = 8


def _dump(path):
    out = subprocess.run([sys.executable, RUNNER, "dump", path], capture_output=True, text=True,
                         env=child_env(), timeout=180)
    assert out.returncode == 0, f"reopen after crash failed:\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def _model(k):
    return crash_catalog.simulate(k)[0]


def test_kill_during_create_fork_delete_and_checkpoint(tmp_path):
    path = str(tmp_path / "store")
    rng = random.Random(int(os.environ.get("GLEANDB_CRASH_SEED", "13")))
    next_op = 0
    in_flight_kinds = set()
    for rnd in range(ROUNDS):
        log = str(tmp_path / f"runner-{rnd}.log")

        def wait(proc, log=log):
            wait_for(lambda ls: "READY" in ls, log, proc, 60)
            target = next_op + rng.randint(3, 25)
            wait_for(lambda ls: f"BEGIN {target}" in ls, log, proc, 120)
            time.sleep(rng.choice([0.0, 0.0001, 0.0005, 0.001, 0.003]))

        acks, begins, _lines = kill_child([sys.executable, RUNNER, "run", path, str(next_op)], log, wait, "runner")
        acked = next_op + len(acks)
        in_flight = bool(begins) and begins[-1] == acked
        got = _dump(path)
        assert got["missing"] == [], f"round {rnd}: referenced files were deleted: {got['missing'][:5]}"
        # one checkpoint and its log remain after a reopen (older ones deleted)
        assert len(got["catalog_files"]) == 2, got["catalog_files"]
        if got["collections"] == _model(acked):
            next_op = acked
        else:
            assert in_flight, f"round {rnd}: state is not the acknowledged one and nothing was in flight"
            assert got["collections"] == _model(acked + 1), (
                f"round {rnd}: op {acked} ({crash_catalog.op(acked)}) was in flight: all of it or none. "
                f"got {got['collections']}, want {_model(acked + 1)}"
            )
            next_op = acked + 1
        if in_flight:
            in_flight_kinds.add(crash_catalog.op(acked))
    assert in_flight_kinds, "no kill landed inside an op"
