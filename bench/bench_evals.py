"""``glean eval run`` and ``glean eval tune`` on real corpora, end to end through the CLI.

The corpora are those of ``bench/corpora.py`` (text that ships on the machine, known-item
queries built deterministically, split tune / test by a seeded shuffle):

- ``stdlib``: CPython standard-library docstrings, summary paragraph -> rest of the docstring;
- ``debian``: Debian package descriptions, short description -> long description;
- ``man``: section-1 man pages, NAME description (command name removed) -> DESCRIPTION.

For each corpus a persistent store is built under ``bench/.data/evals/NAME`` from the cached
passages and all-MiniLM-L6-v2 vectors (``corpora.embeddings``; the collection keeps the
default embedding function, so ``glean eval`` embeds the queries itself, as a user's store
would), then the two commands run as a user would type them::

    glean eval run NAME --path bench/.data/evals/NAME --golden bench/.data/golden-NAME.jsonl \\
        --configs default,dense,bm25,hybrid,hybrid-weighted --split test
    glean eval tune NAME --path bench/.data/evals/NAME --golden bench/.data/golden-NAME.jsonl

``default`` is a plain ``retrieve()`` (the built-in default, z-score 1 : 0.7); ``hybrid`` is
RRF 1:1 (the default before it); ``hybrid-weighted`` is weighted 1 : 0.25.

Run:  .venv/bin/python bench/bench_evals.py [--corpora stdlib,debian,man]
Writes bench/results-evals.txt (the tables as printed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpora  # noqa: E402

import gleandb  # noqa: E402

OUT = HERE / "results-evals.txt"
STORES = corpora.DATA / "evals"
CONFIGS = "default,dense,bm25,hybrid,hybrid-weighted"


def build(name: str) -> Path:
    """A persistent store holding the corpus (vectors from the cache), built once."""
    path = STORES / name
    done = path / "BUILT"
    if done.exists():
        return path
    c = corpora.load(name)
    p_vecs, _q = corpora.embeddings(c)
    client = gleandb.PersistentClient(str(path))
    col = client.get_or_create_collection(name, embedding_function=gleandb.DefaultEmbeddingFunction(),
                                          metadata={"hnsw:space": "cosine"})
    for i in range(0, len(c.passages), 1000):
        part = c.passages[i : i + 1000]
        col.upsert(ids=[p for p, _ in part], documents=[t for _, t in part], embeddings=p_vecs[i : i + len(part)])
    col.flush()
    client.close()
    done.write_text(c.fingerprint())
    return path


def glean(*args: str) -> str:
    cmd = [str(Path(sys.executable).with_name("glean")), *args, "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpora", default="stdlib,debian,man")
    args = ap.parse_args()
    lines = [__doc__.split("\n")[0], ""]
    for name in args.corpora.split(","):
        t = time.perf_counter()
        path = build(name)
        golden = str(corpora.DATA / f"golden-{name}.jsonl")
        c = corpora.load(name)
        head = (f"== {name}: {c.description}; {len(c.passages)} passages, {len(c.queries)} queries "
                f"({len(c.split('tune'))} tune / {len(c.split('test'))} test)")
        run = glean("eval", "run", name, "--path", str(path), "--golden", golden, "--configs", CONFIGS,
                    "--split", "test")
        tune = glean("eval", "tune", name, "--path", str(path), "--golden", golden)
        block = [head, f"$ glean eval run {name} --configs {CONFIGS} --split test", run.rstrip(),
                 f"$ glean eval tune {name}", tune.rstrip(), f"({time.perf_counter() - t:.0f} s)", ""]
        print("\n".join(block), flush=True)
        lines += block
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
