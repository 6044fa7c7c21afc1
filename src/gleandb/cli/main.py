"""The ``glean`` command: ``glean run`` (the server), ``glean demo``, ``glean info``, ``glean ingest``,
``glean context``, ``glean vacuum``, ``glean eval``."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path


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


def cmd_vacuum(args: argparse.Namespace) -> int:
    """Compact, drop versions beyond retention and delete unreferenced files (docs/forks.md)."""
    import json

    import gleandb

    from gleandb.api.settings import _GLEANDB_FIELDS as DEFAULTS

    # open without pruning anything, so that the report counts all that vacuum removes
    keep_all = gleandb.Settings(version_retention_count=2**31, version_retention_seconds=1e12)
    client = gleandb.PersistentClient(args.path, settings=keep_all)
    count = DEFAULTS["version_retention_count"] if args.keep_versions is None else args.keep_versions
    seconds = DEFAULTS["version_retention_seconds"] if args.keep_seconds is None else args.keep_seconds
    try:
        report = client.vacuum(retention_count=count, retention_seconds=seconds)
    finally:
        client.close()
    print(json.dumps(report))
    return 0


INGEST_BATCH = 256
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


def _split_long(text: str, limit: int) -> list[str]:
    """Cut one over-long paragraph into pieces of at most ``limit`` characters, at the last
    sentence end, else the last whitespace, before the limit (a hard cut if there is none)."""
    pieces = []
    while len(text) > limit:
        window = text[: limit + 1]
        cut = -1
        for m in re.finditer(r"[.!?][\"')\]]*\s", window):
            cut = m.end()
        if cut <= limit // 2:
            ws = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
            cut = ws + 1 if ws > 0 else limit
        cut = min(cut, limit)
        piece = text[:cut].strip()
        if piece:
            pieces.append(piece)
        text = text[cut:].lstrip()
    if text.strip():
        pieces.append(text.strip())
    return pieces


def chunk_text(text: str, max_chars: int = 1000) -> list[str]:
    """Paragraph-aware chunks of at most ``max_chars`` characters.

    Paragraphs (separated by blank lines) are packed whole into a chunk while they fit,
    joined by a blank line; a paragraph longer than ``max_chars`` is cut at sentence
    ends or whitespace. Empty text gives no chunks.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    chunks: list[str] = []
    current = ""
    for para in _PARAGRAPH_BREAK.split(text):
        para = para.strip()
        if not para:
            continue
        for piece in _split_long(para, max_chars) if len(para) > max_chars else [para]:
            if current and len(current) + 2 + len(piece) <= max_chars:
                current += "\n\n" + piece
            else:
                if current:
                    chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def _display_path(path: Path) -> str:
    """The path relative to the working directory (posix separators), else absolute."""
    absolute = path.resolve()
    try:
        return absolute.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()


def _collect_files(inputs: list[str], pattern: str) -> tuple[list[Path], list[str]]:
    """Files named directly, and files matching ``pattern`` under directories (recursively);
    each file once, in a stable order. Returns (files, inputs that do not exist)."""
    files: list[Path] = []
    seen: set[Path] = set()
    missing: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob(pattern) if f.is_file())
        elif p.is_file():
            found = [p]
        else:
            missing.append(item)
            continue
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files, missing


