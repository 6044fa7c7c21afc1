"""Golden sets: the JSONL format, round trips, validation errors, splits."""

from __future__ import annotations

import json

import pytest

from gleandb.evals import GoldenQuery, GoldenSet, GoldenSetError

LINE = {"query_id": "q-1", "query": "how do threads stop?", "relevant": {"d1": 3, "d2": 0},
        "split": "tune", "source": "generated", "status": "unreviewed",
        "provenance": {"model": "m", "seed": 7}, "future_key": {"x": [1, 2]}}


def test_load_defaults_comments_and_round_trip(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text("# a comment\n\n" + json.dumps(LINE) + "\n" + json.dumps({"query_id": "q-2", "query": "x y",
                                                                          "relevant": {"d3": 1}}) + "\n",
                 encoding="utf-8")
    g = GoldenSet.load(p)
    assert len(g) == 2
    q1, q2 = g
    assert q1.extra == {"future_key": {"x": [1, 2]}} and q1.provenance["seed"] == 7
    assert q1.relevant_ids == {"d1"}  # grade 0 is judged, not relevant
    assert (q2.split, q2.split_name, q2.source, q2.status) == (None, "test", "human", "accepted")
    out = tmp_path / "out.jsonl"
    g.save(out)
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == LINE  # unknown keys preserved
    assert "split" not in lines[1]  # a missing split stays missing (assign_splits may place it)
    assert GoldenSet.load(out).to_records() == g.to_records()


@pytest.mark.parametrize("bad, words", [
    ({"query": "x", "relevant": {}}, ["query_id"]),
    ({"query_id": "q", "query": "  "}, ["query", "'q'"]),
    ({"query_id": "q", "query": "x", "relevant": {"d": 4}}, ["grade", "'d'", "4"]),
    ({"query_id": "q", "query": "x", "relevant": {"d": True}}, ["grade", "True"]),
    ({"query_id": "q", "query": "x", "relevant": ["d"]}, ["relevant"]),
    ({"query_id": "q", "query": "x", "split": "train"}, ["split", "'train'", "tune, test"]),
    ({"query_id": "q", "query": "x", "status": "ok"}, ["status", "'ok'"]),
    ({"query_id": "q", "query": "x", "source": "web"}, ["source", "'web'"]),
])
def test_bad_fields_name_the_field_and_value(tmp_path, bad, words):
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps(LINE) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(GoldenSetError) as e:
        GoldenSet.load(p)
    assert "g.jsonl line 2" in str(e.value)
    for w in words:
        assert w in str(e.value)


def test_bad_json_line_and_missing_file(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text('{"query_id": "q", \n', encoding="utf-8")
    with pytest.raises(GoldenSetError, match="line 1: not valid JSON"):
        GoldenSet.load(p)
    with pytest.raises(GoldenSetError, match="no such file"):
        GoldenSet.load(tmp_path / "nope.jsonl")


def test_validate_against_collection(col, golden):
    s = golden.validate(col)
    assert s["queries"] == s["scorable"] == len(golden) and s["unscorable"] == []
    with pytest.raises(GoldenSetError, match="empty"):
        GoldenSet([]).validate(col)
    extra = GoldenSet.from_records(golden.to_records() + [
        {"query_id": "bad", "query": "x", "relevant": {"no-such-doc": 2, "with": 1, "also-missing": 0}}])
    with pytest.raises(GoldenSetError) as e:
        extra.validate(col)
    assert "2 record id(s) that are not in collection 'pydocs'" in str(e.value)
    assert "'no-such-doc'" in str(e.value) and "'also-missing'" in str(e.value) and "'with'" not in str(e.value)
    dup = GoldenSet.from_records(golden.to_records()[:2] + golden.to_records()[:1])
    with pytest.raises(GoldenSetError, match="duplicate query_id.*" + golden[0].query_id):
        dup.validate(col)


def test_unscorable_queries_are_reported_not_dropped(col):
    g = GoldenSet.from_records([
        {"query_id": "a", "query": "lambda", "relevant": {"with": 2}},
        {"query_id": "b", "query": "x", "relevant": {"with": 0}},
        {"query_id": "c", "query": "y", "relevant": {"with": 3}, "status": "rejected"},
    ])
    s = g.validate(col)
    assert s["scorable"] == 1 and s["unscorable"] == ["b", "c"] and s["rejected"] == 1
    with pytest.raises(GoldenSetError, match="no query in the golden set can be scored"):
        GoldenSet.from_records(g.to_records()[1:]).validate(col)


def test_assign_splits_is_deterministic_and_keeps_given_splits():
    recs = [{"query_id": f"q{i}", "query": f"query {i}", "relevant": {"d": 1}} for i in range(40)]
    recs[0]["split"] = "test"
    g = GoldenSet.from_records(recs)
    a = g.assign_splits(0.5, seed=3)
    b = GoldenSet.from_records(list(reversed(recs))).assign_splits(0.5, seed=3)
    split_a = {q.query_id: q.split for q in a}
    assert split_a == {q.query_id: q.split for q in b}  # file order does not matter
    assert split_a["q0"] == "test"  # given splits are kept
    assert sum(s == "tune" for s in split_a.values()) == round(0.5 * 39)
    assert split_a != {q.query_id: q.split for q in g.assign_splits(0.5, seed=4)}
    assert g[1].split is None  # the original is not modified
    assert len(a.tune) + len(a.test) == 40 and g.has_splits and a.has_splits
    with pytest.raises(GoldenSetError, match="fraction"):
        g.assign_splits(1.5)


def test_query_object_checks():
    with pytest.raises(GoldenSetError, match="grade of 'd' must be an integer 0-3, got 2.5"):
        GoldenQuery("q", "text", {"d": 2.5})
    with pytest.raises(GoldenSetError, match="split"):
        GoldenSet([GoldenQuery("q", "t")]).split("train")
