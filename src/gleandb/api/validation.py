"""Client-side input validation and normalisation, reproducing chromadb 1.5.9.

Pure functions (no engine access). Every check raises exactly the class and message
that chromadb's in-process client (``EphemeralClient``/``PersistentClient``) raises.

Two stages, as in chromadb:

* **client stage** -- what ``CollectionCommon._validate_and_prepare_*`` does. chromadb
  wraps it in ``validation_context(<method>)`` which appends ``" in <method>."`` to the
  message of *any* exception raised inside (embedding-function errors included).
  The client-stage functions below take the method name and add that suffix themselves;
  a caller that wants one suffix over several steps (e.g. prepare + embed) wraps them in
  ``with validation_context(method):`` -- a message is never suffixed twice.
* **engine stage** -- what the Rust bindings raise: argument-conversion ``TypeError`` /
  ``OverflowError`` and ``InvalidArgumentError``/``InternalError`` from request
  validation. These never get the suffix (they are tagged so an enclosing
  ``validation_context`` leaves them alone).

Public API
----------
validation_context(method)                      ctx manager/decorator: append " in <method>." once
RecordSet                                       normalised write input (ids, embeddings rows, ...)
prepare_record_set(method, ids, embeddings=None, metadatas=None, documents=None, images=None, uris=None) -> RecordSet
embedding_target(method, rs) -> "documents"|"images"|"uris"|None   field to embed (raises chromadb's errors)
needs_embedding(method, rs) -> bool
attach_embeddings(method, rs, embeddings) -> RecordSet   normalise EF output and put it on the record set
no_embedding_function_error(method=None) -> ValueError   / no_data_loader_error(method=None) -> ValueError
validate_write_for_engine(method, rs, collection_dimension=None, max_batch_size=5461) -> np.ndarray | None
dimension_mismatch_error(expected, got) -> InvalidArgumentError
prepare_query_inputs(query_embeddings=None, query_texts=None, query_images=None, query_uris=None) -> QueryInputs
query_embedding_matrix(rows, collection_dimension=None) -> np.ndarray      engine-stage checks of query vectors
normalize_query_embeddings(query_embeddings, collection_dimension=None) -> np.ndarray  (both stages at once)
validate_query_ids(ids) -> list[str] | None     query(ids=...) (not validated client-side by chromadb)
validate_include(include, method, has_data_loader=False) -> list[str]
validate_n_results(n_results) -> int
validate_ids_for_read(ids, method) -> list[str] | None   get/delete ids
validate_u32_argument(name, value) -> int | None       binding conversion of limit/offset/n_results
validate_limit_offset(limit, offset) -> (int | None, int)
validate_delete_args(ids, where, where_document, limit) -> (list[str] | None, int | None)
validate_collection_name(name, field="name") -> str
validate_collection_metadata(metadata, creating=True) -> dict | None
validate_tenant_name(name) -> str ; validate_database_name(name, creating=False) -> str
stored_collection_metadata(metadata) -> dict | None   what is persisted (None/NaN keys dropped)
validate_ids(ids) / validate_metadata(metadata) / validate_embeddings(rows) / normalize_embeddings(x)
                                                 chromadb's own helpers (no suffix)

Observed chromadb 1.5.9 behaviour that differs from chroma-behaviour.md (real chromadb wins):
* metadatas item that is not a dict/None -> AttributeError "'str' object has no attribute
  'items'" (from sparse-vector normalisation), not ValueError "Expected metadata to be a dict".
* metadata value None in **add** -> TypeError "argument 'metadatas': Cannot convert Python
  object to MetadataValue" (bindings, no suffix); upsert and update accept None (key dropped).
* ints outside i64 in record metadata are stored as float; np.float64 is accepted (float
  subclass), np.int64 is rejected by the client check. A NaN or infinite metadata value is
  accepted and stored as no value (the key is dropped, or deleted by update/upsert); -0.0
  reads back as 0.0 (``validate_write_for_engine`` applies this to the record set).
  Collection metadata: None and NaN values drop their key when stored, -0.0 becomes 0.0
  (``stored_collection_metadata``).
* Sparse-vector metadata locally -> TypeError "...Cannot convert Python object to
  MetadataValue" (add) / "...UpdateMetadataValue" (upsert/update).
* NaN/Inf (after the float32 cast) and "#"/"$"/empty metadata keys are one validator error;
  both at once -> "Validation error: embeddings: ...\\nmetadatas: Invalid metadata at index i"
  (chromadb's line order, and which bad collection-metadata key is reported, follow Rust
  HashMap order, i.e. vary between runs; gleandb: embeddings first, first bad key).
  Engine order: validator -> inconsistent dims -> collection dimension -> empty id.
  Batch size (> 5461) is checked before all of them: InternalError
  "ValueError: Batch size of N is greater than max batch size of M".
* Query embeddings may contain NaN (no error). get/delete with id "" are fine; only writes
  reject empty ids. query(ids=...) is not validated by the client (duplicates/[] accepted;
  non-str -> TypeError "argument 'ids': 'int' object cannot be converted to 'PyString'").
* get limit/offset, n_results, delete limit, peek: binding u32 conversion -> OverflowError
  "out of range integral type conversion attempted" (negative or >= 2**32),
  "Python int too large to convert to C long" (outside i64), TypeError
  "argument 'limit': 'float' object cannot be interpreted as an integer". bool is accepted.
* "Exactly one of documents, images, uris" and duplicate-id lists are printed in Python
  set order (hash-randomised) by chromadb; gleandb uses a fixed order.
* Collection metadata on create is not validated by the client: bindings TypeErrors
  ("argument 'metadata': ...", None values rejected), then hnsw:* parsing
  ("Failed to parse hnsw parameters from segment metadata"), then InvalidArgumentError
  "Validation error: metadata: Metadata cannot be empty" / "Metadata key cannot be empty" /
  "Metadata key cannot start with '#' or '$': #a". "chroma:document" is allowed on create.
  On modify the client's validate_metadata runs first (no suffix), field is "new_metadata",
  None values are accepted and hnsw:* keys are not parsed. chromadb panics on list values
  in collection metadata; gleandb accepts non-empty homogeneous lists.
* Collection-name errors carry field "name" (create) or "new_name" (modify). "Already exists"
  is InternalError in-process. Tenant names: only length >= 3 (chars) checked; database
  names: only "database name must be at least 3 characters" (create/get; delete -> NotFound).
* include=["data"] in get without data loader -> "You must set a data loader on the
  collection if loading from URIs. in get."; query accepts it. With "data" the bindings
  also return the metadatas (``gleandb.api.results``); chromadb's HTTP client does not.
* update on an empty collection sets the collection dimension even if no id matches.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any, Iterator, Literal, Sequence

import numpy as np

from gleandb.api.errors import DuplicateIDError, InternalError, InvalidArgumentError

WriteMethod = Literal["add", "upsert", "update"]
ReadMethod = Literal["get", "delete"]

META_KEY_CHROMA_DOCUMENT = "chroma:document"
MAX_BATCH_SIZE = 5461
INCLUDE_VALUES = ("documents", "embeddings", "metadatas", "distances", "uris", "data")
_ALLOWED_DTYPES = (np.float16, np.float32, np.float64, np.int32, np.int64)
_EMBED_FIELDS_ALL = ("documents", "images", "uris")
_EMBED_FIELDS_UPDATE = ("documents", "images")
_SPARSE_TYPE_KEY = "#type"
_SPARSE_TYPE_VALUE = "sparse_vector"

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_U32_MAX = 2**32 - 1

# --------------------------------------------------------------------------- context

_APPLIED = "_gleandb_validation_context_applied"


def _engine_error(exc: BaseException) -> BaseException:
    """Tag an engine-stage exception so validation_context never suffixes it."""
    setattr(exc, _APPLIED, True)
    return exc


@contextlib.contextmanager
def _context(method: str) -> Iterator[None]:
    try:
        yield
    except Exception as e:
        if not getattr(e, _APPLIED, False):
            msg = f"{str(e)} in {method}."
            e.args = (msg,) + e.args[1:] if e.args else ()
            try:
                setattr(e, _APPLIED, True)
            except Exception:  # pragma: no cover - exotic exception types
                pass
        raise


def validation_context(method: str) -> Any:
    """Like chromadb's decorator: append ``" in <method>."`` to any exception's message.

    Usable as a context manager (``with validation_context("add"): ...``) or as a
    decorator (a generator context manager makes a fresh one per call). A message is
    suffixed at most once, and engine-stage errors never.
    """
    return _context(method)


# --------------------------------------------------------------------------- helpers


def _cast_one_to_many(target: Any) -> list | None:
    if target is None:
        return None
    if isinstance(target, list):
        return target
    return [target]


def _pyo3_type_name(value: Any) -> str:
    t = type(value)
    if t.__module__ == "builtins":
        return t.__qualname__
    return f"{t.__module__}.{t.__qualname__}"


def validate_ids(ids: Any) -> list[str]:
    """chromadb ``validate_ids`` (list, non-empty, str items, unique)."""
    if not isinstance(ids, list):
        raise ValueError(f"Expected IDs to be a list, got {type(ids).__name__} as IDs")
    if len(ids) == 0:
        raise ValueError(f"Expected IDs to be a non-empty list, got {len(ids)} IDs")
    seen: set[str] = set()
    dups: dict[str, None] = {}
    for id_ in ids:
        if not isinstance(id_, str):
            raise ValueError(f"Expected ID to be a str, got {id_}")
        if id_ in seen:
            dups[id_] = None
        else:
            seen.add(id_)
    if dups:
        names = list(dups)
        n_dups = len(names)
        if n_dups < 10:
            message = f"Expected IDs to be unique, found duplicates of: {', '.join(names)}"
        else:
            examples = names[:11]
            example_string = f"{', '.join(examples[:5])}, ..., {', '.join(examples[-5:])}"
            message = (
                f"Expected IDs to be unique, found {n_dups} duplicated IDs: {example_string}"
            )
        raise DuplicateIDError(message)
    return ids


def _validate_metadata_list_value(key: str, value: list) -> None:
    if len(value) == 0:
        raise ValueError(f"Expected metadata list value for key '{key}' to be non-empty")
    first_type = bool if isinstance(value[0], bool) else type(value[0])
    for item in value:
        item_type = bool if isinstance(item, bool) else type(item)
        if item_type is not first_type or item_type not in (str, int, float, bool):
            raise ValueError(
                f"Expected metadata list value for key '{key}' to contain only str, int, "
                f"float, or bool and all elements must be the same type, got {value}"
            )


def _is_sparse_vector(value: Any) -> bool:
    return type(value).__name__ == "SparseVector" and hasattr(value, "indices")


def _check_sparse_dict(value: dict) -> None:
    """chromadb ``SparseVector.from_dict`` + ``__post_init__`` checks."""
    indices = value.get("indices")
    values = value.get("values")
    labels = value.get("tokens")
    if "indices" not in value or "values" not in value:
        missing = "indices" if "indices" not in value else "values"
        raise KeyError(missing)
    if not isinstance(indices, list):
        raise ValueError(
            f"Expected SparseVector indices to be a list, got {type(indices).__name__}"
        )
    if not isinstance(values, list):
        raise ValueError(
            f"Expected SparseVector values to be a list, got {type(values).__name__}"
        )
    if len(indices) != len(values):
        raise ValueError(
            "SparseVector indices and values must have the same length, "
            f"got {len(indices)} indices and {len(values)} values"
        )
    if labels is not None:
        if not isinstance(labels, list):
            raise ValueError(
                f"Expected SparseVector labels to be a list, got {type(labels).__name__}"
            )
        if len(labels) != len(indices):
            raise ValueError(
                "SparseVector labels must have the same length as indices and values, "
                f"got {len(labels)} labels, {len(indices)} indices"
            )
    for i, idx in enumerate(indices):
        if not isinstance(idx, int):
            raise ValueError(
                f"SparseVector indices must be integers, got {type(idx).__name__} at position {i}"
            )
        if idx < 0:
            raise ValueError(f"SparseVector indices must be non-negative, got {idx} at position {i}")
    for i, val in enumerate(values):
        if not isinstance(val, (int, float)):
            raise ValueError(
                f"SparseVector values must be numbers, got {type(val).__name__} at position {i}"
            )
    for i in range(1, len(indices)):
        if indices[i] <= indices[i - 1]:
            raise ValueError(
                "SparseVector indices must be sorted in strictly ascending order, "
                f"found indices[{i}]={indices[i]} <= indices[{i - 1}]={indices[i - 1]}"
            )


def _normalize_metadatas(metadatas: Any) -> list | None:
    """chromadb ``normalize_metadatas``: calls ``.items()`` on every non-None item."""
    unpacked = _cast_one_to_many(metadatas)
    if unpacked is None:
        return None
    out = []
    for m in unpacked:
        if m is None:
            out.append(None)
            continue
        items = m.items()  # AttributeError for non-mappings, exactly like chromadb
        normalized = {}
        for key, value in items:
            if isinstance(value, dict) and value.get(_SPARSE_TYPE_KEY) == _SPARSE_TYPE_VALUE:
                _check_sparse_dict(value)
            normalized[key] = value
        out.append(normalized)
    return out


def validate_metadata(metadata: Any) -> Any:
    """chromadb ``validate_metadata`` (record metadata and modify())."""
    if not isinstance(metadata, dict) and metadata is not None:
        raise ValueError(
            f"Expected metadata to be a dict or None, got {type(metadata).__name__} as metadata"
        )
    if metadata is None:
        return metadata
    if len(metadata) == 0:
        raise ValueError(
            f"Expected metadata to be a non-empty dict, got {len(metadata)} metadata attributes"
        )
    for key, value in metadata.items():
        if key == META_KEY_CHROMA_DOCUMENT:
            raise ValueError(
                f"Expected metadata to not contain the reserved key {META_KEY_CHROMA_DOCUMENT}"
            )
        if not isinstance(key, str):
            raise TypeError(
                f"Expected metadata key to be a str, got {key} which is a {type(key).__name__}"
            )
        if _is_sparse_vector(value) or (
            isinstance(value, dict) and value.get(_SPARSE_TYPE_KEY) == _SPARSE_TYPE_VALUE
        ):
            pass
        elif isinstance(value, list):
            _validate_metadata_list_value(key, value)
        elif not isinstance(value, bool) and not isinstance(value, (str, int, float, type(None))):
            raise ValueError(
                "Expected metadata value to be a str, int, float, bool, SparseVector, list, "
                f"or None, got {value} which is a {type(value).__name__}"
            )
    return metadata


def normalize_embeddings(target: Any) -> list[np.ndarray] | None:
    """chromadb ``normalize_embeddings``: one embedding or many -> list of 1-D arrays."""
    if target is None:
        return None
    if len(target) == 0:  # TypeError "object of type 'int' has no len()" like chromadb
        raise ValueError(f"Expected Embeddings to be non-empty list or numpy array, got {target}")
    if isinstance(target, np.ndarray):
        if target.ndim == 1:
            return [target]
        if target.ndim == 2:
            return [row for row in target]
    elif isinstance(target, list):
        first = target[0]
        if isinstance(first, (int, float)) and not isinstance(first, bool):
            return [np.array(target, dtype=np.float32)]
        if isinstance(first, np.ndarray):
            return list(target)
        if isinstance(first, list):
            if isinstance(first[0], (int, float)) and not isinstance(first[0], bool):
                return [np.array(row, dtype=np.float32) for row in target]
    raise ValueError(
        "Expected embeddings to be a list of floats or ints, a list of lists, a numpy array, "
        f"or a list of numpy arrays, got {target}"
    )


def validate_embeddings(embeddings: Any) -> list[np.ndarray]:
    """chromadb ``validate_embeddings`` on normalised rows."""
    if not isinstance(embeddings, (list, np.ndarray)):
        raise ValueError(f"Expected embeddings to be a list, got {type(embeddings).__name__}")
    if len(embeddings) == 0:
        raise ValueError(
            "Expected embeddings to be a list with at least one item, "
            f"got {len(embeddings)} embeddings"
        )
    if not all(isinstance(e, np.ndarray) for e in embeddings):
        raise ValueError(
            "Expected each embedding in the embeddings to be a numpy array, got "
            f"{sorted(set(type(e).__name__ for e in embeddings))}"
        )
    for i, embedding in enumerate(embeddings):
        if embedding.ndim == 0:
            raise ValueError(
                f"Expected a 1-dimensional array, got a 0-dimensional array {embedding}"
            )
        if embedding.size == 0:
            raise ValueError(
                "Expected each embedding in the embeddings to be a 1-dimensional numpy array "
                "with at least 1 int/float value. Got a 1-dimensional numpy array with no "
                f"values at pos {i}"
            )
        if embedding.dtype not in _ALLOWED_DTYPES:
            raise ValueError(
                "Expected each value in the embedding to be a int or float, got an embedding "
                f"with {embedding.dtype} - {embedding}"
            )
    return list(embeddings)


def _validate_documents(documents: list, nullable: bool) -> None:
    for document in documents:
        if document is None and nullable:
            continue
        if not isinstance(document, str):
            raise ValueError(f"Expected document to be a str, got {document}")


def _validate_images(images: list) -> None:
    for image in images:
        if not (isinstance(image, np.ndarray) and len(image.shape) >= 2):
            raise ValueError(f"Expected image to be a numpy array, got {image}")


def _length_consistency(fields: dict[str, Any]) -> None:
    lengths = [len(v) for v in fields.values() if v is not None]
    if not lengths:
        raise ValueError(f"At least one of one of {', '.join(fields.keys())} must be provided")
    zero = [k for k, v in fields.items() if v is not None and len(v) == 0]
    if zero:
        raise ValueError(f"Non-empty lists are required for {zero}")
    if len(set(lengths)) > 1:
        detail = ", ".join(f"{k}: {len(v)}" for k, v in fields.items() if v is not None)
        raise ValueError(f"Unequal lengths for fields: {detail}")


def _validate_base(fields: dict[str, Any]) -> None:
    _length_consistency(fields)
    if fields["embeddings"] is not None:
        validate_embeddings(fields["embeddings"])
    if fields["documents"] is not None:
        _validate_documents(fields["documents"], nullable=fields["embeddings"] is not None)
    if fields["images"] is not None:
        _validate_images(fields["images"])


# --------------------------------------------------------------------------- writes


@dataclass
class RecordSet:
    """Normalised add/upsert/update input.

    ``embeddings`` holds one 1-D numpy row per id (the caller's dtype; rows may still
    have different lengths -- that is an engine-stage error, see
    ``validate_write_for_engine`` which returns the (n, d) float32 matrix).
    ``metadatas`` keeps None items and None values (update/upsert: None deletes a key).
    """

    ids: list[str]
    embeddings: list[np.ndarray] | None = None
    metadatas: list[dict | None] | None = None
    documents: list[str | None] | None = None
    images: list[Any] | None = None
    uris: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def prepare_record_set(
    method: WriteMethod,
    ids: Any,
    embeddings: Any = None,
    metadatas: Any = None,
    documents: Any = None,
    images: Any = None,
    uris: Any = None,
) -> RecordSet:
    """Normalise and validate an add/upsert/update call in chromadb's order (suffixed)."""
    with _context(method):
        rows = normalize_embeddings(embeddings)
        docs = _cast_one_to_many(documents)
        imgs = _cast_one_to_many(images)
        uri_list = _cast_one_to_many(uris)
        id_list = _cast_one_to_many(ids)
        metas = _normalize_metadatas(metadatas)
        fields = {
            "ids": id_list,
            "metadatas": metas,
            "embeddings": rows,
            "documents": docs,
            "images": imgs,
            "uris": uri_list,
        }
        _length_consistency(fields)
        _validate_base(fields)
        validate_ids(id_list)
        if metas is not None:
            for m in metas:
                validate_metadata(m)
        if method == "add" and id_list is None:  # pragma: no cover - validate_ids raised
            raise ValueError("At least one of ids must be provided")
        return RecordSet(
            ids=id_list,  # type: ignore[arg-type]
            embeddings=rows,
            metadatas=[_widen_ints(m) for m in metas] if metas is not None else None,
            documents=docs,
            images=imgs,
            uris=uri_list,
        )


