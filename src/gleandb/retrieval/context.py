"""``Collection.context``: retrieve candidates, re-rank, pack the best into a token budget.

Stages, each timed into ``Context.usage.latency_ms`` (retrieve, dedupe, rerank, pack):

1. retrieve: ``candidates`` records from the first stage (``Collection.retrieve``: dense
   vectors and/or BM25, fused, under the filters), with embeddings when ``dedupe`` is on;
2. dedupe: drop near-duplicates by embedding cosine (before re-ranking, so the model is
   not paid to judge the same text twice; the first-stage better copy stays);
3. rerank: score with the re-ranker, sort (ties keep first-stage order), drop scores under
   the threshold, keep ``top_n``. A failing re-ranker raises, or with
   ``on_rerank_error="warn"`` degrades to first-stage order with a warning. When only some
   candidates could be scored (a pointwise batch failed), the scored ones are sorted and
   the unscored keep their first-stage slots among them: a failed batch costs its own
   grades, not everyone's (``usage.graded`` says how many were scored);
4. pack: fill ``max_tokens`` by relevance, arrange by ``order``, number the citations.

The collection it is handed may be embedded or on a server (``HttpCollection``); the
pipeline uses only its public surface (``retrieve()``, ``embedding_function``,
``configuration_json``), never an api object's private state, so it runs the same on
both and imports nothing above ``retrieval`` (tested with an object that has nothing else).

One ``deadline`` bounds the whole call (model calls, retries and their waits): a dead
endpoint costs at most that long. Whatever raises carries the usage spent so far as
``exc.usage`` (a :class:`ContextUsage`), since the calls were paid for either way.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from gleandb.retrieval import packing
from gleandb.retrieval.llm import Usage

MODES = ("hybrid", "dense", "bm25")
ON_ERROR = ("raise", "warn")
DEFAULT_DEADLINE = 120.0   # seconds for one context() call; a listwise pass over 200 candidates fits


class RerankWarning(UserWarning):
    """The re-ranker failed and the context fell back to first-stage order."""


@dataclass
class Chunk:
    id: str
    document: str
    metadata: dict | None
    citation: int                  # the number in the marker: [citation]
    marker: str
    rerank_score: float | None     # None without a re-ranker or when it failed
    first_stage: dict              # {"rank": 0-based, "score": fused, "ranks": {...}, "scores": {...}}
    tokens: int                    # of the document as packed (without the marker)
    truncated: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ContextUsage:
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    retries: int = 0
    failed_calls: int = 0
    latency_ms: dict = field(default_factory=dict)    # retrieve, dedupe, rerank, pack, total
    candidates: int = 0                               # first-stage results
    reranked: int = 0                                 # sent to the re-ranker
    graded: int = 0                                   # of those, how many got a score back
    dropped: dict = field(default_factory=dict)       # duplicates, no_document, threshold, top_n, budget
    tokens: int = 0                                   # of Context.text
    max_tokens: int = 0
    tokenizer: str = ""
    reranker: dict | None = None
    first_stage: str = ""
    degraded: bool = False
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Context:
    question: str
    text: str
    chunks: list[Chunk]
    usage: ContextUsage

    @property
    def citations(self) -> dict[int, str]:
        """Citation number -> record id."""
        return {c.citation: c.id for c in self.chunks}

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.chunks]

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict:
        return {"question": self.question, "text": self.text, "chunks": [c.to_dict() for c in self.chunks],
                "citations": {str(k): v for k, v in self.citations.items()}, "usage": self.usage.to_dict()}


@dataclass
class Candidates:
    """First-stage results of one query, best first."""

    ids: list[str]
    documents: list[str | None]
    metadatas: list[dict | None]
    embeddings: np.ndarray | None
    scores: list[float]
    ranks: list[dict]
    ranker_scores: list[dict]
    source: str


# ---------------------------------------------------------------------- validation


def _int_arg(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def validate_args(question: Any, candidates: Any, top_n: Any, max_tokens: Any, threshold: Any, order: Any,
                  dedupe: Any, mode: Any, on_rerank_error: Any, reranker: Any,
                  deadline: Any = DEFAULT_DEADLINE) -> None:
    """All argument checks, before any work, each error naming the argument and the value."""
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                 or not deadline > 0 or math.isinf(deadline)):
        raise ValueError(f"deadline must be a positive number of seconds or None, got {deadline!r}")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty string, got {question!r}")
    _int_arg("candidates", candidates, 1)
    _int_arg("top_n", top_n, 1)
    _int_arg("max_tokens", max_tokens, 1)
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
            raise ValueError(f"threshold must be a number or None, got {threshold!r}")
        if reranker is None:
            raise ValueError(f"threshold={threshold!r} applies to re-ranker scores, but reranker is None")
    if order not in packing.ORDERS:
        raise ValueError(f"order must be one of {', '.join(packing.ORDERS)}, got {order!r}")
    if dedupe is not None and (isinstance(dedupe, bool) or not isinstance(dedupe, (int, float))
                               or not 0 < dedupe <= 1):
        raise ValueError(f"dedupe must be a cosine similarity in (0, 1] or None, got {dedupe!r}")
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)} or None (the collection's stored retrieval "
                         f"mode, else the built-in one), got {mode!r}")
    if on_rerank_error not in ON_ERROR:
        raise ValueError(f"on_rerank_error must be one of {', '.join(ON_ERROR)}, got {on_rerank_error!r}")
    if reranker is not None and not callable(getattr(reranker, "rerank", None)):
        raise ValueError(f"reranker must have a rerank(query, documents, usage) method "
                         f"(gleandb.rerank.LLM, CrossEncoder, Function...), got {reranker!r}")


# --------------------------------------------------------------------- first stage


def _first(res: dict, key: str) -> Any:
    v = res.get(key)
    return None if v is None else v[0]


def first_stage(col: Any, question: str, query_embedding: Any, n: int, where: Any, where_document: Any,
                mode: str, with_embeddings: bool) -> Candidates:
    """``n`` candidates from ``col.retrieve`` (each ranker looks ``n`` deep before fusion).

    The question is always sent as text (BM25 needs it); ``query_embedding``, when given,
    saves embedding it with the collection's function."""
    if mode is None:  # the collection's stored retrieval mode, else the built-in default
        mode = stored_mode(col)
    if query_embedding is None and mode != "bm25" and getattr(col, "embedding_function", True) is None:
        raise ValueError(f"mode={mode!r} embeds the question with the collection's embedding function, and this "
                         "collection has none: pass query_embedding, or use mode='bm25'")
    include = ["documents", "metadatas"] + (["embeddings"] if with_embeddings else [])
    kw: dict[str, Any] = {"query_texts": [question]}
    if query_embedding is not None and mode != "bm25":
        kw["query_embeddings"] = [np.asarray(query_embedding, dtype=np.float32)]
    res = col.retrieve(n_results=n, candidates=n, where=where, where_document=where_document, mode=mode,
                       include=include, **kw)
    ids = list(_first(res, "ids") or [])
    emb = _first(res, "embeddings")
    return Candidates(
        ids=ids, documents=list(_first(res, "documents") or [None] * len(ids)),
        metadatas=list(_first(res, "metadatas") or [None] * len(ids)),
        embeddings=None if emb is None else np.asarray(emb, dtype=np.float32).reshape(len(ids), -1),
        scores=[float(s) for s in _first(res, "scores")],
        ranks=list(_first(res, "ranks")), ranker_scores=list(_first(res, "ranker_scores")),
        source=f"retrieve {mode}",
    )


