"""Small segments store their text indexes' postings narrow (1-byte rows and term
frequencies, 4-byte offsets); files written with the wide types (before) still load,
and both answer the same."""

import numpy as np
import pyarrow as pa

from gleandb.engine.segment import Segment
from gleandb.engine.store import PERSISTED, SegView
from gleandb.index import arrays
from gleandb.index.fulltext import FullTextIndex
from gleandb.index.tokenize import FullTextConfig
from gleandb.index.trigram import TrigramIndex

from text_corpus import passages

try:  # where the layering work moves it
    from gleandb.retrieval.rankers import bm25_top_k
except ImportError:
    from gleandb.index.fulltext import bm25_top_k

WIDE = {"indptr": np.int64, "term_offsets": np.int64, "rows": np.uint16, "tfs": np.uint16}


def _widened(idx, names):
    """``idx``'s file as the wide format wrote it."""
    meta, arrs = arrays.unpack(idx.to_bytes())
    return arrays.pack(meta, {k: (a.astype(WIDE[k]) if k in names else a) for k, a in arrs.items()})


def _view(docs, idx):
    n = len(docs)
    seg = Segment.from_records("s", "l2", [f"id{i}" for i in range(n)], np.arange(n), np.zeros((n, 2), np.float32),
                               docs, [None] * n, [None] * n)
    seg._fulltext = idx
    return SegView(seg, None, 0, PERSISTED)


def test_small_segment_fulltext_is_narrow_and_scores_as_the_wide_format():
    docs = passages(200) + ["loop " * 300, None]  # a term 300 times: its tf needs 2 bytes
    cfg = FullTextConfig()
    idx = FullTextIndex.build(pa.array(docs, pa.string()), cfg)
    assert idx.rows.dtype == np.uint8 and idx.indptr.dtype == np.uint32 and idx.term_offsets.dtype == np.uint32
    assert idx.tfs.dtype == np.uint16 and int(idx.postings(idx.term_id("loop"))[1].max()) == 300
    narrow = FullTextIndex.from_buffer(idx.to_bytes())
    wide = FullTextIndex.from_buffer(_widened(idx, ("indptr", "term_offsets", "rows", "tfs")))
    assert len(idx.to_bytes()) < len(_widened(idx, ("indptr", "term_offsets", "rows", "tfs")))
    for q in ["python data", "loop", "the web framework", "zzzqx"]:
        got = bm25_top_k([_view(docs, narrow)], q, 10, None, cfg)
        assert got == bm25_top_k([_view(docs, wide)], q, 10, None, cfg)
        assert (q == "zzzqx") == (got == [])
    small = FullTextIndex.build(pa.array(passages(50), pa.string()), cfg)
    assert small.tfs.dtype == np.uint8  # no tf above 255: one byte


def test_small_segment_trigrams_are_narrow_and_find_the_same_rows():
    docs = passages(250)
    idx = TrigramIndex.build(pa.array(docs, pa.string()))
    assert idx.rows.dtype == np.uint8 and idx.indptr.dtype == np.uint32
    wide = TrigramIndex.from_buffer(_widened(idx, ("indptr", "rows")))
    narrow = TrigramIndex.from_buffer(idx.to_bytes())
    for needle in [b"data", b"the ", b"zzzq", docs[7][:12].encode()]:
        want = [i for i, d in enumerate(docs) if needle.decode() in d]
        got = narrow.literal_candidates(needle)
        np.testing.assert_array_equal(got, wide.literal_candidates(needle))
        assert set(want) <= set(got.tolist())
    assert TrigramIndex.build(pa.array(passages(300), pa.string())).rows.dtype == np.uint16
