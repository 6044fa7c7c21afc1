"""The storage contract (local, memory, S3): atomic puts, conditional puts, logs never reopened."""

import pytest
from s3_server import s3_storage_for

from gleandb.storage.base import KeyNotFound, StorageError
from gleandb.storage.local import LocalStorage
from gleandb.storage.memory import MemoryStorage


@pytest.fixture(params=["local", "memory", "s3"])
def storage(request, tmp_path):
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        return s3_storage_for(server, server.new_bucket())
    return LocalStorage(str(tmp_path)) if request.param == "local" else MemoryStorage()


def test_put_get_list_delete(storage):
    storage.put("a/b/c.bin", b"xyz")
    storage.put("a/d.bin", b"1")
    assert storage.get("a/b/c.bin") == b"xyz"
    assert storage.get_range("a/b/c.bin", 1, 2) == b"yz"
    assert bytes(storage.get_buffer("a/b/c.bin")) == b"xyz"
    assert storage.list("a/") == ["a/b/c.bin", "a/d.bin"]
    storage.put("a/d.bin", b"2")
    assert storage.get("a/d.bin") == b"2"
    storage.delete("a/d.bin")
    storage.delete("a/d.bin")  # missing keys are ignored
    assert storage.list("a/") == ["a/b/c.bin"]
    with pytest.raises(KeyNotFound):
        storage.get("nope")


def test_put_if_absent_is_the_commit_primitive(storage):
    assert storage.put_if_absent("m/1.json", b"first")
    assert not storage.put_if_absent("m/1.json", b"second")
    assert storage.get("m/1.json") == b"first"


def test_log_append_and_read(storage):
    log = storage.open_log("w/1.log")
    log.append(b"ab")
    log.append(b"cd")
    log.sync()
    assert storage.read_log("w/1.log") == b"abcd"
    assert log.size == 4


def test_local_rejects_escaping_keys(tmp_path):
    s = LocalStorage(str(tmp_path))
    with pytest.raises(StorageError):
        s.put("../x", b"")


def test_local_cleans_temp_files(tmp_path):
    s = LocalStorage(str(tmp_path))
    (tmp_path / "k.bin.tmp-abc").write_bytes(b"half")
    assert s.list("") == []
    s.remove_temp_files()
    assert not (tmp_path / "k.bin.tmp-abc").exists()


def test_put_from_file(storage):
    def write(path):
        with open(path, "wb") as f:
            f.write(b"from a file")

    storage.put_from_file("x/y.bin", write)
    assert storage.get("x/y.bin") == b"from a file"
