"""LanceDB's side of bench_scale.py (run in its own interpreter, like bench_child.py).

    python bench/bench_child_lance.py --phase main --data DIR --path DBDIR --out res.json [--index IVF_PQ]
    python bench/bench_child_lance.py --phase text --corpus stdlib --path DBDIR --out res.json

The same sections and result keys as bench_child.py, through LanceDB's own embedded API
(``lancedb.connect(dir)``): metadata fields become typed columns; ingest is ``add()`` of
5,000-row Arrow batches, then the indexes LanceDB's docs recommend, built before the
first query (its indexes are built by explicit calls, not by ``add()``): the vector
index (``--index``: ``IVF_PQ``, the default index type and the one its docs recommend
for filtered search; ``IVF_HNSW_SQ``; or ``none``), BTREE scalar indexes on ``id`` and
``bucket`` (the columns the benchmark filters on) and the native full-text index on
``document``. Results are written to ``--out`` after every section.
"""

from __future__ import annotations

import time

_T_PROCESS = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, HERE)
import bench_child as bc  # noqa: E402
import corpora  # noqa: E402,F401 - imported now: bench/ leaves sys.path below
import datasets  # noqa: E402
import textbench  # noqa: E402

os.environ.setdefault("LANCE_LOG", "error")  # no per-query deprecation warnings about _distance / _score
# lancedb treats a module named "datasets" as Hugging Face's: hide ours from it.
sys.modules["bench_datasets"] = sys.modules.pop("datasets")
sys.path[:] = [p for p in sys.path if p not in (HERE, "")]

K = 10
ADD_BATCH = bc.ADD_BATCH
FILTER_LEVELS = bc.FILTER_LEVELS
META_COLS = ["bucket", "year", "category", "lang", "flag", "score"]
SELECT = ["id", "document", *META_COLS]  # like include=[documents, metadatas] (+ _distance, always there)


def schema(pa, dim: int, with_meta: bool = True):
    fields = [pa.field("id", pa.string()), pa.field("vector", pa.list_(pa.float32(), dim)),
              pa.field("document", pa.string())]
    if with_meta:
        fields += [pa.field("bucket", pa.int64()), pa.field("year", pa.int64()), pa.field("category", pa.string()),
                   pa.field("lang", pa.string()), pa.field("flag", pa.bool_()), pa.field("score", pa.float64())]
    return pa.schema(fields)


def batch(pa, sch, ids, E, docs, metas=None):
    cols = {"id": pa.array(ids, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(E, np.float32).ravel()),
                                                         E.shape[1]),
            "document": pa.array(docs, pa.string())}
    if metas is not None:
        for c in META_COLS:
            cols[c] = pa.array([m[c] for m in metas], sch.field(c).type)
    return pa.table(cols, schema=sch)


def vector_config(kind: str):
    from lancedb.index import HnswSq, IvfPq

    if kind == "IVF_PQ":
        return IvfPq(distance_type="cosine")
    if kind == "IVF_HNSW_SQ":
        return HnswSq(distance_type="cosine")
    raise ValueError(f"--index must be IVF_PQ, IVF_HNSW_SQ or none, got {kind!r}")


def vq(tbl, q, refine: int | None = None, bypass: bool = False):
    s = tbl.search(q, vector_column_name="vector").distance_type("cosine").limit(K).select(SELECT)
    if refine:
        s = s.refine_factor(refine)
    if bypass:
        s = s.bypass_vector_index()
    return s


