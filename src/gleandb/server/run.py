"""Run the server: ``glean run`` calls ``serve(settings)``."""

from __future__ import annotations

import logging
import signal
import sys

from gleandb.server.config import ServerSettings


def configure_access_log(settings: ServerSettings) -> None:
    """``gleandb.access``: bare JSON lines on stderr at info level, whatever ``log_level`` is
    (``access_log: false`` turns it off)."""
    logger = logging.getLogger("gleandb.access")
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
    if not settings.access_log:
        logger.setLevel(logging.CRITICAL + 1)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def limit_blas_threads(threads: int) -> bool:
    """Cap every BLAS library loaded in this process at ``threads`` threads (0: leave them).

    The server runs requests in parallel threads, and each query's matrix product is small:
    a BLAS thread pool on top only adds threads that spin on busy cores while they wait for
    each other (measured under bench/bench_server_load.py: query p99 1.5 s -> 0.14 s, server
    CPU per request 3.5 -> 2.2 ms). Returns whether a limit was set."""
    if threads <= 0:
        return False
    import faiss  # noqa: F401  (its own OpenBLAS must be loaded to be limited)
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    return True


def serve(settings: ServerSettings) -> int:
    try:
        import uvicorn

        from gleandb.server.app import create_app
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(f"glean run needs the server dependencies ({exc.name} is missing): pip install 'gleandb[server]'",
              file=sys.stderr)
        return 2
    from gleandb.errors import ObjectStoreUnavailableError, StoreLockedError

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_access_log(settings)
    try:
        app = create_app(settings.path, settings)
    except (StoreLockedError, ObjectStoreUnavailableError, ValueError) as exc:
        print(f"glean run: {exc}", file=sys.stderr)
        return 1
    limit_blas_threads(settings.blas_threads)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # one process: the store directory has one writer; requests run in the thread pool
        workers=1,
        timeout_graceful_shutdown=30,
        server_header=False,
        # gleandb's JSON access log (gleandb.access) replaces uvicorn's
        access_log=False,
    )
    class _Server(uvicorn.Server):
        def handle_exit(self, sig, frame):  # type: ignore[override]
            super().handle_exit(sig, frame)
            # SIGTERM is the ordinary way to stop a service: after the graceful shutdown,
            # exit with status 0 instead of re-raising the signal as uvicorn does
            captured = getattr(self, "_captured_signals", None)
            if sig == signal.SIGTERM and captured and captured[-1] == sig:
                captured.pop()

    server = _Server(config)
    try:
        # uvicorn handles SIGINT/SIGTERM: stop accepting, finish in-flight requests, run the
        # lifespan shutdown (which closes the clients)
        server.run()
    finally:
        app.state.glean.close()  # idempotent; the WAL is durable, nothing needs flushing
    return 0 if server.started else 1
