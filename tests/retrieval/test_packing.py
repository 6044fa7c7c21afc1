"""Token counting, budget arithmetic, dedupe, orderings, truncation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gleandb.retrieval import packing
from gleandb.retrieval.packing import approx_tokens, dedupe, order_indices, pack, source_key, token_counter


def test_approximation():
    assert approx_tokens("") == 0 and approx_tokens("abcd") == 1 and approx_tokens("abcde") == 2


def test_counter_for_openai_models_is_exact_bpe():
    count, name = token_counter(None, "gpt-4o-mini")
    assert name == "o200k_base (bpe-openai)"
    # o200k_base: "Smoke tests keep releases honest." is 6 tokens
    assert count("Smoke tests keep releases honest.") == 6
    count, name = token_counter("cl100k_base")
    assert name.startswith("cl100k_base")
    count, name = token_counter(None, "claude-haiku-4-5")
    assert name == "approx ceil(chars/4)"
    count, name = token_counter(lambda s: s.split(), "gpt-4o")
    assert count("a b c") == 3 and name.startswith("callable")
    with pytest.raises(ValueError, match="tokenizer"):
        token_counter(42)


def test_skip_then_smaller_fits():
    words = lambda s: len(s.split())  # noqa: E731
    docs = ["a " * 10, "b " * 100, "c " * 5]
    p = pack(docs, 20, words)
    assert [docs[i] for i in p.selected] == [docs[0], docs[2]]
    assert p.skipped_budget == 1
    assert words(p.text) <= 20
    assert p.text.startswith("[1] a") and "[2] c" in p.text


def test_truncate_fills_the_rest():
    words = lambda s: len(s.split())  # noqa: E731
    docs = ["a " * 10, " ".join(f"w{i}" for i in range(100))]
    p = pack(docs, 60, words, truncate=True, min_truncated_tokens=5)
    assert p.truncated == [False, True]
    assert p.documents[1].endswith(" …") and p.documents[1].startswith("w0 w1")
    assert words(p.text) <= 60
    assert words(p.text) >= 50  # the room was used


@settings(max_examples=150, deadline=None)
@given(docs=st.lists(st.text(min_size=0, max_size=300), min_size=0, max_size=30),
       budget=st.integers(min_value=1, max_value=400), order=st.sampled_from(packing.ORDERS),
       truncate=st.booleans())
def test_budget_is_never_exceeded(docs, budget, order, truncate):
    count, _ = token_counter("gpt-4o")
    keys = [source_key(f"id{i}", {"source": "s", "start": -i}) for i in range(len(docs))]
    p = pack(docs, budget, count, order=order, keys=keys, truncate=truncate)
    assert count(p.text) <= budget
    assert p.total_tokens == (count(p.text) if p.selected else 0)
    assert len(set(p.selected)) == len(p.selected)
    for k in range(len(p.selected)):
        assert f"[{k + 1}] " in p.text


def test_orders():
    assert order_indices(5, "relevance") == [0, 1, 2, 3, 4]
    assert order_indices(5, "ends") == [0, 2, 4, 3, 1]   # best first, second best last
    assert order_indices(6, "ends") == [0, 2, 4, 5, 3, 1]
    keys = [source_key("x9", {"source": "b.md", "start": 10}), source_key("x1", {"source": "a.md", "start": 500}),
            source_key("x3", {"source": "a.md", "start": 20}), source_key("doc10", None), source_key("doc9", None)]
    assert order_indices(5, "source", keys) == [2, 1, 0, 4, 3]  # by source, position; then natural id order
    with pytest.raises(ValueError, match="order must be one of"):
        order_indices(3, "random")


def test_dedupe_keeps_the_first_copy():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(6, 16)).astype(np.float32)
    e[3] = e[1] * 2.0 + 1e-4          # same direction as 1: cosine ~1
    e[5] = e[0] + 0.001 * rng.normal(size=16)
    assert dedupe(e, 0.95) == [0, 1, 2, 4]
    assert dedupe(e, 0.999999) == [0, 1, 2, 4]  # exact copies only
    assert dedupe(e[[0, 1, 2, 4]], 0.95) == [0, 1, 2, 3]  # unrelated vectors all stay
    assert dedupe(np.zeros((0, 4)), 0.9) == []
