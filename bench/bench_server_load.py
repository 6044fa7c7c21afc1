"""Load test of a Chroma-v2 HTTP server: many concurrent clients, mixed reads and writes.

Runs the same workload against `glean run` and against `chroma run` (chromadb 1.5.9)
side by side, and optionally kills the gleandb server with SIGKILL in the middle of
the load, restarts it and checks that every acknowledged write is there.

    .venv/bin/python bench/bench_server_load.py                       # both, 16 clients, 60 s
    .venv/bin/python bench/bench_server_load.py --only gleandb --kill  # + kill -9 / restart / read-back
    .venv/bin/python bench/bench_server_load.py --clients 16 --duration 60 --chroma /tmp/chroma-venv/bin/chroma

Clients speak raw HTTP (httpx) to /api/v2 so both servers see identical requests. Each
client owns a disjoint id range; a write counts as acknowledged when its 2xx response
arrived. At the end (and after a kill/restart) everything is read back by id and
compared with the acknowledged state: every acked row present with its latest
metadata, every acked delete absent. Servers bind 127.0.0.1 only; loops are bounded
by --duration.
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

BASE = "/api/v2/tenants/default_tenant/databases/default_database"
OPS = ("add", "query", "query_filtered", "get_ids", "update", "delete")
WEIGHTS = (30, 30, 10, 15, 10, 5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(engine: str, path: str, port: int, chroma_bin: str) -> subprocess.Popen:
    if engine == "gleandb":
        cmd = [sys.executable, "-m", "gleandb.cli.main", "run", "--path", path, "--host", "127.0.0.1", "--port", str(port)]
    else:
        cmd = [chroma_bin, "run", "--path", path, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def bench_engine(engine: str, args) -> dict:
    path = tempfile.mkdtemp(prefix=f"load-{engine}-")
    port = free_port()
    proc = start_server(engine, path, port, args.chroma)
    url = f"http://127.0.0.1:{port}"
    try:
        coll = create_collection(url)
        sh = Shared()
        elapsed = run_load(url, coll, args.clients, args.duration, args.dim, args.seed, sh)
        res = summarize(sh, elapsed)
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
    proc = start_server("gleandb", path, port, args.chroma)
    url = f"http://127.0.0.1:{port}"
    coll = create_collection(url)
    sh = Shared()
    run_load(url, coll, args.clients, args.duration, args.dim, args.seed + 1, sh, kill_after=args.kill_after, proc=proc)
    t = time.perf_counter()
    proc = start_server("gleandb", path, port, args.chroma)
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
    ap.add_argument("--chroma", default="/tmp/chroma-venv/bin/chroma", help="path of the `chroma` executable")
    ap.add_argument("--kill", action="store_true", help="also run the kill -9 / restart / read-back test")
    ap.add_argument("--kill-after", type=float, default=20.0, help="seconds of load before SIGKILL")
    args = ap.parse_args()

    engines = [args.only] if args.only else ["chroma", "gleandb"]
    results = {}
    for e in engines:
        print(f"[load] {e}: {args.clients} clients x {args.duration:.0f} s ...", file=sys.stderr, flush=True)
        try:
            results[e] = bench_engine(e, args)
        except Exception as ex:  # keep the other engine's column
            results[e] = {"error": repr(ex)}
    print(f"\n{args.clients} concurrent clients, {args.duration:.0f} s, mix "
          + ", ".join(f"{o} {w}%" for o, w in zip(OPS, WEIGHTS)) + f", dim {args.dim}; load avg {os.getloadavg()}")
    hdr = f"{'operation':<16}" + "".join(f"{e + ' p50/p99 ms':>26}{'n':>8}" for e in engines)
    if len(engines) == 2:
        hdr += f"{'p50 ratio':>11}"
    print(hdr)
    for op in OPS:
        line = f"{op:<16}"
        p50s = []
        for e in engines:
            o = results[e].get("ops", {}).get(op)
            cell = f"{o['p50_ms']:.2f} / {o['p99_ms']:.2f}" if o else "-"
            line += f"{cell:>26}{(o['n'] if o else 0):>8}"
            p50s.append(o["p50_ms"] if o else None)
        if len(engines) == 2 and all(p50s):
            line += f"{p50s[0] / p50s[1]:>10.2f}x"
        print(line)
    for e in engines:
        r = results[e]
        if "error" in r:
            print(f"{e}: ERROR {r['error']}")
            continue
        print(f"{e}: {r['total_ok']} ok requests ({r['total_ok'] / r['elapsed_s']:.0f}/s), failed {r['failed'] or 0}, "
              f"read-back of {r['readback_checked']} acked ids: {r['readback_missing']} missing/stale, "
              f"{r['readback_deleted_present']} deleted-but-present")
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
