"""``gleandb.errors`` mirrors ``chromadb.errors`` so ``from chromadb.errors import X`` ports unchanged."""

from gleandb.api.errors import *  # noqa: F401,F403
from gleandb.api.errors import error_types  # noqa: F401
