"""The catalog's files: a log of edits and checkpoints (the format; ``catalog.py`` uses it).

``catalog/log-<n>`` records are ``length (u32 LE) | crc32 (u32 LE) | JSON`` where the
JSON is a list of operations on the catalog document, applied together:
``["set", path, value]`` and ``["del", path]`` (``path`` a list of keys).
``catalog/checkpoint-<n>.json`` is the whole document after every record of the
logs numbered below ``n``. A short or corrupt record ends its log: it was being
appended when the process died, so it was never acknowledged and nothing follows it.
"""

from __future__ import annotations

import json
from typing import Any

from gleandb.errors import CorruptStoreError
from gleandb.storage.base import KeyNotFound, Storage
from gleandb.storage.framing import frame, unframe

LEGACY_KEY = "catalog.json"  # the single-file catalog of older stores (migrated on open)
# what ``catalog.json`` holds once migrated: no "collections", so a gleandb too old to read
# the log fails to open the store instead of taking it for empty and deleting its data
GUARD = {"format": 2, "catalog": "catalog/",
         "note": "the catalog is the log in catalog/; this store needs a newer gleandb"}
CATALOG_DIR = "catalog/"
# a catalog edit is a few hundred bytes; a longer length field can only be a torn header
_MAX_RECORD = 1 << 30


def _encode(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def log_key(n: int) -> str:
    return f"{CATALOG_DIR}log-{n:020d}"


def checkpoint_key(n: int) -> str:
    return f"{CATALOG_DIR}checkpoint-{n:020d}.json"


def _number(key: str) -> int:
    return int(key.rsplit("-", 1)[1].split(".", 1)[0])


def encode_record(ops: list) -> bytes:
    return frame(_encode(ops))


def iter_records(data: bytes):
    """The whole records of one log, in order; stops at the first torn or corrupt one."""
    for payload in unframe(data, _MAX_RECORD):
        try:
            ops = json.loads(payload)
        except ValueError:
            return
        yield ops


def apply_ops(doc: dict, ops: list) -> None:
    """Apply one record's operations to the catalog document, in place."""
    for op in ops:
        kind, path = op[0], op[1]
        node = doc
        for part in path[:-1]:
            node = node.setdefault(part, {})
        if kind == "set":
            node[path[-1]] = json.loads(_encode(op[2]))  # a private copy
        elif kind == "del":
            node.pop(path[-1], None)
        else:
            raise ValueError(f"unknown catalog operation {kind!r}")


def is_store(storage: Storage) -> bool:
    """True when ``storage`` holds a catalog (new or legacy)."""
    return storage.exists(LEGACY_KEY) or bool(storage.list(CATALOG_DIR))


def read_document(storage: Storage, initial: dict) -> tuple[dict, int, list[str]]:
    """The catalog as the files say, without writing anything: (document, highest
    file number, keys of every catalog file read or superseded). ``initial`` is the
    document of a store that has no catalog yet."""
    keys = storage.list(CATALOG_DIR)
    checkpoints = sorted(_number(k) for k in keys if "/checkpoint-" in k and k.endswith(".json"))
    logs = sorted(_number(k) for k in keys if "/log-" in k)
    if checkpoints:
        base = checkpoints[-1]
        doc = json.loads(storage.get(checkpoint_key(base)))
    else:
        base = 0
        try:
            doc = json.loads(storage.get(LEGACY_KEY))
        except KeyNotFound:
            doc = initial
        if doc.get("format") == GUARD["format"]:
            raise CorruptStoreError(
                "the store's catalog has no checkpoint under catalog/ (catalog.json says it was "
                "migrated): refusing to open it as an empty store"
            )
    doc.setdefault("manifests", {})
    for n in logs:
        if n >= base:
            for ops in iter_records(storage.read_log(log_key(n))):
                apply_ops(doc, ops)
    top = max([base] + logs)
    return doc, top, keys
