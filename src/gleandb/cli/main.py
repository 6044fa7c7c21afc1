"""The ``glean`` command: ``glean run`` (the server), ``glean demo``, ``glean info``, ``glean ingest``,
``glean context``, ``glean label``, ``glean eval``, ``glean mcp``, ``glean code``, ``glean vacuum``.

Expected failures (a locked store, a bad name, a missing collection or path, a model that
is not installed) print one line on stderr and exit 1: :func:`main` is the single place
that turns gleandb's own errors and ``OSError`` into that line. Anything else is a bug and
keeps its traceback, as does every error under ``glean --debug``. Commands that only read
(``info``, ``context``, ``vacuum``) refuse a path that holds no store instead of creating
one, and a failed ``ingest`` removes the store or collection it created before writing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path


class CommandError(Exception):
    """An expected failure of a command, reported as one line (no traceback); ``code`` is
    the exit status (2 for a bad command line, as argparse uses)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _require_store(path: str) -> None:
    """Read-only commands must not create a store: refuse a path that does not hold one."""
    if not os.path.isdir(path):
        raise CommandError(f"{path}: no such directory (nothing was created)")
    if not _has_catalog(path):
        raise CommandError(f"{path}: not a gleandb store (no catalog; nothing was created)")


def _has_catalog(path: str) -> bool:
    """A store's catalog: the log directory, or the single file of older stores."""
    return os.path.isdir(os.path.join(path, "catalog")) or os.path.isfile(os.path.join(path, "catalog.json"))


DEMO_COLLECTION = "python-reference"
DEMO_QUESTIONS = [
    "how do I catch an exception and clean up afterwards",
    "what does the with statement do",
    "lambda expressions anonymous functions",
]


def _demo_corpus(limit: int | None = None) -> list[tuple[str, str, dict]]:
    """Real English text that ships with CPython: the help topics of the language reference,
    one paragraph per chunk. With ``limit``, paragraphs are taken round-robin over the topics
    (every topic's first paragraph, then every second one...), so a bounded demo still
    covers the whole reference."""
    from pydoc_data.topics import topics

    per_topic = []
    for topic, text in sorted(topics.items()):
        paragraphs = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 80]
        per_topic.append([(f"{topic}-{i}", " ".join(p.split()), {"topic": topic, "paragraph": i})
                          for i, p in enumerate(paragraphs)])
    if limit is None:
        return [c for chunks in per_topic for c in chunks]
    out: list[tuple[str, str, dict]] = []
    depth = 0
    while len(out) < limit and any(depth < len(chunks) for chunks in per_topic):
        out += [chunks[depth] for chunks in per_topic if depth < len(chunks)][: limit - len(out)]
        depth += 1
    return out


