"""Compare ANN libraries for gleandb's per-segment vector index.

Prints figures; it is not a test. Usage:

    python bench/bench_ann_libraries.py [--n 100000] [--dim 384] [--threads 2]
        [--libs faiss,hnswlib,usearch] [--spaces cosine,l2]

Data imitates sentence embeddings: a Gaussian mixture of a few hundred centres in a
low-rank subspace, embedded in ``dim`` dimensions, plus isotropic noise, L2-normalised.
Queries come from the same distribution but are not in the data set. Ground truth is
exact numpy search (for "cosine" and "ip" the vectors are unit length so both rank the
same; "cosine" is run as inner product over normalised vectors in every library).

Everything is measured with HNSW M=16, ef_construction=100 (chromadb's defaults).
Latencies are single-query calls (k=10), the shape of a typical retrieval request.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time

import numpy as np
import psutil

K = 10
EF_SWEEP = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096]
TARGET = 0.99


# ----------------------------------------------------------------------------- data
def make_data(n: int, nq: int, dim: int, *, centres: int = 300, rank: int = 48, seed: int = 0):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)))  # (dim, rank) orthonormal
    cen = rng.standard_normal((centres, rank)).astype(np.float32)
    weights = rng.dirichlet(np.full(centres, 2.0))

    def draw(m):
        lab = rng.choice(centres, size=m, p=weights)
        low = cen[lab] + 0.45 * rng.standard_normal((m, rank)).astype(np.float32)
        x = low @ basis.T.astype(np.float32) + 0.08 * rng.standard_normal((m, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return np.ascontiguousarray(x, dtype=np.float32)

    return draw(n), draw(nq)


def exact_topk(x: np.ndarray, q: np.ndarray, k: int, space: str, mask: np.ndarray | None = None):
    out = np.empty((len(q), k), dtype=np.int64)
    xn = (x * x).sum(1) if space == "l2" else None
    for s in range(0, len(q), 64):
        qq = q[s : s + 64]
        if space == "l2":
            d = xn[None, :] - 2.0 * (qq @ x.T)
        else:
            d = -(qq @ x.T)
        if mask is not None:
            d[:, ~mask] = np.inf
        kk = min(k, d.shape[1])
        part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        order = np.take_along_axis(d, part, 1).argsort(1, kind="stable")
        res = np.take_along_axis(part, order, 1)
        if mask is not None:
            res = np.where(np.take_along_axis(d, res, 1) == np.inf, -1, res)
        out[s : s + 64, :kk] = res
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    tot = 0.0
    for f, t in zip(found, truth):
        t = t[t >= 0]
        if len(t) == 0:
            tot += 1.0
            continue
        tot += len(np.intersect1d(f[f >= 0], t)) / len(t)
    return tot / len(found)


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def p50_ms(fn, queries) -> float:
    ts = []
    for qv in queries:
        t0 = time.perf_counter()
        fn(qv)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e3)


# ----------------------------------------------------------------------------- adapters
class FaissAdapter:
    name = "faiss"

    def __init__(self, threads):
        import faiss

        self.faiss = faiss
        faiss.omp_set_num_threads(threads)

    def build(self, x, space):
        f = self.faiss
        metric = f.METRIC_L2 if space == "l2" else f.METRIC_INNER_PRODUCT
        idx = f.IndexHNSWFlat(x.shape[1], 16, metric)
        idx.hnsw.efConstruction = 100
        idx.add(x)
        self.idx = idx
        self.n = x.shape[0]

    def search(self, q, k, ef, mask=None):
        f = self.faiss
        if mask is None:
            params = f.SearchParametersHNSW(efSearch=ef)
            _, ids = self.idx.search(q, k, params=params)
            return ids
        bits = np.packbits(mask, bitorder="little")
        sel = f.IDSelectorBitmap(self.n, f.swig_ptr(bits))
        params = f.SearchParametersHNSW(efSearch=ef, sel=sel)
        _, ids = self.idx.search(q, k, params=params)
        return ids

    def serialize(self):
        t0 = time.perf_counter()
        data = self.faiss.serialize_index(self.idx)
        ts = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.faiss.deserialize_index(data)
        return data.nbytes, ts, time.perf_counter() - t0


class HnswlibAdapter:
    name = "hnswlib"

    def __init__(self, threads):
        import hnswlib

        self.hnswlib = hnswlib
        self.threads = threads

    def build(self, x, space):
        idx = self.hnswlib.Index(space="l2" if space == "l2" else "ip", dim=x.shape[1])
        idx.init_index(max_elements=x.shape[0], M=16, ef_construction=100)
        idx.set_num_threads(self.threads)
        idx.add_items(x, np.arange(x.shape[0]))
        self.idx = idx

    def search(self, q, k, ef, mask=None):
        self.idx.set_ef(max(ef, k))
        if mask is None:
            ids, _ = self.idx.knn_query(q, k=k, num_threads=self.threads)
            return ids.astype(np.int64)
        allowed = mask  # python callback per visited node
        out = np.full((len(q), k), -1, dtype=np.int64)
        for i, qv in enumerate(q):
            try:
                ids, _ = self.idx.knn_query(qv, k=k, num_threads=1, filter=lambda j: bool(allowed[j]))
                out[i, : ids.shape[1]] = ids[0]
            except RuntimeError:  # fewer than k reachable
                pass
        return out

    def serialize(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "i.bin")
            t0 = time.perf_counter()
            self.idx.save_index(p)
            ts = time.perf_counter() - t0
            size = os.path.getsize(p)
            t0 = time.perf_counter()
            j = self.hnswlib.Index(space=self.idx.space, dim=self.idx.dim)
            j.load_index(p)
            return size, ts, time.perf_counter() - t0


class UsearchAdapter:
    """usearch's Python API has no filtered search (the C++ predicate is not exposed):
    the only read-only option is to over-fetch and post-filter."""

    name = "usearch"

    def __init__(self, threads):
        from usearch.index import Index

        self.Index = Index
        self.threads = threads

    def build(self, x, space):
        idx = self.Index(ndim=x.shape[1], metric="l2sq" if space == "l2" else "ip", dtype="f32",
                         connectivity=16, expansion_add=100)
        idx.add(np.arange(x.shape[0]), x, threads=self.threads)
        self.idx = idx

    def search(self, q, k, ef, mask=None):
        if mask is None:
            self.idx.expansion_search = ef
            return np.asarray(self.idx.search(q, k, threads=self.threads).keys, dtype=np.int64)
        # post-filter: fetch `ef` candidates, keep allowed ones
        self.idx.expansion_search = ef
        m = self.idx.search(q, ef, threads=self.threads)
        keys = np.asarray(m.keys, dtype=np.int64).reshape(len(q), -1)
        out = np.full((len(q), k), -1, dtype=np.int64)
        for i, row in enumerate(keys):
            row = row[(row >= 0) & (row < len(mask))]
            row = row[mask[row]][:k]
            out[i, : len(row)] = row
        return out

    def serialize(self):
        t0 = time.perf_counter()
        data = self.idx.save()
        ts = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.Index.restore(data)
        return len(data), ts, time.perf_counter() - t0


ADAPTERS = {"faiss": FaissAdapter, "hnswlib": HnswlibAdapter, "usearch": UsearchAdapter}


# ----------------------------------------------------------------------------- runs
def min_ef(adapter, q, truth, mask=None, start=10, cap=4096):
    for ef in EF_SWEEP:
        if ef < start or ef > cap:
            continue
        r = recall(adapter.search(q, K, ef, mask), truth)
        if r >= TARGET:
            return ef, r
    return None, r


def bench_lib(name, x, q, space, threads, filters, truth_all, truth_f, nq_lat, nq_filt):
    ad = ADAPTERS[name](threads)
    r0 = rss()
    t0 = time.perf_counter()
    ad.build(x, space)
    bt = time.perf_counter() - t0
    mem = rss() - r0
    size, ts, tl = ad.serialize()
    print(f"\n[{name} / {space}] build {bt:.1f}s = {len(x) / bt:,.0f} rows/s; RSS +{mem / 2**20:.0f} MiB; "
          f"serialized {size / 2**20:.1f} MiB (save {ts * 1e3:.0f} ms, load {tl * 1e3:.0f} ms)")
    ef, r = min_ef(ad, q, truth_all)
    lat = p50_ms(lambda v: ad.search(v[None], K, ef or 4096), q[:nq_lat])
    print(f"  unfiltered: ef_search for recall@10>=0.99: {ef} (recall {r:.4f}); p50 {lat:.3f} ms")
    for frac, mask in filters:
        qf = q[:nq_filt]
        tf = truth_f[frac][:nq_filt]
        if name == "usearch":
            # over-fetch count must be ≳ k / selectivity
            ef, r = min_ef(ad, qf, tf, mask, start=int(K / frac), cap=4096 if frac >= 0.01 else 4096)
        else:
            ef, r = min_ef(ad, qf, tf, mask)
        if ef is None:
            print(f"  filter {frac:>6.1%}: recall@10>=0.99 NOT reached up to ef 4096 (recall {r:.4f})")
            continue
        lat = p50_ms(lambda v: ad.search(v[None], K, ef, mask), qf[: min(nq_filt, 50)])
        print(f"  filter {frac:>6.1%}: ef {ef:>5} recall {r:.4f}; p50 {lat:.3f} ms")
    if name == "faiss":
        # does search release the GIL? 2 python threads x single-query calls vs 1 thread
        import threading

        mask = filters[0][1] if filters else None
        qs = q[:200]

        def loop():
            for v in qs:
                ad.search(v[None], K, 64, mask)

        for nt in (1, 2):
            ts = [threading.Thread(target=loop) for _ in range(nt)]
            t0 = time.perf_counter()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            dt = time.perf_counter() - t0
            print(f"  {nt} python thread(s), filtered single-query search ef=64: {nt * len(qs) / dt:,.0f} queries/s")
    if name == "hnswlib":
        # cost of the python callback: same ef, all-true filter vs no filter
        ad.idx.set_ef(64)
        calls = [0]

        def cb(j):
            calls[0] += 1
            return True

        qs = q[:100]
        t_no = p50_ms(lambda v: ad.idx.knn_query(v, k=K, num_threads=1), qs)
        t_cb = p50_ms(lambda v: ad.idx.knn_query(v, k=K, num_threads=1, filter=cb), qs)
        print(f"  python filter callback: ef=64 p50 {t_no:.3f} ms without -> {t_cb:.3f} ms with an all-true "
              f"callback ({calls[0] / len(qs):.0f} calls/query, "
              f"{(t_cb - t_no) * 1e3 / max(calls[0] / len(qs), 1):.2f} us/call)")
    del ad
    gc.collect()


def bench_exact(x, q, space, fracs, rng):
    print(f"\n[numpy exact / {space}] single query, k=10 (p50 ms)")
    print(f"  {'allowed':>8} {'rows':>7} {'subset x[rows]@q':>17} {'full x@q + mask':>16} {'rows pre-gathered':>18}")
    n = len(x)
    for frac in fracs:
        m = rng.random(n) < frac
        rows = np.flatnonzero(m)
        sub_pre = x[rows]

        def sub(v):
            d = x[rows] @ v
            kk = min(K, len(d))
            p = np.argpartition(-d, kk - 1)[:kk]
            return rows[p]

        def full(v):
            d = x @ v
            d[~m] = -np.inf
            p = np.argpartition(-d, K - 1)[:K]
            return p

        def pre(v):
            d = sub_pre @ v
            kk = min(K, len(d))
            return np.argpartition(-d, kk - 1)[:kk]

        qs = q[:100]
        print(f"  {frac:>8.1%} {len(rows):>7} {p50_ms(sub, qs):>17.3f} {p50_ms(full, qs):>16.3f} "
              f"{p50_ms(pre, qs):>18.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--nq", type=int, default=200)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--libs", default="faiss,hnswlib,usearch")
    ap.add_argument("--spaces", default="cosine,l2")
    ap.add_argument("--fracs", default="0.7,0.1,0.01")
    ap.add_argument("--exact-only", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    rng = np.random.default_rng(1)
    x, q = make_data(a.n, a.nq, a.dim)
    print(f"data: {a.n} x {a.dim} float32 clustered, {a.nq} queries, k={K}, threads={a.threads}, "
          f"cores visible={os.cpu_count()}")
    fracs = [float(f) for f in a.fracs.split(",")]
    bench_exact(x, q, "cosine", [1.0, 0.7, 0.3, 0.1, 0.03, 0.01, 0.003], rng)
    if a.exact_only:
        return
    filters = [(f, rng.random(a.n) < f) for f in fracs]
    for space in a.spaces.split(","):
        truth_all = exact_topk(x, q, K, space)
        truth_f = {f: exact_topk(x, q, K, space, m) for f, m in filters}
        for lib in a.libs.split(","):
            bench_lib(lib, x, q, space, a.threads, filters, truth_all, truth_f, nq_lat=200,
                      nq_filt=100 if lib != "hnswlib" else 50)


if __name__ == "__main__":
    main()
