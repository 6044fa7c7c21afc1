"""Collection.context end to end: retrieve, re-rank with any OpenAI-compatible (or Anthropic)
endpoint, pack into a token budget, print the context with its citations and usage.

    export GLEAN_LLM_BASE_URL=https://api.openai.com/v1   # or http://localhost:11434/v1 ...
    export GLEAN_LLM_API_KEY=sk-...
    export GLEAN_LLM_MODEL=gpt-4.1-mini                   # unset: no re-ranker
    export GLEAN_LLM_PROVIDER=openai                      # or anthropic
    python examples/context_example.py "How do I clean up after an exception?"

The corpus is the Python language reference that ships with CPython (pydoc_data), split
into paragraphs; vectors come from gleandb's hashing embedding function, so nothing is
downloaded (the dense ranker is weak with it; BM25 carries the first stage).
"""

from __future__ import annotations

import os
import sys
import tempfile

import gleandb
from gleandb.embeddings.hashing import HashingEmbeddingFunction


def corpus() -> tuple[list[str], list[str], list[dict]]:
    from pydoc_data.topics import topics

    ids, docs, metas = [], [], []
    for topic, text in sorted(topics.items()):
        paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if len(p.strip()) > 80]
        for i, p in enumerate(paragraphs):
            ids.append(f"{topic}#{i}")
            docs.append(p)
            metas.append({"source": topic, "start": i})
    return ids, docs, metas


def main() -> int:
    question = sys.argv[1] if len(sys.argv) > 1 else "How do I clean up after an exception?"
    with tempfile.TemporaryDirectory() as path:
        client = gleandb.PersistentClient(path)
        col = client.create_collection("python-reference", embedding_function=HashingEmbeddingFunction(),
                                       metadata={"hnsw:space": "cosine"})
        ids, docs, metas = corpus()
        for s in range(0, len(ids), 2000):
            col.add(ids=ids[s : s + 2000], documents=docs[s : s + 2000], metadatas=metas[s : s + 2000])
        print(f"{col.count()} paragraphs indexed\n")

        reranker = None
        model = os.environ.get("GLEAN_LLM_MODEL")
        if model:
            reranker = gleandb.rerank.LLM(
                model=model,
                provider=os.environ.get("GLEAN_LLM_PROVIDER", "openai"),
                base_url=os.environ.get("GLEAN_LLM_BASE_URL"),
                api_key=os.environ.get("GLEAN_LLM_API_KEY"),
                batch_size=10,
                threshold=2,  # keep passages graded "relevant" or better
            )
        ctx = col.context(question, candidates=100, reranker=reranker, top_n=8, max_tokens=1500,
                          order="relevance", on_rerank_error="warn")
        print(f"Q: {question}\n")
        print(ctx.text)
        print("\ncitations:")
        for c in ctx.chunks:
            grade = "" if c.rerank_score is None else f" grade {c.rerank_score:g}"
            print(f"  {c.marker} {c.id}{grade}, {c.tokens} tokens, first-stage ranks {c.first_stage['ranks']}")
        u = ctx.usage
        print(f"\nusage: {u.model_calls} model calls, {u.input_tokens} input / {u.output_tokens} output tokens, "
              f"{u.tokens}/{u.max_tokens} context tokens ({u.tokenizer})")
        print("latency ms: " + ", ".join(f"{k} {v:.1f}" for k, v in u.latency_ms.items()))
        print(f"dropped: {u.dropped}")
        for w in u.warnings:
            print(f"warning: {w}")
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
