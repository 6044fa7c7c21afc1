"""Write admission (``concurrent_writes``) and the BLAS thread cap (``blas_threads``) of
``glean run``: writes beyond the limit wait while reads pass, and no write is lost."""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest

from conftest import Server

from gleandb.server.admission import WriteAdmission, WriteQueue, is_record_write
from gleandb.server.config import load_settings

COL = "/api/v2/tenants/t/databases/d/collections/c0ffee"


def test_record_writes_are_the_four_wal_routes():
    for op in ("add", "upsert", "update", "delete"):
        assert is_record_write("POST", f"{COL}/{op}")
    for method, path in (("POST", f"{COL}/query"), ("POST", f"{COL}/get"), ("GET", f"{COL}/count"),
                         ("POST", f"{COL}/fork"), ("GET", f"{COL}/add"), ("POST", "/api/v2/tenants/t/add")):
        assert not is_record_write(method, path), (method, path)


def _scope(method: str, path: str) -> dict:
    return {"type": "http", "method": method, "path": path}


def test_writes_beyond_the_limit_wait_in_order_while_reads_pass():
    async def main():
        running: list[str] = []
        peak = [0]
        release = asyncio.Event()
        order: list[str] = []

        async def app(scope, receive, send):
            name = scope["name"]
            order.append(name)
            if scope["path"].endswith("/query"):
                return  # a read answers at once
            running.append(name)
            peak[0] = max(peak[0], len(running))
            await release.wait()
            running.remove(name)

        gate = WriteAdmission(app, WriteQueue(2))
        writes = [asyncio.create_task(gate({**_scope("POST", f"{COL}/add"), "name": f"w{i}"}, None, None))
                  for i in range(5)]
        for _ in range(10):
            await asyncio.sleep(0)
        assert sorted(running) == ["w0", "w1"] and gate.queue.waiting == 3
        # a read is not held behind the queued writes
        await asyncio.wait_for(gate({**_scope("POST", f"{COL}/query"), "name": "r"}, None, None), timeout=5)
        assert "r" in order and gate.queue.waiting == 3
        release.set()
        await asyncio.wait_for(asyncio.gather(*writes), timeout=5)
        assert peak[0] == 2 and gate.queue.waiting == 0 and gate.queue.admitted == 5
        assert [n for n in order if n != "r"] == ["w0", "w1", "w2", "w3", "w4"]  # arrival order

    asyncio.run(main())


def test_a_failing_write_gives_its_place_back():
    async def main():
        async def app(scope, receive, send):
            raise RuntimeError("boom")

        gate = WriteAdmission(app, WriteQueue(1))
        for _ in range(3):  # would hang on the second call if the place were kept
            with pytest.raises(RuntimeError):
                await asyncio.wait_for(gate(_scope("POST", f"{COL}/delete"), None, None), timeout=5)

    asyncio.run(main())


def test_settings_refuse_negative_values_and_read_the_environment():
    s = load_settings({}, None, environ={"GLEAN_CONCURRENT_WRITES": "0", "GLEAN_BLAS_THREADS": "3"})
    assert (s.concurrent_writes, s.blas_threads) == (0, 3)
    for name in ("CONCURRENT_WRITES", "BLAS_THREADS"):
        with pytest.raises(ValueError, match=f"'{name.lower()}' must be >= 0.*-1"):
            load_settings({}, None, environ={f"GLEAN_{name}": "-1"})
        with pytest.raises(ValueError, match=f"'{name.lower()}' must be an integer, got 'many'"):
            load_settings({}, None, environ={f"GLEAN_{name}": "many"})


def test_limit_blas_threads_caps_every_blas_library():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from gleandb.server.run import limit_blas_threads

    before = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    try:
        assert limit_blas_threads(0) is False
        assert [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"] == \
            [i["num_threads"] for i in before]
        assert limit_blas_threads(1) is True
        after = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        assert after and all(i["num_threads"] == 1 for i in after)
    finally:
        for info in before:  # put this test process back as it was
            threadpoolctl.threadpool_limits(limits={info["prefix"]: info["num_threads"]})


def test_concurrent_writers_through_a_one_write_gate_all_land(tmp_path):
    s = Server(tmp_path / "data", env={"GLEAN_CONCURRENT_WRITES": "1"}).start()
    try:
        base = f"{s.url}/api/v2/tenants/default_tenant/databases/default_database/collections"
        cid = httpx.post(base, json={"name": "gate"}).json()["id"]
        errors: list[str] = []
        rng = np.random.default_rng(3)
        vecs = rng.standard_normal((8, 5, 4)).astype(np.float32)

        def writer(w: int) -> None:
            with httpx.Client(base_url=f"{base}/{cid}", timeout=60) as c:
                for k in range(5):
                    r = c.post("/add", json={"ids": [f"{w}-{k}"], "embeddings": [vecs[w, k].tolist()],
                                             "metadatas": [{"w": w}]})
                    if r.status_code != 201:
                        errors.append(r.text)
                r = c.post("/update", json={"ids": [f"{w}-0"], "metadatas": [{"w": w, "v": 1}]})
                r2 = c.post("/delete", json={"ids": [f"{w}-4"]})
                if r.status_code != 200 or r2.json() != {"deleted": 1}:
                    errors.append(r.text + r2.text)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        got = httpx.post(f"{base}/{cid}/get", json={"include": ["metadatas"]}).json()
        assert sorted(got["ids"]) == sorted(f"{w}-{k}" for w in range(8) for k in range(4))
        meta = dict(zip(got["ids"], got["metadatas"]))
        assert all(meta[f"{w}-0"] == {"w": w, "v": 1} for w in range(8))
        q = httpx.post(f"{base}/{cid}/query", json={"query_embeddings": [vecs[2, 1].tolist()], "n_results": 1})
        assert q.json()["ids"] == [["2-1"]]
        # /metrics: every record write went through the queue (reads do not), none waits now
        metrics = {line.split(" ")[0]: float(line.split(" ")[1]) for line in httpx.get(f"{s.url}/metrics").text
                   .splitlines() if line.startswith("glean_write")}
        assert metrics["glean_writes_admitted_total"] == 8 * 7 and metrics["glean_writes_waiting"] == 0
        assert metrics["glean_write_queue_wait_seconds_total"] >= 0
    finally:
        assert s.stop() == 0
