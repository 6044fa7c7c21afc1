"""Collection.context end to end (embedded), with the fake chat server as the re-ranker."""

import warnings

import numpy as np
import pytest

import gleandb
from fake_llm import Reply, overlap
from gleandb.retrieval.context import RerankWarning, build_context, candidates_from_lists
from gleandb.retrieval.packing import token_counter

Q = "How do I rotate an API key?"
RELEVANT = {
    "k1": "To rotate an API key, create a new key, deploy it everywhere, then revoke the old API key.",
    "k2": "Rotate API keys every 90 days; the console shows each key's age.",
    "k3": "An API key identifies the calling project.",
}


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def col():
    """40 records in 16-d: three relevant ones near the query vector, a duplicate of k1,
    and filler text; the first stage is dense (Collection.query) until retrieve exists."""
    rng = np.random.default_rng(7)
    client = gleandb.EphemeralClient()
    c = client.create_collection("ctx-test", embedding_function=None, metadata={"hnsw:space": "cosine"})
    q = _unit(np.ones(16))
    ids, docs, embs, metas = [], [], [], []
    for n, (i, d) in enumerate(RELEVANT.items()):
        ids.append(i), docs.append(d), embs.append(_unit(q + 0.3 * rng.normal(size=16)))
        metas.append({"source": "keys.md", "start": 100 * (3 - n)})
    ids.append("k1-copy"), docs.append(RELEVANT["k1"] + " "), embs.append(embs[0] * 1.0001)
    metas.append({"source": "copy.md", "start": 0})
    for n in range(36):
        ids.append(f"f{n:02d}"), docs.append(f"Filler paragraph {n} about gardening, tea and the weather.")
        embs.append(_unit(q + 1.5 * rng.normal(size=16))), metas.append({"source": "misc.md", "start": n})
    c.add(ids=ids, documents=docs, embeddings=np.vstack(embs), metadatas=metas)
    c.query_vector = q
    yield c
    client.delete_collection("ctx-test")


def llm_reranker(fake, **kw):
    return gleandb.rerank.LLM(model="gpt-4.1-mini", base_url=fake.openai_url, api_key="sk-test", **kw)


def test_context_with_llm_reranker(col, llm):
    ctx = col.context(Q, query_embedding=col.query_vector, candidates=30, reranker=llm_reranker(llm, batch_size=8),
                      top_n=5, max_tokens=4000, threshold=2)
    # every relevant chunk is in, graded >= 2, best first; the filler was dropped by the threshold
    assert set(ctx.ids) == {"k1", "k2", "k3"}
    assert all(c.rerank_score >= 2 for c in ctx.chunks)
    assert [c.rerank_score for c in ctx.chunks] == sorted((c.rerank_score for c in ctx.chunks), reverse=True)
    # citations map to ids and appear in the text in order
    assert ctx.citations == {c.citation: c.id for c in ctx.chunks} and list(ctx.citations) == [1, 2, 3]
    for c in ctx.chunks:
        assert f"{c.marker} {c.document}" in ctx.text
        assert c.first_stage["ranks"]["dense"] is not None and c.metadata["source"]
    u = ctx.usage
    assert u.candidates == 30 and u.dropped["duplicates"] == 1 and u.reranked == 29
    assert u.model_calls == len(llm.requests) == 4            # ceil(29 / 8)
    assert u.input_tokens == 400 and u.output_tokens == 40    # the fake's usage: 100 / 10 per call
    assert u.dropped["threshold"] == 26
    assert u.tokenizer == "o200k_base (bpe-openai)"           # gpt-4.1-mini's tokenizer
    assert set(u.latency_ms) == {"retrieve", "dedupe", "rerank", "pack", "total"}
    assert u.tokens == token_counter("gpt-4.1-mini")[0](ctx.text) <= 4000
    assert sum(len(r.passages) for r in llm.requests) == 29   # the duplicate was never sent
    assert not u.degraded and u.warnings == []


