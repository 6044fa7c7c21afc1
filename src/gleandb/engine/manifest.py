"""Versioned manifests: the list of segments and delete sets that is one version.

Publishing a manifest is the only commit point of flushes and compactions:
``manifests/<version:020d>.json`` is created with a conditional put, so two
writers can never both publish version N, and a reader that lists the folder
sees whole versions only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from gleandb.api.errors import CorruptStoreError
from gleandb.storage.base import Storage

FORMAT = 1
KEEP_MANIFESTS = 4


@dataclass
class SegmentEntry:
    name: str
    rows: int
    index: bool
    deletes: str | None = None  # key of an .npy of deleted row numbers
    n_deleted: int = 0


@dataclass
class Manifest:
    version: int = 0
    wal_position: int = 0
    dimension: int | None = None
    next_rid: int = 0
    segments: list[SegmentEntry] = field(default_factory=list)

    def to_json(self) -> bytes:
        d = asdict(self)
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
        )


def manifest_key(prefix: str, version: int) -> str:
    return f"{prefix}manifests/{version:020d}.json"


def load_latest(storage: Storage, prefix: str) -> Manifest:
    keys = [k for k in storage.list(f"{prefix}manifests/") if k.endswith(".json")]
    for key in reversed(keys):
        try:
            return Manifest.from_json(storage.get(key))
        except (ValueError, KeyError) as e:  # pragma: no cover - atomic puts make this rare
            last_error = e
            continue
    if keys:
        raise CorruptStoreError(f"no readable manifest under {prefix}manifests/: {last_error}")
    return Manifest()


def publish(storage: Storage, prefix: str, manifest: Manifest) -> None:
    if not storage.put_if_absent(manifest_key(prefix, manifest.version), manifest.to_json()):
        raise CorruptStoreError(
            f"manifest version {manifest.version} of {prefix} already exists: another writer is active"
        )
    # keep a few recent versions (readers and future time travel); drop older ones
    keys = [k for k in storage.list(f"{prefix}manifests/") if k.endswith(".json")]
    for key in keys[:-KEEP_MANIFESTS]:
        storage.delete(key)
