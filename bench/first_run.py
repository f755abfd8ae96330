"""Time a new user's `make run`: from the command to the demo server answering /healthz, in a
fresh clone (empty .venv), then a second time in the same clone (everything installed).

    .venv/bin/python bench/first_run.py                   # uv (the default installer)
    .venv/bin/python bench/first_run.py --installer pip   # pip alone, for comparison

Needs the package index this machine is configured with (uv and pip download or take from their
caches: a warm cache makes the first run faster, say which in RESULTS). The server is stopped
after each run; only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def time_make_run(clone: Path, installer: str, limit: float = 600.0) -> float:
    """Return the seconds from `make run` to /healthz answering 200 in `clone`; stop it."""
    port = _free_port()
    env = {**os.environ, "CLICKTRAIL_PORT": str(port)}
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"INSTALLER={installer}"],
        cwd=clone, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        while not _healthy(port):
            if proc.poll() is not None:
                raise SystemExit(f"make run exited with {proc.returncode} in {clone}")
            if time.perf_counter() - start > limit:
                raise SystemExit(f"no answer from make run within {limit:.0f} s")
            time.sleep(0.05)
        return time.perf_counter() - start
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--installer", choices=("uv", "pip"), default="uv")
    ap.add_argument("--keep", action="store_true", help="keep the clone")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="clicktrail-first-run-"))
    clone = scratch / "clicktrail"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip
    load = os.getloadavg()[0]
    try:
        first = time_make_run(clone, args.installer)
        second = time_make_run(clone, args.installer)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"commit {commit}, installer {args.installer}, load average {load:.1f} at the start")
    print(f"| first make run (fresh clone) | {first:.1f} s |")
    print(f"| second make run | {second:.2f} s |")


if __name__ == "__main__":
    main()
