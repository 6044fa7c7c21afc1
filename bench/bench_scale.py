"""gleandb vs chromadb vs LanceDB at several sizes: same data, same queries, one table per size.

    .venv/bin/python bench/bench_scale.py [--sizes 10000] [--engines gleandb,chroma,lancedb] \
        [--threads 4] [--text-queries 200] [--corpus stdlib] [--lance-index IVF_PQ] [--lance-refine 10]

    # the issue's sizes (1M takes hours on 2 cores; see bench/README.md)
    .venv/bin/python bench/bench_scale.py --sizes 100000,300000,1000000

Each engine runs in its own subprocess on a fresh directory, one after the other:
gleandb and chromadb through bench/bench_child.py (the chromadb API, as in
bench_vs_chroma.py), LanceDB through bench/bench_child_lance.py (its own embedded API).
Data and exact ground truth come from bench/datasets.py; recall is computed here.
Before the sizes, a known-item text corpus (bench/corpora.py) compares dense, BM25 and
hybrid search quality and latency. Prints the tables and writes them to ``--out``
(default bench/results-scale.txt). bench/README.md says what each row measures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_vs_chroma as bvc  # noqa: E402
import datasets  # noqa: E402

LANCE_CHILD = HERE / "bench_child_lance.py"
ENGINES = ("gleandb", "chromadb", "lancedb")
ALIASES = {"chroma": "chromadb", "glean": "gleandb", "lance": "lancedb"}
K = 10
FILTER_LEVELS = bvc.FILTER_LEVELS
MB = 1024 * 1024


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------


def child_args(eng: str, a) -> tuple[Path, list[str]]:
    extra = ["--seed", str(a.seed), "--queries", str(a.queries), "--filtered-queries", str(a.filtered_queries),
             "--doc-reps", str(a.doc_reps), "--get-reps", str(a.get_reps), "--threads", str(a.threads),
             "--text-queries", str(a.text_queries), "--no-writes", "--corpus", a.corpus]
    if eng == "lancedb":
        return LANCE_CHILD, extra + ["--index", a.lance_index, "--refine", str(a.lance_refine),
                                     "--flat-queries", str(a.flat_queries)]
    if eng == "gleandb" and a.gleandb_quantization != "none":
        extra = extra + ["--quantization", a.gleandb_quantization]
    return bvc.CHILD, extra


def run_one(eng: str, phase: str, data: Path | None, a, gt: dict | None) -> dict:
    print(f"\n=== {eng} {phase} {'' if data is None else data.name} ===", file=sys.stderr, flush=True)
    workdir = tempfile.mkdtemp(prefix=f"scale-{eng}-", dir=a.tmpdir)
    db_path = os.path.join(workdir, "db")
    child, extra = child_args(eng, a)
    if a.rss_trace_dir and child == bvc.CHILD:  # RSS every 50 ms with section markers
        os.makedirs(a.rss_trace_dir, exist_ok=True)
        extra = extra + ["--rss-trace", os.path.join(a.rss_trace_dir, f"{eng}-{phase}-{data.name if data else 'text'}.trace")]
    try:
        r = bvc.run_child(a.python, eng, phase, data, db_path, workdir, extra, a.timeout, child=child)
        if os.path.isdir(db_path):
            r["disk_final"] = bvc.dir_bytes(db_path)  # after the child has exited
        if gt is not None:
            for key, truth in (("query", gt["all"]), ("query_alt", gt["all"]), ("query_flat", gt["all"]),
                               *((f"filtered_{t}", gt[t]) for t in FILTER_LEVELS)):
                q = r.get(key)
                if isinstance(q, dict) and "ids" in q:
                    q["recall"] = bvc.recall(q["ids"], truth[: len(q["ids"])])
        return r
    finally:
        if a.keep:
            print(f"[{eng}] kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------


def g(r: dict, *path):
    return bvc.g(r, *path)


def adv(base, other, better) -> str:
    """How many times better gleandb (``base``) is than ``other``: >1 = gleandb better."""
    if base is None or other is None or not base or not other:
        return "-"
    return f"{(base / other) if better == 'higher' else (other / base):.2f}x"


def fmt_cell(r: dict, path, fmt: str, scale: float = 1.0, missing: str | None = None) -> str:
    v = g(r, *path)
    if v is not None:
        return fmt.format(v * scale)
    if missing is not None and not r.get("fatal_error"):
        return missing
    err = r.get("fatal_error") or next((r[k] for k in r if k.endswith("_error")), None)
    return "ERR" if err else "-"


def render(hdr: tuple, rows: list[tuple]) -> list[str]:
    widths = [max(len(str(x[i])) for x in [hdr, *rows]) for i in range(len(hdr))]
    line = lambda r: "  ".join(str(x).ljust(w) if i in (0, 1) else str(x).rjust(w)  # noqa: E731
                               for i, (x, w) in enumerate(zip(r, widths))).rstrip()
    return [line(hdr), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def size_table(n: int, res: dict, a, meta: dict) -> list[str]:
    engines = [e for e in ENGINES if e in res]
    G, _C, L = (res.get(e) or {} for e in ENGINES)
    no_text = "n/a (no BM25)"
    lance_q = f"{a.lance_index}, refine_factor {a.lance_refine or 'none'}" if a.lance_index != "none" else "no index"
    spec = [
        ("ingest rows/s (until add() returns)", ("ingest_add_rows_s",), "higher", "{:,.0f}", 1, None),
        ("ingest rows/s until indexed", ("ingest_total_rows_s",), "higher", "{:,.0f}", 1, None),
        (f"query p50 ms (k=10, {a.queries} q)", ("query", "p50_ms"), "lower", "{:.2f}", 1, None),
        ("query p99 ms", ("query", "p99_ms"), "lower", "{:.2f}", 1, None),
        ("query QPS (1 thread)", ("query", "qps"), "higher", "{:,.0f}", 1, None),
        (f"query QPS ({a.threads} threads)", ("query_threads", "qps"), "higher", "{:,.0f}", 1, None),
        ("query recall@10", ("query", "recall"), "higher", "{:.4f}", 1, None),
    ]
    for t in FILTER_LEVELS:
        spec += [
            (f"filtered {t}% p50 ms ({a.filtered_queries} q)", (f"filtered_{t}", "p50_ms"), "lower", "{:.2f}", 1, None),
            (f"filtered {t}% p99 ms", (f"filtered_{t}", "p99_ms"), "lower", "{:.2f}", 1, None),
            (f"filtered {t}% recall@10", (f"filtered_{t}", "recall"), "higher", "{:.4f}", 1, None),
        ]
    spec += [
        (f"get $contains {meta['contains']!r} p50 ms", ("contains", "p50_ms"), "lower", "{:.2f}", 1, None),
        ("get $regex p50 ms", ("regex", "p50_ms"), "lower", "{:.2f}", 1, None),
        ("get 1,000 ids p50 ms", ("get_ids", "p50_ms"), "lower", "{:.2f}", 1, None),
        (f"BM25 top-10 p50 ms ({a.text_queries} keyword q)", ("fts", "p50_ms"), "lower", "{:.2f}", 1, no_text),
        ("hybrid (dense+BM25) top-10 p50 ms", ("hybrid", "p50_ms"), "lower", "{:.2f}", 1, no_text),
        ("disk MiB (du, after ingest + indexes)", ("disk_final", "allocated"), "lower", "{:.1f}", 1 / MB, None),
        ("peak RSS MiB (whole run)", ("peak_rss_mb",), "lower", "{:,.0f}", 1, None),
        ("peak RSS MiB minus the bench's data copy", ("rss_engine_mb",), "lower", "{:,.0f}", 1, None),
        ("peak private RSS MiB (RssAnon: no mapped file pages)", ("peak_anon_mb",), "lower", "{:,.0f}", 1, None),
        ("peak private RSS MiB minus the data copy", ("anon_engine_mb",), "lower", "{:,.0f}", 1, None),
    ]
    for r in res.values():
        if r.get("peak_rss_mb") is not None and r.get("rss_after_data_load_mb") is not None:
            r["rss_engine_mb"] = r["peak_rss_mb"] - r["rss_after_data_load_mb"]
        if r.get("peak_anon_mb") is not None and r.get("anon_after_data_load_mb") is not None:
            r["anon_engine_mb"] = r["peak_anon_mb"] - r["anon_after_data_load_mb"]
    peers = [e for e in ("chromadb", "lancedb") if e in res and "gleandb" in res]  # one ratio column each
    hdr = ("metric", "better", *engines, *(f"gleandb vs {e}" for e in peers))
    rows = []
    for label, path, better, fmt, scale, missing in spec:
        cells = [fmt_cell(res[e], path, fmt, scale, missing if e == "chromadb" else None) for e in engines]
        ratio = lambda o: "-" if "recall" in path[-1] else adv(g(G, *path), g(o, *path), better)  # noqa: E731
        rows.append((label, better, *cells, *(ratio(res[e]) for e in peers)))
    if "lancedb" in res and a.lance_index != "none":
        for key, label in (("query_alt", f"{a.lance_index}, refine_factor {g(L, 'query_alt', 'refine') or 'none'}"),
                           ("query_flat", "no index (bypass_vector_index)")):
            nq = g(L, key, "n") or "?"
            rows.append((f"  lancedb {label}: p50 ms / recall@10 ({nq} q)", "",
                         *["" if e != "lancedb" else
                           (f"{g(L, key, 'p50_ms'):.2f} / {g(L, key, 'recall'):.4f}"
                            if g(L, key, "recall") is not None else "ERR") for e in engines], *("" for _ in peers)))
    machine = bvc.machine_facts()
    out = [f"n={n:,} x {meta['dim']}-d float32, cosine, k={K}; engines: " + ", ".join(
        f"{e} {g(res[e], 'env', 'engine_version') or '?'}" for e in engines),
        f"machine: {machine['cpu']} | cores={machine['cpu_count']} (affinity {machine['affinity']}) | "
        f"load avg {machine['loadavg']} (1/5/15 min, at the end of this size) | mem {machine['mem_gib']} GiB",
        f"lancedb: {lance_q} for the query and filtered rows (where(..., prefilter=True)); "
        "BTREE on id and bucket; native FTS on document",
        "ratio = how many times better gleandb is (>1: gleandb better); recall has no ratio", ""]
    if a.gleandb_quantization != "none":
        out.insert(3, f"gleandb: vector_index.quantization = {a.gleandb_quantization} (graph over 8-bit codes, "
                      "candidates re-scored with the full vectors)")
    out += render(hdr, rows)
    out.append("")
    out += notes(res, meta)
    return out


def error_lines(eng: str, r: dict) -> list[str]:
    """One "!!" line per error an engine's child reported (fatal, or one step's)."""
    out = [f"!! {eng}: {r['fatal_error']}"] if r.get("fatal_error") else []
    return out + [f"!! {eng}: {k[:-6]} failed: {v}" for k, v in r.items()
                  if k.endswith("_error") and k != "fatal_error"]


def notes(res: dict, meta: dict) -> list[str]:
    out = []
    truth = {"contains": len(meta["contains_ids"]), "regex": len(meta["regex_ids"])}
    for eng, r in res.items():
        out += error_lines(eng, r)
        if "count_after_ingest" in r and r["count_after_ingest"] != r.get("n"):
            out.append(f"!! {eng}: count after ingest {r['count_after_ingest']}, expected {r.get('n')}")
        if g(r, "get_ids", "short_results"):
            out.append(f"!! {eng}: get(1,000 ids) returned fewer rows in {r['get_ids']['short_results']} calls")
        for kind in ("contains", "regex"):
            got = g(r, kind, "ids")
            want = set(meta[f"{kind}_ids"])
            if got is not None and set(got) != want:
                out.append(f"!! {eng}: ${kind} returned {len(got)} ids, exact answer {truth[kind]} "
                           f"({len(set(got) - want)} extra, {len(want - set(got))} missing)")
        if "ingest_total_s" in r:
            extra = ""
            if isinstance(r.get("index_build_s"), dict):
                extra = " (index builds: " + ", ".join(f"{k} {v:.1f}s" for k, v in r["index_build_s"].items()) + ")"
            da = g(r, "disk_after_ingest", "allocated") or 0
            out.append(f"   {eng}: ingest {r['ingest_add_s']:.1f}s until add() returns, {r['ingest_total_s']:.1f}s "
                       f"until indexed{extra}; RSS after loading the bench's data {r.get('rss_after_data_load_mb', 0):.0f}"
                       f" MiB; disk while open {da / MB:.1f} MiB")
        if g(r, "fts", "hits") is not None:
            out.append(f"   {eng}: BM25 keyword queries returned {r['fts']['hits']} hits in all")
        if r.get("text_unsupported"):
            out.append(f"   {eng}: BM25 / hybrid rows: {r['text_unsupported']}")
    out.append(f"   $contains {meta['contains']!r}: {truth['contains']} exact matches; "
               f"$regex {meta['regex']!r}: {truth['regex']} (each engine checked against these)")
    return out


def text_table(res: dict, a) -> list[str]:
    engines = [e for e in ENGINES if e in res]
    c = next((r["corpus"] for r in res.values() if isinstance(r.get("corpus"), dict)), {})
    out = [f"text corpus {c.get('name', a.corpus)!r} (bench/corpora.py): {c.get('passages', '?')} passages, "
           f"{c.get('queries', '?')} known-item test queries, all-MiniLM-L6-v2 vectors; top 10, engines' defaults "
           "(gleandb: BM25 unstemmed, retrieve() default fusion; lancedb: native FTS with English stemming + "
           "stop words, hybrid = RRF reranker; dense = exact on both at this size)", ""]
    hdr = ("search", "metric", *engines)
    rows = []
    for kind, label in (("dense", "dense"), ("fts", "BM25 / FTS"), ("hybrid", "hybrid")):
        for m, fmt in (("ndcg10", "{:.4f}"), ("recall10", "{:.4f}"), ("mrr10", "{:.4f}"), ("p50_ms", "{:.2f}"),
                       ("p99_ms", "{:.2f}")):
            cells = [fmt_cell(res[e], (f"corpus_{kind}", m), fmt, 1,
                              "n/a (no BM25)" if e == "chromadb" and kind != "dense" else None) for e in engines]
            rows.append((label if m == "ndcg10" else "", m.replace("10", "@10").replace("_ms", " ms"), *cells))
    out += render(hdr, rows)
    for eng, r in res.items():
        out += error_lines(eng, r)
    return out


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def parse_engines(text: str) -> list[str]:
    out = []
    for e in (x.strip() for x in text.split(",") if x.strip()):
        e = ALIASES.get(e, e)
        if e not in ENGINES:
            raise SystemExit(f"--engines: unknown engine {e!r} (choose from gleandb, chroma, lancedb)")
        out.append(e)
    return out


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--sizes: expected comma-separated row counts, got {text!r}") from None
    if not sizes or min(sizes) < 1000:
        raise SystemExit(f"--sizes: each size must be >= 1000, got {text!r}")
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000", help="comma-separated row counts (default 10000)")
    ap.add_argument("--engines", default="gleandb,chroma,lancedb")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--queries", type=int, default=1000, help="unfiltered queries (max 1000)")
    ap.add_argument("--filtered-queries", type=int, default=200, help="queries per filter level")
    ap.add_argument("--flat-queries", type=int, default=200, help="LanceDB unindexed (brute-force) queries")
    ap.add_argument("--threads", type=int, default=4, help="client threads for the concurrent-QPS row (0: skip)")
    ap.add_argument("--text-queries", type=int, default=200, help="BM25 / hybrid keyword queries per size")
    ap.add_argument("--corpus", default="stdlib", help="bench/corpora.py corpus for the text table ('' to skip)")
    ap.add_argument("--doc-reps", type=int, default=5)
    ap.add_argument("--get-reps", type=int, default=20)
    ap.add_argument("--lance-index", default="IVF_PQ", choices=["IVF_PQ", "IVF_HNSW_SQ", "none"])
    ap.add_argument("--lance-refine", type=int, default=10, help="LanceDB refine_factor (0: none)")
    ap.add_argument("--gleandb-quantization", choices=["none", "sq8"], default="none",
                    help="gleandb's vector_index.quantization for the collection")
    ap.add_argument("--python", default=sys.executable, help="interpreter with all three engines")
    ap.add_argument("--out", default=str(HERE / "results-scale.txt"))
    ap.add_argument("--json", default=None, help="also write the raw results here")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--rss-trace-dir", default=None,
                    help="gleandb / chromadb children write an RSS trace here (bench_child.py --rss-trace)")
    ap.add_argument("--timeout", type=float, default=6 * 3600, help="seconds per engine run")
    a = ap.parse_args()
    engines = parse_engines(a.engines)
    sizes = parse_sizes(a.sizes)
    a.queries = min(a.queries, datasets.N_QUERIES)
    a.filtered_queries = min(a.filtered_queries, datasets.N_QUERIES)
    a.flat_queries = min(a.flat_queries, a.queries)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    m0 = bvc.machine_facts()
    lines = [f"bench/bench_scale.py --sizes {a.sizes} --engines {','.join(engines)} (started {started}; "
             f"load avg at start {m0['loadavg']})", ""]
    raw: dict = {"args": vars(a), "sizes": {}}
    if a.corpus:  # first: it is quick and independent of the sizes
        res = {e: run_one(e, "text", None, a, None) for e in engines}
        table = text_table(res, a)
        print("\n" + "\n".join(table), flush=True)
        lines += table + [""]
        raw["text"] = res
        Path(a.out).write_text("\n".join(lines) + "\n")
    for n in sizes:
        t0 = time.perf_counter()
        data = datasets.ensure_dataset(n, a.seed)
        ds = datasets.Dataset(data, mmap=True)
        gt = {"all": datasets.ground_truth(ds, a.queries, K)}
        for t in FILTER_LEVELS:
            gt[t] = datasets.ground_truth(ds, a.filtered_queries, K, bucket_lt=t)
        rx = re.compile(ds.meta["regex"])
        meta = dict(ds.meta)
        meta["contains_ids"] = [i for i in range(ds.n) if ds.meta["contains"] in ds.documents[i]]
        meta["regex_ids"] = [i for i in range(ds.n) if rx.search(ds.documents[i])]
        del ds
        print(f"[scale] n={n}: data + ground truth ready in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        res = {e: run_one(e, "main", data, a, gt) for e in engines}
        table = size_table(n, res, a, meta)
        print("\n" + "\n".join(table), flush=True)
        lines += table + [""]
        raw["sizes"][n] = res
        Path(a.out).write_text("\n".join(lines) + "\n")  # after every size: partial results survive
    lines.append(f"finished {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
                 f"load avg at end {bvc.machine_facts()['loadavg']}")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"[scale] wrote {a.out}", file=sys.stderr)
    if a.json:
        def strip(r):
            if isinstance(r, dict):
                return {str(k): strip(v) for k, v in r.items() if k != "ids"}
            return r
        Path(a.json).write_text(json.dumps(strip(raw), indent=2))


if __name__ == "__main__":
    main()
