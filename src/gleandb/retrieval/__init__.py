"""Second-stage retrieval: hybrid search, fusion, re-ranking and context packing."""
