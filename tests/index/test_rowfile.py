"""RowFile reads a float32 matrix file row by row (pread) and answers indexing exactly as
the same matrix in memory would; bad rows and a file of the wrong size are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gleandb.index.rowfile import RowFile

N, DIM = 37, 5


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    x = np.random.default_rng(0).standard_normal((N, DIM)).astype("<f4")
    path = tmp_path_factory.mktemp("rows") / "vectors.f32"
    x.tofile(path)
    return x, RowFile(str(path), N, DIM)


keys = st.one_of(
    st.lists(st.integers(-N, N - 1), max_size=60).map(lambda v: np.array(v, dtype=np.int64)),
    st.builds(slice, st.none() | st.integers(-N - 3, N + 3), st.none() | st.integers(-N - 3, N + 3),
              st.none() | st.integers(1, 4) | st.integers(-4, -1)),
    st.lists(st.booleans(), min_size=N, max_size=N).map(np.array),
    st.integers(-N, N - 1),
)


@given(key=keys)
@settings(max_examples=300, deadline=None)
def test_indexing_reads_what_numpy_indexing_gives(matrix, key):
    x, rf = matrix
    got = rf[key]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x[key])


def test_shape_length_and_the_whole_array(matrix):
    x, rf = matrix
    assert rf.shape == (N, DIM) and len(rf) == N and rf.nbytes == x.nbytes
    np.testing.assert_array_equal(np.asarray(rf), x)
    np.testing.assert_array_equal(np.ascontiguousarray(rf, dtype="<f4"), x)


def test_rows_out_of_range_are_refused(matrix):
    _, rf = matrix
    for bad in (N, -N - 1):
        with pytest.raises(IndexError):
            rf[bad]
        with pytest.raises(IndexError):
            rf[np.array([0, bad])]


def test_a_file_of_the_wrong_size_is_refused(tmp_path):
    path = tmp_path / "v.f32"
    np.zeros((4, 3), "<f4").tofile(path)
    with pytest.raises(ValueError, match="48 bytes, expected 5 x 3"):
        RowFile(str(path), 5, 3)
