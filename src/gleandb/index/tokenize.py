"""Text analysis for BM25: the per-collection configuration and the tokenizer.

Tokens are maximal runs of Unicode letters, combining marks and numbers
(``[\\p{L}\\p{M}\\p{N}]+``); everything else separates them. So "state-of-the-art"
is four tokens, "naïve" one (composed or decomposed), "北京" one, "3.14" two.
Then, in this order: lowercasing (Unicode simple case mapping), dropping tokens
longer than ``max_token_len`` characters, dropping stop words, stemming.

Documents and queries go through the same vectorised pyarrow kernels
(``utf8_lower``, an RE2 replace, a plain split), so a query term is always
analysed exactly as the documents were. Stop words and stemming are applied to
the *vocabulary* (distinct tokens), not to each occurrence, which keeps the
Python-level work proportional to the number of distinct words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gleandb.errors import InvalidArgumentError

__all__ = ["FullTextConfig", "ENGLISH_STOPWORDS", "analyze", "analyze_query"]

# Lucene's classic English stop set (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET).
ENGLISH_STOPWORDS = (
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with"
).split()

_SEPARATORS = r"[^\p{L}\p{M}\p{N}]+"
_FIELDS = ("lowercase", "stemmer", "stopwords", "k1", "b", "max_token_len")


def _stemmer_names() -> list[str]:
    try:
        import Stemmer  # PyStemmer
    except ImportError:  # pragma: no cover - it is a dependency
        return []
    return sorted(Stemmer.algorithms())


def _bad(field: str, value: Any, expected: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"Invalid fulltext {field} {value!r}: expected {expected}")


@dataclass(frozen=True)
class FullTextConfig:
    """How a collection's documents are analysed and scored by BM25.

    Fixed at collection creation: changing it would invalidate the built indexes.
    """

    lowercase: bool = True
    stemmer: str | None = None
    stopwords: str | tuple[str, ...] | None = None
    k1: float = 1.2
    b: float = 0.75
    max_token_len: int = 40

    @classmethod
    def from_dict(cls, d: Any) -> "FullTextConfig":
        """Validate a user's ``configuration["fulltext"]``; errors name the field and value."""
        if d is None:
            return cls()
        if isinstance(d, FullTextConfig):
            return d
        if not isinstance(d, dict):
            raise InvalidArgumentError(f"Invalid fulltext configuration {d!r}: expected an object")
        for key in d:
            if key not in _FIELDS:
                raise InvalidArgumentError(
                    f"Unknown fulltext configuration field {key!r}: expected one of {', '.join(_FIELDS)}"
                )
        lowercase = d.get("lowercase", True)
        if not isinstance(lowercase, bool):
            raise _bad("lowercase", lowercase, "true or false")
        stemmer = d.get("stemmer")
        if stemmer is not None:
            names = _stemmer_names()
            if not isinstance(stemmer, str) or stemmer not in names:
                raise _bad("stemmer", stemmer, f"null or one of {', '.join(names)}")
        stopwords = d.get("stopwords")
        if isinstance(stopwords, str):
            if stopwords != "english":
                raise _bad("stopwords", stopwords, 'null, "english" or a list of words')
        elif isinstance(stopwords, (list, tuple)):
            for w in stopwords:
                if not isinstance(w, str) or not w:
                    raise _bad("stopwords", stopwords, "a list of non-empty strings")
            stopwords = tuple(stopwords)
        elif stopwords is not None:
            raise _bad("stopwords", stopwords, 'null, "english" or a list of words')
        k1 = d.get("k1", 1.2)
        if isinstance(k1, bool) or not isinstance(k1, (int, float)) or not math.isfinite(k1) or k1 < 0:
            raise _bad("k1", k1, "a finite number >= 0")
        b = d.get("b", 0.75)
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not (0 <= b <= 1):
            raise _bad("b", b, "a number between 0 and 1")
        mtl = d.get("max_token_len", 40)
        if isinstance(mtl, bool) or not isinstance(mtl, int) or not (1 <= mtl <= 1000):
            raise _bad("max_token_len", mtl, "an integer between 1 and 1000")
        return cls(lowercase, stemmer, stopwords, float(k1), float(b), mtl)

    def to_dict(self) -> dict:
        sw = list(self.stopwords) if isinstance(self.stopwords, tuple) else self.stopwords
        return {
            "lowercase": self.lowercase,
            "stemmer": self.stemmer,
            "stopwords": sw,
            "k1": self.k1,
            "b": self.b,
            "max_token_len": self.max_token_len,
        }

    def analysis_key(self) -> dict:
        """The fields that decide which terms a document has (not k1/b: scoring only)."""
        d = self.to_dict()
        return {k: d[k] for k in ("lowercase", "stemmer", "stopwords", "max_token_len")}

    def stopword_set(self) -> frozenset[str]:
        if self.stopwords is None:
            return frozenset()
        words = ENGLISH_STOPWORDS if self.stopwords == "english" else self.stopwords
        return frozenset(w.lower() for w in words) if self.lowercase else frozenset(words)


# the separators among ASCII characters: RE2 compiles this class in microseconds, where
# the Unicode classes of _SEPARATORS cost ~2 ms per call (pyarrow keeps no compiled
# regex between calls), a fixed cost that dominated the analysis of small segments
_ASCII_SEPARATORS = r"[^A-Za-z0-9]+"
_ASCII_TABLE = {i: " " for i in range(128) if not chr(i).isalnum()}


