"""Forks, versions, retention and vacuum (issue 5), embedded."""

import os
import subprocess
import sys

import numpy as np
import pytest

import gleandb
from gleandb.api.errors import InternalError, InvalidArgumentError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fork_checks import dir_bytes, missing_referenced_files, pool_files  # noqa: E402


def small(**kw):
    # history on (the defaults keep only the current version): versions stay forkable
    base = dict(memtable_max_rows=50, index_min_rows=40, compaction_min_segments=3,
                version_retention_count=4, version_retention_seconds=300)
    base.update(kw)
    return gleandb.Settings(**base)


def vecs(n, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def snapshot(col):
    r = col.get(include=["embeddings", "documents", "metadatas"])
    return list(r["ids"]), list(r["documents"]), list(r["metadatas"]), np.asarray(r["embeddings"]).tolist()


@pytest.fixture
def client(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small())
    yield c
    c.close()


def fill(col, n=230, start=0, seed=0):
    X = vecs(n, seed=seed)
    col.add(
        ids=[f"r{i}" for i in range(start, start + n)],
        embeddings=X,
        documents=[f"doc {i}" for i in range(start, start + n)],
        metadatas=[{"i": i, "even": i % 2 == 0} for i in range(start, start + n)],
    )
    return X


def test_fork_copies_records_configuration_metadata_and_embedding_function(client, tmp_path):
    from gleandb.embeddings.hashing import HashingEmbeddingFunction

    ef = HashingEmbeddingFunction()
    src = client.create_collection("source", metadata={"team": "a", "hnsw:space": "cosine"}, embedding_function=ef)
    fill(src)
    client.flush()
    src.add(ids=["tail"], embeddings=vecs(1, seed=9), documents=["in the memtable"])
    src.delete(ids=["r0", "r1"])  # deletes of flushed rows, not yet in any manifest
    before = pool_files(str(tmp_path))
    fork = src.fork("fork-one")
    assert pool_files(str(tmp_path)) == before  # no segment or mask data copied
    assert fork.name == "fork-one" and fork.id != src.id
    assert fork.metadata == src.metadata
    assert fork.configuration_json == src.configuration_json
    assert fork.embedding_function is src.embedding_function
    assert snapshot(fork) == snapshot(src)
    q = vecs(1, seed=3)
    a = src.query(query_embeddings=q, n_results=5)
    b = fork.query(query_embeddings=q, n_results=5)
    assert a["ids"] == b["ids"] and np.allclose(a["distances"], b["distances"])
    assert client.get_collection("fork-one").count() == src.count() == 229


def test_fork_isolation_both_ways_across_flush_compaction_and_reopen(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small())
    src = c.create_collection("source")
    fill(src)
    c.flush()
    base = snapshot(src)
    fork = src.fork("fork-one")
    # shared rows: update, delete, upsert on each side
    fork.update(ids=["r5"], documents=["fork edit"], embeddings=vecs(1, seed=5))
    fork.delete(ids=["r6", "r7"])
    src.update(ids=["r8"], metadatas=[{"src": True}])
    src.delete(ids=["r9"])
    fork.add(ids=["only-fork"], embeddings=vecs(1, seed=11))
    src.add(ids=["only-src"], embeddings=vecs(1, seed=12))
    fill(fork, n=120, start=1000, seed=2)  # enough to flush and compact in the fork
    c.flush()
    c.compact()
    want_src, want_fork = snapshot(src), snapshot(fork)
    assert "only-fork" not in want_src[0] and "only-src" not in want_fork[0]
    assert "r9" in want_fork[0] and "r6" in want_src[0] and "r9" not in want_src[0] and "r6" not in want_fork[0]
    assert src.get(ids=["r5"])["documents"] == ["doc 5"]
    assert fork.get(ids=["r5"])["documents"] == ["fork edit"]
    assert fork.get(ids=["r8"])["metadatas"] == [{"i": 8, "even": True}]
    assert len(want_src[0]) == len(base[0]) and len(want_fork[0]) == len(base[0]) - 2 + 1 + 120
    assert missing_referenced_files(str(tmp_path)) == []
    c.close()
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small())
    assert snapshot(c.get_collection("source")) == want_src
    assert snapshot(c.get_collection("fork-one")) == want_fork
    c.close()


