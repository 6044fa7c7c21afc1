"""Code index benchmark (issue 13, part 2): a chain of per-commit forks vs re-indexing every
commit from scratch, on pallets/click's last N first-parent commits. Prints figures and
writes bench/results-code-index.txt; not a test.

    git clone ../shared/data/click.bundle /tmp/click
    python bench/bench_code_index.py [--repo /tmp/click] [--commits 100]

Embeddings: by default the hashing embedding function (gleandb_hashing, dim 256), so the
figures are the database's and the chunker's, not a model's; the embedding cache counts show
what a model would have had to embed. ``--embedding default`` uses all-MiniLM-L6-v2 (a few
minutes on 2 cores; ``--out bench/results-code-index-minilm.txt``). Both runs share nothing
(separate stores); within the from-scratch run the cache is on too, so both embed each
distinct chunk once.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import gleandb  # noqa: E402
from gleandb.code import CodeIndex  # noqa: E402
from gleandb.embeddings.hashing import HashingEmbeddingFunction  # noqa: E402

PATTERNS = [
    r"def [a-z_]+\(ctx", r"^class ", r"^\s+def __init__", r"TODO|FIXME", r"[A-Z_]{6,}", r"import (os|sys)",
    r"^$", r"\bclick\.(echo|secho)\(", r"raise [A-Za-z]+Error", r"[0-9]+\.[0-9]+\.[0-9]+", r"\"\"\"$",
    r"^#+ ", r"lambda", r"isinstance\([a-z_]+, (str|int)\)", r"yield", r"@pytest\.mark\.parametrize",
    r"self\.[a-z_]+ = None", r"^\.\. ", "\t", r"[^ -~]", r"(?i)windows", r"return (True|False)$",
    r"assert .* == ", r"http[s]?://[a-z./]+",
]


def du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={**os.environ, "LC_ALL": "C"}).stdout


_line_counts: dict[tuple[str, str], int] = {}


def line_count(repo: str, sha: str, path: str) -> int:
    if (sha, path) not in _line_counts:
        _line_counts[(sha, path)] = git(repo, "show", f"{sha}:{path}").count("\n")
    return _line_counts[(sha, path)]


def git_grep(repo: str, sha: str, pat: str) -> list[str]:
    p = subprocess.run(["git", "grep", "-n", "-I", "-E", "-e", pat.replace("(?i)", ""), *(["-i"] if "(?i)" in pat else []),
                        sha], cwd=repo, capture_output=True, env={**os.environ, "LC_ALL": "C"})
    out = []
    for raw in p.stdout.split(b"\n"):
        if not raw:
            continue
        line = raw.decode("utf-8", "replace").split(":", 1)[1]
        f, no, text = line.split(":", 2)
        if text == "" and int(no) == line_count(repo, sha, f) + 1:
            continue  # git 2.39's phantom line after the final newline (docs/code.md)
        out.append(line)
    return out


def thousand_files(work: str, ef) -> str:
    """A synthetic repository of 1,000 Python files (click has 166): one commit changing 3 files."""
    repo = os.path.join(work, "thousand")
    os.makedirs(repo)
    git(repo, "init", "-q", "-b", "main")
    rnd = random.Random(1)
    words = "parse option value command group context param default help name type".split()
    for i in range(1000):
        funcs = "".join(f"def {rnd.choice(words)}_{i}_{j}(x):\n    return x + {j}  # {' '.join(rnd.sample(words, 4))}\n\n\n"
                        for j in range(8))
        os.makedirs(os.path.join(repo, f"m{i // 100}"), exist_ok=True)
        with open(os.path.join(repo, f"m{i // 100}", f"f{i}.py"), "w") as fh:
            fh.write(f'"""module {i}"""\nimport os\n\n\n{funcs}')
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "one")
    ix = CodeIndex(gleandb.PersistentClient(os.path.join(work, "thousand-store")), repo, ef)
    first = ix.index_rev("HEAD")
    for i in (3, 500, 997):
        with open(os.path.join(repo, f"m{i // 100}", f"f{i}.py"), "a") as fh:
            fh.write("def added(y):\n    return y * 2\n")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qam", "three files")
    t0 = time.perf_counter()
    rep = ix.index_rev("HEAD")
    took = time.perf_counter() - t0
    return (f"synthetic 1,000-file repository ({first.chunks_added} chunks, first commit {first.seconds:.1f} s): a commit "
            f"changing 3 files indexed in {took:.3f} s ({rep.db_seconds:.3f} s in the database), {rep.chunks_added} chunks "
            f"added, {rep.embedded} embedded, {rep.reused} reused")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default="/tmp/click")
    ap.add_argument("--name", default="pallets/click", help="the repository's name in the report")
    ap.add_argument("--commits", type=int, default=100)
    ap.add_argument("--embedding", choices=["hashing", "default"], default="hashing",
                    help="hashing (no model, the default) or default (all-MiniLM-L6-v2; ~40 chunks/s on 2 cores)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-code-index.txt"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-code-")
    repo = os.path.join(work, "click")
    subprocess.run(["git", "clone", "-q", a.repo, repo], check=True)
    if a.embedding == "default":
        from gleandb.embeddings.functions import DefaultEmbeddingFunction

        ef, ef_text = DefaultEmbeddingFunction(), "all-MiniLM-L6-v2 (the default model)"
    else:
        ef, ef_text = HashingEmbeddingFunction(256), "gleandb_hashing dim 256 (no model)"
    shas = git(repo, "rev-list", "--first-parent", f"--max-count={a.commits}", "HEAD").split()[::-1]
    lines = [f"{a.name}, last {len(shas)} first-parent commits ({shas[0][:12]}..{shas[-1][:12]}), "
             f"{len(git(repo, 'ls-tree', '-r', '--name-only', 'HEAD').split())} files at HEAD; "
             f"embedding: {ef_text}"]

    chain_dir = os.path.join(work, "chain")
    ix = CodeIndex(gleandb.PersistentClient(chain_dir), repo, ef)
    t0 = time.perf_counter()
    reps = [ix.index_commit(s) for s in shas]
    chain_s = time.perf_counter() - t0
    chain_rows = sum(r.chunks_added for r in reps)
    chain_db = sum(r.db_seconds for r in reps)
    chain_emb, chain_reu = ix.cache.embedded, ix.cache.reused
    per_commit = sorted(r.seconds for r in reps[1:])
    del ix

    scratch_dir = os.path.join(work, "scratch")
    sclient = gleandb.PersistentClient(scratch_dir)
    t0 = time.perf_counter()
    srows, scratch_db = 0, 0.0
    for i, s in enumerate(shas):
        r = CodeIndex(sclient, repo, ef, name=f"s{i}").index_commit(s)
        srows += r.chunks_added
        scratch_db += r.db_seconds
    scratch_s = time.perf_counter() - t0
    del sclient
    chain_b, scratch_b = du(chain_dir), du(scratch_dir)
    lines += [
        "",
        "| | chain (fork per commit) | from scratch per commit | ratio |",
        "| --- | --- | --- | --- |",
        f"| wall time, {len(shas)} commits | {chain_s:.1f} s | {scratch_s:.1f} s | {chain_s / scratch_s:.2f}x |",
        f"| database time (fork, delete, add, flush, cache get/add) | {chain_db:.1f} s | {scratch_db:.1f} s | "
        f"{chain_db / scratch_db:.2f}x |",
        f"| disk | {chain_b / 2**20:.1f} MiB | {scratch_b / 2**20:.1f} MiB | {chain_b / scratch_b:.2f}x |",
        f"| chunk rows written | {chain_rows} | {srows} | {chain_rows / srows:.2f}x |",
        f"| chain: embedded / reused | {chain_emb} / {chain_reu} | | |",
        f"| chain: per-commit time p50 / p90 / max | {per_commit[len(per_commit) // 2]:.3f} / "
        f"{per_commit[int(len(per_commit) * 0.9)]:.3f} / {per_commit[-1]:.3f} s | | |",
    ]

    # search at a commit: the chain's collection vs the one built from scratch
    ix = CodeIndex(gleandb.PersistentClient(chain_dir), repo, ef)
    sx = CodeIndex(gleandb.PersistentClient(scratch_dir), repo, ef, name=f"s{len(shas) - 1}", create=False)
    queries = ["how are environment variables read for options", "shell completion for bash", "prompt for a password",
               "progress bar", "parse command line arguments", "testing a command with CliRunner",
               "file path type that checks existence", "echo with colors", "group with subcommands", "version option"]
    same = 0
    for q in queries:
        hc, hs = ix.search(q, shas[-1], 10), sx.search(q, shas[-1], 10)
        sc, ss = [round(h["score"], 6) for h in hc], [round(h["score"], 6) for h in hs]
        untied_c = [(h["id"], s) for h, s in zip(hc, sc) if sc.count(s) == 1]
        untied_s = [(h["id"], s) for h, s in zip(hs, ss) if ss.count(s) == 1]
        same += sc == ss and untied_c == untied_s
    # BM25 alone is exact on both sides; dense search over one large from-scratch segment is
    # approximate (HNSW), while the chain's small per-commit segments are searched exactly
    cc, scc = ix.collection(shas[-1]), sx.collection(shas[-1])
    same_bm25 = sum(cc.retrieve(query_texts=[q], n_results=10, mode="bm25", include=[])["ids"]
                    == scc.retrieve(query_texts=[q], n_results=10, mode="bm25", include=[])["ids"] for q in queries)
    lines += ["", f"search at {shas[-1][:12]}, chain vs from scratch: {same}/{len(queries)} queries with the same top-10 "
              "(same scores, same ids wherever a score is not tied); BM25 alone: "
              f"{same_bm25}/{len(queries)} identical (dense can differ: the from-scratch collection searches one "
              "approximate HNSW graph, the chain's small segments are searched exactly)"]
    del sx

    # one new commit changing 3 files
    files = [f for f in git(repo, "ls-tree", "-r", "--name-only", "HEAD").split() if f.endswith(".py")][:3]
    for f in files:
        with open(os.path.join(repo, f), "a") as fh:
            fh.write("\n\ndef _bench_added(x):\n    return x + 1\n")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qam", "bench: 3 files")
    t0 = time.perf_counter()
    rep = ix.index_rev("HEAD")
    new_s = time.perf_counter() - t0
    lines += ["", f"new commit changing 3 files ({', '.join(files)}): {new_s:.3f} s ({rep.db_seconds:.3f} s in the "
              f"database), {rep.chunks_added} chunks "
              f"added, {rep.embedded} embedded, {rep.reused} reused (forked {rep.base[:12]})"]

    lines += [thousand_files(work, HashingEmbeddingFunction(256)) + " (hashing embeddings)"]

    # grep == git grep
    random.seed(0)
    sample = sorted(random.sample(shas, 5), key=shas.index)
    equal, total, matches = 0, 0, 0
    g0 = time.perf_counter()
    gtime = 0.0
    for s in sample:
        for p in PATTERNS:
            t = time.perf_counter()
            got = [f"{f}:{n}:{x}" for f, n, x in ix.grep(p, s)]
            gtime += time.perf_counter() - t
            exp = git_grep(repo, s, p)
            total += 1
            matches += len(exp)
            if got == exp:
                equal += 1
            else:
                print(f"DIFF at {s[:12]} {p!r}: {len(got)} vs {len(exp)}")
    lines += [f"grep == git grep -n -I -E: {equal}/{total} (pattern, commit) pairs equal, {len(PATTERNS)} patterns "
              f"x {len(sample)} commits, {matches} matching lines; glean grep {gtime / total * 1000:.1f} ms/pattern"]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(a.out, "w") as fh:
        fh.write(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
