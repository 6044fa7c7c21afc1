"""Dropping the pages of a memory-mapped segment file from this process's resident set.

Persisted segments are read through read-only file mappings (vectors and graph through
faiss, text indexes and id indexes through ``mmap``). A page read through a mapping
stays in the process's RSS until the mapping goes, even when nothing will read it again
soon. Compaction reads every input once, start to end, while it writes the merged
segment: at 1M rows its inputs' vectors alone are ~900 MiB that would stay resident
beside the graph being built. RocksDB drops a compaction's input pages for the same
reason (``fadvise(DONTNEED)``); here ``madvise(MADV_DONTNEED)`` on the range read: the
pages leave the process (they stay in the page cache), and a later read faults them in
again, with the same bytes, since the mapping is read-only and the file never changes.

``release`` only acts on ranges that lie inside one read-only, file-backed mapping
(checked in ``/proc/self/maps``): on anonymous or writable memory ``MADV_DONTNEED``
would throw data away, so such ranges (a segment held in memory, one read from object
storage into bytes) are left alone. Outside Linux it does nothing.
"""

from __future__ import annotations

import ctypes
import mmap
import sys

import numpy as np

__all__ = ["PAGE", "release"]

PAGE = _PAGE = mmap.PAGESIZE
_MADV_DONTNEED = 4


def _madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _madvise()


def _in_read_only_file_mapping(lo: int, hi: int) -> bool:
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(maxsplit=5)
                a, b = (int(x, 16) for x in parts[0].split("-"))
                if a <= lo and hi <= b:
                    # perms like "r--s" / "r--p": no write; inode 0 is anonymous memory
                    return "w" not in parts[1] and parts[4] != "0"
                if a > lo:
                    return False  # the list is sorted by address: not mapped as one range
    except OSError:
        return False
    return False


def release(arr: np.ndarray) -> int:
    """Drop the whole pages inside ``arr`` from the resident set when ``arr`` lies in a
    read-only file mapping; the bytes advised (0 when it does not, or cannot)."""
    if _MADVISE is None or arr.nbytes == 0 or not arr.flags.c_contiguous:
        return 0
    start = arr.__array_interface__["data"][0]
    lo = -(-start // _PAGE) * _PAGE  # whole pages only: never a neighbour's
    hi = (start + arr.nbytes) // _PAGE * _PAGE
    if hi <= lo or not _in_read_only_file_mapping(lo, hi):
        return 0
    if _MADVISE(lo, hi - lo, _MADV_DONTNEED) != 0:
        return 0
    return hi - lo
