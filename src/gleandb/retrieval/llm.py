"""Chat clients for the re-rankers: OpenAI-compatible chat completions and Anthropic Messages.

Plain httpx rather than the vendor SDKs: the re-rankers need one request shape each, and
owning the retry loop lets every client share the same rules and the same accounting:

- retried: 429, 408, 409, 5xx, connection errors and timeouts, up to ``max_retries``
  times, exponential backoff with jitter; ``Retry-After`` (seconds or an HTTP date) and
  ``retry-after-ms`` are honoured, capped at ``max_retry_wait``;
- not retried: other 4xx (:class:`ChatError` with the server's message; 401/403 as
  :class:`ChatAuthError` naming the environment variable);
- at most ``max_concurrency`` requests of one client in flight (a semaphore), so parallel
  re-ranking batches cannot flood a rate-limited endpoint;
- every answer's ``usage`` is added to a :class:`Usage` (calls, input/output tokens, cost
  when a price is given or the server reports one, retries).

- an overall deadline (``Usage.deadline``, set by ``Collection.context``) bounds every
  attempt, retry wait and queueing for the semaphore, so a dead endpoint costs at most the
  deadline rather than (retries + 1) x timeout plus backoff; every final error says how many
  attempts were made over how long.

API keys come from the argument or the environment (``OPENAI_API_KEY`` /
``ANTHROPIC_API_KEY``) and are never logged, put in an error message or a ``repr``.
A client owns an HTTP connection pool: ``close()`` it or use it as a context manager
(it is also closed when collected).
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

OPENAI_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}


class ChatError(RuntimeError):
    """A chat endpoint refused or failed a request (after retries where they apply)."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class ChatAuthError(ChatError, PermissionError):
    """401/403 or no key for an endpoint that needs one."""


class ChatTimeoutError(ChatError, TimeoutError):
    """No answer within ``timeout`` seconds, on every attempt."""


