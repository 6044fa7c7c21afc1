"""New directories are made durable: every entry a put creates is fsync'd in its parent,
and only those (an existing ancestor's parent is not fsync'd again)."""

import os

from gleandb.storage import local
from gleandb.storage.local import LocalStorage


def test_new_directory_entries_are_fsynced_in_their_parents_and_only_those(tmp_path, monkeypatch):
    root = str(tmp_path)
    storage = LocalStorage(root)
    synced = []
    real = local._fsync_dir
    monkeypatch.setattr(local, "_fsync_dir", lambda p: (synced.append(os.path.relpath(p, root)), real(p))[1])
    storage.put("a/b/c.json", b"1")
    # b's entry in a, a's entry in the root, then c.json's entry in b
    assert synced == [os.path.join("a"), ".", os.path.join("a", "b")]
    synced.clear()
    storage.put("a/b/d/e/f.json", b"2")
    assert synced == [os.path.join("a", "b", "d"), os.path.join("a", "b"), os.path.join("a", "b", "d", "e")]
    synced.clear()
    storage.put("a/b/c2.json", b"3")  # existing directory: the file's entry only
    assert synced == [os.path.join("a", "b")]
    assert storage.get("a/b/d/e/f.json") == b"2"


def test_put_many_syncs_each_folder_once_and_every_file(tmp_path, monkeypatch):
    root = str(tmp_path)
    storage = LocalStorage(root)
    storage.put("seg/x", b"0")  # the folder exists
    dirs, files = [], []
    real_dir, real_fsync = local._fsync_dir, os.fsync
    monkeypatch.setattr(local, "_fsync_dir", lambda p: (dirs.append(os.path.relpath(p, root)), real_dir(p))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (files.append(fd), real_fsync(fd))[1])
    storage.put_many((f"seg/{n}", n.encode()) for n in ("a", "b", "c"))
    monkeypatch.undo()
    assert dirs == ["seg"] and len(files) == 3 + 1, files  # each file, and the folder once
    assert [storage.get(f"seg/{n}") for n in ("a", "b", "c")] == [b"a", b"b", b"c"]
