"""BM25 full-text search: the per-segment inverted index.

Per segment (:class:`FullTextIndex`): CSR postings ``term -> (rows, term
frequencies)``, the analysed length of every row, and which rows have a document.
Terms are found by a 64-bit hash (blake2b) kept sorted, checked against the stored
term text, so an index loads from a memory-mapped file with no parsing at all.

Scoring over a whole snapshot (collection-wide statistics, live rows only) is
``gleandb.retrieval.rankers.bm25_top_k``: this module knows one segment and nothing of
the engine above it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gleandb.index import arrays, postings
from gleandb.index.tokenize import FullTextConfig, analyze, analyze_query

__all__ = ["FullTextConfig", "FullTextIndex", "analyze_query"]

FORMAT = 1
# text analysed at once while building (bounds the per-token temporaries)
BUILD_CHUNK_BYTES = 1 << 20


def term_hashes(terms: list[str]) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") for t in terms],
        dtype=np.uint64,
    )


class FullTextIndex:
    """Inverted index of one segment's ``document`` column (immutable)."""

    def __init__(self, analysis: dict, n: int, arrs: dict[str, np.ndarray]):
        self.analysis = analysis  # FullTextConfig.analysis_key() it was built with
        self.n = n
        self.hashes = arrs["hashes"]  # uint64, sorted; term i
        self.term_offsets = arrs["term_offsets"]  # uint32 (int64 in big or older files), V+1, into term_bytes
        self.term_bytes = arrs["term_bytes"]  # uint8, UTF-8 of the terms in hash order
        self.indptr = arrs["indptr"]  # uint32 (int64 in big or older files), V+1, into rows/tfs
        self.rows = arrs["rows"]  # uint8, uint16 or uint32 (arrays.row_dtype), sorted within a term
        self.tfs = arrs["tfs"]  # uint8, or uint16 (saturating) when a tf passes 255
        self.doc_len = arrs["doc_len"]  # int32 per row (0 without a document)
        self.has_doc = arrs["has_doc"].view(bool)
        self.total_len = int(self.doc_len.sum(dtype=np.int64))
        self.n_docs = int(np.count_nonzero(self.has_doc))

    # ------------------------------------------------------------- building

    @classmethod
    def build(cls, documents: pa.ChunkedArray | pa.Array, config: FullTextConfig) -> "FullTextIndex":
        """Index ``documents``. They are analysed about ``BUILD_CHUNK_BYTES`` of text at a
        time (per token, tokenising holds several arrays of 8 bytes and Arrow copies of
        the text), and each chunk is reduced at once to its (term, row, tf) postings, so
        the peak is the postings plus one chunk's tokens, not every token of the segment."""
        n = len(documents)
        term_of: dict[str, int] = {}  # term -> id, in order of first occurrence
        keys, counts = [], []  # per chunk: sorted distinct term id * n + row, and its tf
        doc_len = np.zeros(n, dtype=np.int32)
        lengths = pc.fill_null(pc.binary_length(documents), 0).to_numpy(zero_copy_only=False) if n else []
        ends = np.cumsum(lengths, dtype=np.int64)
        lo = 0
        while lo < n:
            hi = int(np.searchsorted(ends, ends[lo] - lengths[lo] + BUILD_CHUNK_BYTES, side="right"))
            hi = min(n, max(hi, lo + 1))  # at least one row
            terms, tids, rows = analyze(documents.slice(lo, hi - lo), config)
            if len(tids):
                glob = np.fromiter((term_of.setdefault(t, len(term_of)) for t in terms), np.int64, len(terms))
                key = glob[tids] * n + (rows + lo)
                del tids, glob
                key.sort()
                start = np.empty(len(key), dtype=bool)
                start[0] = True
                np.not_equal(key[1:], key[:-1], out=start[1:])
                first = np.flatnonzero(start)
                # tf saturates at 65535, as stored (uint8 when none passes 255, else uint16)
                counts.append(np.minimum(np.diff(np.append(first, len(key))), 65535).astype(np.uint16))
                keys.append(key[first])
                doc_len[lo:hi] = np.bincount(rows, minlength=hi - lo)
            lo = hi
        terms = list(term_of)
        V = len(terms)
        hashes = term_hashes(terms)
        order = np.argsort(hashes, kind="stable")
        rank = np.empty(V, dtype=np.int64)
        rank[order] = np.arange(V)
        # postings by term (in hash order), then row: one int64 key each, sorted
        ukey = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        tf = np.concatenate(counts) if counts else np.zeros(0, np.uint16)
        del keys, counts
        m = max(n, 1)
        rows = ukey % m
        ukey //= m
        ukey = rank[ukey]
        ukey *= m
        ukey += rows
        del rows
        pos = np.argsort(ukey)  # keys are distinct: any sort gives the same order
        ukey, tf = ukey[pos], tf[pos]
        del pos
        p_rows = (ukey % m).astype(arrays.row_dtype(n))
        ukey //= m
        indptr = arrays.offsets(np.bincount(ukey, minlength=V))
        del ukey
        enc = [terms[i].encode() for i in order]
        term_offsets = arrays.offsets(np.fromiter(map(len, enc), dtype=np.int64, count=V))
        has_doc = np.asarray(documents.is_valid(), dtype=bool) if n else np.zeros(0, bool)
        arrs = {
            "hashes": hashes[order],
            "term_offsets": term_offsets,
            "term_bytes": np.frombuffer(b"".join(enc), dtype=np.uint8),
            "indptr": indptr,
            "rows": p_rows,
            # one byte a posting when no term repeats more than 255 times in a row (a
            # narrower type, never a lower cap: scores must not depend on the segment)
            "tfs": tf.astype(np.uint8) if not len(tf) or tf.max() <= 255 else tf,
            "doc_len": doc_len,
            "has_doc": has_doc.view(np.uint8),
        }
        return cls(config.analysis_key(), n, arrs)

    @classmethod
    def merge(
        cls, parts: list[tuple["FullTextIndex", np.ndarray]], n: int, config: FullTextConfig
    ) -> "FullTextIndex | None":
        """The index of a segment of ``n`` rows made from the rows of several indexed ones:
        ``(index, dest)`` pairs, ``dest`` giving each input row's new row (-1: dropped).
        The same arrays as ``build`` over the merged documents, made from the inputs'
        postings a block of terms at a time (``gleandb.index.postings``). None when it
        cannot be: an input analysed with other settings, or two terms sharing a 64-bit
        hash (then ``build`` decides their order); the caller builds instead."""
        key = config.analysis_key()
        if not parts or any(idx.analysis != key for idx, _ in parts):
            return None
        if any(len(idx.hashes) > 1 and not np.all(idx.hashes[1:] > idx.hashes[:-1]) for idx, _ in parts):
            return None
        hashes = np.unique(np.concatenate([idx.hashes for idx, _ in parts]))
        out_keys = [np.searchsorted(hashes, idx.hashes) for idx, _ in parts]
        wide = any(idx.tfs.dtype != np.uint8 for idx, _ in parts)
        specs = [
            postings.PartPostings(ok, idx.indptr, idx.rows, dest, idx.tfs)
            for ok, (idx, dest) in zip(out_keys, parts)
        ]
        counts, rows, tfs = postings.merge(specs, len(hashes), n, np.dtype(np.uint16 if wide else np.uint8))
        live = counts > 0
        # each live term's text, from the first input holding it; every other input
        # holding the same hash must spell it the same (else two terms collided)
        src_part = np.full(len(hashes), -1, dtype=np.int64)
        src_term = np.zeros(len(hashes), dtype=np.int64)
        for i in reversed(range(len(parts))):
            src_part[out_keys[i]] = i
            src_term[out_keys[i]] = np.arange(len(out_keys[i]))
        lens = np.zeros(len(hashes), dtype=np.int64)
        starts = np.zeros(len(hashes), dtype=np.int64)
        base = 0
        for i, (idx, _) in enumerate(parts):
            mine = src_part == i
            off = idx.term_offsets.astype(np.int64)
            lens[mine] = off[src_term[mine] + 1] - off[src_term[mine]]
            starts[mine] = base + off[src_term[mine]]
            base += len(idx.term_bytes)
        all_bytes = np.concatenate([idx.term_bytes for idx, _ in parts])
        every_off = arrays.offsets(lens).astype(np.int64)
        term_bytes = all_bytes[arrays.ranges(starts, lens)]
        for ok, (idx, _) in zip(out_keys, parts):
            off = idx.term_offsets.astype(np.int64)
            if not np.array_equal(lens[ok], np.diff(off)):
                return None
            if not np.array_equal(term_bytes[arrays.ranges(every_off[ok], lens[ok])], idx.term_bytes):
                return None
        del all_bytes
        term_bytes = term_bytes[arrays.ranges(every_off[:-1][live], lens[live])]
        if wide and (not len(tfs) or tfs.max() <= 255):
            tfs = tfs.astype(np.uint8)  # as build stores them: narrow when no tf passes 255
        arrs = {
            "hashes": hashes[live],
            "term_offsets": arrays.offsets(lens[live]),
            "term_bytes": term_bytes,
            "indptr": arrays.offsets(counts[live]),
            "rows": rows,
            "tfs": tfs,
            "doc_len": postings.carried([(idx.doc_len, d) for idx, d in parts], n, np.int32),
            "has_doc": postings.carried([(idx.has_doc, d) for idx, d in parts], n, bool).view(np.uint8),
        }
        return cls(key, n, arrs)

    def to_bytes(self) -> bytes:
        return arrays.pack(*self._file())

    def to_parts(self) -> list:
        """``to_bytes`` as buffers to write in turn (``arrays.pack_parts``: no copy)."""
        return arrays.pack_parts(*self._file())

    def _file(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"format": FORMAT, "n": self.n, "analysis": self.analysis}
        arrs = {
            "hashes": self.hashes,
            "term_offsets": self.term_offsets,
            "term_bytes": self.term_bytes,
            "indptr": self.indptr,
            "rows": self.rows,
            "tfs": self.tfs,
            "doc_len": self.doc_len,
            "has_doc": self.has_doc.view(np.uint8),
        }
        return meta, arrs

    @classmethod
    def from_buffer(cls, buf) -> "FullTextIndex":
        meta, arrs = arrays.unpack(buf)
        if meta.get("format") != FORMAT:
            raise ValueError(f"unknown fulltext index format {meta.get('format')!r}")
        return cls(meta["analysis"], int(meta["n"]), arrs)

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (self.hashes, self.term_offsets, self.term_bytes, self.indptr, self.rows, self.tfs, self.doc_len, self.has_doc)
        )

    # -------------------------------------------------------------- reading

    def term_id(self, term: str, h: int | None = None) -> int:
        """Index of ``term`` in this segment's vocabulary, or -1. ``h``: the term's hash
        (``term_hashes``), when the caller looks the term up in many segments."""
        if h is None:
            h = term_hashes([term])[0]
        i = int(np.searchsorted(self.hashes, h))
        enc = term.encode()
        while i < len(self.hashes) and self.hashes[i] == h:
            a, b = self.term_offsets[i], self.term_offsets[i + 1]
            if self.term_bytes[a:b].tobytes() == enc:
                return i
            i += 1
        return -1

    def postings(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.indptr[tid], self.indptr[tid + 1]
        return self.rows[a:b], self.tfs[a:b]

    def terms(self) -> list[str]:
        data = self.term_bytes.tobytes()
        off = self.term_offsets
        return [data[off[i] : off[i + 1]].decode() for i in range(len(off) - 1)]
