"""The second stage under failure: partial grades, the per-call deadline, usage on errors,
and closing the model clients (issue 12)."""

import gc
import socket
import time
import warnings

import pytest

import gleandb
from fake_llm import Reply, default_answer, overlap
from gleandb.retrieval.context import RerankWarning, build_context, candidates_from_lists
from gleandb.retrieval.llm import ChatError, ChatTimeoutError, OpenAIChat, Usage

Q = "how do I rotate an API key"
# 50 candidates in first-stage order; every fifth one shares words with the question
DOCS = [f"doc {i}: " + ("rotate the API key, then revoke the old key" if i % 5 == 0 else f"tea and weather {i}")
        for i in range(50)]
IDS = [f"d{i:02d}" for i in range(50)]
BAD = {2}  # batches (of 10) whose every answer is garbage, the repair turn's too


def _batch(req) -> int:
    return int(req.passages[0].split(":")[0].split()[1]) // 10


def _garbage_for_bad_batches(req):
    return Reply(text="I think they are all fine!") if _batch(req) in BAD else Reply(text=default_answer(req))


def _reranker(fake, **kw):
    return gleandb.rerank.LLM(model="m", base_url=fake.openai_url, api_key="k", batch_size=10, **kw)


def _context(rr, **kw):
    return build_context(None, Q, first_stage_results=candidates_from_lists(IDS, DOCS), reranker=rr, top_n=50,
                         max_tokens=100_000, dedupe=None, **kw)


# ------------------------------------------------------------------ partial grades

@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_failed_batch_keeps_the_other_grades(llm, concurrency):
    llm.rule = _garbage_for_bad_batches
    with pytest.warns(RerankWarning, match="scored 40 of 50 candidates"):
        ctx = _context(_reranker(llm, max_concurrency=concurrency))
    u = ctx.usage
    assert u.reranked == 50 and u.graded == 40 and u.degraded
    assert "candidates 20..29 is ungraded" in u.warnings[0]
    assert u.model_calls == 40 / 10 + 2  # four good batches, the bad one and its repair turn
    # the ungraded batch keeps its first-stage slots; the graded ones fill the others by grade
    assert ctx.ids[20:30] == IDS[20:30]
    assert all(c.rerank_score is None for c in ctx.chunks[20:30])
    graded = [c for c in ctx.chunks if c.id not in IDS[20:30]]
    assert all(c.rerank_score is not None for c in graded)
    scores = [c.rerank_score for c in graded]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    expected = [IDS[i] for i in sorted((i for i in range(50) if not 20 <= i < 30),
                                       key=lambda i: -min(3, overlap(Q, DOCS[i])))]
    assert [c.id for c in graded] == expected


def test_ungraded_candidates_survive_the_threshold(llm):
    llm.rule = _garbage_for_bad_batches
    with pytest.warns(RerankWarning):
        ctx = _context(_reranker(llm), threshold=2)
    kept_graded = [c for c in ctx.chunks if c.rerank_score is not None]
    assert kept_graded and all(c.rerank_score >= 2 for c in kept_graded)
    assert [c.id for c in ctx.chunks if c.rerank_score is None] == IDS[20:30]
    assert ctx.usage.dropped["threshold"] == 40 - len(kept_graded)


def test_every_batch_failed_still_raises_with_the_usage(llm):
    llm.rule = lambda req: Reply(text="no json")
    with pytest.raises(gleandb.rerank.RerankError, match="after a repair attempt") as ei:
        _context(_reranker(llm))
    u = ei.value.usage
    assert u.model_calls == 10 and u.input_tokens == 10 * 100 and u.output_tokens == 10 * 10
    assert u.reranked == 50 and u.graded == 0 and "rerank" not in u.latency_ms and u.latency_ms["total"] > 0


