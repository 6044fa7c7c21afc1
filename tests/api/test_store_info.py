"""``gleandb.api.collection.store_info``: what ``glean info`` shows, read through the API."""

import pytest

import gleandb
from gleandb.api.collection import store_info
from gleandb.cli.main import main


def test_store_info_follows_writes_and_flushes(tmp_path):
    client = gleandb.PersistentClient(str(tmp_path / "s"))
    try:
        col = client.create_collection("notes", embedding_function=None, configuration={"hnsw": {"space": "ip"}})
        empty = store_info(col)
        assert empty["records"] == 0 and empty["dimension"] is None and empty["space"] == "ip"
        col.add(ids=["a", "b", "c"], embeddings=[[1.0, 2.0, 3.0]] * 3)
        client.flush()
        col.delete(ids=["b"])
        col.add(ids=["d"], embeddings=[[0.0, 0.0, 1.0]])  # in the memtable, beside the flushed segment
        info = store_info(col)
        assert info["records"] == 3 == col.count()
        assert info["dimension"] == 3
        assert info["segments"] == len(col._store.snapshot()) >= 2
        assert info["version"] > empty["version"]
    finally:
        client.close()


def test_glean_info_prints_it(tmp_path, capsys):
    client = gleandb.PersistentClient(str(tmp_path / "s"))
    client.create_collection("notes", embedding_function=None).add(ids=["a", "b"], embeddings=[[1.0, 2.0]] * 2)
    client.close()
    assert main(["info", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("notes ") and "records=2" in out and "dimension=2" in out and "space=l2" in out


def test_a_collection_on_a_server_has_no_store_to_describe():
    from gleandb.api.http_client import HttpCollection

    col = HttpCollection.__new__(HttpCollection)
    with pytest.raises(NotImplementedError, match="no local store"):
        store_info(col)
