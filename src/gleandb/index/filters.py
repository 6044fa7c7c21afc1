"""The ``where`` / ``where_document`` filter language, evaluated as vectorised
scans over a segment's :class:`pyarrow.Table`.

Table layout (built by the engine, see :func:`metadata_columns`):

* ``"id"``: string; ``"document"``: string, null when the record has none;
* one column per (metadata key, value type) present in the table, named
  ``f"{tag}:{key}"`` with ``tag`` one of ``s i f b ls li lf lb`` (string, int64,
  float64, bool and lists of those).  A row has a non-null value in at most one
  column per key.  Keys may contain ``':'`` (the name splits on the first one).
  Columns of keys absent from the table are absent (all-null).

Semantics follow chromadb 1.5.9's single-node engine (observed behaviour):

* ``$eq/$ne/$gt/$gte/$lt/$lte/$in/$nin`` on scalars.  Strings only equal
  strings (case-sensitive), bools only equal bools; ranges only on numbers.
  ints and floats cross types the way chromadb's SQLite engine does: an int
  operand is compared with float values as ``float(v)``; a float operand is
  compared with int values as ``int(v)`` truncated toward zero (so
  ``{"k": {"$eq": 1.5}}`` matches ``k=1`` and ``{"k": {"$gte": 1.5}}`` too).
  Int operands outside int64 behave as floats.
* ``$contains/$not_contains`` on metadata keys: membership in list values,
  with the exact element type (``1`` does not match ``[1.0]``); scalar values
  never contain anything.  On the key ``"#document"``: substring of the document.
* Negative operators (``$ne $nin $not_contains $not_regex``) are complements of
  the positive ones, so records lacking the key / the document match.
* ``where_document``: ``$contains`` case-sensitive substring, ``$regex``
  unanchored search (``^``/``$`` anchor the whole document unless ``(?m)``).

Regexes use chromadb's (Rust ``regex`` crate) syntax and run in RE2 through
:func:`pyarrow.compute.match_substring_regex`, which is linear-time.  The
Perl classes ``\\d \\s \\w`` are rewritten to their Unicode meaning (as in Rust).
"""

from __future__ import annotations

import functools
import math
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

try:  # Python 3.11+: the parser moved under re
    from re import _constants as _sre_constants, _parser as _sre_parser
except ImportError:  # pragma: no cover
    import sre_constants as _sre_constants, sre_parse as _sre_parser  # type: ignore

from gleandb import deadlines as deadline
from gleandb.errors import InvalidArgumentError
from gleandb.index.depth import MAX_FILTER_DEPTH, check_depth, filter_depth  # noqa: F401 (re-exported)
from gleandb.index.trigram import literal_query, regex_query

__all__ = [
    "Filter",
    "compile_filter",
    "compile_search_filter",
    "metadata_columns",
    "validate_where",
    "validate_where_document",
    "column_name",
    "parse_column_name",
    "TAGS",
    "compile_regex",
    "translate_regex",
    "check_depth",
    "MAX_FILTER_DEPTH",
]

# ---------------------------------------------------------------------------
# Table layout helpers
# ---------------------------------------------------------------------------

TAGS: dict[str, pa.DataType] = {
    "s": pa.string(),
    "i": pa.int64(),
    "f": pa.float64(),
    "b": pa.bool_(),
    "ls": pa.list_(pa.string()),
    "li": pa.list_(pa.int64()),
    "lf": pa.list_(pa.float64()),
    "lb": pa.list_(pa.bool_()),
}

_SCALAR_TAG = {bool: "b", int: "i", float: "f", str: "s"}
_LIST_TAG = {bool: "lb", int: "li", float: "lf", str: "ls"}


def column_name(tag: str, key: str) -> str:
    return f"{tag}:{key}"


def parse_column_name(name: str) -> tuple[str, str] | None:
    """``"ls:a:b"`` -> ``("ls", "a:b")``; None for non-metadata columns."""
    tag, sep, key = name.partition(":")
    if not sep or tag not in TAGS:
        return None
    return tag, key


def _value_tag(key: str, value: Any) -> str:
    t = type(value)
    if t in _SCALAR_TAG:  # exact types: bool is tested before int
        return _SCALAR_TAG[t]
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"Expected metadata list value for key {key} to be non-empty")
        tags = {_value_tag(key, v) if not isinstance(v, (list, tuple)) else "nested" for v in value}
        if len(tags) != 1 or "nested" in tags:
            raise ValueError(
                f"Expected metadata list value for key {key} to contain elements of one "
                f"primitive type (str, int, float or bool), got {value}"
            )
        return "l" + tags.pop()
    raise ValueError(
        f"Expected metadata value for key {key} to be a str, int, float, bool or a list "
        f"of those, got {value!r}"
    )


