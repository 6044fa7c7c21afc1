"""The Search API's builder classes: chromadb 1.5.9's ``Search``, ``K``, ``Knn``, ``Rrf``...

These mirror ``chromadb.execution.expression`` class for class, and ``to_dict`` /
``from_dict`` produce and read exactly chromadb's wire format, so a search built
with either library means the same thing to ``collection.search`` and to
``POST .../collections/{id}/search``. The engine side (evaluation) is
``gleandb.retrieval.search``; this module only describes searches, and
``gleandb.api.search`` re-exports it as the public surface.

gleandb extensions (not in chromadb; chromadb's client cannot send them):

* ``Bm25(query="text", limit=16, default=None, return_rank=False)``, wire
  ``{"$bm25": {"query": ..., "limit": ..., "default"?: ..., "return_rank"?: true}}``:
  the top-``limit`` rows by BM25 over the document text. Its value is the
  **negated** BM25 score (lower is better, like every rank value), or the 0-based
  rank position with ``return_rank=True``.
* ``Weighted(ranks, weights=None, normalize="minmax")``, wire
  ``{"$weighted": {"ranks": [...], "weights": [...], "normalize": "minmax"}}``:
  weighted score fusion. Each input's values over its candidates are min-max
  normalised to s = (hi - v) / (hi - lo) in [0, 1] (1 = best; s = 1 for all when
  hi == lo); a record missing from an input gets s = 0 there. The value is
  ``-(sum of w_i * s_i)``: lower is better, between -sum(w) and 0. Its candidates
  are the union of its inputs' candidates (inputs' ``default`` does not matter).

The math of both is in ``gleandb.retrieval.fusion``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from gleandb.index.depth import check_depth

__all__ = [
    "Abs", "Aggregate", "And", "Bm25", "Contains", "Div", "Eq", "Exp", "GroupBy", "Gt", "Gte", "In", "K",
    "Key", "Knn", "Limit", "Log", "Lt", "Lte", "Max", "MaxK", "Min", "MinK", "Mul", "Ne", "Nin", "NotContains",
    "NotRegex", "Or", "Rank", "Regex", "Rrf", "Search", "SearchResult", "Select", "Sub", "Sum", "Val",
    "Weighted", "Where", "search_to_dict",
]

# ----------------------------------------------------------------------------- where


class Where:
    """Base of filter expressions; ``&`` and ``|`` combine them."""

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError("Subclasses must implement to_dict()")

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "Where":
        """chromadb's ``Where.from_dict`` (same checks, same messages)."""
        check_depth(data, "where")  # before recursing: a deep clause is a 400, not RecursionError
        if not isinstance(data, dict):
            raise TypeError(f"Expected dict for Where, got {type(data).__name__}")
        if not data:
            raise ValueError("Where dict cannot be empty")
        for op, cls in (("$and", And), ("$or", Or)):
            if op in data:
                items = data[op]
                if not isinstance(items, list):
                    raise TypeError(f"{op} must be a list, got {type(items).__name__}")
                if not items:
                    raise ValueError(f"{op} requires at least one condition")
                if len(data) > 1:
                    raise ValueError(f"{op} cannot be combined with other fields in the same dict")
                conds = [Where.from_dict(c) for c in items]
                return conds[0] if len(conds) == 1 else cls(conds)
        if len(data) != 1:
            raise ValueError(f"Where dict must contain exactly one field, got {len(data)}")
        fld, cond = next(iter(data.items()))
        if not isinstance(fld, str):
            raise TypeError(f"Field name must be a string, got {type(fld).__name__}")
        if not isinstance(cond, dict):
            return Eq(fld, cond)
        if not cond:
            raise ValueError(f"Operator dict for field '{fld}' cannot be empty")
        if len(cond) != 1:
            raise ValueError(f"Operator dict for field '{fld}' must contain exactly one operator")
        op, value = next(iter(cond.items()))
        simple = {"$eq": Eq, "$ne": Ne, "$gt": Gt, "$gte": Gte, "$lt": Lt, "$lte": Lte}
        if op in simple:
            return simple[op](fld, value)
        if op in ("$in", "$nin"):
            if not isinstance(value, list):
                raise TypeError(f"{op} requires a list, got {type(value).__name__}")
            return (In if op == "$in" else Nin)(fld, value)
        if op in ("$contains", "$not_contains"):
            if not isinstance(value, (str, int, float, bool)):
                raise TypeError(f"{op} requires a str, int, float, or bool, got {type(value).__name__}")
            return (Contains if op == "$contains" else NotContains)(fld, value)
        if op in ("$regex", "$not_regex"):
            if not isinstance(value, str):
                raise TypeError(f"{op} requires a string pattern, got {type(value).__name__}")
            return (Regex if op == "$regex" else NotRegex)(fld, value)
        raise ValueError(f"Unknown operator: {op}")

    def __and__(self, other: "Where") -> "And":
        left = self.conditions if isinstance(self, And) else [self]
        right = other.conditions if isinstance(other, And) else [other]
        return And(left + right)

    def __or__(self, other: "Where") -> "Or":
        left = self.conditions if isinstance(self, Or) else [self]
        right = other.conditions if isinstance(other, Or) else [other]
        return Or(left + right)


