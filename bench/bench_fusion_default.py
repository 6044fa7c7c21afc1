"""Choose ``retrieve()``'s built-in fusion by measurement on several real corpora.

Corpora (``bench/corpora.py``, built offline and deterministically, cached under
``bench/.data/``): CPython docstrings (summary -> body), Debian package descriptions
(short -> long), man pages (NAME description without the command -> DESCRIPTION).
Each has known-item queries split by a seeded shuffle into ``tune`` and ``test``.

For every query, each single ranker's 50 best candidates (``retrieve(mode="dense")``,
``mode="bm25"``, and BM25 with English stemming and stop words on a second collection
with the same vectors) are computed once through gleandb and cached; fusions are then
computed from those lists with ``gleandb.retrieval.fusion`` (the functions ``retrieve()``
calls, ties to the passage inserted first, as in ``retrieve()``). The chosen default is
also run end to end through a plain ``col.retrieve()`` to check that the shipped default
is the measured one.

Selection rule (on the **tune** queries only): among fixed configurations over the
collection's default (unstemmed) BM25, the one with the largest worst-case nDCG@10
margin over the best single ranker (dense, BM25, stemmed BM25), worst over corpora.
The test split then reports how that choice holds on held-out queries.

Metrics per query (one relevant passage, rank r 1-based): nDCG@10 = 1/log2(r + 1),
recall@10 = [r <= 10], MRR@10 = 1/r, each 0 when r > 10; averaged over queries.

Run:  .venv/bin/python bench/bench_fusion_default.py [--corpora stdlib,debian,man] [--tune]
(``--tune`` also runs ``gleandb.evals.tune`` on each corpus's golden set.)
Writes bench/results-fusion-default.txt.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import corpora
import gleandb
from gleandb.retrieval import config as rconfig
from gleandb.retrieval import fusion

OUT = Path(__file__).with_name("results-fusion-default.txt")
DEPTH = 50  # candidates per ranker, retrieve()'s default for n_results=10
HIB = {"dense": False, "bm25": True, "bm25s": True}
GRID = (0.1, 0.25, 0.4, 0.5, 0.7, 1.0, 1.5)
STEMMED = {"fulltext": {"stemmer": "english", "stopwords": "english"}}


def rank_lists(c: corpora.Corpus) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """``lists[ranker][query id] = [(passage index, raw score), ...]`` best first (cached)."""
    cache = corpora.DATA / f"lists-{c.name}-{c.fingerprint()}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    P, Q = corpora.embeddings(c)
    index = {pid: i for i, (pid, _t) in enumerate(c.passages)}
    out: dict[str, dict[str, list]] = {"dense": {}, "bm25": {}, "bm25s": {}}
    with tempfile.TemporaryDirectory() as tmp:
        client = gleandb.PersistentClient(path=tmp)
        for label, conf in (("plain", None), ("stemmed", STEMMED)):
            col = client.create_collection(f"{c.name}-{label}", embedding_function=None, configuration=conf)
            for i in range(0, len(c.passages), 500):
                chunk = c.passages[i:i + 500]
                col.add(ids=[p for p, _ in chunk], documents=[t for _, t in chunk], embeddings=P[i:i + 500])
            col.flush()
            modes = ("dense", "bm25") if label == "plain" else ("bm25",)
            for qi, (qid, text, _rel, _split) in enumerate(c.queries):
                for mode in modes:
                    emb = [Q[qi]] if mode == "dense" else None
                    r = col.retrieve(query_texts=[text], query_embeddings=emb, mode=mode, n_results=DEPTH,
                                     candidates=DEPTH, include=[])
                    key = mode if label == "plain" else "bm25s"
                    out[key][qid] = [(index[i], s[mode]) for i, s in zip(r["ids"][0], r["ranker_scores"][0])]
    cache.write_text(json.dumps(out))
    return out


def fuse(lists: dict[str, list[tuple[int, float]]], method: str, weights: dict[str, float]) -> list[int]:
    """Top 10 passage indexes of one query's fused lists (ties: passage inserted first)."""
    if method == "rrf":
        fused = fusion.rrf({r: [k for k, _v in p] for r, p in lists.items()}, 60, weights)
    else:
        fn = {"weighted": fusion.weighted, "zscore": fusion.zscore, "adaptive": fusion.adaptive}[method]
        fused = fn(lists, {r: HIB[r] for r in lists}, weights)
    return [k for k, _s in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]


def metrics(ranked: list[list[int]], relevant: list[int]) -> dict[str, Any]:
    ranks = [(r.index(rel) + 1) if rel in r[:10] else None for r, rel in zip(ranked, relevant)]
    n = len(ranks)
    per_query = [1 / math.log2(r + 1) if r else 0.0 for r in ranks]
    return {"nDCG@10": sum(per_query) / n,
            "recall@10": sum(1 for r in ranks if r) / n,
            "MRR@10": sum(1 / r for r in ranks if r) / n,
            "per_query": per_query}


