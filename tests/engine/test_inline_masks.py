"""Small segments' delete masks ride in the manifest; a fork's hand-over drops the catalog's
copies with the next catalog record. Both save a fork-chain commit its extra syncs and
change nothing a reader sees."""

import os

import numpy as np
import pytest

import gleandb
from gleandb.catalog.catalog import read_document
from gleandb.engine import manifest as mf
from gleandb.storage.local import LocalStorage


def _client(path):
    gleandb.ClientAPI.clear_system_cache()
    return gleandb.PersistentClient(path, settings=gleandb.Settings(memtable_max_rows=1000, index_min_rows=10_000))


def _add(col, ids):
    col.add(ids=ids, embeddings=np.arange(len(ids) * 2, dtype=np.float32).reshape(-1, 2), documents=[f"d {i}" for i in ids])


def _mask_files(path):
    d = os.path.join(path, "masks")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def _entries(client, name):
    store = client.get_collection(name, embedding_function=None)._store
    return store._manifests[-1].segments


@pytest.mark.parametrize("inline", [True, False])
def test_a_fork_masking_a_shared_segment_reads_the_same_inline_or_from_a_file(tmp_path, monkeypatch, inline):
    if not inline:
        monkeypatch.setattr(mf, "INLINE_MASK_ROWS", 0)  # every mask a file, as before
    path = str(tmp_path)
    c = _client(path)
    src = c.create_collection("src", embedding_function=None)
    _add(src, [f"r{i}" for i in range(40)])
    c.flush()
    fork = src.fork("fork")
    fork.delete(ids=["r1", "r2", "r30"])
    _add(fork, ["new"])
    c.flush()
    masked = [e for e in _entries(c, "fork") if e.n_deleted]
    assert len(masked) == 1 and masked[0].n_deleted == 3
    assert (masked[0].mask is not None) == inline and (masked[0].deletes is None) == inline
    assert (_mask_files(path) == []) == inline
    grand = fork.fork("grand")  # inherits the mask, inline or not
    want = sorted({f"r{i}" for i in range(40)} - {"r1", "r2", "r30"} | {"new"})
    c.close()
    c = _client(path)
    for name in ("fork", "grand"):
        assert sorted(c.get_collection(name, embedding_function=None).get()["ids"]) == want
    assert c.get_collection("src", embedding_function=None).count() == 40
    got = c.get_collection("grand", embedding_function=None).get(where_document={"$contains": "d r3"})["ids"]
    assert sorted(got) == [i for i in want if "d r3" in f"d {i}"] and "r30" not in got  # r30 is deleted
    c.close()


def test_the_catalog_forgets_a_forks_first_manifest_with_its_next_record(tmp_path):
    path = str(tmp_path)
    c = _client(path)
    src = c.create_collection("src", embedding_function=None)
    _add(src, ["a", "b"])
    c.flush()
    fork = src.fork("fork")
    cid = str(fork.id)
    _add(fork, ["c"])
    c.flush()  # the fork's own manifest file now: the catalog's copy is no longer needed
    assert c.engine.catalog.base_manifest(cid) is None
    on_disk, _n, _k = read_document(LocalStorage(path))
    assert cid in on_disk["manifests"]  # not yet written: no sync of its own
    # a crash now: the next open finds the copy beside the fork's files, which win
    assert sorted(fork.get()["ids"]) == ["a", "b", "c"]
    c.create_collection("other", embedding_function=None)  # the next record carries the drop
    on_disk, _n, _k = read_document(LocalStorage(path))
    assert cid not in on_disk["manifests"] and cid in on_disk["collections"]
    c.close()
    c = _client(path)
    assert sorted(c.get_collection("fork", embedding_function=None).get()["ids"]) == ["a", "b", "c"]
    c.close()
