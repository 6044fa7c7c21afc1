"""One engine's side of bench_vs_chroma.py (run in that engine's own interpreter).

    python bench/bench_child.py --engine chromadb|gleandb --phase main   --data DIR --path DBDIR --out res.json
    python bench/bench_child.py --engine chromadb|gleandb --phase reopen --data DIR --path DBDIR --out res.json
    python bench/bench_child.py --engine chromadb|gleandb --phase text --corpus stdlib --path DBDIR --out res.json

bench_vs_chroma.py runs the main and reopen phases; bench_scale.py runs the main phase
with ``--threads`` / ``--text-queries`` / ``--no-writes`` and the text phase (the same
sections as bench_child_lance.py, which runs LanceDB).

Uses only the chromadb API (``import chromadb as db`` / ``import gleandb as db``),
except ``client.flush()`` which is called when the client has it (gleandb: wait for
background indexing).  Results are written to ``--out`` after every section, so a
crash or timeout still leaves the sections that finished.  Errors inside a
section are recorded as ``<section>_error`` and the run continues where that
makes sense.
"""

from __future__ import annotations

import time

_T_PROCESS = time.time()  # as early as possible (interpreter start ~ this)

import argparse
import importlib
import json
import os
import resource
import sys
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets  # noqa: E402
import textbench  # noqa: E402

COLLECTION = "bench"
K = 10
INCLUDE_QUERY = ["metadatas", "documents", "distances"]
INCLUDE_GET = ["metadatas", "documents"]
ADD_BATCH = 5000
WRITE_BATCH = 1000
FILTER_LEVELS = (1, 10, 70)  # bucket < t  ->  t % of rows


def log(msg: str) -> None:
    print(f"[{ENGINE}] {msg}", file=sys.stderr, flush=True)
    if RSS_TRACE is not None:
        RSS_TRACE.mark(msg)


class RssTrace:
    """``--rss-trace FILE``: VmRSS / VmHWM (MiB) every ``interval`` s, and a line per log
    message (section start/end), to find where the peak happens (docs/ARCHITECTURE.md,
    "Peak memory of flush and compaction")."""

    def __init__(self, path: str, interval: float = 0.05):
        import threading

        self._f = open(path, "w", buffering=1)
        self._t0 = time.time()
        self._mu = threading.Lock()
        threading.Thread(target=self._run, args=(interval,), daemon=True).start()

    def _line(self, tag: str) -> None:
        vals = _status_mb()
        with self._mu:
            self._f.write(f"{time.time() - self._t0:9.2f} rss={vals.get('VmRSS')} anon={vals.get('RssAnon')} "
                          f"file={vals.get('RssFile')} hwm={vals.get('VmHWM')} {tag}\n")

    def mark(self, msg: str) -> None:
        self._line(f"| {msg}")

    def _run(self, interval: float) -> None:
        while True:
            self._line("")
            time.sleep(interval)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _status_mb(keys=("VmRSS", "VmHWM", "RssAnon", "RssFile")) -> dict:
    vals = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k = line.split(":", 1)[0]
                if k in keys:
                    vals[k] = int(line.split()[1]) // 1024
    except OSError:
        pass
    return vals


class AnonPeak:
    """Highest ``RssAnon`` seen (sampled every 50 ms): the process's private memory, without
    the pages of memory-mapped files that ``ru_maxrss`` also counts (those belong to the
    page cache; the kernel takes them back under pressure and re-reads the file)."""

    def __init__(self, interval: float = 0.05):
        import threading

        self.max_mb = 0
        threading.Thread(target=self._run, args=(interval,), daemon=True).start()

    def sample(self) -> int:
        self.max_mb = max(self.max_mb, _status_mb(("RssAnon",)).get("RssAnon", 0))
        return self.max_mb

    def _run(self, interval: float) -> None:
        while True:
            self.sample()
            time.sleep(interval)


