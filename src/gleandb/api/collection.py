"""``Collection``: chromadb's collection API over a ``CollectionStore``.

Each method validates its input first (``gleandb.api.validation``, chromadb's
checks and messages), computes embeddings if it must, and only then touches the
store, so bad input raises before anything is written. Writes are resolved and
committed by the store under its write lock (``CollectionStore.commit``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pyarrow as pa

from gleandb.api import validation as v
from gleandb.api.errors import InternalError, InvalidArgumentError
from gleandb.api.schema import Schema, check_filters, effective_schema, value_type_of_tag
from gleandb.api.results import GetResult, QueryResult, get_result, query_result, wants_metadatas
from gleandb.engine.store import CollectionStore, Hydrated, SegView
from gleandb.engine.wal import WalBatch
from gleandb import deadlines
from gleandb.index.filters import compile_filter, parse_column_name
from gleandb.retrieval.config import UNSET
from gleandb.index.vector import raw_distances

if TYPE_CHECKING:
    from gleandb.api.client import Client
    from gleandb.catalog.catalog import CollectionRecord

NO_BATCH_LIMIT = 1 << 62
DEFAULT_GET_INCLUDE = ["metadatas", "documents"]
DEFAULT_QUERY_INCLUDE = ["metadatas", "documents", "distances"]


def _merge_metadata(old: dict | None, new: dict | None) -> dict | None:
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


def _hydrate_fields(include: list[str]) -> set[str]:
    """Columns to read for ``include`` ("data" returns metadatas too, as in chromadb, and
    metadatas need the uris: a record with a uri and no metadata reads back ``{}``)."""
    return set(include) | ({"metadatas", "uris"} if wants_metadatas(include) else set())


def _clean_new_metadata(md: dict | None) -> dict | None:
    if md is None:
        return None
    out = {k: val for k, val in md.items() if val is not None}
    return out or None


class Collection:
    def __init__(self, client: "Client", record: "CollectionRecord", embedding_function: Any, data_loader: Any = None):
        self._client = client
        self._record = record
        self._embedding_function = embedding_function
        self._data_loader = data_loader

    # ------------------------------------------------------------ properties

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(self._record.id)

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def metadata(self) -> dict | None:
        return self._record.metadata

    @property
    def tenant(self) -> str:
        return self._record.tenant

    @property
    def database(self) -> str:
        return self._record.database

    @property
    def configuration_json(self) -> dict:
        return {k: val for k, val in self._record.configuration.items() if k != "schema"}

    @property
    def configuration(self) -> dict:
        cfg = self.configuration_json
        cfg["embedding_function"] = self._embedding_function
        return cfg

    @property
    def schema(self) -> Schema:
        """The collection's ``Schema`` (chromadb's default one unless created with one)."""
        discovered: dict[str, set[str]] = {}
        for view in self._store.snapshot():
            for col in view.seg.table.column_names:
                parsed = parse_column_name(col)
                vt = value_type_of_tag(parsed[0]) if parsed else None
                if vt is not None:
                    discovered.setdefault(parsed[1], set()).add(vt)
        return Schema.deserialize_from_json(
            effective_schema(self.configuration_json, self._record.configuration.get("schema"), discovered)
        )

    def _check_schema_filters(self, where: Any, where_document: Any) -> None:
        check_filters(self._record.configuration.get("schema"), where, where_document)

    @property
    def embedding_function(self) -> Any:
        return self._embedding_function

    @property
    def data_loader(self) -> Any:
        return self._data_loader

    @property
    def dimension(self) -> int | None:
        return self._store.dimension

    def __repr__(self) -> str:
        return f"Collection(name={self.name})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Collection) and self._record.to_dict() == other._record.to_dict()

    def __hash__(self) -> int:
        return hash(self._record.id)

    @property
    def _store(self) -> CollectionStore:
        return self._client._store_for(self._record)

    # ---------------------------------------------------------------- embed

    def _embed(self, method: str, inputs: Any) -> Any:
        target = v.embedding_target(method, inputs)
        if target is None:
            return inputs
        ef = self._embedding_function
        if ef is None:
            raise v.no_embedding_function_error(method)
        if target == "uris":
            if self._data_loader is None:
                raise v.no_data_loader_error(method)
            data = self._data_loader(inputs.uris)
        else:
            data = getattr(inputs, target)
        with v.validation_context(method):
            embeddings = ef.embed_query(data) if method == "query" and hasattr(ef, "embed_query") else ef(data)
        out = v.attach_embeddings(method, inputs, embeddings)
        if method != "query" and len(out.embeddings) != len(out.ids):
            # an embedding function that returns a different number of vectors
            raise InvalidArgumentError("Inconsistent number of IDs, embeddings, documents, URIs and metadatas")
        return out

    # ---------------------------------------------------------------- write

    def _prepare_write(self, method: str, ids, embeddings, metadatas, documents, images, uris):
        rs = v.prepare_record_set(method, ids, embeddings, metadatas, documents, images, uris)
        rs = self._embed(method, rs)
        matrix = v.validate_write_for_engine(method, rs, self._store.dimension, max_batch_size=NO_BATCH_LIMIT)
        return rs, matrix

    def add(self, ids, embeddings=None, metadatas=None, documents=None, images=None, uris=None) -> None:
        """Insert records; ids that exist already are left untouched (chromadb semantics)."""
        rs, matrix = self._prepare_write("add", ids, embeddings, metadatas, documents, images, uris)

        def build(st: CollectionStore) -> WalBatch | None:
            found = st.existing(rs.ids)
            seen: set[str] = set()
            keep = []
            for i, id_ in enumerate(rs.ids):
                if id_ in found or id_ in seen:
                    continue
                seen.add(id_)
                keep.append(i)
            if not keep:
                return None
            b = WalBatch(seq=0)
            b.put_ids = [rs.ids[i] for i in keep]
            b.put_rids = list(range(st.next_rid, st.next_rid + len(keep)))
            b.put_embeddings = matrix[keep]
            b.put_documents = [rs.documents[i] if rs.documents else None for i in keep]
            b.put_metadatas = [_clean_new_metadata(rs.metadatas[i]) if rs.metadatas else None for i in keep]
            b.put_uris = [rs.uris[i] if rs.uris else None for i in keep]
            return b

        self._store.commit(build)

    def _merge_build(self, rs, matrix, insert_missing: bool):
        def build(st: CollectionStore) -> WalBatch | None:
            found = st.existing(rs.ids)
            old = st.read_records(found)
            b = WalBatch(seq=0)
            emb_rows = []
            seen: set[str] = set()
            next_rid = st.next_rid
            for i, id_ in enumerate(rs.ids):
                if id_ in seen:
                    continue
                doc = rs.documents[i] if rs.documents is not None else None
                md = rs.metadatas[i] if rs.metadatas is not None else None
                uri = rs.uris[i] if rs.uris is not None else None
                if id_ in old:
                    o = old[id_]
                    rid = o["rid"]
                    emb = matrix[i] if matrix is not None else o["embedding"]
                    doc = doc if doc is not None else o["document"]
                    md = _merge_metadata(o["metadata"], md)
                    uri = uri if uri is not None else o["uri"]
                elif insert_missing:
                    rid = next_rid
                    next_rid += 1
                    emb = matrix[i]
                    md = _clean_new_metadata(md)
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

    def update(self, ids, embeddings=None, metadatas=None, documents=None, images=None, uris=None) -> None:
        """Change existing records (metadata merges; None deletes a key); missing ids are ignored."""
        rs, matrix = self._prepare_write("update", ids, embeddings, metadatas, documents, images, uris)
        self._store.commit(self._merge_build(rs, matrix, insert_missing=False))

    def upsert(self, ids, embeddings=None, metadatas=None, documents=None, images=None, uris=None) -> None:
        """Insert missing ids, update existing ones (merging metadata)."""
        rs, matrix = self._prepare_write("upsert", ids, embeddings, metadatas, documents, images, uris)
        self._store.commit(self._merge_build(rs, matrix, insert_missing=True))

    def delete(self, ids=None, where=None, where_document=None, limit=None) -> dict:
        """Delete by ids and/or filters; returns ``{"deleted": n}``."""
        id_list, limit = v.validate_delete_args(ids, where, where_document, limit)
        with v.validation_context("delete"):
            filt = compile_filter(where, where_document)
        self._check_schema_filters(where, where_document)
        limit = v.validate_u32_argument("limit", limit)
        count = {"n": 0}

        def build(st: CollectionStore) -> WalBatch | None:
            if filt is None:
                found = st.existing(id_list)
                victims = [i for i in dict.fromkeys(id_list) if i in found]
                count["n"] = len(id_list)  # chromadb reports the ids sent
            else:
                victims = self._matching_ids(st.snapshot(), filt, id_list, limit)
                count["n"] = len(victims)
            if not victims:
                return None
            return WalBatch(seq=0, delete_ids=victims)

        self._store.commit(build)
        return {"deleted": count["n"]}

    # ----------------------------------------------------------------- read

    @staticmethod
    def _ids_set(ids: Sequence[str] | None) -> pa.Array | None:
        return None if ids is None else pa.array(list(ids), pa.string())

    def _select(self, snap: Sequence[SegView], filt, ids) -> list[tuple[int, np.ndarray]]:
        return CollectionStore.select_rows(snap, filt, ids)

    def _matching_ids(self, snap, filt, ids, limit) -> list[str]:
        picks = self._ordered_picks(snap, self._select(snap, filt, ids), None)
        if limit is not None:
            picks = picks[:limit]
        return CollectionStore.hydrate(snap, picks, set(), None).ids

    @staticmethod
    def _ordered_picks(snap, selected, order_by) -> np.ndarray:
        if not selected:
            return np.zeros((0, 2), dtype=np.int64)
        vis = np.concatenate([np.full(len(r), vi, dtype=np.int64) for vi, r in selected])
        rows = np.concatenate([r for _vi, r in selected])
        if order_by is None:
            rids = np.concatenate([snap[vi].seg.rids[r] for vi, r in selected])
            if np.all(rids[:-1] <= rids[1:]):  # segments hold disjoint rid ranges in order: common
                return np.stack([vis, rows], axis=1)
            order = np.argsort(rids, kind="stable")
        else:
            order = Collection._order_by(snap, selected, order_by)
        return np.stack([vis[order], rows[order]], axis=1)  # (n, 2): view index, row

    @staticmethod
    def _order_by(snap, selected, order_by) -> np.ndarray:
        keys = [order_by] if isinstance(order_by, str) else list(order_by)
        if not keys or not all(isinstance(k, str) and k.lstrip("-") for k in keys):
            raise ValueError(f"Expected order_by to be a metadata key or a list of keys, got {order_by!r}")
        rids = np.concatenate([snap[vi].seg.rids[r] for vi, r in selected])
        sort_cols: list[np.ndarray] = [rids]  # last resort: insertion order
        for spec in reversed(keys):
            desc = spec.startswith("-")
            key = spec[1:] if desc else spec
            nums, strs, kind = [], [], []
            for vi, r in selected:
                table = snap[vi].seg.table
                num = np.full(len(r), np.nan)
                sv = np.full(len(r), "", dtype=object)
                k = np.full(len(r), 3, dtype=np.int8)  # 0 number, 1 string, 2 bool, 3 missing
                for col in table.column_names:
                    parsed = parse_column_name(col)
                    if parsed is None or parsed[1] != key or parsed[0] not in ("i", "f", "s", "b"):
                        continue
                    vals = table.column(col).take(pa.array(r, pa.int64())).to_pylist()
                    for j, x in enumerate(vals):
                        if x is None:
                            continue
                        if parsed[0] == "s":
                            sv[j], k[j] = x, 1
                        elif parsed[0] == "b":
                            num[j], k[j] = float(x), 2
                        else:
                            num[j], k[j] = float(x), 0
                nums.append(num)
                strs.append(sv)
                kind.append(k)
            num = np.concatenate(nums)
            sv = np.concatenate(strs)
            kd = np.concatenate(kind)
            # strings ranked among themselves, then everything as one numeric key
            uniq, srank = np.unique(sv.astype(str), return_inverse=True)
            value = np.where(kd == 1, srank.astype(np.float64), np.nan_to_num(num))
            if desc:
                value = -value
            sort_cols.append(value)
            sort_cols.append(kd)  # present values before missing ones, numbers first
        return np.lexsort(tuple(sort_cols))

    def get(
        self,
        ids=None,
        where=None,
        limit=None,
        offset=None,
        where_document=None,
        include=DEFAULT_GET_INCLUDE,
        order_by=None,
    ) -> GetResult:
        """Records by ids and/or filters, in insertion order (or ``order_by`` a metadata key;
        prefix the key with '-' for descending)."""
        include = v.validate_include(include, "get", has_data_loader=self._data_loader is not None)
        id_list = v.validate_ids_for_read(ids, "get")
        with v.validation_context("get"):
            filt = compile_filter(where, where_document)
        self._check_schema_filters(where, where_document)
        limit, offset = v.validate_limit_offset(limit, offset)
        snap = self._store.snapshot()
        picks = self._ordered_picks(snap, self._select(snap, filt, id_list), order_by)
        picks = picks[offset:] if offset else picks
        if limit is not None:
            picks = picks[:limit]
        h = CollectionStore.hydrate(snap, picks, _hydrate_fields(include), self._store.dimension)
        return get_result(h, include, self._load_data(h, include))  # type: ignore[return-value]

    def _load_data(self, h, include) -> list | None:
        if "data" in include and self._data_loader is not None:
            return self._data_loader(h.uris)
        return None

    def peek(self, limit: int = 10) -> GetResult:
        return self.get(limit=limit, include=["embeddings", "documents", "metadatas"])

    def count(self, where=None, where_document=None, **_ignored: Any) -> int:
        """Number of records; with filters, the number that match (a gleandb extension)."""
        with v.validation_context("count"):
            filt = compile_filter(where, where_document)
        self._check_schema_filters(where, where_document)
        if filt is None:
            return self._store.count()
        snap = self._store.snapshot()
        return sum(len(r) for _vi, r in self._select(snap, filt, None))

    def _prepare_query(
        self, query_embeddings, query_texts, query_images, query_uris, ids, n_results, where, where_document, include
    ):
        """chromadb's checks of a query, in its order, then embedding of query texts.
        Shared with the HTTP collection so both raise the same errors."""
        qi = v.prepare_query_inputs(query_embeddings, query_texts, query_images, query_uris)
        include = v.validate_include(include, "query", has_data_loader=self._data_loader is not None)
        n_results = v.validate_n_results(n_results)
        with v.validation_context("query"):
            filt = compile_filter(where, where_document)
        self._check_schema_filters(where, where_document)
        qi = self._embed("query", qi)
        id_list = v.validate_query_ids(ids)
        return qi, include, n_results, filt, id_list

    def query(
        self,
        query_embeddings=None,
        query_texts=None,
        query_images=None,
        query_uris=None,
        ids=None,
        n_results: int = 10,
        where=None,
        where_document=None,
        include=DEFAULT_QUERY_INCLUDE,
    ) -> QueryResult:
        """k nearest neighbours of each query, among the records that pass the filters."""
        qi, include, n_results, filt, id_list = self._prepare_query(
            query_embeddings, query_texts, query_images, query_uris, ids, n_results, where, where_document, include
        )
        store = self._store
        dim = store.dimension
        queries = v.query_embedding_matrix(qi.embeddings, dim)
        nq = queries.shape[0]
        if dim is None:
            empty = [Hydrated(embeddings=np.zeros((0, 0), np.float32)) for _ in range(nq)]
            data = [self._load_data(h, include) for h in empty] if self._data_loader is not None else None
            return query_result(empty, [[] for _ in range(nq)], data, include)  # type: ignore[return-value]
        snap = store.snapshot()
        ids_set = self._ids_set(id_list)
        k = n_results
        # chromadb answers a query holding NaN or infinities (its distances are NaN/inf);
        # the index cannot search with one, so such a query takes the rows a zero vector
        # finds, and its distances are computed from its real values afterwards
        bad = ~np.isfinite(queries).all(axis=1)
        search_q = queries
        if bad.any():
            search_q = queries.copy()
            search_q[bad] = 0.0
        cand_d, cand_v, cand_r = [], [], []
        masks = CollectionStore.allowed_masks(snap, filt, ids_set)
        if id_list is not None and filt is None:
            self._require_query_ids(snap, masks, id_list)
        for vi, (view, mask) in enumerate(zip(snap, masks)):
            if mask is not None and not mask.any():
                continue
            deadlines.check()
            d, r = view.seg.search(search_q, k, mask, store.params.ef_search)
            cand_d.append(d)
            cand_r.append(r)
            cand_v.append(np.full(r.shape, vi, dtype=np.int64))
        dists_out, picks_out = [], []
        if cand_d:
            D = np.concatenate(cand_d, axis=1)
            R = np.concatenate(cand_r, axis=1)
            V = np.concatenate(cand_v, axis=1)
            D = np.where(R < 0, np.inf, D)
            order = np.argsort(D, axis=1, kind="stable")[:, :k]
            for qi_ in range(nq):
                o = order[qi_]
                o = o[R[qi_, o] >= 0]
                dists_out.append([float(x) for x in D[qi_, o]])
                picks_out.append(list(zip(V[qi_, o].tolist(), R[qi_, o].tolist())))
        else:
            dists_out = [[] for _ in range(nq)]
            picks_out = [[] for _ in range(nq)]
        if bad.any():
            self._nonfinite_distances(snap, queries, bad, picks_out, dists_out, store.params.space)
        # every query's rows count against a response budget before any is built
        fields = _hydrate_fields(include)
        CollectionStore.charge_budget(snap, picks_out, fields, dim)
        hyd = [CollectionStore.hydrate(snap, p, fields, dim, charged=True) for p in picks_out]
        data = [self._load_data(h, include) for h in hyd] if self._data_loader is not None else None
        return query_result(hyd, dists_out, data, include)  # type: ignore[return-value]

    @staticmethod
    def _require_query_ids(snap, masks, id_list) -> None:
        """chromadb refuses ``query(ids=...)`` naming an id that is not in the collection
        (unless a where/where_document filter is given): InternalError, here naming them."""
        wanted = list(dict.fromkeys(id_list))
        sizes = [view.seg.n if mask is None else int(np.count_nonzero(mask)) for view, mask in zip(snap, masks)]
        if sum(sizes) >= len(wanted):
            return
        picks = [(vi, int(r)) for vi, (view, mask) in enumerate(zip(snap, masks))
                 for r in (range(view.seg.n) if mask is None else np.flatnonzero(mask))]
        found = set(CollectionStore.hydrate(snap, picks, set(), None).ids)
        missing = [i for i in wanted if i not in found]
        shown = ", ".join(repr(i) for i in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise InternalError(
            f"Error executing plan: Internal error: Error finding id: {len(missing)} of the query's ids "
            f"are not in the collection: {shown}"
        )

    @staticmethod
    def _nonfinite_distances(snap, queries, bad, picks_out, dists_out, space) -> None:
        """Distances of the picked rows to each query that holds NaN or infinities."""
        for qi_ in np.flatnonzero(bad).tolist():
            picks = picks_out[qi_]
            if not picks:
                continue
            vecs = np.vstack([snap[vi].seg.embeddings(np.array([row])) for vi, row in picks])
            dists_out[qi_] = [float(x) for x in raw_distances(vecs, queries[qi_], space)]

    # --------------------------------------------------------------- modify

    def modify(self, name: str | None = None, metadata: dict | None = None, configuration: dict | None = None) -> None:
        """Rename, replace the metadata, or change updatable configuration (ef_search...)."""
        if metadata is not None:
            metadata = v.validate_collection_metadata(metadata, creating=False)
            metadata = v.stored_collection_metadata(metadata) or {}  # {}: all keys dropped
        if name is not None:
            v.validate_collection_name(name, field="new_name")
        new_config = None
        if configuration is not None:
            new_config = self._client._updated_configuration(self._record, configuration)
        rec = self._client._catalog.update_collection(
            self._record.id, name=name, metadata=metadata, configuration=new_config
        )
        self._record = rec
        if new_config is not None:
            self._client._apply_params(rec)

    # ---------------------------------------------------- gleandb extensions

    def search(self, searches: Any, read_level: Any = None) -> Any:
        """Chroma's Search API (cloud-only in chromadb), locally: one ``Search`` (gleandb's,
        chromadb's or a wire dict) or a list; returns a ``SearchResult``. See docs/search.md."""
        from gleandb.retrieval.search import run

        return run(self, searches)

    def retrieve(self, query_texts=None, query_embeddings=None, n_results=10, where=None, where_document=None,
                 mode=UNSET, fusion=UNSET, weights=UNSET, candidates=UNSET, rrf_k=UNSET,
                 include=["documents", "metadatas"]) -> Any:  # noqa: B006 - never mutated
        """One-call hybrid retrieval (dense + BM25, fused); omitted mode / fusion / weights /
        candidates / rrf_k come from ``configuration["retrieval"]``, else the built-in
        default. See docs/search.md."""
        from gleandb.retrieval.hybrid import retrieve

        self._check_schema_filters(where, where_document)
        return retrieve(self, query_texts, query_embeddings, n_results, where, where_document, mode, fusion,
                        weights, candidates, rrf_k, include)

    def flush(self) -> None:
        """Write the memtable to a segment and wait for its index (tests, benchmarks)."""
        self._store.flush()
        self._store.worker.wait_idle()

    def compact(self) -> None:
        """Merge segments and drop deleted rows now, and wait for it."""
        self._store.flush()
        self._store.compact()
        self._store.worker.wait_idle()

    def context(
        self,
        question: str,
        candidates: int = 200,
        where=None,
        where_document=None,
        mode: str | None = None,
        reranker=None,
        top_n: int = 20,
        max_tokens: int = 4000,
        threshold: float | None = None,
        order: str = "relevance",
        dedupe: float | None = 0.95,
        tokenizer=None,
        on_rerank_error: str = "raise",
        query_embedding=None,
        truncate: bool = False,
        deadline: float | None = 120.0,
    ):
        """Retrieve ``candidates``, re-rank, keep ``top_n`` and pack them into ``max_tokens``:
        a ``Context`` with ``.text`` (chunks with [n] citation markers), ``.chunks`` and ``.usage``.
        ``deadline`` (seconds, None = none) bounds the whole call, model retries included; an
        exception raised here carries the usage spent so far as ``exc.usage``.
        The pipeline lives in ``gleandb.retrieval.context``; docs/context.md explains the options."""
        from gleandb.retrieval.context import build_context

        return build_context(
            self, question, candidates=candidates, where=where, where_document=where_document, mode=mode,
            reranker=reranker, top_n=top_n, max_tokens=max_tokens, threshold=threshold, order=order,
            dedupe=dedupe, tokenizer=tokenizer, on_rerank_error=on_rerank_error,
            query_embedding=query_embedding, truncate=truncate, deadline=deadline,
        )

    def fork(self, new_name: str, version: int | None = None) -> "Collection":
        """A new collection with this one's records, configuration, metadata and embedding
        function, sharing its segment files (copy-on-write): the cost does not depend on the
        size. ``version`` forks a retained past version (see ``versions()``)."""
        rec = self._client._fork(self._record, new_name, version)
        return type(self)(self._client, rec, self._embedding_function, self._data_loader)

    def fork_count(self) -> int:
        """Live collections forked directly from this one."""
        return self._client._catalog.count_forks(self._record.id)

    def versions(self) -> list[dict]:
        """Retained versions, oldest first: ``version``, ``created_at`` (unix time),
        ``records``, ``segments`` (count), ``segment_names``, ``forked_from``."""
        return self._store.versions()

    def get_model(self) -> dict:
        return {**self._record.to_dict(), "dimension": self._store.dimension, "version": self._store.version}
