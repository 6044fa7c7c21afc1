"""Write resolution (engine/writes.py) locates each write's ids once: the positions its build
found travel on the batch (``WalBatch.located``) and ``_apply`` reuses them only while the
head is the version they were found in (engine/store.py ``_where``)."""

import numpy as np
import pytest

import gleandb
from gleandb.engine import writes
from gleandb.engine.store import CollectionStore
from gleandb.engine.wal import WalBatch
from gleandb.index.filters import compile_filter


def _emb(k: int) -> np.ndarray:
    return np.array([[float(k), 1.0, 0.0, -1.0]], dtype=np.float32)


@pytest.fixture
def col(tmp_path):
    client = gleandb.PersistentClient(path=str(tmp_path / "s"))
    c = client.create_collection("col", embedding_function=None)
    c.add(ids=["a", "b", "c"], embeddings=np.vstack([_emb(0), _emb(1), _emb(2)]), documents=["a0", "b0", "c0"],
          metadatas=[{"k": 0}, {"k": 1}, {"k": 2}])
    c.flush()  # a persisted segment under the memtable
    yield c
    client.close()


@pytest.fixture
def locates(monkeypatch):
    """Counts ``CollectionStore.locate`` calls (every id lookup of a write goes through it)."""
    calls = []
    real = CollectionStore.locate

    def counted(views, query):
        calls.append(list(query.ids))
        return real(views, query)

    monkeypatch.setattr(CollectionStore, "locate", staticmethod(counted))
    return calls


def _docs(c) -> dict:
    got = c.get(include=["documents"])
    return dict(zip(got["ids"], got["documents"]))


@pytest.mark.parametrize("write", [
    lambda c: c.add(ids=["n1", "n2"], embeddings=np.vstack([_emb(5), _emb(6)])),
    lambda c: c.add(ids=["a", "n1"], embeddings=np.vstack([_emb(5), _emb(6)])),
    lambda c: c.update(ids=["a", "zz"], metadatas=[{"k": 9}, {"k": 9}]),
    lambda c: c.upsert(ids=["a", "n1"], embeddings=np.vstack([_emb(5), _emb(6)]), documents=["a1", "n1"]),
    lambda c: c.delete(ids=["b", "zz"]),
])
def test_each_write_looks_its_ids_up_once(col, locates, write):
    write(col)
    assert len(locates) == 1, locates


def test_a_filtered_delete_uses_the_rows_it_matched(col, locates):
    assert col.delete(where={"k": {"$gte": 1}}) == {"deleted": 2}
    assert locates == []  # the filter's own rows, no id lookup at all
    assert _docs(col) == {"a": "a0"}


def test_positions_found_before_the_head_changed_are_not_reused(col):
    st = col._store
    stale = st.resolve(["a"])
    col.upsert(ids=["a"], embeddings=_emb(9), documents=["a1"])  # a's live row moves to the memtable
    st.commit(lambda s: WalBatch(seq=0, delete_ids=["a"], located=stale))
    # reusing the stale position would mask the old (already dead) row and leave a1 live
    assert _docs(col) == {"b": "b0", "c": "c0"}
    assert col.count() == 2


def test_positions_found_before_a_flush_and_compaction_are_not_reused(col):
    st = col._store
    col.upsert(ids=["b"], embeddings=_emb(7), documents=["b1"])  # b lives in the memtable
    stale = st.resolve(["b"])
    col.compact()  # flushed and merged into one segment: other views, other rows
    assert len(st.snapshot()) == 1
    build = writes.merge_batch(["b"], None, documents=["b2"])

    def with_stale(s):
        batch = build(s)
        batch.located = stale
        return batch

    st.commit(with_stale)
    assert _docs(col) == {"a": "a0", "b": "b2", "c": "c0"}
    assert col.count() == 3


