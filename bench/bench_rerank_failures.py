"""The second stage under failure (issue 12), against the fake chat server of tests/fake_llm.py.

1. Partial failure: 40 contexts of 50 candidates, pointwise LLM re-ranker (batch 10), each
   answer malformed with probability 0.3 (the repair turn too): how many contexts raise,
   and how many candidates of the others got a grade.
2. A silent endpoint (answers after 100 s) with the default re-ranker settings (timeout
   60 s, 4 retries): how long ``context(deadline=D)`` takes to give up.

    .venv/bin/python bench/bench_rerank_failures.py [--seed 12] [--deadline 5]

To compare with another checkout, put its ``src`` first: ``PYTHONPATH=/other/src ...``
(that code may lack ``deadline``: the second figure is then skipped).
"""

from __future__ import annotations

import argparse
import inspect
import os
import random
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import gleandb  # noqa: E402
from fake_llm import FakeLLM, Reply, default_answer  # noqa: E402
from gleandb.retrieval.context import build_context, candidates_from_lists  # noqa: E402


def partial_failures(fake: FakeLLM, seed: int) -> None:
    rng = random.Random(seed)
    lock = fake.lock

    def rule(req):
        with lock:
            bad = rng.random() < 0.3
        return Reply(text="Sure, here are the grades!") if bad else Reply(text=default_answer(req))

    fake.rule = rule
    docs = [f"passage {i} about " + ("rotating API keys" if i % 4 == 0 else "tea") for i in range(50)]
    ids = [f"d{i}" for i in range(50)]
    raised = graded = 0
    for _ in range(40):
        rr = gleandb.rerank.LLM(model="m", base_url=fake.openai_url, api_key="k", batch_size=10)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ctx = build_context(None, "how do I rotate API keys", reranker=rr, dedupe=None,
                                    first_stage_results=candidates_from_lists(ids, docs))
            graded += getattr(ctx.usage, "graded", 50)
        except Exception:
            raised += 1
        finally:
            rr.client.close()  # not `with`: older checkouts lack it
    print(f"30 % malformed answers: {raised} of 40 contexts raised; the others graded {graded} of "
          f"{50 * (40 - raised)} candidates")


def silent_endpoint(fake: FakeLLM, deadline: float) -> None:
    if "deadline" not in inspect.signature(build_context).parameters:
        print("silent endpoint: this checkout has no deadline (it would take (4 + 1) x 60 s plus backoff)")
        return
    fake.rule = lambda req: Reply(text="{}", delay=100)
    with gleandb.rerank.LLM(model="m", base_url=fake.openai_url, api_key="k") as rr:
        t = time.monotonic()
        try:
            build_context(None, "q", first_stage_results=candidates_from_lists(["a", "b"], ["x", "y"]),
                          reranker=rr, deadline=deadline)
        except Exception as exc:
            print(f"silent endpoint, deadline={deadline:g} s: gave up after {time.monotonic() - t:.1f} s "
                  f"({exc.usage.failed_calls} failed call): {exc}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--deadline", type=float, default=5.0)
    args = ap.parse_args()
    print(f"gleandb from {os.path.dirname(gleandb.__file__)}")
    fake = FakeLLM().start()
    try:
        partial_failures(fake, args.seed)
        silent_endpoint(fake, args.deadline)
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
