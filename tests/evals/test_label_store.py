"""LabelStore: durable labels (reopen, torn tails, kill -9), several labelers, kappa, export."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from gleandb.evals.labels import (
    COMPACT_FILES, LabelError, LabelStore, agreement, cohen_kappa, combine_grades, dump_golden, parse_golden,
)
from gleandb.storage.local import LocalStorage
from gleandb.storage.memory import MemoryStorage

GOLDEN = [
    {"query_id": "q1", "query": "how do I catch an exception", "relevant": {"try-0": 3}, "split": "test",
     "source": "generated", "status": "unreviewed", "provenance": {"model": "fake", "seed": 7}, "x-extra": [1, 2]},
    {"query_id": "q2", "query": "what does lambda do", "relevant": {}, "split": "tune"},
]


def _store(tmp_path, cid="c-1") -> LabelStore:
    return LabelStore(LocalStorage(str(tmp_path / "store")), cid)


def test_labels_and_edits_survive_reopen(tmp_path):
    s = _store(tmp_path)
    assert s.import_golden(GOLDEN) == {"added": 2, "skipped": 0}
    s.label("q1", "try-0", 3, "ann")
    s.label("q1", "try-1", 1, "ann")
    s.label("q1", "try-1", 2, "ann")  # ann changes her mind: the last write wins
    s.query_action("q2", "edit", "bob", "what is a lambda expression")
    s.query_action("q1", "accept", "bob")
    added = s.add_query("how to open a file", "bob")
    s.label(added.query_id, "open-0", 2, "bob")
    s.close()

    r = _store(tmp_path)
    assert r.grades_of("q1", "ann") == {"try-0": 3, "try-1": 2}
    assert r.queries["q2"].query == "what is a lambda expression"
    assert r.queries["q2"].original_query == "what does lambda do" and r.queries["q2"].status == "edited"
    assert r.queries["q1"].status == "accepted"
    assert r.queries[added.query_id].query == "how to open a file"
    assert r.grades_of(added.query_id, "bob") == {"open-0": 2}
    # a second import of the same file adds nothing and keeps the edits
    assert r.import_golden(GOLDEN) == {"added": 0, "skipped": 2}
    assert r.queries["q2"].query == "what is a lambda expression"
    # another collection id sees nothing
    assert _store(tmp_path, "c-2").queries == {}


def test_memory_storage_works_too():
    storage = MemoryStorage()
    s = LabelStore(storage, "c")
    s.import_golden(GOLDEN)
    s.label("q1", "d", 0, "ann")
    assert LabelStore(storage, "c").grades_of("q1", "ann") == {"d": 0}


def test_torn_tail_is_dropped_not_half_applied(tmp_path):
    s = _store(tmp_path)
    s.import_golden(GOLDEN)
    s.label("q1", "a", 3, "ann")
    s.close()
    logs = [k for k in s.storage.list(s.prefix)]
    path = os.path.join(str(tmp_path / "store"), logs[-1])
    good = os.path.getsize(path)
    s2 = _store(tmp_path)
    s2.label("q1", "b", 2, "ann")
    s2.close()
    # tear the last record of the newest file: keep its header and half its body
    newest = os.path.join(str(tmp_path / "store"), [k for k in s2.storage.list(s2.prefix)][-1])
    data = open(newest, "rb").read()
    open(newest, "wb").write(data[: len(data) // 2])
    r = _store(tmp_path)
    assert r.grades_of("q1", "ann") == {"a": 3}
    assert os.path.getsize(path) == good
    r.label("q1", "c", 1, "ann")  # appends go to a new file after the torn one
    assert _store(tmp_path).grades_of("q1", "ann") == {"a": 3, "c": 1}


def test_many_files_are_compacted_on_open(tmp_path):
    s = _store(tmp_path)
    s.import_golden(GOLDEN)
    s.close()
    for i in range(COMPACT_FILES + 2):
        t = _store(tmp_path)
        t.label("q1", f"d{i % 3}", i % 4, "ann")
        t.close()
    r = _store(tmp_path)
    assert len(r._files()) <= COMPACT_FILES  # without compaction there would be one per open
    want = {f"d{i % 3}": i % 4 for i in range(COMPACT_FILES + 2)}  # last write per doc
    assert r.grades_of("q1", "ann") == want
    assert set(r.queries) == {"q1", "q2"}


def test_two_labelers_on_one_pair_are_both_kept(tmp_path):
    s = _store(tmp_path)
    s.import_golden(GOLDEN)
    s.label("q1", "try-0", 3, "ann")
    s.label("q1", "try-0", 1, "bob")
    s.label("q1", "try-0", 2, "bob")
    r = _store(tmp_path)
    assert r.labels[("q1", "try-0")] == {"ann": 3, "bob": 2}
    p = r.progress()
    assert p["pairs_labeled_twice"] == 1 and p["per_labeler"] == {"ann": 1, "bob": 1}
    r.label("q1", "try-0", None, "bob")  # clearing one's own label leaves the other
    assert _store(tmp_path).labels[("q1", "try-0")] == {"ann": 3}


@pytest.mark.parametrize("call, message", [
    (lambda s: s.label("q1", "a", 7, "ann"), "grade must be one of 0, 1, 2, 3, got 7"),
    (lambda s: s.label("q1", "a", True, "ann"), "got True"),
    (lambda s: s.label("nope", "a", 1, "ann"), "unknown query_id 'nope'"),
    (lambda s: s.label("q1", "a", 1, ""), "labeler must be a non-empty string"),
    (lambda s: s.label("q1", "zzz", 1, "ann", valid_doc=lambda d: False), "doc_id 'zzz' is not in the collection"),
    (lambda s: s.query_action("q1", "delete", "ann"), "action must be 'accept', 'edit' or 'reject', got 'delete'"),
    (lambda s: s.query_action("q1", "edit", "ann", "  "), "text must be a non-empty string"),
    (lambda s: s.add_query("x", "ann", query_id="q1"), "query_id 'q1' already exists"),
    (lambda s: s.import_golden([{"query_id": "q9", "query": "x", "relevant": {"a": 5}}]), "grade of .a. must be an integer 0-3, got 5"),
    (lambda s: s.import_golden([{"query_id": "q9", "query": "x"}, {"query_id": "q9", "query": "y"}]), "appears twice"),
    (lambda s: s.import_golden([{"query_id": "q9", "query": "x", "status": "maybe"}]), "status must be one of"),
])
def test_bad_input_is_refused_and_changes_nothing(tmp_path, call, message):
    s = _store(tmp_path)
    s.import_golden(GOLDEN)
    s.label("q1", "a", 2, "ann")
    before = (dict(s.queries), {k: dict(v) for k, v in s.labels.items()}, s._seq)
    with pytest.raises(LabelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(s)
    assert (dict(s.queries), {k: dict(v) for k, v in s.labels.items()}, s._seq) == before
    r = _store(tmp_path)
    assert set(r.queries) == {"q1", "q2"} and r.labels == {("q1", "a"): {"ann": 2}}


def test_cohen_kappa_matches_a_hand_computed_example():
    # observed agreement 4/6; marginals a = (1, 2, 1, 2), b = (2, 1, 2, 1) over grades 0..3,
    # chance agreement (1*2 + 2*1 + 1*2 + 2*1) / 36 = 8/36; kappa = (4/6 - 8/36) / (1 - 8/36) = 4/7
    a = [0, 1, 2, 3, 3, 1]
    b = [0, 1, 2, 2, 3, 0]
    assert cohen_kappa(a, b) == pytest.approx(4 / 7)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa([1, 1], [1, 1]) is None  # chance agreement is total: undefined
    # two raters who always disagree in a balanced way: kappa -1
    assert cohen_kappa([0, 3, 0, 3], [3, 0, 3, 0]) == pytest.approx(-1.0)


def test_agreement_is_over_pairs_both_labelers_graded():
    labels = {("q", f"d{i}"): {"ann": x, "bob": y} for i, (x, y) in enumerate(zip([0, 1, 2, 3, 3, 1], [0, 1, 2, 2, 3, 0]))}
    labels[("q", "only-ann")] = {"ann": 3}
    labels[("q", "d0")]["cy"] = 0
    a = agreement(labels)
    ab = next(p for p in a["pairs"] if p["labelers"] == ["ann", "bob"])
    assert ab["items"] == 6 and ab["kappa"] == pytest.approx(4 / 7, abs=1e-4)
    assert ab["observed"] == pytest.approx(4 / 6)
    # ann/cy and bob/cy share one item with one grade: kappa undefined, left out of the mean
    assert {tuple(p["labelers"]) for p in a["pairs"]} == {("ann", "bob"), ("ann", "cy"), ("bob", "cy")}
    assert a["mean_kappa"] == pytest.approx(4 / 7, abs=1e-4)


def test_combined_grade_is_the_mean_rounded_half_up():
    assert combine_grades([3, 0]) == 2
    assert combine_grades([1, 2]) == 2
    assert combine_grades([1, 1, 2]) == 1
    assert combine_grades([0]) == 0 and combine_grades([3, 3]) == 3


def test_export_round_trips_through_the_golden_format(tmp_path):
    s = _store(tmp_path)
    s.import_golden(GOLDEN)
    s.label("q1", "try-1", 3, "ann")
    s.label("q1", "try-1", 0, "bob")
    s.label("q1", "try-0", 1, "bob")  # overrides the generated grade 3 for try-0
    s.query_action("q2", "reject", "ann")
    out = s.export()
    by = {r["query_id"]: r for r in out}
    q1 = by["q1"]
    assert q1["relevant"] == {"try-0": 1, "try-1": 2}
    assert q1["source"] == "labeled" and q1["status"] == "unreviewed"
    assert q1["provenance"]["labelers"] == ["ann", "bob"]
    assert q1["provenance"]["labels"] == {"try-0": {"bob": 1}, "try-1": {"ann": 3, "bob": 0}}
    assert q1["provenance"]["original_source"] == "generated" and q1["provenance"]["model"] == "fake"
    assert q1["x-extra"] == [1, 2]  # unknown keys are kept
    assert by["q2"]["status"] == "rejected" and by["q2"]["source"] == "human" and by["q2"]["split"] == "tune"
    assert parse_golden("# a comment\n\n" + dump_golden(out)) == out
    # an exported file loads into a fresh store as the same golden set
    t = LabelStore(MemoryStorage(), "other")
    t.import_golden(parse_golden(dump_golden(out)))
    assert [r["relevant"] for r in t.export()] == [r["relevant"] for r in out]


CHILD = r"""
import sys
from gleandb.evals.labels import LabelStore
from gleandb.storage.local import LocalStorage
s = LabelStore(LocalStorage(sys.argv[1]), "c")
s.import_golden([{"query_id": "q", "query": "x"}])
i = 0
while True:
    s.label("q", f"d{i}", i % 4, "ann")
    print(i, flush=True)  # acknowledged: label() returned, so it is synced
    i += 1
"""


def test_acknowledged_labels_survive_kill_9(tmp_path):
    path = str(tmp_path / "store")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE, text=True)
    acked = []
    for line in proc.stdout:
        acked.append(int(line))
        if len(acked) >= 200:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    grades = LabelStore(LocalStorage(path), "c").grades_of("q", "ann")
    for i in acked:
        assert grades[f"d{i}"] == i % 4


def test_a_label_whose_sync_fails_is_not_kept(tmp_path):
    """Like the WAL: a record that could not be made durable is cut off the log, so it is
    neither acknowledged nor brought back by the next open; later labels still work."""
    s = _store(tmp_path)
    s.import_golden(GOLDEN)
    s.label("q1", "try-0", 3, "ann")
    real_sync = s._writer.sync

    def failing_sync():
        raise OSError(28, "No space left on device")

    s._writer.sync = failing_sync
    with pytest.raises(OSError):
        s.label("q1", "try-1", 2, "ann")
    assert s.grades_of("q1", "ann") == {"try-0": 3}
    s._writer.sync = real_sync
    s.label("q1", "try-2", 1, "ann")
    s.close()
    assert _store(tmp_path).grades_of("q1", "ann") == {"try-0": 3, "try-2": 1}
