"""A collection's stored retrieval configuration and the built-in default of ``retrieve()``.

``configuration={"retrieval": {...}}`` stores, per collection, the arguments a plain
``retrieve()`` (and ``context()``'s first stage) uses when the caller omits them:
``mode``, ``fusion``, ``weights``, ``candidates``, ``rrf_k``. Explicit arguments
always win; then the stored block; then ``BUILTIN``. The built-in default was chosen
by measurement on three real corpora (``bench/bench_fusion_default.py``, see
docs/ARCHITECTURE.md, "The default fusion, chosen by measurement").

Weights follow their fusion: when neither the caller nor the stored block gives
weights, the built-in weights apply only if the fusion is the built-in one too;
any other fusion (``fusion="rrf"`` passed explicitly, say) gets equal weights,
so naming a fusion means that fusion as documented, not a mix with the default's
weights. Stored or built-in weights are ignored when the mode is a single ranker.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from gleandb.errors import InvalidArgumentError

KEYS = ("mode", "fusion", "weights", "candidates", "rrf_k")
MODES = ("hybrid", "dense", "bm25")
FUSIONS = ("rrf", "weighted", "zscore", "adaptive")
RANKERS = ("dense", "bm25")

# chosen by bench/bench_fusion_default.py: the largest worst-case nDCG@10 margin over the
# best single ranker on the tune queries of every benchmarked corpus (docs/ARCHITECTURE.md)
BUILTIN: dict[str, Any] = {"mode": "hybrid", "fusion": "zscore", "weights": {"dense": 1.0, "bm25": 0.7},
                           "candidates": None, "rrf_k": 60}


class _Unset:
    """The default of ``retrieve()``'s tunable arguments: "not given by the caller"."""

    def __repr__(self) -> str:
        return "<collection default>"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


def _bad(key: str, value: Any, what: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"configuration.retrieval.{key} must be {what}, got {value!r}")


def validate(block: Any) -> dict[str, Any]:
    """The ``retrieval`` block checked (unknown keys or bad values raise, naming key and value)
    and normalised (weights as floats for both rankers that are given)."""
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise InvalidArgumentError(f"configuration.retrieval must be an object like {{'mode': 'hybrid'}}, got {block!r}")
    out: dict[str, Any] = {}
    for key, value in block.items():
        if key not in KEYS:
            raise InvalidArgumentError(f"configuration.retrieval: unknown key {key!r} (value {value!r}); "
                             f"expected some of {', '.join(KEYS)}")
        if key == "mode":
            if value not in MODES:
                raise _bad(key, value, f"one of {', '.join(MODES)}")
            out[key] = value
        elif key == "fusion":
            if value not in FUSIONS:
                raise _bad(key, value, f"one of {', '.join(FUSIONS)}")
            out[key] = value
        elif key == "weights":
            if not isinstance(value, Mapping) or not value:
                raise _bad(key, value, "an object like {'dense': 1.0, 'bm25': 0.5}")
            weights = {}
            for r, w in value.items():
                if r not in RANKERS:
                    raise InvalidArgumentError(f"configuration.retrieval.weights: unknown ranker {r!r} (value {w!r}); "
                                     f"expected 'dense' and/or 'bm25'")
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                    raise InvalidArgumentError(f"configuration.retrieval.weights[{r!r}] must be a finite number >= 0, got {w!r}")
                weights[r] = float(w)
            if not any(w > 0 for w in weights.values()) and len(weights) == len(RANKERS):
                raise _bad(key, value, "an object with at least one weight > 0")
            out[key] = weights
        elif key == "candidates":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise _bad(key, value, "a positive integer or null (derived from n_results)")
            out[key] = value
        elif key == "rrf_k":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise _bad(key, value, "a positive number")
            out[key] = value
    return out


def stored(configuration: Mapping[str, Any] | None) -> dict[str, Any]:
    """The retrieval block of a collection's configuration (``{}`` when none is stored)."""
    return dict((configuration or {}).get("retrieval") or {})


def resolve(block: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Effective ``mode, fusion, weights, candidates, rrf_k``: the caller's, else ``block``'s,
    else ``BUILTIN``'s (weights: see the module docstring). ``given`` holds ``UNSET`` for omitted ones."""
    out: dict[str, Any] = {}
    for key in ("mode", "fusion", "candidates", "rrf_k"):
        if given.get(key, UNSET) is not UNSET:
            out[key] = given[key]
        elif key in block:
            out[key] = block[key]
        else:
            out[key] = BUILTIN[key]
    if given.get("weights", UNSET) is not UNSET:
        out["weights"] = given["weights"]
    elif out["mode"] != "hybrid":
        out["weights"] = None  # one ranker: stored fusion weights do not apply
    elif "weights" in block:
        out["weights"] = dict(block["weights"])
    elif given.get("fusion", UNSET) is UNSET and "fusion" not in block:
        out["weights"] = dict(BUILTIN["weights"])
    else:
        out["weights"] = None  # equal weights for a fusion named by the caller or the stored block
    return out
