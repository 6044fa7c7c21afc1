"""The tokenizer's separators without compiling Unicode regex classes per call (ASCII rows
through an ASCII class, other rows translated with RE2's per-character answers) split
every document exactly as the Unicode regex ``[^\\p{L}\\p{M}\\p{N}]+`` does."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings, strategies as st

from gleandb.index.tokenize import _SEPARATORS, _tokens

ALPHABET = st.sampled_from(list("abcXYZ019 _-.,;:'\"\t\n()/\\") + [
    "é", "e\u0301", "ß", "ẞ", "İ", "Σ", "ς", "北京", "٣", "Ⅻ", "²", "\u00a0", "\u2014", "\u2026", "\u3000",
    "，", "💡", "\u200b", "\u0301", "ﬁ", "Ǆ", "ǅ", "\u2163", "\U0001d7d8",
])
DOCS = st.lists(st.one_of(st.none(), st.lists(ALPHABET, max_size=30).map("".join)), max_size=12)


def _reference(docs, lowercase):
    arr = pa.array(docs, pa.string())
    if lowercase:
        arr = pc.utf8_lower(arr)
    lists = pc.split_pattern(pc.replace_substring_regex(arr, _SEPARATORS, " "), " ")
    flat, rows = pc.list_flatten(lists), pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    return [(r, t) for r, t in zip(rows.tolist(), flat.to_pylist()) if t]


@settings(max_examples=300, deadline=None)
@given(DOCS, st.booleans(), st.booleans())
def test_tokens_equal_the_unicode_regex(docs, lowercase, large):
    arr = pa.array(docs, pa.large_string() if large else pa.string())
    flat, rows = _tokens(arr, lowercase)
    assert list(zip(rows.tolist(), flat.to_pylist())) == _reference(docs, lowercase)


def test_ascii_and_other_rows_mixed_in_one_column():
    docs = ["plain_ascii text-1", "naïve café—ok", None, "北京，你好 x2", "", "tab\tsep"]
    flat, rows = _tokens(pa.chunked_array([pa.array(docs[:3]), pa.array(docs[3:])]), True)
    got = list(zip(rows.tolist(), flat.to_pylist()))
    assert got == _reference(docs, True)
    assert (1, "naïve") in got and (1, "ok") in got and (3, "北京") in got and np.all(np.diff(rows) >= 0)
