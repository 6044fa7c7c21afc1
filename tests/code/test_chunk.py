"""Chunking: symbols per language, windows, and the partition property grep relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from gleandb.code.chunk import MAX_LINES, WINDOW, chunk_file, language_of, split_lines


def _symbols(path: str, text: str) -> list[tuple[int, int, str]]:
    return [(c.start_line, c.end_line, c.symbol) for c in chunk_file(path, text)]


def _assert_partition(path: str, text: str) -> None:
    chunks = chunk_file(path, text)
    lines = split_lines(text)
    assert [ln for c in chunks for ln in c.text.split("\n")] == lines
    assert all(a.end_line + 1 == b.start_line for a, b in zip(chunks, chunks[1:]))
    if chunks:
        assert chunks[0].start_line == 1 and chunks[-1].end_line == len(lines)
        assert max(c.end_line - c.start_line + 1 for c in chunks) <= MAX_LINES


def test_partition_on_real_sources():
    root = Path(__file__).resolve().parents[2]
    files = sorted(root.glob("src/gleandb/**/*.py")) + sorted(root.glob("docs/*.md"))
    assert len(files) > 40
    for f in files:
        _assert_partition(str(f.relative_to(root)), f.read_text())


@pytest.mark.parametrize("text", ["", "\n", "\n\n\n", "x", "a\r\nb\r\n", "no newline at end", "\x0cform\x1cfeed\n"])
def test_partition_edge_cases(text):
    for path in ("a.py", "a.md", "a.rst", "a.txt", "a.go"):
        _assert_partition(path, text)


def test_go_rust_typescript_symbols():
    go = "package main\n\ntype T struct {\n\tx int\n}\n\nfunc (t *T) Get() int {\n\treturn t.x\n}\n\nfunc main() {\n}\n"
    assert [s for _, _, s in _symbols("m.go", go)] == ["", "T", "T.Get", "main"]
    rs = "struct S;\n\nimpl Display for S {\n    fn fmt(&self) {}\n\n    fn other(&self) {}\n}\n\nfn main() {}\n"
    assert [s for _, _, s in _symbols("m.rs", rs)] == ["S", "S", "S.fmt", "S.other", "main"]
    assert _symbols("m.rs", rs)[3] == (6, 8, "S.other")  # the closing brace joins the last method
    ts = "interface I { a: number }\n\nexport class C implements I {\n  a = 1;\n  m(): void {}\n}\n"
    assert [s for _, _, s in _symbols("m.ts", ts)] == ["I", "C", "C.m"]
    assert language_of("m.tsx") == "tsx" and language_of("x.toml") == "toml" and language_of("Makefile") == "text"


def test_python_nesting_and_decorators():
    py = ("import x\n\n\n@dataclass\nclass A:\n    '''doc'''\n\n    @property\n    def p(self):\n        return 1\n\n"
          "    class Inner:\n        def q(self):\n            pass\n\n\n"
          "def f():\n    def g():\n        pass\n    return g\n")
    assert _symbols("m.py", py) == [(1, 3, ""), (4, 7, "A"), (8, 11, "A.p"), (12, 12, "A.Inner"),
                                 (13, 16, "A.Inner.q"), (17, 20, "f")]


def test_long_definitions_and_text_are_windowed():
    body = "".join(f"    x{i} = {i}\n" for i in range(400))
    chunks = chunk_file("big.py", "def big():\n" + body)
    assert {c.symbol for c in chunks} == {"big"} and len(chunks) == -(-401 // WINDOW)
    assert [(c.start_line, c.end_line) for c in chunk_file("n.txt", "l\n" * 130)] == [(1, 60), (61, 120), (121, 130)]


def test_markdown_and_rst_headings():
    md = "# T\n\n```\n# not a heading\n```\n## S\ntext\n"
    assert _symbols("a.md", md) == [(1, 5, "T"), (6, 7, "T > S")]
    rst = "Title\n=====\n\nintro\n\nPart\n----\n\nbody\n"
    assert _symbols("a.rst", rst) == [(1, 5, "Title"), (6, 9, "Part")]
