"""The capacity bound λ* (max-concurrent-flow LP) and the static oracle baselines built on it.

Closed forms (uniform destinations, unit packet sizes, links that never bind):
* a line of n routers: router i forwards its own λ plus the pairs crossing it, 2 i (n-1-i) λ/(n-1);
* a star of k leaves: the centre forwards its own λ and every leaf's packets for other leaves, k λ;
* a ring of n: by symmetry every router forwards λ × (mean hop distance).
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from mamrl.algorithms import ALGORITHM_NAMES, POLICY_NAMES, make_agent, make_policy
from mamrl.agents.ecmp import ecmp_probabilities
from mamrl.agents.max_throughput import max_throughput_probabilities
from mamrl.agents.min_delay import min_delay_flow, min_delay_probabilities
from mamrl.agents.static_routing import loop_free, remove_cycles
from mamrl.errors import MamrlError
from mamrl.sim import LinkFailure, SimParams
from mamrl.sim.capacity import Arcs, CommodityFlow, InfeasibleLoadError, capacity_bound, failure_scan
from mamrl.sim.evaluate import evaluate_tables
from mamrl.sim.metrics import summarise
from mamrl.topologies import Link, PacketSizeTable, Topology, load_topology


def graph_topology(name: str, edges, n: int, *, capacity: int = 10**9, latency: int = 1, sizes=None) -> Topology:
    links = tuple(Link(a, b, capacity, latency) for a, b in edges)
    table = None if sizes is None else PacketSizeTable(np.full((n, n, 1), sizes), "test")
    return Topology(name, tuple(f"r{i}" for i in range(n)), links, packet_sizes=table)


def line(n: int, **kw) -> Topology:
    return graph_topology(f"line{n}", [(i, i + 1) for i in range(n - 1)], n, **kw)


def star(k: int) -> Topology:
    return graph_topology(f"star{k}", [(0, i) for i in range(1, k + 1)], k + 1)


def ring(n: int) -> Topology:
    return graph_topology(f"ring{n}", [(i, (i + 1) % n) for i in range(n)], n)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7])
def test_line_closed_form(n):
    crossing = [1 + 2 * i * (n - 1 - i) / (n - 1) for i in range(n)]
    bound = capacity_bound(line(n))
    assert bound.max_load == pytest.approx(1 / max(crossing), rel=1e-7)
    busiest = {i for i, c in enumerate(crossing) if c == max(crossing)}
    assert set(bound.binding_routers) == busiest


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_star_closed_form(k):
    bound = capacity_bound(star(k))
    assert bound.max_load == pytest.approx(1 / k, rel=1e-7)
    if k > 1:  # with one leaf both routers forward λ and both bind
        assert bound.binding_routers == (0,)


@pytest.mark.parametrize("n", [3, 4, 5, 6, 9])
def test_ring_closed_form(n):
    hops = [min(d, n - d) for d in range(1, n)]
    bound = capacity_bound(ring(n))
    assert bound.max_load == pytest.approx(len(hops) / sum(hops), rel=1e-7)
    assert set(bound.binding_routers) == set(range(n))


def test_link_capacity_in_its_long_run_form():
    # Two routers, one link: λ packets per tick each way, each reserving size × latency.
    size, latency = 7, 3
    for capacity, expected in ((1_000, 1.0), (21, 0.5), (7, 1 / 6)):
        topo = Topology("pair", ("a", "b"), (Link(0, 1, capacity, latency),),
                        packet_sizes=PacketSizeTable(np.full((2, 2, 1), size), "test"))
        bound = capacity_bound(topo)
        assert bound.max_load == pytest.approx(min(1.0, capacity / (2 * size * latency)), rel=1e-7)
        assert bound.max_load == pytest.approx(expected, rel=1e-7)
        assert bound.binding_links == (() if expected == 1.0 else (0,))


def test_demand_weights_are_followed():
    # All traffic from r0 to r2 on a 3-line: the network-wide rate 3λ all crosses r0 and r1.
    weights = np.zeros((3, 3))
    weights[0, 2] = 1.0
    assert capacity_bound(line(3), demand_weights=weights).max_load == pytest.approx(1 / 3, rel=1e-7)


def test_a_cut_network_has_no_capacity_and_names_its_components():
    bound = capacity_bound(line(4), failed_links=(1,))
    assert bound.max_load == 0.0 and bound.disconnected
    assert bound.components == ((0, 1), (2, 3))
    assert bound.cut_off == (2, 3)
    zero_link = Topology("z", ("a", "b", "c"), (Link(0, 1, 10, 1), Link(1, 2, 0, 1)))
    assert capacity_bound(zero_link).components == ((0, 1), (2,))


def test_failing_a_link_never_raises_the_bound():
    rng = np.random.default_rng(3)
    for trial in range(6):
        n = int(rng.integers(5, 10))
        graph = nx.gnm_random_graph(n, int(rng.integers(n, 2 * n)), seed=int(rng.integers(1 << 30)))
        graph.add_edges_from((i, i + 1) for i in range(n - 1))  # connected
        topo = graph_topology(f"g{trial}", sorted(graph.edges), n, latency=int(rng.integers(1, 4)))
        intact = capacity_bound(topo).max_load
        for link, bound in failure_scan(topo):
            assert bound.max_load <= intact * (1 + 1e-9), (trial, link)
            assert bound.max_load == 0.0 or not bound.disconnected


def test_builtin_bounds_and_flow_feasibility():
    for name in ("b4", "geant", "att"):
        topo = load_topology(name)
        bound = capacity_bound(topo)
        assert 0.2 < bound.max_load < 0.35
        rate = bound.flow.forwarding_rate()
        assert rate.max() <= 1 + 1e-6
        assert np.all(rate[list(bound.binding_routers)] >= 1 - 1e-6)
        assert np.nanmax(bound.flow.link_share()) <= 1 + 1e-6


# ------------------------------------------------------------------------------ the static baselines
def test_ecmp_splits_equally_over_shortest_paths():
    topo = ring(4)
    probs = ecmp_probabilities(topo)
    # r0 reaches r2 over r1 and r3 (two hops each way): half each; r1 only over slot of r1.
    assert probs[0, 2, :2] == pytest.approx([0.5, 0.5])
    assert probs[0, 1, 0] == 1.0
    assert loop_free(topo, probs)


def test_flow_oracles_are_loop_free_and_carry_what_spa_cannot():
    topo = load_topology("b4")
    limit = capacity_bound(topo).max_load
    load = 0.9 * limit
    params = SimParams(topo, load, 1500)
    growth = {}
    for name in ("spa", "max-throughput", "min-delay"):
        tables = make_policy(name).routing_tables(params)
        if name != "spa":
            assert loop_free(topo, np.diff(tables.cumulative[0], axis=-1, prepend=0.0))
        metrics, _ = evaluate_tables(params, tables, 0, 4)
        growth[name] = summarise(metrics)["backlog_growth"].mean
    # SPA saturates near 0.18 on b4; the flow oracles stay bounded at 0.9 λ* = 0.28.
    assert growth["spa"] > 0.2
    assert growth["max-throughput"] < 0.05 and growth["min-delay"] < 0.05


def test_min_delay_predicts_latency_at_low_load_and_refuses_infeasible_loads():
    topo = line(4, latency=2)
    result = min_delay_flow(topo, 0.01)
    mean_path = np.mean([2 * abs(s - d) for s in range(4) for d in range(4) if s != d])
    assert result.predicted_delivery_time == pytest.approx(mean_path, rel=0.02)
    assert result.relative_gap <= 1e-4
    limit = capacity_bound(topo).max_load
    for load in (limit, 2 * limit):
        with pytest.raises(InfeasibleLoadError, match=r"λ\* = 0\.4286 of line4"):
            min_delay_probabilities(topo, load)
        with pytest.raises(InfeasibleLoadError, match="at or above the capacity limit"):
            max_throughput_probabilities(topo, load)


def test_min_delay_beats_shortest_paths_in_its_own_model():
    # On b4 at 0.8 λ*, the model's delay of the min-delay flow is below that of any single-path
    # routing the LP can produce, and the simulated delay follows the prediction within 25%.
    topo = load_topology("b4")
    load = 0.8 * capacity_bound(topo).max_load
    result = min_delay_flow(topo, load)
    assert result.relative_gap <= 1e-4
    params = SimParams(topo, load, 1500)
    metrics, _ = evaluate_tables(params, make_policy("min-delay").routing_tables(params), 1, 4)
    simulated = summarise(metrics)["mean_delivery_time"].mean
    assert abs(simulated - result.predicted_delivery_time) < 0.25 * result.predicted_delivery_time


def test_remove_cycles_cancels_a_circulation():
    topo = ring(3)
    arcs = Arcs.of(topo)
    flow = np.zeros((3, arcs.num_arcs))
    # Commodity 0: r1 -> r0 directly (arc of link 0 b -> a = 1), plus a circulation r1 -> r2 -> r1.
    flow[0, 1] = 1.0
    flow[0, 2] = flow[0, 3] = 0.5  # link 1 joins r1 and r2: arcs 2 (r1 -> r2) and 3 (r2 -> r1)
    cleaned = remove_cycles(CommodityFlow(topo, arcs, flow, 1.0, np.zeros((3, 3))))
    assert cleaned.flow[0, 1] == 1.0 and cleaned.flow[0, 2] == 0.0 and cleaned.flow[0, 3] == 0.0


def test_unknown_policy_names_list_the_valid_ones():
    with pytest.raises(MamrlError, match="choose from spa, ecmp, max-throughput, min-delay, random"):
        make_policy("ospf")
    with pytest.raises(MamrlError, match="unknown algorithm 'ospf'"):
        make_agent("ospf")
    assert {"ecmp", "max-throughput", "min-delay"} <= set(POLICY_NAMES) & set(ALGORITHM_NAMES)


def test_oracles_reconverge_after_a_failure():
    topo = load_topology("b4")
    params = SimParams(topo, 0.1, 400, failures=(LinkFailure(0, 100),))
    for name in ("ecmp", "max-throughput", "min-delay"):
        never = make_policy(name).routing_tables(params)
        react = make_policy(name, reconvergence_delay_ticks=10).routing_tables(params)
        assert never.cumulative.shape[0] == 1 and list(react.start_ticks) == [0, 110]
        lost_never = summarise(evaluate_tables(params, never, 0, 2)[0])["lost"].mean
        lost_react = summarise(evaluate_tables(params, react, 0, 2)[0])["lost"].mean
        assert lost_react < lost_never, name
    assert math.isfinite(capacity_bound(topo, failed_links=(0,)).max_load)


# ------------------------------------------------------------------------------ the yardstick in the experiments
def test_relative_loads_resolve_against_each_topologys_limit(tmp_path):
    from mamrl.experiments.config import build_sweep_config
    from mamrl.experiments.sweep import skipped_cells, sweep_cells, topology_capacity

    config = build_sweep_config(overrides={
        "topologies": ["b4", "att"], "algorithms": ["spa", "min-delay"], "loads": ["1.2X", 0.1, " 0.5x"], "seeds": [0],
        "results": str(tmp_path / "r.csv"),
    })
    assert config.loads == (0.1, "0.5x", "1.2x")
    b4, att = topology_capacity("b4"), topology_capacity("att")
    assert b4 == pytest.approx(0.3142857, rel=1e-5) and att == pytest.approx(0.2727273, rel=1e-5)
    cells = sweep_cells(config)
    assert {c.load for c in cells if c.topology == "att"} == {0.1, float(f"{0.5 * att:.6g}"), float(f"{1.2 * att:.6g}")}
    # min-delay does not exist at 1.2 λ*: that cell is not run, SPA's is.
    assert [(c.topology, c.algorithm, c.load) for c in skipped_cells(config)] == [
        ("b4", "min-delay", float(f"{1.2 * b4:.6g}")), ("att", "min-delay", float(f"{1.2 * att:.6g}"))]
    assert len(cells) == 10
    for bad in ("x", "-0.5x", "0x", "fast"):
        with pytest.raises(MamrlError, match="loads"):
            build_sweep_config(overrides={"loads": [bad]})


SATURATION_CASES = [
    ("spa", 1), ("ecmp", 1), ("max-throughput", 1),
    # Flow deviation or backpressure at every probed load: 10-30 s each on 2 busy cores.
    pytest.param("min-delay", 1, marks=pytest.mark.slow),
    pytest.param("sp-backpressure", 1, marks=pytest.mark.slow),
    pytest.param("backpressure", 1, marks=pytest.mark.slow),
    # Learners trained at every probed load; slow (minutes).
    pytest.param("q-routing", 300, marks=pytest.mark.slow),
    pytest.param("pg", 300, marks=pytest.mark.slow),
    pytest.param("mamrl", 64, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("algorithm,train_episodes", SATURATION_CASES)
def test_bisected_saturation_stays_below_the_capacity_limit(algorithm, train_episodes):
    from mamrl.experiments.saturation import saturation_search, trained_agent_factory

    topo = load_topology("b4")
    tolerance = 0.01
    config = {"reward": "packet", "hidden_sizes": [32, 32]} if algorithm == "mamrl" else None
    # Classic backpressure random-walks at low load, and so does a deep policy after 64 episodes:
    # short episodes of a tiny load end inside that start-up transient.
    classic = algorithm in ("backpressure", "mamrl")
    result = saturation_search(topo, algorithm, trained_agent_factory(algorithm, config, train_episodes, 500),
                               low=0.05 if classic else 0.005, high=0.5, tolerance=tolerance,
                               horizon_ticks=2000 if classic else 1000, episodes=8 if classic else 4, max_episodes=16)
    assert result.max_load == pytest.approx(capacity_bound(topo).max_load)
    assert result.bounded_load is not None and result.bounded_load <= result.max_load + tolerance
    if algorithm in ("max-throughput", "min-delay"):  # they stay bounded close to λ* in the simulator
        assert result.bounded_load >= 0.9 * result.max_load


def test_simulate_runs_every_non_learning_policy_and_refuses_with_one_line():
    from cli_helpers import assert_one_line_error
    from typer.testing import CliRunner

    from mamrl.cli import app

    runner = CliRunner()
    for policy in ("spa", "ecmp", "max-throughput", "min-delay", "backpressure", "sp-backpressure", "random"):
        result = runner.invoke(app, ["simulate", "-p", policy, "-l", "0.1", "-n", "2", "--horizon", "80"])
        assert result.exit_code == 0, (policy, result.output)
        assert f"{policy}, 2 episodes" in result.stdout
    for args, message in (
        (["simulate", "-p", "min-delay", "-l", "0.4"], "λ* = 0.3143"),
        (["simulate", "-p", "max-throughput", "-l", "0.3143"], "at or above the capacity limit"),
        (["simulate", "-p", "ospf"], "choose from spa, ecmp, max-throughput, min-delay, random"),
        (["simulate", "-p", "backpressure", "--queues", "fifo"], "per-destination queues"),
        (["capacity", "-t", "b4", "--fail", "A-B@10"], "without @TICK"),
    ):
        result = runner.invoke(app, args)
        assert_one_line_error(result)
        assert message in result.stderr
    cut = runner.invoke(app, ["capacity", "-t", "b4", "--fail", "A-B", "--fail", "A-C"])
    assert cut.exit_code == 0 and "λ* = 0 " in cut.stdout and "{A}" in cut.stdout