def _widen_ints(m: dict | None) -> dict | None:
    """Ints outside i64 become floats, as the bindings convert them."""
    if m is None:
        return None
    out = {}
    for k, v in m.items():
        if isinstance(v, int) and not isinstance(v, bool) and not _I64_MIN <= v <= _I64_MAX:
            v = float(v)
        elif isinstance(v, list) and v and type(v[0]) is int:
            if any(not _I64_MIN <= x <= _I64_MAX for x in v):
                v = [float(x) for x in v]
        out[k] = v
    return out


def _exactly_one(fields: dict[str, Any], names: Sequence[str]) -> str:
    present = [n for n in names if fields[n] is not None]
    if len(present) != 1:
        raise ValueError(f"Exactly one of {', '.join(names)} must be provided")
    return present[0]


def embedding_target(method: str, rs: Any) -> str | None:
    """Which field the embedding function must embed, or None if nothing to embed.

    ``rs`` is a RecordSet or QueryInputs. Raises chromadb's errors (suffixed):
    add/query need exactly one of documents/images/uris; upsert exactly one of
    documents/images; update embeds only when documents or images are given.
    """
    with _context(method):
        if rs.embeddings is not None:
            return None
        fields = {"documents": rs.documents, "images": rs.images, "uris": rs.uris}
        if method in ("add", "query"):
            return _exactly_one(fields, _EMBED_FIELDS_ALL)
        if method == "upsert":
            return _exactly_one(fields, _EMBED_FIELDS_UPDATE)
        if method == "update":
            if rs.documents is None and rs.images is None:
                return None
            return _exactly_one(fields, _EMBED_FIELDS_UPDATE)
        raise ValueError(f"unknown method {method!r}")


