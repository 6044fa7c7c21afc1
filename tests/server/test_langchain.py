"""langchain-chroma's ``Chroma`` vector store against ``glean run`` (through chromadb.HttpClient)."""

from __future__ import annotations

import hashlib

import pytest

chromadb = pytest.importorskip("chromadb", reason="the chromadb client is installed by gleandb's test extra")
lc_chroma = pytest.importorskip("langchain_chroma", reason="langchain-chroma is installed by gleandb's test extra")
from langchain_core.embeddings import Embeddings  # noqa: E402

DIM = 16


class HashEmbeddings(Embeddings):
    """Tiny deterministic bag-of-words embedding: each word adds 1 to a hashed coordinate."""

    def _embed(self, text: str) -> list[float]:
        v = [0.0] * DIM
        for word in text.lower().split():
            v[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIM] += 1.0
        return v

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


TEXTS = [
    "the cat sat on the mat",
    "dogs chase cats in the park",
    "stock markets fell sharply today",
    "the cat chased a mouse",
    "interest rates and stock prices",
]
METAS = [
    {"topic": "pets", "n": 1},
    {"topic": "pets", "n": 2},
    {"topic": "finance", "n": 3},
    {"topic": "pets", "n": 4},
    {"topic": "finance", "n": 5},
]


def test_langchain_chroma_roundtrip(http_client):
    store = lc_chroma.Chroma(client=http_client, collection_name="lc-docs", embedding_function=HashEmbeddings())
    ids = store.add_texts(TEXTS, metadatas=METAS, ids=[f"d{i}" for i in range(len(TEXTS))])
    assert ids == ["d0", "d1", "d2", "d3", "d4"]
    assert http_client.get_collection("lc-docs").count() == 5

    docs = store.similarity_search("the cat chased a mouse", k=2)
    assert len(docs) == 2
    assert (docs[0].id, docs[0].page_content, docs[0].metadata) == ("d3", TEXTS[3], METAS[3])

    docs = store.similarity_search("stock", k=3, filter={"topic": "finance"})
    assert sorted(d.page_content for d in docs) == sorted([TEXTS[2], TEXTS[4]])
    assert {d.id for d in docs} == {"d2", "d4"}

    scored = store.similarity_search_with_score("the cat sat on the mat", k=1)
    assert scored[0][0].page_content == TEXTS[0] and scored[0][1] == pytest.approx(0.0, abs=1e-5)

    docs = store.similarity_search("cat", k=5, filter={"$and": [{"topic": "pets"}, {"n": {"$gte": 2}}]})
    assert sorted(d.metadata["n"] for d in docs) == [2, 4]

    store.delete(ids=["d0", "d3"])
    assert http_client.get_collection("lc-docs").count() == 3
    assert [d.id for d in store.similarity_search("the cat", k=5, filter={"topic": "pets"})] == ["d1"]
    assert store.get(ids=["d0"])["ids"] == []
