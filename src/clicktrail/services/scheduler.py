"""The jobs' scheduler: background jobs at their intervals on one thread.

Used by the jobs process (`clicktrail.jobs.process`) and by a server process that runs its jobs
itself (`bootstrap.create_app`: `uvicorn --factory`, tests). It lives here, below both, so that
the composition root needs nothing from the `jobs` entry point (the layers contract in
pyproject.toml).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from clicktrail.domain.errors import StorageUnavailable

log = logging.getLogger("clicktrail.jobs")

Job = tuple[float, Callable[[], object]]  # (interval in seconds, the job)


class Periodic:
    """Runs background jobs (e.g. finalizing bot verdicts) at their intervals on one thread.

    A failing job is logged and tried again at its next turn.
    """

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = list(jobs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (no-op without jobs)."""
        if self.jobs:
            self._thread = threading.Thread(target=self._run, name="clicktrail-jobs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the job running now, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        due = [time.monotonic() + interval for interval, _ in self.jobs]
        while not self._stop.is_set():
            now = time.monotonic()
            for i, (interval, job) in enumerate(self.jobs):
                if now >= due[i]:
                    try:
                        job()
                    except StorageUnavailable:
                        pass  # storage logs the outage once; the job runs again at its turn
                    except Exception:
                        log.exception("background job %s failed", getattr(job, "__name__", job))
                    due[i] = time.monotonic() + interval
            self._stop.wait(max(0.05, min(due) - time.monotonic()))


class OwnThread:
    """Runs `work` on a thread of its own, one run at a time: for a job whose remote end (a
    webhook endpoint, a broker) can be slow, which must not hold up the jobs that share the
    scheduler's thread. Its failures are logged as `what` failed."""

    def __init__(self, work: Callable[[], object], name: str, what: str) -> None:
        self.work, self.name, self.what = work, name, what
        self._runner: threading.Thread | None = None
        self._lock = threading.Lock()

    def kick(self) -> None:
        """Start a run unless one is running (the scheduler calls this at the job's interval)."""
        with self._lock:
            if self._runner is not None and self._runner.is_alive():
                return
            self._runner = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._runner.start()

    def _run(self) -> None:
        try:
            self.work()
        except StorageUnavailable:
            pass  # storage logs the outage once; the next kick tries again
        except Exception:
            log.exception("%s failed", self.what)

    def join(self) -> None:
        """Wait for the run in progress, if any."""
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.join()
