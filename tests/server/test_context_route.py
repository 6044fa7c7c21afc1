"""POST .../collections/{id}/context on `glean run`, with the fake chat server as the re-ranker."""

import os
import sys

import httpx
import numpy as np
import pytest

import gleandb
from conftest import Server

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_llm import FakeLLM, Reply  # noqa: E402

Q = "How do I rotate an API key?"
DOCS = {
    "k1": "To rotate an API key, create a new key, deploy it, then revoke the old API key.",
    "k2": "Rotate API keys every 90 days.",
    "f1": "Tea grows on hillsides.",
    "f2": "The weather is sunny today.",
}


@pytest.fixture(scope="module")
def fake():
    f = FakeLLM().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, fake):
    s = Server(tmp_path_factory.mktemp("ctx") / "data",
               env={"GLEAN_RERANK_BASE_URLS": fake.openai_url, "OPENAI_API_KEY": "sk-server-key"}).start()
    client = gleandb.HttpClient(host="127.0.0.1", port=s.port)
    col = client.create_collection("ctx-docs", embedding_function=None, metadata={"hnsw:space": "cosine"})
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(len(DOCS), 8)).astype(np.float32)
    col.add(ids=list(DOCS), documents=list(DOCS.values()), embeddings=emb,
            metadatas=[{"source": "a.md", "start": i} for i in range(len(DOCS))])
    s.col_url = f"{s.url}/api/v2/tenants/default_tenant/databases/default_database/collections/{col.id}/context"
    s.col, s.emb = col, emb
    yield s
    assert s.stop() == 0


@pytest.fixture(autouse=True)
def _reset_fake(fake):
    fake.requests.clear()
    fake.rule = lambda req: Reply(text=__import__("fake_llm").default_answer(req))


def post(srv, **body):
    body.setdefault("question", Q)
    return httpx.post(srv.col_url, json=body, timeout=60)


def test_context_route_with_llm_reranker(srv, fake):
    spec = {"type": "llm", "model": "gpt-4.1-mini", "base_url": fake.openai_url, "batch_size": 2}
    r = post(srv, query_embedding=srv.emb[0].tolist(), reranker=spec, threshold=2, max_tokens=500)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {c["id"] for c in body["chunks"]} == {"k1", "k2"}
    assert body["citations"] == {str(c["citation"]): c["id"] for c in body["chunks"]}
    for c in body["chunks"]:
        assert f'[{c["citation"]}] {c["document"]}' in body["text"]
    u = body["usage"]
    assert u["model_calls"] == 2 and u["input_tokens"] == 200 and u["first_stage"] == "retrieve hybrid"
    assert u["tokens"] <= 500
    # the key came from the server's environment
    assert all(req.headers["authorization"] == "Bearer sk-server-key" for req in fake.requests)


def test_bm25_needs_no_embedding_and_hybrid_does(srv, fake):
    r = post(srv, mode="bm25")
    assert r.status_code == 200 and {c["id"] for c in r.json()["chunks"]} == {"k1", "k2"}
    r = post(srv)
    assert r.status_code == 400 and "query_embedding" in r.json()["message"]


@pytest.mark.parametrize("body, status, needle", [
    ({"reranker": {"type": "llm", "model": "m", "api_key": "sk-mine"}}, 400, "reranker.api_key is not accepted"),
    ({"reranker": {"type": "llm", "model": "m", "base_url": "http://169.254.169.254/v1"}}, 400, "not allowed by this server"),
    ({"reranker": {"type": "cross_encoder", "model": "/etc/passwd"}}, 400, "rerank_cross_encoders"),
    ({"bogus": 1}, 400, "unknown field 'bogus'"),
    ({"max_tokens": 0}, 400, "max_tokens must be an integer >= 1, got 0"),
    ({"order": "shuffle"}, 400, "order must be one of"),
    ({"candidates": 10**9}, 400, "candidates is 1000000000"),
    ({"question": ""}, 400, "question must be a non-empty string"),
    ({"deadline": 10**6}, 400, "deadline must be a number of seconds up to 120"),
    ({"deadline": 0}, 400, "deadline must be a positive number of seconds"),
])
def test_bad_requests(srv, fake, body, status, needle):
    body = {"mode": "bm25", **body}
    r = post(srv, **body)
    assert r.status_code == status, r.text
    assert needle in r.json()["message"]
    assert fake.requests == []


def test_rerank_failure_is_502_or_degrades(srv, fake):
    fake.rule = lambda req: Reply(status=400)
    spec = {"type": "llm", "model": "m", "base_url": fake.openai_url, "max_retries": 0}
    r = post(srv, mode="bm25", reranker=spec)
    assert r.status_code == 502 and r.json()["error"] == "RerankError" and "HTTP 400" in r.json()["message"]
    assert "sk-server-key" not in r.text
    r = post(srv, mode="bm25", reranker=spec, on_rerank_error="warn")
    assert r.status_code == 200
    assert r.json()["usage"]["degraded"] and "HTTP 400" in r.json()["usage"]["warnings"][0]


def test_partial_grades_are_reported(srv, fake):
    fake.rule = lambda req: Reply(text="not json" if "Tea" in req.passages[0] else
                                  __import__("fake_llm").default_answer(req))
    spec = {"type": "llm", "model": "m", "base_url": fake.openai_url, "batch_size": 1}
    r = post(srv, query_embedding=srv.emb[0].tolist(), reranker=spec, dedupe=None)
    assert r.status_code == 200, r.text
    u = r.json()["usage"]
    assert u["reranked"] == 4 and u["graded"] == 3 and u["degraded"]
    assert "scored 3 of 4" in u["warnings"][0]
    tea = [c for c in r.json()["chunks"] if c["id"] == "f1"]
    assert tea and tea[0]["rerank_score"] is None


def test_http_client_collection_context_runs_in_the_client(srv, fake):
    rr = gleandb.rerank.LLM(model="m", base_url=fake.openai_url, api_key="sk-client")
    ctx = srv.col.context(Q, query_embedding=srv.emb[0], reranker=rr, threshold=2)
    assert set(ctx.ids) == {"k1", "k2"}
    assert fake.requests[0].headers["authorization"] == "Bearer sk-client"
