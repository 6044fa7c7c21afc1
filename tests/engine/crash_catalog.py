"""Helper process for test_catalog_crash.py (not a test).

    python crash_catalog.py run PATH START   # apply op START, START+1, ... until killed
    python crash_catalog.py dump PATH        # every collection: [metadata, count] as JSON

Op n (a pure function of n) creates a collection, forks one, renames-and-modifies one or
deletes the oldest; the catalog checkpoints every few edits (MIN_ROTATE_BYTES is tiny
here), so kills land in appends and in rotations. ``simulate(k)`` is the model.
"""

import json
import os
import sys

BASE = "base"
BASE_ROWS = 40
MAX_LIVE = 6


def op(n):
    return ("create", "fork", "fork", "modify", "drop")[n % 5]


def simulate(k):
    """{name: [metadata, count]} after ops [0, k), and the non-base names, oldest first."""
    cols = {BASE: [{"base": True}, BASE_ROWS]}
    order = []
    for n in range(k):
        o = op(n)
        if o == "create":
            cols[f"c-{n}"] = [{"n": n}, 0]
            order.append(f"c-{n}")
        elif o == "fork":
            parent = order[-1] if (n % 2 and order) else BASE
            cols[f"f-{n}"] = [dict(cols[parent][0]), cols[parent][1]]
            order.append(f"f-{n}")
        elif o == "modify" and order:
            old = order[-1]
            cols[f"m-{n}"] = [{"m": n}, cols.pop(old)[1]]
            order[-1] = f"m-{n}"
        elif o == "drop" and len(order) > MAX_LIVE:
            del cols[order.pop(0)]
    return cols, order


def _client(path):
    import gleandb
    from gleandb.catalog import catalog

    catalog.MIN_ROTATE_BYTES = 600  # checkpoint (rotate the log) every few edits
    return gleandb.PersistentClient(path=path, settings=gleandb.Settings(memtable_max_rows=1000))


def run(path, start):
    import numpy as np

    client = _client(path)
    base = client.get_or_create_collection(BASE, embedding_function=None, metadata={"base": True})
    if base.count() == 0:
        X = np.random.default_rng(0).standard_normal((BASE_ROWS, 4)).astype(np.float32)
        base.add(ids=[f"r{i}" for i in range(BASE_ROWS)], embeddings=X)
        client.engine.flush(wait=True)
    _cols, order = simulate(start)
    out = sys.stdout
    out.write("READY\n")
    out.flush()
    n = start
    while True:
        o = op(n)
        out.write(f"BEGIN {n}\n")
        out.flush()
        if o == "create":
            client.create_collection(f"c-{n}", embedding_function=None, metadata={"n": n})
            order.append(f"c-{n}")
        elif o == "fork":
            parent = order[-1] if (n % 2 and order) else BASE
            client.get_collection(parent, embedding_function=None).fork(f"f-{n}")
            order.append(f"f-{n}")
        elif o == "modify" and order:
            client.get_collection(order[-1], embedding_function=None).modify(name=f"m-{n}", metadata={"m": n})
            order[-1] = f"m-{n}"
        elif o == "drop" and len(order) > MAX_LIVE:
            client.delete_collection(order.pop(0))
        out.write(f"ACK {n}\n")
        out.flush()
        n += 1


def dump(path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fork_checks import missing_referenced_files

    client = _client(path)
    out = {}
    for col in client.list_collections():
        c = client.get_collection(col.name, embedding_function=None)
        out[col.name] = [c.metadata, c.count()]
    client.close()
    print(json.dumps({"collections": out, "missing": missing_referenced_files(path),
                      "catalog_files": sorted(os.listdir(os.path.join(path, "catalog")))}))


if __name__ == "__main__":
    cmd, path = sys.argv[1:3]
    if cmd == "run":
        run(path, int(sys.argv[3]))
    else:
        dump(path)