def test_fork_name_errors_match_create_collection(client):
    src = client.create_collection("source")
    fill(src, n=10)
    client.create_collection("taken")
    with pytest.raises(InternalError) as fork_err:
        src.fork("taken")
    with pytest.raises(InternalError) as create_err:
        client.create_collection("taken")
    assert str(fork_err.value) == str(create_err.value) == "Collection [taken] already exists"
    with pytest.raises(InvalidArgumentError, match="new_name"):
        src.fork("x")
    with pytest.raises(InvalidArgumentError, match="version"):
        src.fork("fine-name", version="1")
    assert sorted(c.name for c in client.list_collections()) == ["source", "taken"]


def test_forks_of_forks_survive_deleting_their_parents(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small())
    src = c.create_collection("gen0")
    fill(src)
    c.flush()
    cols = [src]
    for g in range(1, 6):
        parent = cols[-1]
        parent.delete(ids=[f"r{g}"])
        parent.add(ids=[f"g{g}"], embeddings=vecs(1, seed=g))
        cols.append(parent.fork(f"gen{g}"))
    want = snapshot(cols[-1])
    assert cols[-1].count() == 230 - 5 + 5
    for g in range(5):  # delete every ancestor, oldest first
        c.delete_collection(f"gen{g}")
        assert missing_referenced_files(str(tmp_path)) == []
        assert snapshot(cols[-1]) == want
    c.vacuum(retention_count=1, retention_seconds=0)
    assert missing_referenced_files(str(tmp_path)) == []
    c.close()
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small())
    assert snapshot(c.get_collection("gen5")) == want
    c.delete_collection("gen5")
    c.vacuum()
    assert pool_files(str(tmp_path)) == set()  # the last owner gone: every shared file goes
    c.close()


def test_versions_and_fork_of_a_past_version(client):
    col = client.create_collection("versioned")
    fill(col, n=30)
    client.flush()
    col.delete(ids=[f"r{i}" for i in range(10)])
    client.flush()
    col.add(ids=["late"], embeddings=vecs(1, seed=4))
    client.flush()
    vs = col.versions()
    assert [v["version"] for v in vs] == sorted(v["version"] for v in vs)
    assert vs[-1]["records"] == col.count() == 21
    assert all(v["created_at"] > 0 for v in vs)
    first = next(v for v in vs if v["records"] == 30)
    old = col.fork("time-travel", version=first["version"])
    assert old.count() == 30 and "r0" in old.get()["ids"] and "late" not in old.get()["ids"]
    assert old.versions()[0]["forked_from"] == {"collection": str(col.id), "version": first["version"]}
    with pytest.raises(InvalidArgumentError, match="not retained"):
        col.fork("too-old", version=10_000)
    with pytest.raises(Exception):
        client.get_collection("too-old")


def test_version_with_a_wal_tail_is_exact(tmp_path):
    """A manifest published while writes sit in the memtable: its masks hide old rows whose
    new versions are in the WAL only; forking it must bring those back."""
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small(memtable_max_rows=1000, compaction_min_segments=2))
    col = c.create_collection("tail")
    fill(col, n=100)
    c.flush()
    fill(col, n=100, start=100, seed=1)
    col.upsert(ids=["r3"], embeddings=vecs(1, seed=7), documents=["new r3"])  # masks r3 in a segment
    c.flush()  # publishes with the upsert's mask... and the upsert's row in the flushed segment
    col.upsert(ids=["r4"], embeddings=vecs(1, seed=8), documents=["new r4"])
    store = col._store
    store.compact()  # compaction (no flush) publishes while r4's new version is only in the memtable
    store.worker.wait_idle()
    m = store._manifests[-1]
    assert m.seq > m.wal_position  # the version needs its WAL tail
    v = col.versions()[-1]
    f = col.fork("at-version", version=v["version"])
    assert f.get(ids=["r3", "r4"])["documents"] == ["new r3", "new r4"]
    assert f.count() == col.count() == v["records"] == 200
    c.close()


