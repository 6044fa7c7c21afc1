"""Helper process for test_fork_handover_crash.py (not a test).

    python crash_handover.py crash PATH POINT KEEP   # build a fork with an inline tail, then die at POINT
    python crash_handover.py dump PATH KEEP          # print what the reopened store holds, as JSON
    python crash_handover.py vacuum PATH KEEP        # reopen and vacuum (the hand-over, when still due)

``crash``: a source with 2 flushed rows and 2 unflushed ones is forked (the 2 unflushed rows
ride in the fork's catalog record), the fork gets one write of its own, then ``vacuum``
hands the fork over from the catalog's copy of version 1 to its own files, and the process
exits (``os._exit``, no cleanup, like a kill) right after the step named POINT is durable:

- ``tail-wal``: the inline tail's own WAL file is written and synced;
- ``first-manifest``: version 1's manifest file is written;
- ``own-manifest``: the fork's first manifest of its own is written (the catalog still
  holds its copies).

KEEP is ``version_retention_count`` (2: version 1 is kept beside the new one, so the tail
and version 1 become files; 1: they are not needed).
"""

import json
import os
import sys

import numpy as np

import gleandb
from gleandb.engine import forks
from gleandb.storage.local import LocalStorage

CRASH_RC = 77
SOURCE, FORK = "source", "fork-1"


def client(path, keep):
    settings = gleandb.Settings(memtable_max_rows=1000, index_min_rows=10_000,
                                version_retention_count=keep, version_retention_seconds=0)
    return gleandb.PersistentClient(path=path, settings=settings)


def _rows(col, ids):
    emb = np.array([[float(len(i)), float(sum(map(ord, i)) % 7)] for i in ids], dtype=np.float32)
    col.add(ids=ids, embeddings=emb, documents=[f"doc {i}" for i in ids])


def _die_after(point, prefix):
    """Patch the storage so the process exits right after ``point`` is durable under ``prefix``."""
    if point in ("first-manifest", "own-manifest"):
        want = f"{prefix}manifests/{1 if point == 'first-manifest' else 2:020d}.json"
        real = LocalStorage.put_if_absent

        def put_if_absent(self, key, data):
            ok = real(self, key, data)
            if key == want:
                os._exit(CRASH_RC)
            return ok

        LocalStorage.put_if_absent = put_if_absent
    elif point == "tail-wal":
        want = f"{prefix}wal/{1:020d}-"
        real = LocalStorage.open_log

        def open_log(self, key):
            w = real(self, key)
            if key.startswith(want):
                real_sync = w.sync

                def sync():
                    real_sync()
                    os._exit(CRASH_RC)

                w.sync = sync
            return w

        LocalStorage.open_log = open_log
    else:
        raise SystemExit(f"unknown crash point {point!r}")


def crash(path, point, keep):
    forks.INLINE_TAIL_BYTES = 64 << 10  # whatever the default, this is the path under test
    c = client(path, keep)
    src = c.create_collection(SOURCE, embedding_function=None)
    _rows(src, ["a", "b"])
    c.vacuum()  # flushed: a segment the fork will share
    _rows(src, ["t1", "t2"])  # unflushed: the fork's inline tail
    fork = src.fork(FORK)
    assert not os.path.exists(os.path.join(path, "collections", str(fork.id), "wal")), "the tail was not inline"
    _rows(fork, ["own"])  # WAL record 2 of the fork, in a WAL file of its own
    _die_after(point, f"collections/{str(fork.id)}/")
    c.vacuum()
    print("the crash point was never reached", flush=True)
    sys.exit(1)


def dump(path, keep):
    c = client(path, keep)
    out = {"collections": {}}
    for name in (SOURCE, FORK):
        col = c.get_collection(name, embedding_function=None)
        res = col.get(include=["documents"])
        out["collections"][name] = sorted(zip(res["ids"], res["documents"]))
    fork = c.get_collection(FORK, embedding_function=None)
    out["versions"] = [v["version"] for v in fork.versions()]
    if 1 in out["versions"]:  # what version 1 of the fork holds, through a fork of it
        old = fork.fork("fork-of-v1", version=1)
        out["version1"] = sorted(old.get()["ids"])
        c.delete_collection("fork-of-v1")
    out["catalog_copy"] = c.engine.catalog.base_manifest(str(fork.id)) is not None or \
        c.engine.catalog.base_tail(str(fork.id)) is not None
    c.close()
    print(json.dumps(out))


if __name__ == "__main__":
    cmd, path = sys.argv[1:3]
    if cmd == "crash":
        crash(path, sys.argv[3], int(sys.argv[4]))
    elif cmd == "vacuum":
        client(path, int(sys.argv[3])).vacuum()
    else:
        dump(path, int(sys.argv[3]))