def run_queries(build, Q) -> dict:
    lat, got = [], []
    t_all = time.perf_counter()
    for q in Q:
        t0 = time.perf_counter()
        rows = build(q).to_list()
        lat.append((time.perf_counter() - t0) * 1e3)
        got.append(bc.to_idx([r["id"] for r in rows]))
    wall = time.perf_counter() - t_all
    return {"n": len(Q), "p50_ms": bc.pct(lat, 50), "p99_ms": bc.pct(lat, 99), "mean_ms": float(np.mean(lat)),
            "qps": len(Q) / wall, "ids": got}


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def main_phase(a, lancedb, res) -> None:
    import pyarrow as pa

    ds = datasets.Dataset(a.data)
    n = ds.n
    res["n"] = n
    res["rss_after_data_load_mb"] = bc.current_rss_mb()
    res["anon_after_data_load_mb"] = bc._status_mb(("RssAnon",)).get("RssAnon")
    E = np.ascontiguousarray(ds.embeddings, dtype=np.float32)
    docs, metas, ids = ds.documents, ds.metadatas, ds.ids
    rng = np.random.default_rng(a.seed + 1000)
    sch = schema(pa, E.shape[1])
    db = lancedb.connect(a.path)
    tbl = db.create_table("bench", schema=sch)
    res["lance_index"] = a.index
    res["lance_refine"] = a.refine

    with bc.section(res, "ingest"):
        t0 = time.perf_counter()
        for lo in range(0, n, ADD_BATCH):
            hi = min(n, lo + ADD_BATCH)
            tbl.add(batch(pa, sch, ids[lo:hi], E[lo:hi], docs[lo:hi], metas[lo:hi]))
        t_add = time.perf_counter() - t0
        builds = {}
        from lancedb.index import BTree

        if a.index != "none":
            t1 = time.perf_counter()
            tbl.create_index("vector", config=vector_config(a.index), name="vector_idx")
            tbl.wait_for_index(["vector_idx"])
            builds["vector"] = time.perf_counter() - t1
        for col in ("id", "bucket"):
            t1 = time.perf_counter()
            tbl.create_index(col, config=BTree(), name=f"{col}_idx")
            builds[col] = time.perf_counter() - t1
        t1 = time.perf_counter()
        tbl.create_fts_index("document", name="document_idx")
        builds["fts"] = time.perf_counter() - t1
        tbl.wait_for_index([ix.name for ix in tbl.list_indices()])
        t_total = time.perf_counter() - t0
        res["ingest_add_s"] = t_add
        res["ingest_total_s"] = t_total
        res["index_build_s"] = builds
        res["has_flush"] = True
        res["ingest_add_rows_s"] = n / t_add
        res["ingest_total_rows_s"] = n / t_total
        res["count_after_ingest"] = tbl.count_rows()
        res["indices"] = [f"{ix.name}: {ix.index_type} on {ix.columns}" for ix in tbl.list_indices()]
        try:
            st = tbl.index_stats("vector_idx") if a.index != "none" else None
            res["vector_index_stats"] = str(st) if st is not None else None
        except Exception as e:  # noqa: BLE001 - informative only
            res["vector_index_stats"] = f"?: {e}"
        res["disk_after_ingest"] = bc.dir_bytes(a.path)
        res["rss_after_ingest_mb"] = bc.current_rss_mb()
    if "ingest_error" in res:
        return

    Qn = ds.queries[: a.queries]
    Qf = ds.queries[: a.filtered_queries]
    refine = a.refine or None
    with bc.section(res, "query"):
        for q in ds.queries[-10:]:
            vq(tbl, q, refine).to_list()
        res["query"] = run_queries(lambda q: vq(tbl, q, refine), Qn)
    if a.index != "none":
        with bc.section(res, "query_alt"):
            alt = None if refine else 10
            res["query_alt"] = run_queries(lambda q: vq(tbl, q, alt), Qn)
            res["query_alt"]["refine"] = alt
        with bc.section(res, "query_flat"):
            res["query_flat"] = run_queries(lambda q: vq(tbl, q, bypass=True), Qn[: a.flat_queries])
    if a.threads > 1:
        with bc.section(res, "query_threads"):
            from concurrent.futures import ThreadPoolExecutor

            def one(q):
                t0 = time.perf_counter()
                vq(tbl, q, refine).to_list()
                return (time.perf_counter() - t0) * 1e3

            t_all = time.perf_counter()
            with ThreadPoolExecutor(a.threads) as ex:
                lat = list(ex.map(one, Qn))
            wall = time.perf_counter() - t_all
            res["query_threads"] = {"threads": a.threads, "n": len(Qn), "p50_ms": bc.pct(lat, 50),
                                    "p99_ms": bc.pct(lat, 99), "qps": len(Qn) / wall}

    for t in FILTER_LEVELS:
        with bc.section(res, f"filtered_{t}"):
            res[f"filtered_{t}"] = run_queries(
                lambda q: vq(tbl, q, refine).where(f"bucket < {t}", prefilter=True), Qf)

    for kind, cond in (("contains", f"document LIKE {sql_str('%' + ds.meta['contains'] + '%')}"),
                       ("regex", f"regexp_like(document, {sql_str(ds.meta['regex'])})")):
        with bc.section(res, kind):
            lat, got = [], None
            for _ in range(a.doc_reps):
                t0 = time.perf_counter()
                got = tbl.search().where(cond).select(["id"]).limit(n).to_arrow()["id"].to_pylist()
                lat.append((time.perf_counter() - t0) * 1e3)
            res[kind] = {"p50_ms": bc.pct(lat, 50), "min_ms": min(lat), "reps": len(lat), "count": len(got),
                         "ids": sorted(bc.to_idx(got)), "sql": cond}

    with bc.section(res, "get_ids"):
        lat, bad = [], 0
        for _ in range(a.get_reps):
            sel = rng.choice(n, size=min(1000, n), replace=False)
            want = [ids[i] for i in sel]
            t0 = time.perf_counter()
            rows = (tbl.search().where("id IN (" + ",".join(sql_str(x) for x in want) + ")")
                    .select(SELECT).limit(len(want)).to_list())
            lat.append((time.perf_counter() - t0) * 1e3)
            bad += len(rows) != len(want)
        res["get_ids"] = {"p50_ms": bc.pct(lat, 50), "p99_ms": bc.pct(lat, 99), "reps": len(lat),
                          "ids_per_call": min(1000, n), "short_results": bad}

    if a.text_queries > 0:
        with bc.section(res, "text"):
            texts = textbench.keyword_queries(docs, n, a.text_queries, a.seed)
            Q = ds.queries[: a.text_queries]
            items = list(range(len(texts)))
            r = bc.timed(lambda i: tbl.search(texts[i], query_type="fts").limit(K).select(["id"]).to_list(), items)
            r["hits"] = sum(len(x) for x in r.pop("results"))
            res["fts"] = r
            def hybrid(i):
                h = tbl.search(query_type="hybrid").vector(Q[i]).text(texts[i]).distance_type("cosine")
                return (h.refine_factor(refine) if refine else h).limit(K).select(["id"]).to_list()

            r = bc.timed(hybrid, items)
            r.pop("results")
            res["hybrid"] = r
    bc.record_peaks(res)


