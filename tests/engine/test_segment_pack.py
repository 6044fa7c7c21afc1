"""A small segment without an ANN index is written as one file (``segment.pack``): it reads
back the same as the separate files it replaces, which still read (segments written before),
and a big or indexed segment keeps its separate files."""

import os

import numpy as np
import pyarrow as pa

from gleandb.engine import segment as sg
from gleandb.engine.segment import PACK_FILE, Segment
from gleandb.index.tokenize import FullTextConfig
from gleandb.storage.local import LocalStorage


def _segment(n, seed=0):
    rng = np.random.default_rng(seed)
    docs = [None if i % 7 == 3 else f"row {i} says {'naïve café' if i % 5 == 0 else 'plain words'} {i * 31}"
            for i in range(n)]
    return Segment.from_records(f"s{seed}", "l2", [f"id{i}" for i in range(n)], np.arange(n) * 2,
                                rng.standard_normal((n, 8)).astype(np.float32), docs,
                                [{"k": i % 3, "path": f"p{i}"} if i % 4 else None for i in range(n)], [None] * n)


def _same(a: Segment, b: Segment, cfg):
    assert a.table.equals(b.table)
    np.testing.assert_array_equal(a.vectors(), b.vectors())
    for name in ("hashes", "indptr", "rows", "tfs", "doc_len", "term_bytes"):
        np.testing.assert_array_equal(getattr(a.fulltext(cfg), name), getattr(b.fulltext(cfg), name))
    for name in ("codes", "indptr", "rows"):
        np.testing.assert_array_equal(getattr(a.trigram_index(True), name), getattr(b.trigram_index(True), name))
    q = np.ones((1, 8), np.float32)
    assert [x.tolist() for x in a.search(q, 5, None, 10)] == [x.tolist() for x in b.search(q, 5, None, 10)]


def test_small_segment_is_one_file_and_reads_back_the_same(tmp_path, monkeypatch):
    cfg = FullTextConfig()
    storage = LocalStorage(str(tmp_path))
    os.makedirs(tmp_path / "segments")  # the pool of a store that has segments already
    seg = _segment(300)
    seg.build_text_indexes(cfg)
    syncs = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real(fd))[1])
    seg.write(storage, "segments/s0/")
    monkeypatch.undo()
    assert storage.list("segments/s0/") == [f"segments/s0/{PACK_FILE}"]
    assert len(syncs) <= 3  # the file, its directory, and the new directory's entry
    back = Segment.read(storage, "segments/s0/", "s0", "l2", False, 8)
    _same(seg, back, cfg)

    # the separate files of a segment written before packs existed still read
    monkeypatch.setattr(sg, "PACK_MAX_ROWS", 0)
    seg.write(storage, "segments/old/")
    assert PACK_FILE not in {k.rsplit("/", 1)[1] for k in storage.list("segments/old/")}
    assert {"records.arrow", "vectors.f32", "fulltext.idx", "trigram.idx"} <= {
        k.rsplit("/", 1)[1] for k in storage.list("segments/old/")}
    _same(seg, Segment.read(storage, "segments/old/", "s0", "l2", False, 8), cfg)


def test_a_store_of_packed_segments_reopens_with_every_row(tmp_path):
    import gleandb

    gleandb.ClientAPI.clear_system_cache()
    settings = gleandb.Settings(memtable_max_rows=1000, index_min_rows=10_000)
    c = gleandb.PersistentClient(str(tmp_path), settings=settings)
    col = c.create_collection("packed", embedding_function=None)
    col.add(ids=[f"a{i}" for i in range(50)], embeddings=np.eye(50, 4, dtype=np.float32) + 1,
            documents=[f"alpha {i}" for i in range(50)])
    c.flush()
    col.delete(ids=["a3", "a4"])
    c.flush()
    assert any(f == PACK_FILE for _d, _s, fs in os.walk(tmp_path / "segments") for f in fs)
    c.close()
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=settings)
    col = c.get_collection("packed", embedding_function=None)
    assert col.count() == 48
    assert col.get(where_document={"$contains": "alpha 7"}, include=["documents"])["documents"] == ["alpha 7"]
    assert col.query(query_embeddings=[[2, 1, 1, 1]], n_results=1, include=[])["ids"] == [["a0"]]
    c.close()
