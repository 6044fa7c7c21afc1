"""Generative benchmarking (gleandb.evals.generate and ``glean eval generate``) against the
fake chat server (tests/fake_llm.py), which plays the judge and the query writer."""

import argparse
import json
import os
import sys

import pytest

import gleandb
from gleandb.embeddings.hashing import HashingEmbeddingFunction
from gleandb.evals.generate import (DEFAULT_CRITERIA, PROMPT_VERSION, GenerationError, generate)
from gleandb.evals.llm import Anthropic, OpenAI
from gleandb.retrieval.llm import ChatAuthError

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_llm import FakeLLM, Reply, default_answer  # noqa: E402

TOPICS = ["retry", "timeout", "backoff", "quota", "billing", "webhook", "token", "cache", "index", "shard",
          "replica", "snapshot", "fork", "vacuum", "filter", "regex", "fusion", "rerank", "embedding", "schema"]


LONG = {"short": False}  # the documents the fake judge keeps


def long_doc(i: int, topic: str) -> str:
    return f"{topic.capitalize()} handling explained: section {i} covers how {topic} settings change behaviour under load."


@pytest.fixture
def fake():
    f = FakeLLM().start()
    yield f
    f.stop()


@pytest.fixture
def col():
    client = gleandb.EphemeralClient()
    c = client.create_collection("notes", embedding_function=HashingEmbeddingFunction())
    ids = [f"doc-{i:03d}" for i in range(len(TOPICS))]
    c.add(ids=ids, documents=[long_doc(i, t) for i, t in enumerate(TOPICS)],
          metadatas=[{"part": i % 2, "short": False} for i in range(len(TOPICS))])
    c.add(ids=["short-1", "short-2"], documents=["See above.", "Contents"],
          metadatas=[{"part": 0, "short": True}, {"part": 1, "short": True}])
    yield c
    client.delete_collection("notes")


def llm_for(fake, **kw):
    return OpenAI("gen-model", base_url=fake.openai_url, **kw)


def judge_calls(fake):
    return [r for r in fake.requests if r.is_judge]


def writer_calls(fake):
    return [r for r in fake.requests if r.is_query_writer]


def test_golden_records_follow_the_schema_with_complete_provenance(fake, tmp_path):
    client = gleandb.PersistentClient(str(tmp_path / "store"))
    col = client.create_collection("notes", embedding_function=HashingEmbeddingFunction())
    col.add(ids=["old"], documents=[long_doc(99, "legacy")])
    client.flush()
    col.add(ids=[f"doc-{i:03d}" for i in range(len(TOPICS))], documents=[long_doc(i, t) for i, t in enumerate(TOPICS)])
    client.flush()
    version = col.versions()[-1]["version"]
    assert version >= 2
    golden = generate(col, llm_for(fake), n=6, seed=7)
    assert len(golden) == 6 == golden.stats.queries
    assert golden.stats.collection_version == version
    ids = set(col.get()["ids"])
    assert len({r["query_id"] for r in golden.to_records()}) == 6
    for r in golden.to_records():
        assert set(r) == {"query_id", "query", "relevant", "split", "source", "status", "provenance"}
        assert r["query"].strip() and r["source"] == "generated" and r["status"] == "unreviewed"
        (source_id, grade), = r["relevant"].items()
        assert grade == 3 and source_id in ids
        p = r["provenance"]
        assert p["model"] == "gen-model" and p["prompt_version"] == PROMPT_VERSION and p["seed"] == 7
        assert p["collection"] == "notes" and p["collection_version"] == version
        assert p["source_id"] == source_id and "words" in p["judge_reason"]
        assert p["created_at"].endswith("Z")
        # the query was written from its source document (the fake uses the document's words)
        doc = col.get(ids=[source_id])["documents"][0].lower()
        assert all(w in doc for w in r["query"].split())
    client.close()


