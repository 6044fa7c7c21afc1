"""Shared text-search workload for bench_scale.py's engine children (gleandb, chromadb, LanceDB).

Two workloads, identical for every engine:

* keyword queries on the main dataset (bench/datasets.py): 4 words drawn from a random
  document, so each query matches (latency of BM25 / hybrid at the benchmark's size);
* a known-item corpus from bench/corpora.py (real text with one relevant passage per
  query and cached all-MiniLM-L6-v2 vectors): quality (nDCG@10, recall@10, MRR@10) and
  latency of dense, BM25 and hybrid search on its ``test`` split (the ``tune`` split
  chose gleandb's default fusion, so it is left out).
"""

from __future__ import annotations

import math

import numpy as np


def keyword_queries(documents: list[str], n_rows: int, count: int, seed: int) -> list[str]:
    """``count`` 4-word queries, each drawn from one random document among the first ``n_rows``."""
    rng = np.random.default_rng([seed, 77])
    out = []
    for i in rng.integers(0, n_rows, size=count):
        words = [w.strip(".,;:()'\"`[]{}") for w in documents[int(i)].split()]
        words = [w for w in words if len(w) > 2 and w.isascii() and w.replace("-", "").isalnum()]
        out.append(" ".join(rng.choice(words, size=min(4, len(words)), replace=False)) if words else "the")
    return out


def known_item(ranked: list[list[str]], relevant: list[str]) -> dict:
    """nDCG@10, recall@10 and MRR@10 of one relevant id per query (rank beyond 10 scores 0)."""
    ranks = [(r[:10].index(rel) + 1) if rel in r[:10] else None for r, rel in zip(ranked, relevant)]
    n = max(1, len(ranks))
    return {"ndcg10": sum(1 / math.log2(r + 1) for r in ranks if r) / n,
            "recall10": sum(1 for r in ranks if r) / n,
            "mrr10": sum(1 / r for r in ranks if r) / n, "queries": len(ranks)}


def load_corpus(name: str):
    """(passages [(id, text)], passage vectors, test queries [(text, relevant id)], query vectors)."""
    import corpora

    c = corpora.load(name)
    P, Q = corpora.embeddings(c)
    qs = [(i, q) for i, q in enumerate(c.queries) if q[3] == "test"]
    return (c.passages, np.asarray(P, dtype=np.float32),
            [(q[1], q[2]) for _i, q in qs], np.asarray(Q[[i for i, _q in qs]], dtype=np.float32))
