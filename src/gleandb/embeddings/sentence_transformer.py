"""chromadb's ``SentenceTransformerEmbeddingFunction``, for users who have torch.

Any sentence-transformers model, run by the ``sentence-transformers`` package (which
needs torch). gleandb does not depend on either: install them with
``pip install 'gleandb[sentence-transformers]'``. gleandb's default function
(``DefaultEmbeddingFunction``) already gives all-MiniLM-L6-v2's vectors without torch.

- Same constructor, name (``"sentence_transformer"``) and configuration
  (``{"model_name", "device", "normalize_embeddings", "kwargs"}``) as chromadb, so a
  collection created with it is reopened with it (``build_from_config``).
- ``sentence_transformers`` is imported, and the model loaded, on first use, not when
  the function is built: reopening a collection that names this function never fails,
  and embedding then raises :class:`SentenceTransformersNotInstalledError` (an
  ``ImportError`` and, as chromadb raises, a ``ValueError``) with the install line.
- Models are cached per process by (model_name, device, kwargs), as chromadb caches them.
- ``kwargs`` are passed to ``SentenceTransformer(...)`` and persisted, so they must be
  plain values (str, int, float, bool, list, dict, tuple), as in chromadb.
- No progress bar unless ``show_progress=True`` (not persisted).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np

from gleandb.embeddings.functions import register_embedding_function

INSTALL_HINT = "pip install 'gleandb[sentence-transformers]'"
_PRIMITIVES = (str, int, float, bool, list, dict, tuple)


class SentenceTransformersNotInstalledError(ImportError, ValueError):
    """The optional ``sentence-transformers`` package (and torch) is not installed."""


@register_embedding_function
class SentenceTransformerEmbeddingFunction:
    # Loaded models, shared by all instances of a process (chromadb keeps the same cache).
    models: dict[Any, Any] = {}
    _models_lock = threading.Lock()

    def __init__(
        self,
        model_name: str = "all-MiniLM-L6-v2",
        device: str = "cpu",
        normalize_embeddings: bool = False,
        *,
        show_progress: bool = False,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model_name, str) or not model_name:
            raise ValueError(f"model_name must be a non-empty string, got {model_name!r}")
        if not isinstance(device, str) or not device:
            raise ValueError(f"device must be a non-empty string, got {device!r}")
        for key, value in kwargs.items():
            if not isinstance(value, _PRIMITIVES):
                raise ValueError(f"Keyword argument {key} is not a primitive type")
        self.model_name = model_name
        self.device = device
        self.normalize_embeddings = bool(normalize_embeddings)
        self.kwargs = dict(kwargs)
        self.show_progress = bool(show_progress)
        self._model: Any = None

    # ------------------------------------------------------------------ model

    def _cache_key(self) -> tuple:
        return (self.model_name, self.device, json.dumps(self.kwargs, sort_keys=True, default=repr))

    @property
    def model(self) -> Any:
        """The ``SentenceTransformer`` (imported and loaded on first use)."""
        if self._model is None:
            key = self._cache_key()
            with self._models_lock:
                model = self.models.get(key)
                if model is None:
                    try:
                        from sentence_transformers import SentenceTransformer
                    except ImportError as e:
                        raise SentenceTransformersNotInstalledError(
                            "SentenceTransformerEmbeddingFunction needs the optional "
                            f"'sentence-transformers' package (and torch): {INSTALL_HINT}. "
                            "gleandb's DefaultEmbeddingFunction computes all-MiniLM-L6-v2 "
                            f"without it. ({e})"
                        ) from e
                    model = SentenceTransformer(model_name_or_path=self.model_name, device=self.device, **self.kwargs)
                    self.models[key] = model
            self._model = model
        return self._model

    # ------------------------------------------------------------------ embedding

    def __call__(self, input: Any) -> list[np.ndarray]:
        if isinstance(input, str):
            input = [input]
        docs = list(input)
        for i, d in enumerate(docs):
            if not isinstance(d, str):
                raise ValueError(
                    "SentenceTransformerEmbeddingFunction embeds text: expected each document to be "
                    f"a str, got {type(d).__name__} at index {i}"
                )
        if not docs:
            return []
        embeddings = self.model.encode(
            docs,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize_embeddings,
            show_progress_bar=self.show_progress,
        )
        return [np.asarray(e, dtype=np.float32) for e in embeddings]

    def embed_query(self, input: Any) -> list[np.ndarray]:
        return self(input)

    # ------------------------------------------------------------------ protocol

    @staticmethod
    def name() -> str:
        return "sentence_transformer"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def is_legacy(self) -> bool:
        return False

    def get_config(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "device": self.device,
            "normalize_embeddings": self.normalize_embeddings,
            "kwargs": self.kwargs,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "SentenceTransformerEmbeddingFunction":
        SentenceTransformerEmbeddingFunction.validate_config(config)
        return SentenceTransformerEmbeddingFunction(
            model_name=config.get("model_name", "all-MiniLM-L6-v2"),
            device=config.get("device", "cpu"),
            normalize_embeddings=config.get("normalize_embeddings", False),
            **(config.get("kwargs") or {}),
        )

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if not isinstance(config, dict):
            raise ValueError(f"sentence_transformer config must be a dict, got {type(config).__name__}")
        for key, typ in (("model_name", str), ("device", str), ("normalize_embeddings", bool), ("kwargs", dict)):
            if key in config and config[key] is not None and not isinstance(config[key], typ):
                raise ValueError(f"sentence_transformer config {key!r} must be {typ.__name__}, got {config[key]!r}")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        # as chromadb: model_name may be a local path that moves, so any update is allowed
        return None

    def __repr__(self) -> str:
        return (
            f"SentenceTransformerEmbeddingFunction(model_name={self.model_name!r}, device={self.device!r}, "
            f"normalize_embeddings={self.normalize_embeddings!r})"
        )
