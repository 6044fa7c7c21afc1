"""The Search API's builder classes, as users import them (``from gleandb import Search, K, Knn``).

They are plain values shared with the executor below the API, so they live in
``gleandb.expression.search`` (wire format and chromadb parity documented there);
this module re-exports them.
"""

from gleandb.expression.search import *  # noqa: F401,F403
from gleandb.expression.search import __all__  # noqa: F401
