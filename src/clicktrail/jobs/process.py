"""The jobs process: the background jobs beside the server(s) of `clicktrail serve`.

`JobsProcess` (in the server's process) spawns `run_jobs` and stops it last, after the servers
drained their click logs, so that its final pass sees every click. `run_jobs` runs the jobs
`Container.background_jobs` wires (the click pipeline, the sending worker) on a `Periodic`
scheduler, niced, until SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from typing import Any

from clicktrail.bootstrap import Container, configure_logging
from clicktrail.config import Settings
from clicktrail.services.scheduler import Periodic

log = logging.getLogger("clicktrail")


def run_jobs(settings: Settings, parent_pid: int, ready: Any = None, niceness: int = 10) -> None:
    """Run the background jobs until SIGTERM, then the final pass; the body of the jobs
    process `clicktrail serve` starts beside its server(s).

    At a lower CPU priority (`niceness`), so that on a busy core redirects come first and the
    jobs catch up in quieter moments; on the CPUs of `jobs_cpus` when it is set (off the
    redirect's cores, the only way to keep them from delaying redirects: ADR 0011). Exits at
    once, without the final pass, if the parent dies (e.g. SIGKILL): the next start does that
    work.
    """
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server; it stops us
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stop.set())
    if ready is not None:  # the parent waits for this before it sends SIGTERM
        ready.send(True)
        ready.close()
    cpus = settings.jobs_cpu_set()
    if cpus is not None:  # before any thread starts: threads inherit it
        os.sched_setaffinity(0, cpus)
    if niceness:
        # Niced, not SCHED_IDLE (tried, ADR 0010): an idle-class process gets almost no time
        # on a saturated core, and this one holds database write locks and may run the
        # sending worker. At nice 10 it keeps about a tenth of a contended core.
        os.nice(niceness)
    configure_logging(settings.log_level)
    container = Container(settings, run_migrations=False)
    jobs, final_pass = container.background_jobs()
    # Load the user-agent rules and IP datasets now (about 2 s), not on the first click.
    container.classifier.warm_up()
    runner = Periodic(jobs)
    runner.start()
    try:
        while not stop.wait(0.5):
            if os.getppid() != parent_pid:
                # At once: stopping the runner would wait for the pass running now, and a
                # pass drains the whole inbox — minutes of work after a burst, for nobody.
                # Its open transaction is rolled back; the next start does that work.
                log.warning("the server process is gone; the jobs process stops")
                os._exit(0)
        runner.stop()
        final_pass()
    finally:
        runner.stop()
        container.dispose()


class JobsProcess:
    """The background jobs' process (`run_jobs`), stopped after the server drained so that its
    final pass sees every click."""

    def __init__(self, settings: Settings) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready, child_end = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=run_jobs, args=(settings, os.getpid(), child_end),
            name="clicktrail-jobs", daemon=False,
        )  # fmt: skip
        self.started = False

    def start(self) -> None:
        """Start the process."""
        self.process.start()
        self.started = True

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the process to finish (final pass included) and wait up to `timeout` seconds;
        then stop it (a backlog it leaves stays in the inbox for the next start)."""
        if not self.started:
            return
        # Until it has its SIGTERM handler (a spawned interpreter takes a second or two to
        # import), SIGTERM would kill it without the final pass.
        if self.process.is_alive() and not self.ready.poll(timeout):
            log.warning("the jobs process did not start in time")
        self.process.terminate()  # SIGTERM: it finishes its pass, then the final one
        self.process.join(timeout)
        if self.process.is_alive():
            log.warning(
                "the jobs process is still working on a backlog; stopping it (the rest is "
                "processed at the next start, or now with `clicktrail bots process`)"
            )
            self.process.kill()
            self.process.join()
