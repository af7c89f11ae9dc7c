"""Topologies from the wild: GraphML/GML (Topology Zoo), node-link JSON, topohub, gravity traffic.

Every file is written by the test into tmp_path; nothing is downloaded or copied.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from typer.testing import CliRunner

from cli_helpers import assert_one_line_error as assert_one_line_cli_error
from mamrl.algorithms import make_agent, make_policy
from mamrl.cli import app
from mamrl.errors import TopologyError
from mamrl.sim import SimParams, Simulator
from mamrl.topologies import Link, Topology, load_topology, save_topology
from mamrl.topologies.wild import (
    DEFAULT_CAPACITY_BPS,
    DEFAULT_LATENCY_TICKS,
    ImportSettings,
    TopologyWarning,
    gravity_demand_weights,
    great_circle_km,
    label_bps,
    length_to_ticks,
    load_graphml,
    load_node_link_json,
    load_topohub,
    topology_from_graph,
)


def zoo_graph(n: int = 4, *, coordinates: bool = True, speeds: bool = True) -> nx.Graph:
    """A ring a-b-c-d... in the style of an Internet Topology Zoo file."""
    graph = nx.Graph(Network="Tiny")
    for i in range(n):
        attrs: dict[str, object] = {"label": f"City{i}", "Country": "Nowhere", "Internal": 1}
        if coordinates:
            attrs.update(Latitude=0.0, Longitude=float(i))  # 1 degree of longitude apart, on the equator
        graph.add_node(str(i), **attrs)
    for i in range(n):
        attrs = {"LinkLabel": "10G" if speeds else "Tunnel"}  # a label that names no rate is no speed
        if speeds:
            attrs.update(LinkSpeed="10", LinkSpeedUnits="G", LinkSpeedRaw=1e10)
        graph.add_edge(str(i), str((i + 1) % n), **attrs)
    return graph


def write_graphml(graph: nx.Graph, path: Path) -> Path:
    nx.write_graphml(graph, path)
    return path


def assert_one_line(excinfo: pytest.ExceptionInfo[TopologyError], *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# ---------------------------------------------------------------------------- GraphML attributes
def test_graphml_capacity_and_latency_from_attributes(tmp_path: Path) -> None:
    graph = nx.Graph()
    for i, name in enumerate("ABCD"):
        graph.add_node(f"n{i}", label=name)
    graph.add_edge("n0", "n1", LinkSpeedRaw=2.5e9, latency=4.0)  # bit/s; ms = ticks at 1 ms/tick
    graph.add_edge("n1", "n2", LinkSpeed="155", LinkSpeedUnits="M", delay=2.2)  # 2.2 ms -> 3 ticks
    graph.add_edge("n2", "n3", capacity=7000, latency_ticks=5)
    graph.add_edge("n3", "n0", bandwidth=800, delay="1", failure_prob=0.25)
    path = write_graphml(graph, tmp_path / "attrs.graphml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything is given: no warning
        topo = load_topology(str(path))
    assert topo.name == "attrs"
    assert topo.router_names == ("A", "B", "C", "D")
    # networkx's edge order: by first router in node order.
    assert [topo.router_names[l.a] + topo.router_names[l.b] for l in topo.links] == ["AB", "AD", "BC", "CD"]
    assert topo.capacities.tolist() == [2_500_000_000, 800, 155_000_000, 7000]
    assert topo.latencies.tolist() == [4, 1, 3, 5]
    assert topo.failure_probs.tolist() == [0.0, 0.25, 0.0, 0.0]
    assert topo.coordinates is None and topo.packet_sizes is None and topo.link_names is None
    # Bit/s are divided by capacity_unit_bps; the units of `capacity`/`bandwidth` are kept.
    scaled = load_graphml(path, ImportSettings(capacity_unit_bps=1e6, tick_ms=0.5))
    assert scaled.capacities.tolist() == [2500, 800, 155, 7000]
    assert scaled.latencies.tolist() == [8, 2, 5, 5]


def test_topology_zoo_link_labels_give_capacities(tmp_path: Path) -> None:
    """Topology Zoo files often carry only a free-text `LinkLabel` ("OC-192", "10GE"); it is read
    when no speed attribute is given, so links differ in capacity as in the network."""
    graph = nx.Graph()
    for i, name in enumerate("ABCDE"):
        graph.add_node(f"n{i}", label=name, Latitude=0.0, Longitude=float(i))
    labels = {("n0", "n1"): "OC-192", ("n1", "n2"): "10GE", ("n2", "n3"): "2 x 2.5 Gbps", ("n3", "n4"): "STM-1",
              ("n4", "n0"): "T3"}
    for (a, b), label in labels.items():
        graph.add_edge(a, b, LinkLabel=label)
    path = write_graphml(graph, tmp_path / "zoo.graphml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every link has a readable speed: no default, no warning
        topo = load_graphml(path, ImportSettings(capacity_unit_bps=1e6))
    by_ends = {topo.router_names[link.a] + topo.router_names[link.b]: int(c) for link, c in zip(topo.links, topo.capacities)}
    assert by_ends == {"AB": 9953, "BC": 10000, "CD": 5000, "DE": 156, "AE": 45}
    assert label_bps("Tunnel") is None and label_bps("10") is None  # no unit: not a rate
    # A label that names no rate leaves the link to the defaults, with the usual warning.
    graph.edges["n4", "n0"]["LinkLabel"] = "Tunnel"
    with pytest.warns(TopologyWarning):
        fallback = load_graphml(write_graphml(graph, tmp_path / "tunnel.graphml"), ImportSettings(capacity_unit_bps=1e6))
    assert len(set(fallback.capacities.tolist())) == 5


def test_latency_from_great_circle_length(tmp_path: Path) -> None:
    # Two points on the equator 9 degrees apart: 6371 km * 9 * pi / 180 = 1000.75 km.
    assert great_circle_km(0.0, 0.0, 0.0, 9.0) == pytest.approx(6371.0 * math.radians(9.0))
    # London - New York, about 5570 km.
    assert great_circle_km(51.5074, -0.1278, 40.7128, -74.0060) == pytest.approx(5570, rel=0.005)
    graph = nx.Graph()
    graph.add_node("0", label="West", Latitude=0.0, Longitude=0.0)
    graph.add_node("1", label="East", Latitude=0.0, Longitude=9.0)
    graph.add_node("2", label="North", Latitude=0.5, Longitude=0.0)  # 55.6 km from West
    graph.add_edge("0", "1", LinkSpeedRaw=1e9)
    graph.add_edge("0", "2", LinkSpeedRaw=1e9)
    path = write_graphml(graph, tmp_path / "equator.graphml")
    topo = load_topology(str(path))
    # 1000.75 km at 200 km/ms = 5.004 ms -> 6 ticks of 1 ms (rounded up); 55.6 km -> at least 1 tick.
    assert topo.latencies.tolist() == [6, 1]
    assert topo.coordinates == ((0.0, 0.0), (9.0, 0.0), (0.0, 0.5))  # (longitude, latitude)
    slow = load_graphml(path, ImportSettings(tick_ms=0.5, propagation_km_per_ms=100.0))
    assert slow.latencies.tolist() == [21, 2]  # 10.0075 ms / 0.5 ms; 0.556 ms / 0.5 ms
    assert length_to_ticks(400.0) == 2 and length_to_ticks(400.0001) == 3 and length_to_ticks(0.0) == 1


def test_missing_attributes_get_defaults_with_a_warning(tmp_path: Path) -> None:
    path = write_graphml(zoo_graph(5, coordinates=False, speeds=False), tmp_path / "bare.graphml")
    with pytest.warns(TopologyWarning) as record:
        topo = load_topology(str(path))
    messages = " | ".join(str(w.message) for w in record)
    assert "5 of 5 edge(s) have no capacity attribute" in messages and "1 Gbit/s" in messages
    assert "5 of 5 link(s) have no latency" in messages and f"{DEFAULT_LATENCY_TICKS} tick(s)" in messages
    assert all("\n" not in str(w.message) for w in record)
    assert topo.capacities.tolist() == [int(DEFAULT_CAPACITY_BPS)] * 5
    assert topo.latencies.tolist() == [DEFAULT_LATENCY_TICKS] * 5
    assert topo.coordinates is None

    # Some links with a speed: the others get the median of theirs; settings override both.
    graph = zoo_graph(5)
    graph.edges["0", "1"]["LinkSpeedRaw"] = 1e9
    graph.edges["1", "2"]["LinkSpeedRaw"] = 1e9
    for u, v in (("2", "3"), ("3", "4")):
        for key in ("LinkSpeedRaw", "LinkSpeed", "LinkSpeedUnits", "LinkLabel"):
            del graph.edges[u, v][key]
    path = write_graphml(graph, tmp_path / "partial.graphml")
    with pytest.warns(TopologyWarning, match="2 of 5 edge.*median"):
        topo = load_topology(str(path))
    missing = [topo.link_id("City2-City3"), topo.link_id("City3-City4")]
    assert topo.capacities[missing].tolist() == [10**9, 10**9]  # the median of (1e9, 1e9, 1e10)
    assert topo.capacities[topo.link_id("City4-City0")] == 10**10
    with pytest.warns(TopologyWarning, match="they get 42 "):
        assert load_graphml(path, ImportSettings(default_capacity=42)).capacities[missing].tolist() == [42, 42]


def test_coordinates_on_some_nodes_only(tmp_path: Path) -> None:
    graph = zoo_graph(4)
    del graph.nodes["3"]["Latitude"]  # a Topology Zoo node without a position
    path = write_graphml(graph, tmp_path / "partial-geo.graphml")
    with pytest.warns(TopologyWarning, match="2 of 4 link.*no latency"):
        topo = load_topology(str(path))
    assert topo.coordinates is None  # all or nothing
    for spec, ticks in (("City0-City1", 1), ("City1-City2", 1), ("City2-City3", 3), ("City3-City0", 3)):
        assert topo.links[topo.link_id(spec)].latency_ticks == ticks


def test_parallel_edges_merge_and_self_loops_drop(tmp_path: Path) -> None:
    graph = nx.MultiGraph(zoo_graph(4))
    graph.add_edge("0", "1", LinkSpeedRaw=1e9, latency_ticks=7)
    graph.add_edge("2", "2", LinkSpeedRaw=1e9)
    path = write_graphml(graph, tmp_path / "multi.graphml")
    with pytest.warns(TopologyWarning) as record:
        topo = load_topology(str(path))
    messages = " | ".join(str(w.message) for w in record)
    assert "merged 1 parallel edge(s)" in messages and "dropped 1 self-loop(s)" in messages
    assert topo.num_links == 4
    link = topo.links[topo.link_id("City0-City1")]
    assert link.capacity == 11 * 10**9  # capacities add
    assert link.latency_ticks == 1  # the shortest (length-derived) latency is kept

    # In memory: a default never beats a known latency of a parallel edge.
    multi = nx.MultiGraph()
    multi.add_edge("u", "v")
    multi.add_edge("u", "v", capacity=5, latency_ticks=7)
    with pytest.warns(TopologyWarning) as record:
        topo = topology_from_graph(multi, "pair", ImportSettings(default_capacity=5))
    assert [str(w.message)[:40] for w in record] == [
        "pair: merged 1 parallel edge(s) into the", "pair: 1 of 2 edge(s) have no capacity at"]
    assert topo.links == (Link(0, 1, 10, 7, 0.0),)


def test_directed_graph_is_read_as_undirected(tmp_path: Path) -> None:
    graph = nx.DiGraph()
    graph.add_edge("a", "b", capacity=10, latency_ticks=2)
    graph.add_edge("b", "a", capacity=30, latency_ticks=4)
    graph.add_edge("b", "c", capacity=5, latency_ticks=1)
    path = write_graphml(graph, tmp_path / "directed.graphml")
    with pytest.warns(TopologyWarning, match="directed graph read as undirected"):
        topo = load_topology(str(path))
    assert topo.router_names == ("a", "b", "c")  # no labels: node ids
    assert [(l.capacity, l.latency_ticks) for l in topo.links] == [(30, 2), (5, 1)]


def test_duplicate_labels_fall_back_to_node_ids(tmp_path: Path) -> None:
    graph = zoo_graph(3)
    graph.nodes["2"]["label"] = "City0"
    path = write_graphml(graph, tmp_path / "dups.graphml")
    with pytest.warns(TopologyWarning, match="not unique; routers are named by node id"):
        topo = load_topology(str(path))
    assert topo.router_names == ("0", "1", "2")


def test_gml_and_xml_content_are_read_too(tmp_path: Path) -> None:
    graph = zoo_graph(4)
    # As in the Topology Zoo's .gml files: integer `id`s, names in `label`.
    by_label = nx.relabel_nodes(graph, {node: graph.nodes[node]["label"] for node in graph})
    for _, data in by_label.nodes(data=True):
        del data["label"]
    nx.write_gml(by_label, tmp_path / "tiny.gml")
    assert '  node [\n    id 0\n    label "City0"' in (tmp_path / "tiny.gml").read_text()
    gml = load_topology(str(tmp_path / "tiny.gml"))
    write_graphml(graph, tmp_path / "tiny.xml")  # GraphML under another extension: sniffed
    xml = load_topology(str(tmp_path / "tiny.xml"))
    graphml = load_topology(str(write_graphml(graph, tmp_path / "tiny.graphml")))
    for topo in (gml, xml):
        assert topo.router_names == graphml.router_names
        assert topo.links == graphml.links
        assert topo.coordinates == graphml.coordinates


# ---------------------------------------------------------------------------- node-link JSON
def test_node_link_round_trip_through_networkx(tmp_path: Path) -> None:
    original = load_topology("b4").with_packet_sizes(None)  # coordinates, link names, failure probs
    path = tmp_path / "b4-node-link.json"
    path.write_text(json.dumps(nx.node_link_data(original.to_networkx(), edges="links")), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_topology(str(path))
    assert loaded.name == "b4-node-link"
    assert loaded.router_names == original.router_names
    assert loaded.links == original.links  # order, orientation, capacity, latency, failure prob
    assert loaded.link_names == original.link_names
    assert loaded.coordinates == original.coordinates


def test_node_link_with_edges_key_and_zoo_attributes(tmp_path: Path) -> None:
    graph = zoo_graph(4)
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps(nx.node_link_data(graph, edges="edges")), encoding="utf-8")
    from_json = load_topology(str(path))
    from_graphml = load_topology(str(write_graphml(graph, tmp_path / "zoo.graphml")))
    assert from_json.router_names == from_graphml.router_names == ("City0", "City1", "City2", "City3")
    assert from_json.links == from_graphml.links
    assert sorted(from_json.latencies.tolist()) == [1, 1, 1, 2]  # 111 km; 334 km from City3 back to City0
    assert load_node_link_json(path, name="renamed").name == "renamed"


def test_existing_json_formats_still_dispatch(tmp_path: Path) -> None:
    b4 = load_topology("b4")
    ours = load_topology(str(save_topology(b4, tmp_path / "ours.json")))
    assert ours.links == b4.links
    daphne = {"data": {"mapTopology": {
        "nodes": [{"name": "A", "posx": 0, "posy": 0}, {"name": "B", "posx": 1, "posy": 1}],
        "edges": [{"name": "e1", "from": "A", "to": "B", "BW": 100, "Lat": 2}],
    }}}
    (tmp_path / "paper.json").write_text(json.dumps(daphne), encoding="utf-8")
    paper = load_topology(str(tmp_path / "paper.json"))
    assert paper.links == (Link(0, 1, 100, 2, 0.0),) and paper.link_names == ("e1",)


# ---------------------------------------------------------------------------- bad input
BAD_FILES = {
    "not-xml.graphml": ("this is not XML", ["not a GraphML file", "XML error"]),
    "empty.graphml": ("", ["not a GraphML file"]),
    "other-xml.graphml": ('<?xml version="1.0"?><svg/>', ["not a valid GraphML file"]),
    "not-json.json": ('{"nodes": [', ["invalid JSON"]),
    "unknown-end.json": (
        json.dumps({"nodes": [{"id": 1}, {"id": 2}], "links": [{"source": 1, "target": 3}]}),
        ["link 0", "target 3 is not a node id"],
    ),
    "no-source.json": (json.dumps({"nodes": [{"id": 1}, {"id": 2}], "edges": [{"target": 1}]}), ["edge 0", "'source'"]),
    "dup-node.json": (json.dumps({"nodes": [{"id": 1}, {"id": 1}], "links": []}), ["node id 1 is used by more"]),
    "other.json": (json.dumps({"nodes": 3}), ["unrecognised JSON", "node-link"]),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_malformed_files_give_one_line_errors(tmp_path: Path, name: str) -> None:
    text, fragments = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TopologyError) as excinfo:
        load_topology(str(path))
    assert_one_line(excinfo, name, *fragments)


def test_graph_problems_give_one_line_errors_without_warnings(tmp_path: Path) -> None:
    # Disconnected (and without coordinates or speeds: no warning may come before the error).
    other = nx.relabel_nodes(zoo_graph(3, coordinates=False, speeds=False), {"0": "x", "1": "y", "2": "z"})
    nx.set_node_attributes(other, {"x": "X", "y": "Y", "z": "Z"}, "label")
    graph = nx.union(zoo_graph(3, coordinates=False, speeds=False), other)
    cases = {
        "disconnected.graphml": (graph, ["disconnected", "2 components", "connect the parts"]),
        "one-router.graphml": (nx.Graph([("a", "a")]), ["has 1 router(s)", "at least 2"]),
        "no-links.graphml": (nx.empty_graph(["a", "b"]), ["has no links"]),
    }
    negative = zoo_graph(3)
    negative.edges["0", "1"]["LinkSpeedRaw"] = -1e9
    cases["negative-speed.graphml"] = (negative, ["link City0-City1", "LinkSpeedRaw must be >= 0", "-1e+09"])
    negative_capacity = zoo_graph(3)
    negative_capacity.edges["1", "2"]["capacity"] = -5
    cases["negative-capacity.graphml"] = (negative_capacity, ["link City1-City2", "capacity must be >= 0"])
    bad_latency = zoo_graph(3)
    bad_latency.edges["1", "2"]["delay"] = -1.0
    cases["negative-delay.graphml"] = (bad_latency, ["delay must be >= 0 ms"])
    bad_geo = zoo_graph(3)
    bad_geo.nodes["1"]["Latitude"] = 123.0
    cases["bad-latitude.graphml"] = (bad_geo, ["router 'City1'", "not degrees"])
    for name, (g, fragments) in cases.items():
        path = write_graphml(g, tmp_path / name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(TopologyError) as excinfo:
                load_topology(str(path))
        assert_one_line(excinfo, name, *fragments)


def test_import_settings_are_validated() -> None:
    for kwargs in ({"tick_ms": 0}, {"capacity_unit_bps": -1.0}, {"default_latency_ticks": 0},
                   {"default_capacity": -3}, {"failure_prob": 2.0}, {"propagation_km_per_ms": float("nan")}):
        with pytest.raises(TopologyError) as excinfo:
            ImportSettings(**kwargs)  # type: ignore[arg-type]
        assert_one_line(excinfo, next(iter(kwargs)))


# ---------------------------------------------------------------------------- topohub
def test_topohub_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "topohub", None)  # makes `import topohub` raise ImportError
    with pytest.raises(TopologyError) as excinfo:
        load_topology("topohub:topozoo/AttMpls")
    assert str(excinfo.value) == "topohub is not installed: pip install mamrl[topohub]"


def _fake_topohub(root: Path) -> None:
    """A stand-in package with topohub's `get(key)` API and data layout."""
    package = root / "topohub"
    (package / "data" / "zoo").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "import importlib.resources, json\n"
        "def get(key, use_names=False):\n"
        "    try:\n"
        "        with (importlib.resources.files(__name__) / f'data/{key}.json').open() as f:\n"
        "            return json.load(f)\n"
        "    except OSError as err:\n"
        "        raise KeyError from err\n",
        encoding="utf-8",
    )
    doc = {
        "directed": False, "multigraph": False, "graph": {"name": "tiny", "demands": {}},
        "nodes": [{"name": "P", "pos": [0.0, 0.0], "id": 0}, {"name": "Q", "pos": [9.0, 0.0], "id": 1},
                  {"name": "R", "pos": [9.0, 1.0], "id": 2}],
        "edges": [{"dist": 1000.75, "source": 0, "target": 1}, {"dist": 111.2, "source": 1, "target": 2}],
    }
    (package / "data" / "zoo" / "Tiny.json").write_text(json.dumps(doc), encoding="utf-8")