def metadata_columns(metadatas: Sequence[Mapping[str, Any] | None]) -> dict[str, pa.Array]:
    """Build the typed metadata columns (``"{tag}:{key}"`` -> array of
    ``len(metadatas)``) for a list of metadata dicts.  ``None`` metadatas and
    ``None`` values contribute nothing.  Columns appear in first-seen order."""
    n = len(metadatas)
    cols: dict[str, list[Any]] = {}
    scalar_tag, list_tag = _SCALAR_TAG, _LIST_TAG
    for row, md in enumerate(metadatas):
        if not md:
            continue
        for key, value in md.items():
            if value is None:
                continue
            tag = scalar_tag.get(type(value))
            if tag is None and type(value) is list and value:
                t0 = type(value[0])
                tag = list_tag.get(t0)
                if tag is not None:
                    for x in value:
                        if type(x) is not t0:
                            tag = None
                            break
            if tag is None:
                tag = _value_tag(key, value)
                if tag == "i":
                    value = int(value)
                elif tag == "f":
                    value = float(value)
                elif tag == "s":
                    value = str(value)
                elif tag[0] == "l":
                    value = list(value)
            name = tag + ":" + key
            col = cols.get(name)
            if col is None:
                col = cols[name] = [None] * n
            col[row] = value
    return {name: pa.array(values, type=TAGS[name.partition(":")[0]]) for name, values in cols.items()}


# ---------------------------------------------------------------------------
# Client-side validation (ported from chromadb 1.5.9 ``chromadb/api/types.py``)
# ---------------------------------------------------------------------------

_WHERE_OPERATORS = [
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$ne",
    "$eq",
    "$in",
    "$nin",
    "$contains",
    "$not_contains",
]
_DOC_OPERATORS = ["$contains", "$not_contains", "$regex", "$not_regex", "$and", "$or"]


def validate_where(where: Any) -> None:
    """Raise ``ValueError`` with chromadb's client-side message when ``where``
    is malformed.  (chromadb's Collection layer appends `` in get.`` etc.)"""
    if not isinstance(where, dict):
        raise ValueError(f"Expected where to be a dict, got {where}")
    if len(where) != 1:
        raise ValueError(f"Expected where to have exactly one operator, got {where}")
    for key, value in where.items():
        if not isinstance(key, str):
            raise ValueError(f"Expected where key to be a str, got {key}")
        if key in ("$contains", "$not_contains"):
            raise ValueError(
                f"Expected where key to be a metadata field name or a logical "
                f"operator ($and, $or), got {key}"
            )
        if key not in ("$and", "$or", "$in", "$nin") and not isinstance(
            value, (str, int, float, dict)
        ):
            raise ValueError(
                f"Expected where value to be a str, int, float, or operator expression, got {value}"
            )
        if key == "$and" or key == "$or":
            if not isinstance(value, list):
                raise ValueError(
                    f"Expected where value for $and or $or to be a list of where expressions, got {value}"
                )
            if len(value) <= 1:
                raise ValueError(
                    f"Expected where value for $and or $or to be a list with at least two where expressions, got {value}"
                )
            for where_expression in value:
                validate_where(where_expression)
        if isinstance(value, dict):
            if len(value) != 1:
                raise ValueError(
                    f"Expected operator expression to have exactly one operator, got {value}"
                )
            for operator, operand in value.items():
                if operator in ("$gt", "$gte", "$lt", "$lte"):
                    if not isinstance(operand, (int, float)):
                        raise ValueError(
                            f"Expected operand value to be an int or a float for operator {operator}, got {operand}"
                        )
                if operator in ("$in", "$nin"):
                    if not isinstance(operand, list):
                        raise ValueError(
                            f"Expected operand value to be an list for operator {operator}, got {operand}"
                        )
                if operator in ("$contains", "$not_contains"):
                    if key == "#document" and not isinstance(operand, str):
                        raise ValueError(
                            f"Expected operand value to be a str for operator {operator} on #document, got {operand}"
                        )
                    if not isinstance(operand, (str, int, float, bool)):
                        raise ValueError(
                            f"Expected operand value to be a str, int, float, or bool for operator {operator}, got {operand}"
                        )
                if operator not in _WHERE_OPERATORS:
                    raise ValueError(
                        f"Expected where operator to be one of $gt, $gte, $lt, $lte, $ne, $eq, $in, $nin, "
                        f"$contains, $not_contains, got {operator}"
                    )
                if not isinstance(operand, (str, int, float, bool, list)):
                    raise ValueError(
                        f"Expected where operand value to be a str, int, float, bool, or list of those type, got {operand}"
                    )
                if isinstance(operand, list) and (
                    len(operand) == 0 or not all(isinstance(x, type(operand[0])) for x in operand)
                ):
                    raise ValueError(
                        f"Expected where operand value to be a non-empty list, and all values to be of the same type "
                        f"got {operand}"
                    )


def validate_where_document(where_document: Any) -> None:
    """Raise ``ValueError`` with chromadb's client-side message when
    ``where_document`` is malformed."""
    if not isinstance(where_document, dict):
        raise ValueError(f"Expected where document to be a dictionary, got {where_document}")
    if len(where_document) != 1:
        raise ValueError(
            f"Expected where document to have exactly one operator, got {where_document}"
        )
    for operator, operand in where_document.items():
        if operator not in _DOC_OPERATORS:
            raise ValueError(
                f"Expected where document operator to be one of $contains, $not_contains, $regex, $not_regex, $and, $or, got {operator}"
            )
        if operator == "$and" or operator == "$or":
            if not isinstance(operand, list):
                raise ValueError(
                    f"Expected document value for $and or $or to be a list of where document expressions, got {operand}"
                )
            if len(operand) <= 1:
                raise ValueError(
                    f"Expected document value for $and or $or to be a list with at least two where document expressions, got {operand}"
                )
            for where_document_expression in operand:
                validate_where_document(where_document_expression)
        elif not isinstance(operand, str):
            raise ValueError(
                f"Expected where document operand value for operator {operator} to be a str, got {operand}"
            )
        elif len(operand) == 0:
            raise ValueError(
                f"Expected where document operand value for operator {operator} to be a non-empty str"
            )


