"""A small real corpus for the labeling tests: paragraphs of the Python language reference
(pydoc_data ships with CPython), in a persistent collection with the hashing embedding."""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = ("try", "lambda", "with", "for", "while", "if", "import", "assert", "raise", "return")


def corpus() -> list[tuple[str, str]]:
    from pydoc_data.topics import topics

    out = []
    for topic in TOPICS:
        paragraphs = [" ".join(p.split()) for p in topics[topic].split("\n\n") if len(p.strip()) > 80]
        out.extend((f"{topic}-{i}", p) for i, p in enumerate(paragraphs[:6]))
    return out


def make_store(path: Path, name: str = "notes") -> list[str]:
    """Create ``name`` in the store at ``path``; returns its ids."""
    import gleandb
    from gleandb.embeddings.hashing import HashingEmbeddingFunction

    docs = corpus()
    client = gleandb.PersistentClient(str(path))
    try:
        col = client.create_collection(name, embedding_function=HashingEmbeddingFunction())
        col.add(ids=[d[0] for d in docs], documents=[d[1] for d in docs])
    finally:
        client.close()
    return [d[0] for d in docs]


GOLDEN = [
    {"query_id": "q-001", "query": "how do I catch an exception and clean up afterwards",
     "relevant": {"try-0": 3}, "source": "generated", "status": "unreviewed", "split": "test",
     "provenance": {"model": "fake", "source_id": "try-0"}},
    {"query_id": "q-002", "query": "anonymous functions", "relevant": {"lambda-0": 3},
     "source": "generated", "status": "unreviewed", "split": "test", "provenance": {"model": "fake"}},
    {"query_id": "q-003", "query": "context manager enter exit", "relevant": {}, "source": "human",
     "status": "accepted", "split": "tune"},
]


def write_golden(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in GOLDEN))
    return path
