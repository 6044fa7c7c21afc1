"""The code-index MCP tools (code_repos, code_search, code_grep, code_diff) on a small git
repository indexed in the test: hits carry lines and symbols, grep equals ``git grep -n``,
and unknown repositories, revisions and bad patterns are tool errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_support import Client, call, error, ok, run

from gleandb.code import CodeIndex
from gleandb.embeddings.hashing import HashingEmbeddingFunction
from gleandb.server.mcp import LocalBackend, build_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "code"))
from code_gitrepo import ENV, build, git  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the code index runs git")

CODE_TOOLS = {"code_repos", "code_search", "code_grep", "code_diff"}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """(backend, repo path, main commits oldest first, feature tip): main's history and feature indexed."""
    path, shas, feature = build(tmp_path_factory.mktemp("git"))
    backend = LocalBackend(str(tmp_path_factory.mktemp("store")))
    ix = CodeIndex(backend.client(), str(path), HashingEmbeddingFunction(64))
    ix.index_last(len(shas), "main")
    ix.index_commit(feature)
    yield backend, path, shas, feature
    backend.close()


def _git_grep(repo: Path, rev: str, *args: str, paths: tuple[str, ...] = ()) -> str:
    """``git grep -n -E`` at ``rev``, without the ``rev:`` prefix it puts on each line."""
    p = subprocess.run(["git", "grep", "-n", "-E", *args, rev, "--", *paths], cwd=repo, env=ENV, capture_output=True,
                       text=True)
    assert p.returncode in (0, 1), p.stderr
    prefix = f"{rev}:"
    return "\n".join(line[len(prefix):] for line in p.stdout.splitlines())


def _calls(backend, *calls):
    async def go():
        async with Client(build_server(backend)) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            return tools, [await call(c, name, **args) for name, args in calls]

    return run(go())


def test_tools_are_listed_read_only_with_schemas(indexed):
    backend, *_ = indexed
    tools, _ = _calls(backend)
    assert CODE_TOOLS <= set(tools)
    for name in CODE_TOOLS:
        t = tools[name]
        assert t.annotations.read_only_hint and not t.annotations.destructive_hint, name
        assert len(t.description) > 40
        for prop, schema in t.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{name}.{prop}"
    assert tools["code_search"].input_schema["required"] == ["repo", "question"]
    assert tools["code_grep"].input_schema["required"] == ["repo", "pattern"]


def test_repos_lists_aliases_and_commits(indexed):
    backend, path, shas, feature = indexed
    _, (r,) = _calls(backend, ("code_repos", {}))
    (repo,) = ok(r)["repos"]
    assert repo["repo"] == "proj" and repo["repo_path"] == str(path.resolve()) and repo["repo_present"]
    assert repo["aliases"] == {"main": shas[-1], "feature": feature}
    assert sorted(c["commit"] for c in repo["commits"]) == sorted([*shas, feature])
    assert all(c["complete"] for c in repo["commits"])
    assert repo["embedding_function"] == "gleandb_hashing"


def test_search_hits_have_lines_symbols_and_snippets(indexed):
    backend, path, shas, feature = indexed
    _, (top, only_pkg, changed) = _calls(
        backend,
        ("code_search", {"repo": "proj", "question": "Group invoke commands ctx", "rev": "main", "n_results": 3}),
        ("code_search", {"repo": "code.proj", "question": "extra TODO", "rev": "main", "path": "pkg/"}),
        ("code_search", {"repo": "proj", "question": "main argv verbose", "rev": "feature",
                         "changed_since": shas[2]}))
    got = ok(top)
    assert got["commit"] == shas[-1] and 1 <= len(got["hits"]) <= 3
    best = got["hits"][0]
    assert (best["path"], best["symbol"]) == ("app.py", "Group.invoke")
    lines = git(path, "show", f"{shas[-1]}:app.py").split("\n")
    assert best["snippet"] == "\n".join(lines[best["start_line"] - 1:best["end_line"]])
    assert [h["score"] for h in got["hits"]] == sorted((h["score"] for h in got["hits"]), reverse=True)
    assert {h["path"] for h in ok(only_pkg)["hits"]} == {"pkg/extra.py"}
    # since its fork point, feature changed main()'s signature and rewrote app.py from the first
    # version (undoing Group.command's change): only those two chunks can be hits
    assert {(h["path"], h["symbol"]) for h in ok(changed)["hits"]} == {("app.py", "main"), ("app.py", "Group.command")}