# ---------------------------------------------------------------------------
# Regex: Rust `regex` syntax -> RE2
# ---------------------------------------------------------------------------

# Unicode White_Space (Rust's \s).
_WS = "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
# Rust's \w: Alphabetic + M + Nd + Pc + Join_Control (Alphabetic approximated
# by L + Nl + the circled / squared Latin letters of Other_Alphabetic).
_WORD = (
    "\\p{L}\\p{M}\\p{Nd}\\p{Pc}\\p{Nl}\\x{200C}\\x{200D}"
    "\\x{24B6}-\\x{24E9}\\x{1F130}-\\x{1F149}\\x{1F150}-\\x{1F169}\\x{1F170}-\\x{1F189}"
)
_OUTSIDE = {
    "d": "\\p{Nd}",
    "D": "\\P{Nd}",
    "s": f"[{_WS}]",
    "S": f"[^{_WS}]",
    "w": f"[{_WORD}]",
    "W": f"[^{_WORD}]",
}
_INSIDE = {"d": "\\p{Nd}", "D": "\\P{Nd}", "s": _WS, "w": _WORD}


def _regex_error(pattern: str, complaint: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"Regex syntax error in pattern {pattern!r}: {complaint}")


def translate_regex(pattern: str) -> str:
    """Rewrite a chromadb (Rust ``regex``) pattern for RE2.  Raises
    :class:`InvalidArgumentError` for constructs RE2 would silently read
    differently (nested classes / class set operations, ``\\C``, ``\\Q``)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_start = -1  # index in pattern right after '[' (and an optional '^')
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise _regex_error(pattern, "incomplete escape sequence at the end of the pattern")
            e = pattern[i + 1]
            table = _INSIDE if in_class else _OUTSIDE
            if e in table:
                out.append(table[e])
                i += 2
                continue
            if in_class and e in "SW":
                raise _regex_error(
                    pattern, f"\\{e} inside a character class is not supported; use [^...] instead"
                )
            if e in "CQEKGXRZ":
                raise _regex_error(pattern, f"unrecognized escape sequence \\{e}")
            if e in "pPx" and i + 2 < n and pattern[i + 2] == "{":
                close = pattern.find("}", i + 3)
                if close < 0:
                    raise _regex_error(pattern, "unclosed escape braces")
                out.append(pattern[i : close + 1])
                i = close + 1
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "]" and i != class_start:
                in_class = False
            elif c == "[":
                if pattern.startswith("[:", i) or pattern.startswith("[:^", i):
                    close = pattern.find(":]", i + 2)
                    if close >= 0:
                        out.append(pattern[i : close + 2])
                        i = close + 2
                        continue
                raise _regex_error(pattern, "nested character classes are not supported")
            elif c in "&-~" and i + 1 < n and pattern[i + 1] == c:
                raise _regex_error(
                    pattern, f"character class set operation '{c}{c}' is not supported"
                )
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            class_start = j  # a ']' right here is a literal
            out.append(pattern[i:j])
            i = j
            continue
        out.append(c)
        i += 1
    return "".join(out)


_PROBE = pa.array([""], pa.string())


def compile_regex(pattern: str) -> str:
    """Validate ``pattern`` and return its RE2 form; raises
    :class:`InvalidArgumentError` naming the pattern and the engine's complaint."""
    re2 = translate_regex(pattern)
    try:
        pc.match_substring_regex(_PROBE, re2)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        complaint = str(exc)
        prefix = "Invalid regular expression: "
        if complaint.startswith(prefix):
            complaint = complaint[len(prefix) :]
        hint = ""
        if "(?=" in complaint or "(?!" in complaint or "(?<=" in complaint or "(?<!" in complaint:
            hint = "look-around (look-ahead and look-behind) is not supported"
        elif "invalid escape sequence: \\" in complaint and complaint[-1:].isdigit():
            hint = "backreferences are not supported"
        elif "(?u" in complaint or "(?-u" in complaint:
            hint = "the 'u' flag is not supported (patterns are always Unicode)"
        msg = f"{hint} ({complaint})" if hint else complaint
        raise _regex_error(pattern, msg) from None
    return re2


# ---------------------------------------------------------------------------
# Filter tree
# ---------------------------------------------------------------------------

_INVALID_WHERE = "Invalid where clause"
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


