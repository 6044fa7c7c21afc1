"""Trigram index over the UTF-8 bytes of a segment's documents, and the literal
queries extracted from regexes that it answers.

Byte trigrams are exact for substring search: a document containing the string
``s`` (>= 3 bytes) contains every trigram of ``s``. So the rows holding all of
them are a superset of the matches, and only those rows are verified with RE2
(``pyarrow.compute``). The index never decides a match on its own, which is why
results are always identical to a full scan.

Index: sorted distinct trigram codes ``b0<<16 | b1<<8 | b2`` with CSR postings
(sorted rows per code), built in numpy from the Arrow string buffers: one code per
byte position, positions crossing a document boundary dropped, ``(code, row)``
pairs sorted and deduplicated.

Regexes (:func:`regex_query`): the pattern is parsed (Python's parser; its literal
syntax agrees with Rust's and RE2's for every pattern ``compile_regex`` accepts)
into an AND/OR expression of literals that every match must contain, in the
manner of Russ Cox's codesearch: concatenations multiply small sets of exact
strings (``colou?r`` -> color | colour, ``(cat|dog)s`` -> cats | dogs), alternations
become ORs, repeats with a minimum of one keep their operand's requirement.
Case-insensitive parts, classes and anything unrecognised require nothing, so such
patterns fall back to the full scan.
"""

from __future__ import annotations

import re
import warnings
from typing import Union

import numpy as np
import pyarrow as pa

from gleandb.index import arrays, postings
from gleandb.index.strhash import string_buffers as _string_buffers

try:  # Python 3.11+
    from re import _constants as _C, _parser as _P
except ImportError:  # pragma: no cover
    import sre_constants as _C, sre_parse as _P  # type: ignore

__all__ = ["TrigramIndex", "regex_query", "literal_query", "Query"]

FORMAT = 1
# most trigrams of one literal looked up: a long needle's candidates are narrowed enough by
# these, and the lookup (a Python loop) stays short whatever the needle's length
MAX_QUERY_TRIGRAMS = 512

# ---------------------------------------------------------------------------
# the index
# ---------------------------------------------------------------------------


# text bytes whose trigram keys are made at once while building (bounds the temporaries)
BUILD_CHUNK_BYTES = 1 << 18
# keys split into codes and rows per step after the sort (bounds those temporaries)
_SPLIT = 1 << 20


