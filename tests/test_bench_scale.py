"""bench/bench_scale.py's own logic: argument checks, text metrics, the table's ratios and checks.

The benchmark itself is not run here (minutes, and chromadb / LanceDB); one LanceDB
child runs on 1,000 rows when lancedb is installed (the `bench` extra).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
try:
    import bench_scale
    import textbench
finally:  # bench/ has a module named "datasets": keep it from shadowing anything in other tests
    sys.path.remove(str(BENCH))
    for _name in ("datasets", "bench_vs_chroma", "bench_scale", "textbench"):
        sys.modules.pop(_name, None)


def test_known_item_metrics():
    ranked = [["a", "b", "c"], ["x", "y", "rel2"], ["p"] * 10 + ["rel3"]]
    m = textbench.known_item(ranked, ["a", "rel2", "rel3"])
    assert m["queries"] == 3
    assert m["recall10"] == pytest.approx(2 / 3)  # rank 11 does not count
    assert m["mrr10"] == pytest.approx((1 + 1 / 3) / 3)
    assert m["ndcg10"] == pytest.approx((1 + 0.5) / 3)  # 1/log2(2) + 1/log2(4)


def test_keyword_queries_are_deterministic_words_of_one_document():
    docs = ["alpha beta gamma delta epsilon", "one two three four five six", "zeta eta theta iota kappa"]
    a = textbench.keyword_queries(docs, 3, 20, seed=7)
    assert a == textbench.keyword_queries(docs, 3, 20, seed=7)
    assert a != textbench.keyword_queries(docs, 3, 20, seed=8)
    for q in a:
        words = q.split()
        assert len(words) == 4 and len(set(words)) == 4
        assert any(set(words) <= set(d.split()) for d in docs)


@pytest.mark.parametrize("text", ["", "10k", "500", "1000,abc"])
def test_bad_sizes_are_refused_naming_the_value(text, capsys):
    with pytest.raises(SystemExit) as e:
        bench_scale.parse_sizes(text)
    assert "--sizes" in str(e.value) and repr(text) in str(e.value)


def test_sizes_and_engines_parse():
    assert bench_scale.parse_sizes("100000,300_000") == [100000, 300000]
    assert bench_scale.parse_engines("chroma, lancedb,glean") == ["chromadb", "lancedb", "gleandb"]
    with pytest.raises(SystemExit, match="'milvus'"):
        bench_scale.parse_engines("gleandb,milvus")


def _args(**kw):
    import argparse

    base = dict(queries=100, filtered_queries=50, threads=4, text_queries=20, lance_index="IVF_PQ",
                lance_refine=10, gleandb_quantization="none")
    base.update(kw)
    return argparse.Namespace(**base)


def _result(p50, contains_ids, fts=True):
    r = {"n": 3, "count_after_ingest": 3, "ingest_add_s": 1.0, "ingest_total_s": 2.0,
         "ingest_add_rows_s": 3.0, "ingest_total_rows_s": 1.5, "peak_rss_mb": 300.0,
         "rss_after_data_load_mb": 100.0, "env": {"engine_version": "x"},
         "query": {"p50_ms": p50, "p99_ms": 2 * p50, "qps": 1000 / p50, "recall": 0.99},
         "contains": {"p50_ms": 1.0, "ids": contains_ids}}
    if fts:
        r["fts"] = {"p50_ms": p50, "hits": 10}
    else:
        r["text_unsupported"] = "no BM25"
    return r


def _row(lines, label):
    return next(ln for ln in lines if ln.startswith(label))


def test_size_table_ratios_and_checks():
    meta = {"dim": 4, "contains": "w", "regex": "r", "contains_ids": [0, 2], "regex_ids": []}
    res = {"gleandb": _result(2.0, [0, 2]), "chromadb": _result(4.0, [0, 2], fts=False),
           "lancedb": _result(1.0, [0, 1, 2])}
    lines = bench_scale.size_table(3, res, _args(), meta)
    p50 = _row(lines, "query p50 ms").split()
    assert p50[-2:] == ["2.00x", "0.50x"]  # gleandb 2 ms vs 4 ms and vs 1 ms: lower is better
    qps = _row(lines, "query QPS (1 thread)").split()
    assert qps[-2:] == ["2.00x", "0.50x"]  # higher is better
    assert _row(lines, "query recall@10").split()[-2:] == ["-", "-"]
    assert "n/a (no BM25)" in _row(lines, "BM25 top-10")
    assert _row(lines, "peak RSS MiB minus").split()[-5:-2] == ["200", "200", "200"]
    flagged = [ln for ln in lines if ln.startswith("!!")]
    assert len(flagged) == 1 and "lancedb" in flagged[0] and "1 extra" in flagged[0]


def test_lance_child_runs_on_a_small_dataset(tmp_path):
    import importlib.util

    if importlib.util.find_spec("lancedb") is None:  # not imported here: it would take bench's datasets for HF's
        pytest.skip("lancedb is not installed (the bench extra)")
    datasets = bench_scale.datasets
    data = datasets.ensure_dataset(1000, 42, verbose=False)
    out = tmp_path / "r.json"
    cmd = [sys.executable, str(BENCH / "bench_child_lance.py"), "--data", str(data), "--path", str(tmp_path / "db"),
           "--out", str(out), "--queries", "20", "--filtered-queries", "10", "--flat-queries", "10",
           "--get-reps", "2", "--doc-reps", "1", "--text-queries", "5"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    r = json.loads(out.read_text())
    assert r["done"] and r["count_after_ingest"] == 1000
    assert not [k for k in r if k.endswith("_error")]
    assert len(r["query"]["ids"]) == 20 and all(len(x) == 10 for x in r["query"]["ids"])
    ds = datasets.Dataset(data)
    assert r["contains"]["ids"] == [i for i in range(1000) if ds.meta["contains"] in ds.documents[i]]
    assert r["get_ids"]["short_results"] == 0


def test_size_table_without_gleandb_has_no_ratio_columns():
    meta = {"dim": 4, "contains": "w", "regex": "r", "contains_ids": [0, 2], "regex_ids": []}
    lines = bench_scale.size_table(3, {"lancedb": _result(1.0, [0, 2])}, _args(), meta)
    hdr = next(ln for ln in lines if ln.startswith("metric"))
    assert hdr.split() == ["metric", "better", "lancedb"]
    assert _row(lines, "query p50 ms").split()[-1] == "1.00"
