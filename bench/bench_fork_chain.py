"""Fork-chain benchmark (issue 13): one collection per commit of a real repository, each
forked from its parent's with only the changed files re-applied, against re-indexing every
commit from scratch; plus fork and delete-collection latency with 10,000 collections in
the store. Prints a table and writes bench/results-fork-chain.txt; not a test.

    python bench/bench_fork_chain.py [--commits 100] [--collections 10000] [--repeats 3] [--repo /tmp/click-chain]

The repository is pallets/click (``../shared/data/click.bundle`` beside the checkout), its last N
first-parent commits, oldest first. Every .py/.md/.rst file is cut into 40-line windows
(ids ``path:start``); a commit's changed files are those whose blob id differs from the
parent's. Embeddings come from the hashing embedding function, computed once per distinct
chunk text before anything is timed, so both methods get the same vectors for free and
"database time" is fork/create + delete + add + flush only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import gleandb  # noqa: E402
from gleandb.embeddings.hashing import HashingEmbeddingFunction  # noqa: E402

# the shared data folder beside the checkout (../shared/data/click.bundle)
BUNDLE = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "click.bundle")
WINDOW = 40
EXTS = (".py", ".md", ".rst")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-fork-chain.txt")


def dir_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def breakdown(path: str) -> dict[str, int]:
    """Bytes by kind of file: segment files by name, masks, manifests, WAL, catalog."""
    out: dict[str, int] = {}
    for root, _dirs, files in os.walk(path):
        rel = os.path.relpath(root, path).split(os.sep)
        for f in files:
            if rel[0] == "segments":
                kind = f
            elif rel[0] in ("masks", "catalog"):
                kind = rel[0]
            elif "manifests" in rel:
                kind = "manifests"
            elif "wal" in rel:
                kind = "wal"
            else:
                kind = "other"
            out[kind] = out.get(kind, 0) + os.path.getsize(os.path.join(root, f))
    return out


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def tree(repo: str, commit: str) -> dict[str, str]:
    """path -> blob id of the indexed files of ``commit``."""
    out = {}
    for line in git(repo, "ls-tree", "-r", commit).splitlines():
        meta, path = line.split("\t", 1)
        _mode, kind, blob = meta.split()
        if kind == "blob" and path.endswith(EXTS):
            out[path] = blob
    return out


def read_blobs(repo: str, blobs: set[str]) -> dict[str, str]:
    proc = subprocess.run(["git", "-C", repo, "cat-file", "--batch"], input=("\n".join(sorted(blobs)) + "\n").encode(),
                          capture_output=True, check=True, text=False)
    data, out, pos = proc.stdout, {}, 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        blob, _kind, size = data[pos:nl].decode().split()
        size = int(size)
        out[blob] = data[nl + 1: nl + 1 + size].decode("utf-8", "replace")
        pos = nl + 1 + size + 1
    return out


def chunks(path: str, text: str) -> list[tuple[str, str, dict]]:
    lines = text.splitlines()
    out = []
    for start in range(0, max(1, len(lines)), WINDOW):
        body = "\n".join(lines[start: start + WINDOW])
        out.append((f"{path}:{start + 1}", body, {"path": path, "start": start + 1}))
    return out


class Vectors:
    """Embeddings by chunk text, computed once (not timed)."""

    def __init__(self) -> None:
        self.ef = HashingEmbeddingFunction(dim=256)
        self.cache: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.embedded = 0

    def get(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in texts]
        todo = [(k, t) for k, t in zip(keys, texts) if k not in self.cache]
        if todo:
            t0 = time.perf_counter()
            embs = self.ef([t for _k, t in todo])
            self.seconds += time.perf_counter() - t0
            self.embedded += len(todo)
            for (k, _t), e in zip(todo, embs):
                self.cache[k] = np.asarray(e, dtype=np.float32)
        return np.stack([self.cache[k] for k in keys]) if keys else np.zeros((0, 256), np.float32)


def add(col, rows, vectors: Vectors, batch: int = 2000) -> None:
    for i in range(0, len(rows), batch):
        part = rows[i: i + batch]
        col.add(ids=[r[0] for r in part], documents=[r[1] for r in part], metadatas=[r[2] for r in part],
                embeddings=vectors.get([r[1] for r in part]))


class Syncs:
    """Counts fsync/fdatasync calls of this process (the worker's flushes included)."""

    n = 0

    @classmethod
    def install(cls) -> None:
        for name in ("fsync", "fdatasync"):
            real = getattr(os, name)

            def counted(fd, real=real):
                cls.n += 1
                return real(fd)

            setattr(os, name, counted)


def settings() -> gleandb.Settings:
    return gleandb.Settings()


def p50(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def latency_at(path: str, n_collections: int, samples: int) -> tuple[float, float, float]:
    """(fork p50 ms, delete p50 ms, create p50 ms) with ``n_collections`` in the store."""
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(path, settings=settings())
    src = c.create_collection("source", embedding_function=None)
    X = np.random.default_rng(0).standard_normal((2000, 64)).astype(np.float32)
    src.add(ids=[f"r{i}" for i in range(2000)], embeddings=X)
    c.engine.flush(wait=True)
    have = 1
    creates = []
    while have < n_collections:
        t = time.perf_counter()
        c.create_collection(f"filler-{have}", embedding_function=None)
        creates.append(time.perf_counter() - t)
        have += 1
    forks, deletes = [], []
    for i in range(samples):
        t = time.perf_counter()
        src.fork(f"fork-{i}")
        forks.append(time.perf_counter() - t)
    for i in range(samples):
        t = time.perf_counter()
        c.delete_collection(f"fork-{i}")
        deletes.append(time.perf_counter() - t)
    c.close()
    return p50(forks), p50(deletes), p50(creates[-samples:]) if creates else float("nan")


QUERY_TEXTS = ["environment variables for options", "shell completion", "prompt for a password", "progress bar",
               "parse command line arguments", "CliRunner invoke", "path type exists", "echo with colors"]
REGEXES = [r"raise [A-Za-z]+Error", r"def [a-z_]+\(ctx", r"TODO|FIXME", r"isinstance\([a-z_]+, (str|int)\)"]


def query_latency(c, s, name: str, vectors: Vectors, repeats: int) -> list[tuple[str, float, float, float, float]]:
    """p50 ms of each kind of read on the newest commit's collection: the chain's (one small
    segment per ancestor commit) and the one built from scratch (one segment), interleaved;
    wall and CPU (the process's: on a shared machine wall time also counts waiting for a core)."""
    cc, sc = (x.get_collection(name, embedding_function=None) for x in (c, s))
    qv = vectors.get(QUERY_TEXTS)
    kinds = {
        "dense top-10": lambda col, i: col.query(query_embeddings=qv[i % len(qv)][None], n_results=10, include=[]),
        "BM25 top-10": lambda col, i: col.retrieve(query_texts=[QUERY_TEXTS[i % len(QUERY_TEXTS)]], n_results=10,
                                                   mode="bm25", include=[]),
        "dense top-10 + $contains": lambda col, i: col.query(query_embeddings=qv[i % len(qv)][None], n_results=10,
                                                             where_document={"$contains": "self"}, include=[]),
        "get $regex (all matches)": lambda col, i: col.get(where_document={"$regex": REGEXES[i % len(REGEXES)]},
                                                           include=[]),
    }
    out = []
    for kind, fn in kinds.items():
        fn(cc, 0), fn(sc, 0)  # warm: segments loaded, indexes mapped
        tc, ts, uc, us = [], [], [], []
        for i in range(repeats):
            for col, acc, cpu in ((cc, tc, uc), (sc, ts, us)):
                t, u = time.perf_counter(), time.process_time()
                fn(col, i)
                acc.append(time.perf_counter() - t)
                cpu.append(time.process_time() - u)
        out.append((kind, p50(tc), p50(ts), p50(uc), p50(us)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=100)
    ap.add_argument("--collections", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each method; the fastest counts")
    ap.add_argument("--repo", default="/tmp/click-chain")
    ap.add_argument("--dir", default=None, help="where the stores go (default: a temporary directory)")
    ap.add_argument("--query-repeats", type=int, default=40, help="queries of each kind timed per collection")
    args = ap.parse_args()
    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    if not os.path.isdir(args.repo):
        subprocess.run(["git", "clone", "-q", BUNDLE, args.repo], check=True)
    commits = git(args.repo, "rev-list", "--first-parent", "-n", str(args.commits), "HEAD").split()[::-1]
    trees = [tree(args.repo, c) for c in commits]
    texts = read_blobs(args.repo, {b for t in trees for b in t.values()})
    file_chunks = {blob: None for t in trees for blob in t.values()}

    def rows_of(path: str, blob: str):
        return chunks(path, texts[blob])

    vectors = Vectors()
    # every distinct chunk embedded once up front (not timed in either method)
    for t in trees:
        for path, blob in t.items():
            vectors.get([r[1] for r in rows_of(path, blob)])
    del file_chunks

    root = args.dir or tempfile.mkdtemp(prefix="bench-fork-chain-")
    chain_dir, scratch_dir = os.path.join(root, "chain"), os.path.join(root, "scratch")
    for d in (chain_dir, scratch_dir):
        shutil.rmtree(d, ignore_errors=True)

    def run_chain() -> float:
        """Every commit forked from its parent's, changed files re-applied; database seconds."""
        shutil.rmtree(chain_dir, ignore_errors=True)
        gleandb.ClientAPI.clear_system_cache()
        c = gleandb.PersistentClient(chain_dir, settings=settings())
        changed_files.clear(), changed_rows.clear(), total_rows.clear(), fork_times.clear(), phases.clear()
        seconds = 0.0
        cpu, syncs0 = 0.0, Syncs.n
        prev = None
        for i, (commit, t) in enumerate(zip(commits, trees)):
            all_rows = [r for path, blob in sorted(t.items()) for r in rows_of(path, blob)]
            total_rows.append(len(all_rows))
            if prev is None:
                t0, p0 = time.perf_counter(), time.process_time()
                col = c.create_collection(f"c{i:03d}-{commit[:8]}", embedding_function=None)
                add(col, all_rows, vectors)
                c.engine.flush(wait=True)
                seconds += time.perf_counter() - t0
                cpu += time.process_time() - p0
            else:
                ptree = trees[i - 1]
                changed = sorted(p for p in set(t) | set(ptree) if t.get(p) != ptree.get(p))
                old_ids = [r[0] for p in changed if p in ptree for r in rows_of(p, ptree[p])]
                new_rows = [r for p in changed if p in t for r in rows_of(p, t[p])]
                changed_files.append(len(changed))
                changed_rows.append(len(old_ids) + len(new_rows))
                t0, p0 = time.perf_counter(), time.process_time()
                col = prev.fork(f"c{i:03d}-{commit[:8]}")
                t1 = time.perf_counter()
                fork_times.append(t1 - t0)
                if old_ids:
                    col.delete(ids=old_ids)
                t2 = time.perf_counter()
                if new_rows:
                    add(col, new_rows, vectors)
                t3 = time.perf_counter()
                c.engine.flush(wait=True)
                t4 = time.perf_counter()
                seconds += t4 - t0
                cpu += time.process_time() - p0
                for k, dt in (("fork", t1 - t0), ("delete", t2 - t1), ("add", t3 - t2), ("flush", t4 - t3)):
                    phases[k] = phases.get(k, 0.0) + dt
            prev = col
        costs["chain"] = (cpu, Syncs.n - syncs0)  # CPU s in the timed steps, syncs
        c.close()
        return seconds

    def run_scratch() -> float:
        """Every commit indexed into a new collection from scratch; database seconds."""
        shutil.rmtree(scratch_dir, ignore_errors=True)
        gleandb.ClientAPI.clear_system_cache()
        s = gleandb.PersistentClient(scratch_dir, settings=settings())
        seconds = 0.0
        cpu, syncs0 = 0.0, Syncs.n
        for i, (commit, t) in enumerate(zip(commits, trees)):
            all_rows = [r for path, blob in sorted(t.items()) for r in rows_of(path, blob)]
            t0, p0 = time.perf_counter(), time.process_time()
            col = s.create_collection(f"c{i:03d}-{commit[:8]}", embedding_function=None)
            add(col, all_rows, vectors)
            s.engine.flush(wait=True)
            seconds += time.perf_counter() - t0
            cpu += time.process_time() - p0
        costs["scratch"] = (cpu, Syncs.n - syncs0)
        s.close()
        return seconds

    changed_files: list[int] = []
    changed_rows: list[int] = []
    total_rows: list[int] = []
    fork_times: list[float] = []
    phases: dict[str, float] = {}
    costs: dict[str, tuple[float, int]] = {}
    Syncs.install()
    # alternate the two methods; the least disturbed run of each (the machine is shared) counts
    chain_runs, scratch_runs, chain_phases = [], [], []
    for _ in range(args.repeats):
        scratch_runs.append(run_scratch())
        chain_runs.append(run_chain())
        chain_phases.append(dict(phases))
    best_phases = chain_phases[chain_runs.index(min(chain_runs))]
    t_chain, t_scratch = min(chain_runs), min(scratch_runs)
    chain_bytes, scratch_bytes = dir_bytes(chain_dir), dir_bytes(scratch_dir)
    chain_parts, scratch_parts = breakdown(chain_dir), breakdown(scratch_dir)

    # ---- correctness: every 10th commit and the last, chain == from scratch
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(chain_dir, settings=settings())
    s = gleandb.PersistentClient(scratch_dir, settings=settings())
    checked = 0
    for i in sorted(set(range(0, len(commits), 10)) | {len(commits) - 1}):
        name = f"c{i:03d}-{commits[i][:8]}"
        a = c.get_collection(name, embedding_function=None).get(include=["documents"])
        b = s.get_collection(name, embedding_function=None).get(include=["documents"])
        assert sorted(zip(a["ids"], a["documents"])) == sorted(zip(b["ids"], b["documents"])), name
        checked += 1
    chain_rows = sum(
        v.seg.n for v in c.get_collection(f"c{len(commits) - 1:03d}-{commits[-1][:8]}", embedding_function=None)
        ._store.snapshot())
    scratch_rows = sum(total_rows)
    segs = [len(c.get_collection(f"c{i:03d}-{commits[i][:8]}", embedding_function=None)._store.snapshot())
            for i in (0, len(commits) // 2, len(commits) - 1)]
    query_rows = query_latency(c, s, f"c{len(commits) - 1:03d}-{commits[-1][:8]}", vectors, args.query_repeats)
    c.close()
    s.close()

    # ---- fork / delete latency vs the number of collections in the store
    lat = {}
    for n in (10, args.collections):
        d = os.path.join(root, f"lat-{n}")
        shutil.rmtree(d, ignore_errors=True)
        lat[n] = latency_at(d, n, args.samples)
        shutil.rmtree(d, ignore_errors=True)

    say(f"fork chain vs from scratch: pallets/click, last {len(commits)} first-parent commits "
        f"({commits[0][:8]}..{commits[-1][:8]})")
    say(f"  chunks per commit: median {statistics.median(total_rows)}; changed per commit: median "
        f"{statistics.median(changed_files)} files, {statistics.median(changed_rows)} rows (deleted + added)")
    say(f"  embedding (hashing, 256-d, done once per distinct chunk, not in the database time): "
        f"{vectors.embedded} chunks, {vectors.seconds:.1f} s")
    say()
    say("| method | disk (MB) | database time (s) | disk ratio | time ratio |")
    say("| --- | ---: | ---: | ---: | ---: |")
    say(f"| from scratch | {scratch_bytes / 1e6:.1f} | {t_scratch:.2f} | 1.00 | 1.00 |")
    say(f"| fork chain | {chain_bytes / 1e6:.1f} | {t_chain:.2f} | {chain_bytes / scratch_bytes:.3f} | "
        f"{t_chain / t_scratch:.3f} |")
    say()
    say(f"  database time: fastest of {args.repeats} alternating runs each (chain runs: "
        f"{', '.join(f'{x:.2f}' for x in chain_runs)} s; scratch runs: {', '.join(f'{x:.2f}' for x in scratch_runs)} s)")
    (cpu_c, sync_c), (cpu_s, sync_s) = costs["chain"], costs["scratch"]
    say(f"  CPU seconds of the timed steps (this process, last run of each): chain {cpu_c:.2f}, scratch {cpu_s:.2f} (ratio "
        f"{cpu_c / cpu_s:.3f}); fsyncs: chain {sync_c} ({sync_c / len(commits):.1f} a commit), scratch {sync_s} "
        f"({sync_s / len(commits):.1f} a commit)")
    say("  chain time by step, commits 2..N, fastest run (s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in best_phases.items()))
    say(f"  targets: disk <= 0.15x, time <= 0.25x; chain fork p50 {p50(fork_times):.2f} ms; "
        f"segments per collection at commits 1/{len(commits) // 2}/{len(commits)}: {segs}")
    say(f"  contents checked equal (chain vs scratch) at {checked} commits")
    say(f"  rows in segments: chain {chain_rows:,}, scratch {scratch_rows:,} (ratio {chain_rows / scratch_rows:.3f})")
    say("  disk by kind of file, MB (chain / scratch / ratio):")
    for kind in sorted(set(chain_parts) | set(scratch_parts), key=lambda k: -chain_parts.get(k, 0)):
        a, b = chain_parts.get(kind, 0), scratch_parts.get(kind, 0)
        say(f"    {kind:14s} {a / 1e6:8.2f} {b / 1e6:8.2f}   {a / b if b else float('nan'):.3f}")
    say()
    say(f"| read at commit {len(commits)} (p50 of {args.query_repeats}, interleaved) | chain (ms) | from scratch (ms) "
        "| ratio | chain CPU (ms) | from scratch CPU (ms) | CPU ratio |")
    say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, tc, ts, uc, us in query_rows:
        say(f"| {kind} | {tc:.2f} | {ts:.2f} | {tc / ts:.1f} | {uc:.2f} | {us:.2f} | {uc / us if us else float('nan'):.1f} |")
    say()
    say("| collections in store | fork p50 (ms) | delete-collection p50 (ms) | create p50 (ms) |")
    say("| ---: | ---: | ---: | ---: |")
    for n, (f, dl, cr) in lat.items():
        say(f"| {n:,} | {f:.2f} | {dl:.2f} | {cr:.2f} |")
    say(f"  ({args.samples} samples each; source: 2,000 flushed rows; target: fork and delete p50 < 10 ms "
        f"at 10,000)")
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