@dataclass
class And(Where):
    conditions: list[Where]

    def to_dict(self) -> dict[str, Any]:
        return {"$and": [c.to_dict() for c in self.conditions]}


@dataclass
class Or(Where):
    conditions: list[Where]

    def to_dict(self) -> dict[str, Any]:
        return {"$or": [c.to_dict() for c in self.conditions]}


def _cmp(op: str):
    @dataclass
    class _C(Where):
        key: str
        value: Any

        def to_dict(self) -> dict[str, Any]:
            return {self.key: {op: self.value}}

    return _C


class Eq(_cmp("$eq")):
    """Equality."""


class Ne(_cmp("$ne")):
    """Inequality (also matches records without the key)."""


class Gt(_cmp("$gt")):
    """Greater than."""


class Gte(_cmp("$gte")):
    """Greater than or equal."""


class Lt(_cmp("$lt")):
    """Less than."""


class Lte(_cmp("$lte")):
    """Less than or equal."""


class Contains(_cmp("$contains")):
    """Document substring (``K.DOCUMENT``) or metadata array membership."""


class NotContains(_cmp("$not_contains")):
    """Negation of ``Contains``."""


@dataclass
class In(Where):
    key: str
    values: list[Any]

    def to_dict(self) -> dict[str, Any]:
        return {self.key: {"$in": self.values}}


@dataclass
class Nin(Where):
    key: str
    values: list[Any]

    def to_dict(self) -> dict[str, Any]:
        return {self.key: {"$nin": self.values}}


@dataclass
class Regex(Where):
    key: str
    pattern: str

    def to_dict(self) -> dict[str, Any]:
        return {self.key: {"$regex": self.pattern}}


@dataclass
class NotRegex(Where):
    key: str
    pattern: str

    def to_dict(self) -> dict[str, Any]:
        return {self.key: {"$not_regex": self.pattern}}


class Key:
    """A field: ``K("meta_key")``, ``K.ID``, ``K.DOCUMENT``, ``K.EMBEDDING``, ``K.METADATA``, ``K.SCORE``.

    Comparison operators build ``Where`` expressions (so, as in chromadb, ``==`` does
    not compare keys)."""

    ID: "Key"
    DOCUMENT: "Key"
    EMBEDDING: "Key"
    METADATA: "Key"
    SCORE: "Key"

    def __init__(self, name: str):
        self.name = name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Key({self.name!r})"

    def __eq__(self, value: Any) -> Eq:  # type: ignore[override]
        return Eq(self.name, value)

    def __ne__(self, value: Any) -> Ne:  # type: ignore[override]
        return Ne(self.name, value)

    def __gt__(self, value: Any) -> Gt:
        return Gt(self.name, value)

    def __ge__(self, value: Any) -> Gte:
        return Gte(self.name, value)

    def __lt__(self, value: Any) -> Lt:
        return Lt(self.name, value)

    def __le__(self, value: Any) -> Lte:
        return Lte(self.name, value)

    def is_in(self, values: list[Any]) -> In:
        return In(self.name, values)

    def not_in(self, values: list[Any]) -> Nin:
        return Nin(self.name, values)

    def regex(self, pattern: str) -> Regex:
        return Regex(self.name, pattern)

    def not_regex(self, pattern: str) -> NotRegex:
        return NotRegex(self.name, pattern)

    def contains(self, value: Any) -> Contains:
        if self.name == "#document" and not isinstance(value, str):
            raise TypeError("$contains on #document requires a string pattern")
        return Contains(self.name, value)

    def not_contains(self, value: Any) -> NotContains:
        if self.name == "#document" and not isinstance(value, str):
            raise TypeError("$not_contains on #document requires a string pattern")
        return NotContains(self.name, value)


