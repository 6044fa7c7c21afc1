"""Compaction merges the inputs' text indexes instead of building them again from the
documents (gleandb.index.postings): whatever the parts, the dropped rows, the order the
rows land in and the block size, the merged index holds the same arrays, of the same
types, as ``build`` over the merged documents; and where it cannot be (other analysis
settings, colliding term hashes) merge says so rather than guessing."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import gleandb
from gleandb.index import fulltext, postings
from gleandb.index.fulltext import FullTextIndex
from gleandb.index.tokenize import FullTextConfig
from gleandb.index.trigram import TrigramIndex

from text_corpus import passages

WORDS = ["the", "Cat", "cats", "running", "of", "émigré", "北京", "😀", "x" * 300, "b2", "dog", "z"]
SEPS = [" ", ", ", "\n", "-", "'"]
doc = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPS)), max_size=10).map(
    lambda ws: "".join(w + s for w, s in ws))
part_docs = st.lists(st.one_of(st.none(), doc), min_size=0, max_size=25)
CONFIGS = [FullTextConfig(), FullTextConfig(stemmer="english", stopwords="english"), FullTextConfig(lowercase=False)]

FT_ARRAYS = ("hashes", "term_offsets", "term_bytes", "indptr", "rows", "tfs", "doc_len", "has_doc")


def _col(docs):
    return pa.chunked_array([pa.array(docs, pa.string())], pa.string())


def _plan(parts_docs, keep_masks, perm_seed):
    """Each part's dest array and the merged documents: kept rows of all parts, placed in
    a random order (compaction's orders, rid order or base-first, are special cases)."""
    kept = [(p, r) for p, docs in enumerate(parts_docs) for r in range(len(docs)) if keep_masks[p][r]]
    order = np.random.default_rng(perm_seed).permutation(len(kept))
    dests = [np.full(len(d), -1, dtype=np.int64) for d in parts_docs]
    merged = [None] * len(kept)
    for new, (p, r) in zip(order, kept):
        dests[p][r] = new
        merged[new] = parts_docs[p][r]
    return dests, merged


def _same_arrays(got: dict, want: dict):
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@st.composite
def merge_cases(draw):
    parts_docs = draw(st.lists(part_docs, min_size=1, max_size=4))
    masks = [draw(st.lists(st.booleans(), min_size=len(d), max_size=len(d))) for d in parts_docs]
    return parts_docs, masks, draw(st.integers(0, 2**16)), draw(st.sampled_from([1, 3, 1000, None]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=merge_cases())
def test_trigram_merge_equals_build(monkeypatch, case):
    parts_docs, masks, seed, block = case
    monkeypatch.setattr(postings, "BLOCK_POSTINGS", block or postings.BLOCK_POSTINGS)
    dests, merged = _plan(parts_docs, masks, seed)
    parts = [(TrigramIndex.build(_col(d)), dest) for d, dest in zip(parts_docs, dests)]
    got = TrigramIndex.merge(parts, len(merged))
    want = TrigramIndex.build(_col(merged))
    assert got.n == want.n
    _same_arrays({"codes": got.codes, "indptr": got.indptr, "rows": got.rows},
                 {"codes": want.codes, "indptr": want.indptr, "rows": want.rows})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=merge_cases(), cfg=st.sampled_from(CONFIGS))
def test_fulltext_merge_equals_build(monkeypatch, case, cfg):
    parts_docs, masks, seed, block = case
    monkeypatch.setattr(postings, "BLOCK_POSTINGS", block or postings.BLOCK_POSTINGS)
    dests, merged = _plan(parts_docs, masks, seed)
    parts = [(FullTextIndex.build(_col(d), cfg), dest) for d, dest in zip(parts_docs, dests)]
    got = FullTextIndex.merge(parts, len(merged), cfg)
    want = FullTextIndex.build(_col(merged), cfg)
    assert got is not None
    assert (got.n, got.analysis, got.total_len, got.n_docs) == (want.n, want.analysis, want.total_len, want.n_docs)
    _same_arrays({k: getattr(got, k) for k in FT_ARRAYS}, {k: getattr(want, k) for k in FT_ARRAYS})


def test_wide_term_frequencies_narrow_again_when_their_rows_are_dropped():
    """A part stores tfs as uint16 because one row repeats a term 300 times; once that row
    is dropped, build would store uint8, and so must the merge."""
    cfg = FullTextConfig()
    docs = [" ".join(["spam"] * 300), "spam eggs"]
    idx = FullTextIndex.build(_col(docs), cfg)
    assert idx.tfs.dtype == np.uint16
    got = FullTextIndex.merge([(idx, np.array([-1, 0]))], 1, cfg)
    want = FullTextIndex.build(_col(docs[1:]), cfg)
    assert got.tfs.dtype == np.uint8
    _same_arrays({k: getattr(got, k) for k in FT_ARRAYS}, {k: getattr(want, k) for k in FT_ARRAYS})
    kept = FullTextIndex.merge([(idx, np.array([0, 1]))], 2, cfg)
    assert kept.tfs.dtype == np.uint16 and kept.tfs.max() == 300


def test_merge_refuses_other_analysis_settings():
    a = FullTextIndex.build(_col(["running cats"]), FullTextConfig())
    b = FullTextIndex.build(_col(["running cats"]), FullTextConfig(stemmer="english"))
    assert FullTextIndex.merge([(a, np.array([0])), (b, np.array([1]))], 2, FullTextConfig()) is None
    assert FullTextIndex.merge([(a, np.array([0]))], 1, FullTextConfig(stemmer="english")) is None


def test_merge_refuses_colliding_term_hashes(monkeypatch):
    """Two different terms with one hash, in two parts: the merge cannot tell which is
    which by hash, so it declines (the caller builds from the documents)."""
    cfg = FullTextConfig()
    monkeypatch.setattr(fulltext, "term_hashes", lambda terms: np.full(len(terms), 7, dtype=np.uint64))
    a = FullTextIndex.build(_col(["alpha"]), cfg)
    b = FullTextIndex.build(_col(["bravo"]), cfg)
    same = FullTextIndex.build(_col(["alpha"]), cfg)
    assert FullTextIndex.merge([(a, np.array([0])), (b, np.array([1]))], 2, cfg) is None
    assert FullTextIndex.merge([(a, np.array([0])), (same, np.array([1]))], 2, cfg) is not None
    both = FullTextIndex.build(_col(["alpha bravo"]), cfg)  # a collision inside one part
    assert FullTextIndex.merge([(both, np.array([0]))], 1, cfg) is None


@pytest.mark.parametrize("extend", [True, False])
def test_compaction_merges_text_indexes_like_a_fresh_build(tmp_path, monkeypatch, extend):
    """End to end: a compaction of segments with deleted and updated rows produces the
    text indexes a build over its documents gives, and merged them (no build ran)."""
    gleandb.ClientAPI.clear_system_cache()
    client = gleandb.PersistentClient(str(tmp_path / "db"), settings=gleandb.Settings(
        memtable_max_rows=100_000, index_min_rows=100, compaction_min_segments=100))
    col = client.create_collection("texts", configuration={"fulltext": {"stemmer": "english"}})
    texts = passages(900)
    texts[710:720] = [None] * 10  # rows without a document carry over too
    X = np.random.default_rng(1).standard_normal((len(texts), 8)).astype(np.float32)
    for lo, hi in ((0, 500), (500, 700), (700, 900)):
        col.add(ids=[f"d{i}" for i in range(lo, hi)], embeddings=X[lo:hi], documents=texts[lo:hi])
        client.flush()
    # extending needs the largest input whole: the rebuilt case also changes rows of it
    col.update(ids=["d600", "d710"] + ([] if extend else ["d10"]), embeddings=X[:3 - extend],
               documents=["changed running text", "also changed", "and this"][:3 - extend])
    col.delete(ids=["d650", "d899"] + ([] if extend else ["d3"]))
    client.flush()
    store = col._store
    store.params.compaction_extend = extend
    built = []
    real_build_ft, real_build_tg = FullTextIndex.build.__func__, TrigramIndex.build.__func__
    monkeypatch.setattr(FullTextIndex, "build", classmethod(lambda cls, *a: built.append("ft") or real_build_ft(cls, *a)))
    monkeypatch.setattr(TrigramIndex, "build", classmethod(lambda cls, *a: built.append("tg") or real_build_tg(cls, *a)))
    client.compact()
    client.flush()
    (view,) = store.snapshot()
    assert store.stats["compactions_extended"] == (1 if extend else 0)
    assert built == []  # every input had its indexes on disk: nothing was built
    seg = view.seg
    docs = seg.table.column("document")
    cfg = store.fulltext_config
    monkeypatch.undo()
    want_ft, want_tg = FullTextIndex.build(docs, cfg), TrigramIndex.build(docs)
    got_ft, got_tg = seg.fulltext(cfg), seg.trigram_index()
    _same_arrays({k: getattr(got_ft, k) for k in FT_ARRAYS}, {k: getattr(want_ft, k) for k in FT_ARRAYS})
    _same_arrays({"codes": got_tg.codes, "indptr": got_tg.indptr, "rows": got_tg.rows},
                 {"codes": want_tg.codes, "indptr": want_tg.indptr, "rows": want_tg.rows})
    # and the answers a user sees
    assert col.get(where_document={"$contains": "changed running"})["ids"] == ["d600"]
    hits = col.retrieve(query_texts=["changed running"], mode="bm25", n_results=1, include=[])
    assert hits["ids"][0] == ["d600"]
    assert col.count() == (898 if extend else 897)


@settings(max_examples=60, deadline=None)
@given(docs=st.lists(st.one_of(st.none(), doc), max_size=20))
def test_index_files_written_from_parts_equal_packed_bytes(docs):
    """Segments write index files from the arrays' own memory (``to_parts``): the bytes on
    disk are exactly ``to_bytes``, so files written either way read back the same."""
    from gleandb.index.ids import IdIndex

    ft = FullTextIndex.build(_col(docs), FullTextConfig())
    tg = TrigramIndex.build(_col(docs))
    ids = IdIndex.build(pa.array([f"id{i}" for i in range(len(docs))], pa.string()))
    for idx in (ft, tg, ids):
        assert b"".join(bytes(p) for p in idx.to_parts()) == bytes(idx.to_bytes())
