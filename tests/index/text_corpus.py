"""A small real-English corpus for text-index tests: ~40-word passages cut from the
Python language reference that ships with every CPython (``pydoc_data.topics``)."""

import re

from pydoc_data.topics import topics


def passages(n: int, words: int = 40) -> list[str]:
    out: list[str] = []
    for key in sorted(topics):
        toks = re.sub(r"\s+", " ", topics[key]).split(" ")
        for i in range(0, len(toks) - words, words):
            out.append(" ".join(toks[i : i + words]))
            if len(out) == n:
                return out
    return out
