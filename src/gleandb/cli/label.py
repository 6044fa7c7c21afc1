"""``glean label COLLECTION``: serve the labeling page over an embedded store (docs/evals-label.md)."""

from __future__ import annotations

import argparse
import socket
import sys


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser(
        "label",
        help="serve the labeling page (grade pooled candidates 0-3; export a golden set)",
        description="Serve the labeling page for COLLECTION of the store at --path: one query at a time "
        "with candidates pooled from dense, BM25 and hybrid retrieval, shuffled, graded 0-3 with the "
        "keyboard by one or several people at once. Labels are stored durably in the store. "
        "--golden FILE loads queries to label (queries already loaded are kept as they are); "
        "--export FILE writes the labeled golden set and exits. See docs/evals-label.md.",
    )
    p.add_argument("collection")
    p.add_argument("--path", default="./data", help="store directory (default ./data)")
    p.add_argument("--golden", help="golden-set JSONL file whose queries to label")
    p.add_argument("--export", metavar="FILE", help="write the golden set built from the labels and exit")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for a party)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    p.add_argument("--k", type=int, default=10, help="candidates per configuration before pooling (default 10)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(func=cmd_label)


def cmd_label(args: argparse.Namespace) -> int:
    import gleandb
    from gleandb.evals.labels import LabelError, label_store, read_golden, write_golden

    from gleandb.cli.main import _require_store

    _require_store(args.path)  # labels belong to an existing collection: never create a store
    clients: dict[tuple[str, str], object] = {}
    client = gleandb.PersistentClient(args.path)
    clients[(gleandb.DEFAULT_TENANT, gleandb.DEFAULT_DATABASE)] = client
    try:
        try:
            col = client.get_collection(args.collection, embedding_function=None)
        except Exception as exc:  # NotFoundError
            print(f"glean label: {exc}", file=sys.stderr)
            return 2
        store = label_store(col)
        if args.golden:
            try:
                counts = store.import_golden(read_golden(args.golden), labeler="import", collection=col)
            except (OSError, LabelError) as exc:
                print(f"glean label: {args.golden}: {exc}", file=sys.stderr)
                return 2
            print(f"{args.golden}: {counts['added']} queries loaded, {counts['skipped']} already there")
        if args.export:
            lines = store.export()
            write_golden(args.export, lines)
            n_labeled = sum(1 for r in lines if r["source"] == "labeled")
            print(f"wrote {len(lines)} queries ({n_labeled} labeled) to {args.export}")
            return 0
        return _serve(args, client, clients)
    finally:
        for c in clients.values():
            c.close()


def _serve(args: argparse.Namespace, client, clients: dict) -> int:
    try:
        import uvicorn
        from fastapi import FastAPI
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(f"glean label needs the server dependencies ({exc.name} is missing): pip install 'gleandb[server]'",
              file=sys.stderr)
        return 2
    import gleandb
    from gleandb.server.label_ui import PREFIX, make_router

    def client_for(tenant: str, database: str):
        key = (tenant, database)
        if key not in clients:
            clients[key] = gleandb.PersistentClient(args.path, tenant=tenant, database=database)
        return clients[key]

    app = FastAPI(title="gleandb labeling", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(make_router(client_for))
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"glean label: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{shown}:{port}{PREFIX}?collection={args.collection}" + (f"&k={args.k}" if args.k != 10 else "")
    print(f"labeling page: {url}  (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, server_header=False))
    server.run(sockets=[sock])
    return 0
