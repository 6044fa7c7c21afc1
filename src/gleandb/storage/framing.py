"""Framing of records in append-only logs (the WAL, the catalog log, the label log): each record is
``length (u32) | CRC32 (u32) | body``.

A crash can leave the last record of a log half-written. Reading stops at the first
record whose length runs past the end of the file or whose checksum does not match, so
a torn tail is dropped whole and never half-applied; the records before it are intact.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from gleandb.storage.base import LogWriter

HEADER = struct.Struct("<II")


def frame(body: bytes) -> bytes:
    """One record: header + body."""
    return HEADER.pack(len(body), zlib.crc32(body)) + body


def unframe(data: bytes, max_record: int) -> Iterator[bytes]:
    """The bodies of the good records of one log file, in order; stops at the first torn one
    (or one longer than ``max_record``, which only a torn length can produce)."""
    view = memoryview(data)
    pos = 0
    while pos + HEADER.size <= len(view):
        length, crc = HEADER.unpack_from(view, pos)
        start = pos + HEADER.size
        end = start + length
        if length > max_record or end > len(view):
            return  # torn tail: the header was written, the body was not
        body = bytes(view[start:end])
        if zlib.crc32(body) != crc:
            return  # torn or corrupt tail
        yield body
        pos = end


def append_record(writer: "LogWriter", record: bytes, sync: bool = True) -> None:
    """Append framed records (one :func:`frame`, or several concatenated: a group commit) and
    make them durable (``sync``). If that fails, they are all cut off the log before the error
    propagates: they were not acknowledged, so they must never come back on replay, and nothing
    may follow a half-written record."""
    before = writer.size
    try:
        writer.append(record)
        if sync:
            writer.sync()
    except BaseException:
        writer.truncate(before)
        raise