def test_budget_and_top_n(col):
    fn = gleandb.rerank.Function(lambda q, docs: [overlap(q, d) for d in docs])
    count, _ = token_counter(None)
    for budget in (10, 25, 40, 80, 200):
        ctx = col.context(Q, query_embedding=col.query_vector, reranker=fn, top_n=10, max_tokens=budget, dedupe=None)
        assert count(ctx.text) <= budget
        assert len(ctx.chunks) <= 10
        assert ctx.usage.tokens == count(ctx.text)
    big = col.context(Q, query_embedding=col.query_vector, reranker=fn, top_n=3, max_tokens=10_000)
    assert len(big.chunks) == 3 and big.usage.dropped["top_n"] > 0


def test_orders(col):
    fn = gleandb.rerank.Function(lambda q, docs: [overlap(q, d) for d in docs])
    kw = dict(query_embedding=col.query_vector, reranker=fn, threshold=2, top_n=5)
    rel = col.context(Q, order="relevance", **kw)
    ends = col.context(Q, order="ends", **kw)
    src = col.context(Q, order="source", **kw)
    by_rel = rel.ids
    assert ends.ids[0] == by_rel[0] and ends.ids[-1] == by_rel[1]
    assert src.ids == ["k3", "k2", "k1"]  # keys.md, by start offset
    assert [c.citation for c in src.chunks] == [1, 2, 3]


def test_failed_reranker_degrades_with_warning(col, llm, no_sleep):
    llm.rule = lambda req: Reply(status=500)
    rr = llm_reranker(llm, max_retries=1)
    with pytest.warns(RerankWarning, match="re-ranking failed, using first-stage order.*HTTP 500"):
        ctx = col.context(Q, query_embedding=col.query_vector, candidates=10, reranker=rr, top_n=4,
                          on_rerank_error="warn", threshold=3)
    first = col.retrieve(query_texts=[Q], query_embeddings=[col.query_vector], n_results=10, candidates=10)["ids"][0]
    first = [i for i in first if i != "k1-copy"]
    assert ctx.ids == first[:4]  # first-stage order, no threshold applied
    assert ctx.usage.degraded and "HTTP 500" in ctx.usage.warnings[0]
    assert all(c.rerank_score is None for c in ctx.chunks)
    assert ctx.usage.failed_calls == 1


def test_failed_reranker_raises_by_default(col, llm):
    llm.rule = lambda req: Reply(text="no json here")
    with pytest.raises(gleandb.rerank.RerankError, match="after a repair attempt"):
        col.context(Q, query_embedding=col.query_vector, candidates=10, reranker=llm_reranker(llm))


def test_without_reranker_first_stage_order(col):
    ctx = col.context(Q, query_embedding=col.query_vector, candidates=12, top_n=6)
    res = col.retrieve(query_texts=[Q], query_embeddings=[col.query_vector], n_results=12, candidates=12)
    assert ctx.ids == [i for i in res["ids"][0] if i != "k1-copy"][:6]
    by_id = {c.id: c for c in ctx.chunks}
    for i, rk, sc in zip(res["ids"][0], res["ranks"][0], res["scores"][0]):
        if i in by_id:
            assert by_id[i].first_stage["ranks"] == rk and by_id[i].first_stage["score"] == sc
    assert ctx.usage.model_calls == 0 and ctx.usage.reranker is None
    assert ctx.usage.first_stage == "retrieve hybrid"


class PublicOnly:
    """A collection reduced to the public surface the pipeline is documented to use."""

    __slots__ = ("retrieve", "embedding_function", "configuration_json")

    def __init__(self, col):
        self.retrieve = col.retrieve
        self.embedding_function = col.embedding_function
        self.configuration_json = col.configuration_json


