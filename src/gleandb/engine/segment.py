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
  to be worth an index (searched exactly), or beside a quantized (``sq8``) index:
  its full-precision vectors (normalised for cosine), memory-mapped, for re-scoring.
- ``fulltext.idx`` / ``trigram.idx``: the BM25 and trigram indexes of the
  ``document`` column (``gleandb.index.fulltext`` / ``gleandb.index.trigram``),
  memory-mapped on first use (a k-NN query reads neither). Memtable segments build them lazily on first use and
  keep them (a segment never changes, so neither do they).
- ``ids.idx``: the id lookup (``gleandb.index.ids``: sorted id hashes and their
  rows), memory-mapped on open, so finding k ids costs O(k log n), not a scan.
  Segments written before it existed build it on first use.

Equality indexes of metadata columns (``gleandb.index.equality``) are built on
the first ``$eq`` / ``$in`` filter that reads the column, in segments of at least
EQUALITY_MIN_ROWS rows, and kept in memory with the segment.

A small segment without an ANN index (at most ``PACK_MAX_ROWS`` rows: a commit's
changed files, a small flush) is written as one file instead, ``segment.pack``,
holding the same files (``gleandb.index.arrays`` layout, one uint8 array per file,
read through ``PackedFiles`` by the same code). Each file of a segment costs an
fsync, so one file instead of four saves three per flush, a third of a small
flush's syncs.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Sequence

import msgpack
import numpy as np
import pyarrow as pa

from gleandb.engine.arena import VectorArena, sealed
from gleandb.errors import CorruptStoreError
from gleandb.index import arrays, pages
from gleandb.index.equality import INDEXED_TAGS, EqualityIndex
from gleandb.index.filters import metadata_columns, parse_column_name
from gleandb.index.fulltext import FullTextConfig, FullTextIndex
from gleandb.index.ids import IdIndex, IdQuery
from gleandb.index.rowfile import RowFile
from gleandb.index.trigram import TrigramIndex
from gleandb.index.vector import VectorIndex, exact_search
from gleandb.storage.base import KeyNotFound, Storage, joined

_BASE_FIELDS = {"id", "rid", "document", "uri", "_meta", "_norm"}
FULLTEXT_FILE = "fulltext.idx"
TRIGRAM_FILE = "trigram.idx"
IDS_FILE = "ids.idx"
# below this many rows an unbuilt trigram index is not worth building for one scan
TRIGRAM_LAZY_MIN_ROWS = 2048
# below this many rows an equality filter scans the column (cheaper than building an index)
EQUALITY_MIN_ROWS = 2048
PACK_FILE = "segment.pack"
PACK_MAX_ROWS = 4096  # a segment without an ANN index and at most this many rows is one file


class PackedFiles:
    """The files of a ``segment.pack`` (a memory-mapped buffer), served by key with the
    storage calls ``Segment.read`` makes, as views into the buffer (nothing copied)."""

    def __init__(self, buf, key_prefix: str):
        meta, arrs = arrays.unpack(buf)
        if meta.get("kind") != "segment":
            raise CorruptStoreError(f"{key_prefix}{PACK_FILE} is not a segment pack")
        self._files = {f"{key_prefix}{name}": a for name, a in arrs.items()}

    def exists(self, key: str) -> bool:
        return key in self._files

    def get_buffer(self, key: str):
        try:
            return memoryview(self._files[key])
        except KeyError:
            raise KeyNotFound(key) from None

    def get(self, key: str):
        return self.get_buffer(key)

    def local_path(self, key: str) -> None:
        return None


# rows of vectors copied per step when merging (bounds the temporary copy)
_CHUNK = 65_536


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


def _merge_plan(parts: list[tuple["Segment", np.ndarray]]) -> tuple[pa.Table, np.ndarray]:
    """The records of the live ``rows`` of several segments, in rid order (no ``_norm``),
    and for each result row its position in the parts' rows laid end to end."""
    tables = []
    for seg, rows in parts:
        t = seg.table.take(pa.array(rows, pa.int64())) if len(rows) != seg.n else seg.table
        tables.append(t.drop_columns([c for c in ("_norm",) if c in t.column_names]))
    table = pa.concat_tables(tables, promote_options="permissive")  # chunks, nothing copied yet
    order = np.argsort(table.column("rid").to_numpy(), kind="stable")
    if not np.array_equal(order, np.arange(len(order))):  # memtable parts are usually in rid order
        table = table.take(pa.array(order, pa.int64()))
    table = table.combine_chunks()  # one copy of the records, not two
    for seg, _ in parts:
        seg.release_table_pages()
    return table, order


