"""Retrieval: hybrid search, fusion, the Search API executor, re-ranking and context packing."""