class _Ctx:
    """Per-table evaluation context: column lookup by (tag, key), and the
    segment's trigram index when it has one (``trigrams()`` -> index or None).

    ``within``: when set, only these rows' results matter (the caller ANDs with it),
    so document scans may skip the others. ``_And`` narrows it as it goes.
    """

    __slots__ = ("table", "n", "cols", "trigrams", "within", "values")

    def __init__(self, table: pa.Table, trigrams=None, within: np.ndarray | None = None, values=None) -> None:
        self.table = table
        self.trigrams = trigrams
        self.within = within
        self.values = values  # column name -> EqualityIndex or None (``Segment.value_index``)
        self.n = table.num_rows
        self.cols = _columns_by_key(table.schema)

    def column(self, key: str, tag: str) -> pa.ChunkedArray | None:
        name = self.cols.get(key, {}).get(tag)
        return None if name is None else self.table.column(name)

    def equal_rows(self, key: str, tag: str, values: list) -> np.ndarray | None:
        """Rows of column (key, tag) equal to one of ``values``, from the segment's
        equality index; None when it has none (the caller scans)."""
        name = self.cols.get(key, {}).get(tag)
        if name is None or self.values is None:
            return None
        idx = self.values(name)
        if idx is None:
            return None
        return idx.rows_equal(self.table.column(name), values)

    def narrow_rows(self) -> np.ndarray | None:
        """The ``within`` rows when they are few enough that reading only them beats
        reading a whole column (or asking an index), else None."""
        w = self.within
        if w is None:
            return None
        rows = np.flatnonzero(w)
        return rows if len(rows) <= self.n * NARROW_MAX_FRACTION else None

    def scan(self, col: pa.ChunkedArray, fn, rows: np.ndarray | None) -> np.ndarray:
        """``fn`` (Arrow array -> bool-ish array) over ``col``; only over ``rows`` when
        given (``narrow_rows``): the result only has to be right on the ``within`` rows."""
        if rows is None:
            return _to_bool(fn(col))
        out = self.false()
        if len(rows):
            out[rows] = _to_bool(fn(col.take(pa.array(rows, pa.int64()))))
        return out

    def document(self) -> pa.ChunkedArray | None:
        if "document" in self.table.column_names:
            return self.table.column("document")
        return None

    def false(self) -> np.ndarray:
        return np.zeros(self.n, dtype=bool)


@functools.lru_cache(maxsize=256)
def _columns_by_key(schema: pa.Schema) -> dict[str, dict[str, str]]:
    """key -> {tag: column name} of a table layout (cached: segments share few layouts,
    and a filter is evaluated per segment per call). Callers must not modify it."""
    cols: dict[str, dict[str, str]] = {}
    for name in schema.names:
        parsed = parse_column_name(name)
        if parsed is not None:
            cols.setdefault(parsed[1], {})[parsed[0]] = name
    return cols


def _to_bool(result: pa.ChunkedArray | pa.Array) -> np.ndarray:
    out = pc.fill_null(result, False).to_numpy(zero_copy_only=False)
    return np.asarray(out, dtype=bool)


class _Node:
    def eval(self, ctx: _Ctx) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def _reads_documents(node: _Node) -> bool:
    if isinstance(node, (_DocContains, _DocRegex)):
        return True
    return any(_reads_documents(c) for c in getattr(node, "children", ())) or (
        isinstance(node, _Not) and _reads_documents(node.child)
    )


def _and_order(node: _Node) -> tuple[bool, bool]:
    """Equality clauses first (an index answers them), document clauses last."""
    equality = isinstance(node, _In) or (isinstance(node, _Compare) and node.op == "$eq")
    return _reads_documents(node), not equality


class _And(_Node):
    """Equality clauses run first (an index may answer them), then the other metadata
    clauses, then document clauses: each later clause only needs to decide the rows
    that passed the earlier ones (``ctx.within``), which is where scans get cheap."""

    def __init__(self, children: list[_Node]) -> None:
        self.children = sorted(children, key=_and_order)

    def eval(self, ctx: _Ctx) -> np.ndarray:
        out = np.ones(ctx.n, dtype=bool)
        saved = ctx.within
        try:
            for child in self.children:
                deadline.check()
                out &= child.eval(ctx)
                ctx.within = out if saved is None else (saved & out)
        finally:
            ctx.within = saved
        return out


class _Or(_Node):
    def __init__(self, children: list[_Node]) -> None:
        self.children = children

    def eval(self, ctx: _Ctx) -> np.ndarray:
        out = np.zeros(ctx.n, dtype=bool)
        for child in self.children:
            deadline.check()
            out |= child.eval(ctx)
        return out


class _Not(_Node):
    def __init__(self, child: _Node) -> None:
        self.child = child

    def eval(self, ctx: _Ctx) -> np.ndarray:
        return ~self.child.eval(ctx)


_CMP = {
    "$eq": pc.equal,
    "$gt": pc.greater,
    "$gte": pc.greater_equal,
    "$lt": pc.less,
    "$lte": pc.less_equal,
}


class _Compare(_Node):
    """``key <op> value`` against the typed scalar columns of ``key``.
    ``targets`` lists (tag, scalar) pairs: the column to compare and the
    operand already converted to that column's type."""

    def __init__(self, key: str, op: str, targets: list[tuple[str, Any]]) -> None:
        self.key, self.op, self.targets = key, op, targets

    def eval(self, ctx: _Ctx) -> np.ndarray:
        out = None
        fn = _CMP[self.op]
        few = ctx.narrow_rows()
        for tag, scalar in self.targets:
            col = ctx.column(self.key, tag)
            if col is None:
                continue
            rows = None
            if self.op == "$eq" and few is None:
                rows = ctx.equal_rows(self.key, tag, [scalar.as_py()])
            if rows is not None:
                hit = ctx.false()
                hit[rows] = True
            else:
                hit = ctx.scan(col, lambda a, s=scalar: fn(a, s), few)
            out = hit if out is None else (out | hit)
        return ctx.false() if out is None else out


