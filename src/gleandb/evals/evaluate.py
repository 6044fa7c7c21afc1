"""``evaluate(col, golden, configs)``: score retrieval configurations on a golden set.

Every configuration runs over the same scorable queries (of one split, or all), so the
per-query scores are paired and the report can test whether a difference is real. Queries
that cannot be scored (rejected, or no id graded >= 1) are listed in the report, never
silently dropped. The collection is only read (a config with another embedding function
runs on a temporary copy).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gleandb.evals import metrics
from gleandb.evals.configs import resolve
from gleandb.evals.golden import GoldenSet, GoldenSetError
from gleandb.evals.report import ConfigResult, Report
from gleandb.evals.runner import run_config

CURVE_KS = (1, 2, 3, 5, 10, 20, 30, 50)


def as_golden(golden: Any) -> GoldenSet:
    """A GoldenSet from a GoldenSet, a path to a JSONL file, or a list of dicts."""
    if isinstance(golden, GoldenSet):
        return golden
    if isinstance(golden, (str, Path)):
        return GoldenSet.load(golden)
    if isinstance(golden, (list, tuple)):
        return GoldenSet.from_records(golden)
    raise GoldenSetError(f"golden must be a GoldenSet, a path to a JSONL file or a list of queries, got {golden!r:.80}")


def evaluate(col: Any, golden: Any, configs: Any = ("default", "dense", "bm25", "hybrid"), k: int = 10,
             split: str | None = None, reranker: Any = None, n_boot: int = 2000, seed: int = 0,
             batch_size: int = 32, progress: bool | None = None) -> Report:
    """Run each config over each scorable query and compute metrics@``k`` with intervals.

    ``split``: ``"tune"``, ``"test"`` or None (every query). ``reranker`` is used by the
    ``rerank`` preset. ``progress``: a bar on stderr (None: only on a terminal)."""
    from gleandb.embeddings.progress import progress_bar

    k = metrics._check_k(k)
    gs = as_golden(golden)
    summary = gs.validate(col)
    if split is not None:
        gs = gs.split(split)
        if not gs.scorable():
            raise GoldenSetError(f"the {split!r} split has no scorable query (of {summary['queries']} in the set)")
    cfgs = resolve(list(configs) if isinstance(configs, tuple) else configs, reranker)
    queries = list(gs.scorable())
    texts = [q.query for q in queries]
    depth = max(k, max(CURVE_KS))
    curve_ks = [c for c in CURVE_KS if c <= depth]
    results: list[ConfigResult] = []
    bar = progress_bar(len(texts) * len(cfgs), "eval", unit="query", enabled=progress)
    try:
        for cfg in cfgs:
            bar.set_postfix_str(cfg.name)
            t = time.perf_counter()
            try:
                runs = run_config(col, cfg, texts, k, depth, batch_size, bar.update)
            except ValueError as exc:
                raise ValueError(f"config {cfg.name!r}: {exc}") from exc
            wall = time.perf_counter() - t
            per_query = {m: [] for m in metrics.METRICS}
            curves = []
            for q, r in zip(queries, runs):
                for m, v in metrics.score_query(r.ids, q.relevant, k).items():
                    per_query[m].append(v)
                curves.append(metrics.recall_curve(r.deep_ids or r.ids, q.relevant, curve_ks))
            results.append(ConfigResult(
                name=cfg.name, description=cfg.describe(), per_query=per_query, recall_curve=curves,
                latency_ms=[r.latency_ms for r in runs], llm=[r.llm for r in runs],
                errors=[r.error for r in runs], degraded=[r.degraded for r in runs],
                rankings=[r.ids for r in runs], wall_s=wall))
    finally:
        bar.close()
    unscorable = [q.query_id for q in gs if not q.scorable]
    return Report(k=k, split=split, query_ids=[q.query_id for q in queries], queries=texts,
                  results=results, curve_ks=curve_ks, unscorable=unscorable, golden_summary=summary,
                  n_boot=n_boot, seed=seed, collection=getattr(col, "name", None))
