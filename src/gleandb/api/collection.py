"""``Collection``: chromadb's collection API over a ``CollectionStore``.

Each method validates its input first (``gleandb.api.validation``, chromadb's
checks and messages), computes embeddings if it must, and only then touches the
store, so bad input raises before anything is written. Writes are resolved against
the live data and committed by ``gleandb.engine.writes`` (under the store's write lock); reads
(``get``, ``count``, ``query``) are executed below the API by ``gleandb.engine.query``
and only shaped into chromadb's results here.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

from gleandb.api import validation as v
from gleandb.errors import InvalidArgumentError
from gleandb.api.schema import Schema, check_filters, effective_schema, value_type_of_tag
from gleandb.api.results import GetResult, QueryResult, get_result, query_result, wants_metadatas
from gleandb.api.retrieve import retrieve
from gleandb.engine import query as engine_query
from gleandb.engine import writes
from gleandb.engine.store import CollectionStore
from gleandb.index.filters import compile_filter
from gleandb.retrieval.config import UNSET

if TYPE_CHECKING:
    from gleandb.catalog.catalog import CollectionRecord


class CollectionClient(Protocol):
    """What a ``Collection`` uses of the client that made it (``gleandb.api.client.Client``),
    declared here because the client imports this module."""

    _catalog: Any

    def _store_for(self, record: "CollectionRecord") -> CollectionStore: ...

    def _updated_configuration(self, record: "CollectionRecord", configuration: dict) -> dict: ...

    def _apply_params(self, record: "CollectionRecord") -> None: ...

    def _fork(self, record: "CollectionRecord", new_name: str, version: int | None) -> "CollectionRecord": ...


NO_BATCH_LIMIT = 1 << 62
DEFAULT_GET_INCLUDE = ["metadatas", "documents"]
DEFAULT_QUERY_INCLUDE = ["metadatas", "documents", "distances"]


def _hydrate_fields(include: list[str]) -> set[str]:
    """Columns to read for ``include`` ("data" returns metadatas too, as in chromadb, and
    metadatas need the uris: a record with a uri and no metadata reads back ``{}``)."""
    return set(include) | ({"metadatas", "uris"} if wants_metadatas(include) else set())


class Collection:
    def __init__(self, client: CollectionClient, record: "CollectionRecord", embedding_function: Any, data_loader: Any = None):
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
        for tag, key in engine_query.metadata_columns(self._store):
            vt = value_type_of_tag(tag)
            if vt is not None:
                discovered.setdefault(key, set()).add(vt)
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
        writes.add(self._store, rs.ids, matrix, rs.documents, rs.metadatas, rs.uris)

    def update(self, ids, embeddings=None, metadatas=None, documents=None, images=None, uris=None) -> None:
        """Change existing records (metadata merges; None deletes a key); missing ids are ignored."""
        rs, matrix = self._prepare_write("update", ids, embeddings, metadatas, documents, images, uris)
        writes.update(self._store, rs.ids, matrix, rs.documents, rs.metadatas, rs.uris)

    def upsert(self, ids, embeddings=None, metadatas=None, documents=None, images=None, uris=None) -> None:
        """Insert missing ids, update existing ones (merging metadata)."""
        rs, matrix = self._prepare_write("upsert", ids, embeddings, metadatas, documents, images, uris)
        writes.upsert(self._store, rs.ids, matrix, rs.documents, rs.metadatas, rs.uris)

    def delete(self, ids=None, where=None, where_document=None, limit=None) -> dict:
        """Delete by ids and/or filters; returns ``{"deleted": n}``."""
        id_list, limit = v.validate_delete_args(ids, where, where_document, limit)
        with v.validation_context("delete"):
            filt = compile_filter(where, where_document)
        self._check_schema_filters(where, where_document)
        limit = v.validate_u32_argument("limit", limit)
        return {"deleted": writes.delete(self._store, id_list, filt, limit)}

    # ----------------------------------------------------------------- read

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
        h = engine_query.get(self._store, filt, id_list, order_by, offset, limit, _hydrate_fields(include))
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
        return engine_query.count(self._store, filt)

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
        queries = v.query_embedding_matrix(qi.embeddings, store.dimension)
        hyd, dists_out = engine_query.knn(store, queries, n_results, filt, id_list, _hydrate_fields(include))
        data = [self._load_data(h, include) for h in hyd] if self._data_loader is not None else None
        return query_result(hyd, dists_out, data, include)  # type: ignore[return-value]

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

        return run(self._store, self._embedding_function, searches)

    def retrieve(self, query_texts=None, query_embeddings=None, n_results=10, where=None, where_document=None,
                 mode=UNSET, fusion=UNSET, weights=UNSET, candidates=UNSET, rrf_k=UNSET,
                 include=["documents", "metadatas"]) -> Any:  # noqa: B006 - never mutated
        """One-call hybrid retrieval (dense + BM25, fused); omitted mode / fusion / weights /
        candidates / rrf_k come from ``configuration["retrieval"]``, else the built-in
        default. See docs/search.md."""
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


def client_of(collection: Collection) -> Any:
    """The client that opened ``collection`` (embedded or HTTP), for code above the API that
    must work beside it: an evaluation creates its re-embedded copy there, the label log
    lives in its store. The one sanctioned way to it: nothing outside ``api`` reads ``_client``."""
    return collection._client


def store_info(collection: Collection) -> dict:
    """The shape of an embedded collection's store, for tools above the API (``glean
    info``): ``records``, ``dimension``, ``space``, ``segments`` (views of the current
    snapshot, memtable segments included) and ``version`` (of the newest manifest).
    Nothing outside ``api`` reads ``_store``; a collection on a server has none and raises
    NotImplementedError."""
    store = collection._store
    return {"records": store.count(), "dimension": store.dimension, "space": store.params.space,
            "segments": len(store.snapshot()), "version": store.version}