def test_ids_written_but_never_asked_about_are_looked_up(col, locates):
    st = col._store
    # resolved "a" only, but writes "b" (which exists) and "new"
    st.commit(lambda s: WalBatch(
        seq=0, put_ids=["b", "new"], put_rids=[s.next_rid, s.next_rid + 1],
        put_embeddings=np.vstack([_emb(3), _emb(4)]), put_documents=["b1", "new"],
        put_metadatas=[None, None], put_uris=[None, None], located=s.resolve(["a"])))
    assert locates[-1] == ["b", "new"]  # only the ids the resolution did not cover
    assert _docs(col) == {"a": "a0", "b": "b1", "c": "c0", "new": "new"}
    assert col.count() == 4


def test_the_batch_drops_its_positions_once_applied(col):
    batch = col._store.commit(writes.merge_batch(["a"], None, documents=["a1"]))
    assert batch.located is None  # it would otherwise pin an old version's views


def test_writes_replay_the_same_without_positions(tmp_path):
    path = str(tmp_path / "s")
    client = gleandb.PersistentClient(path=path)
    c = client.create_collection("col", embedding_function=None)
    c.add(ids=["a", "b", "c"], embeddings=np.vstack([_emb(0), _emb(1), _emb(2)]), documents=["a0", "b0", "c0"])
    c.update(ids=["a"], embeddings=_emb(5), documents=["a1"])
    c.delete(where_document={"$contains": "b0"})
    c.upsert(ids=["b", "d"], embeddings=np.vstack([_emb(3), _emb(4)]), documents=["b1", "d0"])
    c.delete(ids=["c"])
    before = _docs(c)
    assert before == {"a": "a1", "b": "b1", "d": "d0"}
    client.close()
    gleandb.ClientAPI.clear_system_cache()
    again = gleandb.PersistentClient(path=path)
    assert _docs(again.get_collection("col")) == before
    again.close()


def test_a_fork_resolves_against_its_own_head(col):
    fork = col.fork("forked")
    fork.delete(ids=["a"])
    fork.add(ids=["a"], embeddings=_emb(8), documents=["a-fork"])
    fork.update(ids=["b"], embeddings=_emb(6), documents=["b-fork"])
    assert _docs(fork) == {"a": "a-fork", "b": "b-fork", "c": "c0"}
    assert _docs(col) == {"a": "a0", "b": "b0", "c": "c0"}


def test_delete_counts_follow_chromadb(col):
    assert writes.delete(col._store, ["a", "a", "zz"], None, None) == 3  # the ids sent
    flt = compile_filter({"k": {"$gte": 0}}, None)
    assert writes.delete(col._store, None, flt, 1) == 1  # the rows matched, at most limit
    assert _docs(col) == {"c": "c0"}


def test_a_group_commit_resolves_each_member_against_the_earlier_ones(col, locates):
    """Members writing one id in one group: each is located once, after the members before
    it are applied, so each masks the row the previous member wrote."""
    import threading
    import time

    st = col._store
    syncs = st.stats["wal_syncs"]
    errors: list = []
    calls = [
        lambda: col.upsert(ids=["a"], embeddings=_emb(1), documents=["a1"]),
        lambda: col.update(ids=["a"], embeddings=_emb(2), documents=["a2"]),
        lambda: col.delete(ids=["b"]),
        lambda: col.upsert(ids=["a", "b"], embeddings=np.vstack([_emb(3), _emb(4)]), documents=["a3", "b1"]),
    ]

    def run(fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)

    threads = []
    with st._lock:  # the first caller leads but waits for the lock: the others queue behind it
        for i, fn in enumerate(calls, start=1):
            threads.append(threading.Thread(target=run, args=(fn,)))
            threads[-1].start()
            deadline = time.monotonic() + 60
            while len(st._queue) < i:  # queued in list order
                assert time.monotonic() < deadline and not errors, errors
                time.sleep(0.002)
    for t in threads:
        t.join(60)
    assert not errors
    assert st.stats["wal_syncs"] == syncs + 1  # one group
    assert len(locates) == len(calls)  # one lookup per member, none when applying
    assert _docs(col) == {"a": "a3", "b": "b1", "c": "c0"}
    assert col.count() == 3
