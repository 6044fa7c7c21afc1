"""Helper process for test_crash.py (not a test).

    python crash_writer.py write MODULE PATH START   # loop: batch START, START+1, ...
    python crash_writer.py dump MODULE PATH          # print the collection as one JSON line

``write`` opens ``MODULE.PersistentClient(PATH)`` and applies batch n = ``batch(n)``
(an add, upsert or delete call with deterministic content), printing ``BEGIN n`` before
the call and ``ACK n`` after it returns, each line flushed, until it is killed.
``MODULE`` is ``gleandb`` or ``chromadb``.
"""

import importlib
import json
import random
import sys

COLLECTION = "crash"
DIM = 8
ID_POOL = 300


def batch(n):
    """(op, ids, embeddings, documents, metadatas) of batch n; a pure function of n."""
    rng = random.Random(1_000_003 * n + 17)
    r = rng.random()
    op = "add" if r < 0.4 else "upsert" if r < 0.8 else "delete"
    size = rng.choice([1, 2, 5, 20, 60, 150]) if op != "delete" else rng.choice([1, 3, 10, 40])
    ids = [f"r{j}" for j in rng.sample(range(ID_POOL), size)]
    if op == "delete":
        return op, ids, None, None, None
    embs = [[rng.randint(-64, 64) / 8.0 for _ in range(DIM)] for _ in ids]
    docs = [f"doc {n} {i} " + "x" * rng.randint(0, 40) for i in ids]
    metas = [{"batch": n, "id": i, "f": n / 4.0, "tags": [n % 7, len(i)]} for i in ids]
    return op, ids, embs, docs, metas


def apply(state, n):
    """The model: state is a dict id -> (embedding, document, metadata) in insertion order."""
    op, ids, embs, docs, metas = batch(n)
    for k, i in enumerate(ids):
        if op == "delete":
            state.pop(i, None)
        elif op == "add":
            if i not in state:
                state[i] = (embs[k], docs[k], metas[k])
        else:  # upsert: every field is given and every metadata key is set, so = replace
            state[i] = (embs[k], docs[k], metas[k])
    return state


def _open(module, path):
    db = importlib.import_module(module)
    if module == "gleandb":
        # tiny memtable: kills land in flushes, index builds, compactions and publishes too
        settings = db.Settings(memtable_max_rows=300, index_min_rows=200, compaction_min_segments=2)
        client = db.PersistentClient(path=path, settings=settings)
    else:
        client = db.PersistentClient(path=path)
    col = client.get_or_create_collection(COLLECTION, embedding_function=None)
    return client, col


def write(module, path, start):
    _, col = _open(module, path)
    out = sys.stdout
    out.write("READY\n")
    out.flush()
    n = start
    while True:
        op, ids, embs, docs, metas = batch(n)
        out.write(f"BEGIN {n}\n")
        out.flush()
        if op == "delete":
            col.delete(ids=ids)
        else:
            getattr(col, op)(ids=ids, embeddings=embs, documents=docs, metadatas=metas)
        out.write(f"ACK {n}\n")
        out.flush()
        n += 1


def dump(module, path):
    client, col = _open(module, path)
    res = col.get(include=["embeddings", "documents", "metadatas"])
    embs = res["embeddings"]
    out = {
        "ids": list(res["ids"]),
        "embeddings": [[float(x) for x in e] for e in (embs if embs is not None else [])],
        "documents": list(res["documents"]),
        "metadatas": [dict(m) if m is not None else None for m in res["metadatas"]],
        "count": col.count(),
    }
    close = getattr(client, "close", None)
    if close is not None:
        close()
    print(json.dumps(out))


if __name__ == "__main__":
    cmd, module, path = sys.argv[1:4]
    if cmd == "write":
        write(module, path, int(sys.argv[4]))
    elif cmd == "dump":
        dump(module, path)
    else:
        raise SystemExit(f"unknown command {cmd}")


def apply_docs(state, n):
    """``apply`` keeping only documents (the fork crash test compares ids and documents)."""
    op, ids, embs, docs, metas = batch(n)
    for k, i in enumerate(ids):
        if op == "delete":
            state.pop(i, None)
        elif op == "add":
            if i not in state:
                state[i] = docs[k]
        else:
            state[i] = docs[k]
    return state
