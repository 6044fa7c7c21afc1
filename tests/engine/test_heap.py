"""heap.trim hands freed heap pages back to the OS (glibc), and is harmless elsewhere."""

import ctypes
import sys

import pytest

from gleandb.engine import heap


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux") or heap._TRIM is None, reason="glibc only")
def test_trim_returns_freed_heap_pages():
    # many blocks below the mmap threshold, touched, then freed: glibc keeps them mapped
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = []
    for _ in range(4000):
        p = libc.malloc(32 * 1024)
        ctypes.memset(p, 1, 32 * 1024)
        blocks.append(p)
    keep = libc.malloc(64)  # above them: the heap's top cannot shrink past it
    for p in blocks:
        libc.free(p)
    before = _rss_kib()
    assert heap.trim() is True
    assert before - _rss_kib() > 64 * 1024  # most of the 125 MiB came back
    libc.free(keep)


def test_trim_without_malloc_trim_does_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_TRIM", None)
    assert heap.trim() is False
