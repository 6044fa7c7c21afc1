"""gleandb vs chromadb 1.5.9: same workload, side by side, one table with ratios.

    /work/main/.venv/bin/python bench/bench_vs_chroma.py --n 100000 \
        [--chroma-python /tmp/chroma-venv/bin/python] [--only chroma|gleandb] [--json out.json]

Each engine runs in its own subprocess and interpreter (bench/bench_child.py) on a
fresh temporary PersistentClient directory; see bench/README.md for what each
row measures.  The data comes from bench/datasets.py (deterministic, cached under
bench/.data/).  Recall is computed here against exact numpy search.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import datasets  # noqa: E402

CHILD = HERE / "bench_child.py"
ENGINES = ("chromadb", "gleandb")
K = 10
FILTER_LEVELS = (1, 10, 70)
DEFAULT_CHROMA_PY = "/tmp/chroma-venv/bin/python"


# ---------------------------------------------------------------------------
# running the children
# ---------------------------------------------------------------------------


def dir_bytes(path: str) -> dict:
    apparent = allocated = files = 0
    for root, _dirs, names in os.walk(path):
        for nm in names:
            try:
                st = os.lstat(os.path.join(root, nm))
            except OSError:
                continue
            apparent += st.st_size
            allocated += st.st_blocks * 512
            files += 1
    return {"apparent": apparent, "allocated": allocated, "files": files}


# log lines a child's engine repeats on every query (LanceDB 0.40's scanner): not shown live
NOISE = ("Deprecation warning, this behavior will change in the future",)


def run_child(python: str, engine: str, phase: str, data: Path | None, db_path: str, workdir: str,
              extra: list[str], timeout: float, child: Path = CHILD) -> dict:
    out = os.path.join(workdir, f"{engine}-{phase}.json")
    log_path = os.path.join(workdir, f"{engine}-{phase}.log")
    cmd = [python, str(child), "--engine", engine, "--phase", phase,
           *(["--data", str(data)] if data is not None else []), "--path", db_path, "--out", out, *extra]
    env = dict(os.environ)
    env.setdefault("ANONYMIZED_TELEMETRY", "False")
    t_spawn = time.time()
    cmd += ["--t-spawn", repr(t_spawn)]
    res: dict = {}
    try:
        with open(log_path, "w") as logf:
            # child progress/tracebacks go to the log; tail it live to our stderr
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=str(HERE.parent))
            pos = 0
            deadline = time.time() + timeout
            while True:
                try:
                    rc = proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    rc = None
                with open(log_path) as lf:
                    lf.seek(pos)
                    chunk = lf.read()
                    pos = lf.tell()
                chunk = "".join(ln for ln in chunk.splitlines(True) if not any(x in ln for x in NOISE))
                if chunk:
                    sys.stderr.write(chunk)
                    sys.stderr.flush()
                if rc is not None:
                    break
                if time.time() > deadline:
                    proc.kill()
                    proc.wait()
                    res["fatal_error"] = f"timed out after {timeout:.0f}s"
                    rc = -9
                    break
    except OSError as e:
        return {"fatal_error": f"could not start {python}: {e}"}
    if os.path.exists(out):
        try:
            with open(out) as f:
                res = {**json.load(f), **res}
        except ValueError as e:
            res.setdefault("fatal_error", f"bad result file: {e}")
    if rc != 0 and "fatal_error" not in res:
        with open(log_path) as lf:
            tail = [ln for ln in lf.read().strip().splitlines() if not any(x in ln for x in NOISE)][-3:]
        res["fatal_error"] = f"exit code {rc}: " + " | ".join(tail)
    if rc != 0 and not res.get("done"):
        res.setdefault("fatal_error", f"exit code {rc}")
    return res


def recall(got: list[list[int]], gt: np.ndarray) -> float:
    vals = []
    for g, t in zip(got, gt):
        t = set(int(x) for x in t if x >= 0)
        if t:
            vals.append(len(t.intersection(g)) / len(t))
    return float(np.mean(vals)) if vals else float("nan")


def run_engine(engine: str, python: str, data: Path, args, gt: dict, tmp_root: str) -> dict:
    print(f"\n=== {engine} ({python}) ===", file=sys.stderr, flush=True)
    workdir = tempfile.mkdtemp(prefix=f"bench-{engine}-", dir=tmp_root)
    db_path = os.path.join(workdir, "db")
    extra = ["--seed", str(args.seed), "--queries", str(args.queries),
             "--filtered-queries", str(args.filtered_queries),
             "--doc-reps", str(args.doc_reps), "--get-reps", str(args.get_reps)]
    try:
        if not Path(python).exists():
            return {"fatal_error": f"python not found: {python}"}
        r = run_child(python, engine, "main", data, db_path, workdir, extra, args.timeout)
        if os.path.isdir(db_path):
            r["disk_final"] = dir_bytes(db_path)
        # recall vs exact search
        if isinstance(r.get("query"), dict):
            r["query"]["recall"] = recall(r["query"]["ids"], gt["all"])
        for t in FILTER_LEVELS:
            q = r.get(f"filtered_{t}")
            if isinstance(q, dict):
                q["recall"] = recall(q["ids"], gt[t])
        if r.get("ingest_total_s") and os.path.isdir(db_path):
            ro = run_child(python, engine, "reopen", data, db_path, workdir, [], min(args.timeout, 900))
            r["reopen"] = ro
        return r
    finally:
        if args.keep:
            print(f"[{engine}] kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------
# table
# ---------------------------------------------------------------------------


def g(r: dict, *path):
    cur = r
    for p in path:
        if not isinstance(cur, dict) or p not in cur or cur[p] is None:
            return None
        cur = cur[p]
    return cur


def metric_rows(n: int, fq: int, nq: int, ds_meta: dict):
    """(label, getter, better, fmt, target) ; target(c, gdb) -> (text, bool|None)."""
    MB = 1024 * 1024

    def ratio_target(key_path, want, text):
        def t(c, gl):
            cv, gv = g(c, *key_path), g(gl, *key_path)
            if cv is None or gv is None:
                return text, None
            return text, adv(cv, gv, BETTER[key_path]) >= want
        return t

    BETTER = {}

    def row(label, path, better, fmt, target=None):
        BETTER[path] = better
        return (label, path, better, fmt, target)

    def q_target(prefix, speedup, text):
        def t(c, gl):
            cp, gp, gr = g(c, prefix, "p50_ms"), g(gl, prefix, "p50_ms"), g(gl, prefix, "recall")
            if cp is None or gp is None or gr is None:
                return text, None
            return text, (cp / gp >= speedup) and gr >= 0.99
        return t

    rows = [
        row("ingest rows/s (until add() returns)", ("ingest_add_rows_s",), "higher", "{:,.0f}"),
        row("ingest rows/s incl. index build", ("ingest_total_rows_s",), "higher", "{:,.0f}",
            ratio_target(("ingest_total_rows_s",), 3, ">=3x")),
        row(f"query p50 ms (k=10, {nq} q)", ("query", "p50_ms"), "lower", "{:.2f}",
            q_target("query", 1.0, ">=1x & recall>=.99")),
        row("query p99 ms", ("query", "p99_ms"), "lower", "{:.2f}"),
        row("query QPS (1 thread, sequential)", ("query", "qps"), "higher", "{:,.0f}"),
        row("query recall@10", ("query", "recall"), "higher", "{:.4f}"),
    ]
    for t in FILTER_LEVELS:
        rows += [
            row(f"filtered {t}% p50 ms ({fq} q)", (f"filtered_{t}", "p50_ms"), "lower", "{:.2f}",
                q_target(f"filtered_{t}", 10.0, ">=10x & recall>=.99")),
            row(f"filtered {t}% p99 ms", (f"filtered_{t}", "p99_ms"), "lower", "{:.2f}"),
            row(f"filtered {t}% recall@10", (f"filtered_{t}", "recall"), "higher", "{:.4f}"),
        ]
    rows += [
        row(f"get $contains {ds_meta['contains']!r} p50 ms", ("contains", "p50_ms"), "lower", "{:.2f}",
            ratio_target(("contains", "p50_ms"), 3, ">=3x")),
        row("get $regex p50 ms", ("regex", "p50_ms"), "lower", "{:.2f}",
            ratio_target(("regex", "p50_ms"), 3, ">=3x")),
        row("get 1,000 ids p50 ms", ("get_ids", "p50_ms"), "lower", "{:.2f}"),
        row("update (metadata) rows/s (until calls return: durable)", ("update", "rows_s_calls"), "higher", "{:,.0f}",
            ratio_target(("update", "rows_s_calls"), 5, ">=5x")),
        row("update (metadata) rows/s (incl. flush + index build)", ("update", "rows_s"), "higher", "{:,.0f}"),
        row("upsert rows/s (until calls return: durable)", ("upsert", "rows_s_calls"), "higher", "{:,.0f}",
            ratio_target(("upsert", "rows_s_calls"), 5, ">=5x")),
        row("upsert rows/s (incl. flush + index build)", ("upsert", "rows_s"), "higher", "{:,.0f}"),
        row("delete rows/s (until calls return: durable)", ("delete", "rows_s_calls"), "higher", "{:,.0f}",
            ratio_target(("delete", "rows_s_calls"), 5, ">=5x")),
        row("delete rows/s (incl. flush + index build)", ("delete", "rows_s"), "higher", "{:,.0f}"),
        row("reopen-to-first-result ms", ("reopen", "reopen_ms"), "lower", "{:.1f}",
            ratio_target(("reopen", "reopen_ms"), 1, "<= chroma")),
        row("  interpreter+import s (separate)", ("reopen", "spawn_to_imported_s"), "lower", "{:.2f}"),
        row("disk MiB after ingest+writes (du)", ("disk_final", "allocated"), "lower", "{:.1f}",
            ratio_target(("disk_final", "allocated"), 1, "<= chroma")),
        row("peak RSS MiB (whole run)", ("peak_rss_mb",), "lower", "{:.0f}"),
    ]
    scale = {("disk_final", "allocated"): 1 / MB}
    return rows, scale


def adv(c, gl, better) -> float:
    """How many times better gleandb is (>1 = gleandb better)."""
    if better == "higher":
        return gl / c if c else float("inf")
    return c / gl if gl else float("inf")


def print_report(results: dict, ds: "datasets.Dataset", args, machine: dict) -> dict:
    c = results.get("chromadb") or {}
    gl = results.get("gleandb") or {}
    rows, scale = metric_rows(ds.n, args.filtered_queries, args.queries, ds.meta)
    print()
    print(f"gleandb vs chromadb 1.5.9 -- n={ds.n:,} x {ds.meta['dim']}-d float32, "
          f"space=cosine (metadata={{'hnsw:space': 'cosine'}}), k={K}, both engines at default settings")
    print(f"machine: {machine['cpu']} | cores={machine['cpu_count']} (affinity {machine['affinity']}) | "
          f"load avg {machine['loadavg']} | mem {machine['mem_gib']} GiB | {machine['platform']}")
    for eng, r in (("chromadb", c), ("gleandb", gl)):
        e = r.get("env") or {}
        if e:
            default_threads = f"unset (BLAS/OpenMP default to all {e.get('affinity')} cores)"
            extra = f", faiss omp threads={e['faiss_omp_threads']}" if "faiss_omp_threads" in e else ""
            print(f"  {eng}: v{e.get('engine_version')} python {e.get('python')} numpy {e.get('numpy')} "
                  f"BLAS {e.get('numpy_blas')}; thread env {e.get('thread_env') or default_threads}{extra}")
    print("ratio = how many times better gleandb is (>1 = gleandb better; 'better' says which direction wins)")
    print()
    hdr = ("metric", "better", "chromadb", "gleandb", "ratio", "target", "")
    table = []
    summary = []
    for label, path, better, fmt, target in rows:
        cv, gv = g(c, *path), g(gl, *path)
        s = scale.get(path, 1)

        def f(v, r):
            if v is None:
                err = r.get("fatal_error") or next((r[k] for k in r if k.endswith("_error")), None)
                return "ERR" if err else "-"
            return fmt.format(v * s)

        ratio = "-"
        if cv is not None and gv is not None and "recall" not in path[-1]:
            ratio = f"{adv(cv, gv, better):.2f}x"
        ttxt, verdict = ("", None)
        if target:
            ttxt, verdict = target(c, gl)
        mark = "" if not target else ("PASS" if verdict else ("FAIL" if verdict is False else "n/a"))
        table.append((label, better, f(cv, c), f(gv, gl), ratio, ttxt, mark))
        if target:
            summary.append({"metric": label, "target": ttxt, "result": mark})
    widths = [max(len(str(r[i])) for r in [hdr] + table) for i in range(len(hdr))]
    line = lambda r: "  ".join(str(x).ljust(w) if i in (0, 1, 5, 6) else str(x).rjust(w)  # noqa: E731
                               for i, (x, w) in enumerate(zip(r, widths)))
    print(line(hdr))
    print("  ".join("-" * w for w in widths))
    for r in table:
        print(line(r))
    print()
    # extra facts / sanity checks
    for eng, r in (("chromadb", c), ("gleandb", gl)):
        if not r:
            continue
        if r.get("fatal_error"):
            print(f"!! {eng}: {r['fatal_error']}")
        for k, v in r.items():
            if k.endswith("_error") and k != "fatal_error":
                print(f"!! {eng}: {k[:-6]} failed: {v}")
        ro = r.get("reopen") or {}
        if ro.get("fatal_error"):
            print(f"!! {eng}: reopen failed: {ro['fatal_error']}")
        if "count_final" in r and r["count_final"] != r.get("count_expected"):
            print(f"!! {eng}: count() after writes = {r['count_final']}, expected {r.get('count_expected')}")
        if "count_after_ingest" in r and r["count_after_ingest"] != ds.n:
            print(f"!! {eng}: count() after ingest = {r['count_after_ingest']}, expected {ds.n}")
        if g(r, "get_ids", "short_results"):
            print(f"!! {eng}: get(ids=...) returned fewer rows than asked in {r['get_ids']['short_results']} calls")
        if "ingest_total_s" in r:
            fl = " (incl. client.flush())" if r.get("has_flush") else " (no flush(): add() indexes synchronously)"
            da = r.get("disk_after_ingest", {}).get("allocated")
            print(f"   {eng}: ingest {r['ingest_add_s']:.1f}s until add() returns, {r['ingest_total_s']:.1f}s total{fl}; "
                  f"disk after ingest {da / 2**20:.1f} MiB; RSS after data load {r.get('rss_after_data_load_mb', 0):.0f} MiB "
                  f"(the benchmark's own copy of the data, counted in peak RSS for both engines)")
        for w in ("update", "upsert", "delete"):
            if g(r, w, "flush_s") is not None:
                print(f"   {eng}: {w} {r[w]['rows']} rows: {r[w]['s']:.2f}s until calls return "
                      f"({r[w]['rows_s_calls']:,.0f} rows/s) + {r[w]['flush_s']:.2f}s flush()")
        if ro.get("reopen_ms") is not None:
            print(f"   {eng}: reopen {ro['reopen_ms']:.1f} ms to first result, then 2nd query {ro['second_query_ms']:.1f} ms; "
                  f"interpreter+import {ro.get('spawn_to_imported_s', float('nan')):.2f}s (import {eng} alone "
                  f"{ro.get('import_engine_s', float('nan')):.2f}s)")
    # where_document correctness: ground truth and cross-engine
    truth = {"contains": ds.meta["contains_ids"], "regex": ds.meta["regex_ids"]}
    for kind in ("contains", "regex"):
        sets = {eng: set(r[kind]["ids"]) for eng, r in (("chromadb", c), ("gleandb", gl))
                if isinstance(r.get(kind), dict)}
        pat = ds.meta["contains" if kind == "contains" else "regex"]
        print(f"   ${kind} {pat!r}: exact (Python) matches {len(truth[kind])}"
              + "".join(f", {e} {len(s)}" for e, s in sets.items()))
        for eng, s in sets.items():
            if s != set(truth[kind]):
                print(f"!! {eng}: ${kind} result differs from Python ground truth "
                      f"({len(s - set(truth[kind]))} extra, {len(set(truth[kind]) - s)} missing)")
        if len(sets) == 2 and sets["chromadb"] != sets["gleandb"]:
            a, b = sets["chromadb"], sets["gleandb"]
            print(f"!!!!!! MISMATCH: ${kind} id sets differ between engines: "
                  f"{len(a - b)} only in chromadb, {len(b - a)} only in gleandb !!!!!!")
    # reopen first-result agreement
    fr = {eng: g(r, "reopen", "reopen_first_ids") for eng, r in (("chromadb", c), ("gleandb", gl))}
    if fr["chromadb"] and fr["gleandb"] and set(fr["chromadb"]) != set(fr["gleandb"]):
        print(f"   note: first query after reopen returned different top-10 sets "
              f"(overlap {len(set(fr['chromadb']) & set(fr['gleandb']))}/10)")
    if summary:
        npass = sum(s["result"] == "PASS" for s in summary)
        if not gl:
            print("\ntargets: not evaluated (gleandb not run)")
        else:
            print(f"\ntargets: {npass}/{len(summary)} PASS"
                  + (" (gleandb failed: see errors above)" if gl.get("fatal_error") else ""))
    return {"table": [dict(zip(hdr[:-1] + ("verdict",), r)) for r in table], "targets": summary}


def machine_facts() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f}"
    except OSError:
        pass
    return {
        "cpu": cpu, "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()), "mem_gib": mem,
        "platform": platform.platform(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="rows to ingest (default 100,000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--queries", type=int, default=1000, help="unfiltered queries (max 1000)")
    ap.add_argument("--filtered-queries", type=int, default=200, help="queries per filter level")
    ap.add_argument("--doc-reps", type=int, default=5, help="repetitions of each where_document get")
    ap.add_argument("--get-reps", type=int, default=20, help="repetitions of get(1,000 ids)")
    ap.add_argument("--chroma-python", default=DEFAULT_CHROMA_PY,
                    help=f"interpreter with chromadb==1.5.9 (default {DEFAULT_CHROMA_PY})")
    ap.add_argument("--gleandb-python", default=sys.executable,
                    help="interpreter with gleandb (default: this one)")
    ap.add_argument("--only", choices=["chroma", "chromadb", "gleandb"], default=None)
    ap.add_argument("--json", default=None, help="write all raw results here")
    ap.add_argument("--tmpdir", default=None, help="where the temporary databases go (default: system tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary database directories")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per engine run")
    args = ap.parse_args()
    args.queries = min(args.queries, datasets.N_QUERIES)
    args.filtered_queries = min(args.filtered_queries, datasets.N_QUERIES)

    t0 = time.perf_counter()
    data = datasets.ensure_dataset(args.n, args.seed)
    ds = datasets.Dataset(data)
    # exact ground truth (cached next to the data)
    gt = {"all": datasets.ground_truth(ds, args.queries, K)}
    for t in FILTER_LEVELS:
        gt[t] = datasets.ground_truth(ds, args.filtered_queries, K, bucket_lt=t)
    import re
    rx = re.compile(ds.meta["regex"])
    ds.meta["contains_ids"] = [i for i in range(ds.n) if ds.meta["contains"] in ds.documents[i]]
    ds.meta["regex_ids"] = [i for i in range(ds.n) if rx.search(ds.documents[i])]
    print(f"[bench] data + ground truth ready in {time.perf_counter() - t0:.1f}s ({data})", file=sys.stderr)

    only = {"chroma": "chromadb"}.get(args.only, args.only)
    pythons = {"chromadb": args.chroma_python, "gleandb": args.gleandb_python}
    machine = machine_facts()
    results: dict = {}
    for eng in ENGINES:
        if only and eng != only:
            continue
        results[eng] = run_engine(eng, pythons[eng], data, args, gt, args.tmpdir)
    report = print_report(results, ds, args, machine)

    if args.json:
        def strip(r):  # drop per-query id lists from the JSON dump
            if isinstance(r, dict):
                return {k: strip(v) for k, v in r.items() if k not in ("ids", "reopen_first_ids")}
            return r
        meta = {k: v for k, v in ds.meta.items() if not k.endswith("_ids")}
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "dataset": meta, "machine": machine,
                       "results": strip(results), **report}, f, indent=2)
        print(f"[bench] wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