Key.ID = Key("#id")
Key.DOCUMENT = Key("#document")
Key.EMBEDDING = Key("#embedding")
Key.METADATA = Key("#metadata")
Key.SCORE = Key("#score")
K = Key


def _key_name(k: Union[Key, str]) -> str:
    return k.name if isinstance(k, Key) else k


# ------------------------------------------------------------------------------ rank


def _as_rank(x: Any) -> "Rank":
    return Val(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x


def _check_int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, got {type(value).__name__}")
    return value


class Rank:
    """Base of rank expressions: arithmetic (+ - * / -x abs), ``exp``, ``log``, ``min``, ``max``."""

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError("Subclasses must implement to_dict()")

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "Rank":
        """chromadb's ``Rank.from_dict`` plus the ``$bm25`` and ``$weighted`` extensions."""
        check_depth(data, "rank")
        if not isinstance(data, dict):
            raise TypeError(f"Expected dict for Rank, got {type(data).__name__}")
        if not data:
            raise ValueError("Rank dict cannot be empty")
        if len(data) != 1:
            raise ValueError(f"Rank dict must contain exactly one operator, got {len(data)}")
        op, arg = next(iter(data.items()))
        if op == "$val":
            if not isinstance(arg, (int, float)) or isinstance(arg, bool):
                raise TypeError(f"$val requires a number, got {type(arg).__name__}")
            return Val(arg)
        if op == "$knn":
            return Knn._from_dict(arg)
        if op == "$bm25":
            return Bm25._from_dict(arg)
        if op == "$weighted":
            return Weighted._from_dict(arg)
        if op in ("$sum", "$mul", "$max", "$min"):
            if not isinstance(arg, (list, tuple)):
                raise TypeError(f"{op} requires a list, got {type(arg).__name__}")
            if len(arg) < 2:
                raise ValueError(f"{op} requires at least 2 ranks, got {len(arg)}")
            ranks = [Rank.from_dict(r) for r in arg]
            return {"$sum": Sum, "$mul": Mul, "$max": Max, "$min": Min}[op](ranks)
        if op in ("$sub", "$div"):
            if not isinstance(arg, dict):
                raise TypeError(f"{op} requires a dict with 'left' and 'right', got {type(arg).__name__}")
            if "left" not in arg or "right" not in arg:
                raise ValueError(f"{op} requires 'left' and 'right' fields")
            cls = Sub if op == "$sub" else Div
            return cls(Rank.from_dict(arg["left"]), Rank.from_dict(arg["right"]))
        if op in ("$abs", "$exp", "$log"):
            if not isinstance(arg, dict):
                raise TypeError(f"{op} requires a rank dict, got {type(arg).__name__}")
            return {"$abs": Abs, "$exp": Exp, "$log": Log}[op](Rank.from_dict(arg))
        raise ValueError(f"Unknown rank operator: {op}")

    def __add__(self, other: Any) -> "Sum":
        o = _as_rank(other)
        return Sum((self.ranks if isinstance(self, Sum) else [self]) + (o.ranks if isinstance(o, Sum) else [o]))

    def __radd__(self, other: Any) -> "Sum":
        return Val(other) + self

    def __sub__(self, other: Any) -> "Sub":
        return Sub(self, _as_rank(other))

    def __rsub__(self, other: Any) -> "Sub":
        return Sub(Val(other), self)

    def __mul__(self, other: Any) -> "Mul":
        o = _as_rank(other)
        return Mul((self.ranks if isinstance(self, Mul) else [self]) + (o.ranks if isinstance(o, Mul) else [o]))

    def __rmul__(self, other: Any) -> "Mul":
        return Val(other) * self

    def __truediv__(self, other: Any) -> "Div":
        return Div(self, _as_rank(other))

    def __rtruediv__(self, other: Any) -> "Div":
        return Div(Val(other), self)

    def __neg__(self) -> "Mul":
        return Mul([Val(-1), self])

    def __abs__(self) -> "Abs":
        return Abs(self)

    def abs(self) -> "Abs":
        return Abs(self)

    def exp(self) -> "Exp":
        return Exp(self)

    def log(self) -> "Log":
        return Log(self)

    def max(self, other: Any) -> "Max":
        o = _as_rank(other)
        return Max((self.ranks if isinstance(self, Max) else [self]) + (o.ranks if isinstance(o, Max) else [o]))

    def min(self, other: Any) -> "Min":
        o = _as_rank(other)
        return Min((self.ranks if isinstance(self, Min) else [self]) + (o.ranks if isinstance(o, Min) else [o]))


@dataclass
class Abs(Rank):
    rank: Rank

    def to_dict(self) -> dict[str, Any]:
        return {"$abs": self.rank.to_dict()}


@dataclass
class Exp(Rank):
    rank: Rank

    def to_dict(self) -> dict[str, Any]:
        return {"$exp": self.rank.to_dict()}


@dataclass
class Log(Rank):
    rank: Rank

    def to_dict(self) -> dict[str, Any]:
        return {"$log": self.rank.to_dict()}


@dataclass
class Div(Rank):
    left: Rank
    right: Rank

    def to_dict(self) -> dict[str, Any]:
        return {"$div": {"left": self.left.to_dict(), "right": self.right.to_dict()}}


@dataclass
class Sub(Rank):
    left: Rank
    right: Rank

    def to_dict(self) -> dict[str, Any]:
        return {"$sub": {"left": self.left.to_dict(), "right": self.right.to_dict()}}


@dataclass
class Sum(Rank):
    ranks: list[Rank]

    def to_dict(self) -> dict[str, Any]:
        return {"$sum": [r.to_dict() for r in self.ranks]}


@dataclass
class Mul(Rank):
    ranks: list[Rank]

    def to_dict(self) -> dict[str, Any]:
        return {"$mul": [r.to_dict() for r in self.ranks]}


@dataclass
class Max(Rank):
    ranks: list[Rank]

    def to_dict(self) -> dict[str, Any]:
        return {"$max": [r.to_dict() for r in self.ranks]}


@dataclass
class Min(Rank):
    ranks: list[Rank]

    def to_dict(self) -> dict[str, Any]:
        return {"$min": [r.to_dict() for r in self.ranks]}


@dataclass
class Val(Rank):
    """A constant, the same for every record (it adds no candidates)."""

    value: float

    def to_dict(self) -> dict[str, Any]:
        return {"$val": self.value}


def _check_limit_default_rank(op: str, d: dict[str, Any]) -> tuple[int, Any, bool]:
    limit = d.get("limit", 16)
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise TypeError(f"{op} limit must be an integer, got {type(limit).__name__}")
    if limit <= 0:
        raise ValueError(f"{op} limit must be positive, got {limit}")
    return_rank = d.get("return_rank", False)
    if not isinstance(return_rank, bool):
        raise TypeError(f"{op} return_rank must be a boolean, got {type(return_rank).__name__}")
    default = d.get("default")
    if default is not None and (not isinstance(default, (int, float)) or isinstance(default, bool)):
        raise TypeError(f"{op} default must be a number or null, got {type(default).__name__}")
    return limit, default, return_rank


@dataclass
class Knn(Rank):
    """The ``limit`` nearest records to ``query`` (value: distance, or 0-based rank).

    ``query`` is a dense vector, or a string embedded with the collection's
    embedding function (``embed_query``) before the search runs. Only the
    collection's own embeddings (``key="#embedding"``) can be searched: gleandb has
    no sparse or metadata vector indexes.
    """

    query: Any
    key: Union[Key, str] = "#embedding"
    limit: int = 16
    default: Optional[float] = None
    return_rank: bool = False

    def to_dict(self) -> dict[str, Any]:
        q = self.query
        if isinstance(q, np.ndarray):
            q = q.tolist()
        elif hasattr(q, "to_dict") and not isinstance(q, (str, list, tuple)):
            q = q.to_dict()  # a chromadb SparseVector
        out: dict[str, Any] = {"query": q, "key": _key_name(self.key), "limit": self.limit}
        if self.default is not None:
            out["default"] = self.default
        if self.return_rank:
            out["return_rank"] = self.return_rank
        return {"$knn": out}

    @staticmethod
    def _from_dict(d: Any) -> "Knn":
        if not isinstance(d, dict):
            raise TypeError(f"$knn requires a dict, got {type(d).__name__}")
        if "query" not in d:
            raise ValueError("$knn requires 'query' field")
        q = d["query"]
        if isinstance(q, dict):
            if q.get("#type") == "sparse_vector":
                raise ValueError("$knn: sparse vector queries are not supported by gleandb (it has no sparse "
                                 "vector indexes); use Bm25 for keyword ranking")
            raise ValueError(f"Expected dict with #type='sparse_vector', got {q}")
        if isinstance(q, (list, tuple, np.ndarray)):
            arr = np.asarray(q)
            if arr.ndim == 2 and arr.shape[0] == 1:
                arr = arr[0]
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError("$knn requires exactly one query embedding")
            if arr.dtype.kind not in "iuf" or arr.dtype == np.bool_:
                raise ValueError(f"$knn query must be a list of numbers, got {q!r:.80}")
            if not np.isfinite(arr.astype(np.float64)).all():
                raise ValueError("$knn query contains NaN or infinite values")
            q = arr.astype(np.float32)
        elif not isinstance(q, str):
            raise TypeError(f"$knn query must be a list, numpy array, or SparseVector dict, got {type(q).__name__}")
        key = d.get("key", "#embedding")
        if not isinstance(key, str):
            raise TypeError(f"$knn key must be a string, got {type(key).__name__}")
        limit, default, return_rank = _check_limit_default_rank("$knn", d)
        return Knn(query=q, key=key, limit=limit, default=default, return_rank=return_rank)


@dataclass
class Bm25(Rank):
    """gleandb extension: the ``limit`` best records by BM25 over the document text.

    Value: ``-bm25_score`` (lower is better), or the 0-based rank with
    ``return_rank=True``. ``query`` is plain text, tokenised like the documents.
    """

    query: str
    limit: int = 16
    default: Optional[float] = None
    return_rank: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "limit": self.limit}
        if self.default is not None:
            out["default"] = self.default
        if self.return_rank:
            out["return_rank"] = True
        return {"$bm25": out}

    @staticmethod
    def _from_dict(d: Any) -> "Bm25":
        if not isinstance(d, dict):
            raise TypeError(f"$bm25 requires a dict, got {type(d).__name__}")
        if "query" not in d:
            raise ValueError("$bm25 requires 'query' field")
        if not isinstance(d["query"], str):
            raise TypeError(f"$bm25 query must be a string, got {type(d['query']).__name__}")
        extra = set(d) - {"query", "limit", "default", "return_rank"}
        if extra:
            raise ValueError(f"Unexpected keys in $bm25: {sorted(extra)}")
        limit, default, return_rank = _check_limit_default_rank("$bm25", d)
        return Bm25(query=d["query"], limit=limit, default=default, return_rank=return_rank)


