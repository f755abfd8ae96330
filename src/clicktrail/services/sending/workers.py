"""The background worker: sending jobs run on threads of the server process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from clicktrail.services.sending.records import PAUSED, RUNNING, SendJobStore

log = logging.getLogger("clicktrail.sending")


class JobRunner(Protocol):
    """What the worker needs of the sending service (`Sending`): its jobs, its clock, which
    jobs wait for a sender, and running one of them."""

    jobs: SendJobStore
    clock: Callable[[], int]

    def runnable(self) -> list[int]: ...
    def run_job(self, campaign_id: int, should_stop: Callable[[], bool]) -> None: ...


class SendWorker:
    """Runs sending jobs on threads of the server process: those started through the API and
    any running job whose sender died. `tick` (a periodic server job) looks for them; `stop`
    lets each finish its batch and leaves the job running for the next process."""

    def __init__(self, sending: JobRunner, max_jobs: int = 8, *, enabled: bool = True) -> None:
        self.sending = sending
        self.max_jobs = max_jobs
        self.enabled = enabled
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def tick(self) -> None:
        """Start a thread for each runnable job not running here yet."""
        if self._stop.is_set():
            return
        for cid in self.sending.runnable():
            self.launch(cid)

    def launch(self, campaign_id: int) -> bool:
        """Run the campaign's job on a thread of this process unless one already does or the
        worker is full or stopping; return True when a thread was started."""
        with self._lock:
            if self._stop.is_set() or not self.enabled:
                return False
            self._threads = {c: t for c, t in self._threads.items() if t.is_alive()}
            if campaign_id in self._threads or len(self._threads) >= self.max_jobs:
                return False
            thread = threading.Thread(
                target=self._run, args=(campaign_id,), name=f"clicktrail-send-{campaign_id}",
                daemon=True,
            )  # fmt: skip
            self._threads[campaign_id] = thread
            thread.start()
            return True

    def _run(self, campaign_id: int) -> None:
        try:
            self.sending.run_job(campaign_id, self._stop.is_set)
        except Exception:
            log.exception("sending job of campaign %s failed", campaign_id)
            try:
                self.sending.jobs.set_state(
                    campaign_id, PAUSED, self.sending.clock(), expect=(RUNNING,),
                    last_error="the sender failed; see the server log, then resume",
                )  # fmt: skip
            except Exception:
                log.exception("could not pause the job of campaign %s", campaign_id)

    def busy(self) -> list[int]:
        """Return the campaigns whose job runs on a thread here."""
        with self._lock:
            return [c for c, t in self._threads.items() if t.is_alive()]

    def stop(self, timeout: float = 30.0) -> None:
        """Ask every job thread to stop after its batch and wait for them (up to `timeout`)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
