"""One collection's data: WAL → memtable → immutable segments → manifest.

State is a tuple of ``SegView`` (segment + delete mask + lifecycle state).
Every change replaces the tuple (and any mask it changes) instead of mutating
it, so a reader takes ``snapshot()`` once and reads a consistent version
without locks while writes, flushes and compactions go on.

Lifecycle of rows:

1. ``commit`` resolves the request against the live data (``gleandb.engine.writes``:
   add skips existing ids, update/upsert merge; each id is located once, and the
   positions travel on the batch), appends one WAL batch (fsync) and applies it:
   the batch becomes a small in-memory ``mem`` segment, and the old versions
   of the ids it touches are masked as deleted where they live. Concurrent
   writers commit as a group (LevelDB's writer queue): one leader resolves and
   applies every queued request in order, writes all their batches with one
   fsync, and only then publishes the new version to readers, who never wait
   for the fsync and never see a write before it is durable.
2. When the memtable passes ``memtable_max_rows`` (or on ``flush``), its
   segments are merged into one ``frozen`` segment and a background job builds
   its vector index, writes its files, and publishes a manifest whose WAL
   position covers it; the WAL files it covers are then deleted.
3. Compaction merges small segments and rewrites those with many deleted
   rows, dropping deleted rows, and publishes a new manifest; the old files go.

WAL batches hold resolved full records and deletes, so replaying one over a
state that already reflects it changes nothing. That is why a manifest may
carry delete masks newer than its WAL position, and why recovery is simply
"load the newest manifest, replay the WAL after its position".
"""

from __future__ import annotations

import base64
import contextvars
import copy
import functools
import logging
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

import io
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gleandb import budgets, deadlines
from gleandb.errors import CorruptStoreError, InvalidArgumentError, ReadOnlyStoreError
from gleandb.engine import gc, heap
from gleandb.engine import manifest as mf
from gleandb.engine.arena import VectorArena
from gleandb.engine.segment import Segment, unpack_metadata
from gleandb.engine.wal import WalBatch, WriteAheadLog, encode_batch, first_seq_of, iter_records, log_key
from gleandb.engine.worker import BackgroundWorker
from gleandb.index.ids import IdQuery
from gleandb.index.tokenize import FullTextConfig
from gleandb.index.vector import VectorIndex, build_params

log = logging.getLogger("gleandb.engine")

MEM, FROZEN, PERSISTED = "mem", "frozen", "persisted"
# longest a write waits for queued persists before freezing anyway (see CollectionStore._freeze)
FREEZE_STALL_MAX_S = 60.0
# a flush, freeze or compaction of fewer rows frees too little to be worth ``heap.trim``
# (each call walks the heap: a few ms, which a fork chain's per-commit flushes noticed)
TRIM_MIN_ROWS = 8_192
# a memtable's vectors move into a VectorArena once it holds this many rows (or an eighth of
# memtable_max_rows, if less): below it, merging copies little, and small collections
# (an agent memory's users) do not each map a buffer sized for a full memtable
ARENA_MIN_ROWS = 8_192


def _json_floor(table: pa.Table, rows: pa.Array, names: list[str], n_floats: int) -> int:
    """A lower bound of the JSON size of ``rows`` of ``table``, computed before they are
    copied: their string bytes (ids, documents, uris; JSON adds quotes) and two bytes a
    float (a digit and a separator)."""
    n = 2 * n_floats
    for name in ("id", "document", "uri"):
        if name in names:
            n += pc.sum(pc.binary_length(table.column(name)).take(rows)).as_py() or 0
    return n


@dataclass
class StoreParams:
    space: str = "l2"
    M: int = 16
    ef_construction: int = 100
    ef_search: int = 100
    memtable_max_rows: int = 50_000
    memtable_max_segments: int = 16
    index_min_rows: int = 2_000
    # a write that fills the memtable waits while this many persists are queued (see _freeze)
    max_frozen: int = 2
    compaction_min_segments: int = 4
    compaction_deleted_fraction: float = 0.2
    # compaction adds rows to the largest segment's graph instead of rebuilding it (when it can)
    compaction_extend: bool = True
    # None, or "sq8": the graph walks 8-bit codes, candidates are re-scored exactly
    quantization: str | None = None
    wal_sync: bool = True
    fulltext: FullTextConfig = field(default_factory=FullTextConfig)
    # versions (manifests) kept for time travel: the newest N, plus any younger than S seconds
    version_retention_count: int = 1
    version_retention_seconds: float = 0.0


@dataclass(frozen=True)
class SegView:
    seg: Segment
    deleted: np.ndarray | None  # bool per row; None when nothing is deleted
    n_deleted: int
    state: str
    frozen_seq: int = 0  # for frozen segments: WAL position they cover

    @property
    def n_live(self) -> int:
        return self.seg.n - self.n_deleted

    def live_mask(self) -> np.ndarray | None:
        return None if self.deleted is None else ~self.deleted

    @functools.cached_property
    def deleted_rows(self) -> np.ndarray:
        """The deleted rows, sorted (computed once per version of the view: a view is
        immutable, and a query asking per row would cost O(segment rows) each time)."""
        if self.deleted is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.deleted)

    @functools.cached_property
    def memo(self) -> dict:
        """Figures derived from this version of the view, kept while it lives (BM25's
        live-row statistics: ``retrieval.rankers``)."""
        return {}


@dataclass(frozen=True)
class Located:
    """Where some ids live in one head version ``views``: (view index, row) of each id
    found; the other ``asked`` ids have no live row there. Made under the write lock by a
    write's resolution and carried on its batch (``WalBatch.located``): ``_apply`` reuses it
    while the head is still ``views`` (the same tuple, so the same rows are live)."""

    views: tuple
    found: dict
    asked: frozenset

    def existing(self) -> dict[str, tuple[SegView, int]]:
        """id -> (view, row) of the ids found (``read_records``'s input)."""
        return {id_: (self.views[vi], row) for id_, (vi, row) in self.found.items()}


@dataclass
class Hydrated:
    ids: list[str] = field(default_factory=list)
    embeddings: np.ndarray | None = None
    documents: list | None = None
    metadatas: list | None = None
    uris: list | None = None


def _decode_tail(text: str) -> WalBatch:
    """A fork's inline WAL tail (base64 of one WAL record) as a batch."""
    batches = list(iter_records(base64.b64decode(text)))
    if len(batches) != 1:
        raise CorruptStoreError("a fork's inline WAL tail in the catalog is unreadable")
    return batches[0]


def _new_name(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:16]}"


# the most requests one leader commits at once (LevelDB caps a group's bytes instead; a
# request's size is only known once it is resolved, which the leader does)
MAX_GROUP = 128


class _Writer:
    """One ``commit`` call waiting in the writer queue; ``cv`` wakes it alone (when its group
    is done, or when it reaches the front and leads), never the whole queue."""

    __slots__ = ("build", "ctx", "batch", "error", "done", "cv")

    def __init__(self, build, mutex: threading.Lock):
        self.build = build
        # resolved in the caller's context even when another thread leads the group, so the
        # caller's deadline and response budget (contextvars) apply to its own request
        self.ctx = contextvars.copy_context()
        self.batch: WalBatch | None = None
        self.error: BaseException | None = None
        self.done = False
        self.cv = threading.Condition(mutex)