def _check_weights(weights: Optional[Sequence[float]], n: int, what: str) -> list[float]:
    if weights is None:
        return [1.0] * n
    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"{what} weights must be a list, got {type(weights).__name__}")
    if len(weights) != n:
        raise ValueError(f"Number of weights ({len(weights)}) must match number of ranks ({n})")
    out = []
    for w in weights:
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w):
            raise TypeError(f"{what} weights must be finite numbers, got {w!r}")
        if w < 0:
            raise ValueError("All weights must be non-negative")
        out.append(float(w))
    return out


@dataclass
class Rrf(Rank):
    """Reciprocal rank fusion, compiled (as chromadb does) to ``-sum(w_i / (k + rank_i))``.

    Give it ranks with ``return_rank=True``; a record missing from a rank with no
    ``default`` is left out, as in any arithmetic (set ``default`` to keep it)."""

    ranks: list[Rank]
    k: int = 60
    weights: Optional[list[float]] = None
    normalize: bool = False

    def to_dict(self) -> dict[str, Any]:
        if not self.ranks:
            raise ValueError("RRF requires at least one rank")
        if self.k <= 0:
            raise ValueError(f"k must be positive, got {self.k}")
        if self.weights is not None:
            if len(self.weights) != len(self.ranks):
                raise ValueError(
                    f"Number of weights ({len(self.weights)}) must match number of ranks ({len(self.ranks)})"
                )
            if any(w < 0.0 for w in self.weights):
                raise ValueError("All weights must be non-negative")
        weights = self.weights if self.weights else [1.0] * len(self.ranks)
        if self.normalize:
            total = sum(weights)
            if total == 0:
                raise ValueError("Sum of weights must be positive when normalize=True")
            weights = [w / total for w in weights]
        terms = [w / (self.k + r) for w, r in zip(weights, self.ranks)]
        acc: Rank = terms[0]
        for t in terms[1:]:
            acc = acc + t
        return (-acc).to_dict()