def test_records_do_not_depend_on_concurrency(fake, col):
    def rule(req):  # the judge rejects every third topic, so windows refill
        if req.is_judge and any(t in req.document.lower() for t in TOPICS[::3]):
            return Reply(text=json.dumps({"keep": False, "reason": "no"}))
        return Reply(text=default_answer(req))

    fake.rule = rule
    runs = [generate(col, llm_for(fake), n=9, seed=4, concurrency=c) for c in (1, 3, 8)]
    strip = [[{**r, "provenance": {**r["provenance"], "created_at": None}} for r in g.to_records()] for g in runs]
    assert strip[0] == strip[1] == strip[2] and len(strip[0]) == 9


def test_judge_decisions_are_honoured_and_kept(fake, col):
    def rule(req):
        if req.is_judge and "billing" in req.document.lower():
            return Reply(text=json.dumps({"keep": False, "reason": "billing is out of scope"}))
        return Reply(text=default_answer(req))

    fake.rule = rule
    golden = generate(col, llm_for(fake), n=30, seed=1)
    stats = golden.stats
    sources = {r["provenance"]["source_id"] for r in golden.to_records()}
    # the fake judge drops the two short documents; the custom rule drops billing
    assert not sources & {"short-1", "short-2", "doc-004"}
    assert len(golden) == len(TOPICS) - 1
    decisions = {d["id"]: d for d in stats.decisions}
    assert decisions["doc-004"] == {"id": "doc-004", "keep": False, "reason": "billing is out of scope"}
    assert decisions["short-1"]["keep"] is False and "too few" in decisions["short-1"]["reason"]
    assert stats.judged == len(TOPICS) + 2 and stats.kept == len(TOPICS) - 1 and stats.rejected == 3
    # a rejected document costs one judge call and no query call
    assert len(writer_calls(fake)) == len(TOPICS) - 1


def test_criteria_and_examples_steer_the_prompts(fake, col):
    examples = ["why does my retry loop never stop", "quota exceeded error fix", "cache stale after deploy?"]
    golden = generate(col, llm_for(fake), n=4, seed=2, example_queries=examples,
                      criteria=["Mentions a configuration setting.", "Written in English."],
                      context="Operations handbook searched by on-call engineers.")
    judge = judge_calls(fake)[0]
    assert judge.criteria == ["Mentions a configuration setting.", "Written in English."]
    assert "on-call engineers" in judge.prompt
    for req in writer_calls(fake):
        assert req.example_queries == examples
        assert "on-call engineers" in req.prompt
    # the fake writer matches the examples' mean length (5 words), as a model is asked to
    assert all(len(r["query"].split()) == 5 for r in golden.to_records())
    assert golden.stats.example_queries == 3 and golden.stats.criteria[0].startswith("Mentions")


def test_without_examples_a_default_style_and_default_criteria(fake, col):
    golden = generate(col, llm_for(fake), n=2)
    assert judge_calls(fake)[0].criteria == list(DEFAULT_CRITERIA)
    writer = writer_calls(fake)[0]
    assert writer.example_queries == [] and "search box" in writer.prompt
    assert all(len(r["query"].split()) == 4 for r in golden.to_records())


def test_many_examples_show_a_bounded_handful_per_document(fake, col):
    examples = [f"example query number {i}" for i in range(40)]
    generate(col, llm_for(fake), n=5, example_queries=examples)
    shown = [tuple(r.example_queries) for r in writer_calls(fake)]
    assert all(len(s) == 10 and set(s) <= set(examples) for s in shown)
    assert len(set(shown)) > 1  # a different handful for different documents


def test_near_duplicate_queries_are_removed(fake, col):
    # the writer gives every billing/quota document the same query up to case and punctuation,
    # and near-identical wording (one word differs) to the rest
    def rule(req):
        if req.is_query_writer:
            doc = req.document.lower()
            if "billing" in doc or "quota" in doc:
                q = "Billing QUOTA: limits?" if "billing" in doc else "billing quota limits"
            else:
                q = "how settings change behaviour under heavy load for " + doc.split()[0]
            return Reply(text=json.dumps({"query": q}))
        return Reply(text=default_answer(req))

    fake.rule = rule
    text_only = generate(col, llm_for(fake), n=50, judge_multiple=3, dedupe_threshold=1.0)
    assert text_only.stats.duplicates == 1  # billing/quota: same normalised text
    assert len({r["query"].lower() for r in text_only.to_records()}) == len(text_only) == len(TOPICS) - 1
    assert text_only.stats.dedupe == "text+embedding"

    # with the collection's embedding function, the one-word variants are within 0.8 cosine
    loose = generate(col, llm_for(fake), n=50, dedupe_threshold=0.8)
    assert loose.stats.generated == len(TOPICS) and len(loose) == len(TOPICS) - loose.stats.duplicates
    assert len(loose) == 2  # one billing/quota query, one of the variants
    assert sorted(r["query"].split()[0] for r in loose.to_records()) == ["billing", "how"]


