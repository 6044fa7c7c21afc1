"""MCP tool-call latency: `retrieve`, `grep` and `get` through the SDK's client, over stdio
(`glean mcp`, a subprocess) and over streamable HTTP (`/mcp` under `glean run`), on 2,000
synthetic documents embedded with the model-free hashing function (so the figure is the
protocol and the engine, not an embedding model).

    .venv/bin/python bench/bench_mcp.py [--docs 2000] [--calls 50] [--out bench/results-mcp.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
from mcp import Client
from mcp.client.stdio import StdioServerParameters

HASHING = {"embedding_function": {"name": "gleandb_hashing", "config": {"dim": 256}}}
WORDS = "invoice refund deploy rollback release payment customer ticket latency index segment shard".split()
CALLS = (("retrieve", {"query_texts": ["refund latency"], "n_results": 10}),
         ("grep", {"pattern": r"id1[0-9]{2}\b", "limit": 50}),
         ("get", {"limit": 10}))


async def _call(c: Client, tool: str, args: dict) -> dict:
    r = await c.call_tool(tool, args)
    if r.is_error:
        raise RuntimeError(r.content[0].text)
    return json.loads(r.content[0].text)


async def _bench(c: Client, label: str, n_docs: int, n_calls: int) -> list[str]:
    rng = random.Random(0)
    docs = [" ".join(rng.choice(WORDS) for _ in range(30)) + f" id{i}" for i in range(n_docs)]
    await _call(c, "create_collection", {"name": "bench", "configuration": HASHING})
    for i in range(0, n_docs, 500):
        await _call(c, "add", {"collection": "bench", "ids": [f"d{j}" for j in range(i, i + len(docs[i:i + 500]))],
                               "documents": docs[i:i + 500]})
    rows = []
    for tool, args in CALLS:
        ms = []
        for _ in range(n_calls):
            t = time.perf_counter()
            await _call(c, tool, {"collection": "bench", **args})
            ms.append((time.perf_counter() - t) * 1000)
        ms.sort()
        rows.append(f"{label:6s} {tool:9s} median {statistics.median(ms):6.1f} ms  p90 "
                    f"{ms[int(0.9 * (len(ms) - 1))]:6.1f} ms  ({n_calls} calls, {n_docs} docs)")
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main_async(n_docs: int, n_calls: int) -> list[str]:
    d = tempfile.mkdtemp(prefix="bench-mcp-")
    rows = []
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "gleandb.cli.main", "mcp", "--path", d + "/stdio"])
    async with Client(params) as c:
        rows += await _bench(c, "stdio", n_docs, n_calls)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gleandb.cli.main", "run", "--path", d + "/http", "--port",
                             str(port), "--log-level", "warning", "--no-access-log"], env=os.environ.copy())
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(url + "/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        async with Client(url + "/mcp") as c:
            rows += await _bench(c, "http", n_docs, n_calls)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=2000)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    rows = asyncio.run(main_async(a.docs, a.calls))
    text = "\n".join(["# bench/bench_mcp.py: MCP tool-call latency, client to answer", *rows]) + "\n"
    print(text, end="")
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