@dataclass
class Weighted(Rank):
    """gleandb extension: weighted fusion of min-max normalised ranks (see the module doc)."""

    ranks: list[Rank]
    weights: Optional[list[float]] = None
    normalize: str = "minmax"

    def __post_init__(self) -> None:
        if not isinstance(self.ranks, (list, tuple)) or not self.ranks:
            raise ValueError("Weighted requires at least one rank")
        self.ranks = list(self.ranks)
        self.weights = _check_weights(self.weights, len(self.ranks), "Weighted")
        if self.normalize != "minmax":
            raise ValueError(f"Weighted normalize must be 'minmax', got {self.normalize!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"$weighted": {"ranks": [r.to_dict() for r in self.ranks], "weights": list(self.weights),
                              "normalize": self.normalize}}

    @staticmethod
    def _from_dict(d: Any) -> "Weighted":
        if not isinstance(d, dict):
            raise TypeError(f"$weighted requires a dict, got {type(d).__name__}")
        extra = set(d) - {"ranks", "weights", "normalize"}
        if extra:
            raise ValueError(f"Unexpected keys in $weighted: {sorted(extra)}")
        ranks = d.get("ranks")
        if not isinstance(ranks, (list, tuple)):
            raise TypeError(f"$weighted ranks must be a list, got {type(ranks).__name__}")
        return Weighted([Rank.from_dict(r) for r in ranks], d.get("weights"), d.get("normalize", "minmax"))