def test_topohub_api_is_used_for_topohub_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_topohub(tmp_path)
    spec = importlib.util.spec_from_file_location(
        "topohub", tmp_path / "topohub" / "__init__.py", submodule_search_locations=[str(tmp_path / "topohub")]
    )
    assert spec is not None and spec.loader is not None
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    monkeypatch.setitem(sys.modules, "topohub", fake)
    with pytest.warns(TopologyWarning, match="no capacity attribute"):  # topohub has no capacities
        topo = load_topology("topohub:zoo/Tiny")
    assert topo.name == "zoo/Tiny"
    assert topo.router_names == ("P", "Q", "R")
    assert topo.latencies.tolist() == [6, 1]  # from `dist` in km
    assert topo.coordinates == ((0.0, 0.0), (9.0, 0.0), (9.0, 1.0))
    with pytest.warns(TopologyWarning):
        assert load_topology("topohub:zoo/tiny").name == "zoo/Tiny"  # case-insensitive when unambiguous
    with pytest.raises(TopologyError) as excinfo:
        load_topology("topohub:zoo/Tinny")
    assert_one_line(excinfo, "topohub has no topology 'zoo/Tinny'", "did you mean 'zoo/Tiny'", "topohub_names()")
    with pytest.raises(TopologyError) as excinfo:
        load_topohub("../../etc/passwd")
    assert_one_line(excinfo, "not a topohub name")