def cmd_demo(args: argparse.Namespace) -> int:
    """Ingest part of the Python language reference with the default model, then ask it
    questions with hybrid retrieval (dense all-MiniLM-L6-v2 + BM25, fused by RRF)."""
    import gleandb
    from gleandb.embeddings.functions import DefaultEmbeddingFunction
    from gleandb.embeddings.progress import progress_bar

    if args.limit < 1:
        raise CommandError(f"--limit must be at least 1, got {args.limit}", code=2)
    ef = DefaultEmbeddingFunction()
    client = gleandb.PersistentClient(args.path)
    try:
        col = client.get_or_create_collection(DEMO_COLLECTION, embedding_function=ef,
                                              metadata={"hnsw:space": "cosine"})
        if col.count() == 0:
            chunks = _demo_corpus(args.limit)
            print(f"embedding {len(chunks)} paragraphs of the Python language reference (of "
                  f"{len(_demo_corpus())}; --limit) with all-MiniLM-L6-v2, the default embedding model, on this "
                  "machine's CPU...")
            t = time.perf_counter()
            bar = progress_bar(len(chunks), "embed", unit="chunk", enabled=args.progress)
            try:
                for i in range(0, len(chunks), 256):
                    part = chunks[i : i + 256]
                    docs = [c[1] for c in part]
                    col.add(ids=[c[0] for c in part], documents=docs, metadatas=[c[2] for c in part],
                            embeddings=ef.encode(docs, progress=bar.update))
            finally:
                bar.close()
            print(f"stored {len(chunks)} paragraphs in {time.perf_counter() - t:.1f} s")
        print(f"collection {DEMO_COLLECTION!r} in {args.path}: {col.count()} paragraphs\n")
        print("Each question runs col.retrieve(mode='hybrid'): a dense ranking (all-MiniLM-L6-v2 vectors) and a "
              "BM25 full-text ranking, fused by their z-scores (dense 1 : BM25 0.7, the default chosen by measurement: "
              "docs/ARCHITECTURE.md); [dense rank, bm25 rank] shows why a "
              "paragraph came up.")
        for question in args.query or DEMO_QUESTIONS:
            t = time.perf_counter()
            res = col.retrieve(query_texts=[question], n_results=3, mode="hybrid")
            ms = (time.perf_counter() - t) * 1000
            print(f"\nQ: {question}   ({ms:.0f} ms, embedding the question included)")
            for id_, doc, ranks in zip(res["ids"][0], res["documents"][0], res["ranks"][0]):
                why = ", ".join(f"{k} #{v + 1}" if v is not None else f"{k} -" for k, v in ranks.items())
                print(f"  {id_} [{why}]: {doc[:110]}...")
        t = time.perf_counter()
        hits = col.get(where_document={"$regex": r"\bfinally\b"}, include=["documents"])
        print(f"\nexact text filter: $regex \\bfinally\\b matches {len(hits['ids'])} paragraphs "
              f"({(time.perf_counter() - t) * 1000:.1f} ms; RE2, trigram-indexed)")
    finally:
        client.close()
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import gleandb
    from gleandb.api.collection import store_info

    _require_store(args.path)
    client = gleandb.PersistentClient(args.path)
    try:
        for col in client.list_collections():
            info = store_info(col)
            print(
                f"{col.name}  id={col.id}  records={info['records']}  dimension={info['dimension']}  "
                f"space={info['space']}  segments={info['segments']}  version={info['version']}"
            )
    finally:
        client.close()
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    """Compact, drop versions beyond retention and delete unreferenced files (docs/forks.md)."""
    import json

    import gleandb

    from gleandb.api.settings import _GLEANDB_FIELDS as DEFAULTS

    _require_store(args.path)
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


# What `glean ingest` takes from a directory by default: prose and markup, source code and
# configuration. Not JSON (mostly data and lock files), HTML or anything binary.
TEXT_SUFFIXES = frozenset("""
    .md .markdown .mdx .rst .txt .text .adoc .asciidoc .org .tex
    .py .pyi .ipynb .js .jsx .mjs .cjs .ts .tsx .go .rs .java .kt .kts .scala .swift .c .h .cc .cpp .cxx .hpp
    .hh .cs .fs .rb .php .pl .lua .r .jl .dart .ex .exs .erl .hs .ml .clj .sql .sh .bash .zsh .fish .ps1
    .toml .yaml .yml .ini .cfg .conf .proto .graphql
""".split()) - {".ipynb"}  # notebooks are JSON: pass them by name or --glob
TEXT_NAMES = frozenset({"README", "LICENSE", "CHANGELOG", "Makefile", "Dockerfile"})
# directories never walked: version control, environments, caches, dependencies
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "env"})


DIRS_NOT_WALKED = "hidden or dependency directories"


def _is_default_text(f: Path) -> bool:
    return f.suffix.lower() in TEXT_SUFFIXES or f.name in TEXT_NAMES


def _collect_files(inputs: list[str], pattern: str | None) -> tuple[list[Path], list[str], Counter]:
    """Files named directly, and under directories (recursively) the files matching ``pattern``,
    or with ``pattern=None`` those of a common text format (``TEXT_SUFFIXES``); hidden and
    dependency directories are not walked. Each file once, in a stable order. Returns
    (files, inputs that do not exist, skipped counts by reason)."""
    files: list[Path] = []
    seen: set[Path] = set()
    missing: list[str] = []
    skipped: Counter = Counter()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = []
            for root, dirs, names in os.walk(p):
                keep = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
                if len(keep) < len(dirs):
                    skipped[DIRS_NOT_WALKED] += len(dirs) - len(keep)
                dirs[:] = keep
                for name in names:
                    f = Path(root) / name
                    if pattern is not None:
                        if f.relative_to(p).match(pattern):
                            found.append(f)
                        else:
                            skipped[f"not matching {pattern}"] += 1
                    elif name.startswith("."):
                        skipped["hidden files"] += 1
                    elif _is_default_text(f):
                        found.append(f)
                    else:
                        skipped[f"not a text format ({f.suffix.lower() or 'no extension'})"] += 1
            found.sort()
        elif p.is_file():
            found = [p]
        else:
            missing.append(item)
            continue
        for f in found:
            key = f.resolve()
            if key not in seen and f.is_file():
                seen.add(key)
                files.append(f)
    return files, missing, skipped