# ------------------------------------------------------------- limit, select, group by


@dataclass
class Limit:
    offset: int = 0
    limit: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"offset": self.offset}
        if self.limit is not None:
            out["limit"] = self.limit
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "Limit":
        if not isinstance(data, dict):
            raise TypeError(f"Expected dict for Limit, got {type(data).__name__}")
        offset = data.get("offset", 0)
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(f"Limit offset must be an integer, got {type(offset).__name__}")
        if offset < 0:
            raise ValueError(f"Limit offset must be non-negative, got {offset}")
        limit = data.get("limit")
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool):
                raise TypeError(f"Limit limit must be an integer, got {type(limit).__name__}")
            if limit <= 0:
                raise ValueError(f"Limit limit must be positive, got {limit}")
        extra = set(data) - {"offset", "limit"}
        if extra:
            raise ValueError(f"Unexpected keys in Limit dict: {extra}")
        return Limit(offset=offset, limit=limit)


@dataclass
class Select:
    """Keys to return: ``K.DOCUMENT``, ``K.EMBEDDING``, ``K.METADATA``, ``K.SCORE`` or metadata fields."""

    keys: Any = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(dict.fromkeys(_key_name(k) for k in self.keys))}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "Select":
        if not isinstance(data, dict):
            raise TypeError(f"Expected dict for Select, got {type(data).__name__}")
        keys = data.get("keys", [])
        if not isinstance(keys, (list, tuple, set)):
            raise TypeError(f"Select keys must be a list/tuple/set, got {type(keys).__name__}")
        for k in keys:
            if not isinstance(k, str):
                raise TypeError(f"Select key must be a string, got {type(k).__name__}")
        extra = set(data) - {"keys"}
        if extra:
            raise ValueError(f"Unexpected keys in Select dict: {extra}")
        return Select(keys=list(dict.fromkeys(keys)))


def _keys_list(keys: Any) -> list[str]:
    if isinstance(keys, (Key, str)):
        keys = [keys]
    return [_key_name(k) for k in keys]


