"""obstore against boto3 on the operations gleandb's object-store backend makes.

Prints figures; it is not a test. Usage:

    python bench/bench_object_store.py [--rounds 200] [--endpoint URL --bucket NAME]

Without ``--endpoint`` it starts the tests' S3 server (moto behind one lock per request,
``tests/s3_server.py``) on 127.0.0.1. Both clients run in the same process against the same
server, one after the other and interleaved by round, so their ratio is meaningful even on
a loaded machine; absolute numbers are the local server's, not S3's.

Measured: a small PUT (1 KiB, the size of a WAL group of a few writes), a conditional
create (``If-None-Match: *``), a ranged read of 64 KiB from a 4 MiB segment file (how a
query node reads a column or index block), a whole 4 MiB GET, and 8 threads of small PUTs.

Then gleandb's write path on the same server (``--writes``, default on): a PersistentClient on
``s3://``, 1, 8 and 16 threads each adding one row per call for ``--seconds``: acknowledged
writes per second, latency p50/p99, and how many writes each WAL PUT carried (group commit);
once as the local server answers (~2 ms) and once with every PUT delayed 20 ms by a proxy
(``--put-latency-ms``), the order of S3's PUT latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))


def _clients(endpoint: str, bucket: str):
    import boto3
    import obstore
    from botocore.config import Config
    from obstore.store import S3Store

    b3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1", config=Config(max_pool_connections=32))
    ob = S3Store(bucket, endpoint=endpoint, access_key_id="testing", secret_access_key="testing",
                 region="us-east-1", client_options={"allow_http": True})

    class Boto:
        name = "boto3"

        def put(self, key, data):
            b3.put_object(Bucket=bucket, Key=key, Body=data)

        def create(self, key, data):
            b3.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")

        def get_range(self, key, start, length):
            return b3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")["Body"].read()

        def get(self, key):
            return b3.get_object(Bucket=bucket, Key=key)["Body"].read()

    class Obstore:
        name = "obstore"

        def put(self, key, data):
            obstore.put(ob, key, data)

        def create(self, key, data):
            obstore.put(ob, key, data, mode="create")

        def get_range(self, key, start, length):
            return bytes(obstore.get_range(ob, key, start=start, length=length))

        def get(self, key):
            return bytes(obstore.get(ob, key).bytes())

    return [Boto(), Obstore()]


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def bench_writes(endpoint: str, bucket: str, seconds: float, put_latency_ms: float = 0.0) -> None:
    """Acknowledged single-row adds through the engine on s3://, by number of writer threads.
    ``put_latency_ms``: every PUT passes a proxy that delays it that long (S3's latency is
    10-30 ms; the local server answers in ~2 ms)."""
    import threading

    import numpy as np

    import gleandb

    proxy = None
    if put_latency_ms:
        from urllib.parse import urlparse

        from s3_server import FaultProxy

        proxy = FaultProxy(urlparse(endpoint).port)
        proxy.rule = lambda method, path, query: ("delay", put_latency_ms / 1e3) if method == "PUT" else None
        endpoint = proxy.endpoint
    print(f"\ngleandb writes on s3://, every PUT delayed {put_latency_ms:.0f} ms (one row per add, "
          f"{seconds:.0f} s per row; ack = WAL group PUT done)")
    print(f"{'threads':>7s} {'writes/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'PUTs':>6s} {'writes/PUT':>10s}")
    for threads in (1, 8, 16):
        client = gleandb.PersistentClient(f"s3://{bucket}/writes-{threads}-{put_latency_ms:g}", storage_options={
            "endpoint": endpoint, "access_key_id": "testing", "secret_access_key": "testing",
            "region": "us-east-1"})
        col = client.create_collection("writes", embedding_function=None)
        store = col._store
        lat: list[float] = []
        stop = time.perf_counter() + seconds
        vec = np.ones((1, 8), "float32")

        def work(t: int) -> None:
            i = 0
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                col.add(ids=[f"{t}-{i}"], embeddings=vec)
                lat.append(time.perf_counter() - t0)
                i += 1

        g0, r0 = store._writes.groups, store._writes.requests
        t0 = time.perf_counter()
        ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        dt = time.perf_counter() - t0
        groups, reqs = store._writes.groups - g0, store._writes.requests - r0
        print(f"{threads:7d} {len(lat) / dt:9.0f} {_pct(lat, 0.5) * 1e3:8.2f} {_pct(lat, 0.99) * 1e3:8.2f} "
              f"{groups:6d} {reqs / max(1, groups):10.1f}")
        client.close()
    if proxy is not None:
        proxy.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--endpoint")
    ap.add_argument("--bucket")
    ap.add_argument("--seconds", type=float, default=5.0, help="per thread count, for --writes")
    ap.add_argument("--writes", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure gleandb's write path (group commit) on s3://")
    ap.add_argument("--put-latency-ms", type=float, nargs="+", default=[0.0, 20.0],
                    help="for --writes: run once per value with every PUT delayed that long by a proxy")
    args = ap.parse_args()
    server = None
    if args.endpoint is None:
        from s3_server import S3Server

        server = S3Server()
        args.endpoint, args.bucket = server.endpoint, server.new_bucket()
    try:
        clients = _clients(args.endpoint, args.bucket)
        small = os.urandom(1024)
        big = os.urandom(4 << 20)
        clients[0].put("bench/segment.bin", big)
        times: dict[tuple[str, str], list[float]] = {}
        for c in clients:  # warm connections
            c.get_range("bench/segment.bin", 0, 1024)
        for r in range(args.rounds):
            for c in clients if r % 2 == 0 else clients[::-1]:
                for op, fn in (
                    ("put 1 KiB", lambda: c.put(f"bench/p/{uuid.uuid4().hex}", small)),
                    ("create 1 KiB (If-None-Match)", lambda: c.create(f"bench/c/{uuid.uuid4().hex}", small)),
                    ("ranged get 64 KiB of 4 MiB",
                     lambda: c.get_range("bench/segment.bin", (r * 65536) % ((4 << 20) - 65536), 65536)),
                ):
                    t = time.perf_counter()
                    fn()
                    times.setdefault((c.name, op), []).append(time.perf_counter() - t)
                if r % 10 == 0:
                    t = time.perf_counter()
                    assert len(c.get("bench/segment.bin")) == len(big)
                    times.setdefault((c.name, "get 4 MiB"), []).append(time.perf_counter() - t)
        print(f"endpoint {args.endpoint} (tests' moto server unless given), {args.rounds} rounds, "
              f"clients interleaved")
        print(f"{'operation':32s} {'client':8s} {'p50 ms':>8s} {'p99 ms':>8s} {'mean ms':>8s}")
        for (name, op), xs in sorted(times.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            print(f"{op:32s} {name:8s} {_pct(xs, 0.5) * 1e3:8.2f} {_pct(xs, 0.99) * 1e3:8.2f} "
                  f"{statistics.mean(xs) * 1e3:8.2f}")
        for c in clients:
            n = args.rounds * 2
            with ThreadPoolExecutor(8) as pool:
                t = time.perf_counter()
                list(pool.map(lambda i: c.put(f"bench/t/{uuid.uuid4().hex}", small), range(n)))
                dt = time.perf_counter() - t
            print(f"8 threads x small PUT          {c.name:8s} {n / dt:8.0f} PUT/s")
        if args.writes:
            for ms in args.put_latency_ms:
                bench_writes(args.endpoint, args.bucket, args.seconds, ms)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
