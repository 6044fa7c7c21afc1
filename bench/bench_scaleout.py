"""Scale-out load test: one node vs one writer + two query nodes behind nginx.

Prints figures; it is not a test. Usage:

    .venv/bin/python bench/bench_scaleout.py [--storage DIR | --s3-test-server] [--rows 20000] [--dim 64]
        [--duration 20] [--readers 8] [--poll 0.1] [--out bench/results-scaleout.txt]

Phases, on one store (``--storage``: a directory, default a temporary one; an ``s3://``
URL is passed to ``glean run --storage`` once object storage is merged):

1. load ``--rows`` records (plus a second collection of the same size that the queries never
   touch) with the embedded client, flushed into segments;
2. **one node** (``glean run --role all``): ``--readers`` threads send k-NN queries, one thread
   adds a batch of 10 rows every 100 ms, and a probe adds one row every 250 ms and polls until
   it is visible (staleness);
3. **writer + 2 query nodes behind nginx** (Debian ``nginx``, installed with apt-get if missing,
   started here with its own config on loopback ports; the config is printed in
   docs/deploy.md): the same workload sent to nginx, the probe polling each query node
   directly; half-way through, one query node is killed with SIGKILL, and every read
   request must still succeed (``proxy_next_upstream``);
4. **cold start**: a new query node with an empty cache answers its first query (timed from
   the request), then warm ones; its cache figures show what it fetched;
5. **cache under a skewed workload**: reads of segment files drawn from a Zipf law through a
   ``CachedStorage`` whose memory bound is a quarter of their bytes.

The machine this runs on matters more than anything here: on 2 shared cores, the two query
nodes, the writer, nginx and the load generator all compete, so throughput is a floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

BASE = "/api/v2/tenants/default_tenant/databases/default_database"
READ_ROUTES = "get|query|count|search|retrieve|context"

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 64m;

    # reads: any query node; a failed or refused connection is retried on the next one
    upstream glean_query {{
{query_servers}
        keepalive 32;
    }}
    # writes and catalog changes: the one writer
    upstream glean_writer {{
        server {writer};
        keepalive 8;
    }}
    map $request_method $glean_pool {{
        GET glean_query;
        HEAD glean_query;
        default glean_writer;
    }}
    server {{
        listen {listen};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_connect_timeout 2s;
        proxy_read_timeout 60s;
        # POST routes that only read go to the query nodes; retrying them is safe
        location ~ ^/api/v2/tenants/[^/]+/databases/[^/]+/collections/[^/]+/({read_routes})$ {{
            proxy_pass http://glean_query;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 3;
        }}
        location / {{
            proxy_pass http://$glean_pool;
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
"""


