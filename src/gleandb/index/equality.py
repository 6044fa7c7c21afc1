"""Equality index of one metadata column of one segment: the rows holding a value,
found in time that grows with those rows, not with the segment.

``where={"k": v}`` and ``{"k": {"$in": [...]}}`` would otherwise compare every row
of the column. Memory's scope filter is the case that matters: one canonical scope
string per record and many scopes in one collection, so a recall should cost
O(memories in the scope), not O(collection).

Layout: the keys of the column's non-null rows sorted, with each one's row. Keys
are the values themselves for int and bool columns, and 64-bit hashes
(``strhash``) for strings, whose candidate rows are then checked against the real
strings (a collision costs a compare, never a wrong row). Built per (segment,
column) on first use and kept with the segment, which never changes; small
segments are scanned instead (see ``Segment.value_index``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gleandb.index.ids import sorted_matches
from gleandb.index.strhash import hash_strings

__all__ = ["EqualityIndex", "INDEXED_TAGS"]

# column tags (gleandb.index.filters) with an equality index: string, int, bool
INDEXED_TAGS = ("s", "i", "b")


def _keys(tag: str, values: pa.Array | pa.ChunkedArray | Sequence) -> np.ndarray:
    if tag == "s":
        return hash_strings(values)
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return np.asarray(values.to_numpy(zero_copy_only=False)).astype(np.int64)
    return np.asarray([int(x) for x in values], dtype=np.int64)


class EqualityIndex:
    """Sorted keys of one column's non-null rows, with their rows (immutable)."""

    def __init__(self, tag: str, n: int, keys: np.ndarray, rows: np.ndarray):
        self.tag = tag
        self.n = n
        self.keys = keys
        self.rows = rows

    @classmethod
    def build(cls, tag: str, column: pa.ChunkedArray | pa.Array) -> "EqualityIndex":
        if tag not in INDEXED_TAGS:
            raise ValueError(f"no equality index for column tag {tag!r}")
        n = len(column)
        valid = np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), dtype=bool)
        present = np.flatnonzero(valid)
        values = column if len(present) == n else column.take(pa.array(present, pa.int64()))
        keys = _keys(tag, values)
        order = np.argsort(keys, kind="stable")
        row_dtype = np.uint16 if n <= 1 << 16 else np.uint32
        return cls(tag, n, keys[order], present[order].astype(row_dtype))

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.rows.nbytes

    def rows_equal(self, column: pa.ChunkedArray | pa.Array, values: Sequence) -> np.ndarray:
        """Sorted rows whose value equals one of ``values`` (Python values of the column's
        type); ``column`` is the indexed column (to check string candidates)."""
        if not len(values) or not len(self.keys):
            return np.zeros(0, np.int64)
        wanted = _keys(self.tag, list(values))
        qi, pos = sorted_matches(self.keys, wanted)
        rows = self.rows[pos].astype(np.int64)
        if self.tag == "s" and len(rows):
            have = column.take(pa.array(rows, pa.int64()))
            asked = pa.array(list(values), pa.string()).take(pa.array(qi, pa.int64()))
            rows = rows[np.asarray(pc.equal(have, asked).to_numpy(zero_copy_only=False), dtype=bool)]
        return np.unique(rows)