def stored_mode(col: Any) -> str:
    """The retrieval mode a plain ``col.retrieve()`` uses (stored configuration, else built-in)."""
    from gleandb.retrieval.hybrid import effective

    return effective(getattr(col, "configuration_json", None))["mode"]


# ------------------------------------------------------------------------ pipeline


def build_context(
    col: Any,
    question: str,
    candidates: int = 200,
    where: Any = None,
    where_document: Any = None,
    mode: str | None = None,
    reranker: Any = None,
    top_n: int = 20,
    max_tokens: int = 4000,
    threshold: float | None = None,
    order: str = "relevance",
    dedupe: float | None = 0.95,
    tokenizer: str | Callable[[str], Any] | None = None,
    on_rerank_error: str = "raise",
    query_embedding: Any = None,
    truncate: bool = False,
    first_stage_results: Candidates | None = None,
    deadline: float | None = DEFAULT_DEADLINE,
) -> Context:
    """See :meth:`gleandb.Collection.context`."""
    validate_args(question, candidates, top_n, max_tokens, threshold, order, dedupe, mode, on_rerank_error,
                  reranker, deadline)
    usage = ContextUsage(max_tokens=max_tokens, dropped={"no_document": 0, "duplicates": 0, "threshold": 0,
                                                         "top_n": 0, "budget": 0})
    calls = Usage()
    calls.set_deadline(deadline)
    marks = {"start": time.perf_counter()}
    try:
        return _run(col, question, candidates, where, where_document, mode, reranker, top_n, max_tokens, threshold,
                    order, dedupe, tokenizer, on_rerank_error, query_embedding, truncate, first_stage_results,
                    usage, calls, marks)
    except Exception as exc:
        _settle(usage, calls, marks)
        try:
            exc.usage = usage  # type: ignore[attr-defined]  # the calls were paid for: say so
        except AttributeError:  # pragma: no cover - an exception type with __slots__
            pass
        raise


