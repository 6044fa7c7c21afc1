"""The cost of merging per-segment k-NN candidates: the engine's ``merge_top_k`` against
the two merges it replaced (issue 16).

Candidates are synthetic (each of ``--segments`` views gives its k best, sorted), so only
the merge is timed, not the searches. The three are timed in one run, one after the
other, best of ``--reps``: under load the ratios hold, the milliseconds do not.

* python sort: ``retrieval/rankers.py dense_top_k`` before (a tuple per candidate,
  ``sorted``): the Search API and ``retrieve``;
* argsort: ``engine/query.py knn`` before (concatenate, stable argsort of the whole
  row; ties by concatenation order, not by rid): ``Collection.query``;
* merge_top_k: argpartition keeps the k smallest (many candidates), a sort of those by
  distance; rids looked up only where distances tie.

    python bench/bench_knn_merge.py [--segments 40] [--reps 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gleandb.engine.query import merge_top_k


def candidates(segments: int, k: int, nq: int, rows: int, rng) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(view, distances, rows, rids of the view) per view, each with its k best."""
    parts, base = [], 0
    for vi in range(segments):
        rids = np.arange(base, base + rows, dtype=np.int64)
        base += rows
        kk = min(k, rows)
        d = np.sort(rng.random((nq, kk)).astype(np.float32), axis=1)
        r = np.stack([rng.choice(rows, kk, replace=False) for _ in range(nq)])
        parts.append((vi, d, r, rids))
    return parts


def python_sort(parts, k, nq):
    out = [[] for _ in range(nq)]
    for vi, d, r, rids in parts:
        for qi in range(nq):
            ok = r[qi] >= 0
            for dist, row in zip(d[qi][ok].tolist(), r[qi][ok].tolist()):
                out[qi].append((float(dist), int(rids[row]), vi, row))
    return [[(vi, row, dist) for dist, _rid, vi, row in sorted(p)[:k]] for p in out]


def _stacked(parts):
    D = np.concatenate([p[1] for p in parts], axis=1)
    R = np.concatenate([p[2] for p in parts], axis=1)
    V = np.concatenate([np.full(p[2].shape, p[0], dtype=np.int64) for p in parts], axis=1)
    return np.where(R < 0, np.inf, D), R, V


def argsort_merge(parts, k, nq):
    D, R, V = _stacked(parts)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return [(D[q, order[q]], V[q, order[q]], R[q, order[q]]) for q in range(nq)]


def engine_merge(parts, k, nq):
    D, R, V = _stacked(parts)
    order = merge_top_k(D, V, R, [p[3] for p in parts], k)
    return [(D[q, order[q]], V[q, order[q]], R[q, order[q]]) for q in range(nq)]


def best_ms(fn, reps, *args) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--segments", type=int, default=40)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{args.segments} segments x k candidates each; ms, best of {args.reps}")
    print(f"{'queries':>7} {'k':>5} {'python sort':>12} {'argsort':>9} {'merge_top_k':>12}")
    for nq in (1, 10):
        for k in (10, 100, 1000):
            parts = candidates(args.segments, k, nq, 5000, rng)
            # the same answer as the python sort (distance, then rid)
            want = [[(vi, row) for vi, row, _d in q] for q in python_sort(parts, k, nq)]
            got = [list(zip(v.tolist(), r.tolist())) for _d, v, r in engine_merge(parts, k, nq)]
            assert got == want, "merge_top_k disagrees with the sort"
            print(f"{nq:>7} {k:>5} {best_ms(python_sort, args.reps, parts, k, nq):12.2f} "
                  f"{best_ms(argsort_merge, args.reps, parts, k, nq):9.2f} "
                  f"{best_ms(engine_merge, args.reps, parts, k, nq):12.2f}")


if __name__ == "__main__":
    main()