def test_real_topohub_package_if_installed() -> None:
    pytest.importorskip("topohub")
    from mamrl.topologies.wild import topohub_names

    assert "topozoo/AttMpls" in topohub_names("topozoo")
    with pytest.warns(TopologyWarning, match="1 Gbit/s"):
        topo = load_topology("topohub:topozoo/AttMpls")
    assert (topo.num_routers, topo.num_links) == (25, 56)
    # topohub's first edge, NY54-CMBR, is 303.97 km long: 1.52 ms -> 2 ticks.
    assert topo.links[topo.link_id("NY54-CMBR")].latency_ticks == 2
    with pytest.raises(TopologyError) as excinfo:
        load_topology("topohub:topozoo/NoSuchNet")
    assert_one_line(excinfo, "topohub has no topology 'topozoo/NoSuchNet'")


# ---------------------------------------------------------------------------- traffic
def test_gravity_demand_weights() -> None:
    # A star with a tail: hub 0 (degree 3), leaves 1 and 2, 3 (degree 2) with a tail router 4.
    topo = Topology("star", ("h", "a", "b", "c", "t"),
                    (Link(0, 1, 10, 1), Link(0, 2, 10, 1), Link(0, 3, 40, 1), Link(3, 4, 20, 1)))
    weights = gravity_demand_weights(topo)
    degree = np.array([3, 1, 1, 2, 1], dtype=float)
    expected = np.outer(degree, degree)
    np.fill_diagonal(expected, 0)
    assert np.allclose(weights, expected / expected.sum())
    assert weights.sum() == pytest.approx(1.0) and np.all(np.diag(weights) == 0)
    by_capacity = gravity_demand_weights(topo, by="capacity")
    assert by_capacity[0, 3] / by_capacity[1, 2] == pytest.approx(60 * 60 / (10 * 10))
    populations = gravity_demand_weights(topo, [1, 0, 0, 0, 1])
    assert populations[0, 4] == populations[4, 0] == pytest.approx(0.5)
    params = SimParams(topo, 0.2, horizon_ticks=50, demand_weights=weights)
    assert params.demand_weights is not None and params.demand_weights.shape == (5, 5)
    for bad, fragment in (([1, 2], "one value per router"), ([1, 0, 0, 0, 0], "no traffic"), ([1, -1, 1, 1, 1], ">= 0")):
        with pytest.raises(TopologyError) as excinfo:
            gravity_demand_weights(topo, bad)
        assert_one_line(excinfo, fragment)