@pytest.mark.parametrize("mode", [None, "dense", "bm25"])
def test_the_pipeline_uses_only_the_collections_public_surface(col, mode):
    """retrieval.context sits below the API, so it must not reach into an api object's
    private state: the same context from an object that has nothing else."""
    kw = dict(query_embedding=col.query_vector, candidates=12, top_n=6, mode=mode)
    got = build_context(PublicOnly(col), Q, **kw)
    want = col.context(Q, **kw)
    assert got.ids == want.ids and got.ids
    assert got.usage.first_stage == want.usage.first_stage


def test_modes_and_filters(col):
    bm = col.context(Q, mode="bm25", candidates=10, dedupe=None)
    assert bm.ids and set(bm.ids) <= set(RELEVANT) | {"k1-copy"}  # only documents with a query word
    assert all(c.first_stage["ranks"]["dense"] is None for c in bm.chunks)
    dense = col.context(Q, mode="dense", query_embedding=col.query_vector, candidates=10)
    assert all(c.first_stage["ranks"]["bm25"] is None for c in dense.chunks)
    filt = col.context(Q, query_embedding=col.query_vector, where={"source": "misc.md"},
                       where_document={"$contains": "tea"})
    assert filt.ids and all(c.metadata["source"] == "misc.md" and "tea" in c.document for c in filt.chunks)
    with pytest.raises(ValueError, match="pass query_embedding, or use mode='bm25'"):
        col.context(Q)  # no embedding function, no vector


@pytest.mark.parametrize("kw, field", [
    ({"question": ""}, "question"), ({"candidates": 0}, "candidates"), ({"top_n": -1}, "top_n"),
    ({"max_tokens": 0}, "max_tokens"), ({"order": "random"}, "order"), ({"dedupe": 1.5}, "dedupe"),
    ({"mode": "sparse"}, "mode"), ({"on_rerank_error": "ignore"}, "on_rerank_error"),
    ({"threshold": 2}, "threshold"), ({"reranker": "gpt-4"}, "reranker"), ({"candidates": True}, "candidates"),
])
def test_bad_arguments_name_the_field(col, kw, field):
    args = {"question": Q, "query_embedding": col.query_vector, **kw}
    with pytest.raises(ValueError) as ei:
        col.context(**args)
    assert field in str(ei.value)


def test_given_candidates_and_documents_missing():
    cands = candidates_from_lists(["a", "b", "c"], ["alpha text", None, "gamma text"])
    ctx = build_context(None, "alpha?", first_stage_results=cands, dedupe=None)
    assert ctx.ids == ["a", "c"] and ctx.usage.dropped["no_document"] == 1


def test_anthropic_reranker_end_to_end(col, llm):
    rr = gleandb.rerank.LLM(model="claude-haiku-4-5", provider="anthropic", base_url=llm.url, api_key="ak")
    ctx = col.context(Q, query_embedding=col.query_vector, candidates=30, reranker=rr, threshold=2)
    assert set(ctx.ids) == {"k1", "k2", "k3"}
    assert ctx.usage.tokenizer == "approx ceil(chars/4)"
    assert all(r.path == "/v1/messages" for r in llm.requests)


def test_listwise_end_to_end(col, llm):
    rr = gleandb.rerank.LLMListwise(model="m", base_url=llm.openai_url, window=10, step=5)
    ctx = col.context(Q, query_embedding=col.query_vector, candidates=30, reranker=rr, top_n=3)
    assert set(ctx.ids) == {"k1", "k2", "k3"}
    assert ctx.usage.model_calls == 5  # 29 candidates: windows end at 29, 24, 19, 14, 9


def test_reranker_threshold_and_override(col):
    fn = gleandb.rerank.Function(lambda q, docs: [overlap(q, d) for d in docs], threshold=3)
    own = col.context(Q, query_embedding=col.query_vector, reranker=fn)
    assert own.chunks and all(c.rerank_score >= 3 for c in own.chunks)
    loose = col.context(Q, query_embedding=col.query_vector, reranker=fn, threshold=0)
    assert len(loose.chunks) > len(own.chunks) and loose.usage.dropped["threshold"] == 0
