"""Topologies take no silent wrong input: the module structure has no import cycle, demand files fit
one stated layout exactly, and every reader rejects what it cannot use with a one-line error.

Every malformed file is written by the test into tmp_path.
"""

from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mamrl.topologies
from cli_helpers import assert_one_line_error as assert_one_line_cli_error
from mamrl.cli import app
from mamrl.errors import MamrlError
from mamrl.topologies import (
    DEMAND_LAYOUTS,
    load_daphne_json,
    load_teavar_dir,
    load_topology,
    read_demand_file,
    read_demand_values,
)
from mamrl.topologies.wild import TopologyWarning

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


# ---------------------------------------------------------------------------- demand files
def _demand(tmp_path: Path, name: str, *line_lengths: int) -> Path:
    """A demand file whose k-th line holds line_lengths[k] values 1, 2, 3..."""
    path = tmp_path / name
    path.write_text("\n".join(" ".join(str(v) for v in range(1, m + 1)) for m in line_lengths) + "\n")
    return path


def _one_line(excinfo: pytest.ExceptionInfo[MamrlError], *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.mark.parametrize(
    ("lengths", "layout", "fragments"),
    [
        # The case: a full matrix written for another number of routers (4x4 for 3 routers).
        ((16, 16), "auto", ["m.txt", "line 1 has 16 values", "9 per line", "4x4 matrix", "4 routers"]),
        ((20, 20), "auto", ["line 1 has 20 values", "ordered pairs of 5 routers"]),
        ((9, 6), "auto", ["line 2 has 6 values", "expected 9", "chosen from line 1", "fits layout pair-list"]),
        ((6, 7), "pair-list", ["line 2 has 7 values", "expected 6", "fits layout pair-list-trailing"]),
        ((6, 5), "pair-list", ["line 2 has 5 values", "expected 6"]),
        ((9,), "pair-list", ["line 1 has 9 values", "expected 6", "fits layout teavar-matrix"]),
        ((6,), "teavar-matrix", ["line 1 has 6 values", "expected 9", "fits layout pair-list"]),
        ((10,), "teavar-matrix", ["line 1 has 10 values", "expected 9"]),
        ((7, 9), "pair-list-trailing", ["line 2 has 9 values", "other than 9", "fits layout teavar-matrix"]),
        ((7, 12), "pair-list-trailing", ["line 2 has 12 values", "fewer than 12", "ordered pairs of 4 routers"]),
        ((7, 12), "auto", ["line 2 has 12 values", "fewer than 12", "layout pair-list-trailing, chosen from line 1"]),
        ((5,), "pair-list-trailing", ["line 1 has 5 values", "at least 6"]),
    ],
)
def test_demand_lines_must_fit_the_layout_exactly(
    tmp_path: Path, lengths: tuple[int, ...], layout: str, fragments: list[str]
) -> None:
    path = _demand(tmp_path, "m.txt", *lengths)
    with pytest.raises(MamrlError, match="values") as excinfo:
        read_demand_file(path, 3, layout)
    _one_line(excinfo, *fragments)


def test_demand_layouts_read_the_same_numbers(tmp_path: Path) -> None:
    matrix = read_demand_values(_demand(tmp_path, "m.txt", 9, 9), 3, "teavar-matrix")
    assert matrix[1] == "teavar-matrix" and matrix[0][0, 1].tolist() == [2, 2]
    assert np.array_equal(read_demand_values(tmp_path / "m.txt", 3)[0], matrix[0])
    pairs = read_demand_values(_demand(tmp_path, "p.txt", 6, 6), 3, "pair-list")
    assert pairs[1] == "pair-list" and pairs[0][1, 0].tolist() == [3, 3] and pairs[0][2, 2].tolist() == [1, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stated layout warns nothing
        trailing = read_demand_file(_demand(tmp_path, "t.txt", 8, 7, 6), 3, "pair-list-trailing")
        assert read_demand_file(tmp_path / "p.txt", 3).provenance.endswith("(pair-list, 2 samples per pair)")
    assert trailing.values[2, 1].tolist() == [6, 6, 6]
    assert "pair-list-trailing" in trailing.provenance and "0-2 trailing values per line ignored" in trailing.provenance
    with pytest.warns(TopologyWarning, match=r"t.txt: lines hold 0-2 values after the 6 ordered pairs; they are ignored"):
        auto = read_demand_file(tmp_path / "t.txt", 3)
    assert np.array_equal(auto.values, trailing.values)


def test_demand_values_and_layout_names(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("1 2 3 4 5 2147483647\n")
    with pytest.raises(MamrlError) as excinfo:
        read_demand_file(path, 3)
    _one_line(excinfo, "big.txt", "line 1, value 6", "must be below 2147483647")
    with pytest.raises(MamrlError) as excinfo:
        read_demand_file(_demand(tmp_path, "p.txt", 6), 3, "matrix")
    _one_line(excinfo, "unknown demand layout 'matrix'", "auto, teavar-matrix, pair-list, pair-list-trailing")
    assert DEMAND_LAYOUTS == ("auto", "teavar-matrix", "pair-list", "pair-list-trailing")


def test_demand_layout_without_demand_is_an_error(tmp_path: Path) -> None:
    teavar = tmp_path / "tv"
    teavar.mkdir()
    (teavar / "topology.txt").write_text("to_node from_node capacity prob_failure\n1 2 10 0\n2 3 10 0\n")
    daphne = tmp_path / "paper.json"
    daphne.write_text(json.dumps({"data": {"mapTopology": {
        "nodes": [{"name": "A"}, {"name": "B"}], "edges": [{"name": "e", "from": "A", "to": "B", "BW": 5, "Lat": 1}]}}}))
    for call in (lambda: load_topology("b4", demand_layout="pair-list"),
                 lambda: load_teavar_dir(teavar, demand_layout="teavar-matrix"),
                 lambda: load_daphne_json(daphne, demand_layout="pair-list-trailing")):
        with pytest.raises(MamrlError) as excinfo:
            call()
        _one_line(excinfo, "is given but there is no demand file to read")
    # A stated layout applies to a TEAVAR directory's own demand.txt too.
    _demand(teavar, "demand.txt", 7, 7)
    assert load_teavar_dir(teavar, demand_layout="pair-list-trailing").packet_sizes is not None
    with pytest.raises(MamrlError, match="demand.txt: line 1 has 7 values, expected 6"):
        load_teavar_dir(teavar, demand_layout="pair-list")


def test_demand_replacing_a_teavar_directorys_own_is_the_only_one_read(tmp_path: Path) -> None:
    teavar = tmp_path / "tv"
    teavar.mkdir()
    (teavar / "topology.txt").write_text("to_node from_node capacity prob_failure\n1 2 10 0\n2 3 10 0\n")
    (teavar / "demand.txt").write_text("not a demand file\n")
    topology = load_topology(str(teavar), demand=_demand(tmp_path, "p.txt", 6), demand_layout="pair-list")
    assert topology.packet_sizes is not None and topology.packet_sizes.values[0, 1].tolist() == [1]


def test_paper_demand_files_under_stated_layouts(shared_data: Path) -> None:
    geant = shared_data / "daphne" / "geant_demand.txt"
    with pytest.warns(TopologyWarning, match="39-41 values after the 462 ordered pairs"):
        auto, layout = read_demand_values(geant, 22)
    stated, stated_layout = read_demand_values(geant, 22, "pair-list-trailing")
    assert layout == stated_layout == "pair-list" and np.array_equal(auto, stated) and auto.shape == (22, 22, 116)
    with pytest.raises(MamrlError) as excinfo:
        read_demand_values(geant, 22, "pair-list")
    _one_line(excinfo, "geant_demand.txt", "line 1 has 503 values", "expected 462", "fits layout pair-list-trailing")
    with pytest.raises(MamrlError) as excinfo:
        read_demand_values(geant, 22, "teavar-matrix")
    _one_line(excinfo, "geant_demand.txt", "line 1 has 503 values", "expected 484")
    b4 = shared_data / "teavar" / "B4" / "demand.txt"
    assert np.array_equal(read_demand_values(b4, 12, "teavar-matrix")[0], read_demand_values(b4, 12)[0])
    with pytest.raises(MamrlError) as excinfo:  # B4's 12x12 matrices are no GEANT pair list
        load_topology("geant", demand=b4)
    _one_line(excinfo, "line 1 has 144 values", "12x12 matrix", "12 routers, not 22")


# ---------------------------------------------------------------------------- through the CLI
runner = CliRunner()


@pytest.mark.parametrize(
    ("command", "args", "fragment"),
    [
        ("capacity", ["--demand", "{tmp}/m13.txt"], "13x13 matrix"),
        ("simulate", ["--demand", "{tmp}/m13.txt"], "line 1 has 169 values"),
        ("plot-topology", ["--demand", "{tmp}/m13.txt", "--output", "{tmp}/x.png"], "line 1 has 169 values"),
        ("capacity", ["--demand", "{tmp}/m12.txt", "--demand-layout", "pair-list"], "expected 132"),
        ("simulate", ["--demand", "{tmp}/m12.txt", "--demand-layout", "matrix"], "unknown demand layout 'matrix'"),
        ("capacity", ["--demand-layout", "teavar-matrix"], "no demand file"),
    ],
)
def test_cli_demand_errors_are_one_line(tmp_path: Path, command: str, args: list[str], fragment: str) -> None:
    _demand(tmp_path, "m13.txt", 169, 169)
    _demand(tmp_path, "m12.txt", 144)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, [command, "--topology", "b4", *args])
    assert_one_line_cli_error(result)
    assert fragment in result.stderr


def test_cli_reads_the_paper_geant_demand_under_its_stated_layout(shared_data: Path) -> None:
    geant = str(shared_data / "daphne" / "geant_demand.txt")
    result = runner.invoke(app, ["capacity", "--topology", "geant", "--demand", geant, "--demand-layout", "pair-list-trailing"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr and "λ* = " in result.stdout
    result = runner.invoke(app, ["capacity", "--topology", "geant", "--demand", geant])
    assert result.exit_code == 0 and "warning: " in result.stderr and "pair-list-trailing" in result.stderr
    result = runner.invoke(app, ["capacity", "--help"])
    assert all(layout in " ".join(result.stdout.split()) for layout in DEMAND_LAYOUTS)