def needs_embedding(method: str, rs: Any) -> bool:
    """True when the caller must compute embeddings (see ``embedding_target``)."""
    return embedding_target(method, rs) is not None


def _suffixed(exc: Exception, method: str | None) -> Exception:
    if method is not None:
        exc.args = (f"{exc.args[0]} in {method}.",)
        setattr(exc, _APPLIED, True)
    return exc


def no_embedding_function_error(method: str | None = None) -> ValueError:
    """chromadb's error when documents must be embedded but no EF is configured."""
    return _suffixed(  # type: ignore[return-value]
        ValueError(
            "You must provide an embedding function to compute embeddings."
            "https://docs.trychroma.com/guides/embeddings"
        ),
        method,
    )


def no_data_loader_error(method: str | None = None) -> ValueError:
    """chromadb's error for uris / include=["data"] without a data loader."""
    return _suffixed(  # type: ignore[return-value]
        ValueError("You must set a data loader on the collection if loading from URIs."),
        method,
    )


def attach_embeddings(method: str, rs: Any, embeddings: Any) -> Any:
    """Normalise computed embeddings and return a copy of ``rs`` carrying them."""
    with _context(method):
        rows = validate_embeddings(normalize_embeddings(embeddings))
        return replace(rs, embeddings=rows)


def dimension_mismatch_error(expected: int, got: int) -> InvalidArgumentError:
    """Engine error for a vector whose length differs from the collection's dimension."""
    return _engine_error(  # type: ignore[return-value]
        InvalidArgumentError(f"Collection expecting embedding with dimension of {expected}, got {got}")
    )


