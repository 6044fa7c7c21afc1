"""``glean code``: index a git repository per commit and search it (``gleandb.code``).

``index`` / ``search`` / ``grep`` / ``diff`` / ``install-hook``. The store is ``--path DIR``
(embedded) or ``--url http://host:port`` (a ``glean run`` server). Output is plain lines for
the shell: ``grep`` prints ``path:line:text`` as ``git grep -n`` does, ``search`` prints
``path:start-end symbol`` and a snippet. Notes (a commit built from scratch and why, skipped
files, a moved repository) go to stderr.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from urllib.parse import urlparse

HOOK_MARK = "# installed by glean code install-hook"


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("repo", metavar="REPO", help="path of the git repository")
    p.add_argument("--path", default=None, help="store directory (default ./data)")
    p.add_argument("--url", default=None, help="a glean run server, e.g. http://localhost:8000 (instead of --path)")
    _server_args(p)
    p.add_argument("--name", default=None, help="index name (default: the repository's directory name)")
    p.add_argument("--embedding", choices=["default", "hashing"], default=None,
                   help="embedding function of a new index: default (all-MiniLM-L6-v2) or hashing "
                   "(no model; words only). Default: the one the index was built with, else default")


def _server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", default=None, help="with --url: the tenant (default default_tenant)")
    p.add_argument("--database", default=None, help="with --url: the database (default default_database)")
    p.add_argument("--token-env", default="GLEAN_TOKEN", metavar="NAME",
                   help="with --url: the environment variable holding the server's token, sent as "
                   "'Authorization: Bearer ...' when set (default GLEAN_TOKEN; never pass a secret as an argument)")


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("code", help="index a git repository per commit; search and grep any commit",
                       description="A code index per git commit and branch, each forked from its parent's. "
                       "See docs/code.md.")
    csub = p.add_subparsers(dest="code_command", required=True)

    ix = csub.add_parser("index", help="index commits (default: HEAD)")
    _store_args(ix)
    which = ix.add_mutually_exclusive_group()
    which.add_argument("--rev", default=None, help="the commit to index (default HEAD)")
    which.add_argument("--branches", action="store_true", help="every local branch's tip")
    ix.add_argument("--last", type=int, default=None, metavar="N",
                    help="the last N first-parent commits (up to --rev, or of each branch with --branches)")
    ix.add_argument("--max-file-bytes", type=int, default=1 << 20, help="skip larger files (default 1 MiB)")
    ix.add_argument("--quiet", "-q", action="store_true", help="print only the summary line")
    ix.set_defaults(func=_closing_http(cmd_index))

    se = csub.add_parser("search", help="hybrid search at a commit")
    _store_args(se)
    se.add_argument("question")
    se.add_argument("--rev", default="HEAD", help="commit or branch (default HEAD)")
    se.add_argument("-n", "--n-results", type=int, default=10)
    se.add_argument("--changed-since", default=None, metavar="REV",
                    help="only chunks added or changed between REV and --rev")
    se.add_argument("--in", dest="in_path", default=None, metavar="GLOB", help="only paths matching GLOB")
    se.set_defaults(func=_closing_http(cmd_search))

    gr = csub.add_parser("grep", help="regex search at a commit, like git grep -n -E")
    _store_args(gr)
    gr.add_argument("pattern")
    gr.add_argument("--rev", default="HEAD", help="commit or branch (default HEAD)")
    gr.add_argument("--in", dest="in_path", default=None, metavar="GLOB",
                    help="only paths matching GLOB (a glob, a file or a directory)")
    gr.add_argument("-i", "--ignore-case", action="store_true")
    gr.set_defaults(func=_closing_http(cmd_grep))

    df = csub.add_parser("diff", help="chunks that changed between two indexed commits")
    _store_args(df)
    df.add_argument("old")
    df.add_argument("new")
    df.set_defaults(func=_closing_http(cmd_diff))

    hk = csub.add_parser("install-hook", help="index HEAD after every commit and checkout")
    hk.add_argument("repo", metavar="REPO")
    hk.add_argument("--path", default=None, help="store directory the hook indexes into (default ./data, absolute)")
    hk.add_argument("--url", default=None)
    _server_args(hk)
    hk.add_argument("--force", action="store_true", help="overwrite existing hooks")
    hk.set_defaults(func=cmd_install_hook)


_http_clients: list = []  # HTTP clients opened by the running command, closed when it ends


def _closing_http(cmd):
    """``cmd`` closing the HTTP clients it opened when it returns (``glean code`` also runs
    in-process, from tests and tools, where a dropped client would leave its sockets open)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return cmd(args)
        finally:
            while _http_clients:
                _http_clients.pop().close()

    run.__name__ = cmd.__name__
    return run


def _client(args: argparse.Namespace, create: bool):
    import gleandb

    if args.url and args.path:
        raise ValueError("give --path or --url, not both")
    if args.url:
        u = urlparse(args.url if "://" in args.url else "http://" + args.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"--url must be http://host:port, got {args.url!r}")
        token = os.environ.get(args.token_env) if args.token_env else None
        client = gleandb.HttpClient(host=u.hostname, port=u.port or (443 if u.scheme == "https" else 80),
                                    ssl=u.scheme == "https",
                                    headers={"Authorization": f"Bearer {token}"} if token else None,
                                    tenant=args.tenant or gleandb.DEFAULT_TENANT,
                                    database=args.database or gleandb.DEFAULT_DATABASE)
        _http_clients.append(client)
        return client
    if args.tenant or args.database:
        raise ValueError("--tenant and --database go with --url (an embedded store has the default ones)")
    if not create:  # search, grep, diff only read: never create a store
        from gleandb.cli.main import _require_store

        _require_store(args.path or "./data")
    return gleandb.PersistentClient(args.path or "./data")


