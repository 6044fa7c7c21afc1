"""The id lookup of one segment: which row holds each of some ids, in time that
grows with the ids asked for, not with the segment.

Layout: the 64-bit hashes of the segment's ids (``strhash.hash_strings``), sorted,
with the row of each (``rows``). A lookup hashes the asked ids once (``IdQuery``,
shared by every segment of a collection), binary-searches each hash and checks
each candidate row's real id, so hash collisions never give a wrong row. Stored
beside the segment (``ids.idx``) and memory-mapped on open; segments written
before it existed build it on first use.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gleandb.index import arrays
from gleandb.index.strhash import SMALL, hash_strings

__all__ = ["IdIndex", "IdQuery", "sorted_matches"]

FORMAT = 1


class IdQuery:
    """Ids to look up (deduplicated, first occurrence order) with their hashes."""

    __slots__ = ("ids", "_array", "hashes")

    def __init__(self, ids: Sequence[str] | pa.Array):
        if isinstance(ids, (pa.Array, pa.ChunkedArray)):
            ids = ids.to_pylist()
        self.ids: list[str] = list(dict.fromkeys(ids))
        self._array: pa.Array | None = None
        self.hashes = hash_strings(self.ids)

    @property
    def array(self) -> pa.Array:
        if self._array is None:
            self._array = pa.array(self.ids, pa.string())
        return self._array

    def __len__(self) -> int:
        return len(self.ids)


_NONE = np.zeros(0, np.int64)


def sorted_matches(keys: np.ndarray, wanted: np.ndarray, unique: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with ``keys[j] == wanted[i]``, ``keys`` sorted: (i array, j array).
    ``unique``: no key repeats, so one search finds each match (a segment that holds none
    of the asked ids, the common case deep in a fork chain, costs four numpy calls)."""
    if unique:
        if not len(keys) or not len(wanted):
            return _NONE, _NONE
        left, hit = arrays.find_sorted(keys, wanted)
        if not hit.any():
            return _NONE, _NONE
        qi = np.flatnonzero(hit)
        return qi, left[qi].astype(np.int64)
    left = np.searchsorted(keys, wanted, side="left")
    right = np.searchsorted(keys, wanted, side="right")
    counts = right - left
    if np.all(counts == 1):  # the usual case: each hash found once
        return np.arange(len(wanted), dtype=np.int64), left.astype(np.int64)
    qi = np.repeat(np.arange(len(wanted), dtype=np.int64), counts)
    return qi, arrays.ranges(left, counts)


class IdIndex:
    """Sorted id hashes of one segment and their rows (immutable)."""

    def __init__(self, n: int, hashes: np.ndarray, rows: np.ndarray):
        self.n = n
        self.hashes = hashes  # uint64, sorted
        self.rows = rows  # uint32 (or uint16), the row of each hash
        self._unique: bool | None = None  # no hash repeats (no collision inside the segment)

    @property
    def unique(self) -> bool:
        if self._unique is None:
            h = self.hashes
            self._unique = len(h) < 2 or not bool(np.any(h[1:] == h[:-1]))
        return self._unique

    @classmethod
    def build(cls, ids: pa.Array | pa.ChunkedArray) -> "IdIndex":
        h = hash_strings(ids)
        order = np.argsort(h, kind="stable")
        row_dtype = np.uint16 if len(h) <= 1 << 16 else np.uint32
        return cls(len(h), h[order], order.astype(row_dtype))

    def to_bytes(self) -> bytes:
        return arrays.pack(*self._file())

    def to_parts(self) -> list:
        """``to_bytes`` as buffers to write in turn (``arrays.pack_parts``: no copy)."""
        return arrays.pack_parts(*self._file())

    def _file(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {"format": FORMAT, "n": self.n}, {"hashes": self.hashes, "rows": self.rows}

    @classmethod
    def from_buffer(cls, buf) -> "IdIndex":
        meta, arrs = arrays.unpack(buf)
        if meta.get("format") != FORMAT:
            raise ValueError(f"unknown id index format {meta.get('format')!r}")
        return cls(int(meta["n"]), arrs["hashes"], arrs["rows"])

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.rows.nbytes

    def find(self, id_column: pa.ChunkedArray | pa.Array, query: IdQuery) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``query.ids``, rows) of the asked ids present in this segment;
        ``id_column`` is the segment's ids (to check candidates)."""
        if not len(query) or not self.n:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if len(query) <= SMALL:
            return self._find_few(id_column, query)
        qi, pos = sorted_matches(self.hashes, query.hashes, self.unique)
        if not len(qi):
            return qi, pos
        rows = self.rows[pos].astype(np.int64)
        have = id_column.take(pa.array(rows, pa.int64()))
        same = pc.equal(have, query.array.take(pa.array(qi, pa.int64())))
        ok = np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)
        return qi[ok], rows[ok]

    def _find_few(self, id_column, query: IdQuery) -> tuple[np.ndarray, np.ndarray]:
        """``find`` for a few ids, without numpy's per-call costs (writes of one record)."""
        out_q, out_r = [], []
        hashes, n = self.hashes, self.n
        starts = np.searchsorted(hashes, query.hashes).tolist()
        for i, (h, j) in enumerate(zip(query.hashes.tolist(), starts)):
            while j < n and int(hashes[j]) == h:
                row = int(self.rows[j])
                if id_column[row].as_py() == query.ids[i]:
                    out_q.append(i)
                    out_r.append(row)
                j += 1
        return np.array(out_q, dtype=np.int64), np.array(out_r, dtype=np.int64)
