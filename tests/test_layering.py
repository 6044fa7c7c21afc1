"""The layering of docs/ARCHITECTURE.md ("Layout"), checked from the source.

Every module's imports are read with ``ast`` (module level, under ``TYPE_CHECKING`` and
inside functions alike) and two rules are checked:

* dependencies point downward: a module imports only modules of its own layer or of a
  lower one (``LAYERS`` below); ``errors``, ``deadlines`` and ``budgets`` are leaves any
  layer may import, and they import only each other;
* no import cycles among gleandb modules at module level (imports inside functions are
  left out of this rule: they run after every module has loaded).

A dependency that must stay against the rule goes into ``ALLOWED`` with its reason.
``GLEANDB_LAYERING_ROOT`` points the test at another checkout's ``src/gleandb`` (to see
it fail on a tree from before the layering was fixed).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("GLEANDB_LAYERING_ROOT", Path(__file__).resolve().parents[1] / "src" / "gleandb"))

LEAVES = {"gleandb.errors", "gleandb.deadlines", "gleandb.budgets"}

# layer of each top-level part of the package; a module may import its own layer or lower
LAYERS = {
    "expression": 1, "index": 1, "storage": 1, "catalog": 1, "embeddings": 1,
    "engine": 2,
    "retrieval": 3,
    "api": 4,
    "code": 5, "memory": 5, "evals": 5,
    # the public surface: the package itself, gleandb.rerank (re-exports), server, CLI
    "gleandb": 6, "rerank": 6, "server": 6, "cli": 6,
}

# (importer, imported): reason. Keep it short; every entry is a debt.
ALLOWED: dict[tuple[str, str], str] = {}

# Above the API (server, CLI, code, memory, evals) work goes through ``gleandb.api`` (and
# retrieval's re-rankers and chat clients), not into the engine, its indexes or storage.
BELOW_THE_API = ("gleandb.engine", "gleandb.index", "gleandb.storage", "gleandb.catalog")
ALLOWED_SKIPS: dict[tuple[str, str], str] = {
    ("gleandb", "gleandb.catalog.catalog"): "re-exports chromadb's DEFAULT_TENANT / DEFAULT_DATABASE",
    ("gleandb.evals.labels", "gleandb.storage.base"): "the label log is an append-only log of its own "
                                                      "in the store's storage, like the WAL",
    ("gleandb.evals.labels", "gleandb.storage.framing"): "the label log's records are framed as the WAL's",
    ("gleandb.server.app", "gleandb.index.depth"): "a request body's nesting depth is checked before parsing",
}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["gleandb", *path.relative_to(ROOT).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


MODULES = _modules()


def _targets(module: str, is_pkg: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The gleandb modules an import statement loads (``from pkg import mod`` names mod)."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_pkg else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        for a in node.names:
            sub = f"{prefix}.{a.name}"
            names.append(sub if sub in MODULES else prefix)
    out = []
    for name in names:
        if name.split(".")[0] != "gleandb":
            continue
        while name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name != module:
            out.append(name)
    return out


def _edges() -> list[tuple[str, str, bool, int]]:
    """(importer, imported, at module level, line) for every gleandb import."""
    edges = []
    for module, (path, is_pkg) in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))

        def visit(node: ast.AST, top: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for t in _targets(module, is_pkg, child):
                        edges.append((module, t, top, child.lineno))
                inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                visit(child, inner)

        visit(tree, True)
    return edges


def layer(module: str) -> int | None:
    """The module's layer (None: a leaf)."""
    if module in LEAVES:
        return None
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else parts[0]]


def test_every_part_of_the_package_has_a_layer():
    unknown = sorted({m for m in MODULES if m not in LEAVES and (m.split(".") + [m])[1] not in LAYERS})
    assert not unknown, f"modules with no layer in LAYERS: {unknown}"


def test_imports_point_downward():
    wrong = []
    for src, dst, _top, line in _edges():
        if (src, dst) in ALLOWED:
            continue
        ls, ld = layer(src), layer(dst)
        if ld is None:
            continue  # anyone may import a leaf
        if ls is None or ld > ls:
            wrong.append(f"{src}:{line} imports {dst} (layer {ld} above {'leaf' if ls is None else ls})")
    assert not wrong, "upward imports:\n" + "\n".join(sorted(set(wrong)))


def test_allowed_exceptions_are_still_needed():
    edges = {(s, d) for s, d, _t, _l in _edges()}
    stale = [pair for pair in [*ALLOWED, *ALLOWED_SKIPS] if pair not in edges]
    assert not stale, f"ALLOWED / ALLOWED_SKIPS list imports that no longer exist: {stale}"


def test_layers_above_the_api_do_not_reach_below_it():
    """server/mcp.py once compiled regexes with ``index.filters`` and embedded with
    ``retrieval.hybrid`` internals; such needs get a public function in ``api``."""
    wrong = []
    for src, dst, _top, line in _edges():
        ls = layer(src)
        if ls is None or ls <= LAYERS["api"] or (src, dst) in ALLOWED_SKIPS:
            continue
        if dst.startswith(BELOW_THE_API):
            wrong.append(f"{src}:{line} imports {dst}")
    assert not wrong, "imports that skip the API:\n" + "\n".join(sorted(set(wrong)))


def test_writes_are_resolved_in_the_engine():
    """api/collection.py once built WAL batches itself (issue 16); resolving a write into a
    batch is ``gleandb.engine.writes``' job, so nothing above the engine names the WAL."""
    wrong = [f"{src}:{line} imports {dst}" for src, dst, _top, line in _edges()
             if dst == "gleandb.engine.wal" and not src.startswith("gleandb.engine")]
    assert not wrong, "\n".join(sorted(set(wrong)))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_at_module_level():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for src, dst, top, _line in _edges():
        if top:
            graph[src].add(dst)
    cycles = _cycles(graph)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_function_level_and_type_checking_imports(tmp_path, monkeypatch):
    """The rules must not be dodged by moving an import into a function or TYPE_CHECKING."""
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from gleandb.api.collection import Collection\n"
        "def f():\n    from ..retrieval import hybrid\n"
    )
    tree = ast.parse(code)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found += _targets("gleandb.engine.x", False, node)
    assert "gleandb.api.collection" in found and "gleandb.retrieval.hybrid" in found
    assert layer("gleandb.engine.x") < layer("gleandb.api.collection")


@pytest.mark.parametrize("module", ["gleandb.errors", "gleandb.deadlines", "gleandb.budgets"])
def test_leaves_exist(module):
    assert module in MODULES
