"""Split a source file into chunks along its syntax: functions, classes, methods.

Grammars come from the tree-sitter project's own per-language wheels (``tree-sitter-python``,
``-javascript``, ``-typescript``, ``-go``, ``-rust``): each is a small self-contained binary
wheel on PyPI, nothing is downloaded at run time, and a missing grammar only means the
line-window fallback (docs/ARCHITECTURE.md says why these and not a language pack).

The chunks of a file are a *partition* of its lines: every line belongs to exactly one chunk,
in order. That is what lets ``glean code grep`` answer from the index exactly as ``git grep``
answers from the files. Definitions become chunks named by their enclosing symbol path
(``Group.command``); the lines between them (imports, constants, a class's header) become
chunks named by the enclosing symbol (``""`` at module level); gaps of blank lines and closing
brackets join the chunk before them; a chunk longer than ``MAX_LINES`` is cut into windows.
Markdown and reStructuredText are cut at headings, any other text into windows of ``WINDOW``
lines.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_LINES = 150
WINDOW = 60


@dataclass(frozen=True)
class Chunk:
    start_line: int  # 1-based, inclusive
    end_line: int
    symbol: str
    text: str


LANGUAGES = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust",
    ".md": "markdown", ".markdown": "markdown", ".rst": "rst",
}


def language_of(path: str) -> str:
    """The language name stored in metadata: a known one, else the extension, else "text"."""
    ext = os.path.splitext(path)[1].lower()
    return LANGUAGES.get(ext) or (ext[1:] if ext[1:].isalnum() else "text")


@lru_cache(maxsize=None)
def _parser(language: str) -> Any:
    """A tree-sitter parser for ``language``, or None when its grammar is not installed."""
    try:
        import tree_sitter as ts

        if language == "python":
            import tree_sitter_python as g; lang = g.language()  # noqa: E702
        elif language == "javascript":
            import tree_sitter_javascript as g; lang = g.language()  # noqa: E702
        elif language == "typescript":
            import tree_sitter_typescript as g; lang = g.language_typescript()  # noqa: E702
        elif language == "tsx":
            import tree_sitter_typescript as g; lang = g.language_tsx()  # noqa: E702
        elif language == "go":
            import tree_sitter_go as g; lang = g.language()  # noqa: E702
        elif language == "rust":
            import tree_sitter_rust as g; lang = g.language()  # noqa: E702
        else:
            return None
        return ts.Parser(ts.Language(lang))
    except ImportError:
        return None


def split_lines(text: str) -> list[str]:
    """Lines as git counts them: split at ``\\n`` only (a ``\\r`` stays in its line)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def chunk_file(path: str, text: str) -> list[Chunk]:
    lines = split_lines(text)
    if not lines:
        return []
    language = language_of(path)
    parser = _parser(language)
    if parser is not None:
        segs = _syntax_segments(parser, text, len(lines))
    elif language == "markdown":
        segs = _markdown_segments(lines)
    elif language == "rst":
        segs = _rst_segments(lines)
    else:
        segs = [(a, min(a + WINDOW, len(lines)) - 1, "") for a in range(0, len(lines), WINDOW)]
    segs = _absorb_blank(segs, lines)
    out = []
    for s, e, sym in segs:
        size = MAX_LINES if e - s + 1 > MAX_LINES else e - s + 1
        step = WINDOW if e - s + 1 > MAX_LINES else size
        for a in range(s, e + 1, step):
            b = min(e, a + step - 1)
            out.append(Chunk(a + 1, b + 1, sym, "\n".join(lines[a:b + 1])))
    return out


_FILLER = re.compile(r"^[\s})\];,]*$")


def _absorb_blank(segs: list[tuple[int, int, str]], lines: list[str]) -> list[tuple[int, int, str]]:
    """Gaps of blank lines and closing brackets (a class's final ``}``) join the chunk before
    them (the first one joins the chunk after)."""
    out: list[list] = []
    pending_start = None
    for s, e, sym in segs:
        if all(_FILLER.match(lines[i]) for i in range(s, e + 1)):
            if out:
                out[-1][1] = e
            elif pending_start is None:
                pending_start = s
            continue
        if pending_start is not None:
            s, pending_start = pending_start, None
        out.append([s, e, sym])
    if pending_start is not None:  # the whole file is blank
        out.append([pending_start, segs[-1][1], ""])
    return [tuple(x) for x in out]


# ---------------------------------------------------------------- syntax

# definition node type -> is it a container (its children become chunks of their own)?
_DEFS = {
    "function_definition": False, "class_definition": True,  # python
    "function_declaration": False, "generator_function_declaration": False,  # js/ts/go
    "class_declaration": True, "abstract_class_declaration": True, "class": True,
    "method_definition": False, "interface_declaration": False, "enum_declaration": False,
    "type_alias_declaration": False, "module": True, "internal_module": True,
    "method_declaration": False, "type_declaration": False,  # go
    "function_item": False, "struct_item": False, "enum_item": False, "union_item": False,  # rust
    "trait_item": True, "impl_item": True, "mod_item": True, "macro_definition": False,
}
_WRAPPERS = {"decorated_definition", "export_statement"}
_BODIES = {"block", "class_body", "declaration_list", "statement_block", "object_type"}


