"""The commit point on object storage: conditional creates, exactly one winner."""

import threading

import pytest
from s3_server import s3_storage_for

from gleandb.api.errors import WriterFencedError
from gleandb.engine import manifest as mf
from gleandb.storage.base import KeyNotFound

ROUNDS = 1000


def test_two_writers_racing_for_each_manifest_number_exactly_one_wins(s3_server, s3_bucket):
    a = s3_storage_for(s3_server, s3_bucket)
    b = s3_storage_for(s3_server, s3_bucket)
    barrier = threading.Barrier(2)
    outcome: dict[str, list] = {"a": [None] * ROUNDS, "b": [None] * ROUNDS}

    def writer(name, storage):
        for n in range(ROUNDS):
            barrier.wait()
            m = mf.Manifest(version=n + 1, wal_position=n, seq=n, forked_from={"writer": name})
            try:
                mf.publish(storage, "collections/c/", m)
                outcome[name][n] = True
            except WriterFencedError as e:
                assert f"{n + 1:020d}.json" in str(e) and "another writer" in str(e)
                outcome[name][n] = False

    threads = [threading.Thread(target=writer, args=x) for x in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = {"a": 0, "b": 0}
    for n in range(ROUNDS):
        assert outcome["a"][n] is not None and outcome["b"][n] is not None
        assert outcome["a"][n] != outcome["b"][n], f"round {n}: both or neither won"
        winner = "a" if outcome["a"][n] else "b"
        winners[winner] += 1
        stored = mf.Manifest.from_json(a.get(mf.manifest_key("collections/c/", n + 1)))
        assert stored.forked_from == {"writer": winner}  # the winner's bytes, never overwritten
    assert len(a.list("collections/c/manifests/")) == ROUNDS
    assert min(winners.values()) > 0  # both really raced


def test_a_log_on_object_storage_is_numbered_objects_and_a_second_writer_fails(s3_server, s3_bucket):
    a = s3_storage_for(s3_server, s3_bucket)
    b = s3_storage_for(s3_server, s3_bucket)
    log = a.open_log("catalog/log-00000000000000000001")
    log.append(b"one")
    log.sync()
    log.append(b"two")
    log.append(b"three")
    log.sync()  # one object for both appends
    assert a.read_log("catalog/log-00000000000000000001") == b"onetwothree"
    assert a.list("catalog/") == ["catalog/log-00000000000000000001"]  # parts show as one log
    assert a.size_of("catalog/log-00000000000000000001") == 11
    with pytest.raises(WriterFencedError, match="exists already"):
        b.open_log("catalog/log-00000000000000000001")
    # a writer that wrongly thinks it owns the log cannot create a record number already used
    from gleandb.storage.s3 import _ObjectLog

    intruder = _ObjectLog.__new__(_ObjectLog)
    intruder.__dict__.update(_s=b, _key="catalog/log-00000000000000000001", _n=1, _synced=3,
                             _buf=bytearray(b"other"), _broken=None)
    with pytest.raises(WriterFencedError, match="another writer"):
        intruder.sync()
    assert a.read_log("catalog/log-00000000000000000001") == b"onetwothree"
    a.delete("catalog/log-00000000000000000001")
    assert a.list("catalog/") == []
    with pytest.raises(KeyNotFound):
        a.read_log("catalog/log-00000000000000000001")


def test_ranges_and_missing_keys(s3_server, s3_bucket):
    s = s3_storage_for(s3_server, s3_bucket)
    s.put("seg/records.arrow", bytes(range(100)))
    assert s.get_range("seg/records.arrow", 90, 50) == bytes(range(90, 100))  # past the end: what is there
    assert s.get_range("seg/records.arrow", 200, 5) == b""
    assert s.size_of("seg/records.arrow") == 100
    before = s.head("seg/records.arrow")
    _data, etag = s.get_with_etag("seg/records.arrow")
    assert before == {"size": 100, "etag": etag}
    assert s.put_if_match("seg/records.arrow", b"new", "\"stale\"") is None  # If-Match refused
    assert s.get("seg/records.arrow") == bytes(range(100))
    assert s.put_if_match("seg/records.arrow", b"new", etag) not in (None, etag)
    assert s.head("seg/records.arrow")["size"] == 3
    assert s.exists("seg/records.arrow") and not s.exists("seg/nope")
    with pytest.raises(KeyNotFound):
        s.get("seg/nope")
    with pytest.raises(KeyNotFound):
        s.size_of("seg/nope")


def test_two_writers_racing_for_each_catalog_record_number_exactly_one_wins(s3_server, s3_bucket):
    """Two writers that both believe they own catalog log 1 (the lease normally prevents it)
    append record after record: each record number goes to exactly one of them."""
    from gleandb.storage.s3 import _ObjectLog

    rounds = 200
    key = "catalog/log-00000000000000000001"
    a = s3_storage_for(s3_server, s3_bucket)
    b = s3_storage_for(s3_server, s3_bucket)
    logs = {"a": a.open_log(key)}
    twin = _ObjectLog.__new__(_ObjectLog)  # b's view of the same log, opened "at the same time"
    twin.__dict__.update(_s=b, _key=key, _n=0, _synced=0, _buf=bytearray(), _broken=None)
    logs["b"] = twin
    barrier = threading.Barrier(2)
    won: dict[str, list[int]] = {"a": [], "b": []}

    def writer(name):
        log = logs[name]
        for n in range(1, rounds + 1):
            log._n = n - 1  # both aim at record n
            barrier.wait()
            log.append(f"{name}{n};".encode())
            try:
                log.sync()
                won[name].append(n)
            except WriterFencedError:
                log.truncate(log.size - len(f"{name}{n};"))

    threads = [threading.Thread(target=writer, args=(x,)) for x in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won["a"] + won["b"]) == list(range(1, rounds + 1))  # each number: one winner
    assert won["a"] and won["b"]  # both really raced
    records = a.read_log(key).decode().rstrip(";").split(";")
    assert len(records) == rounds
    assert [int(r[1:]) for r in records] == list(range(1, rounds + 1))
    assert all(int(r[1:]) in won[r[0]] for r in records)  # the stored record is the winner's
