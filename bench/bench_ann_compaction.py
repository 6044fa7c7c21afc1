"""Compaction and memory: time and peak RSS of a flush and of a compaction, and the
steady-state RSS, with the largest segment's graph extended vs rebuilt.

Prints figures; it is not a test. Usage:

    python bench/bench_ann_compaction.py [--n-big 100000] [--n-small 10000] [--parts 3]
        [--modes extend,rebuild] [--old-src /tmp/old-checkout/src] [--out FILE]

Each case runs in its own process (a fresh peak RSS) on a fresh PersistentClient
directory: ``n_big`` rows (bench/datasets.py's clustered 384-d mixture, cosine, short
documents) are added and flushed as one indexed segment, then ``parts`` segments of
``n_small`` rows; then ``compact()`` merges them into one. Peak RSS of each phase is
VmHWM after resetting it (``/proc/self/clear_refs`` 5, Linux). ``--old-src`` runs the
same workload (rebuild only) on another checkout's ``src`` for a before/after.
Recall@10 of 200 queries against exact search is printed after the compaction.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(val.split()[0]) / 1024.0  # MiB
    return out


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def child(a) -> None:
    sys.path.insert(0, str(HERE))
    import gc

    import gleandb
    from datasets import _Mixture

    mix = _Mixture(42)
    total = a.n_big + a.parts * a.n_small
    x = mix.sample(total, np.random.default_rng([42, 2]))
    q = mix.sample(200, np.random.default_rng([42, 3]))
    res = {"mode": a.mode, "src": a.src or "this checkout"}
    with tempfile.TemporaryDirectory(dir=a.tmpdir) as d:
        client = gleandb.PersistentClient(d, settings=gleandb.Settings(
            memtable_max_rows=a.n_big + 1, index_min_rows=1000, compaction_min_segments=1000))
        col = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
        if hasattr(col._store.params, "compaction_extend"):
            col._store.params.compaction_extend = a.mode == "extend"

        def add(lo, hi):
            for s in range(lo, hi, 5000):
                e = min(hi, s + 5000)
                col.add(ids=[f"r{i}" for i in range(s, e)], embeddings=x[s:e],
                        documents=[f"document number {i} about things" for i in range(s, e)],
                        metadatas=[{"i": i} for i in range(s, e)])

        add(0, a.n_big)
        gc.collect()
        base = _status()
        _reset_peak()
        t0 = time.perf_counter()
        client.flush()
        res["flush_s"] = time.perf_counter() - t0
        res["flush_peak_over_start_mib"] = _status()["VmHWM"] - base["VmRSS"]
        for p in range(a.parts):
            lo = a.n_big + p * a.n_small
            add(lo, lo + a.n_small)
            client.flush()
        gc.collect()
        res["before_compaction"] = _status()
        _reset_peak()
        t0 = time.perf_counter()
        client.compact()
        res["compact_s"] = time.perf_counter() - t0
        gc.collect()
        st = _status()
        res["compact_peak_over_start_mib"] = st["VmHWM"] - res["before_compaction"]["VmRSS"]
        res["after_compaction"] = st
        res["extended"] = col._store.stats.get("compactions_extended", 0)
        got = col.query(query_embeddings=q, n_results=10, include=[])["ids"]
        truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
        res["recall@10"] = float(np.mean([len({f"r{j}" for j in t} & set(g)) / 10 for t, g in zip(truth, got)]))
        res["raw_vector_mib"] = total * x.shape[1] * 4 / 2**20
        client.close()
    print("RESULT " + json.dumps(res), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-big", type=int, default=100_000)
    ap.add_argument("--n-small", type=int, default=10_000)
    ap.add_argument("--parts", type=int, default=3)
    ap.add_argument("--modes", default="extend,rebuild")
    ap.add_argument("--old-src", default="")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--out", default="")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--mode", default="extend")
    ap.add_argument("--src", default="")
    a = ap.parse_args()
    if a.child:
        child(a)
        return
    cases = [(m, "") for m in a.modes.split(",")]
    if a.old_src:
        cases.append(("rebuild", a.old_src))
    lines = [f"# n_big {a.n_big}, {a.parts} x {a.n_small}, 384-d cosine, load {os.getloadavg()[0]:.1f}, "
             f"cores {os.cpu_count()}",
             "code | mode | flush s | flush peak +MiB | compact s | compact peak +MiB | RSS after (anon/file) MiB | "
             "raw vectors MiB | recall@10 | extended"]
    print("\n".join(lines), flush=True)
    for mode, src in cases:
        env = dict(os.environ)
        src_path = src or str(HERE.parent / "src")
        env["PYTHONPATH"] = src_path + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, __file__, "--child", "--mode", mode, "--src", src,
               "--n-big", str(a.n_big), "--n-small", str(a.n_small), "--parts", str(a.parts)]
        if a.tmpdir:
            cmd += ["--tmpdir", a.tmpdir]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        found = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if not found:
            line = f"{src or 'new'} | {mode} | ERROR: {out.stderr.strip()[-400:]}"
        else:
            r = json.loads(found[0][7:])
            aft = r["after_compaction"]
            line = (f"{'old' if src else 'new'} | {mode} | {r['flush_s']:.1f} | {r['flush_peak_over_start_mib']:.0f} | "
                    f"{r['compact_s']:.1f} | {r['compact_peak_over_start_mib']:.0f} | "
                    f"{aft['VmRSS']:.0f} ({aft['RssAnon']:.0f}/{aft['RssFile']:.0f}) | {r['raw_vector_mib']:.0f} | "
                    f"{r['recall@10']:.4f} | {r['extended']}")
        print(line, flush=True)
        lines.append(line)
    if a.out:
        with open(a.out, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
