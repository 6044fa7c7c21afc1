"""evaluate(): scores match metrics over the live rankings; search, re-embedding and
re-ranking configs; garbage from the LLM is counted; the report as table, JSON and HTML."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import gleandb
from gleandb import Search, evals
from gleandb.api.search import Knn
from gleandb.embeddings.hashing import HashingEmbeddingFunction
from gleandb.evals import metrics
from gleandb.evals.configs import QUERY

from fake_llm import Reply  # noqa: E402  (tests/ is on the path via conftest)


def test_scores_are_the_metrics_of_the_live_rankings(col, golden):
    r = evals.evaluate(col, golden, configs=["dense", "bm25", "hybrid"], k=5, progress=False)
    assert r.names == ["dense", "bm25", "hybrid"] and len(r.query_ids) == len(golden)
    live = col.retrieve(query_texts=[q.query for q in golden], n_results=5, mode="bm25", include=[])
    want = [metrics.ndcg_at_k(ids, q.relevant, 5) for ids, q in zip(live["ids"], golden)]
    assert r.result("bm25").per_query["ndcg"] == pytest.approx(want)
    rows = {row["config"]: row for row in r.summary()}
    assert rows["bm25"]["ndcg"]["mean"] == pytest.approx(np.mean(want))
    for row in rows.values():
        assert row["ndcg"]["low"] <= row["ndcg"]["mean"] <= row["ndcg"]["high"]
        assert row["ms_per_query"] > 0 and row["llm"]["calls_per_query"] == 0
    assert rows[r.best]["p_vs_best"] is None
    # bm25 finds the rest of a help topic from its first paragraph far better than hashed vectors
    assert r.best == "bm25" and rows["dense"]["p_vs_best"] < 0.05


def test_identical_configs_have_p_one(col, golden):
    r = evals.evaluate(col, golden, configs=["hybrid", evals.Config("rrf-again", mode="hybrid", fusion="rrf")],
                       progress=False)
    assert r.result("hybrid").per_query == r.result("rrf-again").per_query
    assert [row["p_vs_best"] for row in r.summary()] == [None, 1.0]


def test_split_and_unscorable(col, golden):
    recs = golden.to_records()
    for i, rec in enumerate(recs):
        rec["split"] = "tune" if i % 3 == 0 else "test"
    recs.append({"query_id": "judged-irrelevant", "query": "x", "relevant": {"with": 0}, "split": "test"})
    g = evals.GoldenSet.from_records(recs)
    r = evals.evaluate(col, g, configs=["bm25"], split="tune", progress=False)
    assert len(r.query_ids) == len(recs[:-1:3])
    r = evals.evaluate(col, g, configs=["bm25"], split="test", progress=False)
    assert r.unscorable == ["judged-irrelevant"] and "1 unscorable skipped" in r.table()


def test_bad_input_changes_nothing(col, golden):
    before = col.count()
    with pytest.raises(evals.GoldenSetError, match="not in collection 'pydocs': 'ghost'"):
        evals.evaluate(col, golden.to_records() + [{"query_id": "g", "query": "x", "relevant": {"ghost": 1}}])
    with pytest.raises(ValueError, match="unknown mode 'fuzzy'"):
        evals.evaluate(col, golden, configs=[{"mode": "fuzzy"}])
    with pytest.raises(evals.GoldenSetError, match="empty"):
        evals.evaluate(col, [])
    assert col.count() == before


def test_search_config_matches_dense(col, golden):
    knn = Search().rank(Knn(query=QUERY, limit=50)).limit(50)
    r = evals.evaluate(col, golden, configs=["dense", evals.Config("knn", search=knn)], progress=False)
    assert r.result("knn").per_query["ndcg"] == pytest.approx(r.result("dense").per_query["ndcg"])


class RandomEF:
    """Vectors that ignore the text: dense retrieval with it is chance."""

    def __init__(self, dim: int = 256):
        self.dim = dim

    def __call__(self, input):
        rng = np.random.default_rng(len(input))
        return [rng.normal(size=self.dim).astype(np.float32) for _ in input]


def test_embedding_function_config_runs_on_a_copy(client, col, golden):
    snapshot = col.get(include=["embeddings"])
    r = evals.evaluate(col, golden, progress=False, configs=[
        "dense",
        evals.Config("hash64", mode="dense", embedding_function=HashingEmbeddingFunction(64)),  # new dimension
        evals.Config("random", mode="dense", embedding_function=RandomEF(256)),                  # same: a fork
    ])
    nd = {row["config"]: row["ndcg"]["mean"] for row in r.summary()}
    assert nd["hash64"] > nd["random"] + 0.1  # the copies really were re-embedded
    assert nd["dense"] != nd["hash64"]
    after = col.get(include=["embeddings"])
    assert after["ids"] == snapshot["ids"] and np.array_equal(after["embeddings"], snapshot["embeddings"])
    assert [c.name for c in client.list_collections()] == ["pydocs"]  # copies removed
    assert col.fork_count() == 0


def _reranker(llm, **kw):
    return gleandb.rerank.LLM("fake-model", base_url=llm.openai_url, batch_size=10, max_retries=0, **kw)


def test_rerank_counts_calls_tokens_and_cost(col, golden, llm):
    rr = _reranker(llm, price=(1.0, 2.0))
    g = evals.GoldenSet(list(golden)[:6])
    r = evals.evaluate(col, g, configs=["hybrid", "rerank"], reranker=rr, progress=False)
    row = {x["config"]: x for x in r.summary()}["rerank"]
    calls = len(llm.requests)
    assert calls == 6 * 3  # 30 first-stage candidates, 10 per call
    assert row["llm"]["calls_per_query"] == pytest.approx(calls / 6)
    assert row["llm"]["input_tokens_per_query"] == pytest.approx(100 * calls / 6)  # the fake reports 100 in, 10 out
    assert row["llm"]["cost_per_query"] == pytest.approx(calls * (100 * 1.0 + 10 * 2.0) / 1e6 / 6)
    assert row["failed_queries"] == 0
    assert "0.00" in r.table().splitlines()[3]  # the cost column


def test_llm_garbage_is_counted_not_fatal(col, golden, llm):
    llm.rule = lambda req: Reply(text="I think passage 3 is nice")
    g = evals.GoldenSet(list(golden)[:4])
    first = evals.Config("first-stage", mode="hybrid", candidates=30)
    r = evals.evaluate(col, g, configs=["rerank", first], reranker=_reranker(llm), progress=False)
    row = {x["config"]: x for x in r.summary()}["rerank"]
    assert row["failed_queries"] == 4 and row["degraded_queries"] == 4
    # each batch asks, then repairs once; the first failing batch cancels batches not yet started
    assert row["llm"]["failed_calls"] == 0 and 2 <= row["llm"]["calls_per_query"] <= 3 * 2
    assert "(4 queries failed)" in r.table()
    errs = r.to_json()["per_config"]["rerank"]["queries"][0]["error"]
    assert "unusable answer" in errs
    # scored on the first-stage order it fell back to
    assert r.result("rerank").per_query["ndcg"] == pytest.approx(r.result("first-stage").per_query["ndcg"])


def test_report_outputs(col, golden, tmp_path):
    r = evals.evaluate(col, golden, configs=["dense", "bm25", "hybrid-weighted"], progress=False)
    t = r.table()
    assert re.search(r"^bm25\s+\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", t, re.M)
    assert "best" in t and f"{len(golden)} queries" in t
    r.save_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["best"] == r.best and len(data["per_config"]["dense"]["queries"]) == len(golden)
    assert data["summary"][0]["ndcg"]["mean"] == pytest.approx(np.mean(r.result("dense").per_query["ndcg"]))
    r.save_html(tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") == 2 and "Recall@k" in page and "wins on" in page
    assert not re.search(r"(src|href)=['\"]https?:", page)  # self-contained
    wl = r.wins_losses("bm25", "dense")
    assert wl["wins"] + wl["losses"] + wl["ties"] == len(golden)
