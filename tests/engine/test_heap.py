"""heap.trim hands freed heap pages back to the OS (glibc), and is harmless elsewhere."""

import ctypes
import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

from gleandb.engine import heap

PAGE = 4096
M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter


def _resident_pages(libc, blocks: list[int], size: int) -> tuple[int, int]:
    """(resident, total) of the whole pages inside ``blocks`` (mincore; unmapped counts as not
    resident): per address, so other threads' allocations cannot blur it as the process's
    RSS did (a test before it left a background thread allocating)."""
    resident = total = 0
    for p in blocks:
        lo, hi = -(-p // PAGE) * PAGE, (p + size) // PAGE * PAGE
        n = (hi - lo) // PAGE
        if n <= 0:
            continue
        vec = (ctypes.c_ubyte * n)()
        if libc.mincore(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), vec) == 0:
            resident += sum(b & 1 for b in vec)
        else:  # ENOMEM: no longer mapped at all (free shrank the heap's top)
            assert ctypes.get_errno() == errno.ENOMEM
        total += n
    return resident, total


@pytest.mark.skipif(not sys.platform.startswith("linux") or heap._TRIM is None, reason="glibc only")
def test_trim_returns_freed_heap_pages():
    # in a fresh process (what earlier tests left in this one's heap decides where the blocks
    # land), with free()'s own trimming of the heap's top turned off (M_TRIM_THRESHOLD): many
    # blocks below the mmap threshold, touched, freed (glibc keeps them mapped), then trim
    script = textwrap.dedent(f"""
        import ctypes, json, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_heap import M_TRIM_THRESHOLD, _resident_pages
        from gleandb.engine import heap
        libc = ctypes.CDLL(None, use_errno=True)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        assert libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
        blocks = []
        for _ in range(4000):
            p = libc.malloc(32 * 1024)
            ctypes.memset(p, 1, 32 * 1024)
            blocks.append(p)
        for p in blocks:
            libc.free(p)
        freed = _resident_pages(libc, blocks, 32 * 1024)
        assert heap.trim() is True
        print(json.dumps([freed, _resident_pages(libc, blocks, 32 * 1024)]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (resident, total), (after, total2) = json.loads(out.stdout)
    assert total == total2 > 4000 * 7
    assert resident > total // 2  # freed, but still mapped and resident
    assert after < total // 2  # most of the 125 MiB went back to the OS


def test_trim_without_malloc_trim_does_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_TRIM", None)
    assert heap.trim() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mincore, /proc: Linux only")
def test_trim_returns_pages_arrows_pool_kept():
    # Arrow's pool (mimalloc) keeps the pages of freed buffers resident for reuse
    import numpy as np
    import pyarrow as pa

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    size = 256 * 1024
    bufs = [pa.allocate_buffer(size) for _ in range(400)]
    for b in bufs:
        np.frombuffer(b, dtype=np.uint8)[:] = 1  # touched: resident
    addrs = [b.address for b in bufs]
    del b, bufs
    resident, total = _resident_pages(libc, addrs, size)
    if resident <= total // 2:
        pytest.skip(f"this Arrow pool ({pa.default_memory_pool().backend_name}) hands freed pages back by itself")
    heap.trim()
    resident, total = _resident_pages(libc, addrs, size)
    assert resident < total // 2
