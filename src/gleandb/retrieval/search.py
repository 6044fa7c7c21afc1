"""Executor of the Search API (chromadb's ``collection.search``) over one collection.

One search runs in this order, as in Chroma's distributed executor:

1. ``filter`` → an allowed-row mask per segment (live rows only). The filter is
   chromadb's ``where`` grammar plus ``#document`` ($contains, $not_contains,
   $regex, $not_regex) and ``#id`` ($eq, $ne, $in, $nin) keys, freely mixed under
   ``$and`` / ``$or``.
2. Every ``Knn`` (and the ``Bm25`` extension) leaf of ``rank`` fetches its own
   top-``limit`` allowed rows.
3. The expression is evaluated over *domains* exactly like Chroma's
   ``rank.rs``: a domain is (values on a support set, default or None). A leaf's
   support is its top-``limit`` rows, its default its ``default``; ``$val`` has an
   empty support and a default. Combining two domains takes the intersection of
   the supports when neither has a default, the other side's support when one
   has, and the union when both have; a missing side takes its default. Only the
   final support is returned (so a rank made only of ``$val`` returns nothing).
   Arithmetic is in float64 (Chroma uses float32).
4. Sort ascending by value (lower is better; ties by insertion rank; NaN last),
   then ``group_by`` (keep MinK/MaxK per group, flatten, re-sort), then
   ``offset`` / ``limit``, then ``select`` hydrates the requested columns.

Without a rank, records come back filtered and unscored in insertion order (like
``get``), with ``limit`` / ``offset``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from gleandb.expression import search as s
from gleandb.errors import InvalidArgumentError
from gleandb.engine.store import CollectionStore, SegView
from gleandb.index.filters import compile_search_filter
from gleandb.retrieval import fusion
from gleandb.retrieval.rankers import bm25_ranked, dense_top_k

SPECIAL_SELECT = ("#id", "#document", "#embedding", "#metadata", "#score")
Key = tuple[int, int]  # (view index, row) in one snapshot


# ------------------------------------------------------------------------------ rank


class Domain:
    """Values on a support set plus a default for everything else (None: excluded)."""

    __slots__ = ("support", "default")

    def __init__(self, support: dict, default: float | None):
        self.support = support
        self.default = default

    @staticmethod
    def flat(default: float) -> "Domain":
        return Domain({}, default)

    def map(self, op: Callable[[float], float]) -> "Domain":
        return Domain({k: op(v) for k, v in self.support.items()},
                      None if self.default is None else op(self.default))

    @staticmethod
    def merge(a: "Domain", b: "Domain", op: Callable[[float, float], float]) -> "Domain":
        if a.default is not None and b.default is not None:
            keys = list(a.support) + [k for k in b.support if k not in a.support]
            return Domain({k: op(a.support.get(k, a.default), b.support.get(k, b.default)) for k in keys},
                          op(a.default, b.default))
        if a.default is not None:
            return Domain({k: op(a.support.get(k, a.default), v) for k, v in b.support.items()}, None)
        if b.default is not None:
            return Domain({k: op(v, b.support.get(k, b.default)) for k, v in a.support.items()}, None)
        return Domain({k: op(v, b.support[k]) for k, v in a.support.items() if k in b.support}, None)


def _div(x: float, y: float) -> float:
    if y == 0:
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _log(x: float) -> float:
    if x > 0:
        return math.log(x)
    return -math.inf if x == 0 else math.nan


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _fold(domains: list[Domain], start: float, op: Callable[[float, float], float]) -> Domain:
    acc = Domain.flat(start)
    for d in domains:
        acc = Domain.merge(acc, d, op)
    return acc


def evaluate(rank: s.Rank, leaves: dict[int, list[tuple[Key, float]]]) -> Domain:
    """The domain of ``rank`` given each leaf's ranked candidates (keyed by ``id(leaf)``)."""
    if isinstance(rank, (s.Knn, s.Bm25)):
        ranked = leaves[id(rank)]
        if rank.return_rank:
            return Domain({k: float(i) for i, (k, _v) in enumerate(ranked)}, rank.default)
        return Domain({k: v for k, v in ranked}, rank.default)
    if isinstance(rank, s.Val):
        return Domain.flat(float(rank.value))
    if isinstance(rank, s.Abs):
        return evaluate(rank.rank, leaves).map(abs)
    if isinstance(rank, s.Exp):
        return evaluate(rank.rank, leaves).map(_exp)
    if isinstance(rank, s.Log):
        return evaluate(rank.rank, leaves).map(_log)
    if isinstance(rank, s.Sub):
        return Domain.merge(evaluate(rank.left, leaves), evaluate(rank.right, leaves), lambda x, y: x - y)
    if isinstance(rank, s.Div):
        return Domain.merge(evaluate(rank.left, leaves), evaluate(rank.right, leaves), _div)
    if isinstance(rank, s.Sum):
        return _fold([evaluate(r, leaves) for r in rank.ranks], 0.0, lambda x, y: x + y)
    if isinstance(rank, s.Mul):
        return _fold([evaluate(r, leaves) for r in rank.ranks], 1.0, lambda x, y: x * y)
    if isinstance(rank, s.Max):
        return _fold([evaluate(r, leaves) for r in rank.ranks], -math.inf, lambda x, y: x if x >= y or math.isnan(y) else y)
    if isinstance(rank, s.Min):
        return _fold([evaluate(r, leaves) for r in rank.ranks], math.inf, lambda x, y: x if x <= y or math.isnan(y) else y)
    if isinstance(rank, s.Weighted):
        parts = {}
        for i, r in enumerate(rank.ranks):
            d = evaluate(r, leaves)
            parts[str(i)] = list(d.support.items())
        fused = fusion.weighted(parts, {name: False for name in parts},
                                {str(i): w for i, w in enumerate(rank.weights)})
        return Domain({k: -v for k, v in fused.items()}, None)
    if isinstance(rank, s.Rrf):
        return evaluate(s.Rank.from_dict(rank.to_dict()), leaves)
    raise InvalidArgumentError(f"unknown rank expression {type(rank).__name__}")


