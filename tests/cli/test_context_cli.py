"""``glean context`` (run in-process) on a persistent store, re-ranking with the fake chat server."""

import json
import os
import sys

import pytest

import gleandb
from gleandb.cli.main import main
from gleandb.embeddings.hashing import HashingEmbeddingFunction

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_llm import FakeLLM, Reply  # noqa: E402

Q = "How do I rotate an API key?"


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "data"
    client = gleandb.PersistentClient(str(path))
    col = client.create_collection("docs", embedding_function=HashingEmbeddingFunction())
    col.add(ids=["k1", "k2", "f1", "f2"],
            documents=["To rotate an API key, create a new key and revoke the old API key.",
                       "Rotate API keys every 90 days.", "Tea grows on hillsides.", "The weather is sunny."],
            metadatas=[{"source": "a.md", "start": i} for i in range(4)])
    client.close()
    return str(path)


@pytest.fixture
def fake():
    f = FakeLLM().start()
    yield f
    f.stop()


def test_context_text_and_usage(store, fake, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    rc = main(["context", "docs", Q, "--path", store, "--reranker", "llm", "--model", "gpt-4.1-mini",
               "--base-url", fake.openai_url, "--threshold", "2", "--max-tokens", "300"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.startswith("[1] ") and "[2] " in out and "Tea" not in out
    assert "2 chunks" in err and "model calls" in err
    assert fake.requests[0].headers["authorization"] == "Bearer sk-env"


def test_context_json(store, capsys):
    rc = main(["context", "docs", Q, "--path", store, "--json", "--top-n", "2", "--order", "source"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    body = json.loads(out)
    assert len(body["chunks"]) == 2
    assert body["citations"] == {str(c["citation"]): c["id"] for c in body["chunks"]}
    assert body["usage"]["reranker"] is None and body["usage"]["first_stage"] == "retrieve hybrid"


def test_context_errors(store, fake, capsys):
    assert main(["context", "missing", Q, "--path", store]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["context", "docs", Q, "--path", store, "--reranker", "llm"]) == 2
    assert "needs --model" in capsys.readouterr().err
    assert main(["context", "docs", Q, "--path", store, "--max-tokens", "0"]) == 1
    assert "max_tokens must be an integer >= 1, got 0" in capsys.readouterr().err
    fake.rule = lambda req: Reply(status=400)
    args = ["context", "docs", Q, "--path", store, "--reranker", "llm", "--model", "m", "--base-url", fake.openai_url]
    assert main(args) == 1
    assert "HTTP 400" in capsys.readouterr().err
    assert main(args + ["--on-rerank-error", "warn"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("[1] ") and "-- warning: re-ranking failed" in err


def test_context_deadline(store, fake, capsys):
    fake.rule = lambda req: Reply(text='{"grades": []}', delay=6)
    args = ["context", "docs", Q, "--path", store, "--reranker", "llm", "--model", "m", "--base-url", fake.openai_url,
            "--deadline", "2"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "gave up at the 2 s deadline of this call after 1 attempt over" in err
    assert main(args[:-1] + ["0"]) == 1
    assert "deadline must be a positive number of seconds or None, got 0.0" in capsys.readouterr().err
