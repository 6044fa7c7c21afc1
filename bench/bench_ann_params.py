"""Measure HNSW parameters (M, ef_construction, ef_search) against segment size.

Prints figures; it is not a test. The table it prints is what ``index/vector.py``'s
size rules (``build_params``, ``search_ef``) are read from. Usage:

    python bench/bench_ann_params.py [--sizes 30000,100000,300000] [--configs 16:100,32:200]
        [--nq 300] [--threads 2] [--out bench/results-ann-params.txt]
    python bench/bench_ann_params.py --check [--sizes ...]   # the rules, end to end

Data: ``bench/datasets.py``'s mixture (clustered 384-d, unit length, the data of the
side-by-side benchmarks), seed 42; the sizes are prefixes of one draw, queries a fresh
draw. Ground truth: exact numpy search. Metric: cosine (inner product over unit
vectors). Filters are uniformly random masks of the given fraction.

Grid mode, per size and (M, ef_construction): build rate, the smallest ef_search from a
sweep reaching recall@10 >= 0.99 and >= 0.995 (unfiltered; filtered at 30 / 10 / 5 %
through faiss's bitmap selector) and recall@100 >= 0.99 (k=100), with the p50 latency
of single-query calls at that ef. ``--check`` mode builds ``VectorIndex`` with the
parameters the rules choose and reports recall and p50 for each filter level.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import faiss  # noqa: E402

from datasets import _Mixture  # noqa: E402

EF_SWEEP = [10, 16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024, 1536, 2048]
FRACS = [0.3, 0.1, 0.05]


def data(n: int, nq: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    mix = _Mixture(seed)
    x = mix.sample(n, np.random.default_rng([seed, 2]))
    q = mix.sample(nq, np.random.default_rng([seed, 3]))
    return x, q


def exact_topk(x: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    out = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), 50):
        d = -(q[s : s + 50] @ x.T)
        if mask is not None:
            d[:, ~mask] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(d, part, 1).argsort(1, kind="stable")
        out[s : s + 50] = np.take_along_axis(part, order, 1)
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = sum(len(np.intersect1d(f[f >= 0], t)) for f, t in zip(found, truth))
    return hits / (k * len(truth))


def p50_ms(index, q: np.ndarray, k: int, params) -> float:
    ts = []
    for i in range(min(len(q), 150)):
        t0 = time.perf_counter()
        index.search(q[i : i + 1], k, params=params)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e3)


def min_ef(index, q, truth, k, target, mask=None, start=10):
    """Smallest ef of the sweep reaching ``target``; (ef, recall) or (None, best recall)."""
    bits = sel = None
    if mask is not None:
        bits = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
    best = 0.0
    for ef in [e for e in EF_SWEEP if e >= max(start, k)]:
        params = faiss.SearchParametersHNSW(efSearch=ef, sel=sel) if sel is not None else \
            faiss.SearchParametersHNSW(efSearch=ef)
        _, ids = index.search(q, k, params=params)
        r = recall(ids, truth)
        best = max(best, r)
        if r >= target:
            return ef, r, params
    return None, best, None


def grid(a) -> None:
    sizes = [int(s) for s in a.sizes.split(",")]
    configs = [tuple(int(v) for v in c.split(":")) for c in a.configs.split(",")]
    x_all, q = data(max(sizes), a.nq)
    rng = np.random.default_rng(7)
    masks_all = {f: rng.random(len(x_all)) < f for f in FRACS}
    emit(a, f"# grid: sizes {sizes}, configs {configs}, {a.nq} queries, threads {a.threads}, "
            f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, faiss {faiss.__version__}")
    emit(a, "n | M | efC | build rows/s | recall@10 ef=100 | min ef 0.99 (p50 ms) | min ef 0.995 (p50 ms) | "
            "k=100: min ef recall@100>=0.99 | filter 30% | 10% | 5% (min ef 0.99)")
    for n in sizes:
        x = x_all[:n]
        t10 = exact_topk(x, q, 10)
        t100 = exact_topk(x, q, 100)
        tf = {f: exact_topk(x, q, 10, masks_all[f][:n]) for f in FRACS}
        for M, efc in configs:
            index = faiss.IndexHNSWFlat(x.shape[1], M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = efc
            t0 = time.perf_counter()
            index.add(x)
            rate = n / (time.perf_counter() - t0)
            _, ids = index.search(q, 10, params=faiss.SearchParametersHNSW(efSearch=100))
            r100 = recall(ids, t10)
            cells = []
            for target in (0.99, 0.995):
                ef, r, params = min_ef(index, q, t10, 10, target)
                cells.append(f"{ef} ({p50_ms(index, q, 10, params):.2f})" if ef else f"n/r ({r:.4f})")
            ef, r, params = min_ef(index, q, t100, 100, 0.99)
            cells.append(f"{ef} ({p50_ms(index, q, 100, params):.2f})" if ef else f"n/r ({r:.4f})")
            for f in FRACS:
                ef, r, _ = min_ef(index, q, tf[f], 10, 0.99, masks_all[f][:n])
                cells.append(str(ef) if ef else f"n/r ({r:.4f})")
            emit(a, f"{n} | {M} | {efc} | {rate:,.0f} | {r100:.4f} | " + " | ".join(cells))
            del index


def check(a) -> None:
    """The rules of index/vector.py, end to end through VectorIndex."""
    from gleandb.index.vector import VectorIndex, build_params

    sizes = [int(s) for s in a.sizes.split(",")]
    x_all, q = data(max(sizes), a.nq)
    rng = np.random.default_rng(7)
    fracs = [1.0, 0.3, 0.1, 0.05, 0.02]
    masks_all = {f: rng.random(len(x_all)) < f for f in fracs}
    quants = [None if v == "none" else v for v in a.quantization.split(",")]
    emit(a, f"# check: VectorIndex with the size rules, {a.nq} queries, load {os.getloadavg()[0]:.1f}")
    emit(a, "n | quantization | index MiB (vectors + graph in RAM) | M | efC | calibrated ef | ef (k=10) | build rows/s | "
         + " | ".join(f"{int(f * 100)}% recall@10 (p50 ms)" for f in fracs))
    for n, quant in [(n, qz) for n in sizes for qz in quants]:
        x = x_all[:n]
        M, efc = build_params(n)
        t0 = time.perf_counter()
        vi = VectorIndex.build(x, "cosine", num_threads=a.threads, quantization=quant)
        rate = n / (time.perf_counter() - t0)
        mib = len(vi.faiss_buffer()) / 2**20
        cells = []
        for f in fracs:
            mask = None if f == 1.0 else masks_all[f][:n]
            truth = exact_topk(x, q, 10, mask)
            _, rows = vi.search(q, 10, ef_search=100, allowed=mask)
            ts = []
            for i in range(min(len(q), 150)):
                t1 = time.perf_counter()
                vi.search(q[i], 10, ef_search=100, allowed=mask)
                ts.append(time.perf_counter() - t1)
            cells.append(f"{recall(rows, truth):.4f} ({np.median(ts) * 1e3:.2f})")
        emit(a, f"{n} | {quant or 'none'} | {mib:.0f} | {M} | {efc} | {vi.calibrated_ef} | {vi.search_ef(10, 100)} | "
                f"{rate:,.0f} | " + " | ".join(cells))


def emit(a, line: str) -> None:
    print(line, flush=True)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="30000,100000,300000")
    ap.add_argument("--configs", default="16:100,16:200,32:200")
    ap.add_argument("--nq", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--quantization", default="none,sq8", help="check mode: none and/or sq8")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    (check if a.check else grid)(a)


if __name__ == "__main__":
    main()
