"""Load test of a Chroma-v2 HTTP server: many concurrent clients, mixed reads and writes.

Runs the same workload against `glean run` and against `chroma run` (chromadb 1.5.9)
side by side, and optionally kills the gleandb server with SIGKILL in the middle of
the load, restarts it and checks that every acknowledged write is there.

    .venv/bin/python bench/bench_server_load.py                       # both, 16 clients, 60 s
    .venv/bin/python bench/bench_server_load.py --only gleandb --kill  # + kill -9 / restart / read-back
    .venv/bin/python bench/bench_server_load.py --clients 16 --duration 60 --chroma /tmp/chroma-venv/bin/chroma
    # the server under test with a setting changed (an ablation), e.g. no write admission
    .venv/bin/python bench/bench_server_load.py --only gleandb --server-env GLEAN_CONCURRENT_WRITES=0
    # + gleandb from another checkout (e.g. `git worktree add /tmp/old <commit>`), 3 rounds
    # alternating the order of the servers; the table gives the median over the rounds
    .venv/bin/python bench/bench_server_load.py --before /tmp/old --rounds 3 --duration 30

Clients speak raw HTTP (httpx) to /api/v2 so both servers see identical requests. Each
client owns a disjoint id range; a write counts as acknowledged when its 2xx response
arrived. At the end (and after a kill/restart) everything is read back by id and
compared with the acknowledged state: every acked row present with its latest
metadata, every acked delete absent. Servers bind 127.0.0.1 only; loops are bounded
by --duration.

Besides latencies it reports what depends less on how busy the machine is: each server's
CPU time per request (the process and its children, from psutil) and, for gleandb, the
mean number of write calls that shared one WAL fsync (``/metrics``: records / syncs).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict

import httpx
import numpy as np
import psutil

BASE = "/api/v2/tenants/default_tenant/databases/default_database"
OPS = ("add", "query", "query_filtered", "get_ids", "update", "delete")
WEIGHTS = (30, 30, 10, 15, 10, 5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(engine: str, path: str, port: int, chroma_bin: str, before: str | None = None,
                 server_env: dict | None = None) -> subprocess.Popen:
    env = None
    if engine.startswith("gleandb"):
        cmd = [sys.executable, "-m", "gleandb.cli.main", "run", "--path", path, "--host", "127.0.0.1", "--port", str(port)]
        if engine == "gleandb-before":  # the server imports gleandb from the other checkout
            env = {**os.environ, "PYTHONPATH": os.path.join(os.path.abspath(before), "src")}
        elif server_env:
            env = {**os.environ, **server_env}
    else:
        cmd = [chroma_bin, "run", "--path", path, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{engine} server exited with {proc.returncode}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{engine} server did not answer within 60 s")


class Shared:
    """Acknowledged state and latencies, shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[str, int | None] = {}  # id -> latest acked version (None = deleted)
        # id -> other values a failed (unacknowledged) write may have left: it may have
        # been applied before the connection broke (e.g. the server was killed)
        self.pending: dict[str, set] = defaultdict(set)
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.fail: dict[str, int] = defaultdict(int)
        self.errors: list[str] = []


