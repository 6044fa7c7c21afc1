"""Retrieval: hybrid search, fusion, the Search API executor."""