def test_retention_prunes_versions_and_their_files(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(
        str(tmp_path), settings=small(version_retention_count=2, version_retention_seconds=0)
    )
    col = c.create_collection("pruned")
    for k in range(6):
        fill(col, n=60, start=100 * k, seed=k)
        c.flush()
    assert len(col.versions()) == 2
    assert missing_referenced_files(str(tmp_path)) == []
    names = {n for v in col.versions() for n in v["segment_names"]}
    on_disk = {p.split("/")[1] for p in pool_files(str(tmp_path)) if p.startswith("segments/")}
    assert on_disk == names
    c.close()


def test_vacuum_after_deleting_ninety_percent_reclaims_disk(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small(
        memtable_max_rows=500, index_min_rows=100, version_retention_count=4, version_retention_seconds=300))
    col = c.create_collection("big")
    n = 3000
    X = vecs(n, d=32)
    col.add(ids=[str(i) for i in range(n)], embeddings=X, documents=["x" * 200] * n)
    c.flush()
    full = dir_bytes(str(tmp_path))
    col.delete(ids=[str(i) for i in range(n) if i % 10])
    kept = c.vacuum()  # the configured retention keeps recent versions, so their files stay
    assert kept["bytes_after"] > 0.5 * full
    assert col.fork("still-there", version=col.versions()[0]["version"]).count() == n
    c.delete_collection("still-there")
    report = c.vacuum(retention_count=1, retention_seconds=0)
    after = dir_bytes(str(tmp_path))
    assert after < 0.2 * full, (full, after, report)
    assert report["bytes_reclaimed"] > 0.7 * full
    assert col.count() == 300 and col.get(ids=["0", "10", "11"])["ids"] == ["0", "10"]
    assert col.query(query_embeddings=X[10:11], n_results=1)["ids"] == [["10"]]
    c.close()


def test_vacuum_validates_its_arguments(client):
    with pytest.raises(InvalidArgumentError, match="retention_count"):
        client.vacuum(retention_count=0)
    with pytest.raises(InvalidArgumentError, match="retention_seconds"):
        client.vacuum(retention_seconds=-1)


def test_fork_count_counts_live_direct_forks(client):
    src = client.create_collection("source")
    fill(src, n=5)
    a = src.fork("fork-a")
    src.fork("fork-b")
    a.fork("fork-a-a")
    assert src.fork_count() == 2 and a.fork_count() == 1
    client.delete_collection("fork-b")
    assert src.fork_count() == 1


def test_ephemeral_fork():
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.EphemeralClient(settings=small())
    src = c.create_collection("mem-source")
    fill(src)
    src.delete(ids=["r1"])
    f = src.fork("mem-fork")
    assert snapshot(f) == snapshot(src)
    f.delete(ids=["r2"])
    src.update(ids=["r3"], documents=["changed"], embeddings=vecs(1))
    assert src.count() == 229 and f.count() == 228
    assert f.get(ids=["r3"])["documents"] == ["doc 3"]
    with pytest.raises(InvalidArgumentError, match="PersistentClient"):
        src.fork("mem-old", version=1)
    c.clear_system_cache()


def test_orphans_are_swept_but_shared_files_are_kept(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small())
    src = c.create_collection("source")
    fill(src)
    c.flush()
    src.fork("fork-one")
    c.delete_collection("source")
    c.close()
    orphan = tmp_path / "segments" / "s-orphan"
    orphan.mkdir()
    (orphan / "records.arrow").write_bytes(b"junk")
    (tmp_path / "masks" ).mkdir(exist_ok=True)
    (tmp_path / "masks" / "x-orphan.npy").write_bytes(b"junk")
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small())
    assert c.get_collection("fork-one").count() == 230
    assert not orphan.exists() and not (tmp_path / "masks" / "x-orphan.npy").exists()
    assert missing_referenced_files(str(tmp_path)) == []
    c.close()


def test_glean_vacuum_command(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small())
    col = c.create_collection("cli")
    fill(col)
    c.flush()
    col.delete(ids=[f"r{i}" for i in range(200)])
    c.close()
    gleandb.ClientAPI.clear_system_cache()
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-m", "gleandb.cli.main", "vacuum", str(tmp_path), "--keep-versions", "1", "--keep-seconds", "0"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    import json

    report = json.loads(out.stdout)
    assert report["bytes_reclaimed"] > 0 and report["collections"] == 1
    c = gleandb.PersistentClient(str(tmp_path), settings=small())
    assert c.get_collection("cli").count() == 30
    c.close()
