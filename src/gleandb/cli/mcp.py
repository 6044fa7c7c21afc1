"""``glean mcp --path DIR``: gleandb's MCP server over stdio, for MCP hosts that start it as a
subprocess (Claude Desktop, Claude Code, Cursor, VS Code). See docs/mcp.md."""

from __future__ import annotations

import argparse


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser(
        "mcp",
        help="serve gleandb's tools to a model over MCP (stdio)",
        description="Serve the Model Context Protocol over stdin/stdout on a store directory: tools to list, "
        "create, fork and delete collections, add documents, query / retrieve (hybrid) / grep / get them and "
        "build a cited context, and resources for the collections. The store is created if missing. "
        "For HTTP, `glean run` serves the same tools at /mcp behind its auth. See docs/mcp.md.",
    )
    p.add_argument("--path", default="./data", help="store directory (default ./data)")
    p.add_argument("--config", default=None,
                   help="YAML file of `glean run` settings (GLEAN_CONFIG); the context tool's re-ranker policy "
                        "comes from it and GLEAN_RERANK_* (rerank_base_urls, rerank_allow_request_keys, "
                        "rerank_cross_encoders)")
    p.set_defaults(func=cmd_mcp)


def cmd_mcp(args: argparse.Namespace) -> int:
    from gleandb.cli.main import CommandError

    try:
        from gleandb.server.mcp import run_stdio
    except ImportError as exc:
        raise CommandError(f"the MCP server needs the mcp package: pip install 'gleandb[mcp]' ({exc})") from None
    from gleandb.server.config import load_settings

    settings = load_settings({"path": args.path}, args.config)
    run_stdio(args.path, settings)
    return 0
