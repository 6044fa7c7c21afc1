"""One writer process per directory; a second one gets an error naming path and holder."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gleandb

HOLDER = textwrap.dedent(
    """
    import sys, time, gleandb
    c = gleandb.PersistentClient(sys.argv[1])
    col = c.get_or_create_collection("shared")
    col.add(ids=["first"], embeddings=[[1.0, 2.0]])
    print("READY", flush=True)
    sys.stdin.readline()                       # wait until the other process has tried
    col.add(ids=["second"], embeddings=[[3.0, 4.0]])
    print("COUNT", col.count(), flush=True)
    """
)


def test_second_process_gets_clear_error_and_holder_is_unaffected(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "READY"
        with pytest.raises(gleandb.errors.StoreLockedError) as e:
            gleandb.PersistentClient(str(tmp_path))
        msg = str(e.value)
        assert str(tmp_path) in msg and f"pid {proc.pid}" in msg
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "COUNT 2"
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0
    # once the holder is gone the store opens and holds both writes
    c = gleandb.PersistentClient(str(tmp_path))
    assert sorted(c.get_collection("shared").get()["ids"]) == ["first", "second"]
    c.close()


def test_same_process_clients_share_one_engine(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    a = gleandb.PersistentClient(str(tmp_path))
    b = gleandb.PersistentClient(str(tmp_path))
    a.create_collection("one").add(ids=["x"], embeddings=np.ones((1, 3)))
    assert b.get_collection("one").count() == 1
    a.close()
    assert b.get_collection("one").count() == 1  # still open through b
    b.close()