def _index(args: argparse.Namespace, log=None, create: bool = False):
    from gleandb.code import CodeIndex

    ef = None
    if args.embedding == "hashing":
        from gleandb.embeddings.hashing import HashingEmbeddingFunction

        ef = HashingEmbeddingFunction(256)
    elif args.embedding == "default":
        from gleandb.embeddings.functions import DefaultEmbeddingFunction

        ef = DefaultEmbeddingFunction()
    note = log or (lambda m: print(f"glean code: {m}", file=sys.stderr))
    return CodeIndex(_client(args, create), args.repo, ef, name=args.name, log=note,
                     max_file_bytes=getattr(args, "max_file_bytes", 1 << 20), create=create)


def cmd_index(args: argparse.Namespace) -> int:
    ix = _index(args, create=True)
    if args.branches:
        reports = ix.index_branches(args.last or 1)
    elif args.last is not None:
        reports = ix.index_last(args.last, args.rev or "HEAD")
    else:
        reports = [ix.index_rev(args.rev or "HEAD")]
    for r in reports:
        if r.note:
            print(f"glean code: {r.note}", file=sys.stderr)
        for path, why in r.skipped:
            print(f"glean code: skipped {path}: {why}", file=sys.stderr)
        if not args.quiet:
            alias = f" [{', '.join(r.aliases)}]" if r.aliases else ""
            how = {"fork": f"forked {r.base[:12]}", "scratch": "from scratch", "exists": "already indexed"}[r.mode]
            print(f"{r.commit[:12]}{alias} {how}: {r.files} files, {r.chunks_added} chunks added, "
                  f"{r.embedded} embedded, {r.reused} reused, {len(r.skipped)} skipped, {r.seconds:.2f}s")
    emb, reu = sum(r.embedded for r in reports), sum(r.reused for r in reports)
    new = sum(1 for r in reports if r.mode != "exists")
    print(f"indexed {new} commit(s) ({len(reports) - new} already indexed): {emb} chunks embedded, {reu} reused")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    ix = _index(args)
    hits = ix.search(args.question, args.rev, args.n_results, changed_since=args.changed_since, path=args.in_path)
    for h in hits:
        print(f"{h['path']}:{h['start_line']}-{h['end_line']} {h['symbol']}".rstrip())
        lines = [ln for ln in h["document"].split("\n") if ln.strip()][:3]
        for ln in lines:
            print(f"    {ln[:160]}")
    if not hits:
        print("no results", file=sys.stderr)
    return 0


def cmd_grep(args: argparse.Namespace) -> int:
    ix = _index(args)
    rows = ix.grep(args.pattern, args.rev, args.in_path, args.ignore_case)
    out = sys.stdout
    for path, line, text in rows:
        out.write(f"{path}:{line}:{text}\n")
    return 0 if rows else 1  # as git grep: 1 when nothing matched


def cmd_diff(args: argparse.Namespace) -> int:
    ix = _index(args)
    for c in ix.diff(args.old, args.new):
        print(f"{c.status} {c.path}:{c.start_line}-{c.end_line} {c.symbol}".rstrip())
    return 0


def cmd_install_hook(args: argparse.Namespace) -> int:
    import shlex

    from gleandb.code.git import Repo

    repo = Repo(args.repo)
    hooks = os.path.join(repo.git_dir, "hooks")
    os.makedirs(hooks, exist_ok=True)
    targets = [os.path.join(hooks, n) for n in ("post-commit", "post-checkout")]
    clash = [t for t in targets if os.path.exists(t) and not args.force]
    if clash:
        raise ValueError(f"{clash[0]} exists; pass --force to overwrite it (nothing was written)")
    if args.url:
        store = f"--url {shlex.quote(args.url)}"
        for flag, value in (("--tenant", args.tenant), ("--database", args.database)):
            if value:
                store += f" {flag} {shlex.quote(value)}"
        if args.token_env != "GLEAN_TOKEN":  # the hook reads the token from the environment, never from the file
            store += f" --token-env {shlex.quote(args.token_env)}"
    else:
        if args.tenant or args.database:
            raise ValueError("--tenant and --database go with --url (an embedded store has the default ones)")
        store = f"--path {shlex.quote(os.path.abspath(args.path or './data'))}"
    glean = shlex.quote(os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "glean")) \
        if os.path.basename(sys.argv[0]) == "glean" else "glean"
    body = (f"#!/bin/sh\n{HOOK_MARK}\n"
            f"# post-checkout gets 3 arguments; index only branch checkouts ($3 = 1)\n"
            f"if [ \"$#\" -eq 3 ] && [ \"$3\" != 1 ]; then exit 0; fi\n"
            f"{glean} code index {shlex.quote(repo.path)} {store} --rev HEAD --quiet "
            f">>{shlex.quote(os.path.join(repo.git_dir, 'glean-code.log'))} 2>&1 &\n"
            f"exit 0\n")
    for t in targets:
        with open(t, "w") as f:
            f.write(body)
        os.chmod(t, os.stat(t).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        print(f"wrote {t}")
    return 0
