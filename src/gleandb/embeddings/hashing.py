"""A dependency-free embedding function: hashed bags of words and word pairs.

It is not a language model: two texts are close when they share words. It
exists so gleandb can ingest and search real text offline before the default
model is packaged (the demo uses it) and so tests can embed documents without
a model. Deterministic across processes (blake2b, not Python's hash).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from gleandb.embeddings.functions import register_embedding_function

_WORD = re.compile(r"\w+", re.UNICODE)


@register_embedding_function
class HashingEmbeddingFunction:
    def __init__(self, dim: int = 256):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 8:
            raise ValueError(f"HashingEmbeddingFunction dim must be an int >= 8, got {dim!r}")
        self.dim = dim

    @staticmethod
    def name() -> str:
        return "gleandb_hashing"

    def get_config(self) -> dict:
        return {"dim": self.dim}

    @staticmethod
    def build_from_config(config: dict) -> "HashingEmbeddingFunction":
        return HashingEmbeddingFunction(int(config.get("dim", 256)))

    def default_space(self) -> str:
        return "cosine"

    def _bucket(self, token: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        return h % self.dim, (1.0 if (h >> 63) & 1 else -1.0)

    def __call__(self, input: Any) -> list[np.ndarray]:
        out = []
        for text in input:
            v = np.zeros(self.dim, dtype=np.float32)
            words = [w.lower() for w in _WORD.findall(text)]
            for tok in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
                i, s = self._bucket(tok)
                v[i] += s
            n = float(np.linalg.norm(v))
            out.append(v / n if n else v)
        return out