def _settle(usage: ContextUsage, calls: Usage, marks: dict) -> None:
    """Copy the model accounting into ``usage`` and time the stages that ran."""
    usage.model_calls, usage.input_tokens, usage.output_tokens = calls.calls, calls.input_tokens, calls.output_tokens
    usage.cost, usage.retries, usage.failed_calls = calls.cost, calls.retries, calls.failed_calls
    now, prev = time.perf_counter(), marks["start"]
    latency = {}
    for stage in ("retrieve", "dedupe", "rerank", "pack"):
        if stage in marks:
            latency[stage] = (marks[stage] - prev) * 1000
            prev = marks[stage]
    latency["total"] = (marks.get("pack", now) - marks["start"]) * 1000
    usage.latency_ms = latency


def _run(col: Any, question: str, candidates: int, where: Any, where_document: Any, mode: str, reranker: Any,
         top_n: int, max_tokens: int, threshold: float | None, order: str, dedupe: float | None, tokenizer: Any,
         on_rerank_error: str, query_embedding: Any, truncate: bool, first_stage_results: Candidates | None,
         usage: ContextUsage, calls: Usage, marks: dict) -> Context:
    model = getattr(getattr(reranker, "client", None), "model", None)
    count, usage.tokenizer = packing.token_counter(tokenizer, model)

    # 1. retrieve
    cands = first_stage_results or first_stage(col, question, query_embedding, candidates, where, where_document,
                                               mode, dedupe is not None)
    marks["retrieve"] = time.perf_counter()
    usage.first_stage = cands.source
    usage.candidates = len(cands.ids)
    pool = [i for i, d in enumerate(cands.documents) if d is not None]
    usage.dropped["no_document"] = len(cands.ids) - len(pool)

    # 2. dedupe (first-stage order: the better-ranked copy stays)
    if dedupe is not None and cands.embeddings is not None and len(pool) > 1:
        keep = packing.dedupe(cands.embeddings[pool], float(dedupe))
        usage.dropped["duplicates"] = len(pool) - len(keep)
        pool = [pool[k] for k in keep]
    marks["dedupe"] = time.perf_counter()

    # 3. rerank
    rerank_scores: dict[int, float] = {}
    if reranker is not None and pool:
        usage.reranker = reranker.describe() if hasattr(reranker, "describe") else {"kind": repr(reranker)}
        usage.reranked = len(pool)
        try:
            scores = reranker.rerank(question, [cands.documents[i] for i in pool], calls)
            if len(scores) != len(pool):
                raise RuntimeError(f"re-ranker returned {len(scores)} scores for {len(pool)} documents")
            rerank_scores = {i: float(s) for i, s in zip(pool, scores) if s is not None}
            if not rerank_scores:
                raise RuntimeError(f"re-ranker scored none of the {len(pool)} candidates")
        except Exception as exc:
            rerank_scores = {}
            if on_rerank_error == "raise":
                raise
            _warn(usage, f"re-ranking failed, using first-stage order: {type(exc).__name__}: {exc}")
        else:
            usage.graded = len(rerank_scores)
            if usage.graded < len(pool):
                why = "; ".join(calls.errors[:3]) or "no score returned"
                _warn(usage, f"re-ranking scored {usage.graded} of {len(pool)} candidates; the other "
                             f"{len(pool) - usage.graded} keep their first-stage positions: {why}")
            # graded candidates sorted by score (stable: ties keep first-stage order) fill the
            # slots of graded ones; an ungraded candidate keeps its first-stage slot
            by_score = iter(sorted((i for i in pool if i in rerank_scores), key=lambda i: -rerank_scores[i]))
            pool = [next(by_score) if i in rerank_scores else i for i in pool]
            limit = threshold if threshold is not None else getattr(reranker, "threshold", None)
            if limit is not None:  # an ungraded candidate cannot be judged under the threshold: it stays
                kept = [i for i in pool if i not in rerank_scores or rerank_scores[i] >= limit]
                usage.dropped["threshold"] = len(pool) - len(kept)
                pool = kept
    marks["rerank"] = time.perf_counter()
    usage.dropped["top_n"] = max(0, len(pool) - top_n)
    pool = pool[:top_n]

    # 4. pack
    keys = [packing.source_key(cands.ids[i], cands.metadatas[i]) for i in pool] if order == "source" else None
    packed = packing.pack([cands.documents[i] for i in pool], max_tokens, count, order=order, keys=keys,
                          truncate=truncate)
    usage.dropped["budget"] = packed.skipped_budget
    chunks = []
    for n, (k, tok, doc, cut) in enumerate(zip(packed.selected, packed.tokens, packed.documents, packed.truncated)):
        i = pool[k]
        chunks.append(Chunk(
            id=cands.ids[i], document=doc, metadata=cands.metadatas[i], citation=n + 1, marker=packing.marker(n + 1),
            rerank_score=rerank_scores.get(i),
            first_stage={"rank": i, "score": cands.scores[i], "ranks": cands.ranks[i],
                         "scores": cands.ranker_scores[i]},
            tokens=tok, truncated=cut,
        ))
    marks["pack"] = time.perf_counter()
    usage.tokens = packed.total_tokens
    _settle(usage, calls, marks)
    return Context(question=question, text=packed.text, chunks=chunks, usage=usage)


def _warn(usage: ContextUsage, msg: str) -> None:
    warnings.warn(msg, RerankWarning, stacklevel=5)
    usage.degraded = True
    usage.warnings.append(msg)


def candidates_from_lists(ids: Sequence[str], documents: Sequence[str | None], *, metadatas=None, embeddings=None,
                          scores=None, source: str = "given") -> Candidates:
    """First-stage results built by hand (tests, benchmarks, other first stages)."""
    n = len(ids)
    return Candidates(
        ids=list(ids), documents=list(documents), metadatas=list(metadatas or [None] * n),
        embeddings=None if embeddings is None else np.asarray(embeddings, dtype=np.float32),
        scores=list(scores) if scores is not None else [float(n - i) for i in range(n)],
        ranks=[{"dense": i, "bm25": None} for i in range(n)],
        ranker_scores=[{"dense": None, "bm25": None} for _ in range(n)], source=source,
    )
