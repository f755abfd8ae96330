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
