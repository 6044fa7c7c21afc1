"""Fork benchmark (issue 5): fork time vs collection size, disk per fork, query latency
on a fork vs its source. Prints figures and writes bench/results-fork.txt; not a test.

    python bench/bench_fork.py [--sizes 1000,10000,100000,1000000] [--repeats 15] [--forks 1000]

Rows are 16-dimensional random vectors without documents (so 1M rows build quickly on a
small machine); each collection is flushed into segments and then gets a small unflushed
tail (100 added rows + 10 deletes of flushed rows) that every fork must carry. The
fork-time collections are stored without an ANN index (``index_min_rows`` above their
size): a fork copies no segment data either way, so the index does not change what is
measured. The query-latency part uses a 100k collection *with* its HNSW index.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import gleandb  # noqa: E402

DIM = 16
TAIL = 100


def dir_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def build(client, name: str, n: int, seed: int = 0):
    col = client.create_collection(name, embedding_function=None)
    rng = np.random.default_rng(seed)
    step = 200_000
    for start in range(0, n, step):
        m = min(step, n - start)
        col.add(ids=[f"r{i}" for i in range(start, start + m)], embeddings=rng.standard_normal((m, DIM), dtype=np.float32))
    client.flush()
    col.add(ids=[f"t{i}" for i in range(TAIL)], embeddings=rng.standard_normal((TAIL, DIM), dtype=np.float32))
    col.delete(ids=[f"r{i}" for i in range(0, min(n, 100), 10)])
    return col


def p50(xs):
    return statistics.median(xs)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--forks", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-fork.txt"))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    say(f"gleandb fork benchmark  ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, shared with other jobs: timings are noisy)")
    say(f"rows: {DIM}-d float32 vectors, no documents; flushed into segments + unflushed tail of {TAIL} adds and 10 deletes")
    say()
    root = tempfile.mkdtemp(prefix="gleandb-bench-fork-")
    try:
        # -------------------------------------------------------------- fork time vs size
        say("1. fork time vs collection size (segments without ANN index; p50 over repeats)")
        say(f"{'rows':>9} {'build s':>8} {'fork p50 ms':>12} {'fork min ms':>12} {'fork max ms':>12}")
        gleandb.ClientAPI.clear_system_cache()
        settings = gleandb.Settings(memtable_max_rows=2_000_000, index_min_rows=10**9, wal_sync=False)
        c = gleandb.PersistentClient(os.path.join(root, "sizes"), settings=settings)
        results = {}
        for n in sizes:
            t = time.perf_counter()
            col = build(c, f"size-{n}", n)
            built = time.perf_counter() - t
            times = []
            for r in range(args.repeats):
                t = time.perf_counter()
                f = col.fork(f"size-{n}-fork-{r}")
                times.append((time.perf_counter() - t) * 1000)
            assert f.count() == col.count()
            results[n] = p50(times)
            say(f"{n:>9} {built:>8.1f} {p50(times):>12.2f} {min(times):>12.2f} {max(times):>12.2f}")
        ratio = results[max(sizes)] / results[min(sizes)]
        say(f"ratio p50({max(sizes)}) / p50({min(sizes)}) = {ratio:.2f}  (target < 2)")
        c.close()
        shutil.rmtree(os.path.join(root, "sizes"), ignore_errors=True)
        say()

        # ------------------------------------------------- disk of 1,000 forks, query latency
        gleandb.ClientAPI.clear_system_cache()
        path = os.path.join(root, "forks")
        c = gleandb.PersistentClient(path, settings=gleandb.Settings(wal_sync=False))
        t = time.perf_counter()
        src = build(c, "src-100k", 100_000, seed=1)
        say(f"2. {args.forks} forks of a 100k collection (HNSW index built: {time.perf_counter() - t:.1f} s)")
        before = dir_bytes(path)
        t = time.perf_counter()
        for i in range(args.forks):
            src.fork(f"fork-{i}")
        elapsed = time.perf_counter() - t
        after = dir_bytes(path)
        catalog = dir_bytes(os.path.join(path, "catalog"))
        per_fork = (after - before) / args.forks
        say(f"   store before: {before / 1e6:.1f} MB, after: {after / 1e6:.1f} MB, added {(after - before) / 1e6:.2f} MB "
            f"= {per_fork / 1e3:.1f} kB per fork ({per_fork / before * 100:.3f} % of the source)")
        say(f"   of which the catalog: {catalog / 1e3:.0f} kB; each fork: a catalog record holding its first manifest + a WAL file with the "
            f"{TAIL}-row unflushed tail; no segment data")
        say(f"   {args.forks} forks took {elapsed:.1f} s ({elapsed / args.forks * 1000:.1f} ms each, one catalog log "
            "append each)")
        say()

        say("3. query latency, source vs fork (100k rows, HNSW, k=10, p50 over single-query calls)")
        fork = c.get_collection("fork-0", embedding_function=None)
        rng = np.random.default_rng(7)
        qs = rng.standard_normal((args.queries, DIM), dtype=np.float32)
        lat = {}
        for name, col in (("source", src), ("fork", fork), ("source again", src), ("fork again", fork)):
            col.query(query_embeddings=qs[:5], n_results=10)  # warm up (opens the fork's store)
            times = []
            for q in qs:
                t = time.perf_counter()
                col.query(query_embeddings=q[None, :], n_results=10)
                times.append((time.perf_counter() - t) * 1000)
            lat[name] = p50(times)
            say(f"   {name:<13} p50 {p50(times):.3f} ms  p90 {np.percentile(times, 90):.3f} ms")
        same = src.query(query_embeddings=qs[:20], n_results=10)["ids"] == fork.query(query_embeddings=qs[:20], n_results=10)["ids"]
        say(f"   same results on source and fork: {same}")
        c.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
