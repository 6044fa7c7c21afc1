"""Text indexes inside the engine: BM25 scores do not depend on how rows are split into
segments (memtable, many small segments, compacted, with deletes and updates), text
indexes are written with segments and read back on reopen, and where_document with
the trigram index gives the same rows as without it."""

import random

import numpy as np
import pytest

import gleandb
from gleandb.retrieval.rankers import bm25_top_k

import sys, os
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "index"))
from text_corpus import passages  # noqa: E402

DOCS = passages(900)
QUERIES = ["the function returns a value", "class attribute", "exception raised", "string format",
           "module import import", "iterator protocol", "zzzz unknown"]
TINY = dict(memtable_max_rows=60, index_min_rows=50, compaction_min_segments=3)


def _emb(n, seed=0):
    return np.random.default_rng(seed).random((n, 4), dtype=np.float32)


def _scores(col, k=25):
    st = col._store
    snap = st.snapshot()
    out = {}
    for q in QUERIES:
        res = bm25_top_k(snap, q, k, None, st.fulltext_config)
        ids = col._store.hydrate(snap, [(v, r) for v, r, _s in res], set(), None).ids
        out[q] = [(i, round(s, 9)) for i, (_v, _r, s) in zip(ids, res)]
    return out


def _client(path, **settings):
    return gleandb.PersistentClient(str(path), settings=gleandb.Settings(**settings) if settings else None)


def _final_state():
    """The records after the write history below: what a fresh collection would hold."""
    live = {f"d{i}": DOCS[i] for i in range(len(DOCS))}
    for i in range(0, len(DOCS), 7):
        del live[f"d{i}"]
    for i in range(3, len(DOCS), 11):
        if f"d{i}" in live:
            live[f"d{i}"] = DOCS[(i * 5) % len(DOCS)] + " updated"
    return live


def _history(col):
    n = len(DOCS)
    for s in range(0, n, 45):  # many small writes
        col.add(ids=[f"d{i}" for i in range(s, min(n, s + 45))], embeddings=_emb(min(n, s + 45) - s, s),
                documents=DOCS[s : s + 45])
    col.delete(ids=[f"d{i}" for i in range(0, n, 7)])
    upd = [i for i in range(3, n, 11) if i % 7]
    col.update(ids=[f"d{i}" for i in upd], documents=[DOCS[(i * 5) % n] + " updated" for i in upd],
               embeddings=_emb(len(upd), 1))
    col.upsert(ids=["d1"], documents=[DOCS[1]], embeddings=_emb(1, 2))  # a row in the memtable, unchanged


def test_bm25_segment_split_invariance(tmp_path):
    live = _final_state()
    ids = sorted(live, key=lambda x: int(x[1:]))
    # reference: the final records written at once, all in one memtable segment
    ref_c = _client(tmp_path / "ref")
    ref = ref_c.create_collection("ref", embedding_function=None)
    ref.add(ids=ids, embeddings=_emb(len(ids)), documents=[live[i] for i in ids])
    assert len(ref._store.snapshot()) == 1
    expected = _scores(ref)
    assert any(expected[q] for q in QUERIES)
    ref.flush()  # one persisted segment
    assert _scores(ref) == expected
    ref_c.close()

    c = _client(tmp_path / "split", **TINY)
    col = c.create_collection("split", embedding_function=None)
    _history(col)
    snap = col._store.snapshot()
    assert len(snap) > 3 and any(v.deleted is not None for v in snap)
    assert {v.state for v in snap} >= {"mem"}
    assert _scores(col) == expected  # memtable + frozen/persisted segments, deletes, updates
    col.flush()
    assert _scores(col) == expected
    col.compact()
    assert _scores(col) == expected
    c.close()
    c = _client(tmp_path / "split", **TINY)
    try:
        col = c.get_collection("split", embedding_function=None)
        assert all(v.seg._fulltext is None for v in col._store.snapshot())  # read on first use only
        assert _scores(col) == expected
        for v in col._store.snapshot():  # loaded from its file, not rebuilt
            assert v.seg._fulltext is not None and "fulltext.idx" in v.seg._text_tried
    finally:
        c.close()


def test_text_index_files_written_and_loaded(tmp_path):
    c = _client(tmp_path, **TINY)
    col = c.create_collection("files", embedding_function=None)
    col.add(ids=[f"d{i}" for i in range(200)], embeddings=_emb(200), documents=DOCS[:200])
    col.flush()
    names = [v.seg.name for v in col._store.snapshot()]
    c.close()
    for name in names:
        # segments live in the store's shared pool (forks share them), wherever that is
        seg_dir = next(d for d in tmp_path.rglob(name) if d.is_dir() and d.parent.name == "segments")
        assert (seg_dir / "fulltext.idx").stat().st_size > 0
        assert (seg_dir / "trigram.idx").stat().st_size > 0
    c = _client(tmp_path, **TINY)
    try:
        col = c.get_collection("files", embedding_function=None)
        got = col.get(where_document={"$contains": "function"})["ids"]
        assert got == [f"d{i}" for i in range(200) if "function" in DOCS[i]]
        for v in col._store.snapshot():  # the trigram index came from its file (read on first use)
            assert v.seg._trigram is not None and "trigram.idx" in v.seg._text_tried
            assert v.seg.fulltext(col._store.fulltext_config) is not None and "fulltext.idx" in v.seg._text_tried
    finally:
        c.close()


PATTERNS = [
    {"$contains": "function"}, {"$contains": "is"}, {"$not_contains": "the"},
    {"$regex": "(class|def)\\w+"}, {"$regex": "[Rr]eturn(s|ed)?"}, {"$not_regex": "object.*type"},
    {"$regex": "\\d+"}, {"$regex": "(?i)python"},
    {"$and": [{"$contains": "value"}, {"$not_regex": "^The"}]},
    {"$or": [{"$contains": "lambda"}, {"$regex": "yield( from)?"}]},
]


def _model_match(doc, wd):
    import re as _re
    ((op, arg),) = wd.items()
    if op == "$and":
        return all(_model_match(doc, w) for w in arg)
    if op == "$or":
        return any(_model_match(doc, w) for w in arg)
    if op == "$contains":
        return doc is not None and arg in doc
    if op == "$not_contains":
        return not (doc is not None and arg in doc)
    hit = doc is not None and _re.search(arg.replace("\\w", "[^\\W]"), doc) is not None
    return hit if op == "$regex" else not hit


def test_where_document_with_trigrams_in_get_count_query_delete(tmp_path):
    c = _client(tmp_path, **TINY)
    col = c.create_collection("wdoc", embedding_function=None)
    _history(col)
    live = _final_state()
    col.flush()
    rng = random.Random(3)
    for wd in PATTERNS:
        expected = {i for i, d in live.items() if _model_match(d, wd)}
        assert set(col.get(where_document=wd)["ids"]) == expected, wd
        assert col.count(where_document=wd) == len(expected)
        q = col.query(query_embeddings=_emb(1, 9), n_results=5, where_document=wd)
        assert set(q["ids"][0]) <= expected and len(q["ids"][0]) == min(5, len(expected))
    victims = {i for i, d in live.items() if "lambda" in d}
    assert col.delete(where_document={"$contains": "lambda"})["deleted"] == len(victims)
    assert col.count() == len(live) - len(victims)
    assert col.get(where_document={"$contains": "lambda"})["ids"] == []
    c.close()
