"""Crash safety: SIGKILL a writer at random moments, reopen, check what survived.

A writer subprocess (crash_writer.py) applies deterministic batches (add / upsert /
delete of up to 150 rows, one call each) to a PersistentClient and prints ``ACK n`` after
each call returns. We kill it with SIGKILL -- at random times, right after it announced
a batch (mid-call), and during start-up/reopen -- then reopen the directory in a fresh
process and require the collection to equal exactly the model state after the
acknowledged batches, or after those plus the one in flight (all of it or none of it).
Then a new writer continues on the same directory; several rounds.
"""

import json
import os
import random
import subprocess
import sys
import time


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import crash_writer  # noqa: E402
from crash_support import child_env, kill_child, wait_for  # noqa: E402

WRITER = os.path.join(HERE, "crash_writer.py")
ROUNDS = 8
MIN_ACKED_TOTAL = 10


def _dump(module, path):
    out = subprocess.run(
        [sys.executable, WRITER, "dump", module, path],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert out.returncode == 0, f"reopen after crash failed:\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def _expected(n_batches):
    state = {}
    for n in range(n_batches):
        crash_writer.apply(state, n)
    return {
        "ids": list(state),
        "embeddings": [e for e, _, _ in state.values()],
        "documents": [d for _, d, _ in state.values()],
        "metadatas": [m for _, _, m in state.values()],
        "count": len(state),
    }


def _canon(snapshot):
    # json with sorted keys keeps int vs float apart (1 != 1.0 here)
    return json.dumps(snapshot, sort_keys=True)


def _describe_diff(got, want):
    gi, wi = got["ids"], want["ids"]
    extra = sorted(set(gi) - set(wi))[:10]
    missing = sorted(set(wi) - set(gi))[:10]
    changed = [
        i
        for i in set(gi) & set(wi)
        if _canon([got[f][gi.index(i)] for f in ("embeddings", "documents", "metadatas")])
        != _canon([want[f][wi.index(i)] for f in ("embeddings", "documents", "metadatas")])
    ][:10]
    order = gi != wi and not extra and not missing
    return f"count {got['count']} vs {want['count']}; extra {extra}; missing {missing}; changed {changed}; order differs only: {order}"


def test_kill_reopen_continue(db, tmp_path):
    module = db.__name__
    path = str(tmp_path / "store")
    rng = random.Random(int(os.environ.get("GLEANDB_CRASH_SEED", "20240611")))
    next_batch = 0  # batches [0, next_batch) are durable
    acked_total = 0
    mid_batch_rounds = 0
    started = time.monotonic()
    for rnd in range(ROUNDS):
        mode = ["mid_batch", "random", "mid_batch", "startup"][rnd % 4] if rnd else "random"
        log = str(tmp_path / f"writer-{rnd}.log")

        def wait(proc, log=log):
            if mode == "startup":
                # kill while importing / opening / replaying the log
                time.sleep(rng.uniform(0.0, 1.5))
                return
            wait_for(lambda ls: "READY" in ls, log, proc, 60)
            if mode == "random":
                time.sleep(rng.uniform(0.05, 1.0))
            else:
                target = next_batch + rng.randint(2, 15)
                wait_for(lambda ls: f"BEGIN {target}" in ls, log, proc, 60)
                time.sleep(rng.choice([0.0, 0.0005, 0.001, 0.003, 0.01]))

        acks, begins, lines = kill_child([sys.executable, WRITER, "write", module, path, str(next_batch)], log,
                                         wait, "writer")
        assert acks == list(range(next_batch, next_batch + len(acks))), lines[-10:]
        acked = next_batch + len(acks)  # batches [0, acked) were acknowledged
        in_flight = begins and begins[-1] == acked

        got = _dump(module, path)
        want = _expected(acked)
        if _canon(got) == _canon(want):
            next_batch = acked
        else:
            assert in_flight, (
                f"round {rnd} ({mode}): state after kill is not the acknowledged state "
                f"(batches < {acked}); no batch was in flight. {_describe_diff(got, want)}"
            )
            want_plus = _expected(acked + 1)
            assert _canon(got) == _canon(want_plus), (
                f"round {rnd} ({mode}): batch {acked} ({crash_writer.batch(acked)[0]}) was in flight: the state "
                f"must be all of it or none of it. vs without it: {_describe_diff(got, want)}; "
                f"vs with it: {_describe_diff(got, want_plus)}"
            )
            next_batch = acked + 1
        if in_flight and mode == "mid_batch":
            mid_batch_rounds += 1
        print(f"round {rnd} ({mode}): {len(acks)} acked, in flight: {bool(in_flight)}, durable batches: {next_batch}")
        acked_total += len(acks)
    # the test must have exercised something
    assert acked_total >= MIN_ACKED_TOTAL, f"only {acked_total} batches acknowledged in {ROUNDS} rounds"
    assert mid_batch_rounds >= 1, "no kill landed while a batch was in flight"
    assert time.monotonic() - started < 300