# ------------------------------------------------------------------------- grouping


def _sortable(v: Any) -> tuple:
    """A total order over metadata values: numbers (and bools), then strings, then missing."""
    if v is None:
        return (3, 0)
    if isinstance(v, bool):
        return (0, float(v))
    if isinstance(v, (int, float)):
        return (0, float(v))
    if isinstance(v, str):
        return (1, v)
    return (2, str(v))


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def group(order: list[tuple[Key, float, int]], metas: dict[Key, dict | None], gb: s.GroupBy) -> list[tuple[Key, float, int]]:
    """Keep ``aggregate.k`` records per group of ``gb.keys`` values, flattened, by score.

    Records missing a group key form groups with None in that place; within a group,
    MinK sorts ascending and MaxK descending by the aggregate keys in order (records
    missing a key after those that have it), ties by insertion rank."""
    keys = s._keys_list(gb.keys)
    agg = gb.aggregate
    agg_keys = s._keys_list(agg.keys)
    desc = isinstance(agg, s.MaxK)

    def agg_key(item: tuple[Key, float, int]) -> tuple:
        md = metas.get(item[0]) or {}
        parts = []
        for k in agg_keys:
            v = item[1] if k == "#score" else md.get(k)
            kind, val = _sortable(None if isinstance(v, float) and math.isnan(v) else v)
            if desc and kind == 0:
                val = -val
            elif desc and kind in (1, 2):
                val = _Reversed(val)
            parts.append((kind, val))
        return (tuple(parts), item[2])

    groups: dict[tuple, list[tuple[Key, float, int]]] = {}
    for item in order:
        md = metas.get(item[0]) or {}
        groups.setdefault(tuple(_hashable(md.get(k)) for k in keys), []).append(item)
    kept = []
    for members in groups.values():
        kept.extend(sorted(members, key=agg_key)[: agg.k])
    return sorted(kept, key=_score_order)


class _Reversed:
    """Reverses the order of strings inside a sort key (MaxK over string values)."""

    __slots__ = ("v",)

    def __init__(self, v: Any):
        self.v = v

    def __lt__(self, other: "_Reversed") -> bool:
        return other.v < self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.v == self.v


def _score_order(item: tuple[Key, float, int]) -> tuple:
    score = item[1]
    return (math.isnan(score), score if not math.isnan(score) else 0.0, item[2])


# --------------------------------------------------------------------------- execute


def _validate_select(keys: list[str]) -> None:
    for k in keys:
        if k.startswith("#") and k not in SPECIAL_SELECT:
            raise InvalidArgumentError(
                f"select key {k!r} is not known: use #id, #document, #embedding, #metadata, #score or a metadata key")


def _validate_group_by(gb: s.GroupBy, rank: s.Rank | None) -> None:
    if not gb.keys or gb.aggregate is None:
        if gb.keys or gb.aggregate is not None:
            raise InvalidArgumentError("group_by needs both keys and aggregate")
        return
    if rank is None:
        raise InvalidArgumentError("group_by requires a rank expression")
    for k in s._keys_list(gb.keys):
        if k.startswith("#"):
            raise InvalidArgumentError(f"group_by keys must be metadata keys, got {k!r}")
    for k in s._keys_list(gb.aggregate.keys):
        if k.startswith("#") and k != "#score":
            raise InvalidArgumentError(f"aggregate keys must be metadata keys or #score, got {k!r}")


def parse(search: Any) -> s.Search:
    """Any accepted form (gleandb or chromadb ``Search``, wire dict) as a validated gleandb ``Search``.

    Malformed input raises chromadb's ``TypeError`` / ``ValueError`` (400 over HTTP)."""
    return s.Search.from_dict(s.search_to_dict(search))


