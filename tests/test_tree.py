"""DEVELOPING.md's tree cannot drift: it names every module and package of src/clicktrail.

The rule, read from the tree block under "## The tree":

- An entry line is its indentation, then one or more names separated by single spaces, then
  (optionally) a description. A name is ``module.py`` or ``directory/``; a line whose first word
  is not a name continues the description above it, and names inside a description are prose.
- An entry's parent is the nearest directory entry above it that is indented less.
- Every package of src/clicktrail (a directory with ``__init__.py``) is listed as ``name/`` and
  every module as ``name.py``, each under its own package; ``__init__.py`` is not listed (its
  package's line stands for it). One exception: the contents of ``storage/migrations/`` (Alembic's
  environment and the numbered revisions), which that directory's line summarises.
- Every name the tree lists exists (directories that are not packages, such as the dashboard's
  ``templates/``, may be listed and then must exist too).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "clicktrail"
SUMMARISED = (PACKAGE / "storage" / "migrations",)
_NAME = re.compile(r"[\w.]+\.py|[\w./]+/")


def _tree_block() -> list[str]:
    text = (ROOT / "DEVELOPING.md").read_text(encoding="utf-8")
    after = text.split("## The tree", 1)[1]
    return after.split("```", 2)[1].splitlines()[1:]  # drop the fence's info string


def listed() -> set[Path]:
    """Every path the tree names, resolved from the repository's root."""
    paths: set[Path] = set()
    parents: list[tuple[int, Path]] = [(-1, ROOT)]
    for line in _tree_block():
        indent = len(line) - len(line.lstrip(" "))
        names = []
        for word in line.split():
            if not _NAME.fullmatch(word):
                break
            names.append(word)
        if not names:
            continue  # a description's continuation
        while parents[-1][0] >= indent:
            parents.pop()
        parent = parents[-1][1]
        for name in names:
            paths.add(parent / name.rstrip("/"))
        if names[0].endswith("/"):
            parents.append((indent, parent / names[0].rstrip("/")))
    return paths


def present() -> set[Path]:
    """Every package and module of src/clicktrail, but `__init__.py` and what is summarised."""
    paths = {PACKAGE}
    for path in PACKAGE.rglob("*.py"):
        if any(path.is_relative_to(s) and path != s for s in SUMMARISED):
            continue
        if path.name == "__init__.py":
            paths.add(path.parent)
        else:
            paths.add(path)
    return paths


def _show(paths: set[Path]) -> str:
    return ", ".join(sorted(str(p.relative_to(ROOT)) for p in paths))


def test_tree_lists_every_module_and_package() -> None:
    missing = present() - listed()
    assert not missing, f"missing from DEVELOPING.md's tree (at their place): {_show(missing)}"


def test_tree_lists_nothing_that_is_gone() -> None:
    gone = {p for p in listed() if not p.exists()}
    assert not gone, f"DEVELOPING.md's tree lists what does not exist: {_show(gone)}"


# Issue 15: a module that grows past this is split by area before it lands. Generated data
# tables (the SMS shift tables) are exempt: they are data, read by nobody line by line.
MAX_LINES = 600
DATA_TABLES = {"domain/sms/shift_tables.py", "domain/sms/shift_tables_indic.py"}


def test_no_module_is_over_600_lines() -> None:
    over = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if str(path.relative_to(PACKAGE)) not in DATA_TABLES
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not over, f"modules over {MAX_LINES} lines (split them by area): {over}"


def test_test_modules_have_unique_names() -> None:
    """Tests are imported by their file's basename (rootdir imports, no packages), so two
    ``test_dashboard.py`` in two folders stop the whole suite at collection."""
    seen: dict[str, list[str]] = {}
    for path in (ROOT / "tests").rglob("*.py"):
        if path.name != "conftest.py" and path.name != "__init__.py":
            seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert not {n: p for n, p in seen.items() if len(p) > 1}
