"""A small real-text collection (the Python language reference's help topics, hashing
embeddings) with a known-item golden set: each topic's first paragraph asks for the rest."""

from __future__ import annotations

import os
import sys

import pytest

import gleandb
from gleandb import evals
from gleandb.embeddings.hashing import HashingEmbeddingFunction

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_llm import FakeLLM  # noqa: E402


def corpus() -> tuple[list[str], list[str], list[dict]]:
    from pydoc_data.topics import topics

    ids, docs, records = [], [], []
    for topic, text in sorted(topics.items()):
        paras = [" ".join(p.split()) for p in text.split("\n\n") if len(p.strip()) > 200]
        if len(paras) < 2:
            continue
        ids.append(topic)
        docs.append(" ".join(paras[1:])[:3000])
        records.append({"query_id": f"q-{topic}", "query": paras[0][:200], "relevant": {topic: 3}})
    return ids, docs, records


def fill(col) -> list[dict]:
    ids, docs, records = corpus()
    col.add(ids=ids, documents=docs, metadatas=[{"n": i} for i in range(len(ids))])
    return records


@pytest.fixture
def client():
    c = gleandb.EphemeralClient()
    yield c
    for col in c.list_collections():
        c.delete_collection(col.name)


@pytest.fixture
def col(client):
    c = client.create_collection("pydocs", embedding_function=HashingEmbeddingFunction(),
                                 metadata={"hnsw:space": "cosine"})
    c.records = fill(c)  # type: ignore[attr-defined]
    return c


@pytest.fixture
def golden(col) -> evals.GoldenSet:
    return evals.GoldenSet.from_records(col.records)


@pytest.fixture
def llm():
    fake = FakeLLM().start()
    yield fake
    fake.stop()