def _name(node: Any) -> str:
    """The symbol name of a definition node."""
    t = node.type
    if t == "impl_item":
        ty = node.child_by_field_name("type")  # impl [Trait for] Type: named by the type
        return _text(ty) if ty is not None else "impl"
    if t == "method_declaration":  # go: func (r *T) m()
        recv = node.child_by_field_name("receiver")
        name = node.child_by_field_name("name")
        rtype = ""
        if recv is not None:
            rtype = re.sub(r"[\s*()&]", "", _text(recv).split()[-1]) if _text(recv).split() else ""
        return f"{rtype}.{_text(name)}" if rtype else _text(name)
    if t == "type_declaration":
        for c in node.named_children:
            n = c.child_by_field_name("name")
            if n is not None:
                return _text(n)
        return "type"
    n = node.child_by_field_name("name")
    if n is not None:
        return _text(n)
    if t in ("lexical_declaration", "variable_declaration"):
        for c in node.named_children:
            n = c.child_by_field_name("name")
            if n is not None:
                return _text(n)
    return t


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _unwrap(node: Any) -> Any | None:
    """The definition a child node stands for (through decorators and ``export``), or None."""
    inner = node
    while inner.type in _WRAPPERS:
        found = None
        for c in inner.named_children:
            if c.type in _DEFS or c.type in _WRAPPERS or _is_fn_binding(c):
                found = c
        if found is None:
            return None
        inner = found
    if inner.type in _DEFS or _is_fn_binding(inner):
        return inner
    return None


def _is_fn_binding(node: Any) -> bool:
    """``const f = () => ...`` / ``= function`` (JS/TS), a function in all but name."""
    if node.type not in ("lexical_declaration", "variable_declaration"):
        return False
    for c in node.named_children:
        v = c.child_by_field_name("value")
        if v is not None and v.type in ("arrow_function", "function_expression", "function"):
            return True
    return False


def _end_row(node: Any) -> int:
    row, col = node.end_point
    return row - 1 if col == 0 and row > node.start_point[0] else row


def _body(node: Any) -> Any | None:
    b = node.child_by_field_name("body")
    if b is not None:
        return b
    for c in node.named_children:
        if c.type in _BODIES:
            return c
    return None


def _syntax_segments(parser: Any, text: str, n: int) -> list[tuple[int, int, str]]:
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    segs: list[tuple[int, int, str]] = []
    _walk(tree.root_node, 0, n - 1, "", segs)
    return segs


def _walk(parent: Any, lo: int, hi: int, prefix: str, segs: list) -> None:
    """Partition lines ``lo..hi`` (0-based) of ``parent`` into definitions and the gaps between."""
    cursor = lo
    for child in parent.named_children:
        d = _unwrap(child)
        if d is None:
            continue
        s, e = child.start_point[0], min(_end_row(child), hi)
        if s < cursor or s > hi:
            continue  # shares a line with the previous definition: it stays in that chunk
        if s > cursor:
            segs.append((cursor, s - 1, prefix))
        sym = f"{prefix}.{_name(d)}" if prefix else _name(d)
        body = _body(d) if _DEFS.get(d.type) else None
        if body is not None and any(_unwrap(c) is not None for c in body.named_children):
            _walk(body, s, e, sym, segs)
        else:
            segs.append((s, e, sym))
        cursor = e + 1
    if cursor <= hi:
        segs.append((cursor, hi, prefix))


# ---------------------------------------------------------------- prose

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.])\1+\s*$")


def _sections(lines: list[str], starts: list[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """Sections from heading starts (line, title); text before the first heading is a section too."""
    segs = []
    bounds = starts if starts and starts[0][0] == 0 else [(0, ""), *starts]
    for i, (s, sym) in enumerate(bounds):
        e = bounds[i + 1][0] - 1 if i + 1 < len(bounds) else len(lines) - 1
        if e >= s:
            segs.append((s, e, sym))
    return segs


def _markdown_segments(lines: list[str]) -> list[tuple[int, int, str]]:
    starts, path, fenced = [], [], None
    for i, line in enumerate(lines):
        f = _FENCE.match(line)
        if f:
            fenced = None if fenced == f.group(1) else (fenced or f.group(1))
            continue
        m = None if fenced else _MD_HEADING.match(line)
        if m:
            level, title = len(m.group(1)), (m.group(2) or "").strip()
            path = path[: level - 1] + [title]
            starts.append((i, " > ".join(p for p in path if p)))
    return _sections(lines, starts)


def _rst_segments(lines: list[str]) -> list[tuple[int, int, str]]:
    starts = []
    for i in range(len(lines) - 1):
        title, under = lines[i].rstrip(), lines[i + 1]
        if title.strip() and not _RST_UNDERLINE.match(title) and _RST_UNDERLINE.match(under) \
                and len(under.rstrip()) >= len(title):
            over = i > 0 and _RST_UNDERLINE.match(lines[i - 1]) and lines[i - 1].rstrip() == under.rstrip()
            s = i - 1 if over else i
            if not starts or starts[-1][0] < s:
                starts.append((s, title.strip()))
    return _sections(lines, starts)
