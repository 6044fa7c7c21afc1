"""Forks that share (issue 13): compaction in a collection never rewrites a segment another
collection names, unshared deleted rows are still reclaimed, and a fork costs few fsyncs."""

import os
import sys

import numpy as np
import pytest

import gleandb
from gleandb.engine import forks

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fork_checks import missing_referenced_files, pool_files  # noqa: E402


def vecs(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)


def fill(col, start, n, seed=0):
    col.add(ids=[f"r{i}" for i in range(start, start + n)], embeddings=vecs(n, seed),
            documents=[f"doc {i}" for i in range(start, start + n)])


def seg_dirs(path):
    return {f.split("/")[1] for f in pool_files(path) if f.startswith("segments/")}


@pytest.fixture
def client(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=gleandb.Settings(
        memtable_max_rows=1000, index_min_rows=10_000, compaction_min_segments=3))
    yield c
    c.close()


def names(col):
    return [v.seg.name for v in col._store.snapshot()]


def test_compaction_in_a_fork_keeps_shared_segments_shared_and_reclaims_its_own(client, tmp_path):
    path = str(tmp_path)
    src = client.create_collection("src", embedding_function=None)
    fill(src, 0, 300)
    src._store.flush()
    client.engine.worker.wait_idle()
    fork = src.fork("fork")
    shared = set(names(fork))
    assert shared == set(names(src)) and len(shared) == 1
    before = seg_dirs(path)
    # 1. 50 % of the shared segment deleted in the fork: masked, never rewritten
    fork.delete(ids=[f"r{i}" for i in range(150)])
    # 2. several small segments of the fork's own: merged by size tier, never with the shared one
    for k in range(4):
        fill(fork, 1000 + 50 * k, 50, seed=k + 1)
        fork._store.flush()
        client.engine.worker.wait_idle()
    client.vacuum()
    fork._store.compact()
    client.engine.worker.wait_idle()
    client.vacuum()
    assert shared <= set(names(fork)), "the fork rewrote a segment it shares with its source"
    own = set(names(fork)) - shared
    assert len(own) == 1  # its own small segments were merged
    # no new segment holds a copy of the source's rows
    for v in fork._store.snapshot():
        if v.seg.name in own:
            assert not any(i.startswith("r") and int(i[1:]) < 1000 for i in v.seg.ids_list())
    assert fork.count() == 150 + 200 and src.count() == 300
    assert sorted(fork.get()["ids"]) == sorted([f"r{i}" for i in range(150, 300)] +
                                               [f"r{i}" for i in range(1000, 1200)])
    # 3. unshared deleted rows are still reclaimed: delete most of the fork's own rows
    fork.delete(ids=[f"r{i}" for i in range(1000, 1180)])
    own_before = set(names(fork)) - shared
    client.vacuum()
    own_after = set(names(fork)) - shared
    assert own_after and own_after != own_before  # rewritten without its deleted rows
    assert sum(v.seg.n for v in fork._store.snapshot() if v.seg.name in own_after) == 20
    assert shared <= seg_dirs(path)
    assert not (own_before - own_after) & seg_dirs(path), "the rewritten segment's files were not deleted"
    assert before <= seg_dirs(path)
    assert missing_referenced_files(path) == []


def test_a_segment_no_longer_shared_is_compacted_by_its_last_owner(client, tmp_path):
    src = client.create_collection("src", embedding_function=None)
    fill(src, 0, 300)
    src._store.flush()
    client.engine.worker.wait_idle()
    fork = src.fork("fork")
    shared = names(fork)[0]
    fork.delete(ids=[f"r{i}" for i in range(200)])
    client.vacuum()
    assert shared in names(fork)  # still masked: the source needs it
    client.delete_collection("src")
    client.vacuum()
    assert shared not in names(fork)  # now the fork's alone: rewritten, deleted rows gone
    assert shared not in seg_dirs(str(tmp_path))
    assert sorted(fork.get()["ids"]) == sorted(f"r{i}" for i in range(200, 300))
    assert sum(v.seg.n for v in fork._store.snapshot()) == 100


