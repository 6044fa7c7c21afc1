"""Deterministic, offline benchmark data for bench_vs_chroma.py.

Everything is generated from a seed and cached under ``bench/.data/`` (gitignored)
as ``.npy`` / ``.jsonl`` files, so both engine subprocesses load *identical* data
quickly and repeated runs skip generation.

What is generated (``n`` rows):

* ``embeddings.npy``  n x 384 float32, L2-normalised.  They imitate sentence
  embeddings: a Gaussian mixture of a few hundred centres (Zipf-ish weights)
  living in a low-rank (48-d) subspace, plus a shared "anisotropy" offset that
  all sentence-embedding models show, plus full-rank isotropic noise.
* ``queries.npy``     1,000 query vectors drawn from the same mixture
  (fresh draws, not copies of rows).
* ``extra.npy``       a pool of extra rows (same distribution) used by the
  upsert benchmark.
* ``documents.jsonl`` ~40-word documents cut from real English text that ships
  with every CPython: ``pydoc_data.topics`` (the Python language reference
  as used by ``help()``) plus docstrings of standard-library modules.
* ``metadatas.jsonl`` metadata dicts with ints, strings, bools and a float:
  ``bucket`` int uniform in 0..99 (so ``{"bucket": {"$lt": 10}}`` selects 10%),
  ``year`` int, ``category`` str, ``lang`` str, ``flag`` bool, ``score`` float.
* ``meta.json``       parameters plus the chosen ``$contains`` word and
  ``$regex`` pattern (chosen to match a few % of documents) and their exact
  match counts.

Ground truth for recall (exact cosine top-k, optionally filtered by
``bucket < t``) is computed with numpy brute force by :func:`ground_truth` and
cached next to the data.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np

DATA_VERSION = 1
DIM = 384
N_QUERIES = 1000
DATA_ROOT = Path(__file__).resolve().parent / ".data"

CATEGORIES = [
    "reference", "tutorial", "howto", "faq", "library", "glossary", "news",
    "blog", "email", "ticket", "review", "manual", "spec", "paper", "chat",
    "forum", "wiki", "note", "memo", "code",
]
LANGS = ["en", "en", "en", "en", "de", "fr", "es", "ja"]


def id_for(i: int) -> str:
    return f"doc-{i:07d}"


# ---------------------------------------------------------------------------
# text corpus
# ---------------------------------------------------------------------------

_STDLIB_MODULES = [
    "os", "os.path", "sys", "re", "json", "pathlib", "collections", "itertools",
    "functools", "typing", "dataclasses", "enum", "abc", "argparse", "logging",
    "subprocess", "threading", "multiprocessing", "asyncio", "socket", "ssl",
    "http.client", "urllib.request", "email.message", "csv", "sqlite3",
    "datetime", "decimal", "fractions", "statistics", "random", "math",
    "string", "textwrap", "difflib", "heapq", "bisect", "array", "struct",
    "codecs", "io", "tempfile", "shutil", "glob", "fnmatch", "zipfile",
    "tarfile", "gzip", "hashlib", "hmac", "secrets", "uuid", "pickle", "copy",
    "pprint", "inspect", "ast", "dis", "tokenize", "unittest", "doctest",
    "contextlib", "weakref", "gc", "traceback", "warnings", "time", "calendar",
    "locale", "gettext", "configparser", "shelve", "queue", "sched", "selectors",
    "signal", "mmap", "xml.etree.ElementTree", "html.parser", "mailbox",
    "smtplib", "ftplib", "imaplib", "optparse", "getopt", "cmd", "shlex",
    "pydoc", "timeit", "trace", "zoneinfo", "graphlib", "operator", "numbers",
    "cmath", "reprlib", "types", "importlib", "pkgutil", "zipimport", "venv",
]

_CODE_LINE = re.compile(r"^\s|>>>|\.\.\. |^[-=*~^]{3,}")


def _clean_block(text: str) -> list[str]:
    """Keep prose lines of a help text / docstring, return sentences."""
    paras, cur = [], []
    for line in text.splitlines():
        if not line.strip():
            if cur:
                paras.append(" ".join(cur))
                cur = []
            continue
        if _CODE_LINE.search(line) or line.count("(") + line.count("=") > 4:
            if cur:
                paras.append(" ".join(cur))
                cur = []
            continue
        cur.append(line.strip())
    if cur:
        paras.append(" ".join(cur))
    sentences = []
    for p in paras:
        p = re.sub(r"\s+", " ", p).strip()
        if len(p.split()) < 6:
            continue
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", p):
            s = s.strip()
            if len(s.split()) >= 4 and sum(c.isalpha() for c in s) > 0.6 * len(s):
                sentences.append(s)
    return sentences


def load_corpus_sentences() -> list[str]:
    """Real English prose that ships with CPython (no downloads)."""
    import importlib
    import warnings

    sentences: list[str] = []
    import pydoc_data.topics as topics

    for key in sorted(topics.topics):
        sentences.extend(_clean_block(topics.topics[key]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in _STDLIB_MODULES:
            try:
                mod = importlib.import_module(name)
            except Exception:
                continue
            docs = [mod.__doc__ or ""]
            for attr in sorted(dir(mod)):
                if attr.startswith("_"):
                    continue
                try:
                    obj = getattr(mod, attr)
                except Exception:
                    continue
                d = getattr(obj, "__doc__", None)
                if isinstance(d, str) and getattr(obj, "__module__", name) == name:
                    docs.append(d)
            for d in docs:
                sentences.extend(_clean_block(d))
    # de-duplicate while keeping order
    seen, out = set(), []
    for s in sentences:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def make_documents(n: int, rng: np.random.Generator) -> list[str]:
    sentences = load_corpus_sentences()
    words_per_sentence = [s.split() for s in sentences]
    m = len(words_per_sentence)
    starts = rng.integers(0, m, size=n)
    lengths = rng.integers(30, 51, size=n)  # ~40 words on average
    docs = []
    for st, ln in zip(starts.tolist(), lengths.tolist()):
        words: list[str] = []
        j = st
        while len(words) < ln:
            words.extend(words_per_sentence[j % m])
            j += 1
        docs.append(" ".join(words[:ln]))
    return docs


# ---------------------------------------------------------------------------
# embeddings
# ---------------------------------------------------------------------------


class _Mixture:
    def __init__(self, seed: int, dim: int = DIM, n_centres: int = 300, rank: int = 48):
        rng = np.random.default_rng([seed, 1])
        basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)))  # dim x rank orthonormal
        self.basis = basis.astype(np.float32)
        self.centres = rng.standard_normal((n_centres, rank)).astype(np.float32)
        w = 1.0 / np.arange(1, n_centres + 1) ** 0.8  # Zipf-ish cluster sizes
        self.weights = w / w.sum()
        self.spread = rng.uniform(0.35, 0.7, size=n_centres).astype(np.float32)
        offset = rng.standard_normal(dim).astype(np.float32)
        self.offset = 1.2 * offset / np.linalg.norm(offset)  # anisotropy: common direction
        self.dim, self.rank, self.n_centres = dim, rank, n_centres

    def sample(self, n: int, rng: np.random.Generator, chunk: int = 50_000) -> np.ndarray:
        out = np.empty((n, self.dim), dtype=np.float32)
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            m = hi - lo
            c = rng.choice(self.n_centres, size=m, p=self.weights)
            z = self.centres[c] + self.spread[c, None] * rng.standard_normal((m, self.rank), dtype=np.float32)
            x = z @ self.basis.T
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            x += self.offset / np.sqrt(1.0 + 1.2**2)
            x += (0.35 / np.sqrt(self.dim)) * rng.standard_normal((m, self.dim), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[lo:hi] = x
        return out


def make_metadatas(n: int, rng: np.random.Generator) -> list[dict]:
    bucket = rng.integers(0, 100, size=n)
    year = rng.integers(1990, 2026, size=n)
    cat = rng.integers(0, len(CATEGORIES), size=n)
    lang = rng.integers(0, len(LANGS), size=n)
    flag = rng.random(n) < 0.3
    score = np.round(rng.random(n), 4)
    return [
        {
            "bucket": int(bucket[i]),
            "year": int(year[i]),
            "category": CATEGORIES[cat[i]],
            "lang": LANGS[lang[i]],
            "flag": bool(flag[i]),
            "score": float(score[i]),
        }
        for i in range(n)
    ]


# ---------------------------------------------------------------------------
# document filters
# ---------------------------------------------------------------------------

_REGEX_CANDIDATES = [
    r"\b[Rr]aise[sd]? (?:a|an|the) [A-Z][A-Za-z]+",
    r"\breturn(?:s|ed)? (?:a|an|the) new [a-z]+",
    r"\b[a-z]+ing (?:a|the) file\b",
    r"\bmust be (?:a|an) [a-z]+",
    r"\b(?:is|are) (?:not )?supported\b",
    r"\bdefault(?:s)? (?:is|to) (?:None|True|False)\b",
]


def choose_doc_filters(docs: list[str], target: float = 0.03) -> dict:
    n = len(docs)
    df: dict[str, int] = {}
    for d in docs:
        for w in set(re.findall(r"\b[a-z]{6,}\b", d)):
            df[w] = df.get(w, 0) + 1
    cands = sorted(
        (w for w, c in df.items() if 0.5 * target * n <= c <= 2 * target * n),
        key=lambda w: (abs(df[w] / n - target), w),
    )[:40]
    best, best_cnt = None, None
    for w in cands:  # verify with substring semantics ($contains is a substring test)
        cnt = sum(1 for d in docs if w in d)
        if best is None or abs(cnt / n - target) < abs(best_cnt / n - target):
            best, best_cnt = w, cnt
    if best is None:
        best, best_cnt = "the", sum(1 for d in docs if "the" in d)
    regex, regex_cnt = None, None
    for pat in _REGEX_CANDIDATES:
        rx = re.compile(pat)
        cnt = sum(1 for d in docs if rx.search(d))
        if regex is None or abs(cnt / n - 0.02) < abs(regex_cnt / n - 0.02):
            regex, regex_cnt = pat, cnt
    return {"contains": best, "contains_count": best_cnt, "regex": regex, "regex_count": regex_cnt}


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def dataset_dir(n: int, seed: int) -> Path:
    return DATA_ROOT / f"ds-v{DATA_VERSION}-n{n}-s{seed}"


def extra_rows(n: int) -> int:
    return max(1000, min(10000, n // 5))


def ensure_dataset(n: int, seed: int = 42, verbose: bool = True) -> Path:
    d = dataset_dir(n, seed)
    if (d / "meta.json").exists():
        return d
    t0 = time.perf_counter()
    tmp = d.with_name(d.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    mix = _Mixture(seed)
    emb = mix.sample(n, np.random.default_rng([seed, 2]))
    queries = mix.sample(N_QUERIES, np.random.default_rng([seed, 3]))
    n_extra = extra_rows(n)
    extra = mix.sample(n_extra, np.random.default_rng([seed, 4]))
    docs = make_documents(n + n_extra, np.random.default_rng([seed, 5]))
    metas = make_metadatas(n + n_extra, np.random.default_rng([seed, 6]))
    np.save(tmp / "embeddings.npy", emb)
    np.save(tmp / "queries.npy", queries)
    np.save(tmp / "extra.npy", extra)
    with open(tmp / "documents.jsonl", "w") as f:
        for doc in docs:
            f.write(json.dumps(doc) + "\n")
    with open(tmp / "metadatas.jsonl", "w") as f:
        for m in metas:
            f.write(json.dumps(m) + "\n")
    filters = choose_doc_filters(docs[:n])
    meta = {
        "version": DATA_VERSION, "n": n, "seed": seed, "dim": DIM,
        "n_queries": N_QUERIES, "n_extra": n_extra, **filters,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    try:
        tmp.rename(d)
    except OSError:  # another process won the race
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        print(f"[datasets] generated n={n} seed={seed} in {time.perf_counter() - t0:.1f}s -> {d}", flush=True)
    return d


class Dataset:
    """Loaded view of a cached dataset (rows 0..n-1 are ingested; extra rows follow)."""

    def __init__(self, path: Path | str, mmap: bool = False):
        self.path = Path(path)
        self.meta = json.loads((self.path / "meta.json").read_text())
        mode = "r" if mmap else None
        self.embeddings = np.load(self.path / "embeddings.npy", mmap_mode=mode)
        self.queries = np.load(self.path / "queries.npy")
        self.extra = np.load(self.path / "extra.npy")
        with open(self.path / "documents.jsonl") as f:
            self.documents = [json.loads(line) for line in f]
        with open(self.path / "metadatas.jsonl") as f:
            self.metadatas = [json.loads(line) for line in f]
        self.n = self.meta["n"]
        self.ids = [id_for(i) for i in range(self.n + self.meta["n_extra"])]

    def bucket_array(self) -> np.ndarray:
        return np.array([m["bucket"] for m in self.metadatas[: self.n]], dtype=np.int32)


def ground_truth(ds: Dataset, n_queries: int, k: int = 10, bucket_lt: int | None = None) -> np.ndarray:
    """Exact cosine top-k row indices (n_queries x k), cached under the dataset dir."""
    name = f"gt-q{n_queries}-k{k}-{'all' if bucket_lt is None else f'lt{bucket_lt}'}.npy"
    p = ds.path / name
    if p.exists():
        return np.load(p)
    X = np.asarray(ds.embeddings, dtype=np.float32)
    rows = np.arange(ds.n)
    if bucket_lt is not None:
        rows = rows[ds.bucket_array() < bucket_lt]
        X = X[rows]
    Q = ds.queries[:n_queries]
    out = np.empty((len(Q), k), dtype=np.int64)
    for lo in range(0, len(Q), 100):
        s = Q[lo : lo + 100] @ X.T  # vectors are unit-norm: cosine == dot
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        order = np.take_along_axis(s, part, 1).argsort(axis=1)[:, ::-1]
        out[lo : lo + 100, :kk] = rows[np.take_along_axis(part, order, 1)]
    np.save(p, out)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    p = ensure_dataset(a.n, a.seed)
    ds = Dataset(p)
    print(json.dumps(ds.meta, indent=2))
    for i in range(3):
        print(repr(ds.documents[i]))
        print(ds.metadatas[i])
    X = ds.embeddings
    s = ds.queries[:200] @ X.T
    top = np.sort(s, axis=1)[:, ::-1]
    print("query->data cosine: top1 mean %.3f, top10 mean %.3f, median %.3f"
          % (top[:, 0].mean(), top[:, 9].mean(), np.median(s)))
