"""No import circles inside clicktrail.

The layers contract (pyproject.toml, `lint-imports`) keeps the layers apart, but says nothing
inside one layer: there, modules could still import each other in a circle (as
`storage/sql_store ↔ reports ↔ sending` and `services/campaigns ↔ sending ↔ ports` once did).
Two checks over grimp's graph (the one import-linter builds), counting every import that runs,
at module level or inside a function, and not those under `if TYPE_CHECKING:` (they never run):

- no circle between modules;
- no circle between the sibling modules and packages of any package, each package taken as
  everything under it (`services/sending/` and `services/wrapping/` may not import each other
  both ways, even through different modules).
"""

from __future__ import annotations

import graphlib
import itertools
from functools import cache

import grimp
import pytest

PACKAGE = "clicktrail"


@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True)


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as cycle:
        return list(reversed(cycle.args[1]))  # graphlib lists it imported-first
    return None


def _explain(cycle: list[str]) -> str:
    graph = _graph()
    lines = []
    for importer, imported in itertools.pairwise(cycle):
        details = graph.get_import_details(importer=importer, imported=imported)
        where = ", ".join(f"l.{d['line_number']}" for d in details) or "(through submodules)"
        lines.append(f"  {importer} -> {imported} {where}")
    return "\n".join(lines)


def test_no_circle_between_modules() -> None:
    graph = _graph()
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    cycle = _cycle(edges)
    assert cycle is None, "import circle:\n" + _explain(cycle or [])


def _packages() -> list[str]:
    graph = _graph()
    return sorted(m for m in graph.modules if graph.find_children(m))


@pytest.mark.parametrize("package", _packages())
def test_no_circle_between_siblings(package: str) -> None:
    graph = _graph()
    children = graph.find_children(package)
    owner = {
        module: child for child in children for module in {child} | graph.find_descendants(child)
    }
    edges: dict[str, set[str]] = {child: set() for child in children}
    for module, child in owner.items():
        for imported in graph.find_modules_directly_imported_by(module):
            other = owner.get(imported)
            if other is not None and other != child:
                edges[child].add(other)
    cycle = _cycle(edges)
    assert cycle is None, f"circle between the parts of {package}: {' -> '.join(cycle or [])}"
