"""Shared fixtures.

Tests are written against the chromadb API and run against either engine:

* default: ``gleandb`` (``.venv/bin/python -m pytest``)
* ``GLEANDB_TEST_TARGET=chromadb``: the real chromadb, e.g.
  ``GLEANDB_TEST_TARGET=chromadb /tmp/chroma-venv/bin/python -m pytest tests/api``
"""

import importlib
import os

import pytest

TARGET = os.environ.get("GLEANDB_TEST_TARGET", "gleandb")


@pytest.fixture(scope="session")
def db():
    """The module under test (``gleandb`` or ``chromadb``)."""
    return importlib.import_module(TARGET)


def _close(c):
    close = getattr(c, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


@pytest.fixture
def client(db, tmp_path):
    """A fresh PersistentClient on an empty directory."""
    c = db.PersistentClient(path=str(tmp_path / "store"))
    yield c
    _close(c)


@pytest.fixture
def ephemeral_client(db):
    """An EphemeralClient with no collections (chromadb shares one in-memory
    system between EphemeralClient instances, so leftovers are dropped)."""
    c = db.EphemeralClient()
    for col in c.list_collections():
        c.delete_collection(getattr(col, "name", col))
    yield c
    for col in c.list_collections():
        c.delete_collection(getattr(col, "name", col))
