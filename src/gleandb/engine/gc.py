"""Garbage collection of shared files by reference.

Segment directories and delete masks are immutable and may be named by the
manifests of several collections (a fork names its source's files). A file may
be deleted only when no *retained* manifest of any *live* collection names it.

``FileReferences`` holds, per collection, the set of files its retained
manifests name, and a count per file. It lives in memory only and is rebuilt
from the manifests when the store is opened, so a crash can never leave it
wrong: the manifests are the truth, the counts a cache of them. A file whose
count falls to zero is deleted by whoever dropped the last reference
(publishing a manifest, pruning versions, deleting a collection), always after
the manifests that named it are gone; a crash in between leaves an orphan that
``sweep`` removes on the next open or vacuum.
"""

from __future__ import annotations

import threading
from typing import Iterable

from gleandb.engine.manifest import MASKS, SEGMENTS
from gleandb.storage.base import KeyNotFound, Storage


def segment_dir_of(key: str) -> str | None:
    """The segment directory (pool or legacy per-collection) holding file ``key``, if any."""
    if key.startswith(SEGMENTS):
        i = 0
    else:
        i = key.find("/" + SEGMENTS)
        if i < 0:
            return None
        i += 1
    j = key.find("/", i + len(SEGMENTS))
    return key[: j + 1] if j >= 0 else None


def is_shared_file(key: str) -> bool:
    """Files that are garbage-collected by reference (not a collection's private WAL/manifests)."""
    return key.startswith(MASKS) or segment_dir_of(key) is not None


class FileReferences:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sets: dict[str, frozenset[str]] = {}
        self._count: dict[str, int] = {}

    def set(self, owner: str, keys: Iterable[str]) -> list[str]:
        """Replace ``owner``'s references; returns the keys no one references any more."""
        new = frozenset(keys)
        with self._lock:
            old = self._sets.get(owner, frozenset())
            for k in new - old:
                self._count[k] = self._count.get(k, 0) + 1
            dead = []
            for k in old - new:
                c = self._count.get(k, 0) - 1
                if c <= 0:
                    self._count.pop(k, None)
                    dead.append(k)
                else:
                    self._count[k] = c
            self._sets[owner] = new
            return dead

    def drop(self, owner: str) -> list[str]:
        with self._lock:
            dead = self.set(owner, ())
            self._sets.pop(owner, None)
            return dead

    def count(self, key: str) -> int:
        return self._count.get(key, 0)

    def covers(self, key: str, extra: set[str] | frozenset[str] = frozenset()) -> bool:
        """True when file ``key`` is referenced (itself, or the segment directory holding it).

        A legacy mask (``deletes-*.npy`` inside a segment directory) must be named itself."""
        with self._lock:
            if key in self._count or key in extra:
                return True
            d = segment_dir_of(key)
            if d is None or key.rsplit("/", 1)[-1].startswith("deletes-"):
                return False
            return d in self._count or d in extra

    def owners(self) -> list[str]:
        with self._lock:
            return list(self._sets)


def size_of_keys(storage: Storage, keys: Iterable[str]) -> int:
    total = 0
    for k in keys:
        try:
            total += storage.size_of(k)
        except KeyNotFound:
            pass
    return total


def delete_keys(storage: Storage, keys: Iterable[str]) -> int:
    """Delete files and segment directories (keys ending in '/'); returns bytes freed."""
    freed = 0
    for k in keys:
        if k.endswith("/"):
            freed += size_of_keys(storage, storage.list(k))
            storage.delete_prefix(k)
        else:
            freed += size_of_keys(storage, [k])
            storage.delete(k)
    return freed


def sweep(storage: Storage, refs: FileReferences, live: set[str] | frozenset[str] = frozenset()) -> int:
    """Delete every shared file that nothing references (crash leftovers); returns bytes freed.

    ``live`` adds references held only in memory (segments written but not yet
    published). Call only when no flush or compaction is writing files.
    """
    doomed_dirs: set[str] = set()
    doomed: list[str] = []
    for prefix in (SEGMENTS, MASKS, "collections/"):
        for key in storage.list(prefix):
            if not is_shared_file(key) or refs.covers(key, live):
                continue
            d = segment_dir_of(key)
            if d is not None and not key.rsplit("/", 1)[-1].startswith("deletes-"):
                doomed_dirs.add(d)
            else:
                doomed.append(key)
    return delete_keys(storage, sorted(doomed_dirs)) + delete_keys(storage, doomed)
