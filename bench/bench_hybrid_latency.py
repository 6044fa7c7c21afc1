"""Query latency of BM25, dense, hybrid retrieve() and the Search API at 100k documents.

Data: bench/datasets.py (~40-word passages of real English text from CPython's
docs, 384-d vectors); all rows flushed into indexed segments first. Query texts are
4 words drawn from a random document (a keyword query that matches); query vectors
are the dataset's query vectors. Every call asks for 10 results; hybrid calls use
50 candidates per ranker (retrieve's default for n_results=10). Prints p50/p95 in
ms; single-threaded client, timings on a shared machine (noisy).

    PYTHONPATH=src .venv/bin/python bench/bench_hybrid_latency.py [--n 100000] [--data DIR] [--queries 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import datasets  # noqa: E402

import gleandb  # noqa: E402
from gleandb import Bm25, K, Knn, Rrf, Search  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--data", help="a dataset directory made by bench/datasets.py (default: generate/cache one)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default=str(HERE / "results-hybrid-latency.txt"))
    args = ap.parse_args()
    path = Path(args.data) if args.data else datasets.ensure_dataset(args.n)
    ds = datasets.Dataset(path, mmap=True)
    n = ds.n
    rng = np.random.default_rng(1)
    texts = []
    for i in rng.integers(0, n, size=args.queries):
        words = [w.strip(".,;:()'\"") for w in ds.documents[i].split()]
        words = [w for w in words if len(w) > 2]
        texts.append(" ".join(rng.choice(words, size=min(4, len(words)), replace=False)))
    qv = np.asarray(ds.queries[: args.queries], dtype=np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        client = gleandb.PersistentClient(path=tmp)
        col = client.create_collection("lat", embedding_function=None, metadata={"hnsw:space": "cosine"})
        t0 = time.perf_counter()
        for s in range(0, n, 5000):
            e = min(n, s + 5000)
            col.add(ids=ds.ids[s:e], embeddings=np.asarray(ds.embeddings[s:e]), documents=ds.documents[s:e],
                    metadatas=ds.metadatas[s:e])
        col.flush()
        t_ingest = time.perf_counter() - t0
        print(f"ingested and indexed {n} rows in {t_ingest:.0f} s", flush=True)

        where = {"bucket": {"$lt": 50}}
        cases = {
            "retrieve bm25": lambda i: col.retrieve(query_texts=[texts[i]], n_results=10, mode="bm25", include=[]),
            "retrieve dense": lambda i: col.retrieve(query_embeddings=[qv[i]], n_results=10, mode="dense", include=[]),
            "retrieve hybrid rrf": lambda i: col.retrieve(query_texts=[texts[i]], query_embeddings=[qv[i]],
                                                          n_results=10, include=[]),
            "retrieve hybrid weighted": lambda i: col.retrieve(query_texts=[texts[i]], query_embeddings=[qv[i]],
                                                               n_results=10, fusion="weighted", include=[]),
            "retrieve hybrid rrf, where 50%": lambda i: col.retrieve(query_texts=[texts[i]], query_embeddings=[qv[i]],
                                                                     n_results=10, where=where, include=[]),
            "search Rrf(Knn, Bm25) + documents": lambda i: col.search(Search().rank(Rrf([
                Knn(query=qv[i], limit=50, return_rank=True, default=50),
                Bm25(query=texts[i], limit=50, return_rank=True, default=50)])).limit(10).select(K.DOCUMENT, K.SCORE)),
        }
        rows = []
        for label, fn in cases.items():
            fn(0)  # warm
            lat = []
            for i in range(args.queries):
                t = time.perf_counter()
                fn(i)
                lat.append((time.perf_counter() - t) * 1000)
            rows.append((label, pct(lat, 50), pct(lat, 95)))
            print(f"  {label}: p50 {rows[-1][1]:.2f} ms", flush=True)

    lines = [f"Hybrid retrieval latency, {n} documents (~40 words, 384-d), {args.queries} queries, top 10",
             f"ingest + flush (HNSW + BM25 + trigram indexes) {t_ingest:.0f} s; shared 2-core machine, noisy", "",
             f"{'call':<38}{'p50 ms':>9}{'p95 ms':>9}"]
    lines += [f"{label:<38}{p50:>9.2f}{p95:>9.2f}" for label, p50, p95 in rows]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
