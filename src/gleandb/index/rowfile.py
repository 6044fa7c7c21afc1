"""Rows of a float32 matrix file, read with ``pread`` instead of memory-mapped.

A quantized (``sq8``) index walks its graph over 8-bit codes and reads full-precision
vectors only to re-score a few candidates per query (3 x k). Memory-mapped, those sparse
reads left the whole file mapped: the kernel maps a whole large folio of the page cache
on each fault (measured on Linux 6.18: 1000 random page reads of a 200 MiB file mapped
all of it, ``MADV_RANDOM`` or not), so at 1M x 384 the quantized collection had more
resident memory than the unquantized one. Read with ``pread``, the rows a query needs
are copied into a small array and nothing stays mapped; the page cache still keeps what
was read, where the kernel can reclaim it.

``RowFile`` answers the indexing a vector index does on its vectors (``x[rows]``,
``x[lo:hi]``, ``len(x)``, ``x.shape``) and converts to a full array (``np.asarray``) for
the rare callers that need all rows (rewriting the segment). Safe to read from several
threads at once (``pread`` takes its offset, no shared file position).
"""

from __future__ import annotations

import os
import weakref

import numpy as np

__all__ = ["RowFile"]


class RowFile:
    """A read-only (n, dim) little-endian float32 matrix stored row after row in ``path``."""

    def __init__(self, path: str, n: int, dim: int):
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._close = weakref.finalize(self, os.close, self._fd)
        size = os.fstat(self._fd).st_size
        if size != n * dim * 4:
            self._close()
            raise ValueError(f"{path}: {size} bytes, expected {n} x {dim} float32 rows ({n * dim * 4} bytes)")
        self.shape = (int(n), int(dim))
        self._row = int(dim) * 4

    dtype = np.dtype("<f4")
    ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self._row

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._read_range(0, self.shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key) -> np.ndarray:
        n = self.shape[0]
        if isinstance(key, slice):
            lo, hi, step = key.indices(n)
            if step != 1:
                return self[np.arange(lo, hi, step)]
            return self._read_range(lo, max(lo, hi))
        if isinstance(key, (int, np.integer)):
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"row {key} out of range for {n} rows")
            return self._read_range(i, i + 1)[0]
        rows = np.asarray(key)
        if rows.dtype == np.bool_:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64, copy=False).ravel()
        if len(rows) and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"row out of range for {n} rows")
        rows = np.where(rows < 0, rows + n, rows)
        return self._gather(rows)

    def _read_range(self, lo: int, hi: int) -> np.ndarray:
        out = np.empty((hi - lo, self.shape[1]), dtype=np.float32)
        self._read_into(out, lo)
        return out

    def _read_into(self, out: np.ndarray, first_row: int) -> None:
        if out.size == 0:
            return
        view = memoryview(out).cast("B")
        want, off = len(view), first_row * self._row
        while want:
            got = os.preadv(self._fd, [view[len(view) - want :]], off + len(view) - want)
            if got <= 0:
                raise OSError(f"short read of vector rows at byte {off + len(view) - want}")
            want -= got

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        """Rows in the order asked (repeats allowed); consecutive rows are read together."""
        uniq, inverse = np.unique(rows, return_inverse=True)
        got = np.empty((len(uniq), self.shape[1]), dtype=np.float32)
        if len(uniq):
            breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
            starts = np.concatenate(([0], breaks))
            ends = np.concatenate((breaks, [len(uniq)]))
            for s, e in zip(starts.tolist(), ends.tolist()):
                self._read_into(got[s:e], int(uniq[s]))
        if len(uniq) == len(rows) and np.array_equal(uniq, rows):
            return got
        return got[inverse.ravel()]