def record_peaks(res) -> None:
    """The whole run's peak RSS, and its peak private (anonymous) RSS."""
    res["peak_rss_mb"] = peak_rss_mb()
    if ANON_PEAK is not None:
        res["peak_anon_mb"] = ANON_PEAK.sample()


def current_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


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


def pct(xs, q) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q)) if len(xs) else float("nan")


def to_idx(ids) -> list[int]:
    return [int(s.rsplit("-", 1)[1]) for s in ids]


class Results(dict):
    def __init__(self, out: str):
        super().__init__()
        self.out = out

    def save(self) -> None:
        tmp = self.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self, f)
        os.replace(tmp, self.out)


def env_facts(db) -> dict:
    facts = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "engine_version": getattr(db, "__version__", "?"),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "thread_env": {k: os.environ[k] for k in (
            "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")
            if k in os.environ},
    }
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        facts["numpy_blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        facts["numpy_blas"] = "?"
    if "faiss" in sys.modules:
        try:
            facts["faiss_omp_threads"] = sys.modules["faiss"].omp_get_max_threads()
        except Exception:
            pass
    return facts


def maybe_flush(client) -> float | None:
    """Call client.flush() if the engine has it; return seconds spent (None if absent)."""
    fl = getattr(client, "flush", None)
    if not callable(fl):
        return None
    t0 = time.perf_counter()
    fl()
    return time.perf_counter() - t0


def section(res: Results, name: str):
    """Context manager that records exceptions as res[name+'_error'] and keeps going."""

    class _S:
        def __enter__(self):
            log(f"{name} ...")
            self.t0 = time.perf_counter()
            return self

        def __exit__(self, et, ev, tb):
            if et is not None:
                res[f"{name}_error"] = f"{et.__name__}: {ev}"
                log(f"{name} FAILED: {et.__name__}: {ev}")
                traceback.print_exception(et, ev, tb, file=sys.stderr)
            else:
                log(f"{name} done in {time.perf_counter() - self.t0:.1f}s")
            res.save()
            return et is not None and issubclass(et, Exception)

    return _S()


def run_queries(col, Q: np.ndarray, where=None) -> dict:
    lat, got = [], []
    t_all = time.perf_counter()
    for q in Q:
        t0 = time.perf_counter()
        r = col.query(query_embeddings=[q], n_results=K, where=where, include=INCLUDE_QUERY)
        lat.append((time.perf_counter() - t0) * 1e3)
        got.append(to_idx(r["ids"][0]))
    wall = time.perf_counter() - t_all
    return {
        "n": len(Q), "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "mean_ms": float(np.mean(lat)),
        "qps": len(Q) / wall, "ids": got,
    }


def run_queries_threaded(col, Q: np.ndarray, threads: int) -> dict:
    """The same queries from ``threads`` client threads at once: throughput under concurrency."""
    from concurrent.futures import ThreadPoolExecutor

    def one(q):
        t0 = time.perf_counter()
        col.query(query_embeddings=[q], n_results=K, include=INCLUDE_QUERY)
        return (time.perf_counter() - t0) * 1e3

    t_all = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        lat = list(ex.map(one, Q))
    wall = time.perf_counter() - t_all
    return {"threads": threads, "n": len(Q), "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "qps": len(Q) / wall}


def timed(fn, items) -> dict:
    """p50/p99 ms and QPS of ``fn(item)`` over ``items`` (one warm-up call first, not timed)."""
    fn(items[0])
    lat, out = [], []
    t_all = time.perf_counter()
    for it in items:
        t0 = time.perf_counter()
        out.append(fn(it))
        lat.append((time.perf_counter() - t0) * 1e3)
    wall = time.perf_counter() - t_all
    return {"n": len(items), "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "qps": len(items) / wall,
            "results": out}


def text_on_main(col, ds, a, res: Results) -> None:
    """BM25 and hybrid latency on the main collection (gleandb's retrieve(); chromadb has no BM25)."""
    if not hasattr(col, "retrieve"):
        res["text_unsupported"] = "no BM25 / hybrid search in this engine's API"
        return
    texts = textbench.keyword_queries(ds.documents, ds.n, a.text_queries, a.seed)
    Q = ds.queries[: a.text_queries]
    items = list(range(len(texts)))
    r = timed(lambda i: col.retrieve(query_texts=[texts[i]], mode="bm25", n_results=K, include=[]), items)
    r["hits"] = sum(len(x["ids"][0]) for x in r.pop("results"))
    res["fts"] = r
    r = timed(lambda i: col.retrieve(query_texts=[texts[i]], query_embeddings=[Q[i]], n_results=K,
                                     include=[]), items)
    r.pop("results")
    res["hybrid"] = r


def main_phase(a, db, res: Results) -> None:
    ds = datasets.Dataset(a.data)
    n = ds.n
    res["n"] = n
    res["rss_after_data_load_mb"] = current_rss_mb()
    res["anon_after_data_load_mb"] = _status_mb(("RssAnon",)).get("RssAnon")
    E = np.ascontiguousarray(ds.embeddings, dtype=np.float32)
    docs, metas, ids = ds.documents, ds.metadatas, ds.ids
    rng = np.random.default_rng(a.seed + 1000)

    client = db.PersistentClient(path=a.path)
    config = {"vector_index": {"quantization": a.quantization}} if a.quantization else None
    col = client.create_collection(COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None,
                                   **({"configuration": config} if config else {}))

    # ---- ingest ------------------------------------------------------------
    with section(res, "ingest"):
        t0 = time.perf_counter()
        for lo in range(0, n, ADD_BATCH):
            hi = min(n, lo + ADD_BATCH)
            col.add(ids=ids[lo:hi], embeddings=E[lo:hi], documents=docs[lo:hi], metadatas=metas[lo:hi])
        t_add = time.perf_counter() - t0
        fl = maybe_flush(client)
        t_total = time.perf_counter() - t0
        res["ingest_add_s"] = t_add
        res["ingest_total_s"] = t_total
        res["has_flush"] = fl is not None
        res["ingest_add_rows_s"] = n / t_add
        res["ingest_total_rows_s"] = n / t_total
        res["count_after_ingest"] = col.count()
        res["disk_after_ingest"] = dir_bytes(a.path)
        res["rss_after_ingest_mb"] = current_rss_mb()
    if "ingest_error" in res:
        return

    Qn = ds.queries[: a.queries]
    Qf = ds.queries[: a.filtered_queries]

    # ---- unfiltered queries ------------------------------------------------
    with section(res, "query"):
        for q in ds.queries[-10:]:  # warm-up (not timed; not part of the measured set)
            col.query(query_embeddings=[q], n_results=K, include=INCLUDE_QUERY)
        res["query"] = run_queries(col, Qn)
    if a.threads > 1:
        with section(res, "query_threads"):
            res["query_threads"] = run_queries_threaded(col, Qn, a.threads)

    # ---- filtered queries --------------------------------------------------
    for t in FILTER_LEVELS:
        with section(res, f"filtered_{t}"):
            res[f"filtered_{t}"] = run_queries(col, Qf, where={"bucket": {"$lt": t}})

    # ---- where_document get --------------------------------------------------
    for kind, wd in (("contains", {"$contains": ds.meta["contains"]}), ("regex", {"$regex": ds.meta["regex"]})):
        with section(res, kind):
            lat, idset = [], None
            for _ in range(a.doc_reps):
                t0 = time.perf_counter()
                r = col.get(where_document=wd, include=[])
                lat.append((time.perf_counter() - t0) * 1e3)
                idset = r["ids"]
            res[kind] = {"p50_ms": pct(lat, 50), "min_ms": min(lat), "reps": len(lat),
                         "count": len(idset), "ids": sorted(to_idx(idset))}

    # ---- get by ids ----------------------------------------------------------
    with section(res, "get_ids"):
        lat, bad = [], 0
        for _ in range(a.get_reps):
            sel = rng.choice(n, size=min(1000, n), replace=False)
            want = [ids[i] for i in sel]
            t0 = time.perf_counter()
            r = col.get(ids=want, include=INCLUDE_GET)
            lat.append((time.perf_counter() - t0) * 1e3)
            bad += len(r["ids"]) != len(want)
        res["get_ids"] = {"p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "reps": len(lat),
                          "ids_per_call": min(1000, n), "short_results": bad}

    if a.text_queries > 0:
        with section(res, "text"):
            text_on_main(col, ds, a, res)

    if a.no_writes:
        record_peaks(res)
        return

    # ---- writes ----------------------------------------------------------------
    w = datasets.extra_rows(n)
    h = w // 2
    perm = rng.permutation(n)
    upd_rows, ups_rows, del_rows = perm[:w], perm[w : w + h], perm[w + h : 2 * w + h]
    res["write_rows"] = w

    def timed_batches(fn, total):
        t0 = time.perf_counter()
        for lo in range(0, total, WRITE_BATCH):
            fn(lo, min(total, lo + WRITE_BATCH))
        t_call = time.perf_counter() - t0
        fl = maybe_flush(client)
        t_all = time.perf_counter() - t0
        return {"rows": total, "s": t_call, "rows_s_calls": total / t_call,
                "s_incl_flush": t_all, "rows_s": total / t_all, "flush_s": fl}

    with section(res, "update"):
        new_meta = []
        for i in upd_rows:
            m = dict(metas[i])
            m["flag"] = not m["flag"]
            m["score"] = round(1.0 - m["score"], 4)
            m["edited"] = True
            new_meta.append(m)
        up_ids = [ids[i] for i in upd_rows]
        res["update"] = timed_batches(
            lambda lo, hi: col.update(ids=up_ids[lo:hi], metadatas=new_meta[lo:hi]), w)

    with section(res, "upsert"):
        # first half replaces existing rows, second half inserts new ids n..n+h-1
        u_ids = [ids[i] for i in ups_rows] + ids[n : n + (w - h)]
        u_emb = ds.extra[:w]
        u_docs = docs[n : n + w]
        u_meta = metas[n : n + w]
        res["upsert"] = timed_batches(
            lambda lo, hi: col.upsert(ids=u_ids[lo:hi], embeddings=u_emb[lo:hi],
                                      documents=u_docs[lo:hi], metadatas=u_meta[lo:hi]), w)

    with section(res, "delete"):
        d_ids = [ids[i] for i in del_rows]
        res["delete"] = timed_batches(lambda lo, hi: col.delete(ids=d_ids[lo:hi]), w)

    with section(res, "final_count"):
        res["count_final"] = col.count()
        res["count_expected"] = n + (w - h) - len(del_rows)  # fewer than w rows are left to delete when n < 2.5 w

    record_peaks(res)


def reopen_phase(a, db, res: Results, t_imported: float) -> None:
    ds_q = np.load(Path(a.data) / "queries.npy")
    q = ds_q[0]
    t0 = time.perf_counter()
    client = db.PersistentClient(path=a.path)
    col = client.get_collection(COLLECTION, embedding_function=None)
    r = col.query(query_embeddings=[q], n_results=K, include=INCLUDE_QUERY)
    t1 = time.perf_counter()
    r2t = time.perf_counter()
    col.query(query_embeddings=[ds_q[1]], n_results=K, include=INCLUDE_QUERY)
    res["reopen_ms"] = (t1 - t0) * 1e3
    res["second_query_ms"] = (time.perf_counter() - r2t) * 1e3
    res["reopen_result_len"] = len(r["ids"][0])
    res["reopen_first_ids"] = to_idx(r["ids"][0])
    record_peaks(res)


def text_phase(a, db, res: Results) -> None:
    """Known-item corpus: quality and latency of dense, BM25 and hybrid search (bench/textbench.py)."""
    passages, P, queries, Q = textbench.load_corpus(a.corpus)
    rel = [r for _t, r in queries]
    client = db.PersistentClient(path=a.path)
    col = client.create_collection("text", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    t0 = time.perf_counter()
    for lo in range(0, len(passages), ADD_BATCH):
        chunk = passages[lo:lo + ADD_BATCH]
        col.add(ids=[p for p, _ in chunk], documents=[t for _, t in chunk], embeddings=P[lo:lo + ADD_BATCH])
    maybe_flush(client)
    res["text_ingest_s"] = time.perf_counter() - t0
    res["corpus"] = {"name": a.corpus, "passages": len(passages), "queries": len(queries)}
    items = list(range(len(queries)))
    cases = {"dense": lambda i: col.query(query_embeddings=[Q[i]], n_results=K, include=[])["ids"][0]}
    if hasattr(col, "retrieve"):
        cases["fts"] = lambda i: col.retrieve(query_texts=[queries[i][0]], mode="bm25", n_results=K,
                                              include=[])["ids"][0]
        cases["hybrid"] = lambda i: col.retrieve(query_texts=[queries[i][0]], query_embeddings=[Q[i]],
                                                 n_results=K, include=[])["ids"][0]
    else:
        res["text_unsupported"] = "no BM25 / hybrid search in this engine's API"
    for name, fn in cases.items():
        with section(res, f"corpus_{name}"):
            r = timed(fn, items)
            r.update(textbench.known_item(r.pop("results"), rel))
            res[f"corpus_{name}"] = r
    record_peaks(res)


def main() -> None:
    global ENGINE, RSS_TRACE, ANON_PEAK
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["chromadb", "gleandb"], required=True)
    ap.add_argument("--phase", choices=["main", "reopen", "text"], default="main")
    ap.add_argument("--data", default=None, help="dataset directory (main and reopen phases)")
    ap.add_argument("--path", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--filtered-queries", type=int, default=200)
    ap.add_argument("--doc-reps", type=int, default=5)
    ap.add_argument("--get-reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="also run the unfiltered queries from N threads")
    ap.add_argument("--text-queries", type=int, default=0, help="BM25 / hybrid keyword queries (0: skip)")
    ap.add_argument("--no-writes", action="store_true", help="skip the update / upsert / delete sections")
    ap.add_argument("--corpus", default="stdlib", help="text phase: a bench/corpora.py corpus")
    ap.add_argument("--t-spawn", type=float, default=None, help="parent's time.time() just before spawning")
    ap.add_argument("--quantization", default=None, help="gleandb: vector_index.quantization (sq8)")
    ap.add_argument("--rss-trace", default=None, help="write RSS every 50 ms and section markers to this file")
    a = ap.parse_args()
    ENGINE = a.engine
    ANON_PEAK = AnonPeak()
    if a.rss_trace:
        RSS_TRACE = RssTrace(a.rss_trace)
    res = Results(a.out)
    res["engine"] = a.engine
    res["phase"] = a.phase
    try:
        t_imp0 = time.time()
        db = importlib.import_module(a.engine)
        t_imported = time.time()
        res["import_engine_s"] = t_imported - t_imp0
        if a.t_spawn is not None:
            res["spawn_to_imported_s"] = t_imported - a.t_spawn  # interpreter start + imports
        res["env"] = env_facts(db)
        res.save()
        if a.phase == "main":
            main_phase(a, db, res)
            res["env"] = env_facts(db)  # again: engines may load faiss etc. lazily
        elif a.phase == "text":
            text_phase(a, db, res)
        else:
            reopen_phase(a, db, res, t_imported)
    except BaseException as e:  # noqa: BLE001 - report anything, then fail
        res["fatal_error"] = f"{type(e).__name__}: {e}"
        res.save()
        traceback.print_exc()
        sys.exit(1)
    res["done"] = True
    res.save()
    # Normal interpreter exit (engines' atexit hooks run, as in a real program);
    # the parent measures disk usage after this process has exited.


ENGINE = "?"
RSS_TRACE: RssTrace | None = None
ANON_PEAK: AnonPeak | None = None

if __name__ == "__main__":
    main()