def nginx_conf(tmp: str, listen: str, writer: str, queries: list[str]) -> str:
    servers = "\n".join(f"        server {q} max_fails=1 fail_timeout=5s;" for q in queries)
    return NGINX_CONF.format(tmp=tmp, listen=listen, writer=writer, query_servers=servers, read_routes=READ_ROUTES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_nginx() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if path:
        return path
    print("nginx missing: apt-get install -y nginx-light", flush=True)
    subprocess.run(["apt-get", "install", "-y", "nginx-light"], check=False,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(path):
        sys.exit("nginx is not installed and apt-get could not install it")
    return path


class Node:
    def __init__(self, store: str, role: str, logdir: str, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        where = ["--storage", store] if store.startswith("s3://") else ["--path", store]
        cmd = [sys.executable, "-m", "gleandb.cli.main", "run", *where, "--host", "127.0.0.1",
               "--port", str(self.port), "--role", role, "--log-level", "warning", "--no-access-log", *extra]
        self.log = open(os.path.join(logdir, f"{role}-{self.port}.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"glean run --role {role} exited: see {self.log.name}")
            try:
                if httpx.get(self.url + "/api/v2/heartbeat", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        sys.exit(f"glean run --role {role} did not start")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def load(store: str, rows: int, dim: int) -> None:
    import gleandb

    rng = np.random.default_rng(0)
    # several segments per collection (none merged), so the cache has objects to choose among
    client = gleandb.PersistentClient(store, settings=gleandb.Settings(
        memtable_max_rows=max(1000, rows // 10), compaction_min_segments=1_000_000))
    for name in ("bench", "untouched"):
        col = client.get_or_create_collection(name, embedding_function=None)
        for s in range(0, rows, 2000):
            n = min(2000, rows - s)
            col.add(ids=[f"{name}-{i}" for i in range(s, s + n)],
                    embeddings=rng.standard_normal((n, dim)).astype(np.float32),
                    documents=[f"document {i}" for i in range(s, s + n)],
                    metadatas=[{"i": i, "bucket": i % 10} for i in range(s, s + n)])
    client.flush()
    client.close()


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def collection_id(url: str, name: str) -> str:
    return httpx.get(f"{url}{BASE}/collections/{name}", timeout=30).json()["id"]


def run_load(front: str, probe_targets: list[str], cid: str, dim: int, readers: int, duration: float,
             kill_at: float | None = None, victim: Node | None = None, tag: str = "") -> dict:
    """Readers + a writer + a staleness probe for ``duration`` seconds against ``front``."""
    stop = threading.Event()
    lat: list[float] = []
    fails: list[str] = []
    stale: dict[str, list[float]] = {t: [] for t in probe_targets}
    writes = [0]
    lock = threading.Lock()
    col = f"{BASE}/collections/{cid}"
    dead: set[str] = set()

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=front, timeout=60) as h:
            while not stop.is_set():
                q = {"query_embeddings": [rng.standard_normal(dim).tolist()], "n_results": 10,
                     "include": ["distances"]}
                t = time.perf_counter()
                try:
                    r = h.post(col + "/query", json=q)
                    ok = r.status_code == 200
                    why = f"{r.status_code} {r.text[:120]}"
                except httpx.HTTPError as e:
                    ok, why = False, f"{type(e).__name__}: {e}"
                dt = time.perf_counter() - t
                with lock:
                    if ok:
                        lat.append(dt)
                    else:
                        fails.append(why)

    def writer() -> None:
        rng = np.random.default_rng(99)
        i = 0
        with httpx.Client(base_url=front, timeout=60) as h:
            while not stop.is_set():
                ids = [f"w{tag}-{i}-{j}" for j in range(10)]
                body = {"ids": ids, "embeddings": rng.standard_normal((10, dim)).tolist()}
                try:
                    if h.post(col + "/add", json=body).status_code < 300:
                        writes[0] += 1
                except httpx.HTTPError:
                    pass
                i += 1
                stop.wait(0.1)

    def probe() -> None:
        i = 0
        clients = {t: httpx.Client(base_url=t, timeout=10) for t in probe_targets}
        with httpx.Client(base_url=front, timeout=60) as h:
            while not stop.is_set():
                pid = f"p{tag}-{i}"
                i += 1
                r = h.post(col + "/add", json={"ids": [pid], "embeddings": [[0.5] * dim]})
                if r.status_code >= 300:
                    continue
                acked = time.perf_counter()
                for t, c in clients.items():
                    if t in dead:
                        continue
                    while time.perf_counter() - acked < 10 and not stop.is_set():
                        try:
                            if c.post(col + "/get", json={"ids": [pid], "include": []}).json().get("ids") == [pid]:
                                stale[t].append(time.perf_counter() - acked)
                                break
                        except (httpx.HTTPError, ValueError):
                            break  # the node is gone
                        time.sleep(0.002)
                stop.wait(0.25)
        for c in clients.values():
            c.close()

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(readers)]
    threads += [threading.Thread(target=writer), threading.Thread(target=probe)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    killed_at_reads = None
    if kill_at is not None and victim is not None:
        time.sleep(kill_at)
        with lock:
            killed_at_reads = len(lat)
        dead.add(victim.url)
        victim.kill()
        print(f"  SIGKILL query node {victim.url} after {kill_at:.0f} s", flush=True)
    time.sleep(max(0.0, duration - (time.monotonic() - t0)))
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    all_stale = [x for xs in stale.values() for x in xs]
    return {"reads": len(lat), "rps": len(lat) / elapsed, "p50": pct(lat, 50), "p99": pct(lat, 99),
            "failed": len(fails), "fail_samples": fails[:3], "writes": writes[0],
            "stale_p50": pct(all_stale, 50), "stale_p99": pct(all_stale, 99), "stale_n": len(all_stale),
            "reads_before_kill": killed_at_reads}


def cold_start(store: str, logdir: str, writer_url: str, cid: str, dim: int, poll: float) -> dict:
    cache = tempfile.mkdtemp(prefix="glean-cache-", dir=logdir)
    t_start = time.perf_counter()
    node = Node(store, "query", logdir, "--writer-url", writer_url, "--poll-interval", str(poll),
                "--cache-dir", cache)
    started = time.perf_counter() - t_start
    rng = np.random.default_rng(5)
    col = f"{BASE}/collections/{cid}"
    with httpx.Client(base_url=node.url, timeout=120) as h:
        before = h.get("/api/v2/gleandb/node").json()["cache"]
        times = []
        for _ in range(21):
            q = {"query_embeddings": [rng.standard_normal(dim).tolist()], "n_results": 10, "include": ["distances"]}
            t = time.perf_counter()
            r = h.post(col + "/query", json=q)
            r.raise_for_status()
            times.append(time.perf_counter() - t)
        after = h.get("/api/v2/gleandb/node").json()["cache"]
    node.stop()
    return {"process_start_s": started, "first": times[0], "warm_p50": statistics.median(times[1:]),
            "fetched_bytes": after["fetched_bytes"] - before["fetched_bytes"], "misses": after["misses"],
            "hits": after["hits"]}


def open_store(store: str):
    """The storage of ``store``: a directory, or an s3:// URL once object storage is merged."""
    if store.startswith("s3://"):
        from gleandb.storage.urls import open_storage

        return open_storage(store)
    from gleandb.storage.local import LocalStorage

    return LocalStorage(store)


def segment_bytes(store: str, name: str) -> int:
    """Bytes of the segment and mask files the latest manifest of collection ``name`` names."""
    import gleandb
    from gleandb.engine import manifest as mf

    local = open_store(store)
    c = gleandb.PersistentClient(store)
    try:
        cid = c.get_collection(name)._record.id
    finally:
        c.close()
    prefix = f"collections/{cid}/"
    m = mf.load_latest(local, prefix)
    total = 0
    for e in m.segments:
        total += sum(local.size_of(k) for k in local.list(mf.segment_dir(prefix, e)))
        if e.deletes:
            total += local.size_of(e.deletes)
    return total


def zipf_cache(store: str, reads: int = 5000, s: float = 1.1) -> dict:
    from gleandb.storage.cache import CachedStorage

    local = open_store(store)
    keys = [k for k in local.list("segments/")] + [k for k in local.list("masks/")]
    sizes = {k: local.size_of(k) for k in keys}
    total = sum(sizes.values())
    rng = np.random.default_rng(1)
    order = rng.permutation(len(keys))
    weights = 1.0 / np.arange(1, len(keys) + 1) ** s
    weights /= weights.sum()
    cache = CachedStorage(local, memory_bytes=total // 4)
    picks = rng.choice(len(keys), size=reads, p=weights)
    for p in picks:
        cache.get(keys[order[p]])
    st = cache.stats()
    return {"objects": len(keys), "bytes": total, "bound": total // 4, "hit_rate": st["hit_rate"],
            "reads": reads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--storage", default=None, help="store directory (default: a temporary one)")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--readers", type=int, default=8)
    ap.add_argument("--poll", type=float, default=0.1, help="query nodes' --poll-interval")
    ap.add_argument("--s3-test-server", action="store_true",
                    help="start the tests' S3 server (tests/s3_server.py: moto on loopback, one request at "
                         "a time) and use a new bucket in it as --storage")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-scaleout.txt"))
    args = ap.parse_args()
    if args.s3_test_server:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
        from s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

        server = S3Server()
        args.storage = f"s3://{server.new_bucket()}/store"
        os.environ.update(AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID=ACCESS_KEY,
                          AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION=REGION)
        try:
            run(args)
        finally:
            server.stop()
        return
    run(args)


def run(args) -> None:
    if args.storage and args.storage.startswith("s3://"):
        try:
            import gleandb.storage.urls  # noqa: F401
        except ImportError:
            sys.exit("s3:// storage needs the object-storage backend (glean run --storage); not in this build")
    nginx = ensure_nginx()
    work = tempfile.mkdtemp(prefix="glean-scaleout-")
    os.chmod(work, 0o755)
    store = args.storage or os.path.join(work, "store")
    lines = [f"# .venv/bin/python bench/bench_scaleout.py --rows {args.rows} --dim {args.dim} "
             f"--duration {args.duration:g} --readers {args.readers} --poll {args.poll:g}"
             f"{' --s3-test-server' if getattr(args, 's3_test_server', False) else ''}",
             f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
             f"load avg {os.getloadavg()[0]:.1f} at start; storage: "
             f"{'object storage ' + store if store.startswith('s3://') else 'local directory'}"]
    print(f"loading {args.rows} rows x2 collections into {store}", flush=True)
    t = time.perf_counter()
    load(store, args.rows, args.dim)
    lines.append(f"# loaded 2 x {args.rows} rows (dim {args.dim}) in {time.perf_counter() - t:.1f} s")

    # ---- one node
    print("phase 1: one node", flush=True)
    one = Node(store, "all", work)
    cid = collection_id(one.url, "bench")
    a = run_load(one.url, [one.url], cid, args.dim, args.readers, args.duration, tag="a")
    one.stop()

    # ---- writer + 2 query nodes behind nginx
    print("phase 2: writer + 2 query nodes behind nginx", flush=True)
    writer = Node(store, "writer", work)
    qs = [Node(store, "query", work, "--writer-url", writer.url, "--poll-interval", str(args.poll),
               "--cache-dir", os.path.join(work, f"cache-{i}")) for i in range(2)]
    listen = f"127.0.0.1:{free_port()}"
    ngx_dir = os.path.join(work, "nginx")
    os.makedirs(ngx_dir)
    os.chmod(ngx_dir, 0o777)
    conf = os.path.join(ngx_dir, "nginx.conf")
    Path(conf).write_text(nginx_conf(ngx_dir, listen, writer.url[7:], [q.url[7:] for q in qs]))
    ngx = subprocess.Popen([nginx, "-c", conf, "-p", ngx_dir], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    front = f"http://{listen}"
    for _ in range(100):
        try:
            httpx.get(front + "/api/v2/heartbeat", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    b = run_load(front, [q.url for q in qs], cid, args.dim, args.readers, args.duration,
                 kill_at=args.duration / 2, victim=qs[1], tag="b")

    # ---- cold start of a new query node, then the cache under a skewed workload
    print("phase 3: cold start", flush=True)
    cold = cold_start(store, work, writer.url, cid, args.dim, args.poll)
    ngx.send_signal(signal.SIGQUIT)
    ngx.wait(timeout=30)
    for q in qs:
        q.stop()
    writer.stop()
    z = zipf_cache(store)
    st = open_store(store)
    store_bytes = sum(st.size_of(k) for k in st.list(""))
    seg_bytes = {name: segment_bytes(store, name) for name in ("bench", "untouched")}

    lines += [
        "",
        f"{args.readers} reader threads (k-NN, k=10) + 1 writer (10 rows / 100 ms) + staleness probe "
        f"(1 row / 250 ms), {args.duration:g} s each",
        f"{'setup':44s} {'reads/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'failed':>7s} "
        f"{'stale p50 ms':>13s} {'stale p99 ms':>13s}",
    ]
    for name, r in (("1 node (--role all)", a), ("1 writer + 2 query nodes, nginx, 1 killed", b)):
        lines.append(f"{name:44s} {r['rps']:8.1f} {r['p50'] * 1e3:8.1f} {r['p99'] * 1e3:8.1f} {r['failed']:7d} "
                     f"{r['stale_p50'] * 1e3:13.1f} {r['stale_p99'] * 1e3:13.1f}")
    lines += [
        f"reads: {a['reads']} vs {b['reads']} ok; write batches acked: {a['writes']} vs {b['writes']}; "
        f"staleness samples: {a['stale_n']} vs {b['stale_n']} (query nodes poll every {args.poll:g} s)",
        f"query node killed (SIGKILL) after {args.duration / 2:g} s ({b['reads_before_kill']} reads done by then): "
        f"{b['failed']} failed read requests through nginx{' ' + repr(b['fail_samples']) if b['failed'] else ''}",
        "",
        f"cold start of a new query node (empty cache; store {store_bytes / 1e6:.1f} MB, 2 collections):",
        f"  process start to first heartbeat {cold['process_start_s']:.2f} s; first query {cold['first'] * 1e3:.1f} ms "
        f"(opens the collection: catalog, manifest, segments, WAL tail); warm query p50 {cold['warm_p50'] * 1e3:.1f} ms",
        f"  fetched into the cache (all 21 queries): {cold['fetched_bytes'] / 1e6:.2f} MB in {cold['misses']} objects, "
        f"{cold['hits']} hits; segment files of the queried collection: {seg_bytes['bench'] / 1e6:.2f} MB, "
        f"of the other one: {seg_bytes['untouched'] / 1e6:.2f} MB",
        f"cache under a Zipf(1.1) workload over {z['objects']} segment/mask objects ({z['bytes'] / 1e6:.1f} MB), "
        f"memory bound {z['bound'] / 1e6:.1f} MB (25%): hit rate {z['hit_rate']:.3f} over {z['reads']} reads",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    if not args.storage:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
