"""One background thread per open store that runs flushes and compactions.

Jobs run one at a time in submission order, which is what keeps manifests
monotone: a memtable frozen earlier is always published before a later one.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

log = logging.getLogger("gleandb.engine")


class BackgroundWorker:
    def __init__(self, name: str = "gleandb-worker"):
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stopped = False
        self.errors: list[BaseException] = []
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        if self._stopped:
            return
        self._queue.put(job)

    def wait_idle(self) -> None:
        """Block until every job submitted so far (and those they submit) has run."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
            except BaseException as e:  # keep the worker alive; the WAL still covers the data
                log.exception("background job failed")
                self.errors.append(e)
            finally:
                self._queue.task_done()

    def stop(self) -> None:
        """Finish the job in progress, drop the rest, and end the thread."""
        if self._stopped:
            return
        self._stopped = True
        try:
            while True:
                self._queue.get_nowait()
                self._queue.task_done()
        except queue.Empty:
            pass
        self._queue.put(None)
        self._thread.join()