def _bindings_metadata_check(method: str, metas: list | None) -> None:
    if metas is None:
        return
    target = "MetadataValue" if method == "add" else "UpdateMetadataValue"
    for m in metas:
        if m is None:
            continue
        for v in m.values():
            if (v is None and method == "add") or isinstance(v, dict) or _is_sparse_vector(v):
                raise _engine_error(
                    TypeError(f"argument 'metadatas': Cannot convert Python object to {target}")
                )


def _bindings_str_list(arg: str, values: list | None, allow_none: bool) -> None:
    if values is None:
        return
    for v in values:
        if v is None and allow_none:
            continue
        if not isinstance(v, str):
            raise _engine_error(
                TypeError(f"argument '{arg}': '{_pyo3_type_name(v)}' object cannot be converted to 'PyString'")
            )


def _bad_metadata_key(key: str) -> bool:
    return not key or key[0] in "#$"


def _stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    dims = {r.shape[0] for r in rows}
    if len(dims) > 1:
        raise _engine_error(InvalidArgumentError("Inconsistent dimensions in provided embeddings"))
    return np.stack([np.asarray(r, dtype=np.float32) for r in rows]).astype(np.float32, copy=False)


def validate_write_for_engine(
    method: WriteMethod,
    rs: RecordSet,
    collection_dimension: int | None = None,
    max_batch_size: int = MAX_BATCH_SIZE,
) -> np.ndarray | None:
    """The engine-stage checks of a write (no suffix), in chromadb's order.

    Binding conversion TypeErrors (metadatas, then uris), batch size, then the request
    validator (NaN/Inf after float32 cast, metadata keys empty or starting with '#'/'$'),
    inconsistent dimensions, collection dimension, empty ids. Returns the (n, d) float32
    embedding matrix (None when the write carries no embeddings).
    """
    _bindings_metadata_check(method, rs.metadatas)
    _bindings_str_list("documents", rs.documents, allow_none=True)
    _bindings_str_list("uris", rs.uris, allow_none=True)
    if len(rs.ids) > max_batch_size:
        raise _engine_error(
            InternalError(
                f"ValueError: Batch size of {len(rs.ids)} is greater than max batch size of {max_batch_size}"
            )
        )
    problems = []
    stacked = None
    if rs.embeddings is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            if len({r.shape[0] for r in rs.embeddings}) == 1:
                # one vectorised pass for the common case of equal-length rows
                stacked = np.stack(rs.embeddings).astype(np.float32, copy=False)
                finite = bool(np.isfinite(stacked).all())
            else:
                finite = all(np.isfinite(np.asarray(r, dtype=np.float32)).all() for r in rs.embeddings)
        if not finite:
            problems.append("embeddings: Embeddings must not contain NaN or Infinity values")
    if rs.metadatas is not None:
        for i, m in enumerate(rs.metadatas):
            if m is not None and any(_bad_metadata_key(k) for k in m):
                problems.append(f"metadatas: Invalid metadata at index {i}")
                break
    if problems:
        raise _engine_error(InvalidArgumentError("Validation error: " + "\n".join(problems)))
    matrix = None
    if rs.embeddings is not None:
        with np.errstate(over="ignore"):
            matrix = stacked if stacked is not None else _stack_rows(rs.embeddings)
        if collection_dimension is not None and matrix.shape[1] != collection_dimension:
            raise dimension_mismatch_error(collection_dimension, matrix.shape[1])
    if any(i == "" for i in rs.ids):
        raise _engine_error(InvalidArgumentError("Empty ID, ID must have at least one character"))
    if rs.metadatas is not None:
        _store_metadata_values(method, rs.metadatas)
    return matrix


