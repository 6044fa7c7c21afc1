"""Re-export of ``gleandb.errors`` (where the error classes live, as a leaf module every
layer may import) for code that imports them from ``gleandb.api.errors``."""

from gleandb.errors import *  # noqa: F401,F403
from gleandb.errors import error_types  # noqa: F401
