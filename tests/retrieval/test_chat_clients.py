"""OpenAI-compatible and Anthropic chat clients against the local fake server."""

import json

import pytest

from fake_llm import Reply
from gleandb.retrieval.llm import (
    AnthropicChat,
    ChatAuthError,
    ChatError,
    ChatTimeoutError,
    OpenAIChat,
    Usage,
)

MSG = [{"role": "user", "content": "hello"}]


def test_openai_request_shape_and_usage(llm):
    llm.rule = lambda req: Reply(text="hi there", usage=(42, 7))
    c = OpenAIChat("gpt-test", base_url=llm.openai_url, api_key="sk-secret")
    usage = Usage()
    reply = c.complete("be brief", MSG, usage)
    assert reply.text == "hi there"
    req = llm.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-secret"
    assert req.body["model"] == "gpt-test"
    assert req.body["temperature"] == 0
    assert req.body["messages"] == [{"role": "system", "content": "be brief"}, *MSG]
    assert (usage.calls, usage.input_tokens, usage.output_tokens, usage.cost) == (1, 42, 7, None)


def test_anthropic_request_shape_and_usage(llm):
    llm.rule = lambda req: Reply(text="bonjour", usage=(30, 5))
    c = AnthropicChat("claude-test", base_url=llm.url, api_key="ak-secret", price=(3.0, 15.0))
    usage = Usage()
    assert c.complete("sys", MSG, usage).text == "bonjour"
    req = llm.requests[0]
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == "ak-secret"
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in req.headers
    assert req.body["system"] == "sys" and req.body["messages"] == MSG and req.body["max_tokens"] > 0
    assert usage.input_tokens == 30 and usage.output_tokens == 5
    assert usage.cost == pytest.approx((30 * 3.0 + 5 * 15.0) / 1e6)


def test_keys_from_environment_and_never_shown(llm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-from-env")
    o = OpenAIChat("m", base_url=llm.openai_url)
    a = AnthropicChat("m", base_url=llm.url)
    o.complete("s", MSG)
    a.complete("s", MSG)
    assert llm.requests[0].headers["authorization"] == "Bearer sk-from-env"
    assert llm.requests[1].headers["x-api-key"] == "ak-from-env"
    assert "from-env" not in repr(o) + repr(a)


def test_official_endpoint_without_key_is_refused(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ChatAuthError, match="OPENAI_API_KEY"):
        OpenAIChat("gpt-4.1-mini")


def test_429_and_500_are_retried_honouring_retry_after(llm, no_sleep):
    answers = iter([Reply(status=429, headers={"retry-after": "3"}), Reply(status=500),
                    Reply(status=503, headers={"retry-after-ms": "250"}), Reply(text="ok")])
    llm.rule = lambda req: next(answers)
    c = OpenAIChat("m", base_url=llm.openai_url, max_retries=4, backoff_base=0.01)
    usage = Usage()
    assert c.complete("s", MSG, usage).text == "ok"
    assert len(llm.requests) == 4
    assert no_sleep[0] == 3.0 and no_sleep[2] == 0.25  # Retry-After honoured
    assert 0 < no_sleep[1] <= 0.02                      # else exponential backoff
    assert usage.calls == 1 and usage.retries == 3


def test_retry_after_is_capped(llm, no_sleep):
    answers = iter([Reply(status=429, headers={"retry-after": "3600"}), Reply(text="ok")])
    llm.rule = lambda req: next(answers)
    OpenAIChat("m", base_url=llm.openai_url, max_retry_wait=2.0).complete("s", MSG)
    assert no_sleep == [2.0]


def test_retries_give_up(llm, no_sleep):
    llm.rule = lambda req: Reply(status=500)
    c = OpenAIChat("m", base_url=llm.openai_url, max_retries=2)
    usage = Usage()
    with pytest.raises(ChatError, match="HTTP 500") as ei:
        c.complete("s", MSG, usage)
    assert ei.value.status_code == 500
    assert len(llm.requests) == 3 and usage.failed_calls == 1


def test_4xx_is_not_retried_and_auth_error_names_variable(llm, no_sleep):
    llm.rule = lambda req: Reply(status=400)
    with pytest.raises(ChatError, match="fake error 400"):
        OpenAIChat("m", base_url=llm.openai_url).complete("s", MSG)
    assert len(llm.requests) == 1
    llm.rule = lambda req: Reply(status=401)
    with pytest.raises(ChatAuthError, match="ANTHROPIC_API_KEY") as ei:
        AnthropicChat("m", base_url=llm.url, api_key="ak-secret").complete("s", MSG)
    assert "ak-secret" not in str(ei.value)
    assert no_sleep == []


def test_timeout(llm, no_sleep):
    llm.rule = lambda req: Reply(text="late", delay=2.0)
    c = OpenAIChat("m", base_url=llm.openai_url, timeout=0.2, max_retries=1)
    with pytest.raises(ChatTimeoutError, match="within 0.2 s"):
        c.complete("s", MSG)
    assert len(llm.requests) == 2  # a timeout is retried


def test_malformed_response_body(llm):
    llm.rule = lambda req: Reply(raw={"unexpected": True})
    with pytest.raises(ChatError, match="unexpected answer shape"):
        OpenAIChat("m", base_url=llm.openai_url).complete("s", MSG)
    llm.rule = lambda req: Reply(raw=b"not json")
    with pytest.raises(ChatError, match="unexpected answer shape"):
        OpenAIChat("m", base_url=llm.openai_url).complete("s", MSG)


def test_server_reported_cost_is_used(llm):
    body = {"choices": [{"message": {"role": "assistant", "content": "x"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "cost": 0.0123}}
    llm.rule = lambda req: Reply(raw=body)
    usage = Usage()
    OpenAIChat("m", base_url=llm.openai_url).complete("s", MSG, usage)
    assert usage.cost == pytest.approx(0.0123)


def test_concurrency_limit(llm):
    from concurrent.futures import ThreadPoolExecutor

    llm.hold_until = 3  # each request waits until three are in flight
    llm.rule = lambda req: Reply(text="ok")
    c = OpenAIChat("m", base_url=llm.openai_url, max_concurrency=3)
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda _: c.complete("s", MSG), range(9)))
    assert len(llm.requests) == 9
    assert llm.max_inflight == 3


@pytest.mark.parametrize("kw, field", [
    ({"timeout": -1}, "timeout"), ({"max_retries": -1}, "max_retries"), ({"max_concurrency": 0}, "max_concurrency"),
    ({"price": (1,)}, "price"),
])
def test_bad_client_arguments(kw, field):
    with pytest.raises(ValueError, match=field):
        OpenAIChat("m", base_url="http://127.0.0.1:9/v1", **kw)
    with pytest.raises(ValueError, match="model"):
        OpenAIChat("", base_url="http://127.0.0.1:9/v1")