def paired_bootstrap(a: list[float], b: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b over the same queries and its 95 % paired-bootstrap interval."""
    d = np.asarray(a) - np.asarray(b)
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n, len(d)))
    means = d[idx].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def configurations() -> list[tuple[str, str, dict | None, str]]:
    """(label, method, weights, bm25 list) for every measured configuration."""
    out = [("dense", "single", None, "dense"), ("BM25", "single", None, "bm25"),
           ("BM25 stemmed", "single", None, "bm25s"), ("RRF 1:1 (old default)", "rrf", {"dense": 1, "bm25": 1}, "bm25")]
    for method in ("weighted", "zscore", "adaptive"):
        for wb in GRID:
            out.append((f"{method} 1:{wb:g}", method, {"dense": 1.0, "bm25": wb}, "bm25"))
    out += [("RRF 1:1, stemmed", "rrf", {"dense": 1, "bm25": 1}, "bm25s"),
            ("weighted 1:0.7, stemmed", "weighted", {"dense": 1.0, "bm25": 0.7}, "bm25s")]
    return out


def evaluate(c: corpora.Corpus, lists: dict) -> dict[str, dict[str, dict[str, float]]]:
    """``res[label][split] = metrics`` (plus the per-query oracle of dense vs BM25)."""
    index = {pid: i for i, (pid, _t) in enumerate(c.passages)}
    res: dict[str, dict[str, dict[str, float]]] = {}
    for label, method, weights, bm in configurations():
        res[label] = {}
        for split in ("tune", "test"):
            qs = c.split(split)
            ranked = []
            for qid, _t, _rel, _s in qs:
                if method == "single":
                    ranked.append([k for k, _v in lists[bm][qid][:10]])
                else:
                    per = {"dense": lists["dense"][qid], "bm25": lists[bm][qid]}
                    ranked.append(fuse({r if r == "dense" else bm: p for r, p in per.items()}, method,
                                       {"dense": weights["dense"], bm: weights["bm25"]}))
            res[label][split] = metrics(ranked, [index[rel] for _q, _t, rel, _s in qs])
    for split in ("tune", "test"):
        qs = c.split(split)
        best = []
        for qid, _t, rel, _s in qs:
            options = [[k for k, _v in lists[r][qid][:10]] for r in ("dense", "bm25")]
            best.append(max(options, key=lambda r: metrics([r], [index[rel]])["nDCG@10"]))
        res.setdefault("per-query oracle (dense or BM25)", {})[split] = metrics(best, [index[rel] for _q, _t, rel, _s in qs])
    return res


def end_to_end_default(c: corpora.Corpus) -> dict[str, float]:
    """A plain ``col.retrieve()`` (no fusion arguments) on the test queries: the shipped default."""
    P, Q = corpora.embeddings(c)
    qs = [(i, q) for i, q in enumerate(c.queries) if q[3] == "test"]
    ranked, relevant = [], []
    index = {pid: i for i, (pid, _t) in enumerate(c.passages)}
    with tempfile.TemporaryDirectory() as tmp:
        col = gleandb.PersistentClient(path=tmp).create_collection(c.name, embedding_function=None)
        for i in range(0, len(c.passages), 500):
            chunk = c.passages[i:i + 500]
            col.add(ids=[p for p, _ in chunk], documents=[t for _, t in chunk], embeddings=P[i:i + 500])
        col.flush()
        for qi, (_qid, text, rel, _s) in qs:
            r = col.retrieve(query_texts=[text], query_embeddings=[Q[qi]], n_results=10, include=[])
            ranked.append([index[i] for i in r["ids"][0]])
            relevant.append(index[rel])
    return metrics(ranked, relevant)


SINGLES = ("dense", "BM25", "BM25 stemmed")


def tuned(c: corpora.Corpus) -> str:
    """``gleandb.evals.tune`` on the corpus's golden set (tune split), its held-out table."""
    from gleandb import evals

    P, _Q = corpora.embeddings(c)
    with tempfile.TemporaryDirectory() as tmp:
        col = gleandb.PersistentClient(path=tmp).create_collection(
            c.name, embedding_function=gleandb.DefaultEmbeddingFunction())
        for i in range(0, len(c.passages), 500):
            chunk = c.passages[i:i + 500]
            col.add(ids=[p for p, _ in chunk], documents=[t for _, t in chunk], embeddings=P[i:i + 500])
        col.flush()
        result = evals.tune(col, str(corpora.DATA / f"golden-{c.name}.jsonl"), progress=False)
        return result.table()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpora", default="stdlib,debian,man")
    ap.add_argument("--tune", action="store_true",
                    help="also run gleandb.evals.tune on each corpus's golden set and report the held-out table")
    args = ap.parse_args()
    names = args.corpora.split(",")
    results, loaded, e2e = {}, {}, {}
    for name in names:
        t0 = time.perf_counter()
        c = corpora.load(name)
        loaded[name] = c
        lists = rank_lists(c)
        results[name] = evaluate(c, lists)
        e2e[name] = end_to_end_default(c)
        print(f"{name}: {len(c.passages)} passages, {len(c.queries)} queries ({time.perf_counter() - t0:.0f} s)",
              flush=True)

    def margin(name: str, label: str, split: str) -> float:
        r = results[name]
        return r[label][split]["nDCG@10"] - max(r[s][split]["nDCG@10"] for s in SINGLES)

    fixed = [label for label, method, _w, bm in configurations() if method != "single" and bm == "bm25"]
    chosen = max(fixed, key=lambda lb: (min(margin(n, lb, "tune") for n in names), lb))
    b = rconfig.BUILTIN
    shipped = f"{b['fusion']} 1:{b['weights']['bm25']:g}" if b["fusion"] != "rrf" else "RRF 1:1 (old default)"

    lines = ["Choosing retrieve()'s built-in fusion: known-item queries on real corpora, tune / test splits",
             f"python {sys.version.split()[0]}; embedding all-MiniLM-L6-v2 (default, l2 on unit vectors); "
             f"BM25 k1/b defaults; {DEPTH} candidates per ranker; weights written dense:bm25",
             "margin = nDCG@10 minus the best single ranker's (dense, BM25, BM25 stemmed) on the same split", ""]
    for name in names:
        c = loaded[name]
        lines.append(f"== {name}: {c.description}")
        lines.append(f"   {len(c.passages)} passages; {len(c.split('tune'))} tune + {len(c.split('test'))} test "
                     "queries (seed 0)" + (f"; {c.notes[0]}" if c.notes else ""))
        lines.append(f"{'configuration':<34}{'tune nDCG':>10}{'test nDCG':>10}{'recall@10':>10}{'MRR@10':>9}"
                     f"{'margin':>8}")
        for label in results[name]:
            r = results[name][label]
            m = "" if label in SINGLES or label.startswith("per-query") else f"{margin(name, label, 'test'):+8.3f}"
            lines.append(f"{label:<34}{r['tune']['nDCG@10']:>10.3f}{r['test']['nDCG@10']:>10.3f}"
                         f"{r['test']['recall@10']:>10.3f}{r['test']['MRR@10']:>9.3f}{m:>8}")
        m = e2e[name]
        lines.append(f"{'plain col.retrieve() (shipped)':<34}{'':>10}{m['nDCG@10']:>10.3f}{m['recall@10']:>10.3f}"
                     f"{m['MRR@10']:>9.3f}")
        lines.append("")
    lines.append("== worst case over corpora (margin over the best single ranker, nDCG@10)")
    lines.append(f"{'configuration':<34}{'tune':>8}{'test':>8}")
    for label in fixed:
        lines.append(f"{label:<34}{min(margin(n, label, 'tune') for n in names):>+8.3f}"
                     f"{min(margin(n, label, 'test') for n in names):>+8.3f}")
    lines.append("")
    lines.append(f"shipped default ({shipped}) minus the best single ranker on each corpus's test queries, "
                 "nDCG@10, 95 % paired bootstrap (2,000 resamples):")
    for name in names:
        r = results[name]
        best = max(SINGLES, key=lambda sg: r[sg]["test"]["nDCG@10"])
        if shipped in r:
            mean, lo, hi = paired_bootstrap(r[shipped]["test"]["per_query"], r[best]["test"]["per_query"])
            lines.append(f"  {name:<8} vs {best:<13} {mean:+.3f}  [{lo:+.3f}, {hi:+.3f}]")
    lines.append("")
    lines.append(f"chosen on the tune split (largest worst-case margin): {chosen}; "
                 f"held-out worst-case margin {min(margin(n, chosen, 'test') for n in names):+.3f}")
    lines.append(f"shipped built-in default (gleandb.retrieval.config.BUILTIN): {shipped}"
                 + ("" if shipped == chosen else "  ** differs from the measured choice **"))
    if args.tune:
        lines += ["", "== gleandb.evals.tune per corpus: grid searched on the tune split, scored on the test split "
                  "(queries embedded by the default model; 'default' = plain retrieve())"]
        for name in names:
            lines += [f"-- {name}", tuned(loaded[name]), ""]
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.write_text(text)
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