_SMALL_IN = 4


class _In(_Node):
    def __init__(self, key: str, targets: list[tuple[str, pa.Array]]) -> None:
        self.key, self.targets = key, targets

    def eval(self, ctx: _Ctx) -> np.ndarray:
        out = None
        few = ctx.narrow_rows()
        for tag, value_set in self.targets:
            col = ctx.column(self.key, tag)
            if col is None:
                continue
            rows = ctx.equal_rows(self.key, tag, value_set.to_pylist()) if few is None else None
            if rows is not None:
                hit = ctx.false()
                hit[rows] = True
            elif len(value_set) <= _SMALL_IN:
                # a few equality scans beat building is_in's hash table
                hit = ctx.false()
                for v in value_set:
                    hit |= ctx.scan(col, lambda a, v=v: pc.equal(a, v), few)
            else:
                hit = ctx.scan(col, lambda a: pc.is_in(a, value_set=value_set), few)
            out = hit if out is None else (out | hit)
        return ctx.false() if out is None else out


class _ListContains(_Node):
    def __init__(self, key: str, tag: str, scalar: pa.Scalar) -> None:
        self.key, self.tag, self.scalar = key, tag, scalar

    def eval(self, ctx: _Ctx) -> np.ndarray:
        col = ctx.column(self.key, self.tag)
        if col is None:
            return ctx.false()
        out = ctx.false()
        offset = 0
        for chunk in col.chunks:
            if len(chunk):
                values = pc.list_flatten(chunk)
                if len(values):
                    parents = pc.list_parent_indices(chunk).to_numpy(zero_copy_only=False)
                    eq = _to_bool(pc.equal(values, self.scalar))
                    out[parents[eq] + offset] = True
            offset += len(chunk)
        return out


_RE2_META = frozenset("\\.+*?()|[]{}^$")


def _re2_literal(text: str) -> str:
    """An RE2 pattern matching ``text`` literally."""
    out = []
    for ch in text:
        if ch in _RE2_META:
            out.append("\\" + ch)
        elif ch == "\x00":
            out.append("\\x00")
        else:
            out.append(ch)
    return "".join(out)


_PARALLEL_MIN_ROWS = 8192
_pool: ThreadPoolExecutor | None = None


def _scan_parts() -> int:
    return min(os.cpu_count() or 1, 8)


def _scan_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_scan_parts(), thread_name_prefix="gleandb-scan")
    return _pool


# largest slice of a document column one kernel call scans: the deadline is checked
# between slices (a single kernel call cannot be interrupted; one row is never split)
SCAN_SLICE_BYTES = 4 << 20


def _slice_bounds(doc: pa.ChunkedArray | pa.Array, min_slices: int) -> np.ndarray:
    """Row offsets ``[0, ..., n]`` cutting ``doc`` into at least ``min_slices`` slices of at
    most ``SCAN_SLICE_BYTES`` plus one row (cuts at each multiple of it; a row is never split)."""
    n = len(doc)
    lens = pc.fill_null(pc.binary_length(doc), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    ends = np.cumsum(lens)
    total = int(ends[-1]) if n else 0
    cuts = [np.array([0, n], dtype=np.int64)]
    if total > SCAN_SLICE_BYTES:
        marks = np.arange(SCAN_SLICE_BYTES, total, SCAN_SLICE_BYTES, dtype=np.int64)
        cuts.append(np.searchsorted(ends, marks, side="left") + 1)
    if min_slices > 1:
        step = -(-n // min_slices)
        cuts.append(np.arange(step, n, step, dtype=np.int64))
    return np.unique(np.clip(np.concatenate(cuts), 0, n))


def _scan(doc: pa.ChunkedArray | pa.Array, match) -> np.ndarray:
    """``match`` (array -> bool mask) over a document column, in slices of bounded size
    with a deadline check between them, split across the cores for large columns
    (pyarrow's kernels release the GIL, so slices run in parallel).

    Under a deadline every slice runs in the scan pool and is waited for only until the
    deadline: one kernel call cannot be interrupted (a costly regex over one large
    document), so the caller stops waiting, raises, and its thread is free; the pool
    thread finishes that one call and nothing after it."""
    n = len(doc)
    deadline.check()
    if n == 0:
        return np.zeros(0, dtype=bool)
    parts = _scan_parts() if n >= _PARALLEL_MIN_ROWS else 1
    bounds = _slice_bounds(doc, parts)
    count = len(bounds) - 1
    limit = deadline.current()

    def run(i: int) -> np.ndarray:
        deadline.check()
        return match(doc if count == 1 else doc.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i])))

    if limit is not None:
        results = _run_until(limit, deadline.bind(run), count, parallel=parts > 1)
    elif count == 1:
        results = [match(doc)]
    elif parts > 1:
        results = list(_scan_pool().map(run, range(count)))
    else:
        results = [run(i) for i in range(count)]
    deadline.check()
    return results[0] if count == 1 else np.concatenate(results)


