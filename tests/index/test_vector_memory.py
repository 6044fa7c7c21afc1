"""The memory-bounding steps of building and extending a vector index (issue 16) give
the same vectors as the plain computations: blockwise normalisation, storage sized
before chunked adds, and new rows handed to ``extended`` in chunks."""

import numpy as np
import pytest

from gleandb.index import vector
from gleandb.index.vector import VectorIndex, _normalize


def _vecs(n, d=12, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    x[::9] = 0.0  # zero rows stay zero
    return x


def test_blockwise_normalisation_equals_float64_division(monkeypatch):
    monkeypatch.setattr(vector, "_NORM_BLOCK", 5)
    x = _vecs(23) * np.float32(1e19)
    want = x.astype(np.float64)
    norms = np.sqrt((want * want).sum(axis=1))
    norms[norms == 0] = 1.0
    want = (want / norms[:, None]).astype(np.float32)
    got = _normalize(x)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    assert not np.isfinite(x).all() or np.isfinite(got).all()


@pytest.mark.parametrize("space", ["cosine", "l2"])
def test_build_in_many_chunks_stores_every_vector(monkeypatch, space):
    monkeypatch.setattr(vector, "_ADD_CHUNK", 40)  # storage sized once, filled by 8 adds
    x = _vecs(300)
    idx = VectorIndex.build(x, space)
    assert idx.n == 300
    want = _normalize(x) if space == "cosine" else x
    np.testing.assert_array_equal(idx.stored_vectors(), want)
    _, rows = idx.search(x[1:4], 1, ef_search=64)
    assert rows[:, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize("space", ["cosine", "l2"])
def test_extended_from_chunks_equals_extended_from_array(space):
    x = _vecs(500, seed=1)
    base = VectorIndex.build(x[:200], space)
    whole = base.extended(x[200:])
    chunked = base.extended((x[lo : lo + 37] for lo in range(200, 500, 37)), rows=300)
    assert base.n == 200  # the base index is not changed
    np.testing.assert_array_equal(chunked.stored_vectors(), whole.stored_vectors())
    q = [r for r in range(250, 262) if r % 9]  # not the zero rows (in cosine, every row ties)
    _, a = whole.search(x[q], 5, ef_search=200)
    _, b = chunked.search(x[q], 5, ef_search=200)
    assert a[:, 0].tolist() == b[:, 0].tolist() == q


def test_extended_from_chunks_checks_the_row_count():
    x = _vecs(100, seed=2)
    base = VectorIndex.build(x[:50], "l2")
    with pytest.raises(ValueError, match="rows"):
        base.extended(iter([x[50:]]))
    with pytest.raises(ValueError, match="expected 60 new rows, got 50"):
        base.extended(iter([x[50:]]), rows=60)
    with pytest.raises(ValueError, match="dimension"):
        base.extended(iter([x[50:, :5]]), rows=50)
