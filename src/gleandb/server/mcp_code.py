"""The MCP tools over ``gleandb.code``: list indexed repositories, search, grep and diff a commit.

Read-only on purpose: indexing needs the repository on the server's disk and can take minutes,
so it stays ``glean code index`` (docs/mcp.md). A repository is addressed by its index name
(``proj`` for the registry collection ``code.proj``); the registry records the path it was
indexed from, and the tools open :class:`gleandb.code.CodeIndex` on that path, since resolving
revisions and path filters runs git there. A path that is gone is a tool error saying so.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Callable

from pydantic import Field

from mcp.server.mcpserver.exceptions import ToolError

REPO_NAME = re.compile(r"[A-Za-z0-9_-]+")
MAX_RESULTS = 1000
MAX_MATCHES = 5000
SNIPPET_MAX_LINES = 500

RepoName = Annotated[str, Field(description="The repository's index name, as code_repos lists it (e.g. \"click\"; "
                                            "\"code.click\" works too).", min_length=1)]
Rev = Annotated[str, Field(description="Revision: a branch alias recorded by the index (e.g. \"main\"), a sha, a "
                                       "tag or any git revision (HEAD~3) of an indexed commit.", min_length=1)]
PathSpec = Annotated[str | None, Field(
    description="Only files matching this: a file, a directory prefix (\"src/\"), or a glob where * crosses / "
                "(\"src/*.py\"). Omit for every file.")]


def _registries(client: Any) -> dict[str, Any]:
    """Index name -> registry collection, for every code index in the store."""
    out = {}
    for c in client.list_collections():
        name = c if isinstance(c, str) else c.name
        if not (name.startswith("code.") and REPO_NAME.fullmatch(name[5:])):
            continue
        col = c if not isinstance(c, str) else client.get_collection(name, embedding_function=None)
        if (col.metadata or {}).get("kind") == "gleandb-code":
            out[name[5:]] = col
    return out


def _repo_name(repo: str) -> str:
    name = repo[5:] if repo.startswith("code.") else repo
    if not REPO_NAME.fullmatch(name):
        raise ToolError(f"repo {repo!r} is not an index name (letters, digits, '-' and '_'); code_repos lists them")
    return name


def _open(client: Any, repo: str) -> Any:
    """The CodeIndex of ``repo`` on the path its registry records (read only: nothing is created)."""
    from gleandb.code import CodeIndex
    from gleandb.errors import NotFoundError

    name = _repo_name(repo)
    try:
        reg = client.get_collection(f"code.{name}", embedding_function=None)
    except NotFoundError:
        reg = None
    meta = (reg.metadata or {}) if reg is not None else {}
    if meta.get("kind") != "gleandb-code":
        known = ", ".join(sorted(_registries(client))) or "none"
        raise ToolError(f"NotFoundError: no code index named {name!r} in this store (indexed repositories: {known}); "
                        f"index one with: glean code index PATH")
    path = meta.get("repo_path") or ""
    if not os.path.isdir(path):
        raise ToolError(f"CodeError: repository {name!r} was indexed from {path!r}, which is not on this server's "
                        f"disk (moved or deleted?); its revisions and paths are resolved with git there. Re-index "
                        f"it where it now is: glean code index NEWPATH --name {name}")
    return CodeIndex(client, path, name=name, create=False)


def _commits(client: Any, name: str, cols: list[Any]) -> list[dict]:
    """The indexed commits of ``name`` (from the listed collections' metadata)."""
    prefix = f"code.{name}."
    out = []
    for col in cols:
        n = col if isinstance(col, str) else col.name
        if not (n.startswith(prefix) and re.fullmatch(r"[0-9a-f]{12}", n[len(prefix):])):
            continue
        if isinstance(col, str):
            col = client.get_collection(n, embedding_function=None)
        meta = col.metadata or {}
        out.append({"commit": meta.get("commit", n[len(prefix):]), "parent": meta.get("parent", ""),
                    "base": meta.get("base", ""), "complete": meta.get("complete") is True})
    return out


def register_code(server: Any, tool: Callable, client: Callable, read_only: Any) -> None:
    """code_repos / code_search / code_grep / code_diff, registered with ``tool`` (mcp.py's
    wrapper: answers made JSON-ready, expected errors turned into tool errors)."""
    import json

    @tool(read_only)
    def code_repos() -> dict:
        """The git repositories indexed in this store with `glean code index`: for each, its index name (the `repo`
        argument of the other code_ tools), the path it was indexed from (and whether that path exists here),
        its branch aliases (branch -> commit sha) and its indexed commits (sha, parent, the commit it was forked
        from, whether indexing finished)."""
        c = client()
        cols = c.list_collections()
        repos = []
        for name, reg in sorted(_registries(c).items()):
            meta = reg.metadata or {}
            path = meta.get("repo_path") or ""
            ef = json.loads(meta["embedding"]) if meta.get("embedding") else {}
            repos.append({"repo": name, "repo_path": path, "repo_present": os.path.isdir(path),
                          "embedding_function": ef.get("name") if isinstance(ef, dict) else None,
                          "aliases": {k[len("alias:"):]: v for k, v in sorted(meta.items()) if k.startswith("alias:")},
                          "commits": _commits(c, name, cols)})
        return {"repos": repos}

    @tool(read_only)
    def code_search(
        repo: RepoName,
        question: Annotated[str, Field(description="What you are looking for, in words or code "
                                                   "(\"where are retries configured\", \"def parse_date\").",
                                       min_length=1)],
        rev: Rev = "HEAD",
        n_results: Annotated[int, Field(description="How many chunks to return.", ge=1, le=MAX_RESULTS)] = 10,
        path: PathSpec = None,
        changed_since: Annotated[str | None, Field(
            description="Only chunks added or modified between this indexed revision and `rev` (e.g. \"v1.2.0\", "
                        "\"HEAD~10\"). Omit for all chunks.")] = None,
        snippet_lines: Annotated[int, Field(description="Lines of each chunk's text to return (0: none).", ge=0,
                                            le=SNIPPET_MAX_LINES)] = 30,
    ) -> dict:
        """Hybrid search (meaning and exact words) over the code of one indexed commit. Each hit is a chunk (a
        function, a class, a Markdown section, a window of lines) with its path, 1-based start and end line, the
        enclosing symbol (e.g. "Group.command"), a fused score (higher = better) and a snippet of its text. Use
        code_grep for exact names and patterns."""
        ix = _open(client(), repo)
        sha = ix.resolve(rev)
        hits = ix.search(question, rev, n_results=n_results, changed_since=changed_since, path=path)
        out = []
        for h in hits:
            lines = (h.get("document") or "").split("\n")
            out.append({"path": h["path"], "start_line": h["start_line"], "end_line": h["end_line"],
                        "symbol": h.get("symbol", ""), "language": h.get("language"), "score": h["score"],
                        "snippet": "\n".join(lines[:snippet_lines]),
                        "snippet_truncated": len(lines) > snippet_lines})
        return {"repo": _repo_name(repo), "rev": rev, "commit": sha, "hits": out}

    @tool(read_only)
    def code_grep(
        repo: RepoName,
        pattern: Annotated[str, Field(description="Regular expression matched within each line, like `git grep -E` "
                                                  "(RE2 syntax: no look-around or backreferences; use \\b, not \\< "
                                                  "\\>).", min_length=1)],
        rev: Rev = "HEAD",
        path: PathSpec = None,
        ignore_case: Annotated[bool, Field(description="Match case-insensitively.")] = False,
        max_matches: Annotated[int, Field(description="At most this many matching lines in the answer.", ge=1,
                                          le=MAX_MATCHES)] = 200,
    ) -> dict:
        """Like `git grep -n -E` at an indexed commit: every line of the commit's files matching a regular
        expression, as "path:line:text" lines in `text` (1-based line numbers, sorted by path then line), exact
        and exhaustive. `matches` is the total count; `truncated` says whether `text` holds fewer."""
        ix = _open(client(), repo)
        sha = ix.resolve(rev)
        rows = ix.grep(pattern, rev, path=path, ignore_case=ignore_case)
        shown = rows[:max_matches]
        return {"repo": _repo_name(repo), "rev": rev, "commit": sha, "matches": len(rows),
                "files": len({p for p, _n, _t in rows}), "truncated": len(shown) < len(rows),
                "text": "\n".join(f"{p}:{n}:{t}" for p, n, t in shown)}

    @tool(read_only)
    def code_diff(
        repo: RepoName,
        a: Annotated[str, Field(description="The older indexed revision.", min_length=1)],
        b: Annotated[str, Field(description="The newer indexed revision.", min_length=1)],
        max_changes: Annotated[int, Field(description="At most this many changed chunks in the answer.", ge=1,
                                          le=MAX_MATCHES)] = 500,
    ) -> dict:
        """The chunks that changed from revision `a` to revision `b` (both indexed): status A (added), M (modified:
        same path and symbol, new text) or D (deleted), with path, symbol and 1-based line range (in `b`, or in
        `a` for deletions), sorted by path and line."""
        ix = _open(client(), repo)
        changes = ix.diff(a, b)
        return {"repo": _repo_name(repo), "a": ix.resolve(a), "b": ix.resolve(b), "count": len(changes),
                "truncated": len(changes) > max_changes,
                "changes": [{"status": ch.status, "path": ch.path, "start_line": ch.start_line,
                             "end_line": ch.end_line, "symbol": ch.symbol} for ch in changes[:max_changes]]}
