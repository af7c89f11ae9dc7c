"""Topologies take no silent wrong input: the module structure has no import cycle, demand files fit
one stated layout exactly, and every reader rejects what it cannot use with a one-line error.

Every malformed file is written by the test into tmp_path.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from typer.testing import CliRunner

import mamrl.topologies
from cli_helpers import assert_one_line_error as assert_one_line_cli_error
from mamrl.cli import app
from mamrl.errors import MamrlError
from mamrl.topologies import (
    DEMAND_LAYOUTS,
    Link,
    PacketSizeTable,
    Topology,
    load_daphne_json,
    load_teavar_dir,
    load_topology,
    read_demand_file,
    read_demand_values,
)
from mamrl.topologies.wild import ImportSettings, TopologyWarning, gravity_demand_weights, load_graphml

PACKAGE_DIR = Path(mamrl.topologies.__file__).parent


# ---------------------------------------------------------------------------- import structure
def _imported_topology_modules(path: Path, modules: set[str]) -> set[str]:
    """Modules of `mamrl.topologies` that a file imports, at module level or inside functions; a name
    imported from the package itself (`from mamrl.topologies import load_topology`) imports `__init__`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = "mamrl.topologies" + (f".{node.module}" if node.module else "") if node.level else node.module or ""
            if module == "mamrl.topologies":
                found |= {alias.name if alias.name in modules else "__init__" for alias in node.names}
            elif module.startswith("mamrl.topologies."):
                found.add(module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("mamrl.topologies.")}
    return found


def test_no_import_cycle_between_topology_modules() -> None:
    modules = {path.stem for path in PACKAGE_DIR.glob("*.py")}
    graph = {name: _imported_topology_modules(PACKAGE_DIR / f"{name}.py", modules) for name in modules}
    assert {"loaders", "builtin", "wild"} <= modules and "loaders" in graph["__init__"]

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
        # The issue's case: a full matrix written for another number of routers (4x4 for 3 routers).
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


# ---------------------------------------------------------------------------- malformed topology files
def _own(**changes: object) -> str:
    """A project-format file: routers p, q, r in a line, with changes to the document."""
    doc: dict[str, object] = {
        "format": "mamrl-topology/1",
        "routers": ["p", "q", "r"],
        "links": [{"a": "p", "b": "q", "capacity": 5, "latency_ticks": 1}, {"a": "q", "b": "r", "capacity": 5, "latency_ticks": 1}],
    }
    doc.update(changes)
    return json.dumps(doc)


def _own_link(**changes: object) -> str:
    link = {"a": "p", "b": "q", "capacity": 5, "latency_ticks": 1}
    link.update(changes)
    return _own(links=[link, {"a": "q", "b": "r", "capacity": 5, "latency_ticks": 1}])


PAIRS = {f"{s}>{d}": [3] for s in "pqr" for d in "pqr" if s != d}


def _paper(nodes: list[dict] | None = None, edges: list[dict] | None = None, **top: object) -> str:
    """A paper (daphne) file: nodes A, B, C; edges A-B and B-C."""
    nodes = nodes if nodes is not None else [{"name": x, "posx": 0.1, "posy": 0.2} for x in "ABC"]
    edges = edges if edges is not None else [
        {"name": "e1", "from": "A", "to": "B", "BW": 100, "Lat": 2}, {"name": "e2", "from": "B", "to": "C", "BW": 100, "Lat": 2}]
    return json.dumps({"data": {"mapTopology": {"nodes": nodes, "edges": edges}}, **top})


def _paper_edge(**changes: object) -> str:
    edge: dict[str, object] = {"name": "e1", "from": "A", "to": "B", "BW": 100, "Lat": 2}
    edge.update(changes)
    return _paper(edges=[edge, {"name": "e2", "from": "B", "to": "C", "BW": 100, "Lat": 2}])


TEAVAR_HEAD = "to_node from_node capacity prob_failure\n"


