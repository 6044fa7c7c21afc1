"""Hand the heap memory a flush or a compaction freed back to the operating system.

A flush or a compaction frees large temporaries (a frozen segment's rows and vectors,
merged columns, a graph's build buffers) once its segment is written and mapped. glibc
keeps freed blocks that are not at the top of a heap, and those of every thread's
arena, mapped, so the process's RSS stays near its high-water mark for the rest of
its life; ``malloc_trim(0)`` returns their pages (measured at 100k x 384: -60 MiB
after each 50k-row flush). Where the C library has no ``malloc_trim`` (musl, macOS,
Windows) ``trim`` does nothing there.

Arrow's memory pool (mimalloc in the pyarrow wheels) does the same with the record
tables, merged columns and builders it freed: at 100k x 384 it still held 90 MiB of
resident pages after the last flush with nothing allocated, and at 1M the ~0.9 GiB a
compaction had freed stayed until the next query happened to make the pool collect.
``trim`` asks it too (``MemoryPool.release_unused``; it only hands back pages of the
calling thread's heap and abandoned ones, so it runs on the thread that did the work).
"""

from __future__ import annotations

import ctypes
import sys

import pyarrow as pa

__all__ = ["trim"]


def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).malloc_trim  # the C library this process already uses
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _malloc_trim()


def trim() -> bool:
    """Release free heap pages (the C library's and Arrow's pool's) to the OS; True when the
    C library could."""
    pa.default_memory_pool().release_unused()
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
