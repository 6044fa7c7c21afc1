"""gleandb: an embedded, crash-safe retrieval database with the chromadb API.

``import gleandb as chromadb`` is enough for code written for chromadb 1.5::

    import gleandb
    client = gleandb.PersistentClient(path="./data")
    col = client.get_or_create_collection("docs", metadata={"hnsw:space": "cosine"})
    col.add(ids=["a"], embeddings=[[0.1, 0.2, 0.3]], documents=["hello"])
    col.query(query_embeddings=[[0.1, 0.2, 0.3]], n_results=1)
"""

from gleandb.api.client import (
    VERSION as __version__,
    AdminClient,
    Client,
    ClientAPI,
    EphemeralClient,
    HttpClient,
    PersistentClient,
)
from gleandb.api.collection import Collection
from gleandb.api.http_client import AsyncHttpClient, HttpAdminClient
from gleandb.api.results import GetResult, QueryResult
from gleandb.api.schema import (
    BoolInvertedIndexConfig,
    FloatInvertedIndexConfig,
    FtsIndexConfig,
    HnswIndexConfig,
    IntInvertedIndexConfig,
    Schema,
    SpannIndexConfig,
    SparseVectorIndexConfig,
    StringInvertedIndexConfig,
    VectorIndexConfig,
)
from gleandb.api.search import (
    Bm25,
    GroupBy,
    K,
    Key,
    Knn,
    Limit,
    MaxK,
    MinK,
    Rrf,
    Search,
    SearchResult,
    Select,
    Val,
    Weighted,
)
from gleandb.retrieval.hybrid import RetrieveResult
from gleandb.api.settings import Settings
from gleandb.catalog.catalog import DEFAULT_DATABASE, DEFAULT_TENANT
from gleandb.embeddings.functions import (
    DefaultEmbeddingFunction,
    EmbeddingFunction,
    register_embedding_function,
)
from gleandb import errors, rerank
from gleandb.deadlines import deadline
from gleandb.memory import Memory, MemoryHit

__all__ = [
    "AdminClient",
    "Bm25",
    "GroupBy",
    "K",
    "Key",
    "Knn",
    "Limit",
    "MaxK",
    "MinK",
    "RetrieveResult",
    "Rrf",
    "Search",
    "SearchResult",
    "Select",
    "Val",
    "Weighted",
    "AsyncHttpClient",
    "Client",
    "ClientAPI",
    "Collection",
    "DEFAULT_DATABASE",
    "DEFAULT_TENANT",
    "DefaultEmbeddingFunction",
    "EmbeddingFunction",
    "EphemeralClient",
    "GetResult",
    "HttpAdminClient",
    "HttpClient",
    "PersistentClient",
    "QueryResult",
    "Settings",
    "deadline",
    "Memory",
    "MemoryHit",
    "BoolInvertedIndexConfig",
    "FloatInvertedIndexConfig",
    "FtsIndexConfig",
    "HnswIndexConfig",
    "IntInvertedIndexConfig",
    "Schema",
    "SpannIndexConfig",
    "SparseVectorIndexConfig",
    "StringInvertedIndexConfig",
    "VectorIndexConfig",
    "errors",
    "rerank",
    "register_embedding_function",
    "__version__",
]