def _graphml(nodes: str = '<node id="a"/><node id="b"/><node id="c"/>',
             edges: str = '<edge source="a" target="b"/><edge source="b" target="c"/>') -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
        '<key id="c" for="edge" attr.name="capacity" attr.type="long"/>\n'
        '<key id="s" for="edge" attr.name="LinkSpeed" attr.type="string"/>\n'
        '<key id="u" for="edge" attr.name="LinkSpeedUnits" attr.type="string"/>\n'
        '<key id="d" for="edge" attr.name="delay" attr.type="double"/>\n'
        f'<graph edgedefault="undirected">{nodes}{edges}</graph></graphml>\n'
    )


def _node_link(links: list[dict] | None = None, **top: object) -> str:
    doc: dict[str, object] = {"directed": False, "multigraph": False, "graph": {}, "nodes": [{"id": x} for x in "abc"]}
    doc["links"] = links if links is not None else [
        {"source": "a", "target": "b", "capacity": 5}, {"source": "b", "target": "c", "capacity": 5}]
    doc.update(top)
    return json.dumps(doc)


# (id, {file: content}, the spec to load, a fragment the one-line message must contain)
MALFORMED = [
    # The project's own format.
    ("own-duplicate-router", {"t.json": _own(routers=["p", "q", "p"])}, "t.json", "router 2: duplicate router name 'p' (also router 0)"),
    ("own-duplicate-router-with-sizes", {"t.json": _own(routers=["p", "q", "r", "p"], packet_sizes={"sizes_per_pair": 1, "pairs": PAIRS})},
     "t.json", "duplicate router name 'p'"),
    ("own-unknown-top-key", {"t.json": _own(lnks=[])}, "t.json", "top level: unknown key(s) ['lnks']"),
    ("own-unknown-router-key", {"t.json": _own(routers=[{"name": "p", "lat": 1}, "q", "r"])}, "t.json", "router 0: unknown key(s) ['lat']"),
    ("own-json-key-twice", {"t.json": _own_link().replace('"capacity": 5', '"capacity": 5, "capacity": 7', 1)}, "t.json",
     "key 'capacity' appears twice"),
    ("own-self-loop", {"t.json": _own_link(b="p")}, "t.json", "self-loop at router 'p'"),
    ("own-duplicate-link", {"t.json": _own(links=[{"a": "p", "b": "q", "capacity": 5, "latency_ticks": 1},
                                                   {"a": "q", "b": "r", "capacity": 5, "latency_ticks": 1},
                                                   {"a": "q", "b": "p", "capacity": 5, "latency_ticks": 1}])},
     "t.json", "duplicate link q-p (also link 0)"),
    ("own-nan", {"t.json": _own(routers=[{"name": x, "x": 0, "y": 0} for x in "pqr"]).replace('"x": 0', '"x": NaN', 1)},
     "t.json", "NaN is not a JSON number"),
    ("own-infinite-latency", {"t.json": _own_link(latency_ticks=1).replace('"latency_ticks": 1', '"latency_ticks": 1e400', 1)},
     "t.json", "latency_ticks: inf is not a finite number"),
    ("own-negative-probability", {"t.json": _own_link(failure_prob=-0.1)}, "t.json", "failure probability must be in [0, 1]"),
    ("own-capacity-over-64-bits", {"t.json": _own_link(capacity=2**64)}, "t.json", "capacity 18446744073709551616 is too large"),
    ("own-latency-over-64-bits", {"t.json": _own_link(latency_ticks=2**64)}, "t.json", "18446744073709551616 is too large"),
    ("own-coordinate-beyond-float", {"t.json": _own(routers=[{"name": x, "x": 10**400, "y": 0} for x in "pqr"])},
     "t.json", "router 'p': x: 1000000000"),
    ("own-latency-as-string", {"t.json": _own_link(latency_ticks="3")}, "t.json", "'3' is not a number (JSON numbers have no quotes)"),
    ("own-link-name-not-a-string", {"t.json": _own_link(name=5)}, "t.json", "link 0: 'name' must be a non-empty string"),
    ("own-notes-not-strings", {"t.json": _own(notes="remark")}, "t.json", "'notes' must be a list of strings"),
    ("own-unused-bad-default", {"t.json": _own(defaults={"capacity": -5})}, "t.json", "defaults: capacity must be >= 0"),
    ("own-size-to-itself", {"t.json": _own(packet_sizes={"sizes_per_pair": 1, "pairs": {**PAIRS, "p>p": [3]}})},
     "t.json", "'p>p' is a router to itself"),
    ("own-size-over-limit", {"t.json": _own(packet_sizes={"sizes_per_pair": 1, "pairs": {**PAIRS, "p>q": [2**40]}})},
     "t.json", "'p>q': expected 1 integers >= 1 and < 2147483647"),
    ("own-huge-sizes-per-pair", {"t.json": _own(packet_sizes={"sizes_per_pair": 10**15, "pairs": {}})},
     "t.json", "pair 'p>q' is missing (6 pairs missing)"),
    # The paper's JSON.
    ("paper-duplicate-router", {"t.json": _paper(nodes=[{"name": x} for x in "ABCA"])}, "t.json", "node 3: duplicate router name 'A' (also node 0)"),
    ("paper-unknown-node-key", {"t.json": _paper(nodes=[{"name": x, "pos": 1} for x in "ABC"])}, "t.json", "node 0: unknown key(s) ['pos']"),
    ("paper-unknown-edge-key", {"t.json": _paper_edge(bw=5)}, "t.json", "edge 'e1': unknown key(s) ['bw']"),
    ("paper-unknown-top-key", {"t.json": _paper(version=2)}, "t.json", "top level: unknown key(s) ['version']"),
    ("paper-half-position", {"t.json": _paper(nodes=[{"name": "A", "posx": 0.1}, {"name": "B"}, {"name": "C"}])},
     "t.json", "node 0: give both 'posx' and 'posy' or neither"),
    ("paper-some-positions", {"t.json": _paper(nodes=[{"name": "A", "posx": 0.1, "posy": 0.1}, {"name": "B"}, {"name": "C"}])},
     "t.json", "posx/posy must be given for every node or for none"),
    ("paper-fractional-capacity", {"t.json": _paper_edge(BW=2.5)}, "t.json", "edge 'e1': BW: capacity must be a whole number, got 2.5"),
    ("paper-capacity-over-64-bits", {"t.json": _paper_edge(BW=1e30)}, "t.json", "edge 'e1': BW: 1e+30 is too large"),
    ("paper-self-loop", {"t.json": _paper_edge(to="A")}, "t.json", "self-loop at router 'A'"),
    ("paper-duplicate-link", {"t.json": _paper(edges=[{"name": "e1", "from": "A", "to": "B", "BW": 1, "Lat": 1},
                                                      {"name": "e2", "from": "B", "to": "C", "BW": 1, "Lat": 1},
                                                      {"name": "e3", "from": "B", "to": "A", "BW": 1, "Lat": 1}])},
     "t.json", "duplicate link B-A"),
    ("paper-router-as-number", {"t.json": _paper(nodes=[{"name": "1"}, {"name": "B"}, {"name": "C"}],
                                                 edges=[{"from": 1, "to": "B", "BW": 1, "Lat": 1}, {"from": "B", "to": "C", "BW": 1, "Lat": 1}])},
     "t.json", "edge 0: unknown router 1 in 'from'"),
    ("paper-latency-as-string", {"t.json": _paper_edge(Lat="2")}, "t.json", "edge 'e1': Lat: '2' is not a number"),
    ("paper-negative-latency", {"t.json": _paper_edge(Lat=-2)}, "t.json", "latency must be an integer >= 1 tick, got -2"),
    # TEAVAR directories.
    ("teavar-duplicate-router", {"tv/topology.txt": TEAVAR_HEAD + "1 2 10 0\n2 3 10 0\n", "tv/nodes.txt": "names\na\nb\na\n"},
     "tv", "nodes.txt: line 4: duplicate router name 'a' (also line 2)"),
    ("teavar-fractional-capacity", {"tv/topology.txt": TEAVAR_HEAD + "1 2 2.5 0\n2 3 10 0\n"}, "tv", "line 2: capacity: capacity must be a whole number"),
    ("teavar-capacity-over-64-bits", {"tv/topology.txt": TEAVAR_HEAD + "1 2 99999999999999999999 0\n2 3 10 0\n"},
     "tv", "'99999999999999999999' is too large"),
    ("teavar-nan-probability", {"tv/topology.txt": TEAVAR_HEAD + "1 2 10 nan\n2 3 10 0\n"}, "tv", "prob_failure: 'nan' is not a finite number"),
    ("teavar-negative-capacity", {"tv/topology.txt": TEAVAR_HEAD + "1 2 -10 0\n2 3 10 0\n"}, "tv", "capacity must be >= 0"),
    ("teavar-id-gap", {"tv/topology.txt": TEAVAR_HEAD + "1 2 10 0\n2 99999999999999999999 10 0\n"},
     "tv", "router 3 has no link: it would be disconnected"),
    ("teavar-unicode-digit", {"tv/topology.txt": TEAVAR_HEAD + "1 \u00b2 10 0\n"}, "tv", "from_node '\u00b2' is not a router id"),
    ("teavar-self-loop", {"tv/topology.txt": TEAVAR_HEAD + "1 1 10 0\n1 2 10 0\n"}, "tv", "line 2: self-loop at router 1"),
    # GraphML and GML (Topology Zoo).
    ("graphml-duplicate-node", {"t.graphml": _graphml(nodes='<node id="a"/><node id="b"/><node id="c"/><node id="a"/>')},
     "t.graphml", "node id 'a' is declared twice"),
    ("graphml-undeclared-node", {"t.graphml": _graphml(edges='<edge source="a" target="b"/><edge source="b" target="z"/>')},
     "t.graphml", "target 'z' is no declared node"),
    ("graphml-capacity-over-64-bits", {"t.graphml": _graphml(edges='<edge source="a" target="b"><data key="c">99999999999999999999999</data></edge>'
                                                             '<edge source="b" target="c"/>')}, "t.graphml", "capacity 1e+23 is more than 2**63 - 1"),
    ("graphml-unknown-speed-units", {"t.graphml": _graphml(edges='<edge source="a" target="b"><data key="s">10</data><data key="u">X</data></edge>'
                                                           '<edge source="b" target="c"/>')}, "t.graphml", "LinkSpeedUnits 'X' is not one of"),
    ("graphml-speed-not-a-number", {"t.graphml": _graphml(edges='<edge source="a" target="b"><data key="s">fast</data><data key="u">G</data></edge>'
                                                          '<edge source="b" target="c"/>')}, "t.graphml", "LinkSpeed: 'fast' is not a number"),
    ("graphml-negative-delay", {"t.graphml": _graphml(edges='<edge source="a" target="b"><data key="d">-1</data></edge><edge source="b" target="c"/>')},
     "t.graphml", "delay must be >= 0 ms"),
    ("gml-duplicate-edge", {"t.gml": 'graph [\n node [ id 0 ]\n node [ id 1 ]\n edge [ source 0 target 1 ]\n edge [ source 1 target 0 ]\n]\n'},
     "t.gml", "is duplicated"),
    ("gml-duplicate-node", {"t.gml": 'graph [\n node [ id 0 ]\n node [ id 0 ]\n edge [ source 0 target 0 ]\n]\n'}, "t.gml", "node id 0 is duplicated"),
    ("gml-latency-over-64-bits", {"t.gml": 'graph [\n node [ id 0 ]\n node [ id 1 ]\n edge [ source 0 target 1 latency_ticks 99999999999999999999 ]\n]\n'},
     "t.gml", "latency_ticks must be an integer >= 1 and < 2**63"),
    # networkx node-link JSON.
    ("node-link-duplicate-link", {"t.json": _node_link([{"source": "a", "target": "b", "capacity": 5}, {"source": "b", "target": "c"},
                                                        {"source": "b", "target": "a", "capacity": 7}])},
     "t.json", "link 2: duplicate link 'b'-'a' (also link 0)"),
    ("node-link-unknown-key", {"t.json": _node_link(weights={})}, "t.json", "node-link data: unknown key(s) ['weights']"),
    ("node-link-links-and-edges", {"t.json": _node_link(edges=[])}, "t.json", "has both 'links' and 'edges'"),
    ("node-link-directed-as-string", {"t.json": _node_link(directed="false")}, "t.json", "'directed' must be true or false"),
    ("node-link-json-key-twice", {"t.json": _node_link().replace('"graph": {}', '"graph": {}, "graph": {}')}, "t.json", "key 'graph' appears twice"),
    ("node-link-infinity", {"t.json": _node_link([{"source": "a", "target": "b", "capacity": 5}, {"source": "b", "target": "c", "capacity": 5}])
                            .replace('"capacity": 5}]', '"capacity": Infinity}]')}, "t.json", "Infinity is not a JSON number"),
    ("node-link-capacity-as-bool", {"t.json": _node_link([{"source": "a", "target": "b", "capacity": True}, {"source": "b", "target": "c"}])},
     "t.json", "capacity: expected a number, got true"),
]


