"""Helpers for the MCP tests: run a coroutine against a client, read a tool's JSON answer."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp SDK is installed by gleandb's test extra")

from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

HASHING = {"embedding_function": {"name": "gleandb_hashing", "config": {"dim": 64}}}
# how long a test waits for one answer: a bound against hangs, not a speed expectation
TIMEOUT_S = 120


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT_S))


def stdio_params(path: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "gleandb.cli.main", "mcp", "--path", path])


def ok(result: Any) -> Any:
    """The JSON a tool answered; fails the test on a tool error."""
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def error(result: Any) -> str:
    """The message of a tool error; fails the test when the call succeeded."""
    assert result.is_error, f"expected a tool error, got {result.content[0].text[:300]}"
    return result.content[0].text


async def call(c: "Client", tool: str, /, **arguments: Any) -> Any:
    return await c.call_tool(tool, arguments)


__all__ = ["Client", "HASHING", "call", "error", "ok", "run", "stdio_params"]
