"""Build real-text stores with known-item golden sets, for ``glean eval run`` / ``glean eval tune``.

Corpora (text that ships with the machine, built deterministically, nothing downloaded):

- ``docstrings``: CPython standard-library docstrings; query = a docstring's summary
  paragraph, its one relevant passage = the rest of the docstring (the corpus and filters
  of bench_retrieval_quality.py), plus help-topic paragraphs as distractors;
- ``debian``: the descriptions of the installed Debian packages (``/var/lib/dpkg/status``);
  query = the one-line short description, relevant passage = the long description (at least
  15 words; packages sharing a short or long description are dropped).

Each store is embedded with the default model (all-MiniLM-L6-v2), cosine. Then run, e.g.::

    PYTHONPATH=src .venv/bin/python bench/bench_evals.py --out bench/.data/evals
    .venv/bin/glean eval run docstrings --path bench/.data/evals/docstrings \
        --golden bench/.data/evals/docstrings/golden.jsonl --configs default,dense,bm25,hybrid,hybrid-weighted
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import gleandb

sys.path.insert(0, str(Path(__file__).resolve().parent))


def docstrings(n_queries: int, seed: int) -> tuple[list[tuple[str, str]], list[dict]]:
    from bench_retrieval_quality import collect, distractors

    items = collect()
    rng = random.Random(seed)
    rng.shuffle(items)
    extra = distractors()
    rng.shuffle(extra)
    passages = [(q, b) for q, _s, b in items] + extra[:800]
    golden = [{"query_id": f"doc-{i:05d}", "query": s, "relevant": {q: 3}, "source": "benchmark",
               "provenance": {"corpus": "cpython-docstrings", "python": sys.version.split()[0], "seed": seed}}
              for i, (q, s, _b) in enumerate(items[:n_queries])]
    return passages, golden


def debian(n_queries: int, seed: int, status: str = "/var/lib/dpkg/status") -> tuple[list[tuple[str, str]], list[dict]]:
    pkgs = []
    for block in Path(status).read_text(encoding="utf-8", errors="replace").split("\n\n"):
        name = re.search(r"^Package: (.+)$", block, re.M)
        desc = re.search(r"^Description: (.*)\n((?: .*\n?)*)", block, re.M)
        if not name or not desc:
            continue
        lines = [ln[1:] for ln in desc.group(2).splitlines()]
        body = " ".join("" if ln.strip() == "." else ln.strip() for ln in lines)
        body = " ".join(body.split())
        if len(body.split()) >= 15:
            pkgs.append((name.group(1), desc.group(1).strip(), body))
    short_n: dict[str, int] = {}
    body_n: dict[str, int] = {}
    for _p, s, b in pkgs:
        short_n[s.lower()] = short_n.get(s.lower(), 0) + 1
        body_n[b] = body_n.get(b, 0) + 1
    pkgs = sorted((p, s, b) for p, s, b in pkgs if short_n[s.lower()] == 1 and body_n[b] == 1)
    rng = random.Random(seed)
    rng.shuffle(pkgs)
    passages = [(p, b) for p, _s, b in pkgs]
    golden = [{"query_id": f"deb-{i:05d}", "query": s, "relevant": {p: 3}, "source": "benchmark",
               "provenance": {"corpus": "debian-dpkg-status", "seed": seed}}
              for i, (p, s, _b) in enumerate(pkgs[:n_queries])]
    return passages, golden


def build(name: str, passages: list[tuple[str, str]], golden: list[dict], out: Path) -> None:
    path = out / name
    if (path / "golden.jsonl").exists():
        print(f"{name}: already built in {path}")
        return
    client = gleandb.PersistentClient(str(path))
    col = client.get_or_create_collection(name, embedding_function=gleandb.DefaultEmbeddingFunction(),
                                          metadata={"hnsw:space": "cosine"})
    t = time.perf_counter()
    for i in range(0, len(passages), 256):
        part = passages[i : i + 256]
        col.upsert(ids=[p for p, _ in part], documents=[b for _, b in part])
    col.flush()
    client.close()
    with open(path / "golden.jsonl", "w", encoding="utf-8") as f:
        for g in golden:
            f.write(json.dumps(g, ensure_ascii=False) + "\n")
    print(f"{name}: {len(passages)} passages, {len(golden)} queries, built in {time.perf_counter() - t:.0f} s -> {path}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / ".data" / "evals"))
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    build("docstrings", *docstrings(args.queries, args.seed), out)
    build("debian", *debian(args.queries, args.seed), out)


if __name__ == "__main__":
    main()