def _is_float(value: Any) -> bool:
    return isinstance(value, float) and not isinstance(value, bool)


def _store_metadata_values(method: WriteMethod, metas: list) -> None:
    """What chromadb 1.5.9 stores of record metadata values, in place: a NaN or infinite
    value is no value (add drops the key; update/upsert delete it, as None does) and -0.0
    reads back as 0.0. A list holding NaN/inf is refused (chromadb accepts it and then fails
    every later read of the collection with "Failed to pull logs from the log store")."""
    for i, m in enumerate(metas):
        if not m:
            continue
        out = {}
        for key, value in m.items():
            if _is_float(value):
                if not np.isfinite(value):
                    if method == "add":
                        continue
                    value = None
                elif value == 0.0:
                    value = 0.0
            elif isinstance(value, list) and value and _is_float(value[0]):
                if not all(np.isfinite(x) for x in value):
                    raise _engine_error(InvalidArgumentError(
                        f"Validation error: metadatas: Invalid metadata at index {i}: the list value of "
                        f"key '{key}' holds NaN or infinite values, got {value}"
                    ))
                value = [0.0 if x == 0.0 else x for x in value]
            out[key] = value
        metas[i] = out or None


def stored_collection_metadata(metadata: dict | None) -> dict | None:
    """What chromadb 1.5.9 persists of collection metadata (create and modify): a None or
    NaN value drops its key, -0.0 becomes 0.0 (infinities are kept); nothing left -> None."""
    if metadata is None:
        return None
    out = {}
    for key, value in metadata.items():
        if value is None or (_is_float(value) and np.isnan(value)):
            continue
        if _is_float(value) and value == 0.0:
            value = 0.0
        elif isinstance(value, list) and value and _is_float(value[0]):
            value = [0.0 if x == 0.0 else x for x in value]
        out[key] = value
    return out or None


