"""``git grep -n -E`` over an indexed commit, answered from its collection.

Two steps: the collection's trigram index finds the candidate chunks
(``where_document={"$regex": "(?m)" + pattern}``: with ``(?m)`` a match inside one line of a
chunk is a match of the chunk, so no candidate is lost), then each candidate's lines are
matched one by one with RE2 (``pyarrow.compute.match_substring_regex``, linear time, the engine
``where_document`` uses). Because a commit's chunks partition each file's lines
(``gleandb.code.chunk``), the lines found are exactly the lines ``git grep`` finds, for every
pattern RE2 reads as POSIX ERE does (docs/code.md lists where they differ).
"""

from __future__ import annotations

import re
from typing import Any

from gleandb.code.git import CodeError
from gleandb.errors import ChromaError


# GNU ERE constructs RE2 would read silently otherwise (as a literal '<', as literal braces)
_GNU_WORD_EDGE = re.compile(r"(?<!\\)(?:\\\\)*\\[<>]")
_GNU_OPEN_REPEAT = re.compile(r"(?<!\\)(?:\\\\)*\{,[0-9]*\}")


def _pattern(pattern: str, ignore_case: bool) -> str:
    if "\n" in pattern:
        raise CodeError(f"grep pattern {pattern!r} contains a newline (lines are matched one at a time)")
    if _GNU_WORD_EDGE.search(pattern):
        raise CodeError(f"grep pattern {pattern!r}: \\< and \\> (GNU word edges) are not supported; use \\b")
    if _GNU_OPEN_REPEAT.search(pattern):
        raise CodeError(f"grep pattern {pattern!r}: {{,n}} is not supported; use {{0,n}}")
    return ("(?i)" if ignore_case else "") + pattern


def grep(collection: Any, pattern: str, path: str | None = None, ignore_case: bool = False) -> list[tuple[str, int, str]]:
    """Matching lines as ``(path, line number, text)``, sorted as git prints them."""
    from gleandb.api.text import compile_regex, matching_lines
    from gleandb.code.index import path_matches

    pat = _pattern(pattern, ignore_case)
    try:
        re2 = compile_regex(pat)
    except (ValueError, ChromaError) as exc:
        raise CodeError(f"grep pattern {pattern!r}: {exc}") from None
    got = collection.get(where_document={"$regex": "(?m)" + pat}, include=["documents", "metadatas"])
    out: list[tuple[str, int, str]] = []
    for doc, meta in zip(got["documents"], got["metadatas"]):
        if path and not path_matches(meta["path"], path):
            continue
        start = meta["start_line"]
        out.extend((meta["path"], start + i, line) for i, line in matching_lines(doc, re2))
    out.sort(key=lambda r: (r[0].encode("utf-8", "surrogateescape"), r[1]))
    return out