def _skipped_summary(skipped: Counter) -> str:
    """'skipped 12 files: 9 not a text format (.png 5, .pdf 4), 3 not UTF-8 text; did not walk
    2 hidden or dependency directories'."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for reason, n in skipped.items():
        if n and reason != DIRS_NOT_WALKED:
            head, _, detail = reason.partition(" (")
            groups.setdefault(head, []).append((detail.rstrip(")"), n))
    parts = []
    for head, items in sorted(groups.items(), key=lambda kv: (-sum(n for _, n in kv[1]), kv[0])):
        details = ", ".join(f"{d} {n}" for d, n in sorted(items, key=lambda x: (-x[1], x[0])) if d)
        parts.append(f"{sum(n for _, n in items)} {head}" + (f" ({details})" if details else ""))
    files = sum(n for items in groups.values() for _, n in items)
    out = f"skipped {files} file{'s' if files != 1 else ''}: " + ", ".join(parts) if parts else "skipped no files"
    if skipped[DIRS_NOT_WALKED]:
        out += f"; did not walk {skipped[DIRS_NOT_WALKED]} {DIRS_NOT_WALKED}"
    return out


class _NewStoreGuard:
    """Undo what a failed ``glean ingest`` created before its first write: a store that did
    not exist (its files, and its directory if that was created too) or a new collection."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dir_existed = os.path.isdir(path)
        self.store_existed = _has_catalog(path)
        self.before = set(os.listdir(path)) if self.dir_existed else set()

    def undo_store(self) -> None:
        if self.store_existed:
            return
        if not self.dir_existed:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for name in set(os.listdir(self.path)) - self.before:
            target = os.path.join(self.path, name)
            if os.path.isdir(target):
                shutil.rmtree(target, ignore_errors=True)
            else:
                try:
                    os.unlink(target)
                except OSError:
                    pass


