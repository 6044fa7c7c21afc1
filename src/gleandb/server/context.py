"""The ``POST .../collections/{id}/context`` extension route: ``Collection.context`` on the server.

The re-ranker comes as a JSON spec (``gleandb.retrieval.rerank.reranker_from_spec``). Keys
and endpoints are the server's business, not the request's: API keys come from the server's
environment (``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``) and a key in the request is refused
unless ``rerank_allow_request_keys`` is on; ``base_url`` must be one the server allows
(``rerank_base_urls``), so a request can neither send the server's key to a host of its
choosing nor make the server call arbitrary URLs; cross-encoders load only the models
listed in ``rerank_cross_encoders``. The server never embeds: dense and hybrid modes need
``query_embedding`` in the request.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gleandb.retrieval.context import DEFAULT_DEADLINE, build_context, stored_mode
from gleandb.retrieval.llm import ANTHROPIC_BASE_URL, OPENAI_BASE_URL
from gleandb.retrieval.rerank import reranker_from_spec

FIELDS = ("question", "query_embedding", "candidates", "where", "where_document", "mode", "reranker", "top_n",
          "max_tokens", "threshold", "order", "dedupe", "tokenizer", "on_rerank_error", "truncate", "deadline")
DEFAULT_BASE_URLS = [OPENAI_BASE_URL, ANTHROPIC_BASE_URL]


def run_context(col: Any, body: dict, settings: Any) -> dict:
    """Validate the body against the server's policy, run the pipeline, answer JSON.
    ValueError (400) names the field and the value."""
    if not isinstance(body, dict):
        raise ValueError(f"context: the body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ValueError(f"context: unknown field {unknown[0]!r}; expected some of {', '.join(FIELDS)}")
    args = {k: v for k, v in body.items() if v is not None or k in ("threshold", "dedupe")}
    # the request may shorten the deadline, never lift it past the server's default
    limit = DEFAULT_DEADLINE
    dl = args.get("deadline", limit)
    if dl is None or (isinstance(dl, (int, float)) and not isinstance(dl, bool) and dl > limit):
        raise ValueError(f"context: deadline must be a number of seconds up to {limit:g}, got {dl!r}")
    args["deadline"] = dl
    if "question" not in args:
        raise ValueError("context: question is required")
    cand = args.get("candidates", 200)
    if isinstance(cand, int) and cand > settings.max_query_results:
        raise ValueError(f"candidates is {cand}, more than this server's limit of {settings.max_query_results} "
                         f"(max_query_results / GLEAN_MAX_QUERY_RESULTS)")
    mode = args.get("mode") or stored_mode(col)
    emb = args.get("query_embedding")
    if emb is None and mode in ("hybrid", "dense"):
        raise ValueError(f"context: mode={mode!r} needs query_embedding (the server does not embed text); "
                         "send the question's embedding, or use mode='bm25'")
    if emb is not None:
        if not isinstance(emb, list) or not emb or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in emb):
            raise ValueError(f"context: query_embedding must be a non-empty list of numbers, got {emb!r:.80}")
        args["query_embedding"] = np.asarray(emb, dtype=np.float32)
    tok = args.get("tokenizer")
    if tok is not None and not isinstance(tok, str):
        raise ValueError(f"context: tokenizer must be a model or encoding name, got {tok!r}")
    spec = args.pop("reranker", None)
    if isinstance(spec, dict) and spec.get("type") == "cross_encoder" \
            and spec.get("model") not in settings.rerank_cross_encoders:
        raise ValueError(f"reranker.model {spec.get('model')!r}: this server loads only the cross-encoders in "
                         f"rerank_cross_encoders / GLEAN_RERANK_CROSS_ENCODERS "
                         f"({', '.join(settings.rerank_cross_encoders) or 'none'})")
    reranker = reranker_from_spec(spec, allow_api_key=settings.rerank_allow_request_keys,
                                  allowed_base_urls=settings.rerank_base_urls or DEFAULT_BASE_URLS)
    try:
        ctx = build_context(col, **args, reranker=reranker)
    finally:
        client = getattr(reranker, "client", None)
        if client is not None:
            client.close()
    return ctx.to_dict()