def test_an_error_in_the_first_stage_carries_usage_too():
    col = gleandb.EphemeralClient().create_collection("no-ef", embedding_function=None)
    with pytest.raises(ValueError, match="pass query_embedding") as ei:
        col.context(Q)
    assert ei.value.usage.model_calls == 0


# ------------------------------------------------------------------------ deadline

def test_a_silent_endpoint_gives_up_at_the_deadline(llm):
    llm.rule = lambda req: Reply(text=default_answer(req), delay=5)
    rr = _reranker(llm, timeout=60, max_retries=4)
    t = time.monotonic()
    with pytest.raises(gleandb.rerank.RerankError) as ei:
        _context(rr, deadline=0.5)
    elapsed = time.monotonic() - t
    assert isinstance(ei.value.__cause__, ChatTimeoutError)
    msg = str(ei.value)
    assert "gave up at the 0.5 s deadline of this call after 1 attempt over" in msg and "no answer" in msg
    assert elapsed < 60  # not one request timeout, let alone (retries + 1) of them
    assert ei.value.usage.failed_calls >= 1


def _dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}/v1"


def test_a_dead_endpoint_stops_retrying_at_the_deadline():
    rr = gleandb.rerank.LLM(model="m", base_url=_dead_url(), api_key="k", max_retries=50, backoff_base=0.2,
                            max_retry_wait=10)
    with pytest.raises(gleandb.rerank.RerankError) as ei:
        _context(rr, deadline=1.5)
    msg = str(ei.value)
    assert "gave up at the 1.5 s deadline of this call after" in msg and "cannot reach" in msg
    attempts = int(msg.split("deadline of this call after ")[1].split()[0])
    assert 1 <= attempts < 51
    assert ei.value.usage.failed_calls == 5  # one per batch
    assert ei.value.usage.retries >= 5 * (attempts - 1)


def test_errors_after_retries_say_how_many_attempts(llm, no_sleep):
    llm.rule = lambda req: Reply(status=503)
    client = OpenAIChat("m", base_url=llm.openai_url, max_retries=2)
    with pytest.raises(ChatError, match=r"HTTP 503 .* \(3 attempts over \d+\.\d s\)"):
        client.complete("s", [{"role": "user", "content": "hi"}], Usage())
    client.close()


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "10", True])
def test_bad_deadline_is_refused_before_any_call(llm, bad):
    with pytest.raises(ValueError, match=f"deadline must be a positive number of seconds or None, got {bad!r}"):
        _context(_reranker(llm), deadline=bad)
    assert llm.requests == []


# --------------------------------------------------------------------- closing

def _keep_alive(fake):
    fake.server.RequestHandlerClass.protocol_version = "HTTP/1.1"  # connections stay pooled
    return fake


def _unclosed(ws, fake):
    """Unclosed-socket warnings about connections to ``fake`` (garbage that earlier tests
    left, collected here too, is not this test's business)."""
    return [w for w in ws if issubclass(w.category, ResourceWarning) and "unclosed" in str(w.message)
            and f", {fake.port})" in str(w.message)]


def test_a_dropped_chat_client_closes_its_sockets(llm):
    _keep_alive(llm)
    gc.collect()  # earlier tests' garbage first, outside the recording
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        rr = _reranker(llm)
        rr.rerank(Q, DOCS[:3], Usage())
        del rr
        gc.collect()
    assert _unclosed(ws, llm) == []


def test_context_managers_close(llm):
    _keep_alive(llm)
    with _reranker(llm) as rr:
        rr.rerank(Q, DOCS[:3], Usage())
        assert not rr.client._http.is_closed
    assert rr.client._http.is_closed
    with OpenAIChat("m", base_url=llm.openai_url) as client:
        shared = gleandb.rerank.LLM(client=client)
        shared.close()  # a client passed in belongs to the caller
        assert not client._http.is_closed
        with gleandb.rerank.LLMListwise(client=client):
            pass
        assert not client._http.is_closed
    assert client._http.is_closed
