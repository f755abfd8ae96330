"""Which database a command opens: the project's from any of its subfolders, and, when it finds
no workspace, the command says which database it looked in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLICKTRAIL = str(Path(sys.executable).with_name("clicktrail"))


def run(cwd: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run `clicktrail ARGS…` in `cwd` with no CLICKTRAIL_ variable but `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKTRAIL_")}
    env.update(settings, NO_COLOR="1", TERM="dumb", COLUMNS="200")
    return subprocess.run(
        [CLICKTRAIL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_command_run_from_a_subfolder_opens_the_projects_database(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    (project / "campaigns" / "autumn").mkdir(parents=True)
    assert run(project, "workspace", "create", "Acme").returncode == 0
    assert (project / "var" / "clicktrail.db").is_file()

    listed = run(project / "campaigns" / "autumn", "workspace", "list")
    assert listed.returncode == 0, listed.stderr
    assert "acme" in listed.stdout
    assert not (project / "campaigns" / "autumn" / "var").exists()


def test_no_workspace_names_the_sqlite_file_it_opened(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run(elsewhere, "campaign", "list")
    assert proc.returncode == 3, proc.stderr
    assert "no workspace yet" in proc.stderr
    assert str(elsewhere / "var" / "clicktrail.db") in proc.stderr.replace("\n", "")

    named = run(elsewhere, "campaign", "list", "-w", "acme")
    assert named.returncode == 3
    assert str(elsewhere / "var" / "clicktrail.db") in named.stderr.replace("\n", "")

    empty = run(elsewhere, "workspace", "list")
    assert empty.returncode == 0
    assert "no workspace yet in " + str(elsewhere / "var" / "clicktrail.db") in empty.stderr


def test_no_workspace_names_the_database_url_without_its_password(
    database_url: str, tmp_path: Path
) -> None:
    # The database fixture is empty: no workspace. A password in the URL is never printed.
    url = database_url
    if url.startswith("postgresql"):
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://postgres:hunter2@{rest.split('@', 1)[1]}"
    proc = run(tmp_path, "report", "x", CLICKTRAIL_DATABASE_URL=url)
    assert proc.returncode == 3, proc.stderr
    stderr = proc.stderr.replace("\n", "")
    assert "no workspace yet" in stderr
    assert "hunter2" not in stderr
    if url.startswith("postgresql"):
        assert "postgresql+psycopg://postgres:***@" + url.split("@", 1)[1] in stderr
    else:
        assert url.removeprefix("sqlite:///") in stderr
