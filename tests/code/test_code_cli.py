"""``glean code`` from the shell: index, grep, search, diff, errors, install-hook; and the module
over HTTP against a real ``glean run``."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

from gleandb.cli.main import main

from code_gitrepo import build


pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the code index runs git")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return build(tmp_path_factory.mktemp("git"))


def _run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_index_grep_search_diff(repo, tmp_path, capsys):
    path, shas, feature = repo
    store = str(tmp_path / "s")
    rc, out, err = _run(capsys, "code", "index", str(path), "--path", store, "--last", "4", "--embedding", "hashing")
    assert rc == 0 and "indexed 4 commit(s)" in out and "from scratch" in out and f"forked {shas[0][:12]}" in out
    assert "root commit" in err and "skipped logo.bin: binary" in err
    rc, out, err = _run(capsys, "code", "grep", str(path), "--path", store, "class [A-Z]", "--rev", "main")
    assert rc == 0 and out.splitlines() == ["app.py:8:class Group:", "web/app.js:3:export class Reader {"]
    rc, out, _ = _run(capsys, "code", "grep", str(path), "--path", store, "^class", "--in", "*.py")
    assert out.splitlines() == ["app.py:8:class Group:"]
    rc, out, _ = _run(capsys, "code", "grep", str(path), "--path", store, "zzzznothing")
    assert rc == 1 and out == ""
    rc, out, _ = _run(capsys, "code", "search", str(path), "--path", store, "read file path", "-n", "2")
    assert rc == 0 and out.splitlines()[0].startswith("web/app.js:")
    rc, out, _ = _run(capsys, "code", "diff", str(path), "--path", store, shas[0], shas[1])
    assert out.splitlines() == ["M app.py:13-17 Group.command", "A pkg/extra.py:1-2 extra"]
    rc, out, _ = _run(capsys, "code", "index", str(path), "--path", store, "--rev", feature)
    assert "[feature] forked" in out
    rc, _, err = _run(capsys, "code", "grep", str(path), "--path", store, "x", "--rev", "nope")
    assert rc == 1 and err.strip() == f"glean code: unknown revision 'nope' in {path}"
    rc, _, err = _run(capsys, "code", "grep", str(tmp_path), "--path", store, "x")
    assert rc == 1 and err.strip() == f"glean code: {tmp_path}: not a git repository"
    rc, _, err = _run(capsys, "code", "index", str(path), "--path", store, "--embedding", "default")
    assert rc == 1 and "embedding function" in err


@pytest.mark.parametrize("argv", [["grep", "x"], ["search", "a question"], ["diff", "HEAD~1", "HEAD"]])
def test_read_commands_create_nothing(repo, tmp_path, capsys, argv):
    path, _, _ = repo
    missing = tmp_path / "nonexistent"
    rc, _, err = _run(capsys, "code", argv[0], str(path), "--path", str(missing), *argv[1:])
    assert rc == 1 and err.strip() == f"glean code: {missing}: no such directory (nothing was created)"
    assert not missing.exists()
    store = tmp_path / "s"
    import gleandb

    gleandb.PersistentClient(str(store)).create_collection("other", embedding_function=None)
    rc, _, err = _run(capsys, "code", argv[0], str(path), "--path", str(store), *argv[1:])
    assert rc == 1
    assert err.strip() == f"glean code: {path} is not indexed in this store (no 'code.proj'); run: glean code index {path}"
    assert [c.name for c in gleandb.PersistentClient(str(store)).list_collections()] == ["other"]


def test_install_hook(repo, tmp_path, capsys):
    path, _, _ = repo
    rc, out, _ = _run(capsys, "code", "install-hook", str(path), "--path", str(tmp_path / "s"))
    hooks = [path / ".git" / "hooks" / n for n in ("post-commit", "post-checkout")]
    assert rc == 0 and all(h.exists() and os.access(h, os.X_OK) for h in hooks)
    body = hooks[0].read_text()
    assert "code index" in body and str(tmp_path / "s") in body and "--rev HEAD" in body
    hooks[1].write_text("#!/bin/sh\necho mine\n")
    rc, _, err = _run(capsys, "code", "install-hook", str(path), "--path", str(tmp_path / "s"))
    assert rc == 1 and "pass --force" in err and hooks[1].read_text() == "#!/bin/sh\necho mine\n"
    rc, _, _ = _run(capsys, "code", "install-hook", str(path), "--path", str(tmp_path / "s"), "--force")
    assert rc == 0 and "code index" in hooks[1].read_text()
    for h in hooks:
        h.unlink()


def feature_of(path) -> str:
    return subprocess.run(["git", "rev-parse", "feature"], cwd=path, capture_output=True, text=True,
                          check=True).stdout.strip()


@contextlib.contextmanager
def _glean_run(tmp_path, env=None):
    """A real ``glean run`` on a free loopback port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gleandb.cli.main", "run", "--path", str(tmp_path / "data"),
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a bound for a loaded machine, not a speed expectation
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def test_over_http(repo, tmp_path, capsys):
    """The module through HttpClient against glean run: index a chain, grep, search, aliases."""
    import gleandb
    from gleandb.code import CodeIndex
    from gleandb.embeddings.hashing import HashingEmbeddingFunction

    path, shas, _ = repo
    with _glean_run(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        client = gleandb.HttpClient(host="127.0.0.1", port=port)
        ix = CodeIndex(client, str(path), HashingEmbeddingFunction(64))
        reps = ix.index_last(len(shas), "main")
        assert [r.mode for r in reps] == ["scratch"] + ["fork"] * (len(shas) - 1)
        assert ix.aliases() == {"main": shas[-1]}
        assert ix.grep("class [A-Z]", "main") == [("app.py", 8, "class Group:"), ("web/app.js", 3, "export class Reader {")]
        assert ix.grep("def helper", shas[1]) == [("pkg/util.py", 1, "def helper(x):")]
        assert ix.grep("def helper", shas[2]) == []
        assert ix.search("read file path", "main", 3)[0]["path"] == "web/app.js"
        assert main(["code", "grep", str(path), "--url", f"http://127.0.0.1:{port}", "class [A-Z]"]) == 0
        assert capsys.readouterr().out.splitlines() == ["app.py:8:class Group:", "web/app.js:3:export class Reader {"]
        assert main(["code", "index", str(path), "--url", f"127.0.0.1:{port}", "--rev", feature_of(path)]) == 0
        assert ix.aliases()["feature"] == feature_of(path)


def test_url_with_tenant_database_and_token_from_the_environment(repo, tmp_path, capsys, monkeypatch):
    """--url with --tenant/--database and the token read from GLEAN_TOKEN (never an argument):
    the index lands in that tenant's database; without the token the server refuses, in one line."""
    import gleandb

    path, shas, _ = repo
    with _glean_run(tmp_path, env=dict(os.environ, GLEAN_AUTH_TOKENS="s3cret-token")) as url:
        port = int(url.rsplit(":", 1)[1])
        auth = {"Authorization": "Bearer s3cret-token"}
        httpx.post(f"{url}/api/v2/tenants", json={"name": "acme"}, headers=auth).raise_for_status()
        httpx.post(f"{url}/api/v2/tenants/acme/databases", json={"name": "prod"}, headers=auth).raise_for_status()

        monkeypatch.delenv("GLEAN_TOKEN", raising=False)
        assert main(["code", "index", str(path), "--url", url, "--tenant", "acme", "--database", "prod",
                     "--embedding", "hashing", "--quiet"]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("glean code:"), err

        monkeypatch.setenv("GLEAN_TOKEN", "s3cret-token")
        assert main(["code", "index", str(path), "--url", url, "--tenant", "acme", "--database", "prod",
                     "--embedding", "hashing", "--quiet"]) == 0
        capsys.readouterr()
        assert main(["code", "grep", str(path), "--url", url, "--tenant", "acme", "--database", "prod",
                     "class [A-Z]"]) == 0
        assert capsys.readouterr().out.splitlines() == ["app.py:8:class Group:", "web/app.js:3:export class Reader {"]
        # the default tenant holds no index of it: one line on stderr, non-zero exit
        assert main(["code", "grep", str(path), "--url", url, "class [A-Z]"]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("glean code:"), err
        with gleandb.HttpClient(host="127.0.0.1", port=port, headers=auth, tenant="acme", database="prod") as in_acme:
            assert any(col.name.startswith("code.") for col in in_acme.list_collections())
    # --tenant without --url is refused before anything happens
    assert main(["code", "grep", str(path), "--path", str(tmp_path / "nowhere"), "--tenant", "acme", "x"]) != 0
    assert "go with --url" in capsys.readouterr().err
