"""Pure-Python reference for the filter language, one record at a time.

``matches(where, where_document, metadata, document)`` says whether a record
passes a (valid) filter, with chromadb 1.5.9's observed single-node semantics.
It is written independently of ``gleandb.index.filters`` so property tests can
compare the two.  Regexes run in Python's ``re``: keep test patterns in the
subset where ``re`` and Rust's ``regex`` agree (no ``$`` before a trailing
newline, no possessive/atomic syntax, no ``\\Z``).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["matches", "where_matches", "where_document_matches"]

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _kind(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    return None


def _operand(v: Any) -> Any:
    """ints outside int64 are sent to the engine as floats."""
    if _kind(v) == "int" and not (_I64_MIN <= v <= _I64_MAX):
        return float(v)
    return v


def _as_i64(f: float) -> int:
    """Rust ``f as i64``: truncation toward zero, saturating."""
    if f >= 2.0**63:
        return _I64_MAX
    if f < -(2.0**63):
        return _I64_MIN
    return int(f)


def _cmp(value: Any, op: str, operand: Any) -> bool:
    """Scalar comparison; False whenever the types do not compare."""
    operand = _operand(operand)
    vk, ok = _kind(value), _kind(operand)
    if vk is None or ok is None:
        return False
    if vk in ("int", "float") and ok in ("int", "float"):
        # chromadb's SQLite engine: int values compare with int(operand)
        # (truncated), float values with float(operand).
        rhs = _as_i64(operand) if vk == "int" and ok == "float" else operand
        if vk == "float":
            rhs = float(rhs)
        a, b = value, rhs
    elif vk == ok and vk in ("bool", "str"):
        if op != "$eq":
            return False
        a, b = value, operand
    else:
        return False
    if op == "$eq":
        return a == b
    if op == "$gt":
        return a > b
    if op == "$gte":
        return a >= b
    if op == "$lt":
        return a < b
    if op == "$lte":
        return a <= b
    raise ValueError(op)


def _list_contains(value: Any, operand: Any) -> bool:
    if not isinstance(value, list):
        return False
    operand = _operand(operand)
    k = _kind(operand)
    return any(_kind(x) == k and x == operand for x in value)


def where_matches(where: dict | None, metadata: dict | None, document: str | None) -> bool:
    if where is None:
        return True
    ((key, cond),) = where.items()
    if key == "$and":
        return all(where_matches(w, metadata, document) for w in cond)
    if key == "$or":
        return any(where_matches(w, metadata, document) for w in cond)
    if isinstance(cond, dict):
        ((op, operand),) = cond.items()
    else:
        op, operand = "$eq", cond
    if key == "#document" and op in ("$contains", "$not_contains"):
        found = document is not None and operand in document
        return found if op == "$contains" else not found
    value = (metadata or {}).get(key)
    if op == "$ne":
        return not _cmp(value, "$eq", operand)
    if op == "$in":
        return any(_cmp(value, "$eq", x) for x in operand)
    if op == "$nin":
        return not any(_cmp(value, "$eq", x) for x in operand)
    if op == "$contains":
        return _list_contains(value, operand)
    if op == "$not_contains":
        return not _list_contains(value, operand)
    if isinstance(value, list):
        return False
    return _cmp(value, op, operand)


def where_document_matches(where_document: dict | None, document: str | None) -> bool:
    if where_document is None:
        return True
    ((op, operand),) = where_document.items()
    if op == "$and":
        return all(where_document_matches(w, document) for w in operand)
    if op == "$or":
        return any(where_document_matches(w, document) for w in operand)
    if op in ("$contains", "$not_contains"):
        hit = document is not None and operand in document
    elif op in ("$regex", "$not_regex"):
        hit = document is not None and re.search(operand, document) is not None
    else:
        raise ValueError(op)
    return hit if not op.startswith("$not_") else not hit


def matches(
    where: dict | None,
    where_document: dict | None,
    metadata: dict | None,
    document: str | None,
) -> bool:
    """True when a record with ``metadata``/``document`` passes both filters."""
    return where_matches(where, metadata, document) and where_document_matches(
        where_document, document
    )
