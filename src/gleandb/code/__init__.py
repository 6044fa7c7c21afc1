"""Git-aware code index: one collection per commit, forked from its parent's; syntax-aware
chunks; an embedding cache keyed by content; hybrid search and ``git grep``-exact regex search.
See docs/code.md."""

from gleandb.code.chunk import Chunk, chunk_file, language_of
from gleandb.code.git import CodeError, GitError
from gleandb.code.index import ChunkChange, CodeIndex, IndexReport

__all__ = ["Chunk", "ChunkChange", "CodeError", "CodeIndex", "GitError", "IndexReport", "chunk_file", "language_of"]
