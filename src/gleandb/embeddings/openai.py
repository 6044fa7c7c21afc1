"""An embedding function for OpenAI's API and any server that speaks it.

``POST {api_base}/embeddings`` with ``{"model", "input": [...], "encoding_format": "float"}``
(plus ``"dimensions"`` whenever it is set), over httpx. Works with api.openai.com and with
OpenAI-compatible servers (vLLM, llama.cpp, Ollama's /v1, LiteLLM, TEI, LM Studio...).

- Batching: at most ``batch_size`` inputs per request (OpenAI accepts 2048).
- Retries: 429, 408, 409, 5xx, connection errors and timeouts are retried up to
  ``max_retries`` times with exponential backoff and jitter; a ``Retry-After`` (seconds
  or HTTP date) or ``retry-after-ms`` header is honoured (capped at ``max_retry_wait``).
- Errors: 401/403 -> :class:`OpenAIAuthenticationError` naming the env var; other 4xx
  -> :class:`OpenAIEmbeddingError` with the server's message; timeouts ->
  :class:`OpenAITimeoutError`. Nothing is retried on 4xx other than 408/409/429.
- The API key is read from the environment variable named ``api_key_env_var`` when the
  function is called; only that *name* is persisted (``get_config``), never the key.
  A key passed directly as ``api_key`` is used but not persisted (as in chromadb).
- It holds an HTTP connection pool: ``close()`` it or use it as a context manager (it is
  also closed when collected).

Constructor and config keys follow chromadb's ``OpenAIEmbeddingFunction`` so a
collection configured by chromadb is rebuilt here, plus ``base_url`` (alias of
``api_base``), ``batch_size``, ``timeout`` and ``max_retries``.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import threading
import time
from typing import Any

import numpy as np

from gleandb.embeddings.functions import register_embedding_function

DEFAULT_API_BASE = "https://api.openai.com/v1"
_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIEmbeddingError(RuntimeError):
    """The embeddings endpoint refused or failed a request."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class OpenAIAuthenticationError(OpenAIEmbeddingError, PermissionError):
    """401/403: the key is missing, wrong or not allowed to use the model."""


class OpenAITimeoutError(OpenAIEmbeddingError, TimeoutError):
    """No answer within ``timeout`` seconds, on every attempt."""


