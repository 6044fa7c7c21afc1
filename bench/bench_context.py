"""Benchmark of ``Collection.context`` on 100k documents (printed; results in bench/results-context.txt).

1. The pipeline's own overhead: everything except model calls -- first-stage hybrid
   retrieve of 200 candidates (dense + BM25, RRF), hydration with embeddings, dedupe,
   a zero-latency in-process re-ranker, token counting and packing into 4,000 tokens --
   p50 / p95 over the queries (target p50 <= 20 ms). Query vectors are the dataset's
   precomputed ones (documents are real text, vectors synthetic: bench/datasets.py), so
   query embedding is not in the figure; its cost with the default model is measured
   separately when the model package is installed.
2. Model calls and tokens per query for each LLM re-ranker mode (pointwise at several
   batch sizes, listwise), through the real prompt building and parsing, against an
   in-process fake model that answers instantly; input/output tokens are counted with
   o200k_base on the real prompts and answers (what an OpenAI model would bill).

    PYTHONPATH=src .venv/bin/python bench/bench_context.py [--n 100000] [--queries 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import datasets  # noqa: E402

import gleandb  # noqa: E402
from gleandb.retrieval.llm import ChatReply, OpenAIChat  # noqa: E402
from gleandb.retrieval.packing import token_counter  # noqa: E402


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def build_store(ds: datasets.Dataset, path: Path) -> None:
    client = gleandb.PersistentClient(str(path))
    col = client.create_collection("bench", embedding_function=None, metadata={"hnsw:space": "cosine"})
    t = time.perf_counter()
    for s in range(0, ds.n, 5000):
        e = min(ds.n, s + 5000)
        col.add(ids=ds.ids[s:e], embeddings=ds.embeddings[s:e], documents=ds.documents[s:e],
                metadatas=ds.metadatas[s:e])
    col.flush()
    print(f"  ingested {ds.n:,} rows (flushed, indexed) in {time.perf_counter() - t:.1f} s", flush=True)
    client.close()


def questions(ds: datasets.Dataset, n: int) -> list[str]:
    """Question-like texts: 6-10 consecutive words of random documents (so BM25 has real work)."""
    rng = np.random.default_rng(11)
    out = []
    for i in rng.choice(ds.n, size=n, replace=False):
        words = re.findall(r"[A-Za-z]+", ds.documents[i])
        k = int(rng.integers(6, 11))
        s = int(rng.integers(0, max(1, len(words) - k)))
        out.append("How does " + " ".join(words[s : s + k]).lower() + " work?")
    return out


class InstantChat(OpenAIChat):
    """The re-rankers' chat client with the network replaced by an instant local answer
    (fake_llm.default_answer: word overlap); usage counted with o200k_base on the real texts."""

    def __init__(self, count):
        super().__init__("gpt-4.1-mini", base_url="http://127.0.0.1:9/v1", api_key="unused")
        self._count = count

    def complete(self, system, messages, usage=None, max_tokens=None):
        from fake_llm import Request, default_answer

        req = Request("/v1/chat/completions", {}, {"messages": [{"role": "system", "content": system}, *messages]})
        text = default_answer(req)
        # a chat template adds a few tokens per message; 4 is OpenAI's documented figure
        tin = self._count(system) + sum(self._count(m["content"]) for m in messages) + 4 * (len(messages) + 1)
        tout = self._count(text)
        if usage is not None:
            usage.add(calls=1, input_tokens=tin, output_tokens=tout)
        return ChatReply(text, tin, tout, None, 0.0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--token-queries", type=int, default=20, help="queries per re-ranker mode for call/token counts")
    ap.add_argument("--out", default=str(HERE / "results-context.txt"))
    args = ap.parse_args()
    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    t_all = time.perf_counter()
    ds = datasets.Dataset(datasets.ensure_dataset(args.n))
    store = HERE / ".data" / f"context-store-n{args.n}"
    if not (store / "ok").exists():
        shutil.rmtree(store, ignore_errors=True)
        build_store(ds, store)
        (store / "ok").write_text("1")
    client = gleandb.PersistentClient(str(store))
    col = client.get_collection("bench", embedding_function=None)
    qs = questions(ds, args.queries)
    qv = ds.queries[: args.queries]

    say(f"Collection.context benchmark -- n={col.count():,} documents (real text, synthetic 384-d vectors), "
        f"candidates=200, max_tokens=4000, top_n=20")
    load = os.getloadavg()
    say(f"machine: {platform.processor() or platform.machine()} | cores={os.cpu_count()} | load avg "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores shared with other jobs: timings are noisy)")
    say(f"python {platform.python_version()} numpy {np.__version__} gleandb {gleandb.__version__}")
    say("")

    # warm up: the BPE ranks (about 2 s, once per process), index pages, caches
    count_o200k, tok_name = token_counter("gpt-4.1-mini")
    instant = gleandb.rerank.Function(lambda q, docs: [float(len(docs) - i) for i in range(len(docs))],
                                      name="instant")
    for i in range(5):
        col.context(qs[i], query_embedding=qv[i], reranker=instant, tokenizer="gpt-4.1-mini")

    # 1. overhead
    say("1. pipeline overhead per query, no model calls (zero-latency in-process re-ranker), "
        f"{args.queries} queries, precomputed query vectors")
    header = (f"{'configuration':<50} {'p50 ms':>7} {'p95 ms':>7} {'p50 w/o retrieve':>16}   "
              f"stage p50s: retrieve / dedupe / rerank / pack")
    say(header)
    say("-" * len(header))
    configs = [
        ("hybrid, dedupe 0.95, o200k tokens (gpt-4.1-mini)", dict(tokenizer="gpt-4.1-mini")),
        ("hybrid, dedupe 0.95, approx tokens (chars/4)", dict(tokenizer=None)),
        ("hybrid, dedupe off, o200k tokens", dict(tokenizer="gpt-4.1-mini", dedupe=None)),
        ("hybrid, order=ends, o200k tokens", dict(tokenizer="gpt-4.1-mini", order="ends")),
        ("dense only, dedupe 0.95, o200k tokens", dict(tokenizer="gpt-4.1-mini", mode="dense")),
        ("bm25 only, dedupe 0.95, o200k tokens", dict(tokenizer="gpt-4.1-mini", mode="bm25")),
        ("hybrid, no re-ranker, o200k tokens", dict(tokenizer="gpt-4.1-mini", reranker=None)),
    ]
    p50_main = None
    detail = {}
    for name, kw in configs:
        kw = {"reranker": instant, **kw}
        tot, own, st = [], [], {"retrieve": [], "dedupe": [], "rerank": [], "pack": []}
        for q, v in zip(qs, qv):
            t = time.perf_counter()
            ctx = col.context(q, query_embedding=v, candidates=200, top_n=20, max_tokens=4000, **kw)
            tot.append((time.perf_counter() - t) * 1000)
            own.append(tot[-1] - ctx.usage.latency_ms["retrieve"])
            for k in st:
                st[k].append(ctx.usage.latency_ms[k])
        if p50_main is None:
            p50_main, own_main = pct(tot, 50), pct(own, 50)
            detail = ctx.usage.to_dict()
        say(f"{name:<50} {pct(tot, 50):>7.2f} {pct(tot, 95):>7.2f} {pct(own, 50):>16.2f}   "
            + " / ".join(f"{pct(st[k], 50):.2f}" for k in st))
    ret = []
    for q, v in zip(qs, qv):
        t = time.perf_counter()
        col.retrieve(query_texts=[q], query_embeddings=[v], n_results=200, candidates=200,
                     include=["documents", "metadatas", "embeddings"])
        ret.append((time.perf_counter() - t) * 1000)
    say(f"{'  for reference: col.retrieve(200) alone':<50} {pct(ret, 50):>7.2f} {pct(ret, 95):>7.2f}")
    verdict = "PASS" if p50_main <= 20 else "FAIL"
    say(f"target: p50 <= 20 ms for the first configuration: {p50_main:.2f} ms -> {verdict} "
        f"(of which {own_main:.2f} ms after the first stage)")
    say(f"last context of the first configuration: {detail['candidates']} candidates, "
        f"{detail['dropped']['duplicates']} duplicates dropped, {detail['tokens']} tokens packed "
        f"({detail['tokenizer']}), dropped {detail['dropped']}")

    # query embedding, separately
    try:
        from gleandb.embeddings.functions import DefaultEmbeddingFunction

        ef = DefaultEmbeddingFunction()
        ef([qs[0]])
        te = []
        for q in qs[:50]:
            t = time.perf_counter()
            ef([q])
            te.append((time.perf_counter() - t) * 1000)
        say(f"query embedding with the default model (all-MiniLM-L6-v2, numpy), one question: "
            f"p50 {pct(te, 50):.2f} ms, p95 {pct(te, 95):.2f} ms (not included above)")
    except Exception as exc:  # the model package is optional
        say(f"query embedding: not measured ({type(exc).__name__}: {exc})")
    say("")

    # 2. calls and tokens per re-ranker mode
    say(f"2. model calls and tokens per query by re-ranker mode ({args.token_queries} queries, 200 candidates "
        f"minus duplicates; documents cut at 2,000 chars in prompts; tokens = o200k_base of the real prompts "
        f"and answers, +4 per message)")
    header = f"{'re-ranker':<40} {'calls':>6} {'input tok':>10} {'output tok':>11} {'sequential':>11}"
    say(header)
    say("-" * len(header))
    modes = [(f"LLM pointwise, batch_size={b}", lambda b=b: gleandb.rerank.LLM(client=InstantChat(count_o200k),
                                                                                batch_size=b))
             for b in (5, 10, 20, 50)]
    modes.append(("LLMListwise window=20 step=10", lambda: gleandb.rerank.LLMListwise(
        client=InstantChat(count_o200k), window=20, step=10)))
    modes.append(("LLMListwise window=40 step=20", lambda: gleandb.rerank.LLMListwise(
        client=InstantChat(count_o200k), window=40, step=20)))
    for name, make in modes:
        calls, tin, tout = [], [], []
        for q, v in zip(qs[: args.token_queries], qv):
            ctx = col.context(q, query_embedding=v, reranker=make(), tokenizer="gpt-4.1-mini")
            calls.append(ctx.usage.model_calls)
            tin.append(ctx.usage.input_tokens)
            tout.append(ctx.usage.output_tokens)
        seq = "yes" if "Listwise" in name else "no"
        say(f"{name:<40} {np.mean(calls):>6.1f} {np.mean(tin):>10,.0f} {np.mean(tout):>11,.0f} {seq:>11}")
    say("pointwise batches run in parallel (max_concurrency=8 by default): wall time ~ one call per 8 batches;")
    say("listwise windows run one after another: wall time ~ calls x one call's latency.")
    say("")
    load = os.getloadavg()
    say(f"total benchmark time {time.perf_counter() - t_all:.0f} s; load avg at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    client.close()
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