def _row_dests(parts: list[tuple["Segment", np.ndarray]], dest: np.ndarray) -> list[tuple["Segment", np.ndarray]]:
    """Each part's segment with the new row of each of its rows (-1 when not taken), from
    ``dest``, the new rows of the parts' ``rows`` laid end to end."""
    out, at = [], 0
    for seg, rows in parts:
        d = np.full(seg.n, -1, dtype=np.int64)
        d[rows] = dest[at : at + len(rows)]
        at += len(rows)
        out.append((seg, d))
    return out


def _vector_chunks(parts: list[tuple["Segment", np.ndarray]], order: np.ndarray, dim: int):
    """The original vectors of the rows ``order`` selects (``_merge_plan``), in that order,
    ``_CHUNK`` rows at a time."""
    starts = np.cumsum([0] + [len(rows) for _, rows in parts])
    for lo in range(0, len(order), _CHUNK):
        src = order[lo : lo + _CHUNK]
        out = np.empty((len(src), dim), dtype=np.float32)
        part = np.searchsorted(starts, src, side="right") - 1
        for p in np.unique(part):
            sel = np.flatnonzero(part == p)
            seg, rows = parts[p]
            taken = rows[src[sel] - starts[p]]
            out[sel] = seg.embeddings(taken)
            seg.release_vector_pages(int(taken.min()), int(taken.max()) + 1)
        yield out


def _full_vectors(storage: Storage, key: str, n: int, dim: int):
    """A quantized index's full-precision vectors file: a ``RowFile`` (pread) where it is a
    local file, else mapped or read as the storage gives it."""
    local = storage.local_path(key)
    if local is not None and hasattr(os, "preadv"):
        return RowFile(local, n, dim)  # re-scoring reads a few rows; mapped, all stayed resident
    return np.frombuffer(storage.get_buffer(key), dtype="<f4").reshape(n, dim)


