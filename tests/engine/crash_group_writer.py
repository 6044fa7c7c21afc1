"""Helper process for test_group_commit_crash.py (not a test).

    python crash_group_writer.py write PATH THREADS   # THREADS writers on one collection, until killed
    python crash_group_writer.py dump PATH            # print the collection as one JSON line

Writer ``t`` applies its ops 0, 1, 2, ... (``op(t, i)``: an upsert or delete of a few of its
own ids, a pure function of ``(t, i)``) and prints ``BEGIN n`` before each call and
``ACK n`` after it returns, ``n = t * STRIDE + i``, so one op of each writer is in flight at
most. Writers share the collection, so their calls are committed in groups.
"""

import json
import random
import sys
import threading

COLLECTION = "crash-group"
DIM = 4
IDS_PER_WRITER = 12
STRIDE = 1_000_000


def op(t: int, i: int):
    """(kind, ids, metadatas) of writer ``t``'s op ``i``."""
    rng = random.Random(STRIDE * t + i)
    ids = [f"t{t}-{j}" for j in rng.sample(range(IDS_PER_WRITER), rng.choice([1, 2, 4]))]
    if rng.random() < 0.25:
        return "delete", ids, None
    return "upsert", ids, [{"t": t, "i": i, "k": rng.randrange(5)} for _ in ids]


def model(t: int, n_ops: int) -> dict:
    """Writer ``t``'s ids after its ops ``[0, n_ops)``: id -> metadata (upserts replace every key)."""
    state: dict = {}
    for i in range(n_ops):
        kind, ids, metas = op(t, i)
        for k, id_ in enumerate(ids):
            if kind == "delete":
                state.pop(id_, None)
            else:
                state[id_] = {**state.get(id_, {}), **metas[k]}
    return state


def _open(path):
    import gleandb

    # a small memtable: kills land in freezes and flushes too
    settings = gleandb.Settings(memtable_max_rows=60, index_min_rows=50, compaction_min_segments=2)
    client = gleandb.PersistentClient(path=path, settings=settings)
    return client, client.get_or_create_collection(COLLECTION, embedding_function=None)


def write(path: str, threads: int) -> None:
    _, col = _open(path)
    out_lock = threading.Lock()

    def say(line: str) -> None:
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def run(t: int) -> None:
        i = 0
        while True:
            kind, ids, metas = op(t, i)
            say(f"BEGIN {t * STRIDE + i}")
            if kind == "delete":
                col.delete(ids=ids)
            else:
                col.upsert(ids=ids, embeddings=[[float(t), float(i), 1.0, 0.0]] * len(ids), metadatas=metas)
            say(f"ACK {t * STRIDE + i}")
            i += 1

    say("READY")
    workers = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def dump(path: str) -> None:
    client, col = _open(path)
    got = col.get(include=["metadatas"])
    print(json.dumps({"rows": dict(zip(got["ids"], got["metadatas"])), "count": col.count()}))
    client.close()


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], int(sys.argv[3]))
    else:
        dump(sys.argv[2])
