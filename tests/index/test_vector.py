"""Tests for gleandb.index.vector: exact search and the HNSW VectorIndex."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gleandb.index import vector as vmod
from gleandb.index.vector import SPACES, VectorIndex, exact_search

N = 3000
DIM = 48
K = 10


def clustered(n, dim, seed, centres=40, rank=12):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
    cen = rng.standard_normal((centres, rank))
    lab = rng.integers(0, centres, n)
    x = (cen[lab] + 0.5 * rng.standard_normal((n, rank))) @ basis.T + 0.1 * rng.standard_normal((n, dim))
    x = x * rng.uniform(0.5, 2.0, (n, 1))  # not unit length: l2/ip/cosine differ
    return x.astype(np.float32)


def naive_distances(x, q, space):
    x = x.astype(np.float64)
    q = q.astype(np.float64)
    if space == "l2":
        return ((x - q) ** 2).sum(1)
    if space == "ip":
        return 1.0 - x @ q
    nx = np.linalg.norm(x, axis=1)
    nq = np.linalg.norm(q)
    xn = x / np.where(nx == 0, 1.0, nx)[:, None]
    qn = q / (nq if nq else 1.0)
    return 1.0 - xn @ qn


def recall(found, truth):
    tot = 0.0
    for f, t in zip(found, truth):
        t = t[t >= 0]
        tot += 1.0 if len(t) == 0 else len(np.intersect1d(f[f >= 0], t)) / len(t)
    return tot / len(found)


@pytest.fixture(scope="module")
def data():
    return clustered(N, DIM, 0), clustered(60, DIM, 1)


@pytest.fixture(scope="module")
def indexes(data):
    x, _ = data
    return {s: VectorIndex.build(x, s) for s in SPACES}


@pytest.fixture
def force_ann(monkeypatch):
    """Make search use HNSW (with the bitmap selector) whatever the selectivity."""
    monkeypatch.setattr(vmod, "EXACT_MAX_ROWS", 0)
    monkeypatch.setattr(vmod, "EXACT_MAX_FRACTION", 0.0)


def masks(n, seed=7):
    rng = np.random.default_rng(seed)
    single = np.zeros(n, bool)
    single[n // 3] = True
    return {
        "70%": rng.random(n) < 0.7,
        "10%": rng.random(n) < 0.1,
        "1%": rng.random(n) < 0.01,
        "0%": np.zeros(n, bool),
        "single": single,
    }


# ---------------------------------------------------------------------------- distances
@pytest.mark.parametrize("space", SPACES)
def test_distances_match_numpy(data, indexes, space):
    x, q = data
    idx = indexes[space]
    for path in ("ann", "exact"):
        if path == "exact":
            allowed = np.ones(N, bool)
            allowed[0] = False  # 99.9% allowed but force exact via thresholds below
            old = vmod.EXACT_MAX_ROWS
            vmod.EXACT_MAX_ROWS = N
            try:
                d, r = idx.search(q, K, allowed=allowed)
            finally:
                vmod.EXACT_MAX_ROWS = old
        else:
            d, r = idx.search(q, K)
        assert d.dtype == np.float32 and r.dtype == np.int64 and d.shape == r.shape == (len(q), K)
        for i in range(len(q)):
            ref = naive_distances(x[r[i]], q[i], space)
            np.testing.assert_allclose(d[i], ref, rtol=1e-5, atol=1e-5)
            assert np.all(np.diff(d[i]) >= 0)
    de, re_ = exact_search(x, q, K, space)
    for i in range(len(q)):
        full = naive_distances(x, q[i], space)
        np.testing.assert_allclose(de[i], np.sort(full)[:K], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(de[i], full[re_[i]], rtol=1e-5, atol=1e-5)


def test_cosine_and_ip_semantics():
    x = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]], np.float32)
    q = np.array([[2.0, 0.0]], np.float32)
    d, r = exact_search(x, q, 3, "cosine")
    assert r.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(d[0], [0.0, 0.4, 1.0], atol=1e-6)
    d, r = exact_search(x, q, 3, "ip")
    assert r.tolist() == [[0, 1, 2]]
    np.testing.assert_allclose(d[0], [1 - 6.0, 1 - 2.0, 1.0], atol=1e-6)
    d, r = exact_search(x, q, 3, "l2")
    assert r.tolist() == [[1, 2, 0]]
    np.testing.assert_allclose(d[0], [1.0, 4.0, 17.0], atol=1e-6)  # squared


# ---------------------------------------------------------------------------- recall
@pytest.mark.parametrize("space", SPACES)
def test_recall_unfiltered(data, indexes, space):
    x, q = data
    _, truth = exact_search(x, q, K, space)
    _, found = indexes[space].search(q, K)
    assert recall(found, truth) >= 0.99


@pytest.mark.parametrize("ann", [False, True], ids=["auto", "forced-ann"])
@pytest.mark.parametrize("space", ["cosine", "l2"])
def test_recall_filtered_and_rows_allowed(data, indexes, space, ann, monkeypatch):
    if ann:
        monkeypatch.setattr(vmod, "EXACT_MAX_ROWS", 0)
        monkeypatch.setattr(vmod, "EXACT_MAX_FRACTION", 0.0)
    x, q = data
    idx = indexes[space]
    for name, mask in masks(N).items():
        rows = np.flatnonzero(mask)
        _, truth = exact_search(x, q, K, space, rows)
        d, found = idx.search(q, K, allowed=mask)
        assert found.shape == (len(q), K)
        valid = found >= 0
        assert mask[found[valid]].all(), name
        assert np.isinf(d[~valid]).all() and np.isfinite(d[valid]).all()
        # exactly min(k, allowed) results per query
        assert (valid.sum(1) == min(K, len(rows))).all(), name
        assert recall(found, truth) >= 0.99, name


def test_k_larger_than_n_and_allowed(indexes, data):
    x, q = data
    idx = indexes["l2"]
    small = VectorIndex.build(x[:7], "l2")
    d, r = small.search(q[:3], 20)
    assert r.shape == (3, 20)
    assert (np.sort(r[:, :7], 1) == np.arange(7)).all() and (r[:, 7:] == -1).all()
    assert np.isinf(d[:, 7:]).all()
    mask = np.zeros(N, bool)
    mask[[5, 17, 2999]] = True
    d, r = idx.search(q[:4], 50, allowed=mask)
    assert (np.sort(r[:, :3], 1) == [5, 17, 2999]).all() and (r[:, 3:] == -1).all()
    de, re_ = exact_search(x, q[:4], 50, "l2", np.array([5, 17, 2999]))
    assert re_.shape == (4, 3)
    assert (re_ == r[:, :3]).all()
    np.testing.assert_array_equal(de, d[:, :3])
    de, re_ = exact_search(x[:7], q[:2], 100, "ip")
    assert re_.shape == (2, 7)


def test_empty_index():
    idx = VectorIndex.build(np.zeros((0, 4), np.float32), "cosine")
    assert idx.n == 0 and idx.dim == 4 and idx.stored_vectors().shape == (0, 4)
    d, r = idx.search(np.ones((2, 4), np.float32), 3)
    assert (r == -1).all() and np.isinf(d).all()
    idx2 = VectorIndex.from_bytes(idx.to_bytes())
    assert idx2.n == 0 and idx2.space == "cosine"
    d, r = exact_search(np.zeros((0, 4), np.float32), np.ones((1, 4), np.float32), 3, "l2")
    assert d.shape == r.shape == (1, 0)


# ---------------------------------------------------------------------------- storage
@pytest.mark.parametrize("space", SPACES)
def test_round_trip(data, indexes, space):
    x, q = data
    idx = indexes[space]
    blob = idx.to_bytes()
    assert isinstance(blob, bytes)
    idx2 = VectorIndex.from_bytes(memoryview(blob))
    assert (idx2.n, idx2.dim, idx2.space) == (idx.n, idx.dim, idx.space)
    np.testing.assert_array_equal(idx2.stored_vectors(), idx.stored_vectors())
    for allowed in (None, masks(N)["70%"], masks(N)["1%"]):
        a = idx.search(q, K, allowed=allowed)
        b = idx2.search(q, K, allowed=allowed)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_from_bytes_rejects_garbage(indexes):
    blob = indexes["l2"].to_bytes()
    for bad in (b"", b"xx", b"NOPE" + blob[4:], blob[:100]):
        with pytest.raises(ValueError):
            VectorIndex.from_bytes(bad)


@pytest.mark.parametrize("space", SPACES)
def test_stored_vectors(data, indexes, space):
    x, _ = data
    sv = indexes[space].stored_vectors()
    assert sv.shape == x.shape and sv.dtype == np.float32 and not sv.flags.writeable
    if space == "cosine":
        expect = x / np.linalg.norm(x, axis=1, keepdims=True)
        np.testing.assert_allclose(sv, expect, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(sv, x)


def test_stored_vectors_outlive_index(data):
    x, _ = data
    sv = VectorIndex.build(x[:100], "l2").stored_vectors()  # index object dropped
    import gc

    gc.collect()
    np.testing.assert_array_equal(sv, x[:100])


# ---------------------------------------------------------------------------- zero vectors
@pytest.mark.parametrize("space", SPACES)
def test_zero_vectors(space):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 8)).astype(np.float32)
    x[[4, 9]] = 0.0
    idx = VectorIndex.build(x, space)
    q = np.vstack([np.zeros(8, np.float32), rng.standard_normal(8).astype(np.float32)])
    for d, r in (idx.search(q, 50), exact_search(x, q, 50, space)):
        assert np.isfinite(d).all()
        assert sorted(r[0].tolist()) == list(range(50))
        if space == "cosine":
            np.testing.assert_allclose(d[0], 1.0, atol=1e-6)  # zero query: distance 1
            zero_rows = {4: None, 9: None}
            for j in zero_rows:
                np.testing.assert_allclose(d[1][r[1] == j], 1.0, atol=1e-6)
    sv = idx.stored_vectors()
    assert np.all(sv[[4, 9]] == 0)


# ---------------------------------------------------------------------------- ties, input
def test_ties_broken_by_lower_row():
    x = np.tile(np.array([[1.0, 2.0, 3.0]], np.float32), (30, 1))
    x[10] = [-9, -9, -9]  # far in every space
    for space in SPACES:
        d, r = exact_search(x, x[:1], 5, space)
        assert r[0].tolist() == [0, 1, 2, 3, 4]
        d, r = exact_search(x, x[:1], 5, space, np.array([29, 3, 17, 11, 25, 8]))
        assert r[0].tolist() == [3, 8, 11, 17, 25]
        idx = VectorIndex.build(x, space)
        d, r = idx.search(x[:1], 5)
        assert r[0].tolist() == [0, 1, 2, 3, 4]


def test_bad_input(indexes):
    idx = indexes["l2"]
    with pytest.raises(ValueError):
        idx.search(np.ones((1, DIM + 1), np.float32), 3)
    with pytest.raises(ValueError):
        idx.search(np.ones((1, DIM), np.float32), 0)
    with pytest.raises(ValueError):
        idx.search(np.ones((1, DIM), np.float32), 3, allowed=np.ones(5, bool))
    with pytest.raises(ValueError):
        idx.search(np.full((1, DIM), np.nan, np.float32), 3)
    with pytest.raises(ValueError):
        VectorIndex.build(np.ones((3, 2), np.float32), "hamming")
    with pytest.raises(ValueError):
        exact_search(np.ones((3, 2)), np.ones((1, 2)), 2, "l2", np.array([0, 3]))
    # a 1-d query is one query
    d, r = idx.search(np.ones(DIM, np.float32), 3)
    assert r.shape == (1, 3)


# ---------------------------------------------------------------------------- threads
def test_concurrent_search(data, indexes):
    x, q = data
    idx = indexes["cosine"]
    mask = masks(N)["70%"]
    expect = [idx.search(q, K), idx.search(q, K, allowed=mask)]
    errors = []

    def work():
        try:
            for _ in range(5):
                a = idx.search(q, K)
                b = idx.search(q, K, allowed=mask)
                assert (a[1] == expect[0][1]).all() and (b[1] == expect[1][1]).all()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


# ---------------------------------------------------------------------------- property
@st.composite
def problems(draw):
    n = draw(st.integers(0, 40))
    d = draw(st.integers(1, 6))
    elems = st.one_of(
        st.integers(-3, 3).map(float),
        # magnitudes below 1e-6 become 0: a vector like (2.8e-31, 0) has a float32 norm of 0
        # (its square underflows), while a float64 reference normalises it to (1, 0)
        st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=32).map(
            lambda v: 0.0 if abs(v) < 1e-6 else v
        ),
    )
    x = draw(hnp.arrays(np.float32, (n, d), elements=elems))
    q = draw(hnp.arrays(np.float32, (draw(st.integers(1, 3)), d), elements=elems))
    k = draw(st.integers(1, 45))
    space = draw(st.sampled_from(SPACES))
    rows = None
    if n and draw(st.booleans()):
        rows = np.array(sorted(draw(st.sets(st.integers(0, n - 1)))), dtype=np.int64)
        rows = rows[np.random.default_rng(len(rows)).permutation(len(rows))]  # order free
    return x, q, k, space, rows


@settings(max_examples=120, deadline=None)
@given(problems())
def test_exact_search_property(problem):
    x, q, k, space, rows = problem
    d, r = exact_search(x, q, k, space, rows)
    cand = np.arange(len(x)) if rows is None else np.sort(rows)
    kk = min(k, len(cand))
    assert d.shape == r.shape == (len(q), kk)
    for i in range(len(q)):
        full = naive_distances(x[cand], q[i], space)
        scale = 1e-5 * (1.0 + np.abs(full).max(initial=0.0))
        assert set(r[i].tolist()) <= set(cand.tolist())
        assert len(set(r[i].tolist())) == kk
        assert np.all(np.diff(d[i]) >= 0)
        ref_sorted = np.sort(full)[:kk]
        np.testing.assert_allclose(d[i], ref_sorted, rtol=1e-5, atol=scale)
        pos = np.searchsorted(cand, r[i])
        np.testing.assert_allclose(d[i], full[pos], rtol=1e-5, atol=scale)
        # naive order: (distance, row); rows must agree except within float tolerance
        order = np.lexsort((cand, full))[:kk]
        for j in range(kk):
            if r[i, j] != cand[order[j]]:
                assert abs(full[pos[j]] - full[order[j]]) <= scale + 1e-5 * abs(full[order[j]])
        # exact ties (identical values) are ordered by row number
        same = d[i][1:] == d[i][:-1]
        assert np.all(r[i][1:][same] > r[i][:-1][same])
