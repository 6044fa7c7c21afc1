"""``glean eval run`` / ``glean eval tune``: score and tune retrieval on a golden set from the shell.

Thin over ``gleandb.evals``: open the store, load the golden set, run, print the table
(and write ``--json`` / ``--html``). Bad input (a missing file, ids not in the collection, an
unknown config name) is one line on stderr and exit status 2; a failed run is status 1.
"""

from __future__ import annotations

import argparse
import json
import sys


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("collection")
    p.add_argument("--path", default="./data", help="store directory (default ./data)")
    p.add_argument("--golden", required=True, help="golden set (JSONL; see docs/evals.md)")
    p.add_argument("--k", type=int, default=10, help="cut-off of the metrics (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap, the permutation test and splits")
    p.add_argument("--llm-model", help="re-ranking model (enables the 'rerank' config)")
    p.add_argument("--llm-base-url", help="chat endpoint (default: OPENAI_BASE_URL / ANTHROPIC_BASE_URL or the official one)")
    p.add_argument("--llm-provider", choices=["openai", "anthropic"], default="openai")
    p.add_argument("--json", metavar="OUT.json", help="write the full report as JSON")
    p.add_argument("--html", metavar="REPORT.html", help="write a self-contained HTML report with plots")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("eval", help="evaluate and tune retrieval on a golden set",
                       description="Score retrieval configurations on a golden set (recall, precision, MRR, nDCG "
                       "with 95% bootstrap intervals and a paired test) and tune the collection's retrieval "
                       "configuration. See docs/evals.md.")
    esub = p.add_subparsers(dest="eval_command", required=True)

    run = esub.add_parser("run", help="score configurations on a golden set",
                          description="Run each configuration over the golden set's scorable queries and print "
                          "a table: nDCG@k [95% CI], recall@k, precision@k, MRR@k, ms/query, LLM cost/query and "
                          "the p-value against the best configuration.")
    _common(run)
    run.add_argument("--configs", default="default,dense,bm25,hybrid",
                     help="comma-separated: default, dense, bm25, hybrid, hybrid-weighted, rerank "
                     "(default: default,dense,bm25,hybrid)")
    run.add_argument("--split", choices=["tune", "test"], default=None, help="score one split only (default: all)")
    run.set_defaults(func=cmd_run)

    tune = esub.add_parser("tune", help="choose fusion, weights and candidates on the tune split",
                           description="Search fusion type, weights and candidate counts (and the re-ranking depth "
                           "with --llm-model) on the tune split, report the held-out test score, and with --apply "
                           "store the choice as the collection's retrieval configuration.")
    _common(tune)
    tune.add_argument("--apply", action="store_true", help="store the tuned configuration in the collection")
    tune.add_argument("--fraction", type=float, default=0.5,
                      help="share of queries put in the tune split when the set has no splits (default 0.5)")
    tune.set_defaults(func=cmd_tune)

    from gleandb.cli.eval_generate import add_parser as add_generate_parser

    add_generate_parser(esub)


def _reranker(args: argparse.Namespace):
    if not args.llm_model:
        return None
    from gleandb.rerank import LLM

    kw = {"provider": args.llm_provider}
    if args.llm_base_url:
        kw["base_url"] = args.llm_base_url
    return LLM(args.llm_model, **kw)


def _run(args: argparse.Namespace, what: str) -> int:
    import gleandb
    from gleandb import evals
    from gleandb.retrieval.llm import ChatError

    prog = f"glean eval {what}"
    try:
        golden = evals.GoldenSet.load(args.golden)
        reranker = _reranker(args)
    except (ValueError, ChatError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    from gleandb.cli.main import CommandError, _require_store

    try:
        _require_store(args.path)  # scoring and tuning never create a store
    except CommandError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    client = gleandb.PersistentClient(args.path)
    try:
        try:
            col = client.get_collection(args.collection)
        except Exception as exc:  # NotFoundError
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
        try:
            if what == "run":
                configs = [c for c in args.configs.split(",") if c.strip()]
                out = evals.evaluate(col, golden, configs=configs, k=args.k, split=args.split, reranker=reranker,
                                     seed=args.seed, progress=args.progress)
                report = out
            else:
                out = evals.tune(col, golden, k=args.k, reranker=reranker, fraction=args.fraction, seed=args.seed,
                                 apply=args.apply, progress=args.progress)
                report = out.report
        except (ValueError, ImportError) as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            print(f"{prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    finally:
        client.close()
    print(out.table())
    if args.json:
        data = out.to_json()
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, default=float)
    if args.html:
        report.save_html(args.html)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return _run(args, "run")


def cmd_tune(args: argparse.Namespace) -> int:
    return _run(args, "tune")