def embed_string_queries(search: s.Search, embedding_function: Any) -> None:
    """Replace string ``Knn`` queries by their embeddings (the collection's ``embed_query``)."""
    for leaf in s._iter_leaves(search._rank):
        if isinstance(leaf, s.Knn) and isinstance(leaf.query, str):
            if embedding_function is None:
                raise InvalidArgumentError(
                    f"Knn query {leaf.query!r:.60} is text, but this collection has no embedding function to "
                    "embed it (send a vector; clients embed text queries before sending them)")
            fn = getattr(embedding_function, "embed_query", None) or embedding_function
            vec = fn([leaf.query])
            leaf.query = np.asarray(vec[0], dtype=np.float32)


def run(store: CollectionStore, embedding_function: Any, searches: Any) -> s.SearchResult:
    """``collection.search(searches)``: one search or a list; returns a ``SearchResult``.
    Text ``Knn`` queries are embedded with the collection's ``embedding_function``."""
    items = searches if isinstance(searches, (list, tuple)) else [searches]
    parsed = [parse(x) for x in items]
    for p in parsed:
        embed_string_queries(p, embedding_function)
    out = s.SearchResult(ids=[], documents=[], embeddings=[], metadatas=[], scores=[], select=[])
    for p in parsed:
        res = execute(store, p)
        for k in out:
            out[k].append(res[k])
    return out


def execute(store: CollectionStore, search: s.Search) -> dict[str, Any]:
    """One search against a snapshot of ``store``: one entry of each response column."""
    where = search._where.to_dict() if search._where is not None else None
    rank = search._rank
    if isinstance(rank, s.Rrf):
        rank = s.Rank.from_dict(rank.to_dict())
    gb, lim = search._group_by, search._limit
    select = s.Select.from_dict(search._select.to_dict()).keys
    _validate_select(select)
    _validate_group_by(gb, rank)
    leaves_list = list(s._iter_leaves(rank))
    for leaf in leaves_list:
        if isinstance(leaf, s.Knn):
            key = s._key_name(leaf.key)
            if key != "#embedding":
                raise InvalidArgumentError(
                    f"Knn key {key!r} is not supported: gleandb searches the collection's embeddings (#embedding) only")
            if isinstance(leaf.query, str):
                raise InvalidArgumentError("Knn query is text; it must be embedded before the search runs")
    filt = compile_search_filter(where)

    snap = store.snapshot()
    masks = CollectionStore.allowed_masks(snap, filt)
    rid = lambda k: int(snap[k[0]].seg.rids[k[1]])  # noqa: E731

    if rank is None:
        order = []
        for vi, view in enumerate(snap):
            m = masks[vi]
            rows = np.arange(view.seg.n) if m is None else np.flatnonzero(m)
            order.extend(((vi, int(r)), math.nan, int(view.seg.rids[r])) for r in rows)
        order.sort(key=lambda t: t[2])
        scored = False
    else:
        leaves: dict[int, list[tuple[Key, float]]] = {}
        for leaf in leaves_list:
            if isinstance(leaf, s.Knn):
                q = np.asarray(leaf.query, dtype=np.float32)[None, :]
                ranked = dense_top_k(store, snap, q, leaf.limit, masks)[0]
                leaves[id(leaf)] = [((vi, row), v) for vi, row, v in ranked]
            else:
                ranked = bm25_ranked(store, snap, leaf.query, leaf.limit, masks)
                leaves[id(leaf)] = [((vi, row), -v) for vi, row, v in ranked]
        dom = evaluate(rank, leaves)
        order = sorted(((k, float(v), rid(k)) for k, v in dom.support.items()), key=_score_order)
        scored = True

    if scored and gb.keys and gb.aggregate is not None:
        metas = _metadatas(snap, [k for k, _v, _r in order])
        order = group(order, metas, gb)

    order = order[lim.offset:]
    if lim.limit is not None:
        order = order[: lim.limit]
    return _project(store, snap, order, select, scored)


def _metadatas(snap: Sequence[SegView], keys: list[Key]) -> dict[Key, dict | None]:
    h = CollectionStore.hydrate(snap, keys, {"metadatas"}, None)
    return dict(zip(keys, h.metadatas))


def _project(store: CollectionStore, snap, order, select: list[str], scored: bool) -> dict[str, Any]:
    keys = [k for k, _v, _r in order]
    meta_fields = [k for k in select if not k.startswith("#")]
    want = set()
    if "#document" in select:
        want.add("documents")
    if "#embedding" in select:
        want.add("embeddings")
    if "#metadata" in select or meta_fields:
        want.add("metadatas")
    h = CollectionStore.hydrate(snap, keys, want, store.dimension)
    metadatas = None
    if "metadatas" in want:
        if "#metadata" in select:
            metadatas = h.metadatas
        else:
            metadatas = []
            for md in h.metadatas:
                part = {f: md[f] for f in meta_fields if md and f in md}
                metadatas.append(part or None)
    scores = None
    if "#score" in select:
        scores = [(None if math.isnan(v) else v) for _k, v, _r in order] if scored else [None] * len(order)
    return {
        "ids": list(h.ids),
        "documents": h.documents if "documents" in want else None,
        "embeddings": [row.tolist() for row in h.embeddings] if "embeddings" in want else None,
        "metadatas": metadatas,
        "scores": scores,
        "select": list(select),
    }