# --------------------------------------------------------------------------- queries


@dataclass
class QueryInputs:
    """Normalised query inputs: exactly what chromadb's base record set holds."""

    embeddings: list[np.ndarray] | None = None
    documents: list[str] | None = None
    images: list[Any] | None = None
    uris: list[str] | None = None


def prepare_query_inputs(
    query_embeddings: Any = None,
    query_texts: Any = None,
    query_images: Any = None,
    query_uris: Any = None,
) -> QueryInputs:
    """Client-stage normalisation/validation of query inputs (suffix " in query.")."""
    with _context("query"):
        fields = {
            "embeddings": normalize_embeddings(query_embeddings),
            "documents": _cast_one_to_many(query_texts),
            "images": _cast_one_to_many(query_images),
            "uris": _cast_one_to_many(query_uris),
        }
        _validate_base(fields)
        return QueryInputs(**fields)


def query_embedding_matrix(
    rows: list[np.ndarray], collection_dimension: int | None = None
) -> np.ndarray:
    """Engine-stage checks of query vectors -> (n, d) float32. NaN is allowed."""
    with np.errstate(over="ignore"):
        matrix = _stack_rows(rows)
    if collection_dimension is not None and matrix.shape[1] != collection_dimension:
        raise dimension_mismatch_error(collection_dimension, matrix.shape[1])
    return matrix


def normalize_query_embeddings(
    query_embeddings: Any, collection_dimension: int | None = None
) -> np.ndarray:
    """Both stages for ``query_embeddings`` alone -> (n, d) float32 matrix."""
    qi = prepare_query_inputs(query_embeddings=query_embeddings)
    if qi.embeddings is None:
        with _context("query"):
            raise ValueError(
                "At least one of one of embeddings, documents, images, uris must be provided"
            )
    return query_embedding_matrix(qi.embeddings, collection_dimension)


def validate_query_ids(ids: Any) -> list[str] | None:
    """query(ids=...): chromadb only casts one-to-many; the bindings need str items."""
    lst = _cast_one_to_many(ids)
    _bindings_str_list("ids", lst, allow_none=False)
    return lst


