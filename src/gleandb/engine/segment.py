"""Immutable segments: columnar records plus one vector index.

A segment never changes once built. Deletes of its rows live outside it (a
bool mask held by the collection and persisted beside the manifest), so a
segment can be shared by many versions (and, later, by forks).

Files of a persisted segment ``<prefix>segments/<name>/``:

- ``records.arrow``: Arrow IPC file, one row per record: ``id``, ``rid``
  (insertion order, kept across updates), ``document``, ``uri``, ``_meta``
  (msgpack of the metadata dict, for reading back exactly), ``_norm`` (original
  vector norms when the index stores normalised vectors) and one typed column
  per metadata (key, type) for filters (layout in ``gleandb.index.filters``).
- ``vectors.faiss``: the ANN index in faiss's file format (it holds the vectors), or
- ``vectors.f32``: raw little-endian float32 vectors, for segments too small
  to be worth an index (searched exactly).
"""

from __future__ import annotations

import threading
from typing import Sequence

import msgpack
import numpy as np
import pyarrow as pa

from gleandb.api.errors import CorruptStoreError
from gleandb.index.filters import metadata_columns
from gleandb.index.vector import VectorIndex, exact_search
from gleandb.storage.base import Storage

_BASE_FIELDS = {"id", "rid", "document", "uri", "_meta", "_norm"}


def pack_metadata(md: dict | None) -> bytes | None:
    return None if md is None else msgpack.packb(md, use_bin_type=True)


def unpack_metadata(b: bytes | None) -> dict | None:
    return None if b is None else msgpack.unpackb(b, raw=False)


def build_table(
    ids: Sequence[str],
    rids: np.ndarray,
    documents: Sequence[str | None],
    metadatas: Sequence[dict | None],
    uris: Sequence[str | None],
) -> pa.Table:
    cols: dict[str, pa.Array] = {
        "id": pa.array(ids, pa.string()),
        "rid": pa.array(np.asarray(rids, dtype=np.int64)),
        "document": pa.array(documents, pa.string()),
        "uri": pa.array(uris, pa.string()),
        "_meta": pa.array([pack_metadata(m) for m in metadatas], pa.binary()),
    }
    cols.update(metadata_columns(list(metadatas)))
    return pa.table(cols)


def _concat_tables(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables, promote_options="permissive").combine_chunks()


