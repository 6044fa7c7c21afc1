"""A fork's hand-over from the catalog's copy of version 1 (with its unflushed tail inline in
the catalog record) to its own files, killed at each durable step.

The interleaving test_fork_crash.py found (seed 108): the first flush of such a fork wrote
version 1's manifest file, then the tail's WAL file. Killed between the two, the reopened
store took the manifest files as the truth (there was one), dropped the catalog's copy of
the tail, and replayed a WAL that did not hold it: the fork lost the rows of its source's
unflushed tail. Now the tail's WAL file comes first, and an open that finds a manifest file
while the catalog still holds a tail writes the tail to the WAL (if a version needs it)
before the catalog forgets it.
"""

import glob
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import crash_handover  # noqa: E402
from crash_support import child_env  # noqa: E402
from fork_checks import missing_referenced_files  # noqa: E402

RUNNER = os.path.join(HERE, "crash_handover.py")
SOURCE_ROWS = [["a", "doc a"], ["b", "doc b"], ["t1", "doc t1"], ["t2", "doc t2"]]
FORK_ROWS = sorted(SOURCE_ROWS + [["own", "doc own"]])


def _run(*args):
    return subprocess.run([sys.executable, RUNNER, *args], capture_output=True, text=True, env=child_env(), timeout=300)


def _crash(path, point, keep):
    out = _run("crash", path, point, str(keep))
    assert out.returncode == crash_handover.CRASH_RC, f"no crash at {point}: rc={out.returncode}\n{out.stdout}{out.stderr[-3000:]}"


def _dump(path, keep):
    out = _run("dump", path, str(keep))
    assert out.returncode == 0, f"reopen failed:\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check(path, keep, handed_over=True):
    got = _dump(path, keep)
    assert got["collections"][crash_handover.SOURCE] == SOURCE_ROWS
    assert got["collections"][crash_handover.FORK] == FORK_ROWS
    if keep > 1:  # version 1 (the fork as made: the source's rows, tail included) is retained
        assert 1 in got["versions"]
        assert got["version1"] == [r[0] for r in SOURCE_ROWS]
    # a manifest file of the fork's own means the catalog's copies go (finished by the reopen)
    assert got["catalog_copy"] is not handed_over
    assert missing_referenced_files(path) == []
    return got


@pytest.mark.parametrize("point,keep", [
    ("tail-wal", 2),
    ("first-manifest", 2),  # the interleaving that lost the tail
    ("own-manifest", 2),
    ("own-manifest", 1),
])
def test_a_kill_at_each_step_of_the_hand_over_keeps_the_forks_rows(tmp_path, point, keep):
    path = str(tmp_path / "store")
    _crash(path, point, keep)
    _check(path, keep, handed_over=point != "tail-wal")
    if point == "tail-wal":  # no manifest file yet: the next flush hands over (the tail's WAL file is reused)
        assert _run("vacuum", path, str(keep)).returncode == 0
        assert len(glob.glob(os.path.join(path, "collections", "*", "wal", f"{1:020d}-*.log"))) == 1
    _check(path, keep)  # and again, now that the files alone are the truth


def test_a_store_killed_between_the_first_manifest_and_the_tail_by_the_old_order_is_repaired(tmp_path):
    """What the old order left behind (version 1's manifest file, no WAL file with the tail,
    the tail still in the catalog) opens with every row: the tail is taken from the catalog
    and written to the WAL before the catalog forgets it."""
    path = str(tmp_path / "store")
    _crash(path, "first-manifest", 2)
    tails = glob.glob(os.path.join(path, "collections", "*", "wal", f"{1:020d}-*.log"))
    assert len(tails) == 1  # the new order wrote the tail first; remove it, as the old one had not
    os.remove(tails[0])
    _check(path, 2)
    assert glob.glob(os.path.join(path, "collections", "*", "wal", f"{1:020d}-*.log")), "the tail is not in the WAL"
    _check(path, 2)