def test_a_fork_of_a_flushed_collection_is_at_most_two_fsyncs(client, monkeypatch, tmp_path):
    src = client.create_collection("src", embedding_function=None)
    fill(src, 0, 100)
    src._store.flush()
    client.engine.worker.wait_idle()
    for i in range(20):
        client.create_collection(f"other-{i}", embedding_function=None)
    client.vacuum()
    calls = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append("fdatasync"), real_fdatasync(fd))[1])
    fork = src.fork("fork")
    monkeypatch.undo()
    assert 1 <= len(calls) <= 2, calls
    assert fork.count() == 100
    fork.add(ids=["new"], embeddings=vecs(1), documents=["fork only"])
    client.close()
    # it survives a reopen: its first manifest is in the catalog record
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path))
    f = c.get_collection("fork", embedding_function=None)
    assert f.count() == 101 and c.get_collection("src", embedding_function=None).count() == 100
    assert c.engine.catalog.base_manifest(str(f.id)) is not None
    f._store.flush()  # its first own manifest: version 1 becomes a file first
    c.engine.worker.wait_idle()
    assert c.engine.catalog.base_manifest(str(f.id)) is None  # the files took over
    c.close()
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path))
    assert c.get_collection("fork", embedding_function=None).count() == 101
    assert missing_referenced_files(str(tmp_path)) == []
    c.close()


@pytest.mark.parametrize("history", [False, True])
def test_a_fork_with_a_small_unflushed_tail_is_one_fsync_and_keeps_it(tmp_path, monkeypatch, history):
    """The tail rides in the catalog record; it survives reopen before and after the fork's
    first flush, and (history on) version 1 of the fork still holds it afterwards."""
    assert forks.INLINE_TAIL_BYTES >= 64 << 10  # on by default
    gleandb.ClientAPI.clear_system_cache()
    kw = dict(version_retention_count=5, version_retention_seconds=3600) if history else {}
    settings = gleandb.Settings(memtable_max_rows=1000, index_min_rows=10_000, **kw)
    c = gleandb.PersistentClient(str(tmp_path), settings=settings)
    src = c.create_collection("src", embedding_function=None)
    fill(src, 0, 100)
    c.engine.flush(wait=True)
    src.add(ids=["tail-1", "tail-2"], embeddings=vecs(2, 9), documents=["t1", "t2"])
    src.delete(ids=["r0"])
    calls = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append("fdatasync"), real_fdatasync(fd))[1])
    fork = src.fork("fork")
    monkeypatch.undo()
    assert len(calls) == 1, calls
    want = sorted([f"r{i}" for i in range(1, 100)] + ["tail-1", "tail-2"])
    assert sorted(fork.get()["ids"]) == want
    fork.add(ids=["own"], embeddings=vecs(1, 3), documents=["own"])
    src.add(ids=["src-later"], embeddings=vecs(1, 4), documents=["later"])
    c.close()
    for step in ("reopen", "flush", "reopen"):
        gleandb.ClientAPI.clear_system_cache()
        c = gleandb.PersistentClient(str(tmp_path), settings=settings)
        f = c.get_collection("fork", embedding_function=None)
        if step == "flush":
            f._store.flush()
            c.engine.worker.wait_idle()
        assert sorted(f.get()["ids"]) == sorted(want + ["own"]), step
        assert "src-later" not in f.get()["ids"]
        assert sorted(c.get_collection("src", embedding_function=None).get()["ids"]) == sorted(
            want + ["src-later"])
        c.close()
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=settings)
    f = c.get_collection("fork", embedding_function=None)
    assert c.engine.catalog.base_tail(str(f.id)) is None  # the files took over
    versions = [v["version"] for v in f.versions()]
    if history:
        assert versions[0] == 1
        v1 = f.fork("fork-v1", version=1)
        assert sorted(v1.get()["ids"]) == want  # the tail, without later writes
    else:
        assert 1 not in versions
    assert missing_referenced_files(str(tmp_path)) == []
    c.close()
