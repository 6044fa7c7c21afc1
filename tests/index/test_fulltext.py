"""BM25: scores against an independent implementation (bm25s), the analyzer, and the
per-collection configuration (validation, persistence, immutability)."""

import math
import random

import numpy as np
import pyarrow as pa
import pytest

import gleandb
from gleandb.api.errors import InvalidArgumentError
from gleandb.engine.segment import Segment
from gleandb.engine.store import PERSISTED, SegView
from gleandb.index.fulltext import FullTextIndex
from gleandb.retrieval.rankers import bm25_top_k
from gleandb.index.tokenize import FullTextConfig, analyze, analyze_query

from text_corpus import passages

bm25s = pytest.importorskip("bm25s")


def _segment(docs, name="s"):
    n = len(docs)
    return Segment.from_records(
        name, "l2", [f"id{i}" for i in range(n)], np.arange(n), np.zeros((n, 2), np.float32),
        docs, [None] * n, [None] * n,
    )


def _doc_tokens(docs, config):
    terms, tids, rows = analyze(pa.array(docs, pa.string()), config)
    out = [[] for _ in docs]
    for t, r in zip(tids.tolist(), rows.tolist()):
        out[r].append(terms[t])
    return out


CONFIGS = [
    FullTextConfig(),
    FullTextConfig(stemmer="english", stopwords="english"),
    FullTextConfig(k1=0.9, b=0.4, lowercase=False),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "stem+stop", "k1b-case"])
def test_scores_match_bm25s_lucene(config):
    docs = passages(1500)
    toks = _doc_tokens(docs, config)
    ref = bm25s.BM25(method="lucene", k1=config.k1, b=config.b)
    ref.index(toks, show_progress=False)
    view = SegView(_segment(docs), None, 0, PERSISTED)
    rng = random.Random(7)
    vocab = sorted({t for d in toks for t in d})
    checked = 0
    for qi in range(40):
        words = rng.sample(docs[rng.randrange(len(docs))].split(), 3)
        if qi % 5 == 0:
            words.append(words[0])  # a repeated query term counts twice
        query = " ".join(words)
        qterms = [t for t in analyze_query(query, config) if t in set(vocab)]
        if not qterms:
            continue
        expected = np.asarray(ref.get_scores(qterms), dtype=np.float64) * (config.k1 + 1)
        got = bm25_top_k([view], query, len(docs), None, config)
        got_scores = {row: s for _vi, row, s in got}
        assert set(got_scores) == set(np.flatnonzero(expected > 0).tolist())
        for row, s in got_scores.items():
            assert s == pytest.approx(expected[row], rel=1e-5)
        # best first, ties by insertion order
        assert [s for *_x, s in got] == sorted((s for *_x, s in got), reverse=True)
        checked += 1
    assert checked >= 30


def test_formula_by_hand():
    docs = ["apple banana apple", "banana cherry", "cherry cherry cherry date", None, ""]
    view = SegView(_segment(docs), None, 0, PERSISTED)
    cfg = FullTextConfig()
    got = {r: s for _v, r, s in bm25_top_k([view], "apple cherry", 10, None, cfg)}
    N, avgdl = 4, (3 + 2 + 4 + 0) / 4  # None has no document; "" counts with length 0
    idf = lambda n: math.log(1 + (N - n + 0.5) / (n + 0.5))
    part = lambda tf, dl: tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avgdl))
    assert got[0] == pytest.approx(idf(1) * part(2, 3))
    assert got[1] == pytest.approx(idf(2) * part(1, 2))
    assert got[2] == pytest.approx(idf(2) * part(3, 4))
    assert set(got) == {0, 1, 2}