@register_embedding_function
class OpenAIEmbeddingFunction:
    def __init__(
        self,
        api_key: str | None = None,
        model_name: str = "text-embedding-ada-002",
        organization_id: str | None = None,
        api_base: str | None = None,
        api_type: str | None = None,
        api_version: str | None = None,
        deployment_id: str | None = None,
        default_headers: dict[str, str] | None = None,
        dimensions: int | None = None,
        api_key_env_var: str = "OPENAI_API_KEY",
        *,
        base_url: str | None = None,
        batch_size: int = 2048,
        timeout: float = 60.0,
        max_retries: int = 5,
        max_retry_wait: float = 60.0,
    ) -> None:
        if api_base and base_url and api_base.rstrip("/") != base_url.rstrip("/"):
            raise ValueError(f"api_base {api_base!r} and base_url {base_url!r} disagree: pass one")
        if not isinstance(model_name, str) or not model_name:
            raise ValueError(f"model_name must be a non-empty str, got {model_name!r}")
        if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
            raise ValueError(f"dimensions must be a positive int or None, got {dimensions!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if not isinstance(api_key_env_var, str) or not api_key_env_var:
            raise ValueError(f"api_key_env_var must be the name of an environment variable, got {api_key_env_var!r}")
        self._api_key = api_key  # never persisted
        self.model_name = model_name
        self.organization_id = organization_id
        self.api_base = (api_base or base_url or None)
        self.api_type = api_type
        self.api_version = api_version
        self.deployment_id = deployment_id
        self.default_headers = dict(default_headers) if default_headers else None
        self.dimensions = dimensions
        self.api_key_env_var = api_key_env_var
        self.batch_size = batch_size
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.max_retry_wait = float(max_retry_wait)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._sleep = time.sleep  # tests replace it

    # ------------------------------------------------------------------ protocol

    @staticmethod
    def name() -> str:
        return "openai"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def is_legacy(self) -> bool:
        return False

    def get_config(self) -> dict:
        return {
            "api_key_env_var": self.api_key_env_var,
            "model_name": self.model_name,
            "organization_id": self.organization_id,
            "api_base": self.api_base,
            "api_type": self.api_type,
            "api_version": self.api_version,
            "deployment_id": self.deployment_id,
            "default_headers": self.default_headers,
            "dimensions": self.dimensions,
            "batch_size": self.batch_size,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }

    @staticmethod
    def build_from_config(config: dict) -> "OpenAIEmbeddingFunction":
        keys = (
            "model_name", "organization_id", "api_base", "api_type", "api_version", "deployment_id",
            "default_headers", "dimensions", "api_key_env_var", "batch_size", "timeout", "max_retries",
        )
        return OpenAIEmbeddingFunction(**{k: config[k] for k in keys if config.get(k) is not None})

    @staticmethod
    def validate_config(config: dict) -> None:
        if not isinstance(config.get("model_name", ""), str):
            raise ValueError("model_name must be a str")

    def validate_config_update(self, old_config: dict, new_config: dict) -> None:
        if "model_name" in new_config and new_config["model_name"] != old_config.get("model_name"):
            raise ValueError("The model name cannot be changed after the embedding function has been initialized.")

    def __repr__(self) -> str:
        return f"OpenAIEmbeddingFunction(model_name={self.model_name!r}, api_base={self.url!r})"

    # ------------------------------------------------------------------ HTTP

    @property
    def url(self) -> str:
        base = (self.api_base or DEFAULT_API_BASE).rstrip("/")
        if self.api_type == "azure":
            if not self.deployment_id:
                raise ValueError("api_type='azure' needs deployment_id")
            return f"{base}/openai/deployments/{self.deployment_id}/embeddings"
        return f"{base}/embeddings"

    def _key(self) -> str:
        key = self._api_key or os.environ.get(self.api_key_env_var)
        if not key:
            raise ValueError(
                f"The {self.api_key_env_var} environment variable is not set: it must hold the API key "
                f"for {self.url}"
            )
        return key

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.default_headers:
            h.update(self.default_headers)
        if self.api_type == "azure":
            h["api-key"] = self._key()
        else:
            h["Authorization"] = f"Bearer {self._key()}"
        if self.organization_id:
            h["OpenAI-Organization"] = self.organization_id
        return h

    def _http(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    try:
                        import httpx
                    except ImportError as e:  # pragma: no cover - httpx is a gleandb dependency
                        raise ImportError("OpenAIEmbeddingFunction needs httpx: pip install httpx") from e
                    self._client = httpx.Client(timeout=self.timeout)
        return self._client

    def close(self) -> None:
        """Close the HTTP connection pool; a later call opens a new one."""
        client = getattr(self, "_client", None)  # absent when __init__ raised
        if client is not None:
            client.close()
            self._client = None

    def __enter__(self) -> "OpenAIEmbeddingFunction":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # a dropped function must not keep its sockets open
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def _retry_wait(self, attempt: int, headers: Any) -> float:
        wait = None
        if headers is not None:
            ms = headers.get("retry-after-ms")
            ra = headers.get("retry-after")
            try:
                if ms is not None:
                    wait = float(ms) / 1000.0
                elif ra is not None:
                    try:
                        wait = float(ra)
                    except ValueError:
                        when = email.utils.parsedate_to_datetime(ra)
                        wait = when.timestamp() - time.time()
            except (TypeError, ValueError, OverflowError):
                wait = None
        if wait is None or wait < 0:
            wait = min(8.0, 0.5 * 2**attempt) * (0.75 + 0.5 * random.random())
        return min(wait, self.max_retry_wait)

    def _post(self, texts: list[str]) -> list[np.ndarray]:
        client = self._http()  # raises the install hint when httpx is missing
        import httpx

        body: dict[str, Any] = {"model": self.model_name, "input": texts, "encoding_format": "float"}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        params = {"api-version": self.api_version} if self.api_version else None
        headers = self._headers()
        url = self.url
        last: str = ""
        for attempt in range(self.max_retries + 1):
            try:
                resp = client.post(url, content=json.dumps(body), headers=headers, params=params)
            except httpx.TimeoutException as e:
                last = f"timed out after {self.timeout:g} s ({type(e).__name__})"
                if attempt < self.max_retries:
                    self._sleep(self._retry_wait(attempt, None))
                    continue
                raise OpenAITimeoutError(
                    f"Embeddings request to {url} {last}, {attempt + 1} attempt(s)"
                ) from e
            except httpx.TransportError as e:
                last = f"connection failed: {e!r}"
                if attempt < self.max_retries:
                    self._sleep(self._retry_wait(attempt, None))
                    continue
                raise OpenAIEmbeddingError(f"Embeddings request to {url} {last}, {attempt + 1} attempt(s)") from e
            status = resp.status_code
            if status == 200:
                return self._parse(resp, len(texts))
            detail = _error_detail(resp)
            if status in (401, 403):
                raise OpenAIAuthenticationError(
                    f"Embeddings request to {url} was refused ({status}): {detail}. "
                    f"Check the API key in the {self.api_key_env_var} environment variable.",
                    status,
                )
            if status in _RETRY_STATUS and attempt < self.max_retries:
                self._sleep(self._retry_wait(attempt, resp.headers))
                last = f"{status}: {detail}"
                continue
            if status in _RETRY_STATUS:
                raise OpenAIEmbeddingError(
                    f"Embeddings request to {url} failed with {status} after {attempt + 1} attempt(s): {detail}",
                    status,
                )
            raise OpenAIEmbeddingError(f"Embeddings request to {url} failed with {status}: {detail}", status)
        raise OpenAIEmbeddingError(f"Embeddings request to {url} failed: {last}")  # pragma: no cover

    def _parse(self, resp: Any, n: int) -> list[np.ndarray]:
        try:
            payload = resp.json()
            data = payload["data"]
            if not isinstance(data, list):
                raise TypeError("'data' is not a list")
            if all(isinstance(d, dict) and "index" in d for d in data):
                data = sorted(data, key=lambda d: d["index"])
            vecs = [np.asarray(d["embedding"], dtype=np.float32) for d in data]
        except Exception as e:
            raise OpenAIEmbeddingError(
                f"Embeddings response from {self.url} is not an OpenAI embeddings list: {e}", resp.status_code
            ) from e
        if len(vecs) != n:
            raise OpenAIEmbeddingError(f"Embeddings response from {self.url} has {len(vecs)} vectors for {n} inputs")
        return vecs

    # ------------------------------------------------------------------ call

    def __call__(self, input: Any) -> list[np.ndarray]:
        if isinstance(input, str):
            input = [input]
        texts = list(input)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ValueError(f"OpenAIEmbeddingFunction embeds text: got {type(t).__name__} at index {i}")
        out: list[np.ndarray] = []
        for s in range(0, len(texts), self.batch_size):
            out.extend(self._post(texts[s : s + self.batch_size]))
        return out

    def embed_query(self, input: Any) -> list[np.ndarray]:
        return self(input)


def _error_detail(resp: Any) -> str:
    try:
        payload = resp.json()
        err = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if isinstance(payload, dict) and payload.get("message"):
            return str(payload["message"])
    except Exception:
        pass
    text = (resp.text or "").strip()
    return text[:300] if text else (resp.reason_phrase or "no detail")
