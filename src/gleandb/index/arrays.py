"""One file holding several numpy arrays, readable without copying.

Layout: 8-byte little-endian header length, a JSON header (free-form ``meta``
plus ``arrays: {name: [dtype, offset, count]}``), then the raw arrays, each
8-byte aligned. ``unpack`` returns views into the buffer it is given, so a
memory-mapped file (``Storage.get_buffer``) is read lazily by the OS rather
than parsed: reopening a store costs no index rebuild and no copy.
"""

from __future__ import annotations

import json

import numpy as np

_ALIGN = 8


def _layout(meta: dict, arrays: dict[str, np.ndarray]) -> tuple[bytes, list[tuple[int, np.ndarray]], int]:
    """The file's first bytes (length + JSON header, padded), each array with its offset
    after them, and the length of that part."""
    layout: dict[str, list] = {}
    offset = 0
    placed = []
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        if a.dtype.byteorder == ">":  # stored little-endian
            a = a.astype(a.dtype.newbyteorder("<"))
        layout[name] = [a.dtype.str, offset, int(a.size)]
        placed.append((offset, a))
        offset += a.nbytes + (-a.nbytes) % _ALIGN
    header = json.dumps({"meta": meta, "arrays": layout}).encode()
    header += b" " * ((-(8 + len(header))) % _ALIGN)
    return len(header).to_bytes(8, "little") + header, placed, offset


def pack_parts(meta: dict, arrays: dict[str, np.ndarray]) -> list:
    """The file's bytes as a list of buffers to write one after another (``pack``'s bytes,
    joined): the arrays' own memory, not a copy. A 800k-row segment's trigram index is
    ~0.5 GiB, which writing through ``pack`` held twice."""
    head, placed, _ = _layout(meta, arrays)
    parts: list = [head]
    for _off, a in placed:
        parts.append(memoryview(a.reshape(-1).view(np.uint8)))
        pad = (-a.nbytes) % _ALIGN
        if pad:
            parts.append(bytes(pad))
    return parts


def pack(meta: dict, arrays: dict[str, np.ndarray]) -> bytearray:
    """The file's bytes, each array copied once into them (a ``tobytes`` per array and a
    join made two copies: a 200k-row segment's trigram index is ~300 MiB)."""
    head, placed, offset = _layout(meta, arrays)
    base = len(head)
    out = bytearray(base + offset)  # zero-filled: the padding
    out[:base] = head
    view = np.frombuffer(out, dtype=np.uint8)
    for off, a in placed:
        view[base + off : base + off + a.nbytes] = a.reshape(-1).view(np.uint8)
    del view
    return out


def unpack(buf) -> tuple[dict, dict[str, np.ndarray]]:
    mv = memoryview(buf)
    hlen = int.from_bytes(mv[:8], "little")
    header = json.loads(bytes(mv[8 : 8 + hlen]))
    base = 8 + hlen
    arrays = {}
    for name, (dtype, offset, count) in header["arrays"].items():
        arrays[name] = np.frombuffer(mv, dtype=np.dtype(dtype), count=count, offset=base + offset)
    return header["meta"], arrays


def row_dtype(n: int) -> np.dtype:
    """The narrowest unsigned type that numbers ``n`` rows: small segments (a commit's
    changed files, a memtable flush) store a posting in 1 byte instead of 2 or 4."""
    return np.dtype(np.uint8 if n <= 1 << 8 else np.uint16 if n <= 1 << 16 else np.uint32)


def offsets(counts: np.ndarray) -> np.ndarray:
    """CSR offsets (len + 1) of ``counts``, as uint32 when they fit (4 bytes an entry
    instead of 8: a small segment's dictionaries are mostly these)."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out.astype(np.uint32) if out[-1] < 1 << 32 else out


def find_sorted(haystack: np.ndarray, needles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``needles`` is in the sorted, distinct ``haystack``: ``(positions,
    found)``; ``positions[i]`` is meaningful only where ``found[i]``. O(needles x log
    haystack): how a few rows are looked up in a long postings list or key array."""
    if not len(haystack):
        return np.zeros(len(needles), dtype=np.int64), np.zeros(len(needles), dtype=bool)
    pos = np.minimum(np.searchsorted(haystack, needles), len(haystack) - 1)
    return pos, haystack[pos] == needles


def ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Positions ``starts[i] .. starts[i] + lens[i] - 1`` for every i, laid end to end."""
    lens = np.asarray(lens, dtype=np.int64)
    ends = np.cumsum(lens)
    total = int(ends[-1]) if len(ends) else 0
    return np.repeat(np.asarray(starts, dtype=np.int64) - (ends - lens), lens) + np.arange(total, dtype=np.int64)
