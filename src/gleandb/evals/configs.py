"""Named retrieval configurations to compare: what ``evaluate`` and ``tune`` run.

A :class:`Config` is one of

- a set of ``Collection.retrieve`` arguments (``mode``, ``fusion``, ``weights`` as a dict or a
  ``[dense, bm25]`` list, ``candidates``, ``rrf_k``, ``where``, ``where_document``); no
  arguments at all is the collection's own default (its stored retrieval configuration);
- a Search API expression (``search=``): a ``Search`` (or its wire dict) in which the string
  ``"{query}"`` stands for the query text, or a callable ``query -> Search``;
- ``Collection.context`` with a re-ranker (``reranker=``, ``top_n=``; ``candidates`` first-stage
  records are re-ranked);

and any of them may carry another ``embedding_function``: it is then run on a re-embedded
copy of the collection (see ``gleandb.evals.runner``).

Presets by name: ``default``, ``dense``, ``bm25``, ``hybrid`` (RRF 1:1), ``hybrid-weighted``
(weighted min-max fusion, dense 1 : bm25 0.25, the ratio that scored best on held-out
encyclopedia queries) and ``rerank`` (hybrid first stage re-ranked by the given re-ranker).
"""

from __future__ import annotations

import math
from typing import Any

QUERY = "{query}"  # placeholder for the query text inside a Search expression
RETRIEVE_KEYS = ("mode", "fusion", "weights", "candidates", "rrf_k", "where", "where_document")
PRESETS = ("default", "dense", "bm25", "hybrid", "hybrid-weighted", "rerank")
MODES = ("hybrid", "dense", "bm25")


def _fusions() -> tuple[str, ...]:
    """The fusions ``retrieve`` knows (read at call time: new ones appear in hybrid.py)."""
    from gleandb.retrieval import hybrid

    return tuple(hybrid.FUSIONS)


