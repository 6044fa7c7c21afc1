"""Memory for agents: ``gleandb.Memory(client, scope=...)`` remembers, recalls, updates and
forgets what was said, on an ordinary collection (see ``memory.py`` and docs/memory.md)."""

from gleandb.memory.errors import MemoryArgumentError, MemoryNotFoundError, MemoryStoreError
from gleandb.memory.memory import Memory
from gleandb.memory.records import MemoryHit
from gleandb.memory.supersede import Decision, MemoryJudgeWarning

MemoryError = MemoryStoreError  # noqa: A001 - the brief's name; shadows the builtin only as gleandb.memory.MemoryError

__all__ = ["Decision", "Memory", "MemoryArgumentError", "MemoryHit", "MemoryJudgeWarning", "MemoryNotFoundError",
           "MemoryStoreError"]
