"""One background thread per open store that runs flushes and compactions.

Jobs run one at a time in submission order, which is what keeps manifests
monotone: a memtable frozen earlier is always published before a later one.

Flushes come first, as in LevelDB (``DoCompactionWork`` compacts a waiting immutable
memtable between keys): a job submitted ``urgent`` (a frozen memtable's persist) is
also run by ``run_urgent``, which a long job (compaction, minutes at a million rows)
calls between its steps. Otherwise writers, stalled after two frozen memtables, would
wait out the stall's bound and pile more frozen memtables in memory behind it. Urgent
jobs still run one at a time, in their submission order, on this one thread.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from typing import Callable

log = logging.getLogger("gleandb.engine")


class BackgroundWorker:
    def __init__(self, name: str = "gleandb-worker"):
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._urgent: collections.deque[_RunOnce] = collections.deque()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stopped = False
        self.errors: list[BaseException] = []
        self._thread.start()

    def submit(self, job: Callable[[], None], urgent: bool = False) -> None:
        if self._stopped:
            return
        if urgent:  # queued as usual (``wait_idle`` counts it), and runnable early
            job = _RunOnce(job)
            self._urgent.append(job)
        self._queue.put(job)

    def run_urgent(self) -> None:
        """Run the urgent jobs submitted so far, now. Only from a job on this worker's
        thread (elsewhere it does nothing): the job calling it must hold no lock those
        jobs take, and must tolerate what they change (compaction does: it re-reads the
        collection's segments before it publishes)."""
        if threading.current_thread() is not self._thread:
            return
        while self._urgent and not self._stopped:
            job = self._urgent.popleft()
            try:
                job()
            except BaseException as e:  # as in _run: the WAL still covers the data
                log.exception("background job failed")
                self.errors.append(e)

    def wait_idle(self) -> None:
        """Block until every job submitted so far (and those they submit) has run."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if isinstance(job, _RunOnce):
                    try:
                        self._urgent.remove(job)
                    except ValueError:
                        pass  # already run by run_urgent
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


class _RunOnce:
    """A job that runs at most once, whether ``run_urgent`` or the queue gets to it first."""

    __slots__ = ("_job",)

    def __init__(self, job: Callable[[], None]):
        self._job: Callable[[], None] | None = job

    def __call__(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            job()
