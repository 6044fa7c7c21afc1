"""Crash safety of fork and vacuum: SIGKILL a process that interleaves writes, forks,
forks of forks, vacuums and collection deletions; reopen and require that every
collection equals the model after the acknowledged ops (or those plus the one in
flight: a fork is complete or absent, never half there), and that no file a retained
manifest names was deleted. Then continue on the same directory; several rounds.
"""

import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import crash_forker  # noqa: E402
from crash_support import child_env, kill_child, wait_for  # noqa: E402

RUNNER = os.path.join(HERE, "crash_forker.py")
ROUNDS = 8


def _dump(path):
    out = subprocess.run([sys.executable, RUNNER, "dump", path], capture_output=True, text=True, env=child_env(), timeout=180)
    assert out.returncode == 0, f"reopen after crash failed:\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def _model(k):
    cols, _forks = crash_forker.simulate(k)
    return {name: [[i, d] for i, d in state.items()] for name, state in cols.items()}


def test_kill_during_fork_and_vacuum(tmp_path):
    path = str(tmp_path / "store")
    rng = random.Random(int(os.environ.get("GLEANDB_CRASH_SEED", "5")))
    next_op = 0
    kinds_in_flight = set()
    for rnd in range(ROUNDS):
        log = str(tmp_path / f"runner-{rnd}.log")

        def wait(proc, log=log):
            wait_for(lambda ls: "READY" in ls, log, proc, 60)
            # aim at a fork or a vacuum a few ops ahead, then kill inside it (or just after)
            target = next_op + rng.randint(2, 12)
            while crash_forker.op(target)[0] not in ("fork", "vacuum"):
                target += 1
            wait_for(lambda ls: f"BEGIN {target}" in ls, log, proc, 120)
            time.sleep(rng.choice([0.0, 0.0002, 0.001, 0.003, 0.01, 0.03]))

        acks, begins, _lines = kill_child([sys.executable, RUNNER, "run", path, str(next_op)], log, wait, "runner")
        acked = next_op + len(acks)
        in_flight = bool(begins) and begins[-1] == acked
        got = _dump(path)
        assert got["missing"] == [], f"round {rnd}: referenced files were deleted: {got['missing'][:5]}"
        if got["collections"] == _model(acked):
            next_op = acked
        else:
            assert in_flight, f"round {rnd}: state is not the acknowledged one and nothing was in flight"
            assert got["collections"] == _model(acked + 1), (
                f"round {rnd}: op {acked} {crash_forker.op(acked)} was in flight: all of it or none. "
                f"got {sorted(got['collections'])}, want {sorted(_model(acked + 1))}"
            )
            next_op = acked + 1
        if in_flight:
            kinds_in_flight.add(crash_forker.op(acked)[0])
        print(f"round {rnd}: {len(acks)} acked, in flight {crash_forker.op(acked) if in_flight else None}")
    assert kinds_in_flight & {"fork", "vacuum"}, "no kill landed during a fork or a vacuum"
