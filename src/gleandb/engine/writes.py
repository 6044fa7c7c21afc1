"""Write resolution: what an add, update, upsert or delete writes, decided against the live data.

The API validates and embeds; the functions here turn a request into one ``WalBatch`` of
resolved full records and deletes (chromadb's semantics: add skips ids that exist, update
merges metadata with a None value deleting its key, upsert does both, delete reports the
ids sent or the rows matched) and commit it with ``CollectionStore.commit``, which runs the
resolution under the write lock, in queue order within a group commit.

Each write looks its ids up once (``CollectionStore.resolve``); the positions travel on the
batch (``WalBatch.located``), so applying it does not look them up again.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from gleandb.engine import query as engine_query
from gleandb.engine.store import CollectionStore, Located
from gleandb.engine.wal import WalBatch

Build = Callable[[CollectionStore], "WalBatch | None"]


def merge_metadata(old: dict | None, new: dict | None) -> dict | None:
    """chromadb's update semantics: keys merge, a None value deletes its key."""
    if new is None:
        return old
    out = dict(old or {})
    for k, val in new.items():
        if val is None:
            out.pop(k, None)
        else:
            out[k] = val
    return out or None


def clean_new_metadata(md: dict | None) -> dict | None:
    """A new record's metadata: None values dropped (nothing to delete), {} stored as None."""
    if md is None:
        return None
    out = {k: val for k, val in md.items() if val is not None}
    return out or None


def _at(values: Sequence | None, i: int) -> Any:
    return values[i] if values is not None else None


def add_batch(ids: Sequence[str], matrix: np.ndarray, documents: Sequence | None = None,
              metadatas: Sequence | None = None, uris: Sequence | None = None) -> Build:
    """The build of an add: ids that exist (or repeat in the request) are left untouched."""

    def build(st: CollectionStore) -> WalBatch | None:
        loc = st.resolve(ids)
        seen: set[str] = set()
        keep = []
        for i, id_ in enumerate(ids):
            if id_ in loc.found or id_ in seen:
                continue
            seen.add(id_)
            keep.append(i)
        if not keep:
            return None
        b = WalBatch(seq=0, located=loc)
        b.put_ids = [ids[i] for i in keep]
        b.put_rids = list(range(st.next_rid, st.next_rid + len(keep)))
        b.put_embeddings = matrix[keep]
        b.put_documents = [_at(documents, i) for i in keep]
        b.put_metadatas = [clean_new_metadata(_at(metadatas, i)) for i in keep]
        b.put_uris = [_at(uris, i) for i in keep]
        return b

    return build


def merge_batch(ids: Sequence[str], matrix: np.ndarray | None, documents: Sequence | None = None,
                metadatas: Sequence | None = None, uris: Sequence | None = None,
                insert_missing: bool = False) -> Build:
    """The build of an update (``insert_missing`` False: missing ids are ignored) or an
    upsert (True): an existing record keeps what the request leaves out and merges its
    metadata; the first occurrence of a repeated id wins."""

    def build(st: CollectionStore) -> WalBatch | None:
        loc = st.resolve(ids)
        old = st.read_records(loc.existing())
        b = WalBatch(seq=0, located=loc)
        emb_rows = []
        seen: set[str] = set()
        next_rid = st.next_rid
        for i, id_ in enumerate(ids):
            if id_ in seen:
                continue
            doc, md, uri = _at(documents, i), _at(metadatas, i), _at(uris, i)
            if id_ in old:
                o = old[id_]
                rid = o["rid"]
                emb = matrix[i] if matrix is not None else o["embedding"]
                doc = doc if doc is not None else o["document"]
                md = merge_metadata(o["metadata"], md)
                uri = uri if uri is not None else o["uri"]
            elif insert_missing:
                rid = next_rid
                next_rid += 1
                emb = matrix[i]
                md = clean_new_metadata(md)
            else:
                continue
            seen.add(id_)
            b.put_ids.append(id_)
            b.put_rids.append(rid)
            emb_rows.append(emb)
            b.put_documents.append(doc)
            b.put_metadatas.append(md)
            b.put_uris.append(uri)
        if not b.put_ids:
            return None
        b.put_embeddings = np.ascontiguousarray(np.vstack(emb_rows), dtype=np.float32)
        return b

    return build


class DeleteBuild:
    """The build of a delete by ids and/or a compiled filter; ``deleted`` is chromadb's
    count once committed (with no filter, the number of ids sent, found or not)."""

    def __init__(self, ids: Sequence[str] | None, filt: Any, limit: int | None):
        self.ids, self.filt, self.limit = ids, filt, limit
        self.deleted = 0

    def __call__(self, st: CollectionStore) -> WalBatch | None:
        if self.filt is None:
            ids = list(self.ids or [])
            loc = st.resolve(ids)
            victims = [i for i in dict.fromkeys(ids) if i in loc.found]
            self.deleted = len(ids)
        else:
            snap = st.snapshot()  # the leader's head: the group's earlier writes included
            victims, picks = engine_query.matching_rows(snap, self.filt, self.ids, self.limit)
            found = {id_: (int(vi), int(row)) for id_, (vi, row) in zip(victims, picks.tolist())}
            loc = Located(snap, found, frozenset(found))
            self.deleted = len(victims)
        if not victims:
            return None
        return WalBatch(seq=0, delete_ids=victims, located=loc)


def add(st: CollectionStore, ids, matrix, documents=None, metadatas=None, uris=None) -> None:
    """Insert records; ids that exist already are left untouched."""
    st.commit(add_batch(ids, matrix, documents, metadatas, uris))


def update(st: CollectionStore, ids, matrix, documents=None, metadatas=None, uris=None) -> None:
    """Change existing records; missing ids are ignored."""
    st.commit(merge_batch(ids, matrix, documents, metadatas, uris, insert_missing=False))


def upsert(st: CollectionStore, ids, matrix, documents=None, metadatas=None, uris=None) -> None:
    """Insert missing ids, update existing ones."""
    st.commit(merge_batch(ids, matrix, documents, metadatas, uris, insert_missing=True))


def delete(st: CollectionStore, ids: Sequence[str] | None, filt: Any, limit: int | None) -> int:
    """Delete by ids and/or a compiled filter (at most ``limit`` rows); chromadb's count."""
    d = DeleteBuild(ids, filt, limit)
    st.commit(d)
    return d.deleted