def _run_until(limit: "deadline.Deadline", task, count: int, parallel: bool) -> list:
    """``task(0..count-1)`` in the scan pool (all at once when ``parallel``, else one after
    the other), waiting for each only until ``limit``; DeadlineExceededError after it."""
    import concurrent.futures as cf
    import time as _time

    pool = _scan_pool()
    pending = [pool.submit(task, i) for i in range(count)] if parallel else []
    results = []
    try:
        for i in range(count):
            fut = pending[i] if parallel else pool.submit(task, i)
            if not parallel:
                pending.append(fut)
            try:
                results.append(fut.result(timeout=max(0.0, limit.at - _time.monotonic())))
            except cf.TimeoutError:
                raise limit.error() from None
    finally:
        for fut in pending:
            fut.cancel()  # slices not started yet never run
    return results


def _regex_matcher(re2: str):
    return lambda a: _to_bool(pc.match_substring_regex(a, re2))


# at most this fraction of a segment's rows still undecided (``within``): metadata
# comparisons read only those rows instead of the whole column
NARROW_MAX_FRACTION = 0.25

# above this fraction of a segment's rows as candidates, a full (parallel) scan is as cheap
INDEX_MAX_FRACTION = 0.5


def _verify(ctx: _Ctx, doc: pa.ChunkedArray, query, match) -> np.ndarray | None:
    """Rows accepted by ``match``, checking only candidates: the trigram index's rows for
    ``query``, narrowed to ``ctx.within``. None when neither narrows the scan enough
    (the caller then scans the whole column)."""
    cand = None
    if query is not None and ctx.trigrams is not None:
        idx = ctx.trigrams()
        if idx is not None:
            cand = idx.candidates(query)
    if ctx.within is not None:
        cand = np.flatnonzero(ctx.within) if cand is None else cand[ctx.within[cand]]
    if cand is None or len(cand) > ctx.n * INDEX_MAX_FRACTION:
        return None
    out = np.zeros(ctx.n, dtype=bool)
    if len(cand):
        out[cand] = _match_rows(doc, cand, match)
    return out


def _match_rows(doc: pa.ChunkedArray, rows: np.ndarray, match) -> np.ndarray:
    """``match`` over ``doc[rows]`` (take is a pyarrow kernel that releases the GIL)."""
    deadline.check()
    return _scan(doc.take(pa.array(rows, pa.int64())), match)


# longest needle searched as an RE2 literal: RE2's DFA for a literal of m bytes has at most
# m + 1 states (each up to m instructions), which always fits its memory budget here, so
# the search stays linear; a longer needle could overflow the budget and send RE2 to its
# O(document x pattern) NFA, so it goes to Arrow's match_substring (Knuth-Morris-Pratt,
# O(document + pattern) by construction, several times slower than RE2 on typical text)
RE2_LITERAL_MAX_BYTES = 256


class _DocContains(_Node):
    """Case-sensitive substring, in time linear in the documents' length. Candidates come
    from the segment's trigram index (needles of >= 3 bytes); short needles then run as an
    escaped RE2 literal (memchr-accelerated, several times faster than
    ``pc.match_substring`` on long documents), long ones through ``pc.match_substring``."""

    def __init__(self, needle: str) -> None:
        self.needle = needle
        self.query = literal_query(needle)
        self.long = len(needle.encode()) > RE2_LITERAL_MAX_BYTES
        self.re2 = None if self.long else _re2_literal(needle)

    def eval(self, ctx: _Ctx) -> np.ndarray:
        doc = ctx.document()
        if doc is None:
            return ctx.false()
        if not self.needle:
            return _to_bool(pc.is_valid(doc))
        out = _verify(ctx, doc, self.query, self.matcher)
        return out if out is not None else _scan(doc, self.matcher)

    def matcher(self, docs: pa.ChunkedArray | pa.Array) -> np.ndarray:
        if self.long:
            return _to_bool(pc.match_substring(docs, self.needle))
        return _to_bool(pc.match_substring_regex(docs, self.re2))


def required_literal(pattern: str) -> str | None:
    """The longest literal every match of ``pattern`` must contain, or None.

    Reads the top-level concatenation of the pattern (as parsed by Python's regex
    parser, whose literal syntax agrees with Rust's and RE2's): a run of plain
    characters there is in every match. Case-insensitive or verbose patterns, and
    anything the parser does not understand, give None (no shortcut, full scan).
    """
    if "[:" in pattern:  # POSIX classes: Python would read "[[:alpha:]]" as a class + "]"
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = _sre_parser.parse(pattern)
    except Exception:
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    best, run = "", []
    for op, arg in list(parsed) + [(None, None)]:
        if op is _sre_constants.LITERAL:
            run.append(chr(arg))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    return best if len(best) >= 2 else None


