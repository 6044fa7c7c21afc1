"""Fixtures: an embedded client, hashing embeddings (no model), a clock the test moves."""

from __future__ import annotations

import os
import sys

import pytest

import gleandb
from gleandb.embeddings.hashing import HashingEmbeddingFunction

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def client(tmp_path):
    c = gleandb.PersistentClient(path=str(tmp_path / "store"))
    yield c
    c.close()


@pytest.fixture
def make(client, clock):
    """make(scope=..., **Memory kwargs) -> Memory on the shared 'memories' collection."""

    def _make(scope=None, **kw):
        kw.setdefault("embedding_function", HashingEmbeddingFunction())
        kw.setdefault("clock", clock)
        return gleandb.Memory(client, scope={"user": "u42", "agent": "support"} if scope is None else scope, **kw)

    return _make