def client_loop(cid: int, url: str, coll: str, dim: int, stop: threading.Event, sh: Shared, seed: int) -> None:
    rng = random.Random(seed * 1000 + cid)
    nrng = np.random.default_rng(seed * 1000 + cid)
    mine: list[str] = []  # ids this client added (live as far as it knows)
    version: dict[str, int] = {}
    next_id = 0
    http = httpx.Client(base_url=url, timeout=60)
    rec = f"{BASE}/collections/{coll}"
    while not stop.is_set():
        op = rng.choices(OPS, WEIGHTS)[0]
        if op in ("update", "delete", "get_ids") and not mine:
            op = "add"
        body: dict
        if op == "add":
            ids = [f"c{cid}-{next_id + i}" for i in range(10)]
            next_id += 10
            body = {
                "ids": ids,
                "embeddings": nrng.standard_normal((10, dim)).astype(np.float32).tolist(),
                "documents": [f"client {cid} row {i} text {rng.random():.6f}" for i in ids],
                "metadatas": [{"client": cid, "v": 0, "bucket": rng.randrange(100)} for _ in ids],
            }
            path = f"{rec}/add"
        elif op in ("query", "query_filtered"):
            body = {"query_embeddings": nrng.standard_normal((1, dim)).astype(np.float32).tolist(), "n_results": 10,
                    "include": ["documents", "metadatas", "distances"]}
            if op == "query_filtered":
                body["where"] = {"bucket": {"$lt": 10}}
            path = f"{rec}/query"
        elif op == "get_ids":
            body = {"ids": rng.sample(mine, min(20, len(mine))), "include": ["metadatas"]}
            path = f"{rec}/get"
        elif op == "update":
            ids = rng.sample(mine, min(5, len(mine)))
            vs = [version.get(i, 0) + 1 for i in ids]
            body = {"ids": ids, "metadatas": [{"v": v} for v in vs]}
            path = f"{rec}/update"
        else:  # delete
            ids = rng.sample(mine, min(3, len(mine)))
            body = {"ids": ids}
            path = f"{rec}/delete"
        t = time.perf_counter()
        try:
            r = http.post(path, json=body)
            ok = r.status_code // 100 == 2
        except httpx.HTTPError as e:
            ok, r = False, None
            err = repr(e)
        dt = time.perf_counter() - t
        with sh.lock:
            if ok:
                sh.lat[op].append(dt)
                if op == "add":
                    for i in body["ids"]:
                        sh.acked[i] = 0
                elif op == "update":
                    for i, v in zip(body["ids"], vs):
                        sh.acked[i] = v
                elif op == "delete":
                    for i in body["ids"]:
                        sh.acked[i] = None
            else:
                sh.fail[op] += 1
                if op == "add":
                    for i in body["ids"]:
                        sh.pending[i].add(0)
                elif op == "update":
                    for i, v in zip(body["ids"], vs):
                        sh.pending[i].add(v)
                elif op == "delete":
                    for i in body["ids"]:
                        sh.pending[i].add(None)
                if len(sh.errors) < 10:
                    sh.errors.append(f"{op}: {r.status_code} {r.text[:200]}" if r is not None else f"{op}: {err}")
        if ok:
            if op == "add":
                mine.extend(body["ids"])
            elif op == "update":
                version.update(zip(body["ids"], vs))
            elif op == "delete":
                gone = set(body["ids"])
                mine = [i for i in mine if i not in gone]
    http.close()


def read_back(url: str, coll: str, sh: Shared) -> tuple[int, int, int]:
    """(acked ids checked, acked rows missing or stale, deleted or never-written rows present).

    A row touched by a failed request may show that request's effect or not."""
    http = httpx.Client(base_url=url, timeout=120)
    ids = list(dict.fromkeys(list(sh.acked) + list(sh.pending)))
    bad_missing = bad_present = 0
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        r = http.post(f"{BASE}/collections/{coll}/get", json={"ids": chunk, "include": ["metadatas"]})
        r.raise_for_status()
        got = {k: (m or {}).get("v") for k, m in zip(r.json()["ids"], r.json()["metadatas"])}
        for id_ in chunk:
            have = got[id_] if id_ in got else None
            want = sh.acked.get(id_)
            if have == want or have in sh.pending.get(id_, ()):
                continue
            if have is None:
                bad_missing += 1
            elif want is None:
                bad_present += 1
            else:
                bad_missing += 1  # stale version
    http.close()
    return len(sh.acked), bad_missing, bad_present


def create_collection(url: str) -> str:
    r = httpx.post(f"{url}{BASE}/collections", json={"name": "load", "get_or_create": True}, timeout=30)
    r.raise_for_status()
    return r.json()["id"]


