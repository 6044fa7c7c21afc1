"""``glean eval run`` / ``glean eval tune`` end to end on a small persistent store."""

from __future__ import annotations

import json

import pytest

import gleandb
from gleandb.cli.main import main
from gleandb.embeddings.hashing import HashingEmbeddingFunction

from .conftest import fill


@pytest.fixture
def store(tmp_path):
    client = gleandb.PersistentClient(str(tmp_path / "data"))
    col = client.create_collection("notes", embedding_function=HashingEmbeddingFunction(),
                                   metadata={"hnsw:space": "cosine"})
    records = fill(col)
    client.close()
    golden = tmp_path / "golden.jsonl"
    golden.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return tmp_path, golden, records


def test_eval_run_table_json_html(store, capsys):
    tmp, golden, records = store
    rc = main(["eval", "run", "notes", "--path", str(tmp / "data"), "--golden", str(golden),
               "--configs", "dense,bm25,hybrid,hybrid-weighted", "--json", str(tmp / "r.json"),
               "--html", str(tmp / "r.html"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["config", "nDCG@10"]
    assert [ln.split()[0] for ln in lines[2:6]] == ["dense", "bm25", "hybrid", "hybrid-weighted"]
    data = json.loads((tmp / "r.json").read_text())
    assert data["queries"] == len(records) and data["collection"] == "notes"
    assert "<svg" in (tmp / "r.html").read_text()


def test_eval_tune(store, capsys):
    tmp, golden, _ = store
    rc = main(["eval", "tune", "notes", "--path", str(tmp / "data"), "--golden", str(golden),
               "--json", str(tmp / "t.json"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "held-out test split" in out and "tuned" in out
    data = json.loads((tmp / "t.json").read_text())
    assert data["config"]["mode"] in ("dense", "bm25", "hybrid") and data["applied"] is False
    assert data["test"]["split"] == "test"


@pytest.mark.parametrize("args, message", [
    (["--configs", "dense,fancy"], "unknown config 'fancy'; valid names are default, dense"),
    (["--configs", "rerank"], "needs a re-ranker"),
    (["--golden", "missing.jsonl"], "no such file"),
])
def test_eval_run_errors_are_one_line(store, capsys, args, message):
    tmp, golden, _ = store
    base = ["eval", "run", "notes", "--path", str(tmp / "data"), "--golden", str(golden), "--no-progress"]
    if args[0] == "--golden":
        base[base.index("--golden") + 1] = str(tmp / args[1])
        args = []
    rc = main(base + args)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_eval_run_unknown_ids_and_collection(store, capsys):
    tmp, golden, _ = store
    bad = tmp / "bad.jsonl"
    bad.write_text(json.dumps({"query_id": "q", "query": "x", "relevant": {"nope": 1}}) + "\n", encoding="utf-8")
    assert main(["eval", "run", "notes", "--path", str(tmp / "data"), "--golden", str(bad)]) == 2
    assert "not in collection 'notes': 'nope'" in capsys.readouterr().err
    empty = tmp / "empty.jsonl"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    assert main(["eval", "run", "notes", "--path", str(tmp / "data"), "--golden", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["eval", "run", "nosuch", "--path", str(tmp / "data"), "--golden", str(golden)]) == 2
    assert "nosuch" in capsys.readouterr().err


def test_eval_run_rerank_against_the_fake_llm(store, llm, capsys):
    tmp, golden, records = store
    small = tmp / "small.jsonl"
    small.write_text("".join(json.dumps(r) + "\n" for r in records[:5]), encoding="utf-8")
    rc = main(["eval", "run", "notes", "--path", str(tmp / "data"), "--golden", str(small), "--configs",
               "bm25,rerank", "--llm-model", "fake-model", "--llm-base-url", llm.openai_url, "--no-progress",
               "--json", str(tmp / "r.json")])
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if ln.startswith("rerank"))
    assert "3.0 calls" in row  # 30 candidates, 10 per call, no price known
    data = json.loads((tmp / "r.json").read_text())
    rr = next(s for s in data["summary"] if s["config"] == "rerank")
    assert rr["llm"]["calls_per_query"] == 3.0 and rr["failed_queries"] == 0
    assert len(llm.requests) == 15 and llm.requests[0].body["model"] == "fake-model"
