"""Chat clients for the evals: the OpenAI-compatible and Anthropic clients of ``retrieval/llm.py``
(retries, key handling and usage accounting included), under short names."""

import gleandb.retrieval.llm  # noqa: F401  (binds gleandb.retrieval.llm)
from gleandb import retrieval

OpenAI = retrieval.llm.OpenAIChat
Anthropic = retrieval.llm.AnthropicChat

__all__ = ["OpenAI", "Anthropic"]
