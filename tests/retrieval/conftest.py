"""The fake chat server (tests/fake_llm.py), one per test."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_llm import FakeLLM  # noqa: E402


@pytest.fixture
def llm():
    fake = FakeLLM().start()
    yield fake
    fake.stop()


@pytest.fixture
def no_sleep(monkeypatch):
    """Record the retry waits instead of sleeping them."""
    from gleandb.retrieval import llm as llm_mod

    waits = []
    monkeypatch.setattr(llm_mod.time, "sleep", lambda s: waits.append(s))
    return waits