class _DocRegex(_Node):
    """Regex search. Candidates come from the trigram index when the pattern implies
    literals (``trigram.regex_query``); without an index, a required literal's
    memchr-fast search picks candidates. Only candidates run the full regex."""

    def __init__(self, pattern: str, re2: str) -> None:
        self.pattern, self.re2 = pattern, re2
        lit = required_literal(pattern)
        self.prefilter = None if lit is None else _DocContains(lit)
        self.query = regex_query(pattern)

    def eval(self, ctx: _Ctx) -> np.ndarray:
        doc = ctx.document()
        if doc is None:
            return ctx.false()
        match = _regex_matcher(self.re2)
        out = _verify(ctx, doc, self.query, match)
        if out is not None:
            return out
        if self.prefilter is None:
            return _scan(doc, match)
        candidates = np.flatnonzero(_scan(doc, self.prefilter.matcher))
        out = np.zeros(len(doc), dtype=bool)
        if len(candidates):
            out[candidates] = _match_rows(doc, candidates, match)
        return out


# ---------------------------------------------------------------------------
# Building the tree (server-side checks raise InvalidArgumentError)
# ---------------------------------------------------------------------------


def _trunc_i64(v: float) -> int:
    """Rust ``v as i64``: truncate toward zero, saturating."""
    if v >= 2.0**63:
        return _I64_MAX
    if v < -(2.0**63):
        return _I64_MIN
    return int(v)


def _norm_literal(v: Any) -> Any:
    """Check one literal operand; ints outside int64 become floats."""
    if isinstance(v, bool) or isinstance(v, str):
        return v
    if isinstance(v, int):
        if _I64_MIN <= v <= _I64_MAX:
            return int(v)
        try:
            return float(v)
        except OverflowError:
            raise InvalidArgumentError(_INVALID_WHERE) from None
    if isinstance(v, float):
        if not math.isfinite(v):
            raise InvalidArgumentError(_INVALID_WHERE)
        return float(v)
    raise InvalidArgumentError(_INVALID_WHERE)


def _scalar_targets(v: Any) -> list[tuple[str, Any]]:
    """Columns a (normalised) literal is compared with, and the operand in each
    column's type (chromadb SQLite semantics for int/float crossing)."""
    if isinstance(v, bool):
        return [("b", pa.scalar(v, pa.bool_()))]
    if isinstance(v, str):
        return [("s", pa.scalar(v, pa.string()))]
    if isinstance(v, int):
        return [("i", pa.scalar(v, pa.int64())), ("f", pa.scalar(float(v), pa.float64()))]
    return [("i", pa.scalar(_trunc_i64(v), pa.int64())), ("f", pa.scalar(v, pa.float64()))]


_DOC_KEY = "#document"


def _build_where(where: dict) -> _Node:
    ((key, value),) = where.items()
    if key in ("$and", "$or"):
        children = [_build_where(w) for w in value]
        return _And(children) if key == "$and" else _Or(children)
    if key.startswith("$"):
        raise InvalidArgumentError(_INVALID_WHERE)
    if isinstance(value, dict):
        ((op, operand),) = value.items()
    else:
        op, operand = "$eq", value

    if op in ("$contains", "$not_contains"):
        if key == _DOC_KEY:
            node: _Node = _DocContains(operand)
        else:
            v = _norm_literal(operand)
            if isinstance(v, bool):
                node = _ListContains(key, "lb", pa.scalar(v, pa.bool_()))
            elif isinstance(v, str):
                node = _ListContains(key, "ls", pa.scalar(v, pa.string()))
            elif isinstance(v, int):
                node = _ListContains(key, "li", pa.scalar(v, pa.int64()))
            else:
                node = _ListContains(key, "lf", pa.scalar(v, pa.float64()))
        return _Not(node) if op == "$not_contains" else node

    if op in ("$in", "$nin"):
        values = [_norm_literal(x) for x in operand]
        kinds = {bool if isinstance(x, bool) else str if isinstance(x, str) else "num" for x in values}
        if len(kinds) != 1:
            raise InvalidArgumentError(_INVALID_WHERE)
        if key == _DOC_KEY and isinstance(values[0], str):
            raise _doc_index_error()
        per_tag: dict[str, list[Any]] = {}
        for x in values:
            for tag, scalar in _scalar_targets(x):
                per_tag.setdefault(tag, []).append(scalar.as_py())
        targets = [(tag, pa.array(vs, TAGS[tag])) for tag, vs in per_tag.items()]
        node = _In(key, targets)
        return _Not(node) if op == "$nin" else node

    # $eq $ne $gt $gte $lt $lte
    if isinstance(operand, list):
        raise InvalidArgumentError(_INVALID_WHERE)
    v = _norm_literal(operand)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if isinstance(v, (bool, str)):
            raise InvalidArgumentError(_INVALID_WHERE)
        return _Compare(key, op, _scalar_targets(v))
    if key == _DOC_KEY and isinstance(v, str):
        raise _doc_index_error()
    node = _Compare(key, "$eq", _scalar_targets(v))
    return _Not(node) if op == "$ne" else node


def _doc_index_error() -> InvalidArgumentError:
    return InvalidArgumentError(
        "Cannot filter using metadata key '#document' with type 'Str' because indexing is disabled"
    )


def _build_where_document(wd: dict) -> _Node:
    ((op, operand),) = wd.items()
    if op in ("$and", "$or"):
        children = [_build_where_document(w) for w in operand]
        return _And(children) if op == "$and" else _Or(children)
    if op in ("$contains", "$not_contains"):
        node: _Node = _DocContains(operand)
        return _Not(node) if op == "$not_contains" else node
    node = _DocRegex(operand, compile_regex(operand))
    return _Not(node) if op == "$not_regex" else node