def test_allowed_and_deleted_rows_never_match():
    docs = ["red fox", "red dog", "red cat", "blue fox"]
    seg = _segment(docs)
    deleted = np.array([False, True, False, False])
    view = SegView(seg, deleted, 1, PERSISTED)
    cfg = FullTextConfig()
    rows = [r for _v, r, _s in bm25_top_k([view], "red", 10, None, cfg)]
    assert sorted(rows) == [0, 2]
    allowed = [np.array([False, True, True, True])]
    assert [r for _v, r, _s in bm25_top_k([view], "red", 10, allowed, cfg)] == [2]
    assert bm25_top_k([view], "", 10, None, cfg) == []
    assert bm25_top_k([view], "zebra", 10, None, cfg) == []
    assert bm25_top_k([view], "red", 0, None, cfg) == []


def test_analyzer_unicode_and_options():
    cfg = FullTextConfig()
    assert analyze_query("State-of-the-ART naïve Café 北京 3.14 x_y", cfg) == [
        "state", "of", "the", "art", "naïve", "café", "北京", "3", "14", "x", "y"]
    decomposed = "cafe\u0301"  # a combining accent stays inside the word
    assert analyze_query(decomposed, cfg) == [decomposed]
    assert analyze_query("a" * 41 + " ok", cfg) == ["ok"]
    assert analyze_query("The running dogs", FullTextConfig(stemmer="english", stopwords="english")) == ["run", "dog"]
    assert analyze_query("Foo foo", FullTextConfig(lowercase=False, stopwords=("foo",))) == ["Foo"]


def test_index_roundtrip_bytes():
    docs = passages(300) + [None, ""]
    cfg = FullTextConfig(stemmer="english")
    idx = FullTextIndex.build(pa.chunked_array([pa.array(docs, pa.string())]), cfg)
    back = FullTextIndex.from_buffer(idx.to_bytes())
    assert back.n == idx.n and back.analysis == idx.analysis
    for name in ("hashes", "indptr", "rows", "tfs", "doc_len", "has_doc", "term_bytes"):
        np.testing.assert_array_equal(getattr(back, name), getattr(idx, name))
    for t in ["python", "zzzz-not-a-term", "express"]:
        assert back.term_id(t) == idx.term_id(t)
    assert set(idx.terms()) == {t for d in _doc_tokens(docs, cfg) for t in d}


# -- configuration -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"stemmer": "klingon"}, "stemmer"),
        ({"stemmer": 3}, "stemmer"),
        ({"stopwords": "german"}, "stopwords"),
        ({"stopwords": ["ok", ""]}, "stopwords"),
        ({"stopwords": 5}, "stopwords"),
        ({"k1": -1}, "k1"),
        ({"k1": "1"}, "k1"),
        ({"k1": float("nan")}, "k1"),
        ({"b": 1.5}, "b"),
        ({"lowercase": "yes"}, "lowercase"),
        ({"max_token_len": 0}, "max_token_len"),
        ({"max_token_len": 2.5}, "max_token_len"),
        ({"colour": 1}, "colour"),
    ],
)
def test_config_validation_names_field_and_value(tmp_path, bad, field):
    c = gleandb.PersistentClient(str(tmp_path))
    try:
        with pytest.raises(InvalidArgumentError) as e:
            c.create_collection("col", configuration={"fulltext": bad}, embedding_function=None)
        assert field in str(e.value)
        assert repr(list(bad.values())[0])[:8] in str(e.value) or field == "colour"
        assert c.count_collections() == 0
    finally:
        c.close()


def test_config_persisted_echoed_and_fixed(tmp_path):
    c = gleandb.PersistentClient(str(tmp_path))
    cfg = {"stemmer": "english", "stopwords": ["foo", "bar"], "k1": 1.5, "b": 0.5}
    col = c.create_collection("col", configuration={"fulltext": cfg}, embedding_function=None)
    expected = {"lowercase": True, "stemmer": "english", "stopwords": ["foo", "bar"], "k1": 1.5, "b": 0.5,
                "max_token_len": 40}
    assert col.configuration_json["fulltext"] == expected
    assert col._store.fulltext_config == FullTextConfig.from_dict(expected)
    with pytest.raises(InvalidArgumentError, match="fulltext"):
        col.modify(configuration={"fulltext": {"k1": 2.0}})
    default = c.create_collection("plain", embedding_function=None)
    assert default.configuration_json["fulltext"] == FullTextConfig().to_dict()
    c.close()
    c2 = gleandb.PersistentClient(str(tmp_path))
    try:
        col = c2.get_collection("col", embedding_function=None)
        assert col.configuration_json["fulltext"] == expected
        assert col._store.fulltext_config.stemmer == "english"
        assert col._store.fulltext_config.k1 == 1.5
    finally:
        c2.close()


