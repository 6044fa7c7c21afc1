"""The memtable's vectors live in one append-only buffer (engine/arena.py): memtable merges
and the freeze view it instead of copying, what was written reads back unchanged whatever
the mix of writes, and a failed write hands its rows back without touching anyone else's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gleandb
from gleandb.engine.arena import VectorArena
from gleandb.engine.store import FROZEN, MEM

DIM = 8


def test_append_copies_into_read_only_rows():
    a = VectorArena(10, 3)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    v = a.append(x)
    x[0, 0] = 99.0
    assert v[0, 0] == 0.0  # a copy, not the caller's array
    assert not v.flags.writeable
    with pytest.raises(ValueError):
        v[0, 0] = 1.0
    assert (a.used, a.room()) == (2, 8)


def test_a_full_arena_refuses_rows_and_rollback_is_bounded():
    a = VectorArena(4, 2)
    a.append(np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="full: 2 rows asked, 1 left"):
        a.reserve(2)
    with pytest.raises(ValueError, match="roll"):
        a.rollback(5)
    a.rollback(1)
    assert a.room() == 3
    with pytest.raises(ValueError, match="capacity"):
        VectorArena(0, 2)


@given(sizes=st.lists(st.integers(0, 5), min_size=1, max_size=6), drop=st.integers(0, 6),
       swap=st.booleans())
@settings(max_examples=60, deadline=None)
def test_joined_is_a_view_exactly_when_the_pieces_lie_end_to_end(sizes, drop, swap):
    a = VectorArena(40, 2)
    pieces = [a.append(np.full((n, 2), i, np.float32)) for i, n in enumerate(sizes)]
    chosen = pieces[:drop] + pieces[drop + 1:] if drop < len(pieces) and sizes[drop] else list(pieces)
    if swap and len(chosen) >= 2 and len(chosen[0]) and len(chosen[1]):
        chosen[0], chosen[1] = chosen[1], chosen[0]
    starts = [p.__array_interface__["data"][0] for p in chosen if len(p)]
    ends = [p.__array_interface__["data"][0] + p.nbytes for p in chosen if len(p)]
    adjacent = bool(starts) and all(e == s for e, s in zip(ends, starts[1:]))
    j = a.joined(chosen)
    if not adjacent:
        assert j is None
    else:
        assert np.array_equal(j, np.concatenate([p for p in chosen if len(p)]))
        assert np.shares_memory(j, chosen[0] if len(chosen[0]) else next(p for p in chosen if len(p)))
        assert not j.flags.writeable


def test_arrays_of_another_buffer_are_never_joined():
    a = VectorArena(10, 2)
    own = a.append(np.ones((2, 2), np.float32))
    other = np.zeros((10, 2), np.float32)
    assert a.joined([other[0:2], other[2:4]]) is None
    assert a.joined([own, other[2:4]]) is None


def _collection(tmp_path, **kw):
    settings_ = gleandb.Settings(memtable_max_rows=kw.pop("memtable_max_rows", 400), index_min_rows=100_000,
                                 compaction_min_segments=100, **kw)
    client = gleandb.PersistentClient(str(tmp_path / "db"), settings=settings_)
    return client, client.create_collection("col", embedding_function=None)


def _rows(seed, n):
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def test_freezing_a_memtable_copies_no_vectors(tmp_path):
    client, col = _collection(tmp_path)
    store = col._store
    x = _rows(0, 390)
    for lo in range(0, 390, 30):  # 13 writes: past the arena threshold (400 // 8 rows) early
        col.add(ids=[f"r{i}" for i in range(lo, lo + 30)], embeddings=x[lo:lo + 30])
    mem = [v for v in store.snapshot() if v.state == MEM]
    assert mem and store._arena is not None
    assert all(np.shares_memory(v.seg._vectors, store._arena._buf) for v in mem)
    arena = store._arena
    used = arena.used
    store.flush()  # freezes; the persist then runs in the background
    frozen = [v.seg for v in store.snapshot() if v.state in (FROZEN,)]
    if frozen:  # not persisted yet: the frozen segment views the arena's rows
        assert np.shares_memory(frozen[0]._vectors, arena._buf)
    assert arena.used == used  # nothing was copied into it by the freeze
    assert store._arena is None  # the next memtable gets its own
    client.flush()
    got = col.get(ids=[f"r{i}" for i in range(390)], include=["embeddings"])
    assert np.array_equal(np.asarray(got["embeddings"]), x)


def test_small_memtables_get_no_arena(tmp_path):
    client, col = _collection(tmp_path, memtable_max_rows=50_000)
    col.add(ids=[f"r{i}" for i in range(100)], embeddings=_rows(1, 100))
    assert col._store._arena is None  # 100 rows: below ARENA_MIN_ROWS


@given(ops=st.lists(st.tuples(st.sampled_from(["add", "upsert", "delete", "update", "flush"]),
                              st.integers(0, 60), st.integers(1, 25)), min_size=1, max_size=25))
@settings(max_examples=25, deadline=None)
def test_embeddings_read_back_as_written_whatever_the_writes(tmp_path_factory, ops):
    client, col = _collection(tmp_path_factory.mktemp("arena"), memtable_max_rows=64)
    model: dict[str, np.ndarray] = {}
    for step, (op, start, n) in enumerate(ops):
        ids = [f"r{i}" for i in range(start, start + n)]
        x = _rows(step + 1, n)
        if op == "add":
            col.add(ids=ids, embeddings=x)
            for i, id_ in enumerate(ids):
                model.setdefault(id_, x[i])
        elif op == "upsert":
            col.upsert(ids=ids, embeddings=x)
            model.update(zip(ids, x))
        elif op == "update":
            present = [i for i, id_ in enumerate(ids) if id_ in model]
            if present:
                col.update(ids=[ids[i] for i in present], embeddings=x[present])
                model.update((ids[i], x[i]) for i in present)
        elif op == "delete":
            col.delete(ids=ids)
            for id_ in ids:
                model.pop(id_, None)
        else:
            client.flush()
    got = col.get(include=["embeddings"])
    assert sorted(got["ids"]) == sorted(model)
    for id_, e in zip(got["ids"], got["embeddings"]):
        assert np.array_equal(np.asarray(e, np.float32), model[id_]), id_


def test_a_failed_write_gives_its_arena_rows_back(tmp_path, monkeypatch):
    client, col = _collection(tmp_path)
    store = col._store
    col.add(ids=[f"a{i}" for i in range(60)], embeddings=_rows(2, 60))
    assert store._arena is not None
    used = store._arena.used

    def fail(batches):
        raise OSError(5, "injected WAL failure")

    monkeypatch.setattr(store.wal, "append_many", fail)
    with pytest.raises(OSError, match="injected"):
        col.add(ids=[f"b{i}" for i in range(20)], embeddings=_rows(3, 20))
    monkeypatch.undo()
    assert store._arena.used == used and col.count() == 60
    x = _rows(4, 20)
    col.add(ids=[f"c{i}" for i in range(20)], embeddings=x)  # takes the rows the failed write had
    assert np.array_equal(np.asarray(col.get(ids=[f"c{i}" for i in range(20)], include=["embeddings"])["embeddings"]), x)
    assert np.array_equal(np.asarray(col.get(ids=[f"a{i}" for i in range(60)], include=["embeddings"])["embeddings"]),
                          _rows(2, 60))