def _norm_weights(weights: Any) -> dict[str, float] | None:
    if weights is None:
        return None
    if isinstance(weights, (list, tuple)):
        if len(weights) != 2:
            raise ValueError(f"Config: weights as a list must be [dense, bm25], got {weights!r}")
        weights = {"dense": weights[0], "bm25": weights[1]}
    if not isinstance(weights, dict):
        raise ValueError(f"Config: weights must be a dict {{'dense': w, 'bm25': w}} or a [dense, bm25] list, "
                         f"got {weights!r}")
    out = {}
    for k, w in weights.items():
        if k not in ("dense", "bm25"):
            raise ValueError(f"Config: weights keys must be 'dense' and/or 'bm25', got {k!r}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"Config: weights[{k!r}] must be a finite number >= 0, got {w!r}")
        out[k] = float(w)
    return out


class Config:
    """A named configuration; see the module docstring."""

    def __init__(self, name: str | None = None, *, search: Any = None, reranker: Any = None,
                 top_n: int | None = None, embedding_function: Any = None, **retrieve_args: Any) -> None:
        unknown = [k for k in retrieve_args if k not in RETRIEVE_KEYS]
        if unknown:
            raise ValueError(f"Config: unknown argument {unknown[0]!r}; valid ones are "
                             f"{', '.join(RETRIEVE_KEYS + ('search', 'reranker', 'top_n', 'embedding_function'))}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Config: name must be a non-empty string, got {name!r}")
        mode = retrieve_args.get("mode")
        if mode is not None and mode not in MODES:
            raise ValueError(f"Config: unknown mode {mode!r}; valid modes are {', '.join(MODES)}")
        fusion = retrieve_args.get("fusion")
        if fusion is not None and fusion not in _fusions():
            raise ValueError(f"Config: unknown fusion {fusion!r}; valid fusions are {', '.join(_fusions())}")
        if "weights" in retrieve_args:
            retrieve_args["weights"] = _norm_weights(retrieve_args["weights"])
        for key in ("candidates",):
            c = retrieve_args.get(key)
            if c is not None and (isinstance(c, bool) or not isinstance(c, int) or c < 1):
                raise ValueError(f"Config: {key} must be a positive integer, got {c!r}")
        if search is not None and (reranker is not None or retrieve_args):
            raise ValueError("Config: search= is a whole Search API expression; it cannot be combined with "
                             f"reranker or retrieve arguments ({', '.join(retrieve_args) or 'reranker'})")
        if search is not None and not (callable(search) or isinstance(search, dict) or hasattr(search, "to_dict")):
            raise ValueError(f"Config: search must be a Search, its wire dict, or a callable query -> Search, "
                             f"got {search!r:.80}")
        if reranker is not None and not callable(getattr(reranker, "rerank", None)):
            raise ValueError(f"Config: reranker must have a rerank(query, documents, usage) method, got {reranker!r}")
        if top_n is not None:
            if reranker is None:
                raise ValueError(f"Config: top_n={top_n!r} is the re-ranker cut-off, but reranker is None")
            if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
                raise ValueError(f"Config: top_n must be a positive integer, got {top_n!r}")
        self.search = search
        self.reranker = reranker
        self.top_n = top_n
        self.embedding_function = embedding_function
        self.retrieve_args = {k: v for k, v in retrieve_args.items()}
        self.name = name or self._auto_name()

    @property
    def kind(self) -> str:
        """``retrieve``, ``search`` or ``context``."""
        if self.search is not None:
            return "search"
        if self.reranker is not None:
            return "context"
        return "retrieve"

    def _auto_name(self) -> str:
        if self.kind == "search":
            base = "search"
        elif not self.retrieve_args:
            base = "default"
        else:
            a = self.retrieve_args
            parts = [a.get("mode", "default")]
            if "fusion" in a:
                parts.append(a["fusion"])
            if a.get("weights"):
                parts.append(":".join(f"{a['weights'].get(r, 1.0):g}" for r in ("dense", "bm25")))
            if "candidates" in a:
                parts.append(f"c{a['candidates']}")
            if "rrf_k" in a:
                parts.append(f"k{a['rrf_k']:g}")
            base = "-".join(str(p) for p in parts)
        if self.reranker is not None:
            base = f"{base}+rerank"
        if self.embedding_function is not None:
            base = f"{base}@{_ef_label(self.embedding_function)}"
        return base

    def describe(self) -> dict:
        """A JSON-able description (for reports)."""
        d: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.retrieve_args:
            d["retrieve"] = {k: v for k, v in self.retrieve_args.items()}
        if self.search is not None:
            d["search"] = "callable" if callable(self.search) and not hasattr(self.search, "to_dict") else \
                (self.search if isinstance(self.search, dict) else self.search.to_dict())
        if self.reranker is not None:
            d["reranker"] = self.reranker.describe() if hasattr(self.reranker, "describe") else repr(self.reranker)
            d["top_n"] = self.top_n
        if self.embedding_function is not None:
            d["embedding_function"] = _ef_label(self.embedding_function)
        return d

    def __repr__(self) -> str:
        return f"Config({self.name!r}, {self.describe()!r})"


def _ef_label(ef: Any) -> str:
    name = getattr(ef, "name", None)
    try:
        return str(name()) if callable(name) else type(ef).__name__
    except Exception:
        return type(ef).__name__


def preset(name: str, reranker: Any = None) -> Config:
    """The named preset; ``rerank`` needs ``reranker``."""
    if name == "default":
        return Config("default")
    if name == "dense":
        return Config("dense", mode="dense", weights={"dense": 1.0, "bm25": 1.0})
    if name == "bm25":
        return Config("bm25", mode="bm25", weights={"dense": 1.0, "bm25": 1.0})
    if name == "hybrid":
        return Config("hybrid", mode="hybrid", fusion="rrf", weights={"dense": 1.0, "bm25": 1.0})
    if name == "hybrid-weighted":
        return Config("hybrid-weighted", mode="hybrid", fusion="weighted", weights={"dense": 1.0, "bm25": 0.25})
    if name == "rerank":
        if reranker is None:
            raise ValueError("config 'rerank' needs a re-ranker: pass reranker=gleandb.rerank.LLM(...) "
                             "(CLI: --llm-model, --llm-base-url, --llm-provider)")
        return Config("rerank", mode="hybrid", candidates=30, reranker=reranker)
    raise ValueError(f"unknown config {name!r}; valid names are {', '.join(PRESETS)} (or pass a Config)")


def resolve(configs: Any, reranker: Any = None) -> list[Config]:
    """Names, Configs and dicts of Config arguments -> Configs with unique names."""
    if isinstance(configs, (str, Config, dict)):
        configs = [configs]
    if configs is None or not isinstance(configs, (list, tuple)) or not configs:
        raise ValueError(f"configs must be a non-empty list of names ({', '.join(PRESETS)}) or Config objects, "
                         f"got {configs!r}")
    out: list[Config] = []
    for c in configs:
        if isinstance(c, str):
            out.append(preset(c.strip(), reranker))
        elif isinstance(c, Config):
            out.append(c)
        elif isinstance(c, dict):
            out.append(Config(**c))
        else:
            raise ValueError(f"each config must be a name ({', '.join(PRESETS)}), a Config or a dict, got {c!r:.80}")
    names = [c.name for c in out]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"two configs share the name {dups[0]!r}: give each a distinct name=")
    return out


def search_for(config: Config, query: str) -> Any:
    """The Search (wire dict) of ``config`` for one query text."""
    s = config.search
    if callable(s) and not hasattr(s, "to_dict") and not isinstance(s, dict):
        return s(query)
    wire = s if isinstance(s, dict) else s.to_dict()
    return _substitute(wire, query)


def _substitute(node: Any, query: str) -> Any:
    if isinstance(node, str):
        return query if node == QUERY else node
    if isinstance(node, dict):
        return {k: _substitute(v, query) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, query) for v in node]
    return node

