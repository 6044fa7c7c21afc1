"""Documents' lines matched by the ``$regex`` filter's engine, for grep-like tools.

A ``where_document={"$regex": ...}`` filter says which documents match; a tool that shows
*where* (the MCP ``grep`` tool) matches each line with the same translation and the same
RE2 engine (linear time, so no pattern can hang it), so a document found always shows its
lines and a bad pattern fails with the filter's error. Tools above the API use this
instead of reaching into ``gleandb.index.filters``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from gleandb.index.filters import compile_regex

__all__ = ["compile_regex", "grep_lines", "matching_lines"]


def matching_lines(text: str | None, re2: str) -> list[tuple[int, str]]:
    """(line number from 0, line) of each line of ``text`` that ``re2`` (a pattern
    ``compile_regex`` returned) matches."""
    lines = (text or "").split("\n")
    hits = pc.match_substring_regex(pa.array(lines, pa.string()), re2).to_pylist()
    return [(n, line) for n, (line, hit) in enumerate(zip(lines, hits)) if hit]


def grep_lines(documents: list[str], pattern: str, max_lines: int) -> tuple[list[list[tuple[int, str]]], int]:
    """The lines of each document that ``pattern`` matches (1-based line numbers; at most
    ``max_lines`` in all), and how many lines matched in all. A bad pattern raises the
    ``InvalidArgumentError`` a ``$regex`` filter would."""
    re2 = compile_regex(pattern)
    out: list[list[tuple[int, str]]] = []
    total = 0
    for doc in documents:
        found = [(n + 1, line) for n, line in matching_lines(doc, re2)]
        total += len(found)
        out.append(found[: max(0, max_lines)])
        max_lines -= len(out[-1])
    return out, total