def run_load(url: str, coll: str, clients: int, duration: float, dim: int, seed: int, sh: Shared,
             kill_after: float | None = None, proc: subprocess.Popen | None = None) -> float:
    stop = threading.Event()
    threads = [threading.Thread(target=client_loop, args=(c, url, coll, dim, stop, sh, seed)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)
        stop.set()
    else:
        time.sleep(duration)
        stop.set()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def summarize(sh: Shared, elapsed: float) -> dict:
    out = {"elapsed_s": elapsed, "ops": {}, "failed": dict(sh.fail), "errors": sh.errors}
    for op in OPS:
        lat = sorted(sh.lat.get(op, []))
        if lat:
            out["ops"][op] = {
                "n": len(lat),
                "p50_ms": 1000 * statistics.median(lat),
                "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            }
    out["total_ok"] = sum(len(v) for v in sh.lat.values())
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children so far."""
    total = 0.0
    try:
        p = psutil.Process(pid)
        for q in [p] + p.children(recursive=True):
            t = q.cpu_times()
            total += t.user + t.system
    except psutil.Error:
        pass
    return total


def wal_group_size(url: str) -> float | None:
    """gleandb: write calls per WAL fsync over the run (None for a server without the metric)."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=30).text
    except httpx.HTTPError:
        return None
    got = {}
    for line in text.splitlines():
        for name in ("glean_wal_records_total", "glean_wal_syncs_total"):
            if line.startswith(name + "{"):
                got[name] = got.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    if not got.get("glean_wal_syncs_total"):
        return None
    return got["glean_wal_records_total"] / got["glean_wal_syncs_total"]


def server_times(url: str) -> dict[str, float]:
    """gleandb: mean time in the server per route (last path part), ms, from ``/metrics``
    (from the request's arrival in the middleware to its last byte sent)."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=30).text
    except httpx.HTTPError:
        return {}
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        for suffix, acc in (("_sum{", sums), ("_count{", counts)):
            if line.startswith("glean_http_request_duration_seconds" + suffix) and 'route="' in line:
                route = line.split('route="', 1)[1].split('"', 1)[0].rsplit("/", 1)[-1]
                acc[route] += float(line.rsplit(" ", 1)[1])
    return {r: 1000 * sums[r] / counts[r] for r in ("query", "get", "add", "update", "delete") if counts.get(r)}


def bench_engine(engine: str, args) -> dict:
    path = tempfile.mkdtemp(prefix=f"load-{engine}-")
    port = free_port()
    proc = start_server(engine, path, port, args.chroma, args.before, args.server_env)
    url = f"http://127.0.0.1:{port}"
    try:
        coll = create_collection(url)
        sh = Shared()
        load0, cpu0 = os.getloadavg()[0], cpu_seconds(proc.pid)
        elapsed = run_load(url, coll, args.clients, args.duration, args.dim, args.seed, sh)
        cpu = cpu_seconds(proc.pid) - cpu0
        res = summarize(sh, elapsed)
        res.update(cpu_ms_per_request=1000 * cpu / max(1, res["total_ok"]), load=(load0, os.getloadavg()[0]),
                   wal_group=wal_group_size(url) if engine.startswith("gleandb") else None,
                   server_ms=server_times(url) if engine.startswith("gleandb") else {})
        checked, missing, resurrected = read_back(url, coll, sh)
        res.update(readback_checked=checked, readback_missing=missing, readback_deleted_present=resurrected)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return res


def kill_test(args) -> dict:
    """gleandb only: load, SIGKILL mid-flight, restart, read everything back."""
    path = tempfile.mkdtemp(prefix="load-kill-")
    port = free_port()
    proc = start_server("gleandb", path, port, args.chroma, server_env=args.server_env)
    url = f"http://127.0.0.1:{port}"
    coll = create_collection(url)
    sh = Shared()
    run_load(url, coll, args.clients, args.duration, args.dim, args.seed + 1, sh, kill_after=args.kill_after, proc=proc)
    t = time.perf_counter()
    proc = start_server("gleandb", path, port, args.chroma, server_env=args.server_env)
    restart_s = time.perf_counter() - t
    try:
        checked, missing, resurrected = read_back(url, coll, sh)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"acked_ids": checked, "missing_or_stale": missing, "deleted_but_present": resurrected,
            "restart_to_heartbeat_s": restart_s, "ok_requests_before_kill": sum(len(v) for v in sh.lat.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", choices=("gleandb", "chroma"))
    ap.add_argument("--before", help="also run gleandb from this checkout (its src/), as gleandb-before")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each server, alternating their order")
    ap.add_argument("--chroma", default=os.path.join(os.path.dirname(sys.executable), "chroma"),
                    help="path of the `chroma` executable (default: the one beside this Python)")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment of the gleandb server under test (not of --before), e.g. "
                         "GLEAN_CONCURRENT_WRITES=0; repeatable")
    ap.add_argument("--kill", action="store_true", help="also run the kill -9 / restart / read-back test")
    ap.add_argument("--kill-after", type=float, default=20.0, help="seconds of load before SIGKILL")
    args = ap.parse_args()
    args.server_env = dict(kv.split("=", 1) for kv in args.server_env)

    engines = [args.only] if args.only else ["chroma", "gleandb"]
    if args.before:
        engines.insert(len(engines) - 1 if "gleandb" in engines else len(engines), "gleandb-before")
    runs: dict[str, list[dict]] = {e: [] for e in engines}
    for rnd in range(args.rounds):
        for e in (engines if rnd % 2 == 0 else engines[::-1]):
            print(f"[load] round {rnd + 1}/{args.rounds} {e}: {args.clients} clients x {args.duration:.0f} s ...",
                  file=sys.stderr, flush=True)
            try:
                runs[e].append(bench_engine(e, args))
            except Exception as ex:  # keep the other engines' columns
                runs[e].append({"error": repr(ex)})
    print(f"\n{args.clients} concurrent clients, {args.duration:.0f} s x {args.rounds} round(s) per server, mix "
          + ", ".join(f"{o} {w}%" for o, w in zip(OPS, WEIGHTS)) + f", dim {args.dim}; load avg now {os.getloadavg()}")
    if args.rounds > 1:
        print("latencies: median over the rounds of each round's p50 / p99; n: all rounds")
    hdr = f"{'operation':<16}" + "".join(f"{e + ' p50/p99 ms':>30}{'n':>7}" for e in engines)
    ratio = "chroma" in engines and any(e.startswith("gleandb") for e in engines)
    if ratio:
        hdr += "   chroma p50 / gleandb p50"
    print(hdr)

    def med(e: str, op: str, key: str) -> float | None:
        vals = [r["ops"][op][key] for r in runs[e] if op in r.get("ops", {})]
        return statistics.median(vals) if vals else None

    for op in OPS:
        line = f"{op:<16}"
        for e in engines:
            p50, p99 = med(e, op, "p50_ms"), med(e, op, "p99_ms")
            n = sum(r["ops"][op]["n"] for r in runs[e] if op in r.get("ops", {}))
            cell = f"{p50:.2f} / {p99:.2f}" if p50 is not None else "-"
            line += f"{cell:>30}{n:>7}"
        if ratio and med("chroma", op, "p50_ms"):
            line += "  " + "  ".join(f"{e} {med('chroma', op, 'p50_ms') / med(e, op, 'p50_ms'):.2f}x"
                                     for e in engines if e.startswith("gleandb") and med(e, op, "p50_ms"))
        print(line)
    for e in engines:
        for i, r in enumerate(runs[e]):
            if "error" in r:
                print(f"{e} round {i + 1}: ERROR {r['error']}")
                continue
            group = f", {r['wal_group']:.1f} write calls per WAL fsync" if r.get("wal_group") else ""
            if r.get("server_ms"):
                group += ", mean ms in server " + " ".join(f"{k} {v:.0f}" for k, v in r["server_ms"].items())
            p50 = "/".join(f"{r['ops'][op]['p50_ms']:.0f}" if op in r["ops"] else "-" for op in ("query", "add"))
            print(f"{e} round {i + 1}: query/add p50 {p50} ms, "
                  f"{r['total_ok']} ok requests ({r['total_ok'] / r['elapsed_s']:.0f}/s), "
                  f"server CPU {r['cpu_ms_per_request']:.2f} ms/request{group}, load avg {r['load'][0]:.1f} -> "
                  f"{r['load'][1]:.1f}; failed {r['failed'] or 0}, read-back of {r['readback_checked']} acked ids: "
                  f"{r['readback_missing']} missing/stale, {r['readback_deleted_present']} deleted-but-present")
            for err in r["errors"]:
                print(f"   {e} error: {err}")
    if args.kill and args.only != "chroma":
        k = kill_test(args)
        print(f"\nkill -9 after {args.kill_after:.0f} s of load: {k['ok_requests_before_kill']} ok requests, "
              f"{k['acked_ids']} acked ids; after restart ({k['restart_to_heartbeat_s']:.1f} s to heartbeat): "
              f"{k['missing_or_stale']} missing/stale, {k['deleted_but_present']} deleted-but-present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