def _write_files(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize(("files", "spec", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in MALFORMED])
def test_malformed_file_is_a_one_line_error(tmp_path: Path, files: dict[str, str], spec: str, fragment: str) -> None:
    _write_files(tmp_path, files)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TopologyWarning)  # a file that fails warns nothing
        with pytest.raises(MamrlError, match=re.escape(fragment)) as excinfo:
            load_topology(str(tmp_path / spec))
    _one_line(excinfo, spec.split("/")[0])


@pytest.mark.parametrize(("files", "spec", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in MALFORMED])
def test_malformed_file_through_the_cli(tmp_path: Path, files: dict[str, str], spec: str, fragment: str) -> None:
    _write_files(tmp_path, files)
    result = runner.invoke(app, ["capacity", "--topology", str(tmp_path / spec)])
    assert_one_line_cli_error(result)
    assert fragment in " ".join(result.stderr.split()), result.stderr


# ---------------------------------------------------------------------------- values built in code
def _line_graph(**edge: object) -> nx.Graph:
    graph = nx.Graph()
    graph.add_edge("u", "v", capacity=3, latency_ticks=2)
    graph.add_edge("v", "w", **{"capacity": 3, "latency_ticks": 2, **edge})
    return graph


@pytest.mark.parametrize(
    ("edge", "fragment"),
    [
        ({"capacity": 2.5}, "edge v-w: capacity must be a whole number, got 2.5"),
        ({"capacity": float("inf")}, "edge v-w: capacity must be a whole number, got inf"),
        ({"latency_ticks": "2"}, "edge v-w: latency_ticks must be a whole number, got '2'"),
        ({"failure_prob": "0.1"}, "edge v-w: failure_prob must be a number"),
        ({"capacity": 2**64}, "capacity must be an integer >= 0 and < 2**63"),
        ({"latency_ticks": True}, "latency_ticks must be a whole number, got True"),
    ],
)
def test_from_networkx_takes_no_silent_conversion(edge: dict[str, object], fragment: str) -> None:
    with pytest.raises(MamrlError, match=re.escape(fragment)) as excinfo:
        Topology.from_networkx(_line_graph(**edge), "line")
    _one_line(excinfo)
    assert Topology.from_networkx(_line_graph(capacity=4.0), "line").capacities.tolist() == [3, 4]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"router_names": ("x", "y", "x")}, "duplicate router name 'x'"),
        ({"links": (Link(0, 1, True, 1), Link(1, 2, 1, 1))}, "capacity must be an integer >= 0"),
        ({"links": (Link(0, 1, 1, 2**63), Link(1, 2, 1, 1))}, "latency_ticks must be an integer >= 1 and < 2**63"),
        ({"links": (Link(0, 1, 1, 1, "0.5"), Link(1, 2, 1, 1))}, "failure_prob must be in [0, 1], got '0.5'"),  # type: ignore[arg-type]
        ({"links": (Link(0, True, 1, 1), Link(1, 2, 1, 1))}, "router id True is not in 0..2"),
        ({"coordinates": ((0, 0), (1, float("nan")), (2, 2))}, "coordinates must be finite numbers"),
        ({"coordinates": ((0, 0), (1, 10**400), (2, 2))}, "coordinates must be (x, y) number pairs"),
    ],
)
def test_topology_value_rejects_wrong_types_and_sizes(kwargs: dict[str, object], fragment: str) -> None:
    base: dict[str, object] = {"name": "t", "router_names": ("x", "y", "z"), "links": (Link(0, 1, 1, 1), Link(1, 2, 1, 1))}
    with pytest.raises(MamrlError, match=re.escape(fragment)) as excinfo:
        Topology(**{**base, **kwargs})  # type: ignore[arg-type]
    _one_line(excinfo)


