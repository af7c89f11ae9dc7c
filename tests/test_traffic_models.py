"""Traffic models for topologies without a demand file: gravity destinations and a stated packet
size make link utilisation and λ* mean something on a topology whose links are in bit/s."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from typer.testing import CliRunner

from cli_helpers import assert_one_line_error
from mamrl.cli import app
from mamrl.errors import TopologyError
from mamrl.experiments.capacity_report import capacity_report
from mamrl.experiments.simulate import SimulationRequest, prepare_simulation, run_simulation
from mamrl.sim.capacity import capacity_bound
from mamrl.topologies import load_topology
from mamrl.topologies.traffic_models import (
    AUTO_PACKETS_PER_LINK,
    TrafficModel,
    apply_traffic_model,
    auto_packet_size_units,
    parse_packet_size,
    unit_size_note,
)
from mamrl.topologies.wild import gravity_demand_weights

runner = CliRunner()


@pytest.fixture(scope="module")
def zoo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Topology Zoo-style star-and-ring of 7 routers with 10 Gbit/s and OC-48 (2.488 Gbit/s) links."""
    graph = nx.Graph(Network="Hub")
    for i in range(7):
        graph.add_node(str(i), label=f"R{i}", Latitude=45.0 + 0.5 * (i % 3), Longitude=4.0 * i)
    for i in range(1, 7):
        graph.add_edge("0", str(i), LinkLabel="10GE")  # the hub: high degree, so gravity favours it
    for i in range(1, 6):
        graph.add_edge(str(i), str(i + 1), LinkLabel="OC-48")
    path = tmp_path_factory.mktemp("zoo") / "hub.graphml"
    nx.write_graphml(graph, path)
    return path


def simulate(zoo_file: Path, **fields) -> tuple[object, dict[str, np.ndarray]]:
    sim = prepare_simulation(SimulationRequest(str(zoo_file), "0.3", episodes=4, horizon_ticks=200, **fields))
    return sim, run_simulation(sim)


def test_auto_packet_size_is_the_median_capacity_over_40(zoo_file: Path) -> None:
    topo = load_topology(zoo_file)
    median = int(np.median(topo.capacities))
    assert median == 10_000_000_000  # 6 hub links of 10 Gbit/s against 5 of OC-48
    assert auto_packet_size_units(topo) == median // AUTO_PACKETS_PER_LINK
    sized, weights, text = apply_traffic_model(topo, TrafficModel(packet_size_units="auto"))
    assert weights is None and np.all(sized.packet_sizes.values == median // 40)
    assert "250,000,000 capacity units (median link capacity / 40)" in text


def test_a_stated_packet_size_makes_utilisation_meaningful(zoo_file: Path) -> None:
    unit_sim, unit = simulate(zoo_file)
    auto_sim, auto = simulate(zoo_file, packet_size="auto")
    # Same traffic (seeded), same routing: only the packets' sizes differ, so utilisation scales by the size.
    np.testing.assert_array_equal(unit["delivered"], auto["delivered"])
    assert np.nanmax(unit["max_link_utilisation"]) < 1e-6
    assert 0.01 < np.nanmean(auto["mean_link_utilisation"]) < 1.0
    np.testing.assert_allclose(auto["link_utilisation"], unit["link_utilisation"] * 250_000_000, rtol=1e-12)
    assert any("no packet sizes" in note and "--packet-size" in note for note in unit_sim.warnings)
    assert not any("no packet sizes" in note for note in auto_sim.warnings)
    assert auto_sim.config["simulation"]["packet_sizes"].startswith("every packet 250,000,000")


def test_gravity_destinations_reach_the_simulator_and_the_capacity_bound(zoo_file: Path) -> None:
    topo = load_topology(zoo_file)
    sim, per_episode = simulate(zoo_file, traffic="gravity")
    np.testing.assert_allclose(sim.params.demand_weights, gravity_demand_weights(topo))
    assert sim.config["traffic"].startswith("gravity destinations")
    uniform_sim, uniform = simulate(zoo_file)
    assert uniform_sim.params.demand_weights is None
    assert not np.array_equal(per_episode["mean_hops"], uniform["mean_hops"])  # other destinations, other paths
    report = capacity_report(str(zoo_file), traffic="gravity")
    assert report.bound.max_load == pytest.approx(capacity_bound(topo, demand_weights=gravity_demand_weights(topo)).max_load)
    assert report.bound.max_load != pytest.approx(capacity_report(str(zoo_file)).bound.max_load)


def test_a_packet_as_large_as_a_link_makes_links_bind(zoo_file: Path) -> None:
    """Sizes enter λ*: with packets of 2 Gbit a long 10 Gbit/s hub link carries fewer than one per tick and binds."""
    unit = capacity_report(str(zoo_file))
    big = capacity_report(str(zoo_file), packet_size=2_000_000_000)
    assert not unit.bound.binding_links
    assert big.bound.binding_links and big.bound.max_load < unit.bound.max_load


def test_built_in_sizes_are_kept_and_raise_no_warning() -> None:
    b4 = load_topology("b4")
    assert unit_size_note(b4) is None
    same, weights, text = apply_traffic_model(b4, TrafficModel())
    assert same.packet_sizes is b4.packet_sizes and weights is None and text.startswith("uniform destinations")


@pytest.mark.parametrize("value", [0, -3, "1.5", "big", True, 2**31 - 1])
def test_bad_packet_sizes_are_refused(value: object) -> None:
    with pytest.raises(TopologyError, match="packet size must be 'auto' or a whole number"):
        parse_packet_size(value)


def test_packet_size_parses_digits_with_separators() -> None:
    assert parse_packet_size("12_000") == 12000 and parse_packet_size("1,500") == 1500 and parse_packet_size("auto") == "auto"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--traffic", "zipf"), "unknown traffic model 'zipf'"),
        (("--packet-size", "0"), "packet size must be"),
        (("--packet-size", "5", "--demand", "demand.txt"), "give --demand"),
    ],
)
@pytest.mark.parametrize("command", ["simulate", "capacity"])
def test_cli_bad_traffic_is_one_line(command: str, args: tuple[str, ...], fragment: str) -> None:
    result = runner.invoke(app, [command, "-t", "b4", *args, *(("-n", "1") if command == "simulate" else ())])
    assert_one_line_error(result)
    assert fragment in result.stderr


def test_cli_simulate_states_the_traffic(zoo_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "sim.json"
    result = runner.invoke(app, ["simulate", "-t", str(zoo_file), "-n", "2", "--horizon", "100", "--traffic", "gravity",
                                 "--packet-size", "auto", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "traffic: gravity destinations" in result.stdout and "median link capacity / 40" in result.stdout
    config = json.loads(out.read_text())["config"]
    assert config["traffic"].startswith("gravity") and config["simulation"]["demand_weights"] is not None
