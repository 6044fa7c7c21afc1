"""Chat clients for the evals: the OpenAI-compatible and Anthropic clients of ``retrieval/llm.py``
(retries, key handling and usage accounting included), under short names."""

from gleandb.retrieval.llm import AnthropicChat as Anthropic, OpenAIChat as OpenAI

__all__ = ["Anthropic", "OpenAI"]