def cmd_ingest(args: argparse.Namespace) -> int:
    import gleandb
    from gleandb.embeddings.functions import DefaultEmbeddingFunction, ef_name
    from gleandb.embeddings.progress import progress_bar

    if args.chunk_chars < 1:
        raise CommandError(f"--chunk-chars must be at least 1, got {args.chunk_chars}", code=2)
    files, missing, skipped = _collect_files(args.inputs, args.glob)
    if missing:
        raise CommandError(f"{', '.join(missing)}: no such file or directory", code=2)
    ids: list[str] = []
    docs: list[str] = []
    metas: list[dict] = []
    sources: dict[str, int] = {}
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            skipped["not UTF-8 text"] += 1
            continue
        except OSError as exc:
            print(f"glean ingest: skipping {f}: {exc.strerror or exc}", file=sys.stderr)
            skipped["unreadable"] += 1
            continue
        if "\x00" in text:
            skipped["binary (NUL bytes)"] += 1
            continue
        source = _display_path(f)
        chunks = chunk_text(text, args.chunk_chars)
        sources[source] = len(chunks)
        for n, chunk in enumerate(chunks):
            ids.append(f"{source}#{n}")
            docs.append(chunk)
            metas.append({"source": source, "chunk": n})
    what = f"files matching {args.glob!r}" if args.glob else "text files (see glean ingest --help)"
    if not docs:
        found = (f"{len(sources)} file{' holds' if len(sources) == 1 else 's hold'} no text" if sources
                 else f"no {what}")
        raise CommandError(f"{found} in {' '.join(args.inputs)}; {_skipped_summary(skipped)}; nothing was created")

    ef = DefaultEmbeddingFunction()
    guard = _NewStoreGuard(args.path)
    client = gleandb.PersistentClient(args.path)
    wrote = False
    created = False
    try:
        try:
            names = {c.name for c in client.list_collections()}
            created = args.collection not in names
            col = client.get_or_create_collection(args.collection, embedding_function=ef)
            used = ef_name(col.embedding_function)
            if used not in (None, "default"):
                raise CommandError(
                    f"collection {args.collection!r} uses the embedding function {used!r}; glean ingest embeds "
                    "with the default one (all-MiniLM-L6-v2): use another collection", code=2)
            had_records = col.count() > 0
            t = time.perf_counter()
            bar = progress_bar(len(docs), f"ingest {args.collection}", unit="chunk", enabled=args.progress)
            try:
                for s in range(0, len(docs), INGEST_BATCH):
                    part = slice(s, s + INGEST_BATCH)
                    embeddings = ef.encode(docs[part], progress=bar.update)
                    # upsert: ingesting a file again replaces its chunks
                    col.upsert(ids=ids[part], embeddings=embeddings, documents=docs[part], metadatas=metas[part])
                    wrote = True
            finally:
                bar.close()
        except BaseException:
            if not wrote and created and not guard.store_existed:
                client.close()
                guard.undo_store()
            elif not wrote and created:
                try:
                    client.delete_collection(args.collection)
                except Exception:  # noqa: S110 - the original error matters more
                    pass
            raise
        if had_records:
            # a file that shrank since the last ingest: drop its chunks past the new end
            for source, count in sources.items():
                col.delete(where={"$and": [{"source": source}, {"chunk": {"$gte": count}}]})
        seconds = time.perf_counter() - t
        rate = len(docs) / seconds if seconds > 0 else 0.0
        print(
            f"ingested {len(docs)} chunks from {len(sources)} files into {args.collection!r} "
            f"in {seconds:.2f} s ({rate:.1f} docs/s); collection now has {col.count()} records; "
            f"{_skipped_summary(skipped)}"
        )
    finally:
        client.close()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from gleandb.server.config import load_settings
    from gleandb.server.run import serve

    cli = {k: getattr(args, k) for k in (
        "path", "host", "port", "allow_reset", "max_body_bytes", "auth_tokens", "auth_basic",
        "cors_allow_origins", "log_level", "access_log", "max_response_bytes", "request_timeout_s",
        "role", "writer_url", "poll_interval_s", "cache_dir", "cache_memory_bytes", "cache_disk_bytes",
    )}
    storage = getattr(args, "storage", None) or os.environ.get("GLEAN_STORAGE") or None
    if storage:
        if args.path is not None:
            print("glean run: give --path (a directory) or --storage (s3://bucket/prefix), not both", file=sys.stderr)
            return 2
        cli["path"] = storage  # the store's location: an s3:// URL or a directory
    try:
        settings = load_settings(cli, args.config)
    except (OSError, ValueError) as exc:
        print(f"glean run: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glean", description="gleandb command line")
    parser.add_argument("--debug", action="store_true", default=os.environ.get("GLEAN_DEBUG", "") not in ("", "0"),
                        help="show the traceback of every error (GLEAN_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="embed part of the Python language reference and ask it questions (hybrid retrieval)",
        description="Embed --limit paragraphs of the Python language reference (text that ships with Python) "
        "with the default model, all-MiniLM-L6-v2, into a persistent store, then answer questions with "
        "col.retrieve(mode='hybrid'): dense vectors and BM25 fused by the default z-score fusion. Runs offline; "
        "embedding takes a few seconds per hundred paragraphs on a laptop CPU, once (the store is reused).")
    demo.add_argument("--path", default="./demo-data", help="store directory (default ./demo-data)")
    demo.add_argument("--query", "-q", action="append", help="a question to ask (repeatable)")
    demo.add_argument("--limit", type=int, default=600,
                      help="paragraphs to embed, taken round-robin over the reference's topics (default 600)")
    demo.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                      help="force the progress bar on or off (default: on when stderr is a terminal)")
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
        "From directories it takes, recursively, common text formats: prose and markup (.md .rst .txt "
        ".adoc .org .tex ...), source code (.py .js .ts .go .rs .java .c .h .cpp .rb .sh ...) and "
        "configuration (.toml .yaml .ini ...), not JSON, HTML or binaries, and it does not walk hidden "
        "directories (.git, .venv) or node_modules; --glob takes exactly the files matching a pattern "
        "instead. Files named on the command line are always taken. The summary counts what was "
        "skipped, by reason. A progress bar is shown on stderr when it is a terminal.",
    )
    ingest.add_argument("--path", default="./data", help="store directory (default ./data)")
    ingest.add_argument("--collection", required=True, help="collection name (created if missing)")
    ingest.add_argument("--glob", default=None,
                        help='take only the files matching this pattern from directories, e.g. "*.md" '
                             "(default: common text formats, see above)")
    ingest.add_argument("--chunk-chars", type=int, default=1000, help="largest chunk, in characters (default 1000)")
    ingest.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="force the progress bar on or off (default: on when stderr is a terminal)")
    ingest.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS", help="text files and directories")
    ingest.set_defaults(func=cmd_ingest)
    from gleandb.cli.context import add_parser as add_context_parser

    add_context_parser(sub)
    from gleandb.cli.label import add_parser as add_label_parser; add_label_parser(sub)  # noqa: E702
    from gleandb.cli.evals import add_parser as add_eval_parser; add_eval_parser(sub)  # noqa: E702
    from gleandb.cli.mcp import add_parser as add_mcp_parser; add_mcp_parser(sub)  # noqa: E702
    from gleandb.cli.code import add_parser as add_code_parser; add_code_parser(sub)  # noqa: E702
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
    run.add_argument("--storage", default=None,
                     help="store on object storage, s3://bucket/prefix (GLEAN_STORAGE; endpoint and credentials "
                          "from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...; see docs/object-storage.md)")
    run.add_argument("--host", default=None, help="address to bind (GLEAN_HOST, default 127.0.0.1)")
    run.add_argument("--port", type=int, default=None, help="port (GLEAN_PORT, default 8000)")
    run.add_argument("--allow-reset", action="store_true", default=None,
                     help="allow POST /api/v2/reset to delete everything (GLEAN_ALLOW_RESET)")
    run.add_argument("--max-body-bytes", type=int, default=None,
                     help="largest request body accepted, else 413 (GLEAN_MAX_BODY_BYTES, default 64 MiB)")
    run.add_argument("--max-response-bytes", type=int, default=None,
                     help="largest get/query response, else 413 (GLEAN_MAX_RESPONSE_BYTES, default 256 MiB)")
    run.add_argument("--request-timeout", type=float, default=None, dest="request_timeout_s",
                     help="seconds before a request's reads stop with 504; 0 = none "
                          "(GLEAN_REQUEST_TIMEOUT_S, default 30)")
    run.add_argument("--auth-token", action="append", default=None, dest="auth_tokens",
                     help="accept this static token (repeatable; GLEAN_AUTH_TOKENS, comma-separated)")
    run.add_argument("--auth-basic", action="append", default=None,
                     help="accept basic auth user:password (repeatable; GLEAN_AUTH_BASIC)")
    run.add_argument("--cors-allow-origin", action="append", default=None, dest="cors_allow_origins",
                     help="allow this CORS origin (repeatable; GLEAN_CORS_ALLOW_ORIGINS)")
    run.add_argument("--log-level", default=None, help="debug, info, warning, error (GLEAN_LOG_LEVEL)")
    run.add_argument("--config", default=None, help="YAML file of settings (GLEAN_CONFIG)")
    run.add_argument("--role", default=None, choices=["all", "writer", "query"],
                     help="all (default): reads and writes in one process; writer: the store's one writer; "
                          "query: a read-only node following the writer's files (docs/deploy.md) (GLEAN_ROLE)")
    run.add_argument("--writer-url", default=None,
                     help="--role query: where writes are forwarded, e.g. http://writer:8000 (GLEAN_WRITER_URL)")
    run.add_argument("--poll-interval", type=float, default=None, dest="poll_interval_s",
                     help="--role query: seconds between looks for new writes (GLEAN_POLL_INTERVAL_S, default 1)")
    run.add_argument("--cache-dir", default=None,
                     help="--role query: local directory caching segments (GLEAN_CACHE_DIR; default: memory only)")
    run.add_argument("--cache-memory-bytes", type=int, default=None,
                     help="--role query: memory cache bound (GLEAN_CACHE_MEMORY_BYTES, default 256 MiB)")
    run.add_argument("--cache-disk-bytes", type=int, default=None,
                     help="--role query: disk cache bound (GLEAN_CACHE_DISK_BYTES, default 10 GiB)")
    run.set_defaults(func=cmd_run)
    args = parser.parse_args(argv)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run a command; an expected error is one line on stderr and exit status 1 (or the
    CommandError's code), a bug keeps its traceback (every error does under --debug)."""
    from gleandb.embeddings.minilm import ModelNotAvailableError
    from gleandb.errors import ChromaError

    try:
        return args.func(args)
    except (CommandError, ChromaError, OSError, ValueError, ModelNotAvailableError) as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()
        print(f"glean {args.command}: {message[0] if message else type(exc).__name__}", file=sys.stderr)
        return getattr(exc, "code", 1) if isinstance(exc, CommandError) else 1
    except KeyboardInterrupt:
        print(f"glean {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