def _separate(docs: pa.Array) -> pa.Array:
    """``docs`` with every run of separators (``_SEPARATORS``) replaced by one space
    or more. ASCII rows go through the ASCII class; the few other rows are translated
    in Python with the characters classified by RE2 once per process (``_classify``),
    so the Unicode classes are never compiled per call."""
    spaced = pc.replace_substring_regex(docs, _ASCII_SEPARATORS, " ")
    ascii_rows = pc.fill_null(pc.string_is_ascii(docs), True).to_numpy(zero_copy_only=False)
    if ascii_rows.all():
        return spaced
    other = np.flatnonzero(~ascii_rows)
    texts = docs.take(pa.array(other, pa.int64())).to_pylist()
    chars = {ch for t in texts for ch in t if ch >= "\x80"}
    _classify(chars)
    table = dict(_ASCII_TABLE)
    table.update({ord(ch): " " for ch in chars if not _WORD_CHAR[ch]})
    mask = np.zeros(len(docs), dtype=bool)
    mask[other] = True
    return pc.replace_with_mask(spaced, pa.array(mask), pa.array([t.translate(table) for t in texts], docs.type))


def _tokens(docs: pa.Array | pa.ChunkedArray, lowercase: bool) -> tuple[pa.Array, np.ndarray]:
    """(raw tokens, row of each token) of a string column; null documents have none."""
    if isinstance(docs, pa.ChunkedArray):
        docs = docs.combine_chunks() if docs.num_chunks != 1 else docs.chunk(0)
    if lowercase:
        docs = pc.utf8_lower(docs)
    spaced = _separate(docs)
    lists = pc.split_pattern(spaced, " ")
    flat = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists)
    keep = pc.greater(pc.binary_length(flat), 0)
    return pc.filter(flat, keep), pc.filter(rows, keep).to_numpy(zero_copy_only=False).astype(np.int64)


def _normalise_vocab(vocab: list[str], lengths: np.ndarray, config: FullTextConfig) -> list[str | None]:
    """Final term of each distinct raw token, or None when it is dropped."""
    stop = config.stopword_set()
    out: list[str | None] = [
        None if (lengths[i] > config.max_token_len or tok in stop) else tok for i, tok in enumerate(vocab)
    ]
    if config.stemmer:
        import Stemmer

        stemmer = Stemmer.Stemmer(config.stemmer)
        kept = [i for i, t in enumerate(out) if t is not None]
        stems = stemmer.stemWords([out[i] for i in kept])
        for i, s in zip(kept, stems):
            out[i] = s
    return out


def analyze(docs: pa.Array | pa.ChunkedArray, config: FullTextConfig) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Analyse a document column: (terms, term id of each token occurrence, row of each).

    Term ids index ``terms`` (distinct, in no particular order).
    """
    flat, rows = _tokens(docs, config.lowercase)
    if len(flat) == 0:
        return [], np.zeros(0, np.int64), np.zeros(0, np.int64)
    enc = pc.dictionary_encode(flat)
    raw_vocab = enc.dictionary
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = pc.utf8_length(raw_vocab).to_numpy(zero_copy_only=False)
    final = _normalise_vocab(raw_vocab.to_pylist(), lengths, config)
    terms: list[str] = []
    term_of: dict[str, int] = {}
    remap = np.full(len(final), -1, dtype=np.int64)
    for i, t in enumerate(final):
        if t is None:
            continue
        tid = term_of.get(t)
        if tid is None:
            tid = term_of[t] = len(terms)
            terms.append(t)
        remap[i] = tid
    tids = remap[codes]
    keep = tids >= 0
    return terms, tids[keep], rows[keep]


# char -> is it a word character (\p{L}\p{M}\p{N}), as RE2 (the document tokenizer) says
_WORD_CHAR: dict[str, bool] = {}
_WORD_CHAR_RE = r"^[\p{L}\p{M}\p{N}]$"


def _classify(chars: set[str]) -> None:
    new = [c for c in chars if c not in _WORD_CHAR]
    if new:
        hits = pc.match_substring_regex(pa.array(new, pa.string()), _WORD_CHAR_RE).to_pylist()
        _WORD_CHAR.update(zip(new, hits))


def analyze_query(query: str, config: FullTextConfig) -> list[str]:
    """Terms of a query, in order, repeats kept (each occurrence scores).

    Same analysis as documents, without compiling the separator regex per query:
    characters are classified by RE2 once and cached (compiling the Unicode classes
    costs ~1 ms, more than the rest of a BM25 query).
    """
    if config.lowercase:
        query = pc.utf8_lower(pa.array([query], pa.string()))[0].as_py()
    chars = set(query)
    if not chars.issubset(_WORD_CHAR):
        _classify(chars)
    toks: list[str] = []
    run: list[str] = []
    for ch in query:
        if _WORD_CHAR[ch]:
            run.append(ch)
        elif run:
            toks.append("".join(run))
            run = []
    if run:
        toks.append("".join(run))
    if not toks:
        return []
    lengths = np.fromiter((len(t) for t in toks), dtype=np.int64, count=len(toks))
    return [t for t in _normalise_vocab(toks, lengths, config) if t is not None]
