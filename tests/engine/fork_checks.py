"""Shared checks for the fork tests: every file a retained manifest names exists."""

import os

from gleandb.catalog.catalog import read_document
from gleandb.engine import manifest as mf
from gleandb.engine.segment import PACK_FILE
from gleandb.storage.local import LocalStorage


def missing_referenced_files(path: str) -> list[str]:
    """Segment files and masks named by a retained manifest of a live collection, but absent."""
    storage = LocalStorage(path)
    catalog, _top, _keys = read_document(storage)
    missing = []
    for cid in catalog["collections"]:
        prefix = f"collections/{cid}/"
        for m in mf.load_all(storage, prefix, catalog["manifests"].get(cid)):
            for e in m.segments:
                d = mf.segment_dir(prefix, e)
                packed = not e.index and storage.exists(d + PACK_FILE)  # a small segment: one file
                if not packed and not storage.exists(d + "records.arrow"):
                    missing.append(f"v{m.version} of {cid}: {d}records.arrow")
                vec = d + ("vectors.faiss" if e.index else "vectors.f32")
                if not packed and not storage.exists(vec):
                    missing.append(f"v{m.version} of {cid}: {vec}")
                if e.deletes and not storage.exists(e.deletes):
                    missing.append(f"v{m.version} of {cid}: {e.deletes}")
    return missing


def pool_files(path: str) -> set[str]:
    out = set()
    for sub in ("segments", "masks"):
        for root, _dirs, files in os.walk(os.path.join(path, sub)):
            out.update(os.path.relpath(os.path.join(root, f), path) for f in files)
    return out


def dir_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total
