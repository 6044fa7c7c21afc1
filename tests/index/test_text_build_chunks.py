"""The text indexes are built a chunk of documents at a time (to bound peak memory):
whatever the chunk size, the index holds exactly the postings a plain per-document
count gives, in the same layout."""

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gleandb.index import fulltext, trigram
from gleandb.index.fulltext import FullTextIndex
from gleandb.index.tokenize import FullTextConfig, analyze
from gleandb.index.trigram import TrigramIndex

WORDS = ["the", "Cat", "cats", "running", "of", "émigré", "北京", "😀", "x" * 70, "b2", "dog"]
SEPS = [" ", ", ", "\n", "-", "... ", "'"]
doc = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPS)), max_size=12).map(
    lambda ws: "".join(w + s for w, s in ws))
docs_st = st.lists(st.one_of(st.none(), doc), max_size=30)
# setattr each example: the fixture is not reset between them, every example sets its own
chunks = st.sampled_from([1, 5, 40, 1 << 30])
CONFIGS = [FullTextConfig(), FullTextConfig(stemmer=None), FullTextConfig(lowercase=False, stopwords=None)]


def _column(docs, split):
    if split and len(docs) > 1:  # several Arrow chunks, as a concatenated table column has
        h = len(docs) // 2
        return pa.chunked_array([pa.array(docs[:h], pa.string()), pa.array(docs[h:], pa.string())], pa.string())
    return pa.chunked_array([pa.array(docs, pa.string())], pa.string())


def _trigram_postings(idx: TrigramIndex) -> dict[int, list[int]]:
    return {int(c): idx.rows[idx.indptr[i]: idx.indptr[i + 1]].tolist() for i, c in enumerate(idx.codes)}


def _expected_trigrams(docs) -> dict[int, list[int]]:
    out: dict[int, set[int]] = {}
    for row, d in enumerate(docs):
        b = (d or "").encode()
        for i in range(len(b) - 2):
            out.setdefault(b[i] << 16 | b[i + 1] << 8 | b[i + 2], set()).add(row)
    return {c: sorted(r) for c, r in out.items()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=docs_st, chunk=chunks, split=st.booleans())
def test_trigram_chunked_build_matches_plain_count(monkeypatch, docs, chunk, split):
    monkeypatch.setattr(trigram, "BUILD_CHUNK_BYTES", chunk)
    monkeypatch.setattr(trigram, "_SPLIT", 3)  # the codes/rows split in several steps too
    idx = TrigramIndex.build(_column(docs, split))
    assert idx.n == len(docs)
    assert np.all(np.diff(idx.codes.astype(np.int64)) > 0)
    assert _trigram_postings(idx) == _expected_trigrams(docs)


def _fulltext_postings(idx: FullTextIndex) -> dict[str, dict[int, int]]:
    return {t: dict(zip(*(a.tolist() for a in idx.postings(i)))) for i, t in enumerate(idx.terms())}


def _expected_fulltext(docs, config) -> tuple[dict[str, dict[int, int]], list[int]]:
    terms, tids, rows = analyze(pa.array(docs, pa.string()), config)
    post: dict[str, Counter] = {}
    for t, r in zip(tids.tolist(), rows.tolist()):
        post.setdefault(terms[t], Counter())[r] += 1
    doc_len = np.bincount(rows, minlength=len(docs)).tolist() if len(docs) else []
    return {t: dict(sorted(c.items())) for t, c in post.items()}, doc_len


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=docs_st, chunk=chunks, split=st.booleans(), cfg=st.sampled_from(CONFIGS))
def test_fulltext_chunked_build_matches_plain_count(monkeypatch, docs, chunk, split, cfg):
    monkeypatch.setattr(fulltext, "BUILD_CHUNK_BYTES", chunk)
    idx = FullTextIndex.build(_column(docs, split), cfg)
    want, doc_len = _expected_fulltext(docs, cfg)
    assert _fulltext_postings(idx) == want
    assert idx.doc_len.tolist() == doc_len
    assert idx.has_doc.tolist() == [d is not None for d in docs]
    assert np.all(np.diff(idx.hashes.astype(np.float64)) >= 0)  # terms in hash order (lookups bisect)
    for t in want:
        assert idx.term_id(t) >= 0


@pytest.mark.parametrize("chunk", [1, 64, 1 << 30])
def test_fulltext_tf_saturates_the_same_in_every_chunking(monkeypatch, chunk):
    monkeypatch.setattr(fulltext, "BUILD_CHUNK_BYTES", chunk)
    docs = ["dog " * 300, "dog cat", None, "cat " * 70_000]
    idx = FullTextIndex.build(pa.chunked_array([pa.array(docs, pa.string())]), FullTextConfig())
    post = _fulltext_postings(idx)
    assert idx.tfs.dtype == np.uint16
    assert post["dog"] == {0: 300, 1: 1}
    assert post["cat"] == {1: 1, 3: 65535}  # stored saturated; doc_len keeps the true length
    assert idx.doc_len.tolist() == [300, 2, 0, 70_000]
