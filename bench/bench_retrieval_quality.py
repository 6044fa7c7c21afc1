"""Retrieval quality on a real text corpus with known-item queries: dense, BM25, RRF, weighted.

Corpus (real English text that ships with CPython, nothing downloaded): the
docstrings of the standard library's modules and public functions, classes and methods.
Each docstring with a one-paragraph summary of 4-40 words and a body of at
least 20 words becomes one passage = the body **without** the summary paragraph
(the object's name is not included either). Its known-item query is the summary
paragraph. So the query is never a verbatim part of the passage; the two
describe the same object in different words, the way a user's question and the
documentation do. Summaries that occur more than once (e.g. "Return self==value.")
and docstrings shared by several objects are dropped, so each query has exactly
one relevant passage; passages whose body still contains the summary text are
dropped (leakage). Paragraphs of the language reference's help topics
(``pydoc_data.topics``) are added as distractor passages (no query points at them).

Metrics per query (one relevant passage, rank r 1-based, or none in the top 10):
recall@10 = [r <= 10], nDCG@10 = 1/log2(r + 1) if r <= 10, MRR@10 = 1/r if r <= 10;
averaged over queries.

Run:  PYTHONPATH=src .venv/bin/python bench/bench_retrieval_quality.py [--max-passages 3000] [--queries 600]
Writes bench/results-retrieval-quality.txt.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import gleandb
from corpora import collect, distractors  # shared with bench_fusion_default.py

OUT = Path(__file__).with_name("results-retrieval-quality.txt")


def metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {
        "recall@10": sum(1 for r in ranks if r is not None and r <= 10) / n,
        "nDCG@10": sum(1 / math.log2(r + 1) for r in ranks if r is not None and r <= 10) / n,
        "MRR@10": sum(1 / r for r in ranks if r is not None and r <= 10) / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-passages", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    items = collect()
    rng = random.Random(args.seed)
    rng.shuffle(items)
    queries = items[: args.queries]
    extra = distractors()
    rng.shuffle(extra)
    passages = [(q, b) for q, _s, b in items] + extra
    passages = passages[: max(args.max_passages, len(queries))]
    n_doc = min(len(items), len(passages))
    print(f"corpus: {len(passages)} passages ({n_doc} stdlib docstrings, {len(passages) - n_doc} help-topic "
          f"paragraphs; {time.perf_counter() - t0:.1f} s to collect); {len(queries)} known-item queries", flush=True)

    ef = gleandb.DefaultEmbeddingFunction()
    with tempfile.TemporaryDirectory() as tmp:
        client = gleandb.PersistentClient(path=tmp)
        col = client.create_collection("stdlib-docs", embedding_function=ef, metadata={"hnsw:space": "cosine"})
        t0 = time.perf_counter()
        for i in range(0, len(passages), 256):
            chunk = passages[i : i + 256]
            col.add(ids=[q for q, _b in chunk], documents=[b for _q, b in chunk])
        col.flush()
        t_index = time.perf_counter() - t0
        print(f"indexed (embedding + BM25 + HNSW) in {t_index:.0f} s ({len(passages) / t_index:.0f} passages/s)", flush=True)

        # the same passages and vectors, BM25 with English stemming and stop words
        stemmed = client.create_collection("stdlib-docs-stemmed", embedding_function=ef,
                                           metadata={"hnsw:space": "cosine"},
                                           configuration={"fulltext": {"stemmer": "english", "stopwords": "english"}})
        got = col.get(include=["embeddings", "documents"])
        stemmed.add(ids=got["ids"], embeddings=got["embeddings"], documents=got["documents"])
        stemmed.flush()

        texts = [s for _q, s, _b in queries]
        t0 = time.perf_counter()
        qemb = ef.embed_query(texts) if hasattr(ef, "embed_query") else ef(texts)
        t_qemb = time.perf_counter() - t0
        configs = [
            ("dense", dict(mode="dense")),
            ("BM25", dict(mode="bm25")),
            ("hybrid RRF (k=60)", dict(mode="hybrid", fusion="rrf")),
            ("hybrid weighted (1:1)", dict(mode="hybrid", fusion="weighted")),
            ("BM25 stemmed", dict(mode="bm25", _col=stemmed)),
            ("hybrid RRF, stemmed", dict(mode="hybrid", fusion="rrf", _col=stemmed)),
            ("hybrid weighted, stemmed", dict(mode="hybrid", fusion="weighted", _col=stemmed)),
        ]
        rows = []
        for label, kw in configs:
            kw = dict(kw)
            target = kw.pop("_col", col)
            ranks: list[int | None] = []
            t0 = time.perf_counter()
            for (qual, summ, _b), e in zip(queries, qemb):
                res = target.retrieve(query_texts=[summ], query_embeddings=[e], n_results=10, include=[], **kw)
                ids = res["ids"][0]
                ranks.append(ids.index(qual) + 1 if qual in ids else None)
            ms = (time.perf_counter() - t0) / len(queries) * 1000
            rows.append((label, metrics(ranks), ms))
            print(f"  {label}: done ({ms:.1f} ms/query)", flush=True)

    lines = [
        "Retrieval quality, known-item queries on CPython standard-library docstrings",
        f"python {sys.version.split()[0]}; {len(passages)} passages ({n_doc} docstrings + {len(passages) - n_doc} "
        f"help-topic paragraphs as distractors), {len(queries)} queries (seed {args.seed})",
        "query = a docstring's summary paragraph; its one relevant passage = the rest of that docstring",
        "embedding: all-MiniLM-L6-v2 (gleandb DefaultEmbeddingFunction), cosine; BM25: collection default "
        "(k1/b from gleandb.index.fulltext, no stemming; 'stemmed' rows: English Snowball stemmer + English "
        "stop words, same vectors); candidates per ranker: 50",
        f"indexing {len(passages) / t_index:.0f} passages/s; query embedding {t_qemb / len(queries) * 1000:.1f} ms/query "
        "(not included below); timings on a shared 2-core machine, noisy",
        "",
        f"{'configuration':<26}{'recall@10':>10}{'nDCG@10':>10}{'MRR@10':>10}{'ms/query':>10}",
    ]
    for label, m, ms in rows:
        lines.append(f"{label:<26}{m['recall@10']:>10.3f}{m['nDCG@10']:>10.3f}{m['MRR@10']:>10.3f}{ms:>10.1f}")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    OUT.write_text(text)
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