@pytest.mark.parametrize("args", [("def [a-z_]+\\(",), ("-i", "todo"), ("return",), ("word[0-3]$",)])
def test_grep_equals_git_grep(indexed, args):
    backend, path, shas, feature = indexed
    ignore_case = args[0] == "-i"
    pattern = args[-1]
    _, (r,) = _calls(backend, ("code_grep", {"repo": "proj", "pattern": pattern, "rev": shas[1],
                                              "ignore_case": ignore_case, "max_matches": 5000}))
    got = ok(r)
    expected = _git_grep(path, shas[1], *args)
    assert expected and got["text"] == expected
    assert got["matches"] == len(expected.split("\n")) and not got["truncated"]


def test_grep_path_filter_and_truncation(indexed):
    backend, path, shas, _ = indexed
    _, (in_pkg, few) = _calls(backend,
                              ("code_grep", {"repo": "proj", "pattern": "return", "rev": "main", "path": "*.py"}),
                              ("code_grep", {"repo": "proj", "pattern": "note", "rev": "main", "max_matches": 5}))
    assert ok(in_pkg)["text"] == _git_grep(path, shas[-1], "return", paths=("*.py",))
    f = ok(few)
    assert f["matches"] == 130 and f["truncated"] and len(f["text"].split("\n")) == 5


def test_diff_lists_changed_chunks(indexed):
    backend, _, shas, feature = indexed
    _, (r,) = _calls(backend, ("code_diff", {"repo": "proj", "a": "main", "b": "feature"}))
    got = ok(r)
    assert got["b"] == feature
    changes = {(c["status"], c["path"], c["symbol"]) for c in got["changes"]}
    assert ("M", "app.py", "main") in changes
    assert all(c["path"] in ("app.py", "web/app.js") for c in got["changes"])


def test_errors_are_tool_errors(indexed, tmp_path):
    backend, *_ = indexed
    _, results = _calls(
        backend,
        ("code_search", {"repo": "nope", "question": "x"}),
        ("code_grep", {"repo": "proj", "pattern": "x", "rev": "no-such-rev"}),
        ("code_grep", {"repo": "proj", "pattern": "(unclosed"}),
        ("code_grep", {"repo": "proj", "pattern": "\\<word"}),
        ("code_search", {"repo": "bad name!", "question": "x"}),
        ("code_diff", {"repo": "proj", "a": "main~3", "b": "HEAD~40"}),
        ("code_grep", {"repo": "proj", "pattern": "x", "max_matches": 0}),
        ("code_repos", {}))
    unknown, rev, unclosed, gnu, bad_name, bad_diff, bad_max, still = results
    assert "no code index named 'nope'" in error(unknown) and "proj" in error(unknown)
    assert "no-such-rev" in error(rev)
    assert "(unclosed" in error(unclosed)
    assert "\\<" in error(gnu)
    assert "bad name!" in error(bad_name)
    assert "HEAD~40" in error(bad_diff)
    assert "max_matches" in error(bad_max)
    assert ok(still)["repos"][0]["repo"] == "proj"  # the server kept working


def test_a_moved_repository_is_a_clear_error(tmp_path):
    (tmp_path / "git").mkdir()
    path, _shas, _feature = build(tmp_path / "git")
    backend = LocalBackend(str(tmp_path / "store"))
    try:
        CodeIndex(backend.client(), str(path), HashingEmbeddingFunction(64)).index_rev("main")
        shutil.move(str(path), str(tmp_path / "elsewhere"))
        _, (grep, repos) = _calls(backend, ("code_grep", {"repo": "proj", "pattern": "def"}), ("code_repos", {}))
        msg = error(grep)
        assert "not on this server's disk" in msg and str(path.resolve()) in msg and "--name proj" in msg
        assert ok(repos)["repos"][0]["repo_present"] is False
    finally:
        backend.close()