def test_packet_size_table_rejects_negative_and_non_numbers() -> None:
    with pytest.raises(MamrlError, match="packet sizes must be >= 0, smallest is -3"):
        PacketSizeTable(np.full((2, 2, 1), -3.0), "test")
    with pytest.raises(MamrlError, match="packet size table must hold numbers"):
        PacketSizeTable(np.full((2, 2, 1), "big"), "test")
    assert PacketSizeTable(np.full((2, 2, 1), 0.0), "test").values.min() == 1  # below 1 counts as 1, as documented


def test_import_settings_and_tick_conversion_stay_in_64_bits(tmp_path: Path) -> None:
    with pytest.raises(MamrlError, match=re.escape("default_capacity must be an integer >= 0 and < 2**63")):
        ImportSettings(default_capacity=2**63)
    with pytest.raises(MamrlError, match="ImportSettings.tick_ms must be a finite number > 0"):
        ImportSettings(tick_ms=10**400)  # beyond float range: no OverflowError
    star = Topology("star", ("h", "a", "b"), (Link(0, 1, 1, 1), Link(0, 2, 1, 1)))
    with pytest.raises(MamrlError, match="gravity masses must be numbers"):
        gravity_demand_weights(star, [10**400, 1, 1])
    huge = tmp_path / "huge.txt"
    huge.write_text("1 2 3 4 5 " + "9" * 400 + "\n")
    with pytest.raises(MamrlError) as excinfo:
        read_demand_file(huge, 3)
    _one_line(excinfo, "line 1, value 6: packet size '9999", "... must be finite and >= 0")
    assert len(str(excinfo.value)) < len(str(huge)) + 120
    path = tmp_path / "slow.graphml"
    path.write_text(_graphml(edges='<edge source="a" target="b"><data key="d">1e300</data></edge><edge source="b" target="c"/>'))
    with pytest.raises(MamrlError) as excinfo:
        load_graphml(path, ImportSettings(tick_ms=1e-10))
    _one_line(excinfo, "slow.graphml", "link a-b: delay", "more than 2**63 - 1")


def test_wild_duplicate_labels_name_the_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "labels.graphml"
    path.write_text(_graphml(nodes='<node id="a"><data key="l">X</data></node><node id="b"><data key="l">Y</data></node>'
                             '<node id="c"><data key="l">X</data></node>').replace(
        '<key id="c" ', '<key id="l" for="node" attr.name="label" attr.type="string"/>\n<key id="c" '))
    with pytest.warns(TopologyWarning) as record:
        topology = load_topology(str(path))
    assert any("routers are named by node id (duplicate router name 'X')" in str(w.message) for w in record)
    assert topology.router_names == ("a", "b", "c")