def text_phase(a, lancedb, res) -> None:
    import pyarrow as pa

    passages, P, queries, Q = textbench.load_corpus(a.corpus)
    rel = [r for _t, r in queries]
    sch = schema(pa, P.shape[1], with_meta=False)
    tbl = lancedb.connect(a.path).create_table("text", schema=sch)
    t0 = time.perf_counter()
    for lo in range(0, len(passages), ADD_BATCH):
        chunk = passages[lo:lo + ADD_BATCH]
        tbl.add(batch(pa, sch, [p for p, _ in chunk], P[lo:lo + ADD_BATCH], [t for _, t in chunk]))
    tbl.create_fts_index("document", name="document_idx")
    res["text_ingest_s"] = time.perf_counter() - t0
    res["corpus"] = {"name": a.corpus, "passages": len(passages), "queries": len(queries),
                     "dense": "exact (no vector index: a few thousand rows)"}
    items = list(range(len(queries)))

    def ids(rows):
        return [r["id"] for r in rows]

    cases = {
        "dense": lambda i: ids(tbl.search(Q[i], vector_column_name="vector").distance_type("cosine").limit(K)
                               .select(["id"]).to_list()),
        "fts": lambda i: ids(tbl.search(queries[i][0], query_type="fts").limit(K).select(["id"]).to_list()),
        "hybrid": lambda i: ids(tbl.search(query_type="hybrid").vector(Q[i]).text(queries[i][0])
                                .distance_type("cosine").limit(K).select(["id"]).to_list()),
    }
    for name, fn in cases.items():
        with bc.section(res, f"corpus_{name}"):
            r = bc.timed(fn, items)
            r.update(textbench.known_item(r.pop("results"), rel))
            res[f"corpus_{name}"] = r
    bc.record_peaks(res)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="lancedb", choices=["lancedb"])
    ap.add_argument("--phase", choices=["main", "text"], default="main")
    ap.add_argument("--data", default=None)
    ap.add_argument("--path", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--filtered-queries", type=int, default=200)
    ap.add_argument("--flat-queries", type=int, default=200, help="unindexed (brute-force) queries")
    ap.add_argument("--doc-reps", type=int, default=5)
    ap.add_argument("--get-reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--text-queries", type=int, default=0)
    ap.add_argument("--no-writes", action="store_true", help="accepted for symmetry: this child never writes")
    ap.add_argument("--corpus", default="stdlib")
    ap.add_argument("--index", default="IVF_PQ", choices=["IVF_PQ", "IVF_HNSW_SQ", "none"])
    ap.add_argument("--refine", type=int, default=10, help="refine_factor of the main query rows (0: none)")
    ap.add_argument("--t-spawn", type=float, default=None)
    a = ap.parse_args()
    bc.ENGINE = "lancedb"
    bc.ANON_PEAK = bc.AnonPeak()
    res = bc.Results(a.out)
    res["engine"] = "lancedb"
    res["phase"] = a.phase
    try:
        t_imp0 = time.time()
        import lancedb

        t_imported = time.time()
        res["import_engine_s"] = t_imported - t_imp0
        if a.t_spawn is not None:
            res["spawn_to_imported_s"] = t_imported - a.t_spawn
        res["env"] = bc.env_facts(lancedb)
        res.save()
        if a.phase == "main":
            main_phase(a, lancedb, res)
        else:
            text_phase(a, lancedb, res)
    except BaseException as e:  # noqa: BLE001 - report anything, then fail
        res["fatal_error"] = f"{type(e).__name__}: {e}"
        res.save()
        traceback.print_exc()
        sys.exit(1)
    res["done"] = True
    res.save()


if __name__ == "__main__":
    main()
