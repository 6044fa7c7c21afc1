"""Benchmark of ``gleandb.Memory``: facts that change over time, per user.

Each user talks for a simulated year. They have 10 attributes (city, employer, diet, ...);
each attribute is stated, then changed a few times (the last value is the current fact),
and small talk fills the rest of the user's ``--per-user`` memories. Every memory goes
through ``Memory.remember`` in time order (a clock the benchmark moves), one scope per user
on one shared collection. Then each (user, attribute) is asked a question ("Where do I
live?") with ``recall(k=5)``.

Figures, per configuration:

- recall@1 / recall@5: the current value of the asked attribute is in the top 1 / top 5;
- stale@1: the top hit is an *old* value of the asked attribute;
  stale-in-5: at least one old value of it is in the top 5;
- live memories per user after ingestion (dedupe and supersession shrink it);
- remember and recall latency p50 / p95 (ms, wall clock, one thread);
- growth: remember p50 over each tenth of the ingestion (``--growth`` prints all ten), so
  a per-call cost that grows with the collection shows as a rising row; "first 10%" and
  "last 10%" are in the table.

Configurations: ``append`` (dedupe=False: everything kept, default weights),
``append-recency`` (dedupe=False, recency weight 1.0 instead of 0.3),
``heuristic`` (dedupe=True, the text-only heuristic of gleandb.memory.supersede),
``subject`` (dedupe=True and each fact carries ``metadata={"subject": attribute}``).

Statements of one attribute use two phrasings ("I live in X." / "I moved to X."), so the
text-only heuristic cannot catch every change: the figures show what it misses.

    PYTHONPATH=src .venv/bin/python bench/bench_memory.py --users 1000 --per-user 100 --ef hashing
    PYTHONPATH=src .venv/bin/python bench/bench_memory.py --users 100 --per-user 100 --ef default
    PYTHONPATH=src .venv/bin/python bench/bench_memory.py --users 10000 --configs subject --growth \
        --progress --no-wal-sync --ingest-seconds 4000 --eval-users 1000

10k users x 100 (1M memories) is meant for ``--ef hashing`` (the model would embed 1M texts).
Long runs: ``--progress`` prints throughput and p50 / p95 every 50k remembers (flushed, so a
run stopped early is still evidence); ``--ingest-seconds`` stops remembering after that long
and asks the questions at the simulated time reached (attributes not yet stated are not
asked); ``--eval-users`` asks only an evenly spread sample of users; ``--no-wal-sync`` turns
off the fsync per write (``Settings(wal_sync=False)``), so the figures are the engine's and
not the disk's. The table's notes say which of these a run used.

``--ef hashing`` is gleandb's dependency-free hashing embedding (fast, lexical);
``--ef default`` is the real default model (all-MiniLM-L6-v2). Documents are embedded
through a cache (each distinct text once: the synthetic texts repeat a lot); queries go
through ``embed_query``, which is not cached, so recall latency and (with dedupe) remember
latency include one model call for the question or the new text.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import gleandb  # noqa: E402
from gleandb.embeddings.hashing import HashingEmbeddingFunction  # noqa: E402

ATTRS = {
    "city": (["I live in {v}.", "I moved to {v}."], "Where do I live?",
             ["Paris", "Berlin", "Lisbon", "Osaka", "Denver", "Nairobi", "Oslo", "Lima", "Hanoi", "Porto"]),
    "employer": (["I work at {v}.", "I just started a new job at {v}."], "Which company do I work for?",
                 ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises",
                  "Soylent", "Vandelay", "Tyrell"]),
    "diet": (["I eat a {v} diet.", "These days my diet is {v}."], "What diet do I follow?",
             ["vegetarian", "vegan", "keto", "pescatarian", "paleo", "gluten-free", "halal", "kosher",
              "low-carb", "omnivore"]),
    "pet": (["I have a pet {v}.", "We adopted a {v} as our pet."], "What pet do I have?",
            ["cat", "dog", "parrot", "rabbit", "hamster", "turtle", "ferret", "goldfish", "iguana", "hedgehog"]),
    "car": (["I drive a {v}.", "My car is now a {v}."], "What car do I drive?",
            ["Toyota Corolla", "Tesla Model 3", "Volvo XC40", "Honda Civic", "Ford Focus", "Fiat 500",
             "Kia Niro", "BMW i3", "Mazda 3", "Skoda Octavia"]),
    "sport": (["My favourite sport is {v}.", "Lately I mostly play {v}."], "Which sport do I play?",
              ["tennis", "football", "climbing", "swimming", "cycling", "rowing", "squash", "judo",
               "badminton", "volleyball"]),
    "language": (["I am learning {v}.", "I switched to studying {v}."], "Which language am I learning?",
                 ["Spanish", "Japanese", "German", "Italian", "Korean", "Arabic", "Dutch", "Swahili",
                  "Portuguese", "Turkish"]),
    "phone": (["My phone is a {v}.", "I upgraded my phone to a {v}."], "What phone do I use?",
              ["Pixel 8", "iPhone 15", "Galaxy S23", "Fairphone 5", "Nokia G42", "OnePlus 12", "Xperia 10",
               "Moto G84", "Pixel 7a", "iPhone 13"]),
    "drink": (["My usual morning drink is {v}.", "I now start the day with {v}."], "What do I drink in the morning?",
              ["espresso", "green tea", "matcha", "orange juice", "black coffee", "chai", "kombucha",
               "hot chocolate", "oat latte", "mint tea"]),
    "instrument": (["I play the {v}.", "I took up the {v} recently."], "Which instrument do I play?",
                   ["guitar", "piano", "violin", "cello", "drums", "flute", "saxophone", "trumpet", "ukulele",
                    "harp"]),
}
CHATTER = ["The weather was {w} today.", "I watched a documentary about {w}.", "Remind me to buy {w}.",
           "I had lunch with a friend who talked about {w}.", "The meeting about {w} ran late.",
           "I read an article on {w}.", "My neighbour mentioned {w} again."]
WORDS = ["volcanoes", "bread", "batteries", "jazz", "tax forms", "gardening", "chess", "rain", "sunny", "windy",
         "penguins", "the budget", "astronomy", "printer ink", "the marathon", "origami", "bees", "trains"]
YEAR = 365 * 86400.0


def conversation(rng: random.Random, per_user: int, changes: int) -> list[tuple[float, str, str | None, int]]:
    """[(time, text, attribute or None, version)] sorted by time; version -1 for chatter."""
    facts = []
    for attr, (templates, _, values) in ATTRS.items():
        vals = rng.sample(values, changes)
        times = sorted(rng.uniform(0, YEAR) for _ in vals)
        for ver, (t, v) in enumerate(zip(times, vals)):
            facts.append((t, rng.choice(templates).format(v=v), attr, ver))
    n_chat = max(0, per_user - len(facts))
    chat = [(rng.uniform(0, YEAR), rng.choice(CHATTER).format(w=rng.choice(WORDS)), None, -1) for _ in range(n_chat)]
    return sorted(facts + chat)


class CachedEF:
    """Embeds each distinct document once (the default model is the slow part on 2 cores);
    ``embed_query`` falls through to the model."""

    def __init__(self, ef):
        self.ef = ef
        self.cache: dict[str, list[float]] = {}

    def __call__(self, input):  # noqa: A002 - the EmbeddingFunction protocol
        missing = [t for t in input if t not in self.cache]
        if missing:
            for t, e in zip(missing, self.ef(missing)):
                self.cache[t] = e
        return [self.cache[t] for t in input]

    def __getattr__(self, name):
        return getattr(self.ef, name)


class Progress:
    """Prints throughput and latency every ``every`` operations, flushed, so that a run stopped
    early (or still going) is evidence of how far it got and what each window cost."""

    def __init__(self, every: int, what: str, times: list[float]) -> None:
        self.every, self.what, self.times = every, what, times
        self.t0 = self.t_last = time.perf_counter()

    def tick(self) -> None:
        n = len(self.times)
        if not self.every or n % self.every:
            return
        now = time.perf_counter()
        win = self.times[n - self.every:]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"#   progress {self.what} {n}: {self.every / (now - self.t_last):.0f}/s in this window, "
              f"p50 {1000 * float(np.percentile(win, 50)):.1f} ms, p95 {1000 * float(np.percentile(win, 95)):.1f} ms, "
              f"{now - self.t0:.0f} s so far, peak RSS {rss:.0f} MiB, load {os.getloadavg()[0]:.1f}", flush=True)
        self.t_last = now


def run(config: str, users: int, per_user: int, changes: int, ef, seed: int, progress: int = 0,
        wal_sync: bool = True, ingest_seconds: float = 0.0, eval_users: int = 0) -> dict:
    d = tempfile.mkdtemp(prefix="benchmem-")
    client = gleandb.PersistentClient(path=d, settings=gleandb.Settings(wal_sync=wal_sync))
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    rng = random.Random(seed)
    t_remember, t_recall = [], []
    convs, mems = {}, {}
    coll = client.create_collection("memories", embedding_function=ef, metadata={"hnsw:space": "cosine"})
    for u in range(users):
        convs[u] = conversation(rng, per_user, changes)
        weights = {"recency": 1.0} if config == "append-recency" else None
        mems[u] = gleandb.Memory(client, {"user": f"u{u}"}, collection=coll, dedupe=not config.startswith("append"),
                                 weights=weights, clock=clock)
    # interleave users by time, as a service would see them
    stream = sorted((t, u, text, attr, ver) for u, conv in convs.items() for t, text, attr, ver in conv)
    p_remember = Progress(progress, "remember", t_remember)
    done = [0] * users  # how much of each user's conversation was remembered (a prefix: time order)
    t_start = time.perf_counter()
    for t, u, text, attr, ver in stream:
        if ingest_seconds and time.perf_counter() - t_start > ingest_seconds:
            break  # stopped early: quality is then asked at the simulated time reached
        done[u] += 1
        now[0] = t
        meta = {"subject": attr} if (config == "subject" and attr) else None
        s = time.perf_counter()
        mems[u].remember(text, metadata=meta)
        t_remember.append(time.perf_counter() - s)
        p_remember.tick()
    stopped_at = now[0] if len(t_remember) < len(stream) else None
    now[0] = YEAR + 86400 if stopped_at is None else stopped_at + 1.0
    p_recall = Progress(progress // 5, "recall", t_recall)
    hit1 = hit5 = stale1 = stale5 = 0
    n_q = 0
    live = []
    asked = range(users) if not eval_users or eval_users >= users else range(0, users, users // eval_users)
    for u in asked:
        facts = [(attr, ver, text) for _, text, attr, ver in convs[u][:done[u]] if attr]
        current = {}
        for attr, ver, text in facts:
            current[attr] = max(current.get(attr, (-1, ""))[::-1], (text, ver), key=lambda x: x[1])[::-1]
        value_of = {}
        for attr, (_, _, values) in ATTRS.items():
            for v in values:
                value_of[v] = attr
        for attr, (_, question, values) in ATTRS.items():
            if attr not in current:
                continue  # not stated yet when ingestion stopped
            cur_text = current[attr][1]
            cur_value = next(v for v in values if v in cur_text)
            old_values = {v for a, ver, text in facts if a == attr for v in values if v in text and v != cur_value}
            s = time.perf_counter()
            hits = mems[u].recall(question, k=5)
            t_recall.append(time.perf_counter() - s)
            p_recall.tick()
            texts = [h.text for h in hits]
            has = lambda text, vals: any(v in text for v in vals)  # noqa: E731
            n_q += 1
            hit1 += bool(texts) and cur_value in texts[0]
            hit5 += any(cur_value in x for x in texts)
            stale1 += bool(texts) and has(texts[0], old_values) and cur_value not in texts[0]
            stale5 += any(has(x, old_values) and cur_value not in x for x in texts)
        live.append(len(mems[u].list()))
    client.close()
    shutil.rmtree(d, ignore_errors=True)
    ms = lambda xs, p: 1000 * float(np.percentile(xs, p))  # noqa: E731
    tenth = max(1, len(t_remember) // 10)
    growth = [ms(t_remember[i * tenth:(i + 1) * tenth], 50) for i in range(10)]
    return {"config": config, "queries": n_q, "growth": growth, "first 10%": growth[0], "last 10%": growth[-1],
            "peak RSS MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "recall@1": hit1 / n_q, "recall@5": hit5 / n_q,
            "stale@1": stale1 / n_q, "stale-in-5": stale5 / n_q, "live/user": float(np.mean(live)),
            "remember p50": ms(t_remember, 50), "remember p95": ms(t_remember, 95),
            "recall p50": ms(t_recall, 50), "recall p95": ms(t_recall, 95), "memories": len(t_remember),
            "of": len(stream), "stopped at day": None if stopped_at is None else stopped_at / 86400,
            "users asked": len(asked)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--per-user", type=int, default=100)
    ap.add_argument("--changes", type=int, default=4, help="values each attribute takes over the year")
    ap.add_argument("--ef", choices=["hashing", "default"], default="hashing")
    ap.add_argument("--configs", default="append,heuristic,subject")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=None, help="append the table to this file")
    ap.add_argument("--growth", action="store_true", help="print remember p50 for each tenth of the ingestion")
    ap.add_argument("--progress", type=int, nargs="?", const=50_000, default=0, metavar="N",
                    help="print throughput / p50 / p95 every N remembers (default 50000) and every N/5 recalls")
    ap.add_argument("--ingest-seconds", type=float, default=0.0,
                    help="stop remembering after this many seconds and ask at the simulated time reached")
    ap.add_argument("--eval-users", type=int, default=0,
                    help="ask the questions of only this many users (evenly spread)")
    ap.add_argument("--no-wal-sync", action="store_true",
                    help="Settings(wal_sync=False): no fsync per write (measures the engine, not the disk)")
    a = ap.parse_args()
    ef = HashingEmbeddingFunction() if a.ef == "hashing" else CachedEF(gleandb.DefaultEmbeddingFunction())
    head = (f"# bench_memory: {a.users} users x {a.per_user} memories ({10 * a.changes} facts, "
            f"{10} attributes x {a.changes} values, rest small talk), ef={a.ef}, recall k=5, "
            f"wal_sync={not a.no_wal_sync}\n"
            f"# {platform.machine()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}, "
            f"python {platform.python_version()}")
    cols = ["config", "memories", "live/user", "recall@1", "recall@5", "stale@1", "stale-in-5",
            "remember p50", "remember p95", "recall p50", "recall p95", "first 10%", "last 10%", "peak RSS MiB"]
    lines = [head, "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    print("\n".join(lines), flush=True)
    for config in a.configs.split(","):
        t0 = time.perf_counter()
        r = run(config, a.users, a.per_user, a.changes, ef, a.seed, a.progress, not a.no_wal_sync,
                a.ingest_seconds, a.eval_users)
        row = "| " + " | ".join(
            f"{r[c]:.3f}" if c.startswith(("recall@", "stale")) else f"{r[c]:.1f}" if isinstance(r[c], float)
            else str(r[c]) for c in cols) + f" |  ({time.perf_counter() - t0:.0f} s)"
        if r["stopped at day"] is not None or r["users asked"] < a.users:
            row += (f"\n#   {config}: remembered {r['memories']} of {r['of']} memories"
                    + ("" if r["stopped at day"] is None else
                       f" (--ingest-seconds {a.ingest_seconds:.0f}: stopped at simulated day {r['stopped at day']:.0f}"
                       " of 365; questions about attributes not yet stated are skipped)")
                    + f"; {r['queries']} questions of {r['users asked']} users")
        lines.append(row)
        print(row, flush=True)
        if a.growth:
            print(f"#   {config}: remember p50 ms per tenth of ingestion: "
                  + " ".join(f"{x:.1f}" for x in r["growth"]), flush=True)
    if a.out:
        with open(a.out, "a") as fh:
            fh.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
