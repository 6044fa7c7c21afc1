"""``glean eval generate COLLECTION``: write a golden set with a language model (docs/evals.md).

A thin layer over :func:`gleandb.evals.generate.generate`: it opens the store, reads the
examples and criteria files, builds the chat client and prints the cost report. Every
failure the user can fix (no such collection, empty collection, no API key, unreadable
file, a refused key) is one line on stderr and exit status 2; a run the endpoint stops is
status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

PROG = "glean eval generate"


def add_parser(eval_subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    p = eval_subparsers.add_parser(
        "generate",
        help="write a golden set of queries from the collection's documents with a language model",
        description="Generative benchmarking: an LLM judge keeps the documents a user would plausibly search "
        "for (--criteria), then writes one query per kept document in the style of your real queries "
        "(--examples). Each query's relevant document is the one it came from. Writes JSONL (the golden-set "
        "format) and prints calls, tokens and cost. The key comes from OPENAI_API_KEY / ANTHROPIC_API_KEY "
        "or --api-key-env. See docs/evals.md.",
    )
    p.add_argument("collection")
    p.add_argument("--path", default="./data", help="store directory (default ./data)")
    p.add_argument("--model", required=True, help="chat model, e.g. gpt-4o-mini or claude-haiku-4-5")
    p.add_argument("--provider", choices=["openai", "anthropic"], default="openai",
                   help="openai (any OpenAI-compatible endpoint) or anthropic (default openai)")
    p.add_argument("--base-url", help="chat endpoint (default: OPENAI_BASE_URL / ANTHROPIC_BASE_URL or the official one)")
    p.add_argument("--api-key-env", help="environment variable holding the API key "
                   "(default OPENAI_API_KEY / ANTHROPIC_API_KEY)")
    p.add_argument("--price", type=float, nargs=2, metavar=("IN", "OUT"),
                   help="USD per million input and output tokens, to report cost")
    p.add_argument("--n", type=int, default=100, help="queries wanted; bounds the calls (default 100)")
    p.add_argument("--examples", metavar="FILE", help="real user queries, one per line, to copy the style of")
    p.add_argument("--criteria", metavar="FILE", help="what makes a document worth a query, one criterion per line "
                   "(default: relevance and completeness)")
    p.add_argument("--context", help="one sentence: what the collection is and who searches it")
    p.add_argument("--where", type=json.loads, help="only documents matching this metadata filter (JSON)")
    p.add_argument("--seed", type=int, default=0, help="sampling and split seed (default 0)")
    p.add_argument("--tune-share", type=float, default=0.2, help="share of queries in the tune split (default 0.2)")
    p.add_argument("--concurrency", type=int, default=None, help="calls in flight (default: the client's, at most 8)")
    p.add_argument("-o", "--output", default="golden.jsonl", help="JSONL file to write (default golden.jsonl)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary")
    p.set_defaults(func=cmd_generate)
    return p


def _read_lines(path: str, what: str) -> list[str]:
    """Non-blank lines, ``#`` comments skipped; ValueError naming the file when unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {what} file {path!r}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise ValueError(f"{what} file {path!r} has no lines")
    return lines


def _client(args: argparse.Namespace):
    from gleandb.retrieval.llm import make_chat_client

    kw = {}
    if args.base_url:
        kw["base_url"] = args.base_url
    if args.price:
        kw["price"] = tuple(args.price)
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise ValueError(f"no API key: environment variable {args.api_key_env} is not set (--api-key-env)")
        kw["api_key"] = key
    return make_chat_client(args.provider, args.model, **kw)


def cmd_generate(args: argparse.Namespace) -> int:
    import gleandb
    from gleandb.evals.generate import GenerationError, generate
    from gleandb.retrieval.llm import ChatAuthError, ChatError

    def fail(msg: str, code: int = 2) -> int:
        print(f"{PROG}: {msg}", file=sys.stderr)
        return code

    try:
        examples = _read_lines(args.examples, "examples") if args.examples else None
        criteria = _read_lines(args.criteria, "criteria") if args.criteria else None
        llm = _client(args)
    except (ValueError, ChatError) as exc:
        return fail(str(exc))
    from gleandb.cli.main import _has_catalog

    if not Path(args.path).is_dir() or not _has_catalog(args.path):
        return fail(f"no store at {args.path!r} (--path; nothing was created)")
    out = Path(args.output)
    if not out.parent.is_dir():
        return fail(f"cannot write {args.output!r}: folder {str(out.parent)!r} does not exist (-o)")
    client = gleandb.PersistentClient(args.path)
    try:
        try:
            col = client.get_collection(args.collection)
        except Exception:  # NotFoundError
            names = sorted(c.name for c in client.list_collections())
            return fail(f"collection {args.collection!r} not found in {args.path!r} (collections: {names})")
        if col.count() == 0:
            return fail(f"collection {args.collection!r} is empty: add documents before generating queries")
        try:
            golden = generate(col, llm, n=args.n, example_queries=examples, criteria=criteria, context=args.context,
                              where=args.where, seed=args.seed, tune_share=args.tune_share,
                              concurrency=args.concurrency, progress=None, output=out)
        except ValueError as exc:
            return fail(str(exc))
        except ChatAuthError as exc:
            return fail(str(exc))
        except (GenerationError, ChatError) as exc:
            return fail(str(exc), 1)
    finally:
        client.close()
        llm.close()
    if args.json:
        print(json.dumps(golden.stats.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        print(golden.stats.summary())
        print(f"wrote {len(golden)} queries to {out}")
    return 0
