"""``glean context COLLECTION "question"``: the packed context of a question, from the shell."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

RERANKERS = {"none": None, "llm": "llm", "listwise": "llm_listwise", "cross-encoder": "cross_encoder"}


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser(
        "context",
        help="retrieve, re-rank and pack the context for a question",
        description="Run Collection.context on a persistent store: hybrid retrieval of --candidates records, "
        "optional re-ranking by a language model (OpenAI-compatible or Anthropic; the key comes from "
        "OPENAI_API_KEY / ANTHROPIC_API_KEY) or a cross-encoder, then packing into --max-tokens. "
        "Prints the packed text (usage on stderr), or everything as JSON with --json. See docs/context.md.",
    )
    p.add_argument("collection")
    p.add_argument("question")
    p.add_argument("--path", default="./data", help="store directory (default ./data)")
    p.add_argument("--reranker", choices=list(RERANKERS), default="none", help="default: none")
    p.add_argument("--model", help="re-ranking model (llm/listwise) or cross-encoder name or path")
    p.add_argument("--provider", choices=["openai", "anthropic"], default="openai")
    p.add_argument("--base-url", help="chat endpoint (default: OPENAI_BASE_URL / ANTHROPIC_BASE_URL or the official one)")
    p.add_argument("--batch-size", type=int, default=10, help="candidates per pointwise call (default 10)")
    p.add_argument("--window", type=int, default=20, help="listwise window (default 20)")
    p.add_argument("--step", type=int, default=10, help="listwise step (default 10)")
    p.add_argument("--candidates", type=int, default=200)
    p.add_argument("--top-n", type=int, default=20)
    p.add_argument("--max-tokens", type=int, default=4000)
    p.add_argument("--threshold", type=float, default=None, help="drop re-ranked candidates scoring below this")
    p.add_argument("--order", choices=["relevance", "source", "ends"], default="relevance")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    p.add_argument("--dedupe", type=float, default=0.95, help="cosine above which a candidate is a duplicate; 0 = off")
    p.add_argument("--tokenizer", help="model or encoding name to count tokens with (default: the re-ranking model's)")
    p.add_argument("--where", type=json.loads, help="metadata filter as JSON")
    p.add_argument("--where-document", type=json.loads, help="document filter as JSON")
    p.add_argument("--on-rerank-error", choices=["raise", "warn"], default="raise")
    p.add_argument("--deadline", type=float, default=120.0,
                   help="seconds for the whole call, model retries included (default 120)")
    p.add_argument("--json", action="store_true", help="print the whole Context as JSON")
    p.set_defaults(func=cmd_context)


def _reranker(args: argparse.Namespace):
    from gleandb.retrieval.rerank import reranker_from_spec

    kind = RERANKERS[args.reranker]
    if kind is None:
        return None
    if not args.model:
        raise ValueError(f"--reranker {args.reranker} needs --model")
    spec = {"type": kind, "model": args.model}
    if kind == "llm":
        spec.update(provider=args.provider, base_url=args.base_url, batch_size=args.batch_size)
    elif kind == "llm_listwise":
        spec.update(provider=args.provider, base_url=args.base_url, window=args.window, step=args.step)
    return reranker_from_spec({k: v for k, v in spec.items() if v is not None})


def cmd_context(args: argparse.Namespace) -> int:
    import gleandb
    from gleandb.cli.main import _require_store
    from gleandb.retrieval.context import RerankWarning
    from gleandb.retrieval.llm import ChatError
    from gleandb.retrieval.rerank import RerankError

    try:
        reranker = _reranker(args)
    except (ValueError, ChatError) as exc:
        print(f"glean context: {exc}", file=sys.stderr)
        return 2
    _require_store(args.path)  # read-only: never create a store
    client = gleandb.PersistentClient(args.path)
    try:
        try:
            col = client.get_collection(args.collection)
        except Exception as exc:  # NotFoundError
            print(f"glean context: {exc}", file=sys.stderr)
            return 2
        try:
            with warnings.catch_warnings():  # a degraded re-rank is reported below, once
                warnings.simplefilter("ignore", RerankWarning)
                ctx = col.context(
                    args.question, candidates=args.candidates, where=args.where,
                    where_document=args.where_document, mode=args.mode, reranker=reranker, top_n=args.top_n,
                    max_tokens=args.max_tokens, threshold=args.threshold, order=args.order,
                    dedupe=args.dedupe or None, tokenizer=args.tokenizer, on_rerank_error=args.on_rerank_error,
                    deadline=args.deadline,
                )
        except (ValueError, RerankError, ChatError, ImportError) as exc:
            print(f"glean context: {exc}", file=sys.stderr)
            return 1
    finally:
        client.close()
    if args.json:
        print(json.dumps(ctx.to_dict(), indent=2, ensure_ascii=False, default=float))
    else:
        print(ctx.text)
        u = ctx.usage
        lat = ", ".join(f"{k} {v:.1f} ms" for k, v in u.latency_ms.items())
        print(f"-- {len(ctx.chunks)} chunks, {u.tokens}/{u.max_tokens} tokens ({u.tokenizer}); "
              f"{u.candidates} candidates, {u.model_calls} model calls, {u.input_tokens} in / {u.output_tokens} out "
              f"tokens; {lat}", file=sys.stderr)
        for w in u.warnings:
            print(f"-- warning: {w}", file=sys.stderr)
    return 0
