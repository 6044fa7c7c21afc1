"""Metrics against hand-computed values, and their properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gleandb.evals import metrics as m

REL = {"a": 3, "b": 1, "c": 0, "z": 2}  # z is never retrieved below


def test_hand_computed():
    ranked = ["x", "b", "a", "c", "y"]
    # relevant (grade >= 1): a, b, z
    assert m.recall_at_k(ranked, REL, 3) == pytest.approx(2 / 3)
    assert m.recall_at_k(ranked, REL, 1) == 0.0
    assert m.precision_at_k(ranked, REL, 5) == pytest.approx(2 / 5)
    assert m.precision_at_k(ranked, REL, 2) == pytest.approx(1 / 2)
    assert m.mrr_at_k(ranked, REL, 5) == pytest.approx(1 / 2)
    assert m.mrr_at_k(ranked, REL, 1) == 0.0
    # gain 2^g - 1: b -> 1 at rank 2, a -> 7 at rank 3; ideal a(7), z(3), b(1)
    dcg = 1 / math.log2(3) + 7 / math.log2(4)
    idcg = 7 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4)
    assert m.ndcg_at_k(ranked, REL, 5) == pytest.approx(dcg / idcg)
    # at k=2 the ideal is cut too: a(7), z(3)
    assert m.ndcg_at_k(ranked, REL, 2) == pytest.approx((1 / math.log2(3)) / (7 + 3 / math.log2(3)))
    assert m.score_query(ranked, REL, 5)["ndcg"] == m.ndcg_at_k(ranked, REL, 5)
    assert m.recall_curve(ranked, REL, [1, 2, 3]) == pytest.approx([0, 1 / 3, 2 / 3])


def test_perfect_and_empty_rankings():
    assert m.ndcg_at_k(["a", "z", "b"], REL, 10) == pytest.approx(1.0)
    assert m.ndcg_at_k(["a", "z"], REL, 2) == pytest.approx(1.0)
    assert m.recall_at_k(["a", "z", "b"], REL, 3) == 1.0
    assert m.mrr_at_k(["a"], REL, 10) == 1.0
    for f in (m.ndcg_at_k, m.recall_at_k, m.precision_at_k, m.mrr_at_k):
        assert f([], REL, 10) == 0.0
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        m.ndcg_at_k(["a"], REL, 0)


ids = st.sampled_from([f"d{i}" for i in range(12)])


@settings(max_examples=200, deadline=None)
@given(ranked=st.lists(ids, unique=True, max_size=12), rel=st.dictionaries(ids, st.integers(0, 3), min_size=1),
       k=st.integers(1, 15))
def test_metrics_in_unit_interval_and_ideal_is_one(ranked, rel, k):
    for v in m.score_query(ranked, rel, k).values():
        assert 0.0 <= v <= 1.0 + 1e-12
    ideal = sorted(rel, key=lambda r: -rel[r])
    if any(g >= 1 for g in rel.values()):
        assert m.ndcg_at_k(ideal, rel, k) == pytest.approx(1.0)
        assert m.mrr_at_k(ideal, rel, k) == 1.0


def test_bootstrap_interval():
    rng = np.random.default_rng(1)
    x = rng.random(300)
    mean, lo, hi = m.bootstrap_ci(x, seed=0)
    assert mean == pytest.approx(x.mean()) and lo < mean < hi
    # about 2 standard errors each side
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert m.bootstrap_ci(x, seed=0) == (mean, lo, hi)  # seeded
    assert m.bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="non-empty"):
        m.bootstrap_ci([])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_interval_contains_mean(values):
    mean, lo, hi = m.bootstrap_ci(values, n_boot=200)
    assert lo <= mean <= hi


def test_paired_test():
    rng = np.random.default_rng(2)
    a = rng.random(200)
    assert m.paired_test(a, a) == 1.0
    assert m.paired_test(a, a.copy()) == 1.0
    assert m.paired_test(a + 0.1, a) < 0.001        # every query better: real
    noise = a + rng.normal(0, 0.3, 200)
    b = noise - noise.mean() + a.mean()             # same mean, different queries: not real
    assert m.paired_test(a, b) > 0.5
    assert m.paired_test(a, b) == m.paired_test(b, a)  # two-sided
    with pytest.raises(ValueError, match="equal-length"):
        m.paired_test([1, 2], [1])
