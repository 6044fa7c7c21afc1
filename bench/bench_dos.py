"""Denial-of-service figures (issue 12): substring search cost, response amplification and
the request deadline. Prints numbers; asserts nothing.

    python bench/bench_dos.py [--src PATH]     # PATH: another checkout's src/ to compare

1. substring: 20 documents of 'a' * 2,000,000 and needles 'a' * m + 'b', through the RE2
   literal (the only path before) and Arrow's match_substring (KMP, needles > 256 bytes now);
2. amplification: one row with a 1 MB id, ``query`` of Q embeddings x n_results 10,000
   against ``glean run`` with default settings: status, response bytes, seconds, RSS growth;
3. deadline: ``$regex a[ab]{200}x`` over 5 documents of 2 MB (random 'a'/'b'), with
   ``--request-timeout 1``: status and seconds, then whether the next request is answered.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SRC = str(Path(__file__).resolve().parents[1] / "src")


def substring() -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    from gleandb.index.filters import _re2_literal

    docs = pa.chunked_array([pa.array(["a" * 2_000_000] * 20)])
    print("1. substring: 20 x 'a'*2,000,000, needle 'a'*m + 'b'")
    for m in (1_000, 16_000, 64_000):
        needle = "a" * m + "b"
        for name, fn in (("RE2 literal", lambda: pc.match_substring_regex(docs, _re2_literal(needle))),
                         ("KMP match_substring", lambda: pc.match_substring(docs, needle))):
            t = time.perf_counter()
            fn()
            print(f"   m={m:>6} {name:<20} {time.perf_counter() - t:.3f} s")


class _Server:
    def __init__(self, src: str, *args: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        d = tempfile.mkdtemp()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gleandb.cli.main", "run", "--path", d + "/data", "--port", str(self.port),
             "--log-level", "warning", *args],
            env={**os.environ, "PYTHONPATH": src}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                if httpx.get(self.url + "/api/v2/heartbeat").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        base = self.url + "/api/v2/tenants/default_tenant/databases/default_database/collections"
        self.col = base + "/" + httpx.post(base, json={"name": "bench-dos"}).json()["id"]

    def rss_mb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as fh:
            return int(next(line for line in fh if line.startswith("VmRSS")).split()[1]) // 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def amplification(src: str, n_queries: int) -> None:
    s = _Server(src)
    try:
        httpx.post(s.col + "/add", json={"ids": ["i" * 1_000_000], "embeddings": [[1.0, 0.0]]},
                   timeout=120).raise_for_status()
        before = s.rss_mb()
        body = {"query_embeddings": [[1.0, 0.0]] * n_queries, "n_results": 10_000, "include": []}
        t = time.perf_counter()
        r = httpx.post(s.col + "/query", json=body, timeout=600)
        print(f"2. amplification ({n_queries} queries x n_results 10,000, one 1 MB id): status {r.status_code}, "
              f"response {len(r.content)} bytes, {time.perf_counter() - t:.2f} s, RSS +{s.rss_mb() - before} MB")
    finally:
        s.stop()


def deadline(src: str) -> None:
    s = _Server(src, "--request-timeout", "1")
    try:
        rng = random.Random(0)
        for i in range(5):
            doc = "".join(rng.choices("ab", k=2_000_000))
            httpx.post(s.col + "/add", json={"ids": [str(i)], "embeddings": [[1.0, 0.0]], "documents": [doc]},
                       timeout=120).raise_for_status()
        t = time.perf_counter()
        r = httpx.post(s.col + "/get", json={"where_document": {"$regex": "a[ab]{200}x"}, "include": []}, timeout=600)
        took = time.perf_counter() - t
        nxt = httpx.get(s.url + "/api/v2/heartbeat").status_code
        print(f"3. deadline ($regex a[ab]{{200}}x over 5 x 2 MB, --request-timeout 1): status {r.status_code} "
              f"after {took:.2f} s; next request {nxt}")
    finally:
        s.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=SRC, help="src/ of the checkout to run the server from")
    ap.add_argument("--queries", type=int, default=300)
    a = ap.parse_args()
    substring()
    amplification(a.src, a.queries)
    deadline(a.src)


if __name__ == "__main__":
    main()