def test_split_is_deterministic_for_a_seed(fake, col):
    def splits(seed, share=0.2):
        g = generate(col, llm_for(fake), n=10, seed=seed, tune_share=share)
        return [(r["provenance"]["source_id"], r["split"]) for r in g.to_records()]

    a, b = splits(5), splits(5)
    assert a == b
    assert sum(s == "tune" for _, s in a) == 2
    assert splits(6) != a  # another seed samples other documents or splits them otherwise
    assert sum(s == "tune" for _, s in splits(5, share=0.5)) == 5
    assert all(s == "test" for _, s in splits(5, share=0.0))


def test_where_filter_limits_the_sample(fake, col):
    golden = generate(col, llm_for(fake), n=50, where={"part": 1})
    assert golden and all(int(r["provenance"]["source_id"].split("-")[1]) % 2 == 1 for r in golden.to_records())
    assert golden.stats.sampled == len(TOPICS) // 2 + 1


def test_garbage_answers_are_repaired_once_then_counted(fake, col):
    def rule(req):
        doc = req.document.lower()
        if req.is_judge and "retry" in doc:
            return Reply(text="Sure! This document looks useful.")  # never JSON
        if req.is_judge and "timeout" in doc and not req.is_repair:
            return Reply(text='{"keep": "maybe"}')  # wrong shape, fixed by the repair prompt
        if req.is_query_writer and "backoff" in doc:
            return Reply(text=json.dumps({"query": "   "}))  # empty query, twice
        if req.is_query_writer and "quota" in doc:
            return Reply(text=json.dumps({"questions": ["x"]}))
        return Reply(text=default_answer(req))

    fake.rule = rule
    golden = generate(col, llm_for(fake), n=50)
    s = golden.stats
    sources = {r["provenance"]["source_id"] for r in golden.to_records()}
    assert "doc-001" in sources  # timeout: repaired
    assert not sources & {"doc-000", "doc-002", "doc-003"}
    assert s.judge_garbage == 1 and s.query_garbage == 2
    assert s.repairs == 4  # retry judge, timeout judge, backoff and quota writers
    repaired = [r for r in fake.requests if r.is_repair]
    assert len(repaired) == 4 and "could not be used" in repaired[0].turns[-1]["content"]
    assert len(golden) == len(TOPICS) - 3
    assert "unusable answers: 1 judge, 2 query" in s.summary()


def test_http_failures_are_counted_and_a_dead_endpoint_stops_the_run(fake, col, monkeypatch):
    fake.rule = lambda req: (Reply(status=400) if "webhook" in req.document.lower() else Reply(text=default_answer(req)))
    golden = generate(col, llm_for(fake, max_retries=0), n=50)
    assert golden.stats.failed_calls == 1 and "doc-005" not in {r["provenance"]["source_id"] for r in golden.to_records()}
    assert "HTTP 400" in golden.stats.errors[0]

    fake.rule = lambda req: Reply(status=400)
    with pytest.raises(GenerationError, match="none succeeded"):
        generate(col, llm_for(fake, max_retries=0), n=50)
    assert len(fake.requests) < 50 + 20  # stopped early, not one failing call per document


def test_a_refused_key_stops_at_once(fake, col):
    fake.rule = lambda req: Reply(status=401)
    with pytest.raises(ChatAuthError, match="HTTP 401"):
        generate(col, llm_for(fake, max_retries=0), n=50, concurrency=1)
    assert len(fake.requests) == 1


def test_progress_bar_on_request(fake, col, capsys):
    generate(col, llm_for(fake), n=3, where=LONG, progress=True)
    assert "generating queries" in capsys.readouterr().err
    generate(col, llm_for(fake), n=3, where=LONG)
    assert capsys.readouterr().err == ""


