"""Errors of ``gleandb.memory``: named for the caller's mistake, so an agent (or the MCP
layer) can tell "no such memory in this scope" from "bad argument"."""

from __future__ import annotations


class MemoryStoreError(Exception):
    """Base class of every error raised by ``gleandb.Memory`` itself."""


class MemoryNotFoundError(MemoryStoreError, KeyError):
    """No live memory with this id in this scope (another scope's ids look exactly like
    ids that never existed, so the error does not reveal them)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MemoryArgumentError(MemoryStoreError, ValueError):
    """A bad argument; the message names the argument and the value. Nothing was written."""