def validate_include(include: Any, method: Literal["get", "query"], has_data_loader: bool = False) -> list[str]:
    """chromadb ``validate_include`` (+ get's data-loader check). Returns the request
    include list (with "uris" appended when "data" is asked for)."""
    with _context(method):
        if not isinstance(include, list):
            raise ValueError(f"Expected include to be a list, got {include}")
        for item in include:
            if not isinstance(item, str):
                raise ValueError(f"Expected include item to be a str, got {item}")
            if item not in INCLUDE_VALUES:
                raise ValueError(
                    f"Expected include item to be one of {', '.join(INCLUDE_VALUES)}, got {item}"
                )
            if method == "get" and item == "distances":
                raise ValueError(f"Include item cannot be one of distances, got {item}")
        if method == "get" and "data" in include and not has_data_loader:
            raise ValueError("You must set a data loader on the collection if loading from URIs.")
        out = list(include)
        if "data" in out and "uris" not in out:
            out.append("uris")
        return out


def validate_n_results(n_results: Any) -> int:
    """chromadb ``validate_n_results`` (suffix " in query."); bool passes as int."""
    with _context("query"):
        if not isinstance(n_results, int):
            raise ValueError(f"Expected requested number of results to be a int, got {n_results}")
        if n_results <= 0:
            raise TypeError(f"Number of requested results {n_results}, cannot be negative, or zero.")
        return n_results


def validate_u32_argument(name: str, value: Any) -> int | None:
    """The bindings' conversion of limit/offset/n_results to u32 (no suffix)."""
    if value is None:
        return None
    if not isinstance(value, int):
        index = getattr(type(value), "__index__", None)
        if index is None:
            raise _engine_error(
                TypeError(f"argument '{name}': '{_pyo3_type_name(value)}' object cannot be interpreted as an integer")
            )
        value = index(value)
    v = int(value)
    if not _I64_MIN <= v <= _I64_MAX:
        raise _engine_error(OverflowError("Python int too large to convert to C long"))
    if not 0 <= v <= _U32_MAX:
        raise _engine_error(OverflowError("out of range integral type conversion attempted"))
    return v


def validate_limit_offset(limit: Any, offset: Any) -> tuple[int | None, int]:
    """get()/peek() limit and offset: (limit or None, offset defaulting to 0)."""
    lim = validate_u32_argument("limit", limit)
    off = validate_u32_argument("offset", offset or 0)
    return lim, off  # type: ignore[return-value]


def validate_ids_for_read(ids: Any, method: ReadMethod) -> list[str] | None:
    """get/delete ids: one-or-many, then chromadb's ``validate_ids`` (suffixed).
    Empty-string ids are allowed here."""
    with _context(method):
        lst = _cast_one_to_many(ids)
        if lst is not None:
            validate_ids(lst)
        return lst


def validate_delete_args(
    ids: Any, where: Any, where_document: Any, limit: Any
) -> tuple[list[str] | None, int | None]:
    """delete(): presence, limit type/sign, limit needs a filter, then ids (suffixed).
    Validate where/where_document afterwards (inside ``validation_context("delete")``),
    then pass limit through ``validate_u32_argument("limit", ...)``."""
    with _context("delete"):
        if ids is None and where is None and where_document is None:
            raise ValueError("At least one of ids, where, or where_document must be provided")
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool):
                raise TypeError("limit must be a non-negative integer")
            if limit < 0:
                raise ValueError("limit must be a non-negative integer")
        if limit is not None and where is None and where_document is None:
            raise ValueError(
                "limit can only be specified when a where or where_document clause is provided"
            )
        lst = _cast_one_to_many(ids) if ids is not None else None
        if lst is not None:
            validate_ids(lst)
        return lst, limit


# --------------------------------------------------------------------------- catalog

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")


