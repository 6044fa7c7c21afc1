"""A stable 64-bit hash of many strings at once, computed in numpy.

The id index and the equality index store hashes on disk, so the hash must not
change between processes (Python's ``hash`` is salted per process) and must be
cheap for a million strings (no Python call per string). It is a polynomial hash
of the UTF-8 bytes modulo 2**64, mixed with the length and a splitmix64 finaliser,
evaluated over Arrow's string buffers in chunks (bounded temporary memory).

It is not collision-free (no 64-bit hash is): every user of it verifies the
candidate rows it finds against the real strings, so a collision costs a compare,
never a wrong answer.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["hash_strings", "hash_one", "string_buffers"]

_P = np.uint64(0x100000001B3)  # odd base of the polynomial
_LEN_MIX = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
# strings hashed per numpy pass: bounds the temporaries (a few uint64 per byte)
CHUNK_ROWS = 65_536


def string_buffers(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(utf-8 bytes, int64 offsets of n+1) of a string column, nulls as empty."""
    if isinstance(values, pa.ChunkedArray):
        values = pa.concat_arrays(values.chunks) if values.num_chunks != 1 else values.chunk(0)
    if values.null_count:
        values = pc.fill_null(values, "")
    off_t = np.int64 if pa.types.is_large_string(values.type) else np.int32
    n = len(values)
    if n == 0:
        return np.zeros(0, np.uint8), np.zeros(1, np.int64)
    bufs = values.buffers()
    offs = np.frombuffer(bufs[1], dtype=off_t)[values.offset : values.offset + n + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    data = data[offs[0] : offs[-1]]
    return data, offs - offs[0]


def _finalise(h: np.ndarray, lens: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h ^ (lens.astype(np.uint64) * _LEN_MIX)
        h ^= h >> np.uint64(30)
        h *= _M1
        h ^= h >> np.uint64(27)
        h *= _M2
        h ^= h >> np.uint64(31)
    return h


def _hash_chunk(values: pa.Array) -> np.ndarray:
    data, offs = string_buffers(values)
    n = len(offs) - 1
    lens = np.diff(offs)
    if len(data) == 0:
        return _finalise(np.zeros(n, np.uint64), lens)
    max_len = int(lens.max())
    with np.errstate(over="ignore"):
        powers = np.empty(max_len, np.uint64)
        powers[0] = 1
        if max_len > 1:
            powers[1:] = np.cumprod(np.full(max_len - 1, _P, np.uint64))
        owner = np.repeat(np.arange(n), lens)
        pos_from_end = offs[1:][owner] - 1 - np.arange(len(data), dtype=np.int64)
        contrib = (data.astype(np.uint64) + np.uint64(1)) * powers[pos_from_end]
    del owner, pos_from_end
    starts = offs[:-1]
    nonempty = lens > 0
    sums = np.zeros(n, np.uint64)
    if nonempty.any():
        # reduceat sums [start_i, start_{i+1}); empty strings are left out of the starts
        sums[nonempty] = np.add.reduceat(contrib, starts[nonempty], dtype=np.uint64)
    return _finalise(sums, lens)


_MASK = (1 << 64) - 1


def hash_one(s: str) -> int:
    """``hash_strings`` of one string, in plain Python (cheaper than numpy for a few)."""
    b = s.encode()
    h = 0
    p = int(_P)
    for x in b:
        h = (h * p + x + 1) & _MASK
    h ^= (len(b) * int(_LEN_MIX)) & _MASK
    h ^= h >> 30
    h = (h * int(_M1)) & _MASK
    h ^= h >> 27
    h = (h * int(_M2)) & _MASK
    h ^= h >> 31
    return h


# below this many strings, hash_strings loops in Python (numpy's fixed costs dominate)
SMALL = 8


def hash_strings(values: pa.Array | pa.ChunkedArray | Iterable[str]) -> np.ndarray:
    """uint64 hash of each string (a null hashes as the empty string)."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = list(values)
        if len(values) <= SMALL:
            return np.array([hash_one(v or "") for v in values], dtype=np.uint64)
        values = pa.array(values, pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = pa.concat_arrays(values.chunks) if values.num_chunks != 1 else (
            values.chunk(0) if values.num_chunks else pa.array([], pa.string()))
    n = len(values)
    if n <= CHUNK_ROWS:
        return _hash_chunk(values)
    return np.concatenate([_hash_chunk(values.slice(lo, CHUNK_ROWS)) for lo in range(0, n, CHUNK_ROWS)])
