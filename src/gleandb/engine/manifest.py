"""Versioned manifests: the list of segments and delete sets that is one version.

Publishing a manifest is the only commit point of flushes, compactions and
forks: ``manifests/<version:020d>.json`` is created with a conditional put, so
two writers can never both publish version N, and a reader that lists the
folder sees whole versions only.

Every manifest is a *version*. Version N is exactly what manifest N holds plus
the WAL records with ``wal_position < seq <= manifest.seq`` (writes that were
still in the memtable when it was published; their deletes of older rows are
already in the masks). Retention (``retained``) decides which versions are kept;
the files they name stay alive until no retained version of any collection
names them (``gleandb.engine.gc``).

Shared files live outside any collection, so forks can name them:
``segments/<name>/`` (immutable segment directories) and ``masks/<owner>-<segment>-<version>.npy``
(delete masks; the owner's collection id in the key means two collections
sharing a segment can never write the same mask key). The mask of a small segment
(at most ``INLINE_MASK_ROWS`` rows, so at most 512 bytes as a bitmap) rides inline
in the manifest entry instead (``SegmentEntry.mask``): a flush that deletes rows of a
small shared segment, as every commit of a fork chain does, then writes no mask
file (two fsyncs). Manifests written before
forks existed name neither; their segments live under the collection's prefix
(``SegmentEntry.path`` is None) and keep working.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field

import numpy as np

from gleandb.errors import CorruptStoreError, WriterFencedError
from gleandb.storage.base import Storage

FORMAT = 1
SEGMENTS = "segments/"  # shared pool of segment directories
MASKS = "masks/"  # shared pool of delete masks
INLINE_MASK_ROWS = 4096  # a segment this small keeps its delete mask in the manifest entry


@dataclass
class SegmentEntry:
    name: str
    rows: int
    index: bool
    deletes: str | None = None  # key of an .npy of deleted row numbers
    n_deleted: int = 0
    path: str | None = None  # key prefix of the segment directory; None = legacy "<collection>/segments/<name>/"
    mask: str | None = None  # the delete mask inline (pack_mask), instead of a ``deletes`` file


@dataclass
class Manifest:
    version: int = 0
    wal_position: int = 0
    dimension: int | None = None
    next_rid: int = 0
    segments: list[SegmentEntry] = field(default_factory=list)
    seq: int = 0  # last WAL seq reflected (masks may be newer than wal_position)
    created_at: float = 0.0  # unix time of publication
    forked_from: dict | None = None  # {"collection": id, "version": n} for a fork's first version

    def to_json(self) -> bytes:
        # by hand, not ``asdict``: its deep copy cost ~1 ms per publish for a manifest deep in
        # a fork chain (one entry per ancestor commit), as much as the publish's fsyncs
        segs = []
        for e in self.segments:
            entry = {"name": e.name, "rows": e.rows, "index": e.index, "deletes": e.deletes,
                     "n_deleted": e.n_deleted, "path": e.path}
            if e.mask is not None:  # most entries have none: not a byte more than before
                entry["mask"] = e.mask
            segs.append(entry)
        d = {"version": self.version, "wal_position": self.wal_position, "dimension": self.dimension,
             "next_rid": self.next_rid, "segments": segs, "seq": self.seq, "created_at": self.created_at,
             "forked_from": None if self.forked_from is None else dict(self.forked_from)}
        d["format"] = FORMAT
        return json.dumps(d, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Manifest":
        d = json.loads(data)
        if d.get("format") != FORMAT:
            raise CorruptStoreError(f"unsupported manifest format {d.get('format')!r}")
        segs = [SegmentEntry(**s) for s in d["segments"]]
        return cls(
            version=d["version"],
            wal_position=d["wal_position"],
            dimension=d["dimension"],
            next_rid=d["next_rid"],
            segments=segs,
            seq=d.get("seq", d["wal_position"]),
            created_at=d.get("created_at", 0.0),
            forked_from=d.get("forked_from"),
        )

    @property
    def records(self) -> int:
        """Live rows in this manifest's segments (not counting its WAL tail)."""
        return sum(e.rows - e.n_deleted for e in self.segments)


def pack_mask(deleted: np.ndarray) -> str:
    """A delete mask (bool per row) as the text of ``SegmentEntry.mask``: a bitmap, base64."""
    return base64.b64encode(np.packbits(deleted, bitorder="little").tobytes()).decode()


def unpack_mask(text: str, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8), count=n, bitorder="little")
    return bits.astype(bool)


def manifest_key(prefix: str, version: int) -> str:
    return f"{prefix}manifests/{version:020d}.json"


def segment_dir(prefix: str, e: SegmentEntry) -> str:
    """Key prefix of the directory of entry ``e`` of a manifest of collection ``prefix``."""
    return e.path if e.path is not None else f"{prefix}segments/{e.name}/"


def referenced_keys(prefix: str, manifests: list[Manifest]) -> set[str]:
    """Segment directories (ending in '/') and mask keys that ``manifests`` name."""
    out: set[str] = set()
    for m in manifests:
        for e in m.segments:
            out.add(segment_dir(prefix, e))
            if e.deletes:
                out.add(e.deletes)
    return out


def load_all(storage: Storage, prefix: str, base: dict | None = None) -> list[Manifest]:
    """Every readable manifest of the collection, oldest first.

    ``base`` is a fork's first manifest as the catalog holds it (a fork writes no
    manifest file): it is the collection's only version until the collection
    publishes one of its own, which writes ``base`` as a file first."""
    keys = [k for k in storage.list(f"{prefix}manifests/") if k.endswith(".json")]
    if not keys and base is not None:
        return [Manifest.from_json(json.dumps(base).encode())]
    out = []
    last_error = None
    for key in keys:
        try:
            out.append(Manifest.from_json(storage.get(key)))
        except (ValueError, KeyError) as e:  # pragma: no cover - atomic puts make this rare
            last_error = e
    if keys and not out:
        raise CorruptStoreError(f"no readable manifest under {prefix}manifests/: {last_error}")
    out.sort(key=lambda m: m.version)
    return out


def load_latest(storage: Storage, prefix: str, base: dict | None = None) -> Manifest:
    ms = load_all(storage, prefix, base)
    return ms[-1] if ms else Manifest()


def publish(storage: Storage, prefix: str, manifest: Manifest) -> None:
    if not manifest.created_at:
        manifest.created_at = time.time()
    key = manifest_key(prefix, manifest.version)
    if not storage.put_if_absent(key, manifest.to_json()):
        raise WriterFencedError(
            f"manifest {key} (version {manifest.version} of {prefix}) already exists: another writer holds "
            f"the store and published it first (conditional create refused); this one was not published"
        )


def retained(manifests: list[Manifest], keep_count: int, keep_seconds: float, now: float | None = None) -> list[Manifest]:
    """The versions retention keeps: the newest ``keep_count`` (at least the latest one)
    and every version younger than ``keep_seconds``."""
    if not manifests:
        return []
    now = time.time() if now is None else now
    n = max(1, int(keep_count))
    newest = manifests[-n:]
    cutoff = now - float(keep_seconds)
    return [m for m in manifests[:-n] if m.created_at >= cutoff and keep_seconds > 0] + newest


def prune(storage: Storage, prefix: str, manifests: list[Manifest], keep: list[Manifest]) -> None:
    """Delete the manifest files of versions not in ``keep`` (oldest first)."""
    kept = {m.version for m in keep}
    for m in manifests:
        if m.version not in kept:
            storage.delete(manifest_key(prefix, m.version))