def _joined_vectors(parts: list[tuple["Segment", np.ndarray]], order: np.ndarray,
                    arena: VectorArena | None) -> np.ndarray | None:
    """The merged vectors as one view of ``arena``, when every part gives all its rows, the
    merge keeps their order and their vectors lie end to end there (else None)."""
    if arena is None or not np.array_equal(order, np.arange(len(order))):
        return None
    if any(seg.index is not None or seg._vectors is None or len(rows) != seg.n for seg, rows in parts):
        return None
    return arena.joined([seg._vectors for seg, _ in parts])


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
        self._ids: IdIndex | None = None
        self._equality: dict[str, EqualityIndex] = {}
        self._lock = threading.Lock()
        self._fulltext: FullTextIndex | None = None
        self._trigram: TrigramIndex | None = None
        # (storage, key prefix) of a persisted segment: its text index files are read on first
        # use (a k-NN query needs neither, so a cold query node does not fetch them)
        self._text_source: tuple[Storage, str] | None = None
        # key of this segment's vectors.faiss when already written (``with_index_on_disk``)
        self._index_key: str | None = None
        # likewise its vectors.f32 (a quantized index's full-precision vectors)
        self._full_key: str | None = None
        self._text_tried: set[str] = set()
        # compaction's inputs and where their rows went: the text indexes are merged from
        # theirs (``build_text_indexes``), not built again from the documents
        self._sources: list[tuple[Segment, np.ndarray]] | None = None
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
    def merge(cls, name: str, parts: list[tuple["Segment", np.ndarray]], keep_sources: bool = False,
              arena: VectorArena | None = None) -> "Segment":
        """Live rows of several segments (``rows`` arrays) as one in-memory segment, in rid
        order. Vectors are written once into the result, a chunk at a time (no stacked
        or reordered intermediate copies of the whole set). ``keep_sources``: remember
        the parts, so ``build_text_indexes`` merges their text indexes (compaction's
        persisted inputs have them; a freeze's memtable parts do not).

        ``arena`` (the memtable's): when the parts' vectors are all their rows, in order,
        end to end in it, the result views that range and nothing is copied; otherwise
        they are copied into it while it has room (so later rows can join them)."""
        space = parts[0][0].space
        table, order = _merge_plan(parts)
        total = len(order)
        dim = max((seg.dim for seg, _ in parts), default=0)
        vectors = _joined_vectors(parts, order, arena)
        if vectors is not None:
            seg = cls(name, table, space, vectors=vectors)
            if keep_sources:
                seg._sources = _row_dests(parts, np.arange(total, dtype=np.int64))
            return seg
        into_arena = arena is not None and total and arena.dim == dim and arena.room() >= total
        vectors = arena.reserve(total) if into_arena else np.empty((total, dim), dtype=np.float32)
        dest = np.empty(total, dtype=np.int64)
        dest[order] = np.arange(total)  # where each concatenated row lands
        off = 0
        for seg, rows in parts:
            for lo in range(0, len(rows), _CHUNK):
                chunk = rows[lo : lo + _CHUNK]
                vectors[dest[off + lo : off + lo + len(chunk)]] = seg.embeddings(chunk)
                seg.release_vector_pages(int(chunk[0]), int(chunk[-1]) + 1)
            off += len(rows)
        seg = cls(name, table, space, vectors=sealed(vectors) if into_arena else vectors)
        if keep_sources:
            seg._sources = _row_dests(parts, dest)
        return seg

    @classmethod
    def extend(
        cls, name: str, base: "Segment", others: list[tuple["Segment", np.ndarray]], source_path: str | None = None,
        between: Callable[[], None] | None = None,
    ) -> "Segment":
        """``base`` (all its rows, same row numbers, with an index) followed by the live
        rows of ``others`` (in rid order), searched through base's graph extended with
        the new rows instead of a graph rebuilt over all of them. Text indexes are merged
        from the inputs' by ``build_text_indexes``, as after ``merge(keep_sources=True)``.

        The new rows' vectors go into the graph a chunk at a time, read from ``others``
        (memory-mapped when persisted): they are never all copied at once, which at 150k
        rows of 384-d saved 230 MiB of compaction's peak. ``between`` is called before
        each chunk goes in (compaction runs waiting flushes there: ``BackgroundWorker.run_urgent``)."""
        t_base = base.table
        if base.space == "cosine" and "_norm" not in t_base.column_names:
            raise ValueError(f"segment {base.name} has no _norm column to extend")
        table, order = _merge_plan(others)
        norms = np.empty(len(order), dtype=np.float32) if base.space == "cosine" else None

        def chunks():
            at = 0
            for vec in _vector_chunks(others, order, base.dim):
                if between is not None:
                    between()
                if norms is not None:  # the original norms, kept in the _norm column
                    norms[at : at + len(vec)] = np.linalg.norm(vec, axis=1)
                at += len(vec)
                yield vec

        index = base.index.extended(chunks(), source_path=source_path, rows=len(order))
        if norms is not None:
            t_rest = table.append_column("_norm", pa.array(norms))
        else:
            t_base = t_base.drop_columns([c for c in ("_norm",) if c in t_base.column_names])
            t_rest = table
        seg = cls(name, _concat_tables([t_base, t_rest]), base.space, index=index)
        base.release_table_pages()
        dest = np.empty(len(order), dtype=np.int64)
        dest[order] = np.arange(base.n, base.n + len(order))
        seg._sources = [(base, np.arange(base.n, dtype=np.int64))] + _row_dests(others, dest)
        return seg

    def with_index(self, index: VectorIndex) -> "Segment":
        """The same rows, searched through ``index`` (which now holds the vectors)."""
        table = self.table
        if self.space == "cosine" and self._vectors is not None:
            norms = np.linalg.norm(self._vectors, axis=1).astype(np.float32)
            table = table.drop_columns([c for c in ("_norm",) if c in table.column_names])
            table = table.append_column("_norm", pa.array(norms))
        seg = Segment(self.name, table, self.space, index=index)
        seg._ids = self._ids
        seg._equality = self._equality
        seg._fulltext, seg._trigram = self._fulltext, self._trigram
        seg._text_source, seg._text_tried = self._text_source, set(self._text_tried)
        seg._sources = self._sources
        return seg

    # -- text indexes --------------------------------------------------------

    def fulltext(self, config: FullTextConfig) -> FullTextIndex:
        """The BM25 index of the documents (built on first use when not loaded)."""
        idx = self._fulltext
        if idx is not None and idx.analysis == config.analysis_key():
            return idx
        with self._lock:
            if self._fulltext is None:
                self._fulltext = self._load_text_index(FULLTEXT_FILE, FullTextIndex)
            idx = self._fulltext
            if idx is None or idx.analysis != config.analysis_key():
                idx = self._fulltext = FullTextIndex.build(self.table.column("document"), config)
            return idx

    def trigram_index(self, build: bool | None = None) -> TrigramIndex | None:
        """The trigram index of the documents. When not built yet it is built if
        ``build`` (default: only for segments of at least TRIGRAM_LAZY_MIN_ROWS rows,
        where it pays for itself; smaller ones are scanned)."""
        idx = self._trigram
        if idx is not None:
            return idx
        if self._text_source is not None and TRIGRAM_FILE not in self._text_tried:
            with self._lock:
                if self._trigram is None:
                    self._trigram = self._load_text_index(TRIGRAM_FILE, TrigramIndex)
            if self._trigram is not None:
                return self._trigram
        if build is None:
            build = self.n >= TRIGRAM_LAZY_MIN_ROWS
        if not build:
            return None
        with self._lock:
            if self._trigram is None:
                self._trigram = TrigramIndex.build(self.table.column("document"))
            return self._trigram

    def build_text_indexes(self, config: FullTextConfig) -> None:
        """Build both text indexes and the id index now (before a segment is written).
        A segment compaction made from indexed ones (``_sources``) merges their postings
        instead (``FullTextIndex.merge``, ``TrigramIndex.merge``: the same arrays, without
        the build's 8 bytes a posting while sorting); the inputs are let go after."""
        sources, self._sources = self._sources, None
        if sources:
            with self._lock:
                if self._fulltext is None:
                    self._fulltext = FullTextIndex.merge([(s.fulltext(config), d) for s, d in sources], self.n, config)
                if self._trigram is None:
                    self._trigram = TrigramIndex.merge([(s.trigram_index(build=True), d) for s, d in sources], self.n)
            for s, _ in sources:
                s.release_text_pages()
            del sources
        self.fulltext(config)
        self.trigram_index(build=True)
        self.id_index()

    # -- resident pages of mapped files (compaction reads its inputs once) -----------

    def release_vector_pages(self, lo: int, hi: int) -> None:
        """Drop the mapped pages of rows lo..hi-1's stored vectors from the resident set
        (``gleandb.index.pages``; nothing for vectors held in memory)."""
        if self.index is not None and not self.index.quantization:
            pages.release(self.index.stored_vectors()[lo:hi])

    def release_table_pages(self) -> None:
        """Drop the mapped pages of the records file (nothing for an in-memory table)."""
        if self._text_source is None:  # not read from storage: nothing of it is mapped
            return
        for column in self.table.columns:
            for chunk in column.chunks:
                for buf in chunk.buffers():
                    if buf is not None and buf.size >= pages.PAGE:
                        pages.release(np.frombuffer(buf, dtype=np.uint8))

    def release_text_pages(self) -> None:
        """Drop the mapped pages of the text index files (nothing for built ones)."""
        for idx in (self._fulltext, self._trigram):
            for arr in vars(idx).values() if idx is not None else ():
                if isinstance(arr, np.ndarray) and arr.nbytes >= pages.PAGE:
                    pages.release(arr)

    def value_index(self, column: str) -> EqualityIndex | None:
        """The equality index of metadata column ``column`` (built on first use and kept),
        or None where a scan is as cheap (small segments, float and list columns)."""
        idx = self._equality.get(column)
        if idx is not None:
            return idx
        if self.n < EQUALITY_MIN_ROWS or column not in self.table.column_names:
            return None
        parsed = parse_column_name(column)
        if parsed is None or parsed[0] not in INDEXED_TAGS:
            return None
        with self._lock:
            idx = self._equality.get(column)
            if idx is None:
                idx = EqualityIndex.build(parsed[0], self.table.column(column))
                self._equality = {**self._equality, column: idx}  # readers never see a dict change
            return idx

    def id_index(self) -> IdIndex:
        """The id lookup (loaded with the segment, else built on first use and kept)."""
        idx = self._ids
        if idx is None:
            with self._lock:
                if self._ids is None:
                    self._ids = IdIndex.build(self.table.column("id"))
                idx = self._ids
        return idx

    # -- persistence -------------------------------------------------------

    def write(self, storage: Storage, key_prefix: str) -> None:
        """Write the segment's files; if one fails (a full disk), remove those already written:
        no manifest names the segment yet, and its rows stay in the memtable and the WAL."""
        written: list[str] = []

        def files():  # produced one at a time (no two files' bytes held at once), synced together
            sink = pa.BufferOutputStream()
            with pa.ipc.new_file(sink, self.table.schema) as w:
                w.write_table(self.table)
            written.append(f"{key_prefix}records.arrow")
            yield written[-1], sink.getvalue()  # Arrow's buffer itself: no second copy
            del sink
            if self.index is None or self.index.quantization is not None:
                # no index: the vectors as written; quantized index: its full-precision vectors
                written.append(f"{key_prefix}vectors.f32")
                if self._full_key != written[-1]:
                    yield written[-1], self._vectors_file()
            if self._fulltext is not None:
                written.append(f"{key_prefix}{FULLTEXT_FILE}")
                yield written[-1], self._fulltext.to_parts()
            if self._trigram is not None:
                written.append(f"{key_prefix}{TRIGRAM_FILE}")
                yield written[-1], self._trigram.to_parts()
            if self._ids is not None:
                written.append(f"{key_prefix}{IDS_FILE}")
                yield written[-1], self._ids.to_parts()

        try:
            if self.index is None and self.n <= PACK_MAX_ROWS:
                pack = arrays.pack({"kind": "segment"}, {
                    key[len(key_prefix):]: np.frombuffer(joined(data), dtype=np.uint8) for key, data in files()})
                written.clear()
                written.append(f"{key_prefix}{PACK_FILE}")
                storage.put(written[-1], pack)
                return
            storage.put_many(files())
            if self.index is not None:
                written.append(f"{key_prefix}vectors.faiss")
                if self._index_key != written[-1]:
                    storage.put_from_file(written[-1], self.index.write_faiss_file)
        except BaseException:
            self._index_key = self._full_key = None  # removed below: a retry writes them again
            for key in written:
                try:
                    storage.delete(key)
                except Exception:  # the original error matters more
                    pass
            raise

    def _vectors_file(self) -> list:
        """vectors.f32's bytes, as parts for ``Storage.put_many``: the vectors as written (no
        index) or a quantized index's full-precision ones, from their own memory (no copy
        when they are in memory; all rows read when they are a ``RowFile``)."""
        if self.index is not None:
            vec = np.asarray(self.index.stored_vectors())
        else:
            vec = self._vectors if self._vectors is not None else np.zeros((self.n, 0), np.float32)
        return [np.ascontiguousarray(vec, dtype="<f4")]

    def with_index_on_disk(self, storage: Storage, key_prefix: str) -> "Segment":
        """The same segment searched through its index file, written now and memory-mapped:
        the built graph and vectors (private memory, the largest part of a new segment) go
        before its text indexes are built and its other files written, instead of after.
        A quantized index's full-precision vectors are written now too and read back as a
        ``RowFile`` (at the 800k-row compaction of 1M sq8 they and the codes were held
        privately through the text indexes and the writing, with a copy of the vectors made
        to write them: 4.2 GiB over the data). Self with the files already written when
        the storage has no local file to map. ``write`` then skips them (or writes them
        again if a later file failed and they were removed)."""
        key = f"{key_prefix}vectors.faiss"
        if self.index is None:
            return self
        full_key = None
        if self.index.quantization is not None:
            full_key = f"{key_prefix}vectors.f32"
            storage.put_many([(full_key, self._vectors_file())])
        storage.put_from_file(key, self.index.write_faiss_file)
        path = storage.local_path(key)
        if path is None:  # not a local file (object storage): written early, kept in memory
            self._index_key, self._full_key = key, full_key  # a segment no reader sees yet (a fresh build)
            return self
        full = None if full_key is None else _full_vectors(storage, full_key, self.n, self.dim)
        seg = self.with_index(VectorIndex.from_faiss_file(path, self.space, mmap=True, vectors=full))
        seg._index_key, seg._full_key = key, full_key
        return seg

    def _load_text_index(self, fname: str, cls):
        """Map text index file ``fname`` when present and consistent, once (call with ``_lock``
        held). None when there is none: older segments have none, and a segment whose files
        were already collected (an old version still being read) builds it from its rows."""
        if self._text_source is None or fname in self._text_tried:
            return None
        self._text_tried.add(fname)
        storage, key_prefix = self._text_source
        key = f"{key_prefix}{fname}"
        if not storage.exists(key):
            return None
        try:
            idx = cls.from_buffer(storage.get_buffer(key))
        except KeyError:  # collected since the check above
            return None
        except Exception as exc:
            raise CorruptStoreError(f"segment {self.name}: unreadable {fname}: {exc}") from exc
        if idx.n != self.n:
            raise CorruptStoreError(f"segment {self.name}: {fname} has {idx.n} rows, records {self.n}")
        return idx

    def _load_id_index(self, storage: Storage, key_prefix: str) -> None:
        """Map ``ids.idx`` when present and consistent (segments written before it existed
        have none: it is built on first use instead). Read at open, unlike the text indexes:
        every write by id and every get by id asks it."""
        key = f"{key_prefix}{IDS_FILE}"
        if not storage.exists(key):
            return
        try:
            idx = IdIndex.from_buffer(storage.get_buffer(key))
        except Exception as exc:
            raise CorruptStoreError(f"segment {self.name}: unreadable {IDS_FILE}: {exc}") from exc
        if idx.n != self.n:
            raise CorruptStoreError(f"segment {self.name}: {IDS_FILE} has {idx.n} rows, records {self.n}")
        self._ids = idx

    @classmethod
    def read(cls, storage: Storage, key_prefix: str, name: str, space: str, has_index: bool, dim: int) -> "Segment":
        if not has_index:
            try:
                storage = PackedFiles(storage.get_buffer(f"{key_prefix}{PACK_FILE}"), key_prefix)
            except KeyNotFound:
                pass  # a segment of separate files
        buf = storage.get_buffer(f"{key_prefix}records.arrow")
        table = pa.ipc.open_file(pa.py_buffer(buf)).read_all()
        if has_index:
            key = f"{key_prefix}vectors.faiss"
            path = storage.local_path(key)
            full = None  # a quantized index's full-precision vectors
            if storage.exists(f"{key_prefix}vectors.f32"):
                full = _full_vectors(storage, f"{key_prefix}vectors.f32", table.num_rows, dim)
            if path is not None:
                index = VectorIndex.from_faiss_file(path, space, mmap=True, vectors=full)
            else:
                index = VectorIndex.from_faiss_buffer(storage.get(key), space, vectors=full)
            if index.n != table.num_rows:
                raise CorruptStoreError(f"segment {name}: index has {index.n} rows, records {table.num_rows}")
            seg = cls(name, table, space, index=index)
        else:
            raw = storage.get_buffer(f"{key_prefix}vectors.f32")  # mapped where the storage can
            vectors = np.frombuffer(raw, dtype="<f4").reshape(table.num_rows, dim) if dim else np.zeros((table.num_rows, 0), np.float32)
            seg = cls(name, table, space, vectors=vectors)
        seg._text_source = (storage, key_prefix)  # text indexes: read on first use
        seg._load_id_index(storage, key_prefix)
        return seg

    def reopened(self, storage: Storage, key_prefix: str) -> "Segment":
        """This segment read back from the files ``write`` just made, memory-mapped: the
        built (private, anonymous) copies of the records, the graph and the vectors can
        then go, leaving file pages the OS may share and reclaim. Self when the storage has
        no local files to map."""
        if storage.local_path(f"{key_prefix}records.arrow") is None:
            return self
        seg = Segment.read(storage, key_prefix, self.name, self.space, self.index is not None, self.dim)
        seg._ids, seg._equality = self._ids, self._equality
        return seg

    # -- reading -----------------------------------------------------------

    def find_ids(self, query: IdQuery) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``query.ids``, rows) of the asked ids this segment holds
        (deleted rows included: the caller applies its delete mask)."""
        return self.id_index().find(self.table.column("id"), query)

    def row_of(self, id_: str) -> int | None:
        _qi, rows = self.find_ids(IdQuery([id_]))
        return int(rows[0]) if len(rows) else None

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
        if allowed is None:
            return exact_search(self._vectors, queries, k, self.space)
        # only the allowed rows are handed over: exact_search checks every vector it is
        # given (finite values), which over the whole segment would cost O(rows) per query
        rows = np.flatnonzero(allowed).astype(np.int64)
        d, r = exact_search(self._vectors[rows], queries, k, self.space)
        return d, rows[r]  # rows ascend, so ties still go to the lower row
