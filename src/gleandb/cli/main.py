"""The ``glean`` command: ``glean run`` (the server), ``glean demo``, ``glean info``."""

from __future__ import annotations

import argparse
import sys
import time


def _demo_corpus() -> list[tuple[str, str, dict]]:
    """Real English text that ships with CPython: the help topics of the language reference."""
    from pydoc_data.topics import topics

    chunks = []
    for topic, text in sorted(topics.items()):
        paragraphs = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 80]
        for i, p in enumerate(paragraphs):
            chunks.append((f"{topic}-{i}", " ".join(p.split()), {"topic": topic, "paragraph": i}))
    return chunks


def cmd_demo(args: argparse.Namespace) -> int:
    import gleandb
    from gleandb.embeddings.hashing import HashingEmbeddingFunction

    client = gleandb.PersistentClient(args.path)
    ef = HashingEmbeddingFunction()
    col = client.get_or_create_collection("python-docs", embedding_function=ef, metadata={"hnsw:space": "cosine"})
    if col.count() == 0:
        chunks = _demo_corpus()
        t = time.perf_counter()
        for i in range(0, len(chunks), 2000):
            part = chunks[i : i + 2000]
            col.add(ids=[c[0] for c in part], documents=[c[1] for c in part], metadatas=[c[2] for c in part])
        print(f"ingested {len(chunks)} paragraphs of the Python language reference in {time.perf_counter() - t:.1f} s")
    print(f"collection 'python-docs' in {args.path}: {col.count()} records")
    for question in args.query or [
        "how do I catch an exception and clean up afterwards",
        "what does the with statement do",
        "lambda expressions anonymous functions",
    ]:
        t = time.perf_counter()
        res = col.query(query_texts=[question], n_results=3)
        ms = (time.perf_counter() - t) * 1000
        print(f"\nQ: {question}   ({ms:.1f} ms)")
        for id_, doc, dist in zip(res["ids"][0], res["documents"][0], res["distances"][0]):
            print(f"  [{dist:.3f}] {id_}: {doc[:110]}...")
    t = time.perf_counter()
    hits = col.get(where_document={"$regex": r"\bfinally\b"}, where={"topic": "try"}, include=["documents"])
    print(f"\nregex \\bfinally\\b within topic 'try': {len(hits['ids'])} paragraphs ({(time.perf_counter() - t) * 1000:.1f} ms)")
    client.close()
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import gleandb

    client = gleandb.PersistentClient(args.path)
    for col in client.list_collections():
        store = client._store_for(col._record)
        segs = store.snapshot()
        print(
            f"{col.name}  id={col.id}  records={col.count()}  dimension={store.dimension}  "
            f"space={store.params.space}  segments={len(segs)}  version={store.version}"
        )
    client.close()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from gleandb.server.config import load_settings
    from gleandb.server.run import serve

    cli = {k: getattr(args, k) for k in (
        "path", "host", "port", "allow_reset", "max_body_bytes", "auth_tokens", "auth_basic",
        "cors_allow_origins", "log_level", "access_log",
    )}
    try:
        settings = load_settings(cli, args.config)
    except (OSError, ValueError) as exc:
        print(f"glean run: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glean", description="gleandb command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="ingest real text into a persistent store and query it")
    demo.add_argument("--path", default="./data", help="store directory (default ./data)")
    demo.add_argument("--query", "-q", action="append", help="a question to ask (repeatable)")
    demo.set_defaults(func=cmd_demo)
    info = sub.add_parser("info", help="list the collections of a store")
    info.add_argument("path")
    info.set_defaults(func=cmd_info)
    run = sub.add_parser(
        "run",
        help="serve Chroma's v2 HTTP API on a store directory",
        description="Serve Chroma's v2 HTTP API (chromadb 1.5.9 clients connect with HttpClient). "
        "Every option can also come from a GLEAN_<NAME> environment variable or a YAML file "
        "(--config / GLEAN_CONFIG); flags win over the environment, which wins over the file. See docs/server.md.",
    )
    run.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=None,
                     help="JSON access log on stderr (GLEAN_ACCESS_LOG, default on)")
    run.add_argument("--path", default=None, help="store directory (GLEAN_PATH, default ./data)")
    run.add_argument("--host", default=None, help="address to bind (GLEAN_HOST, default 127.0.0.1)")
    run.add_argument("--port", type=int, default=None, help="port (GLEAN_PORT, default 8000)")
    run.add_argument("--allow-reset", action="store_true", default=None,
                     help="allow POST /api/v2/reset to delete everything (GLEAN_ALLOW_RESET)")
    run.add_argument("--max-body-bytes", type=int, default=None,
                     help="largest request body accepted, else 413 (GLEAN_MAX_BODY_BYTES, default 64 MiB)")
    run.add_argument("--auth-token", action="append", default=None, dest="auth_tokens",
                     help="accept this static token (repeatable; GLEAN_AUTH_TOKENS, comma-separated)")
    run.add_argument("--auth-basic", action="append", default=None,
                     help="accept basic auth user:password (repeatable; GLEAN_AUTH_BASIC)")
    run.add_argument("--cors-allow-origin", action="append", default=None, dest="cors_allow_origins",
                     help="allow this CORS origin (repeatable; GLEAN_CORS_ALLOW_ORIGINS)")
    run.add_argument("--log-level", default=None, help="debug, info, warning, error (GLEAN_LOG_LEVEL)")
    run.add_argument("--config", default=None, help="YAML file of settings (GLEAN_CONFIG)")
    run.set_defaults(func=cmd_run)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