@dataclass
class Usage:
    """Model calls and tokens, added to from several threads.

    It travels with every model call of one pipeline run, so it also carries that run's
    ``deadline`` (a ``time.monotonic()`` instant, or None) and collects ``errors``: the
    failures that cost part of a result without failing all of it."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    retries: int = 0
    failed_calls: int = 0
    deadline: float | None = field(default=None, compare=False)
    deadline_s: float | None = field(default=None, compare=False)   # the budget, for messages
    errors: list = field(default_factory=list, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def set_deadline(self, seconds: float | None) -> None:
        """Every model call made with this Usage gives up ``seconds`` from now."""
        self.deadline_s = seconds
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be <= 0), or None without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def note(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def add(self, *, calls: int = 0, input_tokens: int = 0, output_tokens: int = 0,
            cost: float | None = None, retries: int = 0, failed_calls: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens
            self.retries += retries
            self.failed_calls += failed_calls
            if cost is not None:
                self.cost = (self.cost or 0.0) + cost

    def to_dict(self) -> dict:
        return {"calls": self.calls, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cost": self.cost, "retries": self.retries, "failed_calls": self.failed_calls}


@dataclass
class ChatReply:
    text: str
    input_tokens: int
    output_tokens: int
    cost: float | None
    latency_s: float


def _retry_after(resp: httpx.Response | None) -> float | None:
    if resp is None:
        return None
    ms = resp.headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = resp.headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _server_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])
    if isinstance(err, str):
        return err
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return resp.text[:500]


class ChatClient:
    """One model on one endpoint; thread-safe (share it between re-rankers)."""

    provider = "base"
    key_env = ""

    def __init__(self, model: str, *, base_url: str, api_key: str | None, timeout: float = 60.0,
                 max_retries: int = 4, max_retry_wait: float = 30.0, max_concurrency: int = 8,
                 max_output_tokens: int = 1024, price: tuple[float, float] | None = None,
                 backoff_base: float = 0.5, headers: dict[str, str] | None = None,
                 require_key: bool | None = None) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        for name, value, low in (("timeout", timeout, 0), ("max_retry_wait", max_retry_wait, 0),
                                 ("backoff_base", backoff_base, 0)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be a number >= {low}, got {value!r}")
        for name, value, low in (("max_retries", max_retries, 0), ("max_concurrency", max_concurrency, 1),
                                 ("max_output_tokens", max_output_tokens, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if price is not None:
            if (not isinstance(price, (tuple, list)) or len(price) != 2
                    or not all(isinstance(p, (int, float)) and p >= 0 for p in price)):
                raise ValueError(f"price must be (input, output) USD per million tokens, got {price!r}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key if api_key is not None else os.environ.get(self.key_env)
        if require_key is None:  # the official endpoints need a key; local servers often do not
            require_key = self.base_url in (OPENAI_BASE_URL, ANTHROPIC_BASE_URL)
        if require_key and not self._api_key:
            raise ChatAuthError(f"no API key for {self.base_url}: pass api_key= or set {self.key_env}")
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.max_retry_wait = float(max_retry_wait)
        self.max_output_tokens = max_output_tokens
        self.price = tuple(price) if price is not None else None
        self.backoff_base = float(backoff_base)
        self.max_concurrency = max_concurrency
        self._extra_headers = dict(headers or {})
        self._sem = threading.BoundedSemaphore(max_concurrency)
        self._http = httpx.Client(timeout=httpx.Timeout(self.timeout), follow_redirects=False)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the connection pool (idempotent)."""
        http = getattr(self, "_http", None)  # absent when __init__ raised
        if http is not None:
            http.close()

    def __enter__(self) -> "ChatClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # a dropped client must not keep its sockets open
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # subclasses: request shape and answer parsing
    def _request(self, system: str, messages: list[dict], max_tokens: int) -> tuple[str, dict, dict]:
        raise NotImplementedError

    def _parse(self, body: Any) -> tuple[str, int, int, float | None]:
        raise NotImplementedError

    def _cost(self, input_tokens: int, output_tokens: int, reported: float | None) -> float | None:
        if reported is not None:
            return reported
        if self.price is None:
            return None
        return (input_tokens * self.price[0] + output_tokens * self.price[1]) / 1e6

    def complete(self, system: str, messages: list[dict], usage: Usage | None = None,
                 max_tokens: int | None = None) -> ChatReply:
        """One chat turn (``messages``: [{"role": "user"|"assistant", "content": str}]).

        Bounded by ``usage.deadline`` when set: no attempt starts after it, each attempt's
        timeout and each retry wait is cut to the time left."""
        url, headers, payload = self._request(system, messages, max_tokens or self.max_output_tokens)
        headers = {**headers, **self._extra_headers}
        attempt = 0
        t0 = time.perf_counter()

        def account(failed: bool, **kw: Any) -> None:  # one logical call, its retries counted apart
            if usage is not None:
                usage.add(calls=1, failed_calls=int(failed), retries=attempt, **kw)

        def spent(n: int) -> str:
            return f"{n} attempt{'s' if n != 1 else ''} over {time.perf_counter() - t0:.1f} s"

        def past_deadline(made: int, last: ChatError | None) -> ChatTimeoutError:
            budget = f"{usage.deadline_s:g} s " if usage is not None and usage.deadline_s is not None else ""
            why = f"; last error: {last}" if last is not None else ""
            return ChatTimeoutError(f"{self.provider} {self.model}: gave up at the {budget}deadline of this "
                                    f"call after {spent(made)}{why}")

        remaining = usage.remaining() if usage is not None else None
        if not self._sem.acquire(timeout=None if remaining is None else max(0.0, remaining)):
            raise past_deadline(0, None)
        try:
            while True:
                resp = None
                failure: ChatError
                remaining = usage.remaining() if usage is not None else None
                if remaining is not None and remaining <= 0:
                    if attempt:  # the sleep overran the deadline: the previous attempt was the last
                        attempt -= 1
                        account(True)
                        raise past_deadline(attempt + 1, last_failure)
                    raise past_deadline(0, None)
                timeout = self.timeout if remaining is None else min(self.timeout, remaining)
                try:
                    resp = self._http.post(url, json=payload, headers=headers, timeout=httpx.Timeout(timeout))
                except httpx.TimeoutException:
                    failure = ChatTimeoutError(f"{self.provider} {self.model}: no answer from {url} "
                                               f"within {timeout:.3g} s")
                except httpx.TransportError as exc:
                    failure = ChatError(f"{self.provider} {self.model}: cannot reach {url}: "
                                        f"{type(exc).__name__}: {exc}")
                else:
                    if resp.status_code < 300:
                        try:
                            body = resp.json()
                            text, tin, tout, reported = self._parse(body)
                        except (ValueError, KeyError, IndexError, TypeError) as exc:
                            account(True)
                            raise ChatError(f"{self.provider} {self.model}: unexpected answer shape from {url}: "
                                            f"{type(exc).__name__}: {exc}", resp.status_code) from None
                        cost = self._cost(tin, tout, reported)
                        account(False, input_tokens=tin, output_tokens=tout, cost=cost)
                        return ChatReply(text, tin, tout, cost, time.perf_counter() - t0)
                    msg = f"{self.provider} {self.model}: HTTP {resp.status_code} from {url}: {_server_message(resp)}"
                    if resp.status_code in (401, 403):
                        failure = ChatAuthError(msg + f" (check api_key / {self.key_env})", resp.status_code)
                    else:
                        failure = ChatError(msg, resp.status_code)
                    if resp.status_code not in _RETRY_STATUS:
                        account(True)
                        raise failure
                last_failure: ChatError = failure
                if attempt >= self.max_retries:
                    account(True)
                    raise type(failure)(f"{failure} ({spent(attempt + 1)})", failure.status_code)
                wait = _retry_after(resp)
                if wait is None:
                    wait = self.backoff_base * (2 ** attempt) * (0.5 + random.random() / 2)
                wait = min(wait, self.max_retry_wait)
                remaining = usage.remaining() if usage is not None else None
                if remaining is not None and wait >= remaining:  # the retry could not start in time
                    account(True)
                    raise past_deadline(attempt + 1, failure)
                time.sleep(wait)
                attempt += 1
        finally:
            self._sem.release()


