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


def pack(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    layout: dict[str, list] = {}
    offset = 0
    blobs = []
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        if a.dtype.byteorder == ">":  # stored little-endian
            a = a.astype(a.dtype.newbyteorder("<"))
        layout[name] = [a.dtype.str, offset, int(a.size)]
        raw = a.tobytes()
        pad = (-len(raw)) % _ALIGN
        blobs.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    header = json.dumps({"meta": meta, "arrays": layout}).encode()
    header += b" " * ((-(8 + len(header))) % _ALIGN)
    return b"".join([len(header).to_bytes(8, "little"), header, *blobs])


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
