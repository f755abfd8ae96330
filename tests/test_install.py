"""Installing: constraints.txt pins every dependency of pyproject.toml, and `make run` installs
from it once, then starts at once (docs/operations.md, "Installing")."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_constraints_pin_every_dependency_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = _pins()
    stale = []
    for text in wanted:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(default_environment()):
            continue
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None or not req.specifier.contains(pinned, prereleases=True):
            stale.append(f"{text} (pinned: {pinned})")
    assert not stale, f"constraints.txt is out of date, run `make lock`: {stale}"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_installs_once_and_again_only_when_the_pins_change(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "uv"):
        (bin_dir / tool).touch()
    past = time.time() - 60
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        os.utime(tmp_path / name, (past, past))
    (tmp_path / ".venv" / ".installed").touch()

    # Run as a top-level make, even when the suite itself runs under `make test` (a nested
    # make prints "Entering directory" lines and inherits the parent's flags).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}

    def planned() -> str:
        return subprocess.run(
            ["make", "--no-print-directory", "-n", "run"],
            cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    assert planned().strip().splitlines() == [".venv/bin/clicktrail serve --demo"]
    (tmp_path / "constraints.txt").touch()  # `make lock` changed a pin
    plan = planned()
    assert re.search(r"uv pip install .*-c constraints\.txt -e \.", plan), plan
    assert " -q" not in plan  # the install shows its progress