from hypothesis import given, settings, strategies as hst  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(text=hst.text(max_size=60), lowercase=hst.booleans())
def test_query_analysis_equals_document_analysis(text, lowercase):
    """Queries are tokenized by a cached per-character path, documents by RE2 kernels:
    both must give the same terms for any text."""
    cfg = FullTextConfig(lowercase=lowercase, max_token_len=5)
    terms, tids, _rows = analyze(pa.array([text], pa.string()), cfg)
    assert analyze_query(text, cfg) == [terms[t] for t in tids.tolist()]


@pytest.mark.parametrize("seed", range(5))
def test_narrow_filter_scores_equal_the_unfiltered_scores(seed):
    """A filter that leaves few postings is scored on those postings alone (not in arrays the
    size of the segment); its scores and order must be exactly those of the unfiltered
    ranking restricted to the allowed rows (same floats: the terms add in the same order)."""
    rng = np.random.default_rng(seed)
    vocab = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
    docs = [" ".join(rng.choice(vocab, size=int(rng.integers(1, 12)))) for _ in range(600)]
    seg = _segment(docs)
    deleted = rng.random(len(docs)) < 0.1
    view = SegView(seg, deleted, int(deleted.sum()), PERSISTED)
    cfg = FullTextConfig()
    query = " ".join(rng.choice(vocab, size=3))
    full = bm25_top_k([view], query, len(docs), None, cfg)  # postings >= rows / 8: the dense path
    for n_allowed in (1, 5, 20, 300):
        allowed = np.zeros(len(docs), dtype=bool)
        allowed[rng.choice(len(docs), n_allowed, replace=False)] = True
        got = bm25_top_k([view], query, len(docs), [allowed], cfg)
        assert got == [(v, r, s) for v, r, s in full if allowed[r]]
        assert all(not deleted[r] for _v, r, _s in got)


@pytest.mark.parametrize("dead_fraction", [0.002, 0.05, 0.5])
@pytest.mark.parametrize("seed", range(3))
def test_deleted_rows_score_as_if_never_written(seed, dead_fraction):
    """BM25's statistics count live rows only, however they are worked out (a few deleted
    rows looked up in the postings, or the postings in the deletion mask): a segment with
    deleted rows ranks its live rows exactly as a segment holding only those rows does,
    filtered narrowly (the allowed rows looked up in the postings) or not."""
    rng = np.random.default_rng(seed)
    vocab = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota"]
    docs = [None if rng.random() < 0.03 else " ".join(rng.choice(vocab, size=int(rng.integers(1, 12))))
            for _ in range(2000)]
    deleted = rng.random(len(docs)) < dead_fraction
    live_rows = np.flatnonzero(~deleted)
    cfg = FullTextConfig()
    with_deletes = SegView(_segment(docs), deleted, int(deleted.sum()), PERSISTED)
    only_live = SegView(_segment([docs[i] for i in live_rows]), None, 0, PERSISTED)
    for _ in range(5):
        query = " ".join(rng.choice(vocab, size=3))
        got = bm25_top_k([with_deletes], query, len(docs), None, cfg)
        want = bm25_top_k([only_live], query, len(docs), None, cfg)
        assert [(int(live_rows[r]), s) for _v, r, s in want] == [(r, pytest.approx(s, rel=1e-12)) for _v, r, s in got]
        allowed = np.zeros(len(docs), dtype=bool)
        allowed[rng.choice(len(docs), 12, replace=False)] = True  # narrow: looked up in the postings
        got_f = bm25_top_k([with_deletes], query, len(docs), [allowed], cfg)
        assert got_f == [(v, r, s) for v, r, s in got if allowed[r]]
