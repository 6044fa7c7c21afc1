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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--endpoint")
    ap.add_argument("--bucket")
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
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
