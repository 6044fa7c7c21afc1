"""Helper process for test_fork_crash.py (not a test).

    python crash_forker.py run PATH START   # apply op START, START+1, ... until killed
    python crash_forker.py dump PATH        # print every collection (ids, documents) as JSON

Op n (a pure function of n, see ``op``) is a write to the source, a write to the newest
fork, a fork of the source or of the newest fork, a vacuum, or the deletion of the oldest
fork. ``run`` prints ``BEGIN n`` before and ``ACK n`` after each op, flushed.
``simulate(k)`` is the model: every collection after ops [0, k).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crash_writer  # noqa: E402

SOURCE = "source"
MAX_FORKS = 4


def op(n):
    r = n % 10
    if r in (3, 7):
        return ("fork", "fork-of-fork" if r == 7 else "fork-of-source")
    if r == 5:
        return ("vacuum", (1, 0) if (n // 10) % 2 else None)
    if r == 9:
        return ("drop",)
    if r == 8:
        return ("write-fork",)
    return ("write",)


def simulate(k):
    """{name: [(id, document)]} after ops [0, k), plus the list of live forks (oldest first)."""
    cols = {SOURCE: {}}
    forks = []
    for n in range(k):
        o = op(n)
        if o[0] == "write":
            crash_writer.apply_docs(cols[SOURCE], n)
        elif o[0] == "write-fork" and forks:
            crash_writer.apply_docs(cols[forks[-1]], n)
        elif o[0] == "fork":
            parent = forks[-1] if (o[1] == "fork-of-fork" and forks) else SOURCE
            name = f"fork-{n}"
            cols[name] = dict(cols[parent])
            forks.append(name)
        elif o[0] == "drop" and len(forks) > MAX_FORKS - 2:
            del cols[forks.pop(0)]
    return cols, forks


def _client(path):
    import gleandb

    settings = gleandb.Settings(
        memtable_max_rows=300,
        index_min_rows=200,
        compaction_min_segments=2,
        version_retention_count=2,
        version_retention_seconds=0,
    )
    return gleandb.PersistentClient(path=path, settings=settings)


def run(path, start):
    client = _client(path)
    src = client.get_or_create_collection(SOURCE, embedding_function=None)
    _cols, forks = simulate(start)
    out = sys.stdout
    out.write("READY\n")
    out.flush()
    n = start
    while True:
        o = op(n)
        out.write(f"BEGIN {n}\n")
        out.flush()
        if o[0] == "write" or (o[0] == "write-fork" and forks):
            col = src if o[0] == "write" else client.get_collection(forks[-1], embedding_function=None)
            kind, ids, embs, docs, metas = crash_writer.batch(n)
            if kind == "delete":
                col.delete(ids=ids)
            else:
                getattr(col, kind)(ids=ids, embeddings=embs, documents=docs, metadatas=metas)
        elif o[0] == "fork":
            parent = forks[-1] if (o[1] == "fork-of-fork" and forks) else SOURCE
            client.get_collection(parent, embedding_function=None).fork(f"fork-{n}")
            forks.append(f"fork-{n}")
        elif o[0] == "vacuum":
            count, seconds = o[1] or (None, None)
            client.vacuum(retention_count=count, retention_seconds=seconds)
        elif o[0] == "drop" and len(forks) > MAX_FORKS - 2:
            client.delete_collection(forks.pop(0))
        out.write(f"ACK {n}\n")
        out.flush()
        n += 1


def dump(path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fork_checks import missing_referenced_files

    client = _client(path)
    out = {}
    for col in client.list_collections():
        res = client.get_collection(col.name, embedding_function=None).get(include=["documents"])
        out[col.name] = [[i, d] for i, d in zip(res["ids"], res["documents"])]
    client.close()
    print(json.dumps({"collections": out, "missing": missing_referenced_files(path)}))


if __name__ == "__main__":
    cmd, path = sys.argv[1:3]
    if cmd == "run":
        run(path, int(sys.argv[3]))
    else:
        dump(path)
