"""``pages.release`` drops a read-only file mapping's pages from the resident set and
nothing else: the bytes read afterwards are the same, and memory that is not such a
mapping (where MADV_DONTNEED would lose data) is never touched."""

from __future__ import annotations

import mmap
import sys

import numpy as np
import pytest

from gleandb.index import pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc/self/maps: Linux")


def _rss_file_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile:"))


def test_release_drops_mapped_pages_and_keeps_the_bytes(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, size=64 << 20, dtype=np.uint8)
    path = tmp_path / "f.bin"
    data.tofile(path)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    arr = np.frombuffer(mm, dtype=np.uint8)
    assert int(arr.sum(dtype=np.int64)) == int(data.sum(dtype=np.int64))  # every page resident now
    before = _rss_file_kib()
    released = pages.release(arr[1:])  # an unaligned start: only whole pages inside it
    assert released == (len(arr) // mmap.PAGESIZE - 1) * mmap.PAGESIZE
    assert _rss_file_kib() < before - (32 << 10)  # most of the 64 MiB left the resident set
    np.testing.assert_array_equal(arr, data)  # read again from the file: the same bytes
    del arr
    mm.close()


def test_release_leaves_anonymous_and_writable_memory_alone():
    heap = np.arange(4 << 20, dtype=np.int64)
    assert pages.release(heap) == 0
    np.testing.assert_array_equal(heap, np.arange(4 << 20))
    anon = mmap.mmap(-1, 8 << 20)
    arr = np.frombuffer(anon, dtype=np.uint8)
    arr[:] = 7
    assert pages.release(arr) == 0
    assert int(arr.min()) == 7
    del arr
    anon.close()
    assert pages.release(np.zeros(0)) == 0
    assert pages.release(heap[::2]) == 0  # not contiguous: no single byte range