def cmd_ingest(args: argparse.Namespace) -> int:
    import gleandb
    from gleandb.embeddings.functions import DefaultEmbeddingFunction, ef_name
    from gleandb.embeddings.minilm import ModelNotAvailableError
    from gleandb.embeddings.progress import progress_bar

    if args.chunk_chars < 1:
        print(f"glean ingest: --chunk-chars must be at least 1, got {args.chunk_chars}", file=sys.stderr)
        return 2
    files, missing = _collect_files(args.inputs, args.glob)
    for m in missing:
        print(f"glean ingest: {m}: no such file or directory", file=sys.stderr)
    if missing:
        return 2
    ids: list[str] = []
    docs: list[str] = []
    metas: list[dict] = []
    sources: dict[str, int] = {}
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            print(f"glean ingest: skipping {f}: not UTF-8 text", file=sys.stderr)
            continue
        except OSError as exc:
            print(f"glean ingest: skipping {f}: {exc}", file=sys.stderr)
            continue
        source = _display_path(f)
        chunks = chunk_text(text, args.chunk_chars)
        sources[source] = len(chunks)
        for n, chunk in enumerate(chunks):
            ids.append(f"{source}#{n}")
            docs.append(chunk)
            metas.append({"source": source, "chunk": n})
    if not files:
        print(f"glean ingest: no files matching {args.glob!r} in {' '.join(args.inputs)}", file=sys.stderr)
        return 1

    ef = DefaultEmbeddingFunction()
    client = gleandb.PersistentClient(args.path)
    try:
        col = client.get_or_create_collection(args.collection, embedding_function=ef)
        used = ef_name(col._embedding_function)
        if used not in (None, "default"):
            print(
                f"glean ingest: collection {args.collection!r} uses the embedding function {used!r}; "
                "glean ingest embeds with the default one (all-MiniLM-L6-v2): use another collection",
                file=sys.stderr,
            )
            return 2
        had_records = col.count() > 0
        t = time.perf_counter()
        bar = progress_bar(len(docs), f"ingest {args.collection}", unit="chunk", enabled=args.progress)
        try:
            for s in range(0, len(docs), INGEST_BATCH):
                part = slice(s, s + INGEST_BATCH)
                embeddings = ef.encode(docs[part], progress=bar.update)
                # upsert: ingesting a file again replaces its chunks
                col.upsert(ids=ids[part], embeddings=embeddings, documents=docs[part], metadatas=metas[part])
        except ModelNotAvailableError as exc:
            bar.close()
            print(f"glean ingest: {exc}", file=sys.stderr)
            return 2
        bar.close()
        if had_records:
            # a file that shrank since the last ingest: drop its chunks past the new end
            for source, count in sources.items():
                col.delete(where={"$and": [{"source": source}, {"chunk": {"$gte": count}}]})
        seconds = time.perf_counter() - t
        rate = len(docs) / seconds if seconds > 0 else 0.0
        print(
            f"ingested {len(docs)} chunks from {len(sources)} files into {args.collection!r} "
            f"in {seconds:.2f} s ({rate:.1f} docs/s); collection now has {col.count()} records"
        )
    finally:
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
    vac = sub.add_parser("vacuum", help="compact a store and delete what retained versions no longer need")
    vac.add_argument("path")
    vac.add_argument("--keep-versions", type=int, default=None,
                     help="versions to keep per collection (default: Settings version_retention_count)")
    vac.add_argument("--keep-seconds", type=float, default=None,
                     help="also keep versions younger than this (default: Settings version_retention_seconds)")
    vac.set_defaults(func=cmd_vacuum)
    ingest = sub.add_parser(
        "ingest",
        help="chunk text files and add them to a collection (default embedding function)",
        description="Read text files, split them into paragraph-aware chunks of at most --chunk-chars "
        "characters and upsert them into a collection with ids '<relative path>#<n>' and metadata "
        "{source, chunk}, embedded by the default function (all-MiniLM-L6-v2), 256 at a time. "
        "A progress bar is shown on stderr when it is a terminal.",
    )
    ingest.add_argument("--path", default="./data", help="store directory (default ./data)")
    ingest.add_argument("--collection", required=True, help="collection name (created if missing)")
    ingest.add_argument("--glob", default="*.txt", help='files to take from directories, recursively (default "*.txt")')
    ingest.add_argument("--chunk-chars", type=int, default=1000, help="largest chunk, in characters (default 1000)")
    ingest.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="force the progress bar on or off (default: on when stderr is a terminal)")
    ingest.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS", help="text files and directories")
    ingest.set_defaults(func=cmd_ingest)
    from gleandb.cli.context import add_parser as add_context_parser

    add_context_parser(sub)
    from gleandb.cli.evals import add_parser as add_eval_parser; add_eval_parser(sub)  # noqa: E702
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