class OpenAIChat(ChatClient):
    """``POST {base_url}/chat/completions`` (OpenAI, vLLM, llama.cpp, Ollama /v1, LiteLLM...)."""

    provider = "openai"
    key_env = "OPENAI_API_KEY"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None, **kw: Any):
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
        super().__init__(model, base_url=base_url, api_key=api_key, **kw)

    def _request(self, system, messages, max_tokens):
        headers = {"content-type": "application/json"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        payload = {"model": self.model, "temperature": 0, "max_tokens": max_tokens,
                   "messages": [{"role": "system", "content": system}, *messages]}
        return self.base_url + "/chat/completions", headers, payload

    def _parse(self, body):
        text = body["choices"][0]["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("choices[0].message.content is not a string")
        u = body.get("usage") or {}
        reported = u.get("cost") if isinstance(u.get("cost"), (int, float)) else None
        return text, int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0), reported


class AnthropicChat(ChatClient):
    """``POST {base_url}/v1/messages`` with ``x-api-key`` and ``anthropic-version``."""

    provider = "anthropic"
    key_env = "ANTHROPIC_API_KEY"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 anthropic_version: str = ANTHROPIC_VERSION, **kw: Any):
        base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_BASE_URL
        self.anthropic_version = anthropic_version
        super().__init__(model, base_url=base_url, api_key=api_key, **kw)

    def _request(self, system, messages, max_tokens):
        headers = {"content-type": "application/json", "anthropic-version": self.anthropic_version}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        payload = {"model": self.model, "max_tokens": max_tokens, "temperature": 0,
                   "system": system, "messages": list(messages)}
        url = self.base_url + ("/messages" if self.base_url.endswith("/v1") else "/v1/messages")
        return url, headers, payload

    def _parse(self, body):
        parts = [b.get("text", "") for b in body["content"] if isinstance(b, dict) and b.get("type") == "text"]
        if not parts:
            raise KeyError("content has no text block")
        u = body.get("usage") or {}
        tin = int(u.get("input_tokens") or 0) + int(u.get("cache_read_input_tokens") or 0) \
            + int(u.get("cache_creation_input_tokens") or 0)
        return "".join(parts), tin, int(u.get("output_tokens") or 0), None


PROVIDERS = {"openai": OpenAIChat, "anthropic": AnthropicChat}


def make_chat_client(provider: str, model: str, **kw: Any) -> ChatClient:
    try:
        cls = PROVIDERS[provider]
    except KeyError:
        raise ValueError(f"provider must be one of {sorted(PROVIDERS)}, got {provider!r}") from None
    return cls(model, **kw)