# ---------------------------------------------------------------------------- scale
def synthetic_wan(n: int, seed: int) -> nx.Graph:
    """A connected Waxman graph of `n` routers spread over a 20 x 40 degree patch, with speeds."""
    rng = np.random.default_rng(seed)
    graph = nx.waxman_graph(n, beta=0.4, alpha=0.08, seed=seed)
    parts = [sorted(part) for part in nx.connected_components(graph)]
    for left, right in zip(parts, parts[1:]):  # chain the components together
        graph.add_edge(left[0], right[0])
    wan = nx.Graph()
    for node, data in graph.nodes(data=True):
        x, y = data["pos"]
        wan.add_node(str(node), label=f"R{node}", Latitude=30.0 + 20.0 * y, Longitude=-120.0 + 40.0 * x)
    for u, v in graph.edges:
        wan.add_edge(str(u), str(v), LinkSpeedRaw=float(rng.choice([1e9, 1e10, 1e11])))
    assert nx.is_connected(wan)
    return wan


def test_120_router_graphml_simulates_and_trains(tmp_path: Path) -> None:
    path = write_graphml(synthetic_wan(120, seed=3), tmp_path / "wan120.graphml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        topo = load_topology(str(path))
    assert topo.num_routers == 120 and topo.coordinates is not None
    assert topo.latencies.min() >= 1 and topo.latencies.max() > 1
    params = SimParams(topo, 0.02, horizon_ticks=100, demand_weights=gravity_demand_weights(topo))
    result = Simulator(params).run_tables(make_policy("spa").routing_tables(params), seed=0, num_episodes=2)
    per_episode = result.per_episode()
    assert per_episode["delivered_fraction"].min() > 0.3 and per_episode["lost"].sum() == 0
    agent = make_agent("q-routing")
    curve = agent.train(params, seed=0, num_episodes=3)
    assert len(curve["lost"]) == 3
    evaluation = agent.evaluate(params, seed=1, num_episodes=1)
    assert evaluation["delivered_fraction"].mean() > 0


# ---------------------------------------------------------------------------- CLI
def test_cli_simulates_a_graphml_file_and_rejects_a_bad_one(tmp_path: Path) -> None:
    runner = CliRunner()
    path = write_graphml(zoo_graph(6), tmp_path / "zoo6.graphml")
    result = runner.invoke(app, ["simulate", "--topology", str(path), "--episodes", "1", "--horizon", "50"])
    assert result.exit_code == 0, result.output
    assert "zoo6" in result.stdout
    # Defaults taken while importing print as one `warning:` line each, not Python's two-line form.
    bare = write_graphml(zoo_graph(5, coordinates=False, speeds=False), tmp_path / "bare.graphml")
    result = runner.invoke(app, ["simulate", "--topology", str(bare), "--episodes", "1", "--horizon", "50"])
    assert result.exit_code == 0, result.output
    warning_lines = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning_lines) >= 2 and "TopologyWarning" not in result.stderr
    bad = tmp_path / "broken.graphml"
    bad.write_text("<graphml><graph>", encoding="utf-8")
    result = runner.invoke(app, ["simulate", "--topology", str(bad), "--episodes", "1", "--horizon", "50"])
    assert_one_line_cli_error(result)
    assert "broken.graphml" in result.stderr
    result = runner.invoke(app, ["simulate", "--topology", "topohub:nope/Nothing", "--episodes", "1"])
    assert_one_line_cli_error(result)
