"""Topologies: value-type validation, loaders, the built-ins and their agreement with the sources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from mamrl.errors import TopologyError
from mamrl.topologies import (
    FORMAT,
    PAPER_FAILURES,
    Link,
    PacketSizeTable,
    Topology,
    builtin_names,
    builtin_summary,
    load_builtin,
    load_daphne_json,
    load_teavar_dir,
    load_topology,
    paper_failure_links,
    read_demand_file,
    read_demand_values,
    read_topology_file,
    save_topology,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPECTED_SIZES = {"b4": (12, 19, 5_000_000, 0.004), "geant": (22, 32, 5_000_000, 0.001), "att": (25, 56, 1_200_000, 0.001)}
ATT_SLOW_LINKS = {frozenset(("1", "25")): 6, frozenset(("2", "6")): 8, frozenset(("2", "17")): 6, frozenset(("2", "9")): 8}
B4_TO_TEAVAR = {x: f"s{k + 1}" for k, x in enumerate("ABCDEFGHIJKL")} | {"D": "s5", "E": "s4"}


def edges_by_name(topology: Topology, rename: dict[str, str] | None = None) -> set[frozenset[str]]:
    rename = rename or {}
    return {
        frozenset((rename.get(topology.router_names[l.a], topology.router_names[l.a]),
                   rename.get(topology.router_names[l.b], topology.router_names[l.b])))
        for l in topology.links
    }


def assert_one_line_error(excinfo: pytest.ExceptionInfo[TopologyError], *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def triangle(**overrides: object) -> dict[str, object]:
    """Keyword arguments of a small valid Topology, with overrides."""
    kwargs: dict[str, object] = {
        "name": "tri",
        "router_names": ("x", "y", "z"),
        "links": (Link(0, 1, 10, 1, 0.1), Link(1, 2, 20, 2, 0.2), Link(0, 2, 30, 3, 0.3)),
    }
    kwargs.update(overrides)
    return kwargs


# ---------------------------------------------------------------------------- built-ins
@pytest.mark.parametrize("name", ["b4", "geant", "att"])
def test_builtin_shape_capacity_connected(name: str) -> None:
    topology = load_topology(name)
    routers, links, capacity, failure_prob = EXPECTED_SIZES[name]
    assert (topology.num_routers, topology.num_links) == (routers, links)
    assert set(topology.capacities.tolist()) == {capacity}
    assert np.allclose(topology.failure_probs, failure_prob)
    assert nx.is_connected(topology.to_networkx())
    assert topology.coordinates is not None
    sizes = topology.packet_sizes
    assert sizes is not None and sizes.values.shape == (routers, routers, 16)
    assert "(k+0.5)/16" in sizes.provenance and "demand" in sizes.provenance


def test_builtin_latencies() -> None:
    assert set(load_builtin("b4").latencies.tolist()) == {3}
    assert set(load_builtin("geant").latencies.tolist()) == {3}
    att = load_builtin("att")
    slow = {
        frozenset((att.router_names[l.a], att.router_names[l.b])): l.latency_ticks
        for l in att.links
        if l.latency_ticks != 3
    }
    assert slow == ATT_SLOW_LINKS


def test_builtin_names_summary_and_case() -> None:
    assert builtin_names() == ["b4", "geant", "att"]
    assert load_topology("B4") is load_topology("b4")
    rows = builtin_summary()
    assert [r.name for r in rows] == builtin_names()
    b4 = rows[0]
    assert (b4.routers, b4.links, b4.capacity) == (12, 19, 5_000_000)
    assert 100_000 < b4.mean_packet_size < 150_000
    assert "TEAVAR" in b4.source
    with pytest.raises(TopologyError, match="no built-in topology"):
        load_builtin("nope")


@pytest.mark.parametrize("name", ["b4", "geant", "att"])
def test_builtin_matches_daphne_json(shared_data: Path, name: str) -> None:
    builtin = load_builtin(name)
    daphne = load_daphne_json(shared_data / "daphne" / f"{name}.json")
    assert sorted(builtin.router_names) == sorted(daphne.router_names)
    assert edges_by_name(builtin) == edges_by_name(daphne)
    coords = dict(zip(daphne.router_names, daphne.coordinates or ()))
    assert dict(zip(builtin.router_names, builtin.coordinates or ())) == coords
    # Same link order, names and latencies; capacities as in the paper's BW.
    assert builtin.link_names == daphne.link_names
    assert builtin.latencies.tolist() == daphne.latencies.tolist()
    assert builtin.capacities.tolist() == daphne.capacities.tolist()
    assert np.all(daphne.failure_probs == 0.0)


def test_teavar_b4_isomorphic_under_d_e_swap(shared_data: Path) -> None:
    teavar = load_teavar_dir(shared_data / "teavar" / "B4")
    builtin = load_builtin("b4")
    assert teavar.num_links == 19 and set(teavar.latencies.tolist()) == {3}
    assert edges_by_name(builtin, B4_TO_TEAVAR) == edges_by_name(teavar)
    plain = {x: f"s{k + 1}" for k, x in enumerate("ABCDEFGHIJKL")}
    assert edges_by_name(builtin, plain) != edges_by_name(teavar)
    assert nx.is_isomorphic(builtin.to_networkx(), teavar.to_networkx())
    # Router id k of the built-in is TEAVAR s(k+1), so TEAVAR's demand applies unchanged.
    assert [B4_TO_TEAVAR[x] for x in builtin.router_names] == list(teavar.router_names)


def test_teavar_att_matches_builtin(shared_data: Path) -> None:
    teavar = load_teavar_dir(shared_data / "teavar" / "ATT", latency_ticks=5)
    builtin = load_builtin("att")
    assert edges_by_name(builtin, {str(k): f"s{k}" for k in range(1, 26)}) == edges_by_name(teavar)
    assert set(teavar.latencies.tolist()) == {5}
    assert set(teavar.capacities.tolist()) == {1_200_000}


@pytest.mark.parametrize(
    ("name", "demand", "layout"),
    [("b4", "teavar/B4/demand.txt", "teavar-matrix"), ("att", "teavar/ATT/demand.txt", "teavar-matrix"),
     ("geant", "daphne/geant_demand.txt", "pair-list")],
)
def test_builtin_sizes_summarise_raw_demand(shared_data: Path, name: str, demand: str, layout: str) -> None:
    builtin = load_builtin(name)
    raw, found = read_demand_values(shared_data / demand, builtin.num_routers)
    assert found == layout
    n = builtin.num_routers
    off = ~np.eye(n, dtype=bool)
    sizes = builtin.packet_sizes.values  # type: ignore[union-attr]
    lo = np.maximum(1, np.floor(raw.min(axis=2)))
    hi = np.maximum(1, np.ceil(raw.max(axis=2)))
    assert np.all(sizes[off] >= lo[off][:, None]) and np.all(sizes[off] <= hi[off][:, None])
    assert np.all(np.diff(sizes[off], axis=1) >= 0)  # quantiles are sorted
    raw_mean = raw[off].mean()
    assert abs(sizes[off].mean() / raw_mean - 1) < 0.10
    # Quantiles 7 and 8 sit at probabilities 15/32 and 17/32: the raw median lies between them.
    median = np.maximum(1, np.median(raw[off], axis=1))
    assert np.all(sizes[off][:, 7] - 1 <= median) and np.all(median <= sizes[off][:, 8] + 1)


def test_builtin_demand_override_is_full_distribution(shared_data: Path) -> None:
    b4 = load_topology("b4", demand=shared_data / "teavar" / "B4" / "demand.txt")
    assert b4.packet_sizes is not None and b4.packet_sizes.values.shape == (12, 12, 200)
    assert b4.links == load_builtin("b4").links
    geant = load_topology("geant", demand=str(shared_data / "daphne" / "geant_demand.txt"))
    assert geant.packet_sizes is not None and geant.packet_sizes.values.shape == (22, 22, 116)


@pytest.mark.parametrize("name", ["b4", "geant", "att"])
def test_paper_failures_exist_and_match_task_files(shared_data: Path, name: str) -> None:
    topology = load_builtin(name)
    specs = paper_failure_links(name)
    assert specs == list(PAPER_FAILURES[name])
    for k, spec in enumerate(specs, start=1):
        task = load_daphne_json(shared_data / "daphne" / f"{name}_task{k}.json")
        down = [e for e in range(task.num_links) if task.links[e].capacity == 0]
        assert len(down) == 1
        assert topology.link_id(spec) == down[0]  # built-ins keep the paper's edge order


def test_generated_files_are_up_to_date(shared_data: Path) -> None:
    script = REPO_ROOT / "scripts" / "make_builtin_topologies.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check", "--data", str(shared_data)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------- value type
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"links": (Link(0, 0, 10, 1), Link(0, 1, 10, 1), Link(1, 2, 10, 1))}, "self-loop"),
        ({"links": (Link(0, 1, 10, 1), Link(1, 0, 10, 1), Link(1, 2, 10, 1))}, "duplicate link"),
        ({"links": (Link(0, 1, 10, 0), Link(1, 2, 10, 1))}, "latency_ticks must be an integer >= 1"),
        ({"links": (Link(0, 1, -5, 1), Link(1, 2, 10, 1))}, "capacity must be an integer >= 0"),
        ({"links": (Link(0, 1, 10, 1, 1.5), Link(1, 2, 10, 1))}, "failure_prob must be in [0, 1]"),
        ({"links": (Link(0, 1, 10, 1),)}, "disconnected"),
        ({"links": (Link(0, 1, 10, 1), Link(1, 7, 10, 1))}, "router id 7 is not in 0..2"),
        ({"router_names": ("x", "x", "z")}, "duplicate router name"),
        ({"link_names": ("p", "p", "q")}, "duplicate link name"),
        ({"coordinates": ((0, 0),)}, "1 coordinates for 3 routers"),
    ],
)
def test_validation_errors(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(TopologyError) as excinfo:
        Topology(**triangle(**overrides))  # type: ignore[arg-type]
    assert_one_line_error(excinfo, fragment)


def test_link_and_router_lookup() -> None:
    b4 = load_builtin("b4")
    assert b4.link_id("D-E") == b4.link_id("E-D") == b4.link_id("D:E") == b4.link_id("edge6")
    assert b4.router_names[b4.router_id("E")] == "E"
    for spec in ("A-L", "A-Z", "edge99", "nonsense"):
        with pytest.raises(TopologyError) as excinfo:
            b4.link_id(spec)
        assert_one_line_error(excinfo, "b4")
    with pytest.raises(TopologyError, match="no router 'Z'"):
        b4.router_id("Z")
    with pytest.raises(TopologyError, match="no link 99"):
        b4.link_id(99)


@pytest.mark.parametrize("name", ["b4", "att"])
def test_networkx_round_trip(name: str) -> None:
    original = load_builtin(name)
    back = Topology.from_networkx(original.to_networkx())
    assert back.name == original.name
    assert back.router_names == original.router_names
    assert back.links == original.links
    assert back.coordinates == original.coordinates
    assert back.link_names == original.link_names
    assert back.packet_sizes is original.packet_sizes


def test_networkx_round_trip_default_names_and_edge_order() -> None:
    # Links deliberately not in adjacency order, ends "backwards": nx would reorder them.
    topology = Topology(**triangle(links=(Link(2, 1, 5, 1), Link(0, 2, 6, 2), Link(1, 0, 7, 3, 0.5))))  # type: ignore[arg-type]
    back = Topology.from_networkx(topology.to_networkx())
    assert back.links == topology.links and back.link_names is None
    plain = nx.Graph()
    plain.add_edge("u", "v", capacity=3, latency_ticks=2)
    plain.add_edge("v", "w")
    built = Topology.from_networkx(plain, "plain", default_capacity=9, default_latency_ticks=1)
    assert built.router_names == ("u", "v", "w") and built.capacities.tolist() == [3, 9]
    with pytest.raises(TopologyError, match="no 'capacity'"):
        Topology.from_networkx(plain)


# ---------------------------------------------------------------------------- own format
@pytest.mark.parametrize("name", ["b4", "geant"])
def test_save_read_round_trip(tmp_path: Path, name: str) -> None:
    original = load_builtin(name)
    path = save_topology(original, tmp_path / f"{name}.json", notes=["a note"])
    back = read_topology_file(path)
    assert load_topology(str(path)).links == original.links
    assert (back.name, back.router_names, back.links) == (original.name, original.router_names, original.links)
    assert (back.coordinates, back.link_names) == (original.coordinates, original.link_names)
    assert back.packet_sizes is not None and original.packet_sizes is not None
    assert np.array_equal(back.packet_sizes.values, original.packet_sizes.values)
    assert back.packet_sizes.provenance == original.packet_sizes.provenance


def test_save_read_round_trip_full_teavar_demand(tmp_path: Path, shared_data: Path) -> None:
    original = load_teavar_dir(shared_data / "teavar" / "B4")
    back = read_topology_file(save_topology(original, tmp_path / "t.json"))
    off = ~np.eye(12, dtype=bool)
    assert back.links == original.links and back.link_names is None and back.coordinates is None
    assert np.array_equal(back.packet_sizes.values[off], original.packet_sizes.values[off])  # type: ignore[union-attr]


def test_own_format_minimal_with_defaults(tmp_path: Path) -> None:
    doc = {
        "format": FORMAT,
        "name": "mini",
        "defaults": {"capacity": 100, "latency_ticks": 2},
        "routers": ["p", {"name": "q"}, "r>s"],
        "links": [{"a": "p", "b": "q"}, {"a": "q", "b": "r>s", "latency_ticks": 4, "name": "long"}],
        "packet_sizes": {"sizes_per_pair": 1, "pairs": {f"{s}>{d}": [7] for s in ("p", "q", "r>s") for d in ("p", "q", "r>s") if s != d}},
    }
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(doc))
    topology = load_topology(str(path))
    assert topology.latencies.tolist() == [2, 4] and topology.capacities.tolist() == [100, 100]
    assert topology.link_names == ("p-q", "long") and topology.coordinates is None
    assert topology.packet_sizes is not None and topology.packet_sizes.values[2, 0, 0] == 7


# ---------------------------------------------------------------------------- malformed files
TEAVAR_HEADER = "to_node from_node capacity prob_failure\n"


def write_teavar(directory: Path, topology: str, nodes: str | None = "names\na\nb\nc\n", demand: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "topology.txt").write_text(topology)
    if nodes is not None:
        (directory / "nodes.txt").write_text(nodes)
    if demand is not None:
        (directory / "demand.txt").write_text(demand)
    return directory


GOOD_ROWS = "1 2 10 .1\n2 1 10 .1\n2 3 20 .2\n3 2 20 .2\n"


def test_teavar_small_good(tmp_path: Path) -> None:
    demand = "\n".join(" ".join(str(v + 9 * k) for v in range(1, 10)) for k in range(4)) + "\n\n"
    directory = write_teavar(tmp_path / "ok", TEAVAR_HEADER + GOOD_ROWS, demand=demand)
    topology = load_topology(str(directory))
    assert topology.router_names == ("a", "b", "c") and topology.num_links == 2
    assert topology.capacities.tolist() == [10, 20] and topology.latencies.tolist() == [3, 3]
    assert topology.packet_sizes is not None
    assert topology.packet_sizes.values[0, 1].tolist() == [2, 11, 20, 29]  # entry (0, 1) of each line
    assert load_topology(str(directory / "topology.txt")).num_links == 2
    no_names = write_teavar(tmp_path / "nonames", TEAVAR_HEADER + GOOD_ROWS, nodes=None)
    assert load_teavar_dir(no_names, latency_ticks=7).router_names == ("1", "2", "3")


@pytest.mark.parametrize(
    ("rows", "fragments"),
    [
        ("to from cap prob\n" + GOOD_ROWS, ["topology.txt", "header"]),
        (TEAVAR_HEADER + "1 2 10\n", ["topology.txt", "line 2", "4 columns"]),
        (TEAVAR_HEADER + "1 2 lots .1\n", ["topology.txt", "line 2", "'lots' is not a number"]),
        (TEAVAR_HEADER + "1 x 10 .1\n", ["line 2", "from_node 'x'"]),
        (TEAVAR_HEADER + "1 2 10 .1\n2 1 11 .1\n2 3 5 0\n", ["disagree in capacity", "10 vs 11"]),
        (TEAVAR_HEADER + "1 2 10 .1\n1 2 10 .1\n2 3 5 0\n", ["line 3", "duplicate link"]),
        (TEAVAR_HEADER + "1 2 10 2\n2 3 5 0\n", ["line 2", "failure probability"]),
        (TEAVAR_HEADER + "1 1 10 .1\n2 3 5 0\n", ["line 2", "self-loop"]),
        (TEAVAR_HEADER + "1 2 10 .1\n", ["topology.txt", "disconnected"]),
        (TEAVAR_HEADER + "1 2 10 .1\n2 4 10 .1\n3 4 10 .1\n", ["nodes.txt", "lists 3 routers", "router id 4"]),
        (TEAVAR_HEADER, ["topology.txt", "no links"]),
    ],
)
def test_teavar_malformed(tmp_path: Path, rows: str, fragments: list[str]) -> None:
    directory = write_teavar(tmp_path / "bad", rows)
    with pytest.raises(TopologyError) as excinfo:
        load_topology(str(directory))
    assert_one_line_error(excinfo, *fragments)


@pytest.mark.parametrize(
    ("demand", "fragments"),
    [
        ("1 2 3 4 5 6 7 8 9\n1 2 3\n", ["demand.txt", "line 2 has 3 values", "expected 9"]),
        ("1 2 3 4 5\n", ["demand.txt", "line 1 has 5 values", "at least 6"]),
        ("1 2 3 4 5 6 7 8 x\n", ["line 1, value 9", "'x' is not a number"]),
        ("1 2 3 4 5 6 7 8 -9\n", ["line 1, value 9", "finite and >= 0"]),
        ("\n\n", ["no data lines"]),
    ],
)
def test_demand_malformed(tmp_path: Path, demand: str, fragments: list[str]) -> None:
    directory = write_teavar(tmp_path / "bad", TEAVAR_HEADER + GOOD_ROWS, demand=demand)
    with pytest.raises(TopologyError) as excinfo:
        load_topology(str(directory))
    assert_one_line_error(excinfo, *fragments)


def test_demand_pair_list_layout(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("1 2 3 4 5 6 99 98\n\n7 8 9 10 11 12 97\n")
    table = read_demand_file(path, 3)
    assert table.values.shape == (3, 3, 2)
    assert table.values[0, 1].tolist() == [1, 7] and table.values[0, 2].tolist() == [2, 8]
    assert table.values[1, 0].tolist() == [3, 9] and table.values[2, 1].tolist() == [6, 12]
    assert "pair-list" in table.provenance
    with pytest.raises(TopologyError, match="wrong.txt: no such demand file"):
        read_demand_file(tmp_path / "wrong.txt", 3)


def test_demand_for_wrong_topology(shared_data: Path) -> None:
    with pytest.raises(TopologyError) as excinfo:
        load_topology("att", demand=shared_data / "teavar" / "B4" / "demand.txt")
    assert_one_line_error(excinfo, "demand.txt", "line 1 has 144 values")


DAPHNE = {
    "data": {
        "mapTopology": {
            "nodes": [{"name": "A", "posx": 0.1, "posy": 0.2}, {"name": "B", "posx": 0.3, "posy": 0.4}],
            "edges": [{"name": "e1", "from": "A", "to": "B", "BW": 100, "Lat": 2}],
        }
    }
}


def test_daphne_small_good(tmp_path: Path) -> None:
    path = tmp_path / "small.json"
    path.write_text(json.dumps(DAPHNE))
    topology = load_daphne_json(path, failure_prob=0.25)
    assert topology.name == "small" and topology.link_names == ("e1",)
    assert topology.links == (Link(0, 1, 100, 2, 0.25),) and topology.coordinates == ((0.1, 0.2), (0.3, 0.4))
    assert load_topology(str(path)).failure_probs.tolist() == [0.0]


def _daphne_with(**edge: object) -> dict[str, object]:
    doc = json.loads(json.dumps(DAPHNE))
    doc["data"]["mapTopology"]["edges"][0].update(edge)
    return doc


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ('{"data": {"mapTopology": {"nodes": [', ["bad.json", "invalid JSON", "line 1"]),
        (json.dumps(_daphne_with(to="Z")), ["bad.json", "edge 'e1'", "unknown router 'Z'"]),
        (json.dumps(_daphne_with(BW="fast")), ["edge 'e1': BW", "'fast' is not a number"]),
        (json.dumps(_daphne_with(Lat=0)), ["edge 'e1': Lat", "integer >= 1"]),
        (json.dumps(_daphne_with(BW=-1)), ["edge 'e1': BW", ">= 0"]),
        (json.dumps({"data": {"mapTopology": {"nodes": [{"name": "A"}], "edges": [{"from": "A"}]}}}), ["edge 0", "missing key(s)"]),
        (json.dumps({"data": {}}), ["unrecognised JSON"]),
        (json.dumps([1, 2]), ["unrecognised JSON"]),
        ("not json at all", ["bad.json", "not a topology file"]),
    ],
)
def test_daphne_or_json_malformed(tmp_path: Path, content: str, fragments: list[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TopologyError) as excinfo:
        load_topology(str(path))
    assert_one_line_error(excinfo, *fragments)


def test_daphne_duplicate_edge(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(DAPHNE))
    doc["data"]["mapTopology"]["edges"].append({"name": "e2", "from": "B", "to": "A", "BW": 1, "Lat": 1})
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TopologyError) as excinfo:
        load_daphne_json(path)
    assert_one_line_error(excinfo, "dup.json", "duplicate link")


def _own(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "format": FORMAT,
        "name": "own",
        "routers": [{"name": "p"}, {"name": "q"}],
        "links": [{"a": "p", "b": "q", "capacity": 5, "latency_ticks": 1, "failure_prob": 0.0}],
    }
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("doc", "fragments"),
    [
        (_own(format="mamrl-topology/9"), ["not supported"]),
        (_own(links=[{"a": "p", "b": "zz", "capacity": 5, "latency_ticks": 1}]), ["link 0", "unknown router 'zz'"]),
        (_own(links=[{"a": "p", "b": "q", "capacity": 5.5, "latency_ticks": 1}]), ["capacity must be an integer"]),
        (_own(links=[{"a": "p", "b": "q", "capacity": 5}]), ["no 'latency_ticks'"]),
        (_own(links=[{"a": "p", "b": "q", "capacity": 5, "latency_ticks": 1, "latency": 3}]), ["unknown key(s) ['latency']"]),
        (_own(links=[{"a": "p", "b": "q", "capacity": 5, "latency_ticks": 1}] * 2), ["duplicate link"]),
        (_own(routers=[{"name": "p"}, {"name": "q"}, {"name": "r"}]), ["disconnected"]),
        (_own(packet_sizes={"sizes_per_pair": 1, "pairs": {"p>q": [3]}}), ["pair 'q>p' is missing"]),
        (_own(packet_sizes={"sizes_per_pair": 2, "pairs": {"p>q": [3], "q>p": [1, 1]}}), ["'p>q'", "expected 2 integers"]),
        (_own(packet_sizes={"sizes_per_pair": 1, "pairs": {"p-q": [3]}}), ["'p-q' is not 'SRC>DST'"]),
        ({"format": FORMAT, "routers": []}, ["missing key(s) ['links']"]),
    ],
)
def test_own_format_malformed(tmp_path: Path, doc: dict[str, object], fragments: list[str]) -> None:
    path = tmp_path / "own.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TopologyError) as excinfo:
        read_topology_file(path)
    assert_one_line_error(excinfo, "own.json", *fragments)


def test_missing_paths(tmp_path: Path) -> None:
    cases = [
        (lambda: load_topology(str(tmp_path / "nothing.json")), ["unknown topology", "no such file or directory"]),
        (lambda: load_topology("b5"), ["unknown topology 'b5'", "b4, geant, att"]),
        (lambda: read_topology_file(tmp_path / "nothing.json"), ["nothing.json", "no such file"]),
        (lambda: load_daphne_json(tmp_path / "nothing.json"), ["nothing.json", "no such file"]),
        (lambda: load_teavar_dir(tmp_path / "nodir"), ["nodir", "no such directory"]),
        (lambda: load_topology(str(tmp_path)), ["no topology.txt"]),
        (lambda: load_topology(""), ["empty topology"]),
    ]
    (tmp_path / "emptydir").mkdir()
    cases.append((lambda: load_teavar_dir(tmp_path / "emptydir"), ["topology.txt", "no such file"]))
    for call, fragments in cases:
        with pytest.raises(TopologyError) as excinfo:
            call()
        assert_one_line_error(excinfo, *fragments)


def test_packet_size_table_rounds_to_whole_units() -> None:
    table = PacketSizeTable(np.full((2, 2, 3), 0.3), "test")
    assert table.values.dtype == np.int64 and table.values.min() == 1
    with pytest.raises(TopologyError, match="shape"):
        PacketSizeTable(np.ones((2, 3, 1)), "bad")
