"""The package's layers run one way: no module imports one of a higher layer, and no modules
import each other in a cycle (counting imports inside functions too, which hide cycles rather
than remove them). Parsed from the source with `ast`; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("infrastructure", ("mamrl", "mamrl.errors", "mamrl.runs", "mamrl.validate", "mamrl.executors")),
    ("topologies", ("mamrl.topologies",)),
    ("sim", ("mamrl.sim",)),
    ("agents and envs", ("mamrl.agents", "mamrl.envs", "mamrl.consensus")),
    ("meta", ("mamrl.meta",)),
    ("training and experiments", ("mamrl.algorithms", "mamrl.training", "mamrl.experiments")),
    ("plotting", ("mamrl.plotting",)),
    ("report", ("mamrl.report",)),
    ("benchmarks", ("mamrl.benchmarks",)),
    ("cli", ("mamrl.cli", "mamrl.console", "mamrl.__main__")),
)
"""Bottom to top. A module may import its own layer's modules and those of lower layers."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / "mamrl").rglob("*.py"))}


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) of every import of a mamrl module in `path`.
    `from package import name` counts as importing `package.name` when that is a module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    local_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    type_checking = {id(n) for block in ast.walk(tree)
                     if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                     for n in ast.walk(block)}
    found = []
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue  # annotations only: never executed
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        for target in targets:
            if target == "mamrl" or target.startswith("mamrl."):
                found.append((target, node.lineno, id(node) in local_nodes))
    return found


def layer_of(module: str) -> int:
    best, depth = None, -1
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = rank, prefix.count(".")
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best


def import_graph() -> nx.DiGraph:
    known = modules()
    graph = nx.DiGraph()
    for name, path in known.items():
        graph.add_node(name)
        for target, line, local in imports(path, known):
            if target != name:
                graph.add_edge(name, target, line=line, local=local)
    return graph


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer_of(name)


def test_no_import_runs_up_the_layers() -> None:
    graph = import_graph()
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]}) at line {d['line']}"
              + (" inside a function" if d["local"] else "")
              for a, b, d in graph.edges(data=True) if layer_of(b) > layer_of(a)]
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c + [c[0]]) for c in cycles[:10])


def test_the_checks_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser sees an upward import inside a function and a cycle (on a scratch package)."""
    package = tmp_path / "mamrl"
    (package / "sim").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sim" / "__init__.py").write_text("")
    (package / "sim" / "a.py").write_text("def f():\n    from mamrl.cli import app\n    from . import b\n")
    (package / "sim" / "b.py").write_text("from mamrl.sim import a\n")
    (package / "cli.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path)
    graph = import_graph()
    assert graph.edges["mamrl.sim.a", "mamrl.cli"]["local"]
    assert layer_of("mamrl.cli") > layer_of("mamrl.sim.a")
    assert list(nx.simple_cycles(graph)) != []


LAZY_EXEMPT = ("mamrl.cli",)
"""Modules whose every import is deliberately inside a function (the CLI: fast start-up; its
module docstring says so)."""


def unexplained_local_imports(path: Path) -> list[int]:
    """Lines of imports inside a function that no `# lazy: <why>` comment explains. One comment,
    right above, covers a block of imports separated only by blank lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(lines))
    missing = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        nodes = sorted({id(n): n for n in ast.walk(function) if isinstance(n, (ast.Import, ast.ImportFrom))}.values(),
                       key=lambda n: n.lineno)
        explained, previous_end = False, None
        for node in nodes:
            continues_block = previous_end is not None and not any(lines[i].strip() for i in range(previous_end, node.lineno - 1))
            if not continues_block:
                comment, i = [lines[node.lineno - 1]], node.lineno - 2
                while i >= 0 and lines[i].strip().startswith("#"):  # the comment lines right above
                    comment.append(lines[i])
                    i -= 1
                explained = any("# lazy:" in line for line in comment)
            previous_end = node.end_lineno
            if not explained:
                missing.append(node.lineno)
    return missing


def test_imports_inside_functions_say_why() -> None:
    """An import inside a function is there only to keep start-up or a light module fast (torch,
    matplotlib, an optional dependency), and says so; any other import belongs at the top."""
    missing = [f"{path.relative_to(SRC)}:{line}" for name, path in modules().items() if name not in LAZY_EXEMPT
               for line in unexplained_local_imports(path)]
    assert not missing, "imports inside functions without a `# lazy: <why>` comment:\n" + "\n".join(missing)


def test_the_lazy_import_check_can_fail(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    # lazy: torch is slow\n    import torch\n\n    import numpy\n\n    x = 1\n    # why\n    import json\n")
    assert unexplained_local_imports(module) == [9]