class Segment:
    """Rows + vectors. Use ``search`` for k-NN and ``take_*`` to read rows."""

    def __init__(
        self,
        name: str,
        table: pa.Table,
        space: str,
        vectors: np.ndarray | None = None,
        index: VectorIndex | None = None,
    ):
        self.name = name
        self.table = table
        self.space = space
        self.n = table.num_rows
        self.rids = table.column("rid").to_numpy()
        self.index = index
        self._vectors = vectors
        self._id_rows: dict[str, int] | None = None
        self._lock = threading.Lock()
        if index is not None:
            self.dim = index.dim
        elif vectors is not None:
            self.dim = vectors.shape[1] if vectors.ndim == 2 else 0
        else:
            self.dim = 0

    # -- building ----------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        name: str,
        space: str,
        ids: Sequence[str],
        rids: np.ndarray,
        embeddings: np.ndarray,
        documents: Sequence[str | None],
        metadatas: Sequence[dict | None],
        uris: Sequence[str | None],
    ) -> "Segment":
        table = build_table(ids, rids, documents, metadatas, uris)
        return cls(name, table, space, vectors=np.ascontiguousarray(embeddings, dtype=np.float32))

    @classmethod
    def merge(cls, name: str, parts: list[tuple["Segment", np.ndarray]]) -> "Segment":
        """Live rows of several segments (``rows`` arrays) as one in-memory segment."""
        space = parts[0][0].space
        tables = []
        vecs = []
        for seg, rows in parts:
            t = seg.table.take(pa.array(rows, pa.int64())) if len(rows) != seg.n else seg.table
            tables.append(t.drop_columns([c for c in ("_norm",) if c in t.column_names]))
            vecs.append(seg.embeddings(rows))
        table = _concat_tables(tables)
        order = np.argsort(table.column("rid").to_numpy(), kind="stable")
        table = table.take(pa.array(order, pa.int64()))
        vectors = np.vstack(vecs)[order] if vecs else np.zeros((0, 0), np.float32)
        return cls(name, table, space, vectors=np.ascontiguousarray(vectors, dtype=np.float32))

    def with_index(self, index: VectorIndex) -> "Segment":
        """The same rows, searched through ``index`` (which now holds the vectors)."""
        table = self.table
        if self.space == "cosine" and self._vectors is not None:
            norms = np.linalg.norm(self._vectors, axis=1).astype(np.float32)
            table = table.drop_columns([c for c in ("_norm",) if c in table.column_names])
            table = table.append_column("_norm", pa.array(norms))
        seg = Segment(self.name, table, self.space, index=index)
        seg._id_rows = self._id_rows
        return seg

    # -- persistence -------------------------------------------------------

    def write(self, storage: Storage, key_prefix: str) -> None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, self.table.schema) as w:
            w.write_table(self.table)
        storage.put(f"{key_prefix}records.arrow", sink.getvalue().to_pybytes())
        if self.index is not None:
            storage.put_from_file(f"{key_prefix}vectors.faiss", self.index.write_faiss_file)
        else:
            vec = self._vectors if self._vectors is not None else np.zeros((self.n, 0), np.float32)
            storage.put(f"{key_prefix}vectors.f32", np.ascontiguousarray(vec, dtype="<f4").tobytes())

    @classmethod
    def read(cls, storage: Storage, key_prefix: str, name: str, space: str, has_index: bool, dim: int) -> "Segment":
        buf = storage.get_buffer(f"{key_prefix}records.arrow")
        table = pa.ipc.open_file(pa.py_buffer(buf)).read_all()
        if has_index:
            key = f"{key_prefix}vectors.faiss"
            path = storage.local_path(key)
            if path is not None:
                index = VectorIndex.from_faiss_file(path, space)
            else:
                index = VectorIndex.from_faiss_buffer(storage.get(key), space)
            if index.n != table.num_rows:
                raise CorruptStoreError(f"segment {name}: index has {index.n} rows, records {table.num_rows}")
            return cls(name, table, space, index=index)
        raw = storage.get(f"{key_prefix}vectors.f32")
        vectors = np.frombuffer(raw, dtype="<f4").reshape(table.num_rows, dim) if dim else np.zeros((table.num_rows, 0), np.float32)
        return cls(name, table, space, vectors=vectors)

    # -- reading -----------------------------------------------------------

    def row_of(self, id_: str) -> int | None:
        rows = self._id_rows
        if rows is None:
            with self._lock:
                if self._id_rows is None:
                    ids = self.table.column("id").to_pylist()
                    self._id_rows = dict(zip(ids, range(len(ids))))
                rows = self._id_rows
        return rows.get(id_)

    def ids_list(self) -> list[str]:
        return self.table.column("id").to_pylist()

    def vectors(self) -> np.ndarray:
        """Vectors as searched (normalised for an index in cosine space)."""
        if self.index is not None:
            return self.index.stored_vectors()
        return self._vectors

    def embeddings(self, rows: np.ndarray) -> np.ndarray:
        """Original vectors of ``rows`` as written by the user."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.index is None:
            return np.asarray(self._vectors[rows], dtype=np.float32)
        vec = np.asarray(self.index.stored_vectors()[rows], dtype=np.float32)
        if self.space == "cosine" and "_norm" in self.table.column_names:
            norms = self.table.column("_norm").to_numpy()[rows]
            vec = vec * norms[:, None]
        return vec

    def take_column(self, name: str, rows: np.ndarray) -> list:
        return self.table.column(name).take(pa.array(rows, pa.int64())).to_pylist()

    def take_metadatas(self, rows: np.ndarray) -> list[dict | None]:
        return [unpack_metadata(b) for b in self.take_column("_meta", rows)]

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, ef_search: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """k nearest allowed rows per query: (distances, rows), rows -1 when missing."""
        if self.index is not None:
            return self.index.search(queries, k, ef_search=ef_search, allowed=allowed)
        rows = None if allowed is None else np.flatnonzero(allowed).astype(np.int64)
        d, r = exact_search(self._vectors, queries, k, self.space, rows=rows)
        return d, r