def _copy_error(e: BaseException) -> BaseException:
    """The error a member of a failed group raises: a copy of the leader's (same class and
    message), so threads never share one traceback."""
    try:
        c = copy.copy(e)
    except Exception:
        return e
    c.__cause__, c.__suppress_context__ = e.__cause__, e.__suppress_context__
    return c


class CollectionStore:
    def __init__(
        self,
        storage,
        prefix: str,
        params: StoreParams,
        worker: BackgroundWorker,
        refs: gc.FileReferences | None = None,
        segment_cache=None,
        base: dict | None = None,
        base_tail: str | None = None,
        on_own_manifest: Callable[[], None] | None = None,
        read_only: bool = False,
    ):
        self.storage = storage
        # a follower (query node): reads the writer's files, never writes, deletes or flushes
        self.read_only = read_only
        self.prefix = prefix
        self.params = params
        self.worker = worker
        # shared-file references of every live collection (the engine's); a private one when alone
        self.refs = refs if refs is not None else gc.FileReferences()
        # segment directory -> Segment already loaded in this process (forks share them)
        self._segment_cache = segment_cache
        self._seg_dirs: dict[str, str] = {}  # segment name -> directory key prefix
        self._manifests: list[mf.Manifest] = []  # retained versions, oldest first
        self._lock = threading.RLock()
        # group commit: the writer queue, and the leader's state while its group is in flight
        self._queue: deque[_Writer] = deque()
        self._queue_mu = threading.Lock()
        self._pending = False  # a group is applied to the head but not yet durable
        self._leader: int | None = None  # thread id of that group's leader
        self._visible: tuple[SegView, ...] = ()  # what readers see (see ``_views``)
        self._views: tuple[SegView, ...] = ()
        self._visible_dimension: int | None = None
        self.seq = 0
        self.next_rid = 0
        self.dimension = None
        self.version = 0
        self.persisted_position = 0
        self._written_deletes: dict[str, tuple[int, str | None]] = {}
        self._closed = False
        self._durable = storage.durable
        self.wal = WriteAheadLog(storage, prefix, sync=params.wal_sync)
        self._compaction_pending = False
        self._persists_queued = 0  # persist jobs submitted and not finished (see ``_freeze``)
        # where the memtable's vectors go once it is big enough (``_memtable_vectors``)
        self._arena: VectorArena | None = None
        self._persisted = threading.Condition(self._lock)  # notified as each one finishes
        self._base = base  # a fork's first manifest, held by the catalog (see manifest.load_all)
        self._base_unwritten = False
        # a fork's small unflushed tail (seq 1), held by the catalog instead of a WAL file
        self._base_tail = _decode_tail(base_tail) if base_tail else None
        self._on_own_manifest = on_own_manifest  # then the catalog's copy may go
        # activity counters since open (exported as metrics by the server)
        self.stats = {"flushes": 0, "rows_flushed": 0, "compactions": 0, "rows_compacted": 0,
                      "wal_records": 0, "wal_syncs": 0, "compactions_extended": 0}
        self._open()

    # ------------------------------------------------------------------ open

    def _open(self) -> None:
        self._manifests = mf.load_all(self.storage, self.prefix, self._base)
        self._base_unwritten = self._base is not None and not self.storage.list(f"{self.prefix}manifests/")
        m = self._manifests[-1] if self._manifests else mf.Manifest()
        self.version = m.version
        self.persisted_position = m.wal_position
        self.seq = m.wal_position
        self.next_rid = m.next_rid
        self.dimension = m.dimension
        views = []
        for e in m.segments:
            self._seg_dirs[e.name] = mf.segment_dir(self.prefix, e)
            seg = self._load_segment(e, m.dimension or 0)
            deleted = self._entry_mask(e, seg.n)
            views.append(SegView(seg, deleted, e.n_deleted, PERSISTED))
            self._written_deletes[e.name] = (e.n_deleted, e.deletes)
        self._views = tuple(views)
        tail = self._base_tail
        if tail is not None and m.wal_position < tail.seq:
            # the catalog's tail is part of the newest version (replaying it again, should
            # the WAL hold it too, changes nothing)
            self._apply(tail)
        for batch in self.wal.replay(self.seq):
            self._apply(batch)
        if self.read_only:
            return  # a follower never writes: the writer finishes any hand-over
        if not self._base_unwritten and (self._base is not None or tail is not None):
            # a crash after the collection's first manifest file, before the catalog forgot
            # its copy of version 1: finish the hand-over
            self._hand_over(self._manifests)
        if self._durable:
            self.retire()
        if self._memtable_rows() >= self.params.memtable_max_rows:
            self._freeze(stall=False)

    def _hand_over(self, manifests: list[mf.Manifest]) -> None:
        """Make the collection's own files hold everything the catalog's copy of version 1
        and its inline tail held, then let the catalog forget them."""
        self._save_tail(manifests)
        self._forget_base()

    def _save_tail(self, manifests: list[mf.Manifest]) -> None:
        """Write the catalog's inline tail as a WAL file of its own (synced) when one of
        ``manifests`` needs it (its range ``(wal_position, seq]`` holds the tail's seq) and
        no WAL file holds it yet (a crash after writing it, before the manifest)."""
        tail = self._base_tail
        if tail is None or not self._durable:
            return
        if not any(x.wal_position < tail.seq <= x.seq for x in manifests):
            return
        if any(first_seq_of(k) <= tail.seq <= last for k, last in self.wal.closed_files):
            return
        key = log_key(self.prefix, tail.seq)
        w = self.storage.open_log(key)
        try:
            w.append(encode_batch(tail))
            w.sync()
        finally:
            w.close()
        self.wal.closed_files.append((key, tail.seq))

    def _forget_base(self) -> None:
        """The collection's files hold version 1 and its tail now (or nothing needs them):
        drop the catalog's copies (harmless if that fails: the files win, and the next
        open tries again)."""
        self._base = None
        self._base_tail = None
        if self._on_own_manifest is not None:
            try:
                self._on_own_manifest()
            except Exception as e:
                log.warning("could not drop %s's first manifest from the catalog: %s", self.prefix, e)

    def _entry_mask(self, e: mf.SegmentEntry, n: int) -> np.ndarray | None:
        """The delete mask of manifest entry ``e`` (inline, a file, or none)."""
        if e.mask is not None:
            return mf.unpack_mask(e.mask, n)
        return self._load_mask(e.deletes, n) if e.deletes else None

    def _load_mask(self, key: str, n: int) -> np.ndarray:
        """The delete mask file ``key`` as a bool per row. Mask files are immutable and masks
        copy-on-write, so forks opened in this process share one array per file."""
        cache = self._segment_cache
        mask = cache.get("mask:" + key) if cache is not None else None
        if mask is None or len(mask) != n:
            rows = np.load(io.BytesIO(self.storage.get(key)))
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            if cache is not None and self._durable:
                cache["mask:" + key] = mask
        return mask

    def _seg_prefix(self, name: str) -> str:
        """Where segment ``name`` lives: new segments go to the shared pool, so forks can name them."""
        return self._seg_dirs.get(name) or f"{mf.SEGMENTS}{name}/"

    def _load_segment(self, e: mf.SegmentEntry, dim: int) -> Segment:
        key = self._seg_dirs[e.name]
        cache = self._segment_cache
        seg = cache.get(key) if cache is not None else None
        if seg is None or seg.n != e.rows or seg.space != self.params.space:
            seg = Segment.read(self.storage, key, e.name, self.params.space, e.index, dim)
            self._cache_segment(seg)
        return seg

    def _cache_segment(self, seg: Segment) -> None:
        if self._segment_cache is not None and self._durable:
            self._segment_cache[self._seg_prefix(seg.name)] = seg

    @property
    def _views(self) -> tuple[SegView, ...]:
        """The newest version (the write side's head). Changed only under ``self._lock``; every
        change is visible to readers at once, except while a group commit is in flight: its
        batches are applied to the head (the group's later requests are resolved against
        them) and reach readers only once they are durable."""
        return self._head

    @_views.setter
    def _views(self, views: tuple[SegView, ...]) -> None:
        self._head = views
        if not self._pending:
            self._visible = views

    @property
    def dimension(self) -> int | None:
        """The collection's embedding dimension (None until the first row); like the views,
        the one a group in flight sets is seen by readers only once the group is durable."""
        if self._pending and self._leader != threading.get_ident():
            return self._visible_dimension
        return self._dimension

    @dimension.setter
    def dimension(self, dim: int | None) -> None:
        self._dimension = dim
        if not self._pending:
            self._visible_dimension = dim

    @property
    def owner_id(self) -> str:
        return self.prefix.rstrip("/").rsplit("/", 1)[-1]

    # -------------------------------------------------------------- versions

    def retire(self, keep_count: int | None = None, keep_seconds: float | None = None) -> int:
        """Drop versions retention no longer keeps, then every file (segment, mask, WAL)
        that no retained version of any collection needs. Returns bytes freed."""
        with self._lock:
            if not self._durable or self.read_only:
                return 0
            count = self.params.version_retention_count if keep_count is None else keep_count
            seconds = self.params.version_retention_seconds if keep_seconds is None else keep_seconds
            keep = mf.retained(self._manifests, count, seconds)
            freed = 0
            if len(keep) < len(self._manifests):
                gone = [m for m in self._manifests if m not in keep]
                freed += gc.size_of_keys(self.storage, [mf.manifest_key(self.prefix, m.version) for m in gone])
                mf.prune(self.storage, self.prefix, self._manifests, keep)
                self._manifests = keep
            dead = self.refs.set(self.prefix, mf.referenced_keys(self.prefix, self._manifests))
            freed += gc.delete_keys(self.storage, dead)
            before = gc.size_of_keys(self.storage, [k for k, _ in self.wal.closed_files])
            self.wal.truncate_through(self.persisted_position, self._wal_needed())
            freed += before - gc.size_of_keys(self.storage, [k for k, _ in self.wal.closed_files])
            return freed

    def _wal_needed(self) -> list[tuple[int, int]]:
        return [(m.wal_position, m.seq) for m in self._manifests if m.seq > m.wal_position]

    def live_keys(self) -> set[str]:
        """Shared files this open store uses right now (including ones not yet published)."""
        with self._lock:
            out = {self._seg_prefix(v.seg.name) for v in self._views if v.state == PERSISTED}
            out.update(k for _n, k in self._written_deletes.values() if k)
            return out

    def versions(self) -> list[dict]:
        """Retained versions, oldest first: what each manifest holds (its WAL tail included)."""
        with self._lock:
            out = []
            for m in self._manifests:
                out.append(
                    {
                        "version": m.version,
                        "created_at": m.created_at,
                        "records": m.records + self._tail_delta(m),
                        "segments": len(m.segments),
                        "segment_names": [e.name for e in m.segments],
                        "forked_from": m.forked_from,
                    }
                )
            return out

    def _tail_delta(self, m: mf.Manifest) -> int:
        """Rows the WAL tail of version ``m`` adds to what its segments hold."""
        if m.seq <= m.wal_position:
            return 0
        tail = self.version_tail(m)
        if tail is None:
            return 0
        in_segments = set()
        query = IdQuery(list(set(tail.put_ids) | set(tail.delete_ids)))
        for e in m.segments:
            seg = self._load_segment_readonly(m, e)
            deleted = None
            if e.mask is not None:
                deleted = set(np.flatnonzero(mf.unpack_mask(e.mask, seg.n)).tolist())
            elif e.deletes:
                deleted = set(np.load(io.BytesIO(self.storage.get(e.deletes))).tolist())
            qi, rows = seg.find_ids(query)
            for q, row in zip(qi.tolist(), rows.tolist()):
                if deleted is None or row not in deleted:
                    in_segments.add(query.ids[q])
        return len(set(tail.put_ids) - in_segments) - len(set(tail.delete_ids) & in_segments)

    def _load_segment_readonly(self, m: mf.Manifest, e: mf.SegmentEntry) -> Segment:
        key = mf.segment_dir(self.prefix, e)
        cache = self._segment_cache
        seg = cache.get(key) if cache is not None else None
        if seg is None:
            seg = Segment.read(self.storage, key, e.name, self.params.space, e.index, m.dimension or 0)
        return seg

    def version_tail(self, m: mf.Manifest) -> WalBatch | None:
        """The WAL records of version ``m`` (``wal_position < seq <= m.seq``) as one batch."""
        return self._merged_tail(m.wal_position, m.seq)

    def _merged_tail(self, after: int, upto: int) -> WalBatch | None:
        puts: dict[str, tuple] = {}
        deletes: set[str] = set()
        batches = list(self.wal.read_range(after, upto))
        inline = self._base_tail
        if inline is not None and after < inline.seq <= upto and not any(b.seq == inline.seq for b in batches):
            batches.insert(0, inline)
        for b in batches:
            for id_ in b.delete_ids:
                puts.pop(id_, None)
                deletes.add(id_)
            for j, id_ in enumerate(b.put_ids):
                deletes.discard(id_)
                puts[id_] = (b.put_rids[j], b.put_embeddings[j], b.put_documents[j], b.put_metadatas[j], b.put_uris[j])
        if not puts and not deletes:
            return None
        out = WalBatch(seq=0)
        out.put_ids = list(puts)
        out.put_rids = [p[0] for p in puts.values()]
        out.put_embeddings = (
            np.stack([p[1] for p in puts.values()]).astype(np.float32) if puts else None
        )
        out.put_documents = [p[2] for p in puts.values()]
        out.put_metadatas = [p[3] for p in puts.values()]
        out.put_uris = [p[4] for p in puts.values()]
        out.delete_ids = sorted(deletes)
        return out

    def fork_source(self, version: int | None) -> tuple[mf.Manifest, WalBatch | None]:
        """What a fork copies: a manifest (segments named by absolute path) and the WAL tail
        on top of it, for the current state (``version=None``) or a retained version.
        Call with ``self._lock`` held until the fork's references are registered."""
        self._check_open()
        if version is None:
            m = self._manifests[-1] if self._manifests else mf.Manifest(dimension=self.dimension)
            tail = self._merged_tail(m.wal_position, self.seq)
            next_rid, dimension = self.next_rid, self.dimension
        else:
            found = [x for x in self._manifests if x.version == version]
            if not found:
                kept = [x.version for x in self._manifests]
                raise InvalidArgumentError(
                    f"version {version!r} is not retained; retained versions: {kept} "
                    "(see Settings version_retention_count / version_retention_seconds)"
                )
            m = found[0]
            tail = self.version_tail(m)
            next_rid, dimension = m.next_rid, m.dimension
        if tail is not None and tail.put_ids:
            next_rid = max(next_rid, max(tail.put_rids) + 1)
            dimension = dimension or int(tail.put_embeddings.shape[1])
        entries = [
            mf.SegmentEntry(e.name, e.rows, e.index, e.deletes, e.n_deleted, mf.segment_dir(self.prefix, e), e.mask)
            for e in m.segments
        ]
        fork = mf.Manifest(
            version=1,
            wal_position=0,
            dimension=dimension,
            next_rid=next_rid,
            segments=entries,
            seq=1 if tail is not None else 0,
            forked_from={"version": m.version},
        )
        return fork, tail

    def clone_memory_state(self) -> tuple[tuple[SegView, ...], int, int | None]:
        """Views, next rid and dimension for a fork of a store with no files (ephemeral):
        segments are immutable and masks copy-on-write, so the fork can share both."""
        self._check_open()
        views = tuple(
            SegView(v.seg, v.deleted, v.n_deleted, MEM if v.state == FROZEN else v.state) for v in self._views
        )
        return views, self.next_rid, self.dimension

    def adopt_memory_state(self, views: tuple[SegView, ...], next_rid: int, dimension: int | None) -> None:
        with self._lock:
            self._views = views
            self.next_rid = next_rid
            self.dimension = dimension

    # ------------------------------------------------------------- locations

    @staticmethod
    def locate(views: Sequence[SegView], query: IdQuery) -> dict[str, tuple[int, int]]:
        """id -> (view index, row) of the live row of each asked id that exists.

        Asks each segment's id index (O(ids asked) per segment, newest first); an id
        has at most one live row, so the search stops once every id is found."""
        out: dict[str, tuple[int, int]] = {}
        for vi in range(len(views) - 1, -1, -1):
            if len(out) == len(query):
                break
            v = views[vi]
            qi, rows = v.seg.find_ids(query)
            if not len(rows):
                continue
            if v.deleted is not None:
                keep = ~v.deleted[rows]
                qi, rows = qi[keep], rows[keep]
            ids = query.ids
            for q, r in zip(qi.tolist(), rows.tolist()):
                out[ids[q]] = (vi, r)
        return out

    def _view_by_name(self) -> dict[str, tuple[int, SegView]]:
        return {v.seg.name: (i, v) for i, v in enumerate(self._views)}

    def _memtable_rows(self) -> int:
        return sum(v.seg.n for v in self._views if v.state == MEM)

    # ----------------------------------------------------------------- write

    def resolve(self, ids: Sequence[str]) -> Located:
        """Where each of ``ids`` lives in the head now. A write's build attaches it to its
        batch (``WalBatch.located``) so that the ids are looked up once per write."""
        with self._lock:
            views = self._views
            query = IdQuery(ids)
            return Located(views, self.locate(views, query), frozenset(query.ids))

    def existing(self, ids: Sequence[str]) -> dict[str, tuple[SegView, int]]:
        """Live location (view, row) of each id that exists."""
        return self.resolve(ids).existing()

    def read_records(self, found: dict[str, tuple[SegView, int]]) -> dict[str, dict]:
        """Full current records of located ids (for merging updates)."""
        groups: dict[str, list[str]] = {}
        for id_, (view, _row) in found.items():
            groups.setdefault(view.seg.name, []).append(id_)
        out: dict[str, dict] = {}
        for ids in groups.values():
            view = found[ids[0]][0]
            rows = np.array([found[i][1] for i in ids], dtype=np.int64)
            seg = view.seg
            emb = seg.embeddings(rows)
            docs = seg.take_column("document", rows)
            metas = seg.take_metadatas(rows)
            uris = seg.take_column("uri", rows)
            rids = seg.rids[rows]
            for j, id_ in enumerate(ids):
                out[id_] = {
                    "rid": int(rids[j]),
                    "embedding": emb[j],
                    "document": docs[j],
                    "metadata": metas[j],
                    "uri": uris[j],
                }
        return out

    def check_dimension(self, dim: int) -> None:
        if self.dimension is not None and dim != self.dimension:
            raise InvalidArgumentError(
                f"Collection expecting embedding with dimension of {self.dimension}, got {dim}"
            )

    def commit(self, build: Callable[["CollectionStore"], WalBatch | None]) -> WalBatch | None:
        """Resolve a write with ``build``, log it durably and apply it; returns its batch once
        it is durable and visible (``seq`` is filled in here).

        ``build`` resolves the request against the current data (it may call ``resolve``,
        ``existing``, ``read_records``, ``snapshot``, ``next_rid``; ``gleandb.engine.writes``
        holds chromadb's writes) and raises for bad input before anything is written. A
        batch that carries its ``resolve`` result (``located``) is applied without looking
        its ids up again. Group commit, as LevelDB's ``DBImpl::Write``: a call joins the writer queue;
        the call at its front leads, committing every queued call (``_commit_group``) while the
        calls that arrive meanwhile queue up for the next group. Queue order is commit order.
        """
        me = _Writer(build, self._queue_mu)
        with self._queue_mu:
            self._queue.append(me)
            while not me.done and self._queue[0] is not me:
                me.cv.wait()
        if not me.done:  # the front of the queue: lead a group
            group = [me]
            try:
                with self._lock:
                    with self._queue_mu:
                        group = [self._queue[i] for i in range(min(len(self._queue), MAX_GROUP))]
                    self._commit_group(group)
            except BaseException as e:
                for w in group:
                    if w.error is None:
                        w.batch, w.error = None, (e if w is me else _copy_error(e))
            finally:
                with self._queue_mu:
                    for w in group:
                        self._queue.popleft()
                        w.done = True
                        w.cv.notify()
                    if self._queue:
                        self._queue[0].cv.notify()  # it leads the next group
        if me.error is not None:
            raise me.error
        return me.batch

    def _commit_group(self, group: list[_Writer]) -> None:
        """Resolve and apply each member in queue order (each sees the ones before it), write
        all their batches with one fsync, then publish the new version to readers.

        A member whose ``build`` raises fails alone, having changed nothing. A failed WAL
        write or sync fails the whole group: the log is cut back (``framing.append_record``)
        and the head goes back to the version before the group, so nothing of it remains."""
        self._check_open()
        head, seq, next_rid, dimension = self._head, self.seq, self.next_rid, self.dimension
        arena = self._arena
        arena_used = arena.used if arena is not None else 0
        self._pending, self._leader = True, threading.get_ident()
        batches: list[WalBatch] = []
        try:
            for w in group:
                try:
                    batch = w.ctx.run(w.build, self)
                    if batch is not None and batch.put_ids:
                        self.check_dimension(batch.put_embeddings.shape[1])
                except Exception as e:  # bad input: only this request fails
                    w.error = e
                    continue
                w.batch = batch
                if batch is None or (not batch.put_ids and not batch.delete_ids):
                    if batch is not None:
                        batch.located = None  # nothing to apply: let its views go
                    continue
                batch.seq = self.seq + 1
                self._apply(batch)
                batches.append(batch)
            if batches and self._durable:
                try:
                    self.wal.append_many(batches)
                except BaseException:
                    # cut back already; should that have failed, never append after a torn record
                    self.wal.rotate()
                    raise
                self.stats["wal_records"] += len(batches)
                self.stats["wal_syncs"] += 1
        except BaseException:
            self._pending, self._leader = False, None
            self._views = head  # the version before the group, to readers and writers alike
            self.seq, self.next_rid, self.dimension = seq, next_rid, dimension
            self._arena = arena  # its rows the group took are viewed by no version left
            if arena is not None:
                arena.rollback(arena_used)
            raise
        self._pending, self._leader = False, None
        self._views, self.dimension = self._head, self._dimension  # durable: now readers see it
        if self._memtable_rows() >= self.params.memtable_max_rows:
            self._freeze()

    def _where(self, batch: WalBatch) -> dict[str, tuple[int, int]]:
        """(view index, row) of the live row of each id ``batch`` writes or deletes. Positions
        its resolution found are reused while the head is the version they were found in (a
        replayed or followed batch has none; a later member of a group commit resolves after
        the earlier ones are applied); only ids it never asked about are looked up."""
        ids = list(batch.put_ids) + list(batch.delete_ids)
        loc, batch.located = batch.located, None  # used once; holds old views otherwise
        if not isinstance(loc, Located) or loc.views is not self._views:
            return self.locate(self._views, IdQuery(ids))
        out = {id_: loc.found[id_] for id_ in ids if id_ in loc.found}
        rest = [id_ for id_ in ids if id_ not in loc.asked]
        if rest:
            out.update(self.locate(self._views, IdQuery(rest)))
        return out

    def _apply(self, batch: WalBatch) -> None:
        where = self._where(batch)
        views = list(self._views)
        masks: dict[int, np.ndarray] = {}
        # the live rows of the ids this batch writes or deletes stop being live
        for i, row in where.values():
            if i not in masks:
                view = views[i]
                masks[i] = (
                    view.deleted.copy() if view.deleted is not None else np.zeros(view.seg.n, dtype=bool)
                )
            masks[i][row] = True
        for i, mask in masks.items():
            v = views[i]
            views[i] = SegView(v.seg, mask, int(mask.sum()), v.state, v.frozen_seq)
        # segments that lost every row in the memtable can simply go
        views = [v for v in views if not (v.state == MEM and v.n_deleted == v.seg.n)]
        if batch.put_ids:
            views, vectors = self._memtable_vectors(views, batch.put_embeddings)
            name = _new_name("m")
            seg = Segment.from_records(
                name,
                self.params.space,
                batch.put_ids,
                np.asarray(batch.put_rids, dtype=np.int64),
                vectors,
                batch.put_documents,
                batch.put_metadatas,
                batch.put_uris,
            )
            views.append(SegView(seg, None, 0, MEM))
            self.next_rid = max(self.next_rid, max(batch.put_rids) + 1)
            if self.dimension is None:
                self.dimension = int(batch.put_embeddings.shape[1])
        views = self._merge_memtable_tail(views)
        self._views = tuple(views)
        self.seq = max(self.seq, batch.seq)

    def _memtable_vectors(self, views: list[SegView], emb: np.ndarray) -> tuple[list[SegView], np.ndarray]:
        """A new memtable segment's vectors: ``emb`` itself while the memtable is small, then a
        view of the memtable's arena, so merging memtable segments (and freezing them into
        one) copies no vectors. The arena is made when the memtable reaches the threshold
        (``ARENA_MIN_ROWS``) or fills the arena it has, sized for a full memtable; the
        memtable's live rows move into it first (a copy of at most that many rows)."""
        n, dim = emb.shape
        arena = self._arena
        if arena is not None and arena.dim == dim and arena.room() >= n:
            return views, arena.append(emb)
        mem = [i for i, v in enumerate(views) if v.state == MEM]
        live = sum(views[i].n_live for i in mem)
        cap = self.params.memtable_max_rows
        if dim == 0 or live + n < min(ARENA_MIN_ROWS, max(1, cap // 8)):
            return views, emb
        self._arena = arena = VectorArena(max(cap + cap // 4, live + n), dim)
        if mem:
            views = self._merge_views(views, mem, MEM)
        return views, arena.append(emb)

    def _merge_memtable_tail(self, views: list[SegView]) -> list[SegView]:
        """Keep the memtable's segments few without recopying it on every small write.

        Like a binary counter (LSM-style): while the newest memtable segment is at least
        half the size of the one before it, the two are merged. Sizes then fall
        geometrically, so there are O(log n) memtable segments and each row is copied
        O(log n) times however small the writes are.
        """
        while True:
            mem = [i for i, v in enumerate(views) if v.state == MEM]
            if len(mem) > self.params.memtable_max_segments:
                return self._merge_views(views, mem, MEM)
            if len(mem) < 2 or 2 * views[mem[-1]].n_live < views[mem[-2]].n_live:
                return views
            views = self._merge_views(views, mem[-2:], MEM)

    def _merge_views(self, views: list[SegView], idx: list[int], state: str, frozen_seq: int = 0) -> list[SegView]:
        """Replace views[idx] by one segment of their live rows (appended at the end)."""
        parts = []
        for i in idx:
            v = views[i]
            rows = np.arange(v.seg.n) if v.deleted is None else np.flatnonzero(~v.deleted)
            if len(rows):
                parts.append((v.seg, rows))
        keep = [v for j, v in enumerate(views) if j not in set(idx)]
        if not parts:
            return keep
        if len(parts) == 1 and len(parts[0][1]) == parts[0][0].n and (state != MEM or self._arena is None):
            seg = parts[0][0]
        else:
            seg = Segment.merge(_new_name("s"), parts, arena=self._arena)
        keep.append(SegView(seg, None, 0, state, frozen_seq))
        return keep

    # ----------------------------------------------------------------- flush

    def _freeze(self, stall: bool = True) -> None:
        """Turn the memtable into one frozen segment and schedule its persistence.

        With ``stall`` (a write filled the memtable), first wait while ``max_frozen``
        persists are already queued, like LevelDB's write stall on too many immutable
        memtables: a writer faster than the background thread otherwise piles up frozen
        segments, each holding its rows and vectors in memory (at 300k x 384, four or five
        at once, +400 MiB of peak) for no gain: rows count as ingested once indexed."""
        if stall and self._persists_queued >= self.params.max_frozen:
            self._stall_for_persists()
            if self._closed or self._memtable_rows() < self.params.memtable_max_rows:
                return  # closed, or flushed by another thread meanwhile
        views = list(self._views)
        mem = [i for i, v in enumerate(views) if v.state == MEM]
        frozen_seq = self.seq
        if mem:
            # the memtable's merges left freed copies in the heap: hand them back before
            # this merge makes one more (~20 ms; measured -100 MiB of peak at 100k x 384)
            if self._memtable_rows() >= TRIM_MIN_ROWS:
                heap.trim()
            views = self._merge_views(views, mem, FROZEN, frozen_seq)
            self._views = tuple(views)
            self._arena = None  # the frozen segment keeps its rows; the next memtable starts afresh
            if views and views[-1].state == FROZEN and views[-1].frozen_seq == frozen_seq:
                name = views[-1].seg.name
            else:
                name = None
        else:
            name = None
        self.wal.rotate()
        self._persists_queued += 1
        rows = views[-1].seg.n if name is not None else 0
        self.worker.submit(lambda: self._persist(name, frozen_seq, rows), urgent=True)

    def _stall_for_persists(self) -> None:
        """Wait (the store's lock released meanwhile, so persists can finish) until fewer than
        ``max_frozen`` persists are queued, the store closes, or FREEZE_STALL_MAX_S pass (a
        worker busy with other collections' long jobs delays writes, never stops them)."""
        deadline = time.monotonic() + FREEZE_STALL_MAX_S
        with self._persisted:
            while self._persists_queued >= self.params.max_frozen and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._persisted.wait(min(left, 0.5))

    def flush(self) -> None:
        """Schedule a flush of the memtable (and of pending deletes)."""
        with self._lock:
            self._check_open()
            if self._memtable_rows() or self.seq > self.persisted_position:
                self._freeze(stall=False)

    def _persist(self, name: str | None, frozen_seq: int, rows: int = 0) -> None:
        try:
            self._persist_frozen(name, frozen_seq, rows)
        finally:
            with self._persisted:
                self._persists_queued -= 1
                self._persisted.notify_all()

    def _persist_frozen(self, name: str | None, frozen_seq: int, rows: int = 0) -> None:
        if self._closed:
            return
        # jobs run in order, so an older segment still frozen failed to persist (a full disk):
        # try it again first, so the manifest and the WAL position move on once space is back
        with self._lock:
            retry = [v.seg.name for v in self._views
                     if v.state == FROZEN and v.frozen_seq < frozen_seq and v.seg.name != name]
        for older in retry:
            self._persist_segment(older)
        if name is not None:
            self._persist_segment(name)
        with self._lock:
            if self._closed:
                return
            self._publish(max(self.persisted_position, frozen_seq))
        if rows >= TRIM_MIN_ROWS:
            heap.trim()  # the frozen rows and the build's buffers are free now
        self._maybe_schedule_compaction()

    def _persist_segment(self, name: str) -> None:
        """Index and write frozen segment ``name``, then mark its view persisted."""
        view = self._view_by_name().get(name)
        if view is None:
            return
        seg = view[1].seg
        if seg.n >= self.params.index_min_rows and seg.index is None and seg.dim > 0:
            index = VectorIndex.build(
                seg.vectors(), self.params.space, M=self.params.M, ef_construction=self.params.ef_construction,
                quantization=self.params.quantization,
            )
            seg = seg.with_index(index)
            del index
            if self._durable:  # the graph is written and mapped first: its private copy goes
                seg = seg.with_index_on_disk(self.storage, self._seg_prefix(name))
            # readers search the graph from now on, so the frozen rows' float copy can go
            # before the text indexes are built (it is the size of the graph's vectors)
            self._replace_frozen(name, seg)
        del view
        seg.build_text_indexes(self.params.fulltext)
        if self._durable:
            seg.write(self.storage, self._seg_prefix(name))
            seg = seg.reopened(self.storage, self._seg_prefix(name))
            self._cache_segment(seg)
        with self._lock:
            views = list(self._views)
            for i, v in enumerate(views):
                if v.seg.name == name:
                    views[i] = SegView(seg, v.deleted, v.n_deleted, PERSISTED)
            self._views = tuple(views)
            self.stats["flushes"] += 1
            self.stats["rows_flushed"] += seg.n

    def _replace_frozen(self, name: str, seg: Segment) -> None:
        """Serve frozen segment ``name`` from ``seg`` (the same rows, now with a graph)."""
        with self._lock:
            self._views = tuple(SegView(seg, v.deleted, v.n_deleted, v.state, v.frozen_seq)
                                if v.seg.name == name and v.state == FROZEN else v for v in self._views)

    def _publish(self, wal_position: int) -> None:
        """Write a manifest of the persisted segments (call with the lock held)."""
        if any(v.state == FROZEN and v.frozen_seq <= wal_position for v in self._views):
            # an older frozen segment failed to persist: its rows exist only in the WAL
            wal_position = self.persisted_position
        entries = []
        new_written = {}
        mask_files: list[tuple[str, bytes]] = []
        for v in self._views:
            if v.state != PERSISTED:
                continue
            name = v.seg.name
            prev_n, prev_key = self._written_deletes.get(name, (0, None))
            key = prev_key
            inline = None
            if v.n_deleted and v.seg.n <= mf.INLINE_MASK_ROWS:
                key, inline = None, mf.pack_mask(v.deleted)  # in the manifest: no file to write
            elif v.n_deleted != prev_n or (v.n_deleted and prev_key is None):
                key = None
                if v.n_deleted:
                    # masks live in the shared pool, keyed by owner: never shared-and-rewritten
                    key = f"{mf.MASKS}{self.owner_id}-{name}-{self.version + 1:020d}.npy"
                    buf = io.BytesIO()
                    np.save(buf, np.flatnonzero(v.deleted).astype(np.int32))
                    if self._durable:
                        mask_files.append((key, buf.getvalue()))
                        if self._segment_cache is not None:
                            self._segment_cache["mask:" + key] = v.deleted  # a fork opens it from here
            new_written[name] = (v.n_deleted, key)
            entries.append(
                mf.SegmentEntry(name, v.seg.n, v.seg.index is not None, key, v.n_deleted, self._seg_prefix(name), inline)
            )
        if mask_files:
            self.storage.put_many(mask_files)  # one sync of masks/ for all of them
        m = mf.Manifest(
            version=self.version + 1,
            wal_position=wal_position,
            dimension=self.dimension,
            next_rid=self.next_rid,
            segments=entries,
            seq=self.seq,
            created_at=time.time(),
        )
        if self._durable:
            if self._base_unwritten:
                # Hand-over from the catalog's copy of version 1 (and its inline tail) to the
                # collection's own files. A manifest file, once one exists, makes the files
                # alone the truth, so everything they need is written before the first of
                # them: the tail as a WAL file when a version kept beside ``m`` (or ``m``
                # itself) still needs it, then version 1 as a file if retention keeps it, then
                # ``m``; only then does the catalog forget its copies.
                first = self._manifests[0] if self._manifests else None
                keep = mf.retained(self._manifests + [m], self.params.version_retention_count,
                                   self.params.version_retention_seconds)
                self._save_tail(keep)
                if first is not None and first.version < m.version and any(k is first for k in keep):
                    self.storage.put_if_absent(mf.manifest_key(self.prefix, first.version), first.to_json())
                mf.publish(self.storage, self.prefix, m)
                self._base_unwritten = False
                self._forget_base()
            else:
                mf.publish(self.storage, self.prefix, m)
        self.version = m.version
        self.persisted_position = wal_position
        self._written_deletes = new_written
        if self._durable:
            self._manifests.append(m)
            # old segments and masks go once no retained version of any collection names them
            self.retire()

    # ------------------------------------------------------------ compaction

    def _maybe_schedule_compaction(self) -> None:
        with self._lock:
            if self._compaction_pending or self._closed:
                return
            if self._compaction_candidates():
                self._compaction_pending = True
                self.worker.submit(self._compact)

    def _compaction_candidates(self) -> list[str]:
        """Segments worth merging now: size-tiered, like LevelDB/Cassandra's tiers.

        A segment with many deleted rows is rewritten (that reclaims its space);
        otherwise the smallest size tier (factor 4 per tier) that holds
        ``compaction_min_segments`` segments is merged. Segments of different tiers
        are never merged, so rebuild work stays proportional to what is merged.
        """
        p = self.params
        persisted = self._own_persisted()
        heavy = [v for v in persisted if v.n_deleted and v.n_deleted >= p.compaction_deleted_fraction * v.seg.n]
        if heavy:
            return [v.seg.name for v in heavy]
        base = max(1, p.memtable_max_rows // 4)
        tiers: dict[int, list[SegView]] = {}
        for v in persisted:
            tier = 0 if v.n_live <= base else int(math.log(v.n_live / base, 4)) + 1
            tiers.setdefault(tier, []).append(v)
        for tier in sorted(tiers):
            if len(tiers[tier]) >= p.compaction_min_segments:
                return [v.seg.name for v in tiers[tier]]
        return []

    def _shared(self, name: str) -> bool:
        """True when another collection's retained manifests name segment ``name``: rewriting
        it would reclaim nothing (the other keeps the original) and would end the sharing."""
        return self._durable and self.refs.count(self._seg_prefix(name)) > 1

    def _own_persisted(self) -> list[SegView]:
        """Persisted segments only this collection names: the ones compaction may rewrite.
        A shared segment keeps its deleted rows masked until its other owners are gone."""
        return [v for v in self._views if v.state == PERSISTED and not self._shared(v.seg.name)]

    def compact(self) -> None:
        """Schedule a compaction of every segment with deleted rows or below the size tier."""
        with self._lock:
            self._check_open()
            if not self._compaction_pending:
                self._compaction_pending = True
                self.worker.submit(lambda: self._compact(force=True))

    def _compact(self, force: bool = False) -> None:
        try:
            with self._lock:
                if self._closed:
                    return
                if force:
                    persisted = self._own_persisted()
                    names = [v.seg.name for v in persisted]
                    if len(persisted) <= 1 and not any(v.n_deleted for v in persisted):
                        names = []
                else:
                    names = self._compaction_candidates()
                if not names:
                    return
                snap = {v.seg.name: v for v in self._views if v.seg.name in names}
            parts = []
            for v in snap.values():
                rows = np.arange(v.seg.n) if v.deleted is None else np.flatnonzero(~v.deleted)
                if len(rows):
                    parts.append((v.seg, rows))
            new_seg, extended = self._merge_parts(parts) if parts else (None, False)
            with self._lock:
                if self._closed:
                    return
                if any(self._shared(name) for name in snap):
                    # forked meanwhile: publishing would turn shared segments into a private copy
                    if new_seg is not None and self._durable:
                        gc.delete_keys(self.storage, [self._seg_prefix(new_seg.name)])
                    return
                new_mask = np.zeros(new_seg.n, dtype=bool) if new_seg is not None else None
                for name, old in snap.items():
                    cur = self._view_by_name()[name][1]
                    if cur.deleted is None:
                        continue
                    before = old.deleted if old.deleted is not None else np.zeros(old.seg.n, dtype=bool)
                    newly = np.flatnonzero(cur.deleted & ~before)
                    if len(newly):
                        ids = old.seg.table.column("id").take(pa.array(newly, pa.int64())).to_pylist()
                        new_mask[new_seg.find_ids(IdQuery(ids))[1]] = True
                views = [v for v in self._views if v.seg.name not in snap]
                if new_seg is not None:
                    n_del = int(new_mask.sum())
                    views.insert(0, SegView(new_seg, new_mask if n_del else None, n_del, PERSISTED))
                self._views = tuple(views)
                self._publish(self.persisted_position)
                self.stats["compactions"] += 1
                self.stats["compactions_extended"] += int(extended)
                self.stats["rows_compacted"] += new_seg.n if new_seg is not None else 0
            big = new_seg is not None and new_seg.n >= TRIM_MIN_ROWS
            del parts, new_seg, snap
            if big:
                heap.trim()  # the merged columns and the graph's build buffers are free now
        finally:
            with self._lock:
                self._compaction_pending = False
        self._maybe_schedule_compaction()

    def _merge_parts(self, parts: list[tuple[Segment, np.ndarray]]) -> tuple[Segment, bool]:
        """One new persisted segment of the live ``parts``: the largest part's graph extended
        with the other rows when it can be (see ``_extend_base``), else a rebuilt one; and
        whether it was extended."""
        name = _new_name("s")
        base = self._extend_base(parts)
        if base is not None:
            others = [p for p in parts if p[0] is not base]
            source = self.storage.local_path(f"{self._seg_prefix(base.name)}vectors.faiss") if self._durable else None
            new_seg = Segment.extend(name, base, others, source_path=source, between=self.worker.run_urgent)
        else:
            new_seg = Segment.merge(name, parts, keep_sources=True)
            if new_seg.n >= self.params.index_min_rows and new_seg.dim > 0:
                index = VectorIndex.build(
                    new_seg.vectors(),
                    self.params.space,
                    M=self.params.M,
                    ef_construction=self.params.ef_construction,
                    quantization=self.params.quantization,
                )
                new_seg = new_seg.with_index(index)
                del index
        if self._durable:  # written and mapped before the text indexes are built (see Segment)
            new_seg = new_seg.with_index_on_disk(self.storage, self._seg_prefix(new_seg.name))
        new_seg.build_text_indexes(self.params.fulltext)
        if self._durable:
            new_seg.write(self.storage, self._seg_prefix(new_seg.name))
            new_seg = new_seg.reopened(self.storage, self._seg_prefix(new_seg.name))
            self._cache_segment(new_seg)
        return new_seg, base is not None

    def _extend_base(self, parts: list[tuple[Segment, np.ndarray]]) -> Segment | None:
        """The part whose graph a compaction extends instead of rebuilding: the largest,
        when it has an index, no deleted rows (its row numbers must survive unchanged), and
        the M that the merged size calls for (``build_params``); else None."""
        if not self.params.compaction_extend or len(parts) < 2:
            return None
        seg, rows = max(parts, key=lambda p: len(p[1]))
        if seg.index is None or len(rows) != seg.n or seg.index.quantization != self.params.quantization:
            return None
        total = sum(len(r) for _, r in parts)
        if seg.index.M != build_params(total, self.params.M, self.params.ef_construction)[0]:
            return None
        if self.params.space == "cosine" and "_norm" not in seg.table.column_names:
            return None
        return seg

    # ------------------------------------------------------------------ read

    def snapshot(self) -> tuple[SegView, ...]:
        """The newest durable version. A group commit's leader, resolving a request, sees
        the group's earlier requests too (its own head)."""
        if self._leader is not None and self._leader == threading.get_ident():
            return self._head
        return self._visible

    def count(self) -> int:
        return sum(v.n_live for v in self.snapshot())

    @property
    def fulltext_config(self) -> FullTextConfig:
        """How this collection's documents are analysed and scored (fixed at creation)."""
        return self.params.fulltext

    @staticmethod
    def _id_query(ids) -> IdQuery | None:
        if ids is None or isinstance(ids, IdQuery):
            return ids
        return IdQuery(ids)

    @staticmethod
    def allowed_masks(snapshot: Sequence[SegView], filt, ids_set=None) -> list[np.ndarray | None]:
        """``allowed_mask`` of every view (large document scans are already split across
        the cores inside each segment, by ``gleandb.index.filters``). ``ids_set``: ids
        (a list, an Arrow array or an ``IdQuery``), found through each segment's id index."""
        query = CollectionStore._id_query(ids_set)
        return [CollectionStore.allowed_mask(v, filt, query) for v in snapshot]

    @staticmethod
    def allowed_mask(view: SegView, filt, ids_set=None) -> np.ndarray | None:
        """Rows of ``view`` that are live and pass the filters; None means all rows."""
        deadlines.check()
        mask = view.live_mask()
        query = CollectionStore._id_query(ids_set)
        if query is not None:
            m = np.zeros(view.seg.n, dtype=bool)
            m[view.seg.find_ids(query)[1]] = True
            mask = m if mask is None else (mask & m)
        if filt is not None:
            # the filter only has to be right on rows still in ``mask``
            m = filt.evaluate(view.seg.table, view.seg.trigram_index, mask, view.seg.value_index)
            mask = m if mask is None else (mask & m)
        return mask

    @staticmethod
    def select_rows(snapshot: Sequence[SegView], filt, ids=None) -> list[tuple[int, np.ndarray]]:
        """(view index, sorted rows) of the live rows that pass ``filt`` and, when ``ids``
        is given, hold one of those ids, for every view with any.

        With ids, the rows come from the id indexes and the filter is evaluated on those
        rows only (a table of them), so the cost grows with the ids asked for, not with
        the collection."""
        query = CollectionStore._id_query(ids)
        out = []
        if query is None:
            for vi, mask in enumerate(CollectionStore.allowed_masks(snapshot, filt)):
                view = snapshot[vi]
                rows = np.arange(view.seg.n, dtype=np.int64) if mask is None else np.flatnonzero(mask)
                if len(rows):
                    out.append((vi, rows))
            return out
        for vi, view in enumerate(snapshot):
            deadlines.check()
            rows = np.sort(view.seg.find_ids(query)[1])
            if len(rows) and view.deleted is not None:
                rows = rows[~view.deleted[rows]]
            if len(rows) and filt is not None:
                sub = view.seg.table.take(pa.array(rows, pa.int64()))
                rows = rows[filt.evaluate(sub)]
            if len(rows):
                out.append((vi, rows))
        return out

    @staticmethod
    def charge_budget(snapshot: Sequence[SegView], picks_list, include: set[str], dim: int | None) -> None:
        """Count the rows of several results (e.g. every query's picks) against the request's
        byte budget at once, before any is hydrated (``hydrate(..., charged=True)`` then)."""
        if not budgets.active():
            return
        wanted = ["id"] + [name for name, inc in (("document", "documents"), ("uri", "uris")) if inc in include]
        per_float = (dim or 0) if "embeddings" in include else 0
        for picks in picks_list:
            P = (picks if isinstance(picks, np.ndarray) else np.asarray(picks, dtype=np.int64)).reshape(-1, 2)
            for vi in np.unique(P[:, 0]).tolist():
                rows = P[P[:, 0] == vi, 1]
                budgets.charge(_json_floor(snapshot[vi].seg.table, pa.array(rows, pa.int64()), wanted,
                                           len(rows) * per_float))

    @staticmethod
    def hydrate(
        snapshot: Sequence[SegView], picks, include: set[str], dim: int | None, charged: bool = False
    ) -> Hydrated:
        """Columns of rows ``picks`` = [(view index, row)] (or an (n, 2) int array), in that order.

        Vectorised: one Arrow ``take`` per segment, then one reordering ``take`` of their
        concatenation, so large results cost no Python work per row except building the
        lists (and unpacking metadata). The rows are charged against the request's byte
        budget (``gleandb.budgets``) before they are copied, unless ``charged``."""
        out = Hydrated()
        P = picks if isinstance(picks, np.ndarray) else np.asarray(picks, dtype=np.int64)
        P = P.reshape(-1, 2)
        n = len(P)
        wanted = ["id"]
        for name, inc in (("document", "documents"), ("_meta", "metadatas"), ("uri", "uris")):
            if inc in include:
                wanted.append(name)
        emb = np.zeros((n, dim or 0), dtype=np.float32) if "embeddings" in include else None
        vis, rows = P[:, 0], P[:, 1]
        order = np.argsort(vis, kind="stable")
        groups, starts = np.unique(vis[order], return_index=True)
        bounds = list(starts[1:]) + [n]
        parts = []
        for vi, lo, hi in zip(groups.tolist(), starts.tolist(), bounds):
            deadlines.check()
            positions = order[lo:hi]
            seg = snapshot[vi].seg
            part_rows = rows[positions]
            taken = pa.array(part_rows, pa.int64())
            if not charged and budgets.active():  # the server's response limit: count before copying
                budgets.charge(_json_floor(seg.table, taken, wanted,
                                           len(part_rows) * (dim or 0) if emb is not None else 0))
            parts.append(seg.table.select(wanted).take(taken))
            if emb is not None and len(part_rows):
                emb[positions] = seg.embeddings(part_rows)
        if not parts:
            table = None
        elif len(parts) == 1:
            table = parts[0]  # one segment: order is the identity
        elif np.all(vis[:-1] <= vis[1:]):
            table = pa.concat_tables(parts)  # picks already grouped by segment, in order
        else:
            inverse = np.empty(n, dtype=np.int64)
            inverse[order] = np.arange(n, dtype=np.int64)
            table = pa.concat_tables(parts).take(pa.array(inverse, pa.int64()))

        def column(name: str) -> list:
            return [] if table is None else table.column(name).to_pylist()

        out.ids = column("id")
        out.documents = column("document") if "documents" in include else None
        out.metadatas = [unpack_metadata(b) for b in column("_meta")] if "metadatas" in include else None
        out.uris = column("uri") if "uris" in include else None
        out.embeddings = emb
        return out

    # ---------------------------------------------------------------- close

    def _check_open(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(
                f"collection store {self.prefix} is open read-only (a query node follows the writer's "
                "files): send writes, flushes and compactions to the writer")
        if self._closed:
            raise InvalidArgumentError("this collection's store is closed (the client was closed or the collection deleted)")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.wal.close()