def _check_pystring(field: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _engine_error(
            TypeError(f"argument '{field}': '{_pyo3_type_name(value)}' object cannot be converted to 'PyString'")
        )


def validate_collection_name(name: Any, field: str = "name") -> str:
    """Engine rules for collection names; ``field`` is "name" (create) or "new_name" (modify)."""
    _check_pystring(field, name)
    if not _NAME_RE.fullmatch(name):
        raise _engine_error(
            InvalidArgumentError(
                f"Validation error: {field}: Expected a name containing 3-512 characters from "
                "[a-zA-Z0-9._-], starting and ending with a character in [a-zA-Z0-9]. "
                f"Got: {name}"
            )
        )
    if ".." in name:
        raise _engine_error(
            InvalidArgumentError(
                f"Validation error: {field}: Expected a name that does not contains two "
                f"consecutive periods (..). Got {name}"
            )
        )
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    raise _engine_error(
        InvalidArgumentError(
            f"Validation error: {field}: Expected a name that is not a valid ip address. Got {name}"
        )
    )


_HNSW_INT_KEYS = ("hnsw:M", "hnsw:construction_ef", "hnsw:search_ef", "hnsw:num_threads")
_HNSW_MIN2_KEYS = ("hnsw:batch_size", "hnsw:sync_threshold")
_HNSW_KEYS = set(_HNSW_INT_KEYS + _HNSW_MIN2_KEYS + ("hnsw:space", "hnsw:resize_factor"))


def _hnsw_ok(key: str, value: Any) -> bool:
    if key not in _HNSW_KEYS:
        return False
    if key == "hnsw:space":
        return value in ("l2", "cosine", "ip")
    if key == "hnsw:resize_factor":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    return value >= (2 if key in _HNSW_MIN2_KEYS else 0)


def _bindings_collection_metadata(metadata: Any, field: str, allow_none: bool) -> dict:
    if not isinstance(metadata, dict):
        raise _engine_error(
            TypeError(f"argument '{field}': '{_pyo3_type_name(metadata)}' object cannot be converted to 'PyDict'")
        )
    out = {}
    for key, value in metadata.items():
        _check_pystring(field, key)
        if isinstance(value, list):
            if len(value) == 0:
                raise _engine_error(ValueError("Empty lists are not allowed as metadata values"))
            kinds = {bool if isinstance(v, bool) else type(v) for v in value}
            if len(kinds) != 1 or not kinds <= {str, int, float, bool}:
                raise _engine_error(
                    TypeError(
                        f"argument '{field}': Cannot convert Python list to MetadataValue: "
                        "mixed or unsupported element types"
                    )
                )
        elif value is None and allow_none:
            pass
        elif isinstance(value, (str, bool, int, float)):
            pass
        elif hasattr(type(value), "__index__"):  # numpy ints convert to int
            value = int(value.__index__())
        elif hasattr(type(value), "__float__") and isinstance(value, np.floating):
            value = float(value)
        else:
            raise _engine_error(
                TypeError(f"argument '{field}': Cannot convert Python object to MetadataValue")
            )
        if isinstance(value, int) and not isinstance(value, bool) and not _I64_MIN <= value <= _I64_MAX:
            value = float(value)
        out[key] = value
    return out


def validate_collection_metadata(metadata: Any, creating: bool = True) -> dict | None:
    """Collection metadata on create (``creating=True``) or modify. Returns the
    normalised dict (None stays None). On modify, None values mean "delete key"."""
    if metadata is None:
        return None
    if not creating:
        validate_metadata(metadata)
        if "hnsw:space" in metadata:
            raise ValueError(
                "Changing the distance function of a collection once it is created is not "
                "supported currently."
            )
    field = "metadata" if creating else "new_metadata"
    out = _bindings_collection_metadata(metadata, field, allow_none=not creating)
    if creating:
        for key, value in out.items():
            if key.startswith("hnsw:") and not _hnsw_ok(key, value):
                raise _engine_error(
                    InvalidArgumentError("Failed to parse hnsw parameters from segment metadata")
                )
        if len(out) == 0:
            raise _engine_error(InvalidArgumentError("Validation error: metadata: Metadata cannot be empty"))
    for key in out:
        if key == "":
            raise _engine_error(
                InvalidArgumentError(f"Validation error: {field}: Metadata key cannot be empty")
            )
        if key.startswith("#") or key.startswith("$"):
            raise _engine_error(
                InvalidArgumentError(
                    f"Validation error: {field}: Metadata key cannot start with '#' or '$': {key}"
                )
            )
    return out


def validate_tenant_name(name: Any) -> str:
    """create_tenant: str, at least 3 characters (chromadb's check), then the name rule."""
    _check_pystring("name", name)
    if len(name) < 3:
        raise _engine_error(
            InvalidArgumentError(
                'Validation error: name: Validation error: length [{"min": Number(3), '
                f'"value": String({_rust_debug_str(name)})}}]'
            )
        )
    return _check_scope_name("tenant", name)


def _check_scope_name(kind: str, name: str) -> str:
    """Tenant and database names follow the collection-name rule of Chroma's server (3-512
    characters of [a-zA-Z0-9._-], alphanumeric at both ends, no ".."). chromadb's local engine
    accepts any string of 3+ characters; gleandb refuses the rest, because a name with "/",
    NUL, a newline or thousands of characters can never be addressed again over HTTP."""
    if _NAME_RE.fullmatch(name) and ".." not in name:
        return name
    shown = repr(name[:64]) + (f"... ({len(name)} characters)" if len(name) > 64 else "")
    raise _engine_error(
        InvalidArgumentError(
            f"Validation error: name: Expected a {kind} name containing 3-512 characters from "
            f"[a-zA-Z0-9._-], starting and ending with a character in [a-zA-Z0-9], without two "
            f"consecutive periods (..). Got: {shown}"
        )
    )


def _rust_debug_str(s: str) -> str:
    escaped = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


def validate_database_name(name: Any, creating: bool = False) -> str:
    """create_database/get_database: str, at least 3 characters; creating: the name rule too
    (a lookup of an unusual name just finds nothing)."""
    _check_pystring("name", name)
    if len(name) < 3:
        raise _engine_error(InvalidArgumentError("database name must be at least 3 characters"))
    return _check_scope_name("database", name) if creating else name


__all__ = [
    "MAX_BATCH_SIZE",
    "QueryInputs",
    "RecordSet",
    "attach_embeddings",
    "dimension_mismatch_error",
    "embedding_target",
    "needs_embedding",
    "no_data_loader_error",
    "no_embedding_function_error",
    "normalize_embeddings",
    "normalize_query_embeddings",
    "prepare_query_inputs",
    "prepare_record_set",
    "query_embedding_matrix",
    "validate_collection_metadata",
    "validate_collection_name",
    "validate_database_name",
    "validate_delete_args",
    "validate_embeddings",
    "validate_ids",
    "validate_ids_for_read",
    "validate_include",
    "validate_limit_offset",
    "validate_metadata",
    "validate_n_results",
    "validate_query_ids",
    "validate_tenant_name",
    "validate_u32_argument",
    "stored_collection_metadata",
    "validate_write_for_engine",
    "validation_context",
]
