"""Write-ahead log: checksummed, length-prefixed records, fsync'd before ack.

One WAL record is one write call (a whole batch), so a batch is applied
entirely or not at all. Concurrent writers share an fsync (group commit, see
``CollectionStore.commit``): ``append_many`` writes the records of a whole
group with one write and one sync, and cuts them all off again if either
fails. Records carry *resolved* operations (the full record after merging an
update, or a delete of an id), which makes replay idempotent: replaying a
record over a state that already contains it changes nothing.

Layout: ``<prefix>wal/<first-seq:020d>.log`` files. A log file is never
reopened for append: each open of the store and each memtable freeze starts a
new file, so a torn tail (a crash mid-append) stays at the end of its file,
where replay detects it by length or checksum and drops it.

Record framing: ``u32 payload length | u32 crc32(payload) | payload``;
payload is msgpack (see ``encode_batch``).

On object storage (``storage.appendable`` False) there is no append: each group of writes
(``append_many``, one per group commit) is one object ``<prefix>wal/<first-seq:020d>-g.log``
created with ``If-None-Match``. The name is the group's first seq and nothing else, so a
writer that took over (after the lease expired) and an old writer whose PUT arrives late
race for the same name, and exactly one wins: the loser's write fails, nothing is duplicated.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

import msgpack
import numpy as np

from gleandb.errors import ObjectStoreUnavailableError, WriterFencedError
from gleandb.storage.base import LogWriter, Storage
from gleandb.storage.framing import append_record, frame, unframe

_MAX_RECORD = 1 << 34


@dataclass
class WalBatch:
    """One durable write: puts of full records and deletes of ids."""

    seq: int
    put_ids: list[str] = field(default_factory=list)
    put_rids: list[int] = field(default_factory=list)
    put_embeddings: np.ndarray | None = None  # (n, d) float32
    put_documents: list[str | None] = field(default_factory=list)
    put_metadatas: list[dict | None] = field(default_factory=list)
    put_uris: list[str | None] = field(default_factory=list)
    delete_ids: list[str] = field(default_factory=list)
    # in memory only, never encoded: where the write found its ids when it was resolved
    # (``store.Located``), so applying it need not look them up again; None after replay
    located: Any = field(default=None, repr=False, compare=False)


def encode_batch(b: WalBatch) -> bytes:
    emb = b.put_embeddings
    payload = {
        "s": b.seq,
        "i": b.put_ids,
        "r": b.put_rids,
        "d": int(emb.shape[1]) if emb is not None and emb.size else 0,
        "e": np.ascontiguousarray(emb, dtype="<f4").tobytes() if emb is not None else b"",
        "c": b.put_documents,
        "m": b.put_metadatas,
        "u": b.put_uris,
        "x": b.delete_ids,
    }
    body = msgpack.packb(payload, use_bin_type=True)
    return frame(body)


def decode_batch(body: bytes) -> WalBatch:
    p = msgpack.unpackb(body, raw=False, strict_map_key=False)
    n = len(p["i"])
    emb = None
    if n:
        emb = np.frombuffer(p["e"], dtype="<f4").reshape(n, p["d"]) if p["d"] else np.zeros((n, 0), "f4")
    return WalBatch(
        seq=p["s"],
        put_ids=p["i"],
        put_rids=p["r"],
        put_embeddings=emb,
        put_documents=p["c"],
        put_metadatas=p["m"],
        put_uris=p["u"],
        delete_ids=p["x"],
    )


def iter_records(data: bytes) -> Iterator[WalBatch]:
    """Good records of one log file, in order; stops at the first torn one."""
    for body in unframe(data, _MAX_RECORD):
        yield decode_batch(body)


def log_key(prefix: str, first_seq: int) -> str:
    # the random suffix keeps names unique when a torn-only file holds the same first seq
    return f"{prefix}wal/{first_seq:020d}-{uuid.uuid4().hex[:8]}.log"


def group_key(prefix: str, first_seq: int) -> str:
    """The object of the WAL group starting at ``first_seq`` (object storage)."""
    return f"{prefix}wal/{first_seq:020d}-g.log"


def first_seq_of(key: str) -> int:
    return int(key.rsplit("/", 1)[-1].split("-", 1)[0])


class WriteAheadLog:
    """The appending side of one collection's WAL."""

    def __init__(self, storage: Storage, prefix: str, sync: bool = True):
        self.storage = storage
        self.prefix = prefix
        self.sync_enabled = sync and storage.durable
        self._writer: LogWriter | None = None
        self._key: str | None = None
        # (key, max seq) of files that are closed: deletable once a manifest covers them
        self.closed_files: list[tuple[str, int]] = []
        self._current_max_seq = 0
        self._broken: str | None = None  # object storage: a group's outcome is unknown

    def list_files(self) -> list[str]:
        return [k for k in self.storage.list(f"{self.prefix}wal/") if k.endswith(".log")]

    def replay(self, after_seq: int) -> Iterator[WalBatch]:
        """Every durable batch with seq > after_seq, oldest first."""
        for key in self.list_files():
            max_seq = 0
            for batch in iter_records(self.storage.read_log(key)):
                max_seq = max(max_seq, batch.seq)
                if batch.seq > after_seq:
                    yield batch
            self.closed_files.append((key, max_seq))

    def append(self, batch: WalBatch) -> None:
        self.append_many([batch])

    def append_many(self, batches: list[WalBatch]) -> None:
        """Make ``batches`` (consecutive seqs, in order) durable together: one record per batch
        and one sync on a file, one object (one PUT) on object storage. All or none: on failure
        nothing of the group stays (it is cut off the file, or its object was never created)
        and the error propagates."""
        if not batches:
            return
        if not self.storage.appendable:
            if self._broken:
                raise ObjectStoreUnavailableError(self._broken)
            key = group_key(self.prefix, batches[0].seq)
            data = b"".join(encode_batch(b) for b in batches)
            try:
                created = self.storage.put_if_absent(key, data)
            except ObjectStoreUnavailableError:
                # no answer, so it may have landed: take it back, or write nothing more
                try:
                    self.storage.delete(key)
                except Exception:
                    self._broken = (f"a write to WAL object {key} may or may not have been applied and could "
                                    f"not be undone (the object store did not answer); reopen the store")
                raise
            if not created:
                raise WriterFencedError(
                    f"WAL object {key} (writes from seq {batches[0].seq}) was created by another writer "
                    f"(conditional create refused): another writer holds the store; this write was not applied")
            self.closed_files.append((key, batches[-1].seq))
            self._current_max_seq = batches[-1].seq
            return
        if self._writer is None:
            self._key = log_key(self.prefix, batches[0].seq)
            self._writer = self.storage.open_log(self._key)
        data = encode_batch(batches[0]) if len(batches) == 1 else b"".join(encode_batch(b) for b in batches)
        append_record(self._writer, data, sync=self.sync_enabled)
        self._current_max_seq = batches[-1].seq

    def rotate(self) -> None:
        """Close the current file; the next append starts a new one."""
        if self._writer is not None:
            self._writer.close()
            self.closed_files.append((self._key, self._current_max_seq))
            self._writer = None
            self._key = None

    def truncate_through(self, seq: int, needed: list[tuple[int, int]] = ()) -> None:
        """Delete closed files whose records are all covered by a manifest at ``seq``,
        except those holding records in a range ``(after, upto]`` of ``needed`` (the WAL
        tails of retained versions)."""
        keep = []
        for key, max_seq in self.closed_files:
            first = first_seq_of(key)
            if max_seq <= seq and not any(first <= upto and max_seq > after for after, upto in needed):
                self.storage.delete(key)
            else:
                keep.append((key, max_seq))
        self.closed_files = keep

    def read_range(self, after: int, upto: int) -> Iterator[WalBatch]:
        """Durable batches with ``after < seq <= upto``, oldest first (a version's tail)."""
        files = self.list_files()
        firsts = [first_seq_of(k) for k in files]
        for i, key in enumerate(files):
            if firsts[i] > upto:
                break
            if i + 1 < len(files) and firsts[i + 1] <= after + 1:
                continue  # every record of this file precedes the next file's first
            for batch in iter_records(self.storage.read_log(key)):
                if after < batch.seq <= upto:
                    yield batch

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
