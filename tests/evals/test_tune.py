"""tune(): the offline grid agrees with live retrieval, held-out scores, re-ranking depth, apply."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import gleandb
from gleandb import evals

tune_mod = importlib.import_module("gleandb.evals.tune")  # the package binds the name `tune` to the function


def test_tune_picks_the_best_grid_point_and_reports_held_out(col, golden):
    res = evals.tune(col, golden, progress=False)
    assert res.splits_assigned and res.tune_queries == round(0.5 * len(golden))
    assert res.tune_score == max(g["ndcg"] for g in res.grid)
    assert {g["config"]["mode"] for g in res.grid} == {"dense", "bm25", "hybrid"}
    assert {g["config"].get("fusion") for g in res.grid} == {None, "rrf", "weighted", "zscore", "adaptive"}
    assert set(res.config) <= {"mode", "fusion", "weights", "candidates", "rrf_k"}
    r = res.report
    assert r.split == "test" and r.names == ["tuned", "dense", "bm25", "default"]
    assert len(r.query_ids) == len(golden) - res.tune_queries
    assert not res.applied and "held-out test split" in res.table()
    # the choice is at least as good as each single ranker on the tune split
    single = {g["config"]["mode"]: g["ndcg"] for g in res.grid[:2]}
    assert res.tune_score >= max(single.values())


def test_offline_fusion_matches_live_retrieve(col, golden):
    """The grid is fused offline; a live retrieve with the same arguments gives the same scores."""
    queries = list(golden)[:30]
    texts = [q.query for q in queries]
    dense = tune_mod._ranked(col, texts, "dense", 100, 64)
    bm25 = tune_mod._ranked(col, texts, "bm25", 100, 64)
    for cfg in ({"mode": "hybrid", "fusion": "weighted", "weights": {"dense": 1.0, "bm25": 0.25}, "candidates": 50},
                {"mode": "hybrid", "fusion": "rrf", "weights": {"dense": 1.0, "bm25": 2.0}, "candidates": 20,
                 "rrf_k": 10},
                {"mode": "hybrid", "fusion": "zscore", "weights": {"dense": 1.0, "bm25": 0.7}, "candidates": 50},
                {"mode": "hybrid", "fusion": "adaptive", "weights": {"dense": 1.0, "bm25": 0.5}, "candidates": 20},
                {"mode": "dense"}):
        offline = [evals.metrics.ndcg_at_k(tune_mod._fuse(cfg, d, b, 10), q.relevant, 10)
                   for q, d, b in zip(queries, dense, bm25)]
        live = col.retrieve(query_texts=texts, n_results=10, include=[], **cfg)["ids"]
        online = [evals.metrics.ndcg_at_k(ids, q.relevant, 10) for ids, q in zip(live, queries)]
        assert np.mean(offline) == pytest.approx(np.mean(online), abs=0.02), cfg


def test_tune_with_a_reranker_scores_depths(col, golden, llm):
    rr = gleandb.rerank.LLM("fake-model", base_url=llm.openai_url, batch_size=10, max_retries=0)
    g = evals.GoldenSet(list(golden)[:12]).assign_splits(0.5, seed=1)
    res = evals.tune(col, g, reranker=rr, rerank_depths=(10, 20), candidates=(20,), bm25_weights=(0.5,),
                     progress=False)
    info = res.rerank
    assert set(info["by_depth"]) == {10, 20} and info["candidates"] in (10, 20) and info["top_n"] == 10
    assert info["llm"]["calls"] == 6 * 2  # 20 candidates per tune query, 10 per call, once
    assert info["used"] == (info["score"] > info["first_stage_score"])
    assert ("tuned+rerank" in res.report.names) == info["used"]


def test_tune_errors(col, golden):
    recs = golden.to_records()
    for rec in recs:
        rec["split"] = "test"
    with pytest.raises(evals.GoldenSetError, match="tune split has no scorable query"):
        evals.tune(col, recs)
    with pytest.raises(ValueError, match="fusions must be"):
        evals.tune(col, golden, fusions=("max",))
    with pytest.raises(ValueError, match="metric must be one of"):
        evals.tune(col, golden, metric="f1")


def test_apply_stores_the_configuration(col, golden):
    res = evals.tune(col, golden, apply=True, progress=False)
    assert res.applied
    assert col.configuration_json["retrieval"] == res.config
    texts = [q.query for q in golden][:10]
    plain = col.retrieve(query_texts=texts, include=[])["ids"]
    explicit = col.retrieve(query_texts=texts, include=[], **res.config)["ids"]
    assert plain == explicit