def test_n_bounds_the_calls(fake, col):
    golden = generate(col, llm_for(fake), n=3, seed=11, where=LONG)
    assert len(golden) == 3
    assert len(judge_calls(fake)) == 3 and len(writer_calls(fake)) == 3
    assert golden.stats.usage.calls == 6

    # a judge that keeps nothing sees at most judge_multiple * n documents
    fake.requests.clear()
    fake.rule = lambda req: Reply(text=json.dumps({"keep": False, "reason": "no"}))
    empty = generate(col, llm_for(fake), n=2, judge_multiple=4)
    assert len(empty) == 0 and empty.stats.judged == 8 == len(fake.requests)
    assert "2 queries were requested" in empty.stats.summary()


def test_cost_is_reported_in_total_and_per_query(fake, col):
    fake.rule = lambda req: Reply(text=default_answer(req), usage=(200, 20))
    golden = generate(col, llm_for(fake, price=(1.0, 4.0)), n=4, where=LONG)
    s = golden.stats
    assert (s.usage.calls, s.usage.input_tokens, s.usage.output_tokens) == (8, 1600, 160)
    assert s.usage.cost == pytest.approx((1600 * 1.0 + 160 * 4.0) / 1e6)
    per = s.per_query()
    assert per["calls"] == 2 and per["input_tokens"] == 400 and per["cost"] == pytest.approx(s.usage.cost / 4)
    d = s.to_dict()
    assert d["usage"]["calls"] == 8 and d["per_query"]["output_tokens"] == 40
    assert "8 calls, 1600 input + 160 output tokens" in s.summary()

    unpriced = generate(col, llm_for(fake), n=1).stats
    assert unpriced.usage.cost is None and "cost unknown" in unpriced.summary()


def test_anthropic_client_and_output_file(fake, col, tmp_path):
    out = tmp_path / "golden.jsonl"
    golden = generate(col, Anthropic("claude-x", base_url=fake.url), n=3, output=out)
    assert fake.requests[0].provider == "anthropic"
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(ln) for ln in lines] == golden.to_records()
    assert golden.to_records()[0]["provenance"]["provider"] == "anthropic"


@pytest.mark.parametrize("kw, field", [
    ({"n": 0}, "n"), ({"n": "5"}, "n"), ({"tune_share": 1.0}, "tune_share"), ({"seed": 1.5}, "seed"),
    ({"example_queries": "one string"}, "example_queries"), ({"example_queries": ["ok", 3]}, "example_queries[1]"),
    ({"criteria": []}, "criteria"), ({"dedupe_threshold": 0}, "dedupe_threshold"),
    ({"judge_multiple": 0}, "judge_multiple"), ({"concurrency": 0}, "concurrency"),
])
def test_bad_arguments_name_the_field_and_call_nothing(fake, col, kw, field):
    with pytest.raises(ValueError, match=rf"^{field.replace('[', '.').replace(']', '.')} must"):
        generate(col, llm_for(fake), **kw)
    assert fake.requests == []


def test_empty_collection_or_filter_is_a_clear_error(fake, col):
    with pytest.raises(ValueError, match=r"no records matching where=\{'part': 9\}"):
        generate(col, llm_for(fake), n=1, where={"part": 9})
    with pytest.raises(ValueError, match=r"where \{'\$bad': 1\} is not a valid filter"):
        generate(col, llm_for(fake), n=1, where={"$bad": 1})
    with pytest.raises(ValueError, match="llm must be a chat client"):
        generate(col, "gpt-4o-mini", n=1)
    assert fake.requests == []


# ------------------------------------------------------------------------------- CLI


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "data"
    client = gleandb.PersistentClient(str(path))
    c = client.create_collection("notes", embedding_function=HashingEmbeddingFunction())
    c.add(ids=[f"doc-{i:03d}" for i in range(len(TOPICS))], documents=[long_doc(i, t) for i, t in enumerate(TOPICS)])
    client.create_collection("blank", embedding_function=HashingEmbeddingFunction())
    client.close()
    return str(path)


