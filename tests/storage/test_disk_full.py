"""A full disk (ENOSPC injected) fails the write with InsufficientStorageError, leaves no
temporary or partial file behind, changes nothing, and reads keep working."""

import errno
import os
import stat

import numpy as np
import pytest

import gleandb
from gleandb.errors import InsufficientStorageError


def _leftovers(root) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if ".tmp-" in f]


def _enospc():
    return OSError(errno.ENOSPC, "No space left on device")


def _fsync_fails_for_files(monkeypatch):
    """fsync of a regular file (a new object's data) hits a full disk; directories still sync,
    so the write gets as far as its temporary file."""
    real = os.fsync

    def fake_fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise _enospc()
        real(fd)

    monkeypatch.setattr(os, "fsync", fake_fsync)


@pytest.fixture
def store(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path))
    col = c.create_collection("full", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["alpha", "beta"])
    yield tmp_path, c, col
    c.close()


def _reopen(path):
    gleandb.ClientAPI.clear_system_cache()
    return gleandb.PersistentClient(str(path))


@pytest.mark.parametrize("where", ["write", "sync"])
def test_wal_append_on_full_disk_is_refused_and_not_replayed(store, monkeypatch, where):
    path, client, col = store
    real_write = os.write
    if where == "write":
        def fake_write(fd, data):  # half the record reaches the disk, then the disk is full
            real_write(fd, bytes(data[: max(1, len(data) // 2)]))
            raise _enospc()
        monkeypatch.setattr(os, "write", fake_write)
    else:  # the whole record is written but cannot be made durable
        def fake_sync(fd):
            raise _enospc()
        monkeypatch.setattr(os, "fdatasync", fake_sync)
    with pytest.raises(InsufficientStorageError) as e:
        col.add(ids=["c"], embeddings=[[0.5, 0.5]], documents=["gamma"])
    msg = str(e.value)
    assert str(path) in msg and "free" in msg and "not applied" in msg
    assert e.value.code() == 507
    monkeypatch.undo()
    # nothing changed, reads keep working, no temporary file left
    assert col.count() == 2 and sorted(col.get()["ids"]) == ["a", "b"]
    assert len(col.query(query_embeddings=[[0.5, 0.5]], n_results=5)["ids"][0]) == 2
    assert _leftovers(path) == []
    # once space is back, writes succeed; after a restart the refused write is not there
    col.add(ids=["d"], embeddings=[[0.2, 0.8]], documents=["delta"])
    client.close()
    c2 = _reopen(path)
    try:
        assert sorted(c2.get_collection("full").get()["ids"]) == ["a", "b", "d"]
    finally:
        c2.close()


def test_flush_on_full_disk_leaves_no_files_and_recovers(store, monkeypatch):
    path, client, col = store
    before = set(os.listdir(path / "segments")) if (path / "segments").exists() else set()

    _fsync_fails_for_files(monkeypatch)
    client.flush()  # the flush runs in the background: it fails there, the rows stay in the WAL
    monkeypatch.undo()
    assert _leftovers(path) == []
    after = set(os.listdir(path / "segments")) if (path / "segments").exists() else set()
    leftover_segments = [s for s in after - before if os.listdir(path / "segments" / s)]
    assert leftover_segments == []  # no partial segment files (records.arrow of 14 MB...)
    assert sorted(col.get()["ids"]) == ["a", "b"]
    assert col.get(ids=["a"], include=["documents"])["documents"] == ["alpha"]
    # space is back: the next flush also persists the segment that failed
    col.add(ids=["c"], embeddings=[[0.5, 0.5]], documents=["gamma"])
    client.flush()
    assert _leftovers(path) == []
    st = col._store
    assert st.persisted_position == st.seq  # the failed segment was written this time too
    assert any(os.listdir(path / "segments" / s) for s in os.listdir(path / "segments"))
    client.close()
    c2 = _reopen(path)
    try:
        col2 = c2.get_collection("full")
        assert sorted(col2.get()["ids"]) == ["a", "b", "c"]
        assert col2.get(ids=["b"], include=["documents"])["documents"] == ["beta"]
    finally:
        c2.close()


def test_put_on_full_disk_removes_its_temporary_file(tmp_path, monkeypatch):
    from gleandb.storage.local import LocalStorage

    s = LocalStorage(str(tmp_path))
    s.put("k/one", b"x" * 1000)

    _fsync_fails_for_files(monkeypatch)
    big = np.zeros(1 << 20, np.uint8).tobytes()
    with pytest.raises(InsufficientStorageError, match=str(tmp_path)):
        s.put("k/two", big)
    with pytest.raises(InsufficientStorageError):
        s.put_if_absent("k/three", big)
    with pytest.raises(InsufficientStorageError):
        s.put_from_file("k/four", lambda p: open(p, "wb").write(big))
    monkeypatch.undo()
    assert _leftovers(tmp_path) == []
    assert s.list("k/") == ["k/one"] and s.get("k/one") == b"x" * 1000