class _IdIn(_Node):
    """Search API ``#id`` leaf: the record's id is one of ``ids``."""

    def __init__(self, ids: pa.Array) -> None:
        self.ids = ids

    def eval(self, ctx: _Ctx) -> np.ndarray:
        return _to_bool(pc.is_in(ctx.table.column("id"), value_set=self.ids))


_SEARCH_DOC_OPS = ("$contains", "$not_contains", "$regex", "$not_regex")
_SEARCH_ID_OPS = ("$eq", "$ne", "$in", "$nin")


def _build_search_where(where: dict) -> _Node:
    """The Search API's ``filter``: ``where`` plus ``#document`` and ``#id`` leaves, mixed
    freely under ``$and`` / ``$or``. Plain leaves are validated and built as in ``where``."""
    if not isinstance(where, dict) or len(where) != 1:
        validate_where(where)  # raises chromadb's message, naming the clause as given
    ((key, cond),) = where.items()
    if key in ("$and", "$or"):
        if not isinstance(cond, list) or len(cond) <= 1:
            validate_where(where)  # the structure is checked before any child: same message
        children = [_build_search_where(c) for c in cond]
        return _And(children) if key == "$and" else _Or(children)
    if not isinstance(key, str):
        validate_where(where)
    if not isinstance(cond, dict):
        cond = {"$eq": cond}
    if len(cond) != 1:
        validate_where({key: cond})  # chromadb's message for an operator expression
        raise InvalidArgumentError(f"Expected one operator for {key!r}, got {cond!r}")
    if key == _DOC_KEY:
        ((op, value),) = cond.items()
        if op not in _SEARCH_DOC_OPS:
            raise InvalidArgumentError(f"filter on #document supports $contains, $not_contains, $regex and $not_regex, got {op}")
        validate_where_document({op: value})
        return _build_where_document({op: value})
    if key == "#id":
        ((op, value),) = cond.items()
        if op not in _SEARCH_ID_OPS:
            raise InvalidArgumentError(f"filter on #id supports $eq, $ne, $in and $nin, got {op}")
        values = [value] if op in ("$eq", "$ne") else value
        if not isinstance(values, list) or not all(isinstance(x, str) for x in values):
            raise InvalidArgumentError(f"filter on #id expects string ids, got {value!r}")
        node: _Node = _IdIn(pa.array(values, pa.string()))
        return _Not(node) if op in ("$ne", "$nin") else node
    if key.startswith("#"):
        raise InvalidArgumentError(f"filter key {key!r} is not supported: use #id, #document or a metadata key")
    validate_where({key: cond})
    return _build_where({key: cond})


def compile_search_filter(where: Any) -> "Filter | None":
    """Validate and compile a Search API ``filter`` (None when empty)."""
    if not where:
        return None
    check_depth(where, "filter")
    return Filter(where, None, _build_search_where(where))


class Filter:
    """A compiled ``where`` AND ``where_document`` filter."""

    __slots__ = ("where", "where_document", "_root")

    def __init__(self, where: dict | None, where_document: dict | None, root: _Node) -> None:
        self.where = where
        self.where_document = where_document
        self._root = root

    def evaluate(self, table: pa.Table, trigrams=None, within: np.ndarray | None = None, values=None) -> np.ndarray:
        """Boolean mask (``len == table.num_rows``) of the matching rows.

        ``trigrams``: a callable returning the table's trigram index (or None), used
        to narrow document substring and regex scans; results are the same without it.
        ``within``: rows the caller will keep (e.g. live rows); the result is exact on
        them and unspecified elsewhere, so AND it with ``within``.
        ``values``: column name -> the column's equality index or None (a callable,
        ``Segment.value_index``), used for ``$eq`` / ``$in``; results are the same without it.
        """
        deadline.check()
        out = self._root.eval(_Ctx(table, trigrams, within, values))
        deadline.check()
        return np.ascontiguousarray(out, dtype=bool)

    def __repr__(self) -> str:
        return f"Filter(where={self.where!r}, where_document={self.where_document!r})"


def compile_filter(where: Any, where_document: Any) -> Filter | None:
    """Validate and compile a filter; ``None`` when neither is given.

    Client-side problems raise ``ValueError`` (chromadb's messages, without the
    Collection layer's `` in get.`` suffix); problems chromadb's engine rejects
    (bool or non-finite range operands, mixed ``$in`` lists, list operands for
    ``$eq``, unknown ``$``-keys, bad regexes, ...) raise
    :class:`~gleandb.errors.InvalidArgumentError`.
    """
    if where is None and where_document is None:
        return None
    check_depth(where, "where")
    check_depth(where_document, "where_document")
    if where is not None:
        validate_where(where)
    if where_document is not None:
        validate_where_document(where_document)
    nodes: list[_Node] = []
    if where is not None:
        nodes.append(_build_where(where))
    if where_document is not None:
        nodes.append(_build_where_document(where_document))
    root = nodes[0] if len(nodes) == 1 else _And(nodes)
    return Filter(where, where_document, root)

