"""How deeply a filter clause nests, measured without recursion.

Validation, the expression classes and evaluation all recurse once per level of a
``where`` / ``where_document`` / Search ``filter``, so a clause nested a few hundred
levels would end in ``RecursionError`` (a 500 on the server). Every entry point checks
the depth first, with an explicit stack, and refuses deeper clauses with a clear
``InvalidArgumentError`` naming the depth and the limit.
"""

from __future__ import annotations

from typing import Any

from gleandb.errors import InvalidArgumentError

__all__ = ["MAX_FILTER_DEPTH", "filter_depth", "check_depth"]


# deepest filter the engine accepts: validation and evaluation recurse once per level,
# so a deeper clause would end in RecursionError (a 500) instead of a clear 400
MAX_FILTER_DEPTH = 64


def filter_depth(clause: Any) -> int:
    """Levels of a JSON-like clause: one per ``$and``/``$or`` (a dict holding a list of
    dicts), i.e. half its container nesting, rounded up, so ``{"k": 1}`` and
    ``{"k": {"$eq": 1}}`` are both one level. Counted with an explicit stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(clause, 0)]
    while stack:
        node, depth = stack.pop()
        depth += 1
        deepest = max(deepest, depth)
        values = node.values() if isinstance(node, dict) else node
        stack.extend((v, depth) for v in values if isinstance(v, (dict, list)))
    return (deepest + 1) // 2


def check_depth(clause: Any, name: str, limit: int = MAX_FILTER_DEPTH, setting: str | None = None) -> None:
    """InvalidArgumentError naming ``name``, its depth and the limit when ``clause`` nests
    deeper than ``limit`` levels."""
    if clause is None or not isinstance(clause, (dict, list)):
        return
    depth = filter_depth(clause)
    if depth > limit:
        where = f" ({setting})" if setting else ""
        raise InvalidArgumentError(
            f"{name} is nested {depth} levels deep, more than the limit of {limit}{where}; "
            f"flatten the $and/$or clauses"
        )
