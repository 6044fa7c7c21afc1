"""Merging the CSR postings of several segments' text indexes into one segment's.

Compaction writes one segment from the live rows of several. Building its BM25 and
trigram indexes again from the documents held 8 bytes a posting (plus chunk
temporaries) while the keys were sorted: at 200k documents +580 MiB, at 800k several
GiB, the largest part of compaction's peak. The inputs already hold those postings,
sorted by key (term or trigram) and row; only the rows change (``dest``: each input
row's number in the new segment, -1 when it is dropped). So the output is produced one
block of keys at a time: the blocks' postings are mapped, filtered, sorted and copied
into the result, and nothing larger than the result and one block is alive.

The result equals what building from the merged documents gives (tests/index/
test_postings_merge.py checks it array by array), so queries cannot tell the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gleandb.index import arrays

# postings mapped and sorted at once (bounds the per-block temporaries, ~24 bytes each)
BLOCK_POSTINGS = 1 << 21


@dataclass
class PartPostings:
    """One input's postings, in the output's key space.

    ``out_key``: for each of the input's keys (in its order), the index of that key in
    the output's sorted keys (increasing, since both are sorted the same way);
    ``indptr`` / ``rows`` / ``values``: the input's CSR postings (``values`` optional, as
    long as ``rows``); ``dest``: the output row of each input row, -1 when dropped."""

    out_key: np.ndarray
    indptr: np.ndarray
    rows: np.ndarray
    dest: np.ndarray
    values: np.ndarray | None = None


def _blocks(parts: list[PartPostings], n_keys: int, block: int) -> list[tuple[int, int]]:
    """Ranges of output keys holding about ``block`` input postings each (a key with more
    postings than that is a block of its own)."""
    volume = np.zeros(n_keys, dtype=np.int64)
    for p in parts:
        volume[p.out_key] += np.diff(p.indptr.astype(np.int64))
    ends = np.cumsum(volume)
    out, lo = [], 0
    while lo < n_keys:
        base = ends[lo - 1] if lo else 0
        hi = int(np.searchsorted(ends, base + block, side="right"))
        hi = min(n_keys, max(hi, lo + 1))
        out.append((lo, hi))
        lo = hi
    return out


def merge(
    parts: list[PartPostings], n_keys: int, n_rows: int, values_dtype: np.dtype | None = None,
    block: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Postings per output key: ``(counts, rows, values)``, rows sorted within a key and
    typed ``arrays.row_dtype(n_rows)``; ``values`` (when the parts have them) in
    ``values_dtype``. Keys whose postings all point at dropped rows get a count of 0."""
    total = sum(len(p.rows) for p in parts)
    # sized for every input posting; pages the dropped ones would fill are never touched
    # (a large np.empty is mapped lazily), so the slice returned costs only what it holds
    rows_out = np.empty(total, dtype=arrays.row_dtype(n_rows))
    values_out = np.empty(total, dtype=values_dtype) if values_dtype is not None else None
    counts = np.zeros(n_keys, dtype=np.int64)
    m = max(n_rows, 1)
    at = 0
    for lo, hi in _blocks(parts, n_keys, block or BLOCK_POSTINGS):
        keys, vals = [], []
        for p in parts:
            a, b = np.searchsorted(p.out_key, (lo, hi))
            if a == b:
                continue
            s, e = int(p.indptr[a]), int(p.indptr[b])
            new = p.dest[p.rows[s:e]]
            key = np.repeat(p.out_key[a:b] - lo, np.diff(p.indptr[a : b + 1].astype(np.int64)))
            keep = new >= 0
            if not keep.all():
                key, new = key[keep], new[keep]
            key *= m
            key += new
            keys.append(key)
            if values_out is not None:
                v = p.values[s:e]
                vals.append(v if keep.all() else v[keep])
            del new, keep
        if not keys:
            continue
        key = np.concatenate(keys) if len(keys) > 1 else keys[0]
        del keys
        order = np.argsort(key, kind="stable")  # distinct keys: any sort gives this order
        key = key[order]
        k = len(key)
        rows_out[at : at + k] = key % m
        counts[lo:hi] = np.bincount(key // m, minlength=hi - lo)
        if values_out is not None:
            v = np.concatenate(vals) if len(vals) > 1 else vals[0]
            values_out[at : at + k] = v[order]
        del key, order, vals
        at += k
    return counts, rows_out[:at], values_out[:at] if values_out is not None else None


def carried(parts: list[tuple[np.ndarray, np.ndarray]], n_rows: int, dtype) -> np.ndarray:
    """A per-row array of the output from per-row arrays of the inputs: ``(values, dest)``
    pairs, each value moved to its row's ``dest`` (dropped rows' values are not)."""
    out = np.zeros(n_rows, dtype=dtype)
    for values, dest in parts:
        keep = dest >= 0
        out[dest[keep]] = values[keep]
    return out
