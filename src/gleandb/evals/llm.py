from gleandb.retrieval.llm import AnthropicChat as Anthropic, OpenAIChat as OpenAI

__all__ = ["Anthropic", "OpenAI"]