class Aggregate:
    """``MinK`` / ``MaxK``: which records of each group to keep."""

    keys: Any
    k: int

    def to_dict(self) -> dict[str, Any]:
        return {self._op: {"keys": _keys_list(self.keys), "k": self.k}}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "Aggregate":
        if not isinstance(data, dict):
            raise TypeError(f"Expected dict for Aggregate, got {type(data).__name__}")
        if not data:
            raise ValueError("Aggregate dict cannot be empty")
        if len(data) != 1:
            raise ValueError(f"Aggregate dict must contain exactly one operator, got {len(data)}")
        op, agg = next(iter(data.items()))
        if op not in ("$min_k", "$max_k"):
            raise ValueError(f"Unknown aggregate operator: {op}")
        if not isinstance(agg, dict):
            raise TypeError(f"{op} requires a dict, got {type(agg).__name__}")
        if "keys" not in agg:
            raise ValueError(f"{op} requires 'keys' field")
        if "k" not in agg:
            raise ValueError(f"{op} requires 'k' field")
        keys = agg["keys"]
        if not isinstance(keys, (list, tuple)):
            raise TypeError(f"{op} keys must be a list, got {type(keys).__name__}")
        if not keys:
            raise ValueError(f"{op} keys cannot be empty")
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"{op} keys must be strings, got {type(key).__name__}")
        k = agg["k"]
        if not isinstance(k, int) or isinstance(k, bool):
            raise TypeError(f"{op} k must be an integer, got {type(k).__name__}")
        if k <= 0:
            raise ValueError(f"{op} k must be positive, got {k}")
        return (MinK if op == "$min_k" else MaxK)(keys=list(keys), k=k)


@dataclass
class MinK(Aggregate):
    """Keep the k records with the smallest values of ``keys`` (in order) per group."""

    keys: Any
    k: int
    _op = "$min_k"


@dataclass
class MaxK(Aggregate):
    """Keep the k records with the largest values of ``keys`` (in order) per group."""

    keys: Any
    k: int
    _op = "$max_k"


@dataclass
class GroupBy:
    """Group ranked records by metadata ``keys``; keep ``aggregate``'s k per group."""

    keys: Any = field(default_factory=list)
    aggregate: Optional[Aggregate] = None

    def to_dict(self) -> dict[str, Any]:
        if not self.keys or self.aggregate is None:
            return {}
        return {"keys": _keys_list(self.keys), "aggregate": self.aggregate.to_dict()}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "GroupBy":
        if not isinstance(data, dict):
            raise TypeError(f"Expected dict for GroupBy, got {type(data).__name__}")
        if not data:
            return GroupBy()
        if "keys" not in data:
            raise ValueError("GroupBy requires 'keys' field")
        if "aggregate" not in data:
            raise ValueError("GroupBy requires 'aggregate' field")
        keys = data["keys"]
        if not isinstance(keys, (list, tuple)):
            raise TypeError(f"GroupBy keys must be a list, got {type(keys).__name__}")
        if not keys:
            raise ValueError("GroupBy keys cannot be empty")
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"GroupBy keys must be strings, got {type(key).__name__}")
        agg = data["aggregate"]
        if not isinstance(agg, dict):
            raise TypeError(f"GroupBy aggregate must be a dict, got {type(agg).__name__}")
        return GroupBy(keys=list(keys), aggregate=Aggregate.from_dict(agg))


# ---------------------------------------------------------------------------- search


