"""The WAL keeps every whole batch and drops a torn tail, never half of a batch."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gleandb.engine.wal import WalBatch, WriteAheadLog, encode_batch, iter_records
from gleandb.storage.local import LocalStorage


def _batch(seq: int, n: int) -> WalBatch:
    rng = np.random.default_rng(seq)
    return WalBatch(
        seq=seq,
        put_ids=[f"id{seq}-{i}" for i in range(n)],
        put_rids=list(range(n)),
        put_embeddings=rng.standard_normal((n, 3)).astype(np.float32),
        put_documents=[f"doc {i}" if i % 2 else None for i in range(n)],
        put_metadatas=[{"k": i, "f": 1.5, "b": True, "l": ["x"]} if i % 3 else None for i in range(n)],
        put_uris=[None] * n,
        delete_ids=[f"gone{seq}"],
    )


def test_round_trip_keeps_types():
    b = _batch(7, 5)
    (back,) = list(iter_records(encode_batch(b)))
    assert back.seq == 7
    assert back.put_ids == b.put_ids
    assert back.put_metadatas == b.put_metadatas
    assert isinstance(back.put_metadatas[1]["f"], float) and isinstance(back.put_metadatas[1]["k"], int)
    np.testing.assert_array_equal(back.put_embeddings, b.put_embeddings)
    assert back.delete_ids == ["gone7"]


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 6), min_size=1, max_size=6), cut=st.floats(0, 1))
def test_torn_tail_yields_a_prefix_of_whole_batches(sizes, cut):
    batches = [_batch(i + 1, n) for i, n in enumerate(sizes)]
    data = b"".join(encode_batch(b) for b in batches)
    torn = data[: int(len(data) * cut)]
    got = list(iter_records(torn))
    assert [b.seq for b in got] == [b.seq for b in batches[: len(got)]]
    for g, b in zip(got, batches):
        assert g.put_ids == b.put_ids and g.delete_ids == b.delete_ids


def test_corrupt_byte_stops_replay_at_that_record():
    batches = [_batch(i + 1, 3) for i in range(4)]
    frames = [encode_batch(b) for b in batches]
    data = bytearray(b"".join(frames))
    pos = len(frames[0]) + len(frames[1]) + 12  # inside the third record's body
    data[pos] ^= 0xFF
    assert [b.seq for b in iter_records(bytes(data))] == [1, 2]


def test_replay_spans_files_and_skips_covered(tmp_path):
    storage = LocalStorage(str(tmp_path))
    wal = WriteAheadLog(storage, "c/")
    for s in (1, 2):
        wal.append(_batch(s, 2))
    wal.rotate()
    wal.append(_batch(3, 2))
    wal.close()
    again = WriteAheadLog(storage, "c/")
    assert [b.seq for b in again.replay(after_seq=1)] == [2, 3]
    # a file whose records are all covered by a manifest is deleted
    again.truncate_through(2)
    assert len(again.list_files()) == 1


def test_append_many_is_one_sync_and_all_or_nothing(tmp_path):
    storage = LocalStorage(str(tmp_path))
    wal = WriteAheadLog(storage, "c/")
    wal.append(_batch(1, 2))
    writer = wal._writer
    syncs = []
    real_sync = writer.sync

    def sync():
        syncs.append(writer.size)
        if len(syncs) == 2:
            raise OSError("injected")
        real_sync()

    writer.sync = sync
    wal.append_many([_batch(2, 1), _batch(3, 4), _batch(4, 0)])
    assert len(syncs) == 1  # three records, one sync
    size = writer.size
    with pytest.raises(OSError, match="injected"):
        wal.append_many([_batch(5, 2), _batch(6, 2)])
    assert writer.size == size  # both records cut off again
    wal.close()
    assert [b.seq for b in WriteAheadLog(storage, "c/").replay(after_seq=0)] == [1, 2, 3, 4]
