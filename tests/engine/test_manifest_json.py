"""A manifest's JSON carries every field of ``Manifest`` and ``SegmentEntry`` (it is written
by hand, not with ``dataclasses.asdict``, so a field added later must be added there too)."""

import json
from dataclasses import fields

from gleandb.engine.manifest import Manifest, SegmentEntry


def _manifest() -> Manifest:
    return Manifest(
        version=3, wal_position=5, dimension=4, next_rid=9, seq=6, created_at=1.5,
        forked_from={"collection": "c", "version": 2},
        segments=[SegmentEntry("a", 3, True, None, 0, "segments/a/"),
                  SegmentEntry("b", 2, False, "masks/x.npy", 1, None, "AQ==")],
    )


def test_every_field_is_written_and_read_back():
    m = _manifest()
    d = json.loads(m.to_json())
    assert set(d) == {f.name for f in fields(Manifest)} | {"format"}
    assert set(d["segments"][1]) == {f.name for f in fields(SegmentEntry)}
    assert Manifest.from_json(m.to_json()) == m


def test_an_entry_without_an_inline_mask_writes_no_mask_key():
    d = json.loads(_manifest().to_json())
    assert "mask" not in d["segments"][0]
