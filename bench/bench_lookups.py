"""Lookups whose cost should grow with the answer, not with the collection: get by ids,
``$eq`` / ``$in`` metadata filters (Memory's scope filter), ``$not_contains`` and update
by id, at several collection sizes.

    PYTHONPATH=src .venv/bin/python bench/bench_lookups.py --n 10000 100000 --out /tmp/new.json
    # the same figures for an older commit, then both side by side:
    git worktree add /tmp/idx-old 074e593
    PYTHONPATH=/tmp/idx-old/src .venv/bin/python bench/bench_lookups.py --n 10000 100000 --out /tmp/old.json
    .venv/bin/python bench/bench_lookups.py --compare /tmp/old.json /tmp/new.json

The data: ``n`` records of ``--dim`` random float32 vectors, a synthetic document of a
few words each, and metadata ``{"scope": "user-<i % users>", "kind": "fact"|"talk",
"n": i}`` (``--users`` scopes, so a scope holds n / users records), flushed into
segments (memtable of 50,000 rows, the default). Each figure is the median over
``--reps`` calls, in milliseconds, on a warm process (the first call of each kind,
which builds lazy indexes, is left out and reported separately as "first").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

WORDS = ("alpha beta gamma delta epsilon zeta theta iota kappa lambda sigma omega river stone "
         "cloud paper signal market garden window engine planet").split()


def p50(fn, reps: int) -> tuple[float, float]:
    t = time.perf_counter()
    fn()
    first = (time.perf_counter() - t) * 1000
    lat = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t) * 1000)
    return statistics.median(lat), first


def build(path: str, n: int, dim: int, users: int, seed: int):
    import gleandb

    rng = np.random.default_rng(seed)
    client = gleandb.PersistentClient(path)
    col = client.create_collection("lookups", embedding_function=None)
    batch = 5000
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        ids = [f"rec-{i}" for i in range(lo, hi)]
        emb = rng.standard_normal((hi - lo, dim), dtype=np.float32)
        docs = [" ".join(rng.choice(WORDS, 8)) + (" needle" if i % 50 == 0 else "") for i in range(lo, hi)]
        metas = [{"scope": f"user-{i % users}", "kind": "fact" if i % 4 == 0 else "talk", "n": i}
                 for i in range(lo, hi)]
        col.add(ids=ids, embeddings=emb, documents=docs, metadatas=metas)
    col.flush()
    return client, col


def run_size(n: int, args) -> dict:
    import gleandb

    path = tempfile.mkdtemp(prefix="bench-lookups-")
    try:
        t0 = time.perf_counter()
        client, col = build(path, n, args.dim, args.users, args.seed)
        build_s = time.perf_counter() - t0
        rng = np.random.default_rng(args.seed + 1)
        out: dict = {"n": n, "build_s": round(build_s, 1)}

        def ids_of(k):
            return [f"rec-{i}" for i in rng.choice(n, k, replace=False)]

        asked = [ids_of(1000) for _ in range(8)]
        few = [ids_of(10) for _ in range(8)]
        it = iter(range(1 << 30))

        def cases():
            yield "get 1,000 ids", lambda: col.get(ids=asked[next(it) % 8])
            yield "get 10 ids", lambda: col.get(ids=few[next(it) % 8])
            yield "get 10 ids + scope $eq", lambda: col.get(ids=few[next(it) % 8], where={"kind": "fact"})
            yield "$eq get (one scope)", lambda: col.get(where={"scope": f"user-{next(it) % args.users}"})
            yield "$in get (3 scopes)", lambda: col.get(
                where={"scope": {"$in": [f"user-{(next(it) + j) % args.users}" for j in range(3)]}})
            yield "$and scope+kind+$gt get", lambda: col.get(where={"$and": [
                {"scope": f"user-{next(it) % args.users}"}, {"kind": "fact"}, {"n": {"$gt": 5}}]})
            yield "$eq count (one scope)", lambda: col.count(where={"scope": f"user-{next(it) % args.users}"})
            yield "query k=10 in one scope", lambda: col.query(
                query_embeddings=rng.standard_normal((1, args.dim), dtype=np.float32),
                where={"scope": f"user-{next(it) % args.users}"}, n_results=10)
            yield "$not_contains 'needle' get limit 10", lambda: col.get(
                where_document={"$not_contains": "needle"}, limit=10, include=[])
            yield "$not_contains 'needle' count", lambda: col.count(where_document={"$not_contains": "needle"})
            yield "$not_contains 'alpha' count", lambda: col.count(where_document={"$not_contains": "alpha"})
            yield "update 1 id (metadata)", lambda: col.update(ids=few[next(it) % 8][:1], metadatas=[{"kind": "talk"}])
            yield "upsert 100 ids", lambda: col.upsert(
                ids=asked[next(it) % 8][:100], embeddings=rng.standard_normal((100, args.dim), dtype=np.float32))

        for name, fn in cases():
            med, first = p50(fn, args.reps)
            out[name] = {"p50_ms": round(med, 3), "first_ms": round(first, 3)}
            print(f"  n={n:>9,}  {name:<38} p50 {med:9.3f} ms   first {first:9.3f} ms", flush=True)
        client.close()
        gleandb.ClientAPI.clear_system_cache()
        t = time.perf_counter()
        client = gleandb.PersistentClient(path)
        col = client.get_collection("lookups", embedding_function=None)
        col.get(ids=asked[0])
        out["reopen + get 1,000 ids"] = {"p50_ms": round((time.perf_counter() - t) * 1000, 3)}
        print(f"  n={n:>9,}  {'reopen + get 1,000 ids':<38} once {out['reopen + get 1,000 ids']['p50_ms']:9.3f} ms")
        client.close()
        gleandb.ClientAPI.clear_system_cache()
        return out
    finally:
        shutil.rmtree(path, ignore_errors=True)


def compare(old_path: str, new_path: str) -> None:
    old, new = json.load(open(old_path)), json.load(open(new_path))
    print(f"# before: {old['commit']}   after: {new['commit']}   ({new['machine']})")
    print(f"{'figure (p50 ms)':<40} {'n':>9} {'before':>10} {'after':>10} {'ratio':>8}")
    for o, w in zip(old["sizes"], new["sizes"]):
        for name, fig in w.items():
            if not isinstance(fig, dict) or name not in o:
                continue
            b, a = o[name]["p50_ms"], fig["p50_ms"]
            print(f"{name:<40} {w['n']:>9,} {b:>10.3f} {a:>10.3f} {b / a if a else float('nan'):>7.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000], help="collection sizes")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--users", type=int, default=1000, help="distinct scope values")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"), help="print two --out files side by side")
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    import gleandb
    import subprocess

    src = os.path.dirname(os.path.dirname(os.path.abspath(gleandb.__file__)))
    try:
        commit = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    machine = f"{platform.machine()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"
    print(f"# bench_lookups: gleandb {commit} from {src}; dim={args.dim} users={args.users} "
          f"reps={args.reps}; {machine}")
    sizes = [run_size(n, args) for n in args.n]
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"commit": commit, "machine": machine, "sizes": sizes}, f, indent=1)


if __name__ == "__main__":
    main()