def run_cli(argv):
    from gleandb.cli.eval_generate import add_parser

    parser = argparse.ArgumentParser(prog="glean eval")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_a_valid_golden_file(fake, store, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-test")
    examples = tmp_path / "examples.txt"
    examples.write_text("# real queries\nwhy is my cache stale\n\nshard rebalance slow\n", encoding="utf-8")
    criteria = tmp_path / "criteria.txt"
    criteria.write_text("Describes a setting.\n", encoding="utf-8")
    out = tmp_path / "golden.jsonl"
    rc = run_cli(["generate", "notes", "--path", store, "--model", "gpt-4o-mini", "--base-url", fake.openai_url,
                  "--api-key-env", "MY_KEY", "--n", "5", "--examples", str(examples), "--criteria", str(criteria),
                  "--seed", "3", "--tune-share", "0.4", "--price", "0.15", "0.6", "-o", str(out)])
    stdout, stderr = capsys.readouterr()
    assert rc == 0, stderr
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"
    assert judge_calls(fake)[0].criteria == ["Describes a setting."]
    assert writer_calls(fake)[0].example_queries == ["why is my cache stale", "shard rebalance slow"]
    records = [json.loads(ln) for ln in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 5 and sum(r["split"] == "tune" for r in records) == 2
    for r in records:
        assert r["query"] and list(r["relevant"].values()) == [3] and r["provenance"]["collection"] == "notes"
        assert r["provenance"]["model"] == "gpt-4o-mini"
    assert "5 queries (2 tune, 3 test)" in stdout and "cost: 10 calls" in stdout and "per query:" in stdout
    assert f"wrote 5 queries to {out}" in stdout


def test_cli_json_report(fake, store, tmp_path, capsys):
    rc = run_cli(["generate", "notes", "--path", store, "--model", "m", "--base-url", fake.openai_url, "--n", "2",
                  "-o", str(tmp_path / "g.jsonl"), "--json"])
    stdout, stderr = capsys.readouterr()
    assert rc == 0, stderr
    report = json.loads(stdout)
    assert report["queries"] == 2 and report["usage"]["calls"] == 4 and len(report["decisions"]) == 2


@pytest.mark.parametrize("case, message", [
    ("missing", "collection 'nope' not found"),
    ("empty", "collection 'blank' is empty"),
    ("no-key-env", "environment variable NO_SUCH_KEY_VAR is not set"),
    ("official-no-key", "no API key for https://api.openai.com/v1"),
    ("examples", "cannot read examples file"),
    ("no-store", "no store at"),
])
def test_cli_errors_are_one_line_and_nonzero(fake, store, tmp_path, capsys, monkeypatch, case, message):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    argv = ["generate", "notes", "--path", store, "--model", "m", "--base-url", fake.openai_url,
            "-o", str(tmp_path / "g.jsonl")]
    if case == "missing":
        argv[1] = "nope"
    elif case == "empty":
        argv[1] = "blank"
    elif case == "no-key-env":
        argv += ["--api-key-env", "NO_SUCH_KEY_VAR"]
    elif case == "official-no-key":
        argv = [a for a in argv if a not in ("--base-url", fake.openai_url)]
    elif case == "examples":
        argv += ["--examples", str(tmp_path / "missing.txt")]
    elif case == "no-store":
        argv[3] = str(tmp_path / "elsewhere")
    rc = run_cli(argv)
    _, stderr = capsys.readouterr()
    assert rc == 2
    assert stderr.startswith("glean eval generate: ") and message in stderr and stderr.count("\n") == 1
    assert fake.requests == [] and not (tmp_path / "g.jsonl").exists()


@pytest.mark.parametrize("status, rc, message", [(401, 2, "HTTP 401"), (400, 1, "none succeeded")])
def test_cli_endpoint_failures(fake, store, tmp_path, capsys, status, rc, message):
    fake.rule = lambda req: Reply(status=status)
    out = tmp_path / "g.jsonl"
    code = run_cli(["generate", "notes", "--path", store, "--model", "m", "--base-url", fake.openai_url,
                    "-o", str(out)])
    _, stderr = capsys.readouterr()
    assert code == rc and stderr.startswith("glean eval generate: ") and message in stderr
    assert not out.exists()
