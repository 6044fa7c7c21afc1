"""``glean run``: Chroma's v2 HTTP API served by the embedded engine.

``create_app(path, settings)`` builds the FastAPI application; ``ServerSettings``
holds the server's options (flags, ``GLEAN_*`` environment variables, YAML file).
See docs/server.md.
"""

from gleandb.server.config import ServerSettings, load_settings

__all__ = ["ServerSettings", "create_app", "load_settings"]


def create_app(path: str, settings: ServerSettings | None = None):
    from gleandb.server.app import create_app as _create_app

    return _create_app(path, settings)
