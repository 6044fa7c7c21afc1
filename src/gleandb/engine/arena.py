"""The memtable's vectors, written once into one buffer (LevelDB's memtable ``Arena``).

Once a memtable holds a few thousand rows, each write's vectors are appended to a
buffer sized for a full memtable, and its memtable segment's vectors are a read-only
view of its rows there. When memtable segments merge (the binary counter that keeps
them few, and the freeze into one frozen segment), rows that lie end to end in the
buffer need no copy: the merged segment's vectors are a view of the joined range
(``VectorArena.joined``). Before, every merge copied them, and the freeze of a full memtable held
two copies at once while the previous frozen segment's graph was being built: at 100k
x 384 that transient was the peak of the whole ingest.

The buffer comes from ``np.empty``: its pages are mapped but committed only as rows are
written, so a buffer sized for 62,500 rows costs the rows written so far. It is freed
by reference counting, when the last segment that views it goes (once the frozen
segment holding it is persisted and replaced by its memory-mapped files).

Rows once handed out are never written again; the only rows ``rollback`` may hand out
again are ones no published segment views (a group commit that failed).
"""

from __future__ import annotations

import numpy as np

__all__ = ["VectorArena", "sealed"]


class VectorArena:
    """Append-only float32 rows of one dimension, ``capacity`` at most."""

    def __init__(self, capacity: int, dim: int):
        if capacity < 1 or dim < 1:
            raise ValueError(f"a vector arena needs capacity >= 1 and dim >= 1, got {capacity} x {dim}")
        self._buf = np.empty((int(capacity), int(dim)), dtype=np.float32)
        self.used = 0

    @property
    def capacity(self) -> int:
        return len(self._buf)

    @property
    def dim(self) -> int:
        return self._buf.shape[1]

    def room(self) -> int:
        return self.capacity - self.used

    def reserve(self, n: int) -> np.ndarray:
        """The next ``n`` rows, writable, for the caller to fill once (then ``sealed``)."""
        if n > self.room():
            raise ValueError(f"vector arena full: {n} rows asked, {self.room()} left")
        out = self._buf[self.used : self.used + n]
        self.used += n
        return out

    def append(self, x: np.ndarray) -> np.ndarray:
        """A read-only view of a copy of ``x`` (n, dim) in the next rows."""
        out = self.reserve(len(x))
        out[...] = x
        return sealed(out)

    def joined(self, arrays: list[np.ndarray]) -> np.ndarray | None:
        """One read-only view of ``arrays`` laid end to end, when they are consecutive row
        ranges of this arena; otherwise None (the caller copies them)."""
        buf = self._buf
        start, row_bytes = buf.__array_interface__["data"][0], buf.strides[0]
        first = at = None
        for a in arrays:
            if a.base is not buf or a.ndim != 2 or not a.flags.c_contiguous:
                return None
            if len(a) == 0:
                continue
            off, rem = divmod(a.__array_interface__["data"][0] - start, row_bytes)
            if rem or (at is not None and off != at):
                return None
            if first is None:
                first = off
            at = off + len(a)
        if first is None:
            return None
        return sealed(buf[first:at])

    def rollback(self, used: int) -> None:
        """Hand out rows from ``used`` again: only for rows no published segment views."""
        if not 0 <= used <= self.used:
            raise ValueError(f"cannot roll a vector arena back to {used} (used: {self.used})")
        self.used = used


def sealed(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``."""
    v = a.view()
    v.flags.writeable = False
    return v
