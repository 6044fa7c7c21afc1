"""Re-rankers for ``Collection.context`` (the public namespace ``gleandb.rerank``).

    import gleandb
    rr = gleandb.rerank.LLM(model="gpt-4.1-mini")              # OPENAI_API_KEY from the environment
    rr = gleandb.rerank.LLM(model="claude-haiku-4-5", provider="anthropic")
    rr = gleandb.rerank.LLMListwise(model="gpt-4.1-mini", window=20, step=10)
    rr = gleandb.rerank.CrossEncoder("cross-encoder/ms-marco-MiniLM-L-6-v2")
    rr = gleandb.rerank.Function(lambda query, docs: [len(set(query.split()) & set(d.split())) for d in docs])
    ctx = col.context("How do I rotate an API key?", reranker=rr, top_n=20, max_tokens=4000)
"""

from gleandb.retrieval.context import Chunk, Context, ContextUsage, RerankWarning
from gleandb.retrieval.llm import (
    AnthropicChat,
    ChatAuthError,
    ChatClient,
    ChatError,
    ChatTimeoutError,
    OpenAIChat,
    Usage,
)
from gleandb.retrieval.rerank import (
    LLM,
    CrossEncoder,
    Function,
    LLMListwise,
    RerankError,
    Reranker,
    reranker_from_spec,
)

__all__ = [
    "LLM", "LLMListwise", "CrossEncoder", "Function", "Reranker", "RerankError", "RerankWarning",
    "reranker_from_spec", "OpenAIChat", "AnthropicChat", "ChatClient", "ChatError", "ChatAuthError",
    "ChatTimeoutError", "Usage", "Context", "Chunk", "ContextUsage",
]