class Search:
    """One search: ``where`` filter, ``rank`` expression, ``group_by``, ``limit``, ``select``.

    Built directly, from dicts, or with the builder methods (each returns a new
    ``Search``), exactly like chromadb's ``Search``."""

    def __init__(self, where: Any = None, rank: Any = None, group_by: Any = None, limit: Any = None, select: Any = None):
        if where is None or isinstance(where, Where):
            self._where = where
        elif isinstance(where, dict):
            self._where = Where.from_dict(where)
        else:
            raise TypeError(f"where must be a Where object, dict, or None, got {type(where).__name__}")
        if rank is None or isinstance(rank, Rank):
            self._rank = rank
        elif isinstance(rank, dict):
            self._rank = Rank.from_dict(rank)
        else:
            raise TypeError(f"rank must be a Rank object, dict, or None, got {type(rank).__name__}")
        if group_by is None:
            self._group_by = GroupBy()
        elif isinstance(group_by, GroupBy):
            self._group_by = group_by
        elif isinstance(group_by, dict):
            self._group_by = GroupBy.from_dict(group_by)
        else:
            raise TypeError(f"group_by must be a GroupBy object, dict, or None, got {type(group_by).__name__}")
        if limit is None:
            self._limit = Limit()
        elif isinstance(limit, Limit):
            self._limit = limit
        elif isinstance(limit, int) and not isinstance(limit, bool):
            self._limit = Limit.from_dict({"limit": limit, "offset": 0})
        elif isinstance(limit, dict):
            self._limit = Limit.from_dict(limit)
        else:
            raise TypeError(f"limit must be a Limit object, dict, int, or None, got {type(limit).__name__}")
        if select is None:
            self._select = Select()
        elif isinstance(select, Select):
            self._select = select
        elif isinstance(select, dict):
            self._select = Select.from_dict(select)
        elif isinstance(select, (list, set, tuple)):
            self._select = Select.from_dict({"keys": [_key_name(k) for k in select]})
        else:
            raise TypeError(f"select must be a Select object, dict, list, set, or None, got {type(select).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "filter": self._where.to_dict() if self._where is not None else None,
            "rank": self._rank.to_dict() if self._rank is not None else None,
            "group_by": self._group_by.to_dict(),
            "limit": self._limit.to_dict(),
            "select": self._select.to_dict(),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "Search":
        """A search from its wire form (``filter``, ``rank``, ``group_by``, ``limit``, ``select``)."""
        if not isinstance(data, dict):
            raise TypeError(f"Expected dict for Search, got {type(data).__name__}")
        extra = set(data) - {"filter", "where", "rank", "group_by", "limit", "select"}
        if extra:
            raise ValueError(f"Unexpected keys in search: {sorted(extra)}")
        where = data.get("filter", data.get("where"))
        return Search(where=where or None, rank=data.get("rank"), group_by=data.get("group_by") or None,
                      limit=data.get("limit"), select=data.get("select"))

    def _copy(self, **kw: Any) -> "Search":
        args = dict(where=self._where, rank=self._rank, group_by=self._group_by, limit=self._limit, select=self._select)
        args.update(kw)
        return Search(**args)

    def select_all(self) -> "Search":
        return self._copy(select=Select(keys=["#document", "#embedding", "#metadata", "#score"]))

    def select(self, *keys: Union[Key, str]) -> "Search":
        return self._copy(select=Select(keys=[_key_name(k) for k in keys]))

    def where(self, where: Any) -> "Search":
        return self._copy(where=where)

    def rank(self, rank_expr: Any) -> "Search":
        return self._copy(rank=rank_expr)

    def group_by(self, group_by: Any) -> "Search":
        return self._copy(group_by=group_by)

    def limit(self, limit: int, offset: int = 0) -> "Search":
        return self._copy(limit=Limit(offset=offset, limit=limit))

    def __repr__(self) -> str:
        return f"Search({self.to_dict()!r})"


def search_to_dict(search: Any) -> dict[str, Any]:
    """The wire dict of a gleandb ``Search``, a chromadb ``Search`` or a plain dict."""
    if isinstance(search, dict):
        return Search.from_dict(search).to_dict()
    to_dict = getattr(search, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"Expected a Search (gleandb or chromadb) or a dict, got {type(search).__name__}")


class SearchResult(dict):
    """Column-major results, one entry per search: ``ids``, ``documents``, ``embeddings``,
    ``metadatas``, ``scores``, ``select``; a column is None where its key was not selected."""

    def rows(self) -> list[list[dict[str, Any]]]:
        """Row-major view: per search, ``[{"id", "document"?, "embedding"?, "metadata"?, "score"?}]``."""
        ids_all = self.get("ids", [])
        n = len(ids_all)
        cols = [self.get(c) or [None] * n for c in ("documents", "embeddings", "metadatas", "scores")]
        out = []
        for i, ids in enumerate(ids_all):
            per = [c[i] or [None] * len(ids) for c in cols]
            rows = []
            for j, id_ in enumerate(ids):
                row: dict[str, Any] = {"id": id_}
                for name, col in zip(("document", "embedding", "metadata", "score"), per):
                    if col[j] is not None:
                        row[name] = col[j]
                rows.append(row)
            out.append(rows)
        return out


def _iter_leaves(rank: Optional[Rank]) -> Iterable[Rank]:
    """Knn / Bm25 leaves in depth-first order (the order the executor fetches them)."""
    if rank is None:
        return
    if isinstance(rank, (Knn, Bm25)):
        yield rank
    elif isinstance(rank, (Abs, Exp, Log)):
        yield from _iter_leaves(rank.rank)
    elif isinstance(rank, (Sub, Div)):
        yield from _iter_leaves(rank.left)
        yield from _iter_leaves(rank.right)
    elif isinstance(rank, (Sum, Mul, Max, Min, Weighted)):
        for r in rank.ranks:
            yield from _iter_leaves(r)
