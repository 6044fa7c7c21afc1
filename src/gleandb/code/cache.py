"""Embeddings keyed by content: an unchanged chunk is never embedded twice.

The cache is an ordinary collection of the same store (``code-cache.<model>``), reached through
the public API, so it is as durable as the index and works over HTTP too. A row's id is
``sha256(model key, chunk text)`` and it holds only the vector: the same text embedded by the
same model (name and configuration) is looked up, never recomputed, whatever commit, branch
or file it appears in.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import numpy as np

BATCH = 1000


def model_key(ef: Any) -> str:
    """The embedding function's name and configuration: what makes two vectors comparable."""
    try:
        name = ef.name()
    except Exception:  # noqa: BLE001 - any object with __call__ is an embedding function
        name = type(ef).__name__
    try:
        config = ef.get_config()
    except Exception:  # noqa: BLE001
        config = {}
    return f"{name}:{json.dumps(config, sort_keys=True, default=str)}"


class EmbeddingCache:
    def __init__(self, client: Any, ef: Any) -> None:
        self.ef = ef
        self.key = model_key(ef)
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", self.key.split(":")[0]).strip("-_")[:40] or "model"
        name = f"code-cache.{slug}.{hashlib.sha1(self.key.encode()).hexdigest()[:8]}"
        self.collection = client.get_or_create_collection(name, embedding_function=None,
                                                          metadata={"model": self.key[:500]})
        self.embedded = 0
        self.reused = 0
        self.db_seconds = 0.0  # time in the cache collection's get / add (not embedding)

    def text_key(self, text: str) -> str:
        return hashlib.sha256(f"{self.key}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def embed(self, texts: list[str]) -> list[np.ndarray]:
        """Vectors for ``texts``: from the cache where present, else embedded and stored."""
        keys = [self.text_key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), BATCH):
            t0 = time.perf_counter()
            got = self.collection.get(ids=unique[i:i + BATCH], include=["embeddings"])
            self.db_seconds += time.perf_counter() - t0
            for id_, emb in zip(got["ids"], got["embeddings"] if got["embeddings"] is not None else []):
                found[id_] = np.asarray(emb, dtype=np.float32)
        missing = [k for k in unique if k not in found]
        self.reused += len(texts) - len(missing)  # duplicates within a batch are embedded once
        if missing:
            text_of = dict(zip(keys, texts))
            for i in range(0, len(missing), BATCH):
                part = missing[i:i + BATCH]
                vecs = [np.asarray(v, dtype=np.float32) for v in self.ef([text_of[k] for k in part])]
                t0 = time.perf_counter()
                self.collection.add(ids=part, embeddings=vecs)
                self.db_seconds += time.perf_counter() - t0
                found.update(zip(part, vecs))
            self.embedded += len(missing)
        return [found[k] for k in keys]