def _chunk_keys(data: np.ndarray, offs: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Sorted distinct ``code << 32 | row`` keys of the trigrams inside rows lo..hi-1."""
    d = data[offs[lo] : offs[hi]].astype(np.uint64)
    if len(d) < 3:
        return np.zeros(0, np.uint64)
    key = d[:-2] << np.uint64(48)
    key |= d[1:-1] << np.uint64(40)
    key |= d[2:] << np.uint64(32)
    del d
    row = np.repeat(np.arange(lo, hi, dtype=np.uint64), np.diff(offs[lo : hi + 1]))
    same = row[:-2] == row[2:]  # the trigram lies inside one document
    key |= row[:-2]
    key = key[same]
    del row, same
    key.sort()
    if len(key) > 1:
        keep = np.empty(len(key), dtype=bool)
        keep[0] = True
        np.not_equal(key[1:], key[:-1], out=keep[1:])
        key = key[keep]
    return key


def _codes(b: bytes) -> np.ndarray:
    a = np.frombuffer(b, dtype=np.uint8).astype(np.uint32)
    return np.unique((a[:-2] << 16) | (a[1:-1] << 8) | a[2:])


class TrigramIndex:
    """Postings of the byte trigrams of one segment's documents (immutable)."""

    def __init__(self, n: int, arrs: dict[str, np.ndarray]):
        self.n = n
        self.codes = arrs["codes"]  # uint32, sorted, distinct
        self.indptr = arrs["indptr"]  # uint32 (int64 in big or older files), len(codes)+1
        self.rows = arrs["rows"]  # uint8 / uint16 / uint32 (arrays.row_dtype), sorted within a code

    @classmethod
    def build(cls, documents: pa.ChunkedArray | pa.Array) -> "TrigramIndex":
        """Index ``documents``. The (code, row) keys of about ``BUILD_CHUNK_BYTES`` of text
        are made and deduplicated at a time (a few uint64 temporaries per text byte), so
        the peak is the deduplicated keys (8 bytes a posting) plus the result, not
        several uint64 arrays as long as all the text."""
        n = len(documents)
        data, offs = _string_buffers(documents)
        row_dtype = arrays.row_dtype(n)
        if len(data) < 3:
            empty = {"codes": np.zeros(0, np.uint32), "indptr": np.zeros(1, np.uint32), "rows": np.zeros(0, row_dtype)}
            return cls(n, empty)
        # room for every trigram position; only the pages the distinct keys fill become
        # resident (a large np.empty is mapped lazily), and no chunk's keys outlive it
        key = np.empty(len(data), dtype=np.uint64)
        at = lo = 0
        while lo < n:
            hi = int(np.searchsorted(offs, offs[lo] + BUILD_CHUNK_BYTES, side="right")) - 1
            hi = min(n, max(hi, lo + 1))  # at least one row (a longer document is one chunk)
            part = _chunk_keys(data, offs, lo, hi)
            key[at : at + len(part)] = part
            at += len(part)
            lo = hi
        del part
        key = key[:at]
        key.sort()  # in place; rows of different chunks never repeat a key
        if not len(key):
            return cls(n, {"codes": np.zeros(0, np.uint32), "indptr": np.zeros(1, np.uint32), "rows": np.zeros(0, row_dtype)})
        rows = np.empty(len(key), dtype=row_dtype)
        first = []  # where each code's postings start
        prev = None
        for s in range(0, len(key), _SPLIT):
            k = key[s : s + _SPLIT]
            rows[s : s + len(k)] = k & np.uint64(0xFFFFFFFF)
            c = (k >> np.uint64(32)).astype(np.uint32)
            starts = np.empty(len(c), dtype=bool)
            starts[0] = prev is None or c[0] != prev
            np.not_equal(c[1:], c[:-1], out=starts[1:])
            first.append(np.flatnonzero(starts) + s)
            prev = c[-1]
        first_pos = np.concatenate(first)
        codes = (key[first_pos] >> np.uint64(32)).astype(np.uint32)
        del key
        indptr = arrays.offsets(np.diff(np.append(first_pos, len(rows))))
        return cls(n, {"codes": codes, "indptr": indptr, "rows": rows})

    @classmethod
    def merge(cls, parts: list[tuple["TrigramIndex", np.ndarray]], n: int) -> "TrigramIndex":
        """The index of a segment of ``n`` rows made from the rows of several indexed ones:
        ``(index, dest)`` pairs, ``dest`` giving each input row's new row (-1: dropped).
        The same arrays as ``build`` over the merged documents (``gleandb.index.postings``),
        without holding 8 bytes a posting while sorting them."""
        codes = np.unique(np.concatenate([idx.codes for idx, _ in parts])) if parts else np.zeros(0, np.uint32)
        specs = [
            postings.PartPostings(np.searchsorted(codes, idx.codes), idx.indptr, idx.rows, dest)
            for idx, dest in parts
        ]
        counts, rows, _ = postings.merge(specs, len(codes), n)
        live = counts > 0
        return cls(n, {"codes": codes[live].astype(np.uint32), "indptr": arrays.offsets(counts[live]), "rows": rows})

    def to_bytes(self) -> bytes:
        return arrays.pack(*self._file())

    def to_parts(self) -> list:
        """``to_bytes`` as buffers to write in turn (``arrays.pack_parts``: no copy)."""
        return arrays.pack_parts(*self._file())

    def _file(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {"format": FORMAT, "n": self.n}, {"codes": self.codes, "indptr": self.indptr, "rows": self.rows}

    @classmethod
    def from_buffer(cls, buf) -> "TrigramIndex":
        meta, arrs = arrays.unpack(buf)
        if meta.get("format") != FORMAT:
            raise ValueError(f"unknown trigram index format {meta.get('format')!r}")
        return cls(int(meta["n"]), arrs)

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + self.indptr.nbytes + self.rows.nbytes

    def _posting(self, code: int) -> np.ndarray | None:
        i = int(np.searchsorted(self.codes, code))
        if i >= len(self.codes) or self.codes[i] != code:
            return None
        return self.rows[self.indptr[i] : self.indptr[i + 1]]

    def literal_candidates(self, s: bytes) -> np.ndarray | None:
        """Sorted rows that contain every trigram of ``s``; None when ``s`` is too
        short (< 3 bytes) to narrow anything."""
        if len(s) < 3:
            return None
        codes = _codes(s)
        if len(codes) > MAX_QUERY_TRIGRAMS:  # any subset still gives a superset of the matches
            codes = codes[np.linspace(0, len(codes) - 1, MAX_QUERY_TRIGRAMS).astype(np.int64)]
        lists = []
        for code in codes:
            p = self._posting(int(code))
            if p is None:
                return np.zeros(0, np.int64)
            lists.append(p)
        lists.sort(key=len)
        cand = lists[0].astype(np.int64)
        for p in lists[1:]:
            if not len(cand):
                break
            cand = cand[arrays.find_sorted(p, cand)[1]]
        return cand

    def candidates(self, q: "Query") -> np.ndarray | None:
        """Sorted rows that may satisfy ``q``; None means every row may."""
        if q is None:
            return None
        if isinstance(q, bytes):
            return self.literal_candidates(q)
        op, children = q
        if op == "and":
            out = None
            for c in children:
                r = self.candidates(c)
                if r is None:
                    continue
                out = r if out is None else np.intersect1d(out, r, assume_unique=True)
                if not len(out):
                    break
            return out
        parts = []
        for c in children:  # "or"
            r = self.candidates(c)
            if r is None:
                return None
            parts.append(r)
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


# ---------------------------------------------------------------------------
# literal queries from patterns
# ---------------------------------------------------------------------------

# A query: None (anything), bytes (contains this string), ("and"|"or", [queries]).
Query = Union[None, bytes, tuple]

_MAX_EXACT = 64  # largest set of exact strings tracked for a subpattern
_MAX_CLASS = 16  # largest character class expanded into its characters


def literal_query(needle: str) -> Query:
    b = needle.encode()
    return b if len(b) >= 3 else None


def _q_or(strings) -> Query:
    """Contains one of these strings (None when one is too short to index)."""
    out = []
    for s in strings:
        b = s.encode()
        if len(b) < 3:
            return None
        out.append(b)
    if not out:
        return None
    return out[0] if len(out) == 1 else ("or", sorted(set(out)))


def _q_and(qs: list) -> Query:
    qs = [q for q in qs if q is not None]
    if not qs:
        return None
    return qs[0] if len(qs) == 1 else ("and", qs)


def _q_any_of(qs: list) -> Query:
    if any(q is None for q in qs) or not qs:
        return None
    return qs[0] if len(qs) == 1 else ("or", qs)


class _Info:
    """What a subpattern's matches look like: one of ``exact`` strings (None when
    unknown or too many), and ``req``, a query every match satisfies."""

    __slots__ = ("exact", "req")

    def __init__(self, exact: set[str] | None, req: Query):
        self.exact, self.req = exact, req

    def query(self) -> Query:
        return _q_or(self.exact) if self.exact is not None else self.req


_NOTHING = _Info(None, None)


def _class_chars(items) -> set[str] | None:
    chars: set[str] = set()
    for op, arg in items:
        if op is _C.LITERAL:
            chars.add(chr(arg))
        elif op is _C.RANGE and arg[1] - arg[0] < _MAX_CLASS:
            chars.update(chr(c) for c in range(arg[0], arg[1] + 1))
        else:  # NEGATE, CATEGORY, big ranges
            return None
        if len(chars) > _MAX_CLASS:
            return None
    return chars


def _seq(items, icase: bool) -> _Info:
    cur: set[str] = {""}
    reqs: list[Query] = []
    all_exact = True
    for op, arg in items:
        info = _item(op, arg, icase)
        if info.exact is not None and len(cur) * len(info.exact) <= _MAX_EXACT:
            cur = {a + b for a in cur for b in info.exact}
            continue
        all_exact = False
        reqs.append(_q_or(cur))
        if info.exact is not None:
            cur = set(info.exact)
        else:
            reqs.append(info.req)
            cur = {""}
    if all_exact:
        return _Info(cur, _q_or(cur))
    reqs.append(_q_or(cur))
    return _Info(None, _q_and(reqs))


def _item(op, arg, icase: bool) -> _Info:
    if op is _C.LITERAL:
        return _NOTHING if icase else _Info({chr(arg)}, None)
    if op is _C.AT:  # zero-width anchors: match the empty string
        return _Info({""}, None)
    if op is _C.IN:
        if icase:
            return _NOTHING
        chars = _class_chars(arg)
        return _NOTHING if chars is None else _Info(chars, None)
    if op is _C.SUBPATTERN:
        _group, add_flags, _del_flags, sub = arg
        return _seq(sub, icase or bool(add_flags & re.IGNORECASE))
    if op is _C.BRANCH:
        alts = [_seq(alt, icase) for alt in arg[1]]
        if all(a.exact is not None for a in alts):
            union = set().union(*(a.exact for a in alts))
            if len(union) <= _MAX_EXACT:
                return _Info(union, _q_or(union))
        return _Info(None, _q_any_of([a.query() for a in alts]))
    if op in (_C.MAX_REPEAT, _C.MIN_REPEAT) or op is getattr(_C, "POSSESSIVE_REPEAT", None):
        lo, hi, sub = arg
        inner = _seq(sub, icase)
        if lo == 0:
            if hi == 1 and inner.exact is not None:
                return _Info(inner.exact | {""}, None)
            return _NOTHING
        if lo == hi == 1:
            return inner
        return _Info(None, inner.query())
    if op is getattr(_C, "ATOMIC_GROUP", None):
        return _seq(arg, icase)
    return _NOTHING  # ANY, NOT_LITERAL, CATEGORY, GROUPREF, ASSERT, ...


def regex_query(pattern: str) -> Query:
    """A literal query every match of ``pattern`` satisfies (None: no usable literal)."""
    if "[:" in pattern:  # POSIX classes: Python reads "[[:alpha:]]" as a class + "]"
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = _P.parse(pattern)
    except Exception:
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    try:
        return _seq(list(parsed), False).query()
    except Exception:  # an unexpected parse shape: no shortcut, full scan
        return None
