"""Per-destination queues and backpressure routing: the compiled core against the oracle packet by
packet, per-destination queues with table policies against FIFO queues, exact hand cases,
backpressure carrying a load shortest paths cannot, and one-line errors for what is refused."""

from __future__ import annotations

import numpy as np
import pytest

from mamrl.algorithms import ALGORITHM_NAMES, canonical_name, make_agent
from mamrl.agents.backpressure import SP_BACKPRESSURE_BIAS, Backpressure, run_backpressure
from mamrl.agents.policy_gradient import PolicyGradient
from mamrl.agents.q_routing import QRouting
from mamrl.agents.random_policy import UniformRandomPolicy
from mamrl.agents.shortest_path import ShortestPathPolicy, hop_distances
from mamrl.errors import MamrlError, SimulationError
from mamrl.sim import LinkFailure, SimParams, Simulator, backpressure_kernel, draw_policy_uniforms, kernel
from mamrl.sim.kernel import FATE_DELIVERED, PK_END_TICK, PK_FATE, PK_HOPS
from mamrl.sim.metrics import check_conservation
from mamrl.sim.oracle import Backpressure as OracleBackpressure
from mamrl.sim.oracle import OracleResult, run_oracle_episode, table_decider
from mamrl.sim.traffic import Traffic, draw_traffic
from mamrl.topologies import load_topology
from mamrl.topologies.core import Link, PacketSizeTable, Topology

TOPOLOGIES = {name: load_topology(name) for name in ("b4", "geant", "att")}
BIG = 10**6


def tight_topology() -> Topology:
    """Six routers, two routes between most pairs, packets of sizes 1-5, and one link (r1-r4)
    of capacity 6 and latency 3, so whether a head fits on it changes from tick to tick."""
    links = (
        Link(0, 1, BIG, 1), Link(1, 2, BIG, 2), Link(2, 3, BIG, 1), Link(3, 4, BIG, 1), Link(4, 5, BIG, 2),
        Link(5, 0, BIG, 1), Link(1, 4, 6, 3),
    )
    sizes = np.broadcast_to(np.array([1, 2, 3, 5], dtype=np.int64), (6, 6, 4)).copy()
    return Topology("tight", tuple(f"r{i}" for i in range(6)), links, packet_sizes=PacketSizeTable(sizes, "test"))


def diamond_topology() -> Topology:
    """Sources a and b reach d through x or y, both two hops: shortest paths (lowest router id
    on ties) send everything through x."""
    links = tuple(Link(a, b, BIG, 1) for a, b in ((0, 2), (0, 3), (1, 2), (1, 3), (2, 4), (3, 4)))
    return Topology("diamond", ("a", "b", "x", "y", "d"), links)


ALL_TOPOLOGIES = {**TOPOLOGIES, "tight": tight_topology()}


def failures_of(topology: Topology) -> tuple[LinkFailure, ...]:
    """One link down from the start, one failing at tick 57 while packets are in flight on it."""
    busiest = int(np.argmax(topology.degree))
    links_of_busiest = [e for e, l in enumerate(topology.links) if busiest in (l.a, l.b)]
    return (LinkFailure(0, 0), LinkFailure(links_of_busiest[-1], 57))


def oracle_episode(params: SimParams, traffic: Traffic, b: int, **routing) -> OracleResult:
    k = int(traffic.count[b])
    return run_oracle_episode(params, traffic.created_tick[b, :k], traffic.src[b, :k], traffic.dst[b, :k],
                              traffic.size[b, :k], **routing)


def assert_same_run(state: kernel.State, traffic: Traffic, b: int, oracle: OracleResult) -> None:
    """Episode b of the compiled core equals the oracle's: per-tick totals, every packet's fate,
    end tick and hop count, the losses counted at each router and on each link, and each router's summed queue length."""
    k = int(traffic.count[b])
    per_tick = np.array([oracle.generated, oracle.delivered, oracle.lost, oracle.queued, oracle.in_flight]).T
    np.testing.assert_array_equal(state.series[b], per_tick)
    np.testing.assert_array_equal(state.pk[b, :k, PK_END_TICK], oracle.end_ticks())
    fates = np.array([{"pending": 0, "delivered": 1, "lost": 2}[f] for f in oracle.fates()])
    np.testing.assert_array_equal(state.pk[b, :k, PK_FATE], fates)
    np.testing.assert_array_equal(state.pk[b, :k, PK_HOPS], [p.hops for p in oracle.packets])
    np.testing.assert_array_equal(state.router[b, :, kernel.RT_LOST], oracle.lost_at)
    np.testing.assert_array_equal(state.router[b, :, kernel.RT_QUEUED_SUM], oracle.queued_sum_at)
    np.testing.assert_array_equal(state.link[b, kernel.LK_LOST], oracle.lost_per_link)
    assert int(state.router[b, :, kernel.RT_ACTIONS].sum()) == oracle.decisions


# --------------------------------------------------------------------------- the option
def test_queue_discipline_is_validated_described_and_replaced():
    params = SimParams(TOPOLOGIES["b4"], 0.1)
    assert params.queue_discipline == "fifo" and params.describe()["queue_discipline"] == "fifo"
    per_dest = params.replace(queue_discipline="per-destination")
    assert per_dest.describe()["queue_discipline"] == "per-destination"
    assert per_dest.replace(load_per_router=0.2).queue_discipline == "per-destination"
    for bad in ("lifo", "FIFO", 3, None):
        with pytest.raises(SimulationError) as err:
            SimParams(TOPOLOGIES["b4"], 0.1, queue_discipline=bad)
        message = str(err.value)
        assert "\n" not in message and "fifo, per-destination" in message and repr(bad) in message


# --------------------------------------------------------------------------- table policies
@pytest.mark.parametrize("topo_name", ["b4", "geant", "att", "tight"])
@pytest.mark.parametrize("load", [0.05, 0.3, 0.7])
def test_per_destination_queues_with_tables_reproduce_fifo(topo_name, load):
    """Serving the queue whose head came first is serving the FIFO's head: identical runs."""
    topology = ALL_TOPOLOGIES[topo_name]
    fifo = SimParams(topology, load, horizon_ticks=150, failures=failures_of(topology),
                     buffer_limit=12 if load >= 0.7 else None)
    per_dest = fifo.replace(queue_discipline="per-destination")
    for policy in (ShortestPathPolicy(), UniformRandomPolicy()):
        tables = policy.routing_tables(fifo)
        a = Simulator(fifo).run_tables(tables, seed=4, num_episodes=2)
        c = Simulator(per_dest).run_tables(tables, seed=4, num_episodes=2)
        assert c.state.per_destination and not a.state.per_destination
        c.check_conservation()
        np.testing.assert_array_equal(a.state.series, c.state.series)
        np.testing.assert_array_equal(a.state.link, c.state.link)
        # Everything but the queue links and the per-destination sequence numbers.
        same = [f for f in range(kernel.PK_FIELDS) if f not in (kernel.PK_NEXT, kernel.PK_SEQ)]
        np.testing.assert_array_equal(a.state.pk[..., same], c.state.pk[..., same])
        np.testing.assert_array_equal(a.state.router[:, :, kernel.RT_QLEN :], c.state.router[:, :, kernel.RT_QLEN : kernel.RT_FIELDS])
        np.testing.assert_array_equal(a.state.finished, c.state.finished)
        if load >= 0.7:
            assert c.state.episode[:, kernel.EP_LOST].min() > 0


@pytest.mark.parametrize("topo_name", ["geant", "tight"])
def test_per_destination_tables_agree_with_oracle(topo_name):
    topology = ALL_TOPOLOGIES[topo_name]
    params = SimParams(topology, 0.6, horizon_ticks=150, failures=failures_of(topology), buffer_limit=15,
                       queue_discipline="per-destination")
    tables = UniformRandomPolicy().routing_tables(params)
    result = Simulator(params).run_tables(tables, seed=2, num_episodes=2)
    uniforms = draw_policy_uniforms(2, 2, params.horizon_ticks, topology.num_routers)
    for b in range(2):
        decide = table_decider(tables.cumulative, tables.start_ticks, uniforms[b], topology.degree)
        assert_same_run(result.state, result.traffic, b, oracle_episode(params, result.traffic, b, decide=decide))


# --------------------------------------------------------------------------- backpressure = oracle
BP_CASES = [(topo, load, bias) for topo in ("b4", "geant", "att", "tight") for load in (0.05, 0.3, 0.7) for bias in (0.0, 2.5)]


@pytest.mark.parametrize("topo_name,load,bias", BP_CASES)
def test_backpressure_agrees_with_oracle(topo_name, load, bias):
    topology = ALL_TOPOLOGIES[topo_name]
    params = SimParams(topology, load, horizon_ticks=120, failures=failures_of(topology),
                       buffer_limit=10 if load >= 0.7 else None, queue_discipline="per-destination")
    result = run_backpressure(params, bias, seed=3, num_episodes=2)
    result.check_conservation()
    uniforms = draw_policy_uniforms(3, 2, params.horizon_ticks, topology.num_routers)
    for b in range(2):
        oracle = oracle_episode(params, result.traffic, b, backpressure=OracleBackpressure(bias, uniforms[b]))
        assert_same_run(result.state, result.traffic, b, oracle)
    assert result.state.series[:, -1, kernel.SR_DELIVERED].min() > 0


def test_backpressure_oracle_cases_exercise_every_rule():
    """Guard against a vacuous differential test: the cases above meet random tie breaks,
    neighbours that already sent a packet of the weighed destination, heads that do not fit on
    the tight link, losses to failures (on the failing link) and to full buffers."""
    stats = {"ties": 0, "stale": 0, "unfit": 0, "lost on links": 0}
    for topo_name, load, bias in (("tight", 0.7, 0.0), ("tight", 0.7, 2.5), ("att", 0.3, 2.5)):
        topology = ALL_TOPOLOGIES[topo_name]
        params = SimParams(topology, load, horizon_ticks=120, failures=failures_of(topology),
                           buffer_limit=10 if load >= 0.7 else None, queue_discipline="per-destination")
        result = run_backpressure(params, bias, seed=3, num_episodes=1)
        uniforms = draw_policy_uniforms(3, 1, params.horizon_ticks, topology.num_routers)
        oracle = oracle_episode(params, result.traffic, 0, backpressure=OracleBackpressure(bias, uniforms[0]))
        stats["ties"] += oracle.tie_breaks
        stats["stale"] += oracle.stale_lengths
        stats["unfit"] += oracle.unfit_pairs
        stats["lost on links"] += sum(oracle.lost_per_link)
        if load >= 0.7:
            assert oracle.lost[-1] > 0
    assert stats["ties"] > 50 and stats["stale"] > 20 and stats["unfit"] > 10 and stats["lost on links"] > 0, stats


# --------------------------------------------------------------------------- classic rule per destination
def classic_params(topo_name: str, load: float) -> SimParams:
    topology = ALL_TOPOLOGIES[topo_name]
    return SimParams(topology, load, horizon_ticks=200, failures=failures_of(topology),
                     buffer_limit=10 if load >= 0.7 else None, queue_discipline="per-destination")


@pytest.mark.parametrize("topo_name", ["b4", "geant", "att", "tight"])
@pytest.mark.parametrize("load", [0.05, 0.3, 0.7])
def test_classic_backpressure_per_destination_makes_the_general_rules_choices(topo_name, load):
    """Classic backpressure computed per destination (the kernel's default for bias 0) gives the
    same run as weighing every pair (`exhaustive`), on episodes with a link down from the start,
    one failing with packets in flight, full buffers, and links that take some heads but not
    others (the tight link; att's links, whose capacity is little above its largest packets)."""
    params = classic_params(topo_name, load)
    net = kernel.make_net(params)
    traffic = draw_traffic(params, 5, 3)
    uniforms = draw_policy_uniforms(5, 3, params.horizon_ticks, params.topology.num_routers)
    hops = hop_distances(params.topology).astype(np.int64)
    runs = []
    for exhaustive in (False, True):
        state = kernel.make_state(net, traffic)
        backpressure_kernel.run_backpressure_episodes(net, state, hops, 0.0, uniforms, backpressure_kernel.backpressure_scratch(net), exhaustive)
        runs.append(state)
    for field in kernel.State._fields:
        np.testing.assert_array_equal(getattr(runs[0], field), getattr(runs[1], field), err_msg=field)
    assert runs[0].episode[:, kernel.EP_DELIVERED].min() > 0


@pytest.mark.parametrize("topo_name", ["tight", "att"])
def test_classic_backpressure_cases_meet_links_that_take_some_heads_only(topo_name):
    """Guard against a vacuous test above: in its cases a head often does not fit on a link that
    has capacity left, while other heads do."""
    params = classic_params(topo_name, 0.3)
    traffic = draw_traffic(params, 5, 1)
    uniforms = draw_policy_uniforms(5, 1, params.horizon_ticks, params.topology.num_routers)
    oracle = oracle_episode(params, traffic, 0, backpressure=OracleBackpressure(0.0, uniforms[0]))
    assert oracle.unfit_pairs > 10 and oracle.tie_breaks > 100


@pytest.mark.parametrize("bias", [0.0, SP_BACKPRESSURE_BIAS])
def test_backpressure_conserves_packets_and_never_loses_one_on_sending(bias):
    params = SimParams(TOPOLOGIES["geant"], 0.4, horizon_ticks=300)
    result = run_backpressure(params, bias, seed=8, num_episodes=3)
    assert result.params.queue_discipline == "per-destination"  # switched: it is part of the algorithm
    check_conservation(result.state)
    ep = result.state.episode
    assert ep[:, kernel.EP_LOST].sum() == 0  # no failures, no buffer limit: nothing may be lost
    assert ep[:, kernel.EP_DELIVERED].min() > 1000


# --------------------------------------------------------------------------- exact hand cases
def hand_run(params: SimParams, packets: list[tuple[int, int, int, int]], bias: float, u: float) -> kernel.State:
    """Backpressure on hand-made packets (created_tick, src, dst, size), every policy uniform = u."""
    packets = sorted(packets, key=lambda p: (p[0], p[1]))
    arr = np.array(packets, dtype=np.int64)
    traffic = Traffic(arr[None, :, 0].astype(np.int32), arr[None, :, 1].astype(np.int32),
                      arr[None, :, 2].astype(np.int32), arr[None, :, 3], np.array([len(packets)]), 0, 0)
    net = kernel.make_net(params)
    state = kernel.make_state(net, traffic)
    uniforms = np.full((1, params.horizon_ticks, params.topology.num_routers), u)
    hops = hop_distances(params.topology).astype(np.int64)
    backpressure_kernel.run_backpressure_episodes(net, state, hops, bias, uniforms, backpressure_kernel.backpressure_scratch(net))
    oracle = oracle_episode(params, traffic, 0, backpressure=OracleBackpressure(bias, uniforms[0]))
    assert_same_run(state, traffic, 0, oracle)
    return state


def test_neighbour_queue_lengths_are_those_at_the_start_of_forwarding():
    # r1 - r0 - r2, both of r0 and r1 hold a packet for r2 at tick 0. r0 (served first) sends its
    # own straight to r2. r1 weighs r0's queue as it was before that: 1 - 1 = 0, so it waits
    # (reading r0's queue live would give 1 - 0 > 0 and send). At tick 1 it sends; at tick 2 r0
    # ties between r1 and r2 (1 - 0 each) and u = 0.9 picks the second pair, r2.
    topology = Topology("vee", ("r0", "r1", "r2"), (Link(0, 1, BIG, 1), Link(0, 2, BIG, 1)))
    params = SimParams(topology, 0.0, horizon_ticks=10, queue_discipline="per-destination")
    state = hand_run(params, [(0, 0, 2, 1), (0, 1, 2, 1)], bias=0.0, u=0.9)
    assert list(state.pk[0, :2, PK_END_TICK]) == [1, 3]
    assert list(state.pk[0, :2, PK_HOPS]) == [1, 2]
    # u = 0.1 picks the first tied pair: back to r1, which returns it (its only neighbour).
    state = hand_run(params, [(0, 0, 2, 1), (0, 1, 2, 1)], bias=0.0, u=0.1)
    assert state.pk[0, 1, PK_HOPS] > 2


def test_a_head_that_does_not_fit_waits_while_another_queue_goes():
    # r0 - r1 (capacity 4, latency 3) - r2. Tick 0: r0 sends a size-3 packet for r1, leaving 1
    # unit. Tick 1: the next size-3 packet for r1 does not fit, so that queue is left out (it
    # waits, nothing is lost) and the size-1 packet for r2 queued behind it goes. Tick 3: the
    # first packet arrives and frees the link, and the waiting one goes.
    topology = Topology("line", ("r0", "r1", "r2"), (Link(0, 1, 4, 3), Link(1, 2, BIG, 1)))
    params = SimParams(topology, 0.0, horizon_ticks=12, queue_discipline="per-destination")
    state = hand_run(params, [(0, 0, 1, 3), (1, 0, 1, 3), (1, 0, 2, 1)], bias=1.0, u=0.5)
    assert list(state.pk[0, :3, PK_FATE]) == [FATE_DELIVERED] * 3
    assert list(state.pk[0, :3, PK_END_TICK]) == [3, 6, 5]
    assert state.episode[0, kernel.EP_LOST] == 0


# --------------------------------------------------------------------------- what it is for
def test_backpressure_carries_a_load_shortest_paths_cannot():
    """a and b each send 0.8 packets/tick to d. Shortest paths put both flows through x, which
    forwards one packet per tick, so its queue grows by ~0.6 per tick; backpressure splits the
    flows over x and y and keeps every queue short."""
    topology = diamond_topology()
    demand = np.zeros((5, 5))
    demand[0, 4] = demand[1, 4] = 1.0
    params = SimParams(topology, 0.32, horizon_ticks=1000, demand_weights=demand)
    spa = make_agent("spa").evaluate(params, 0, 2)
    assert spa["delivered_fraction"].max() < 0.8 and spa["in_network_at_end"].min() > 300
    assert spa["backlog_growth"].min() > 0.3
    for name in ("backpressure", "sp-backpressure"):
        bp = make_agent(name).evaluate(params, 0, 2)
        assert bp["delivered_fraction"].min() > 0.97, name
        assert bp["in_network_at_end"].max() < 60, name
        assert abs(bp["backlog_growth"]).max() < 0.05, name


def test_sp_backpressure_follows_shortest_paths_at_low_load():
    params = SimParams(TOPOLOGIES["b4"], 0.03, horizon_ticks=500)
    spa = make_agent("spa").evaluate(params, 1, 4)
    sp_bp = make_agent("sp-backpressure").evaluate(params, 1, 4)
    classic = make_agent("backpressure").evaluate(params, 1, 4)
    assert abs(sp_bp["mean_hops"].mean() / spa["mean_hops"].mean() - 1) < 0.02
    assert abs(sp_bp["mean_delivery_time"].mean() / spa["mean_delivery_time"].mean() - 1) < 0.05
    # Classic backpressure random-walks at low load: many more hops.
    assert classic["mean_hops"].mean() > 2 * spa["mean_hops"].mean()


# --------------------------------------------------------------------------- the agent
def test_registry_names_configs_and_metrics():
    assert {"backpressure", "sp-backpressure"} <= set(ALGORITHM_NAMES)
    assert canonical_name("BP") == "backpressure" and canonical_name("sp-bp") == "sp-backpressure"
    classic, biased = make_agent("backpressure"), make_agent("sp-backpressure")
    assert isinstance(classic, Backpressure) and not classic.learns
    assert classic.config() == {"bias_packets_per_hop": 0.0}
    assert biased.config() == {"bias_packets_per_hop": SP_BACKPRESSURE_BIAS} and biased.name == "sp-backpressure"
    assert make_agent("sp-backpressure", {"bias_packets_per_hop": 7}).config() == {"bias_packets_per_hop": 7.0}
    params = SimParams(TOPOLOGIES["b4"], 0.2, horizon_ticks=100)
    metrics = biased.evaluate(params, 5, 3, batch_size=2)
    assert set(metrics) == set(make_agent("spa").evaluate(params, 5, 1))
    # Batches do not matter, and FIFO parameters are run with per-destination queues.
    again = biased.evaluate(params.replace(queue_discipline="per-destination"), 5, 3, batch_size=3)
    for key in ("delivered", "mean_delivery_time", "mean_hops"):
        np.testing.assert_array_equal(metrics[key], again[key])
    with pytest.raises(MamrlError) as err:
        make_agent("back-pressure")
    assert "sp-backpressure" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_bias_is_a_one_line_error(bad):
    with pytest.raises(MamrlError) as err:
        make_agent("sp-backpressure", {"bias_packets_per_hop": bad})
    assert "bias_packets_per_hop" in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- refused combinations
PER_DEST = SimParams(TOPOLOGIES["b4"], 0.1, horizon_ticks=20, queue_discipline="per-destination")


def _deep_rollout():
    from mamrl.agents.deep_consensus import DeepConsensus, DeepConsensusConfig

    DeepConsensus(DeepConsensusConfig(hidden_sizes=(8,))).evaluate(PER_DEST, 0, 1)


def _maml_iteration():
    from mamrl.meta.maml import MamlConfig, MetaLearner

    MetaLearner(MamlConfig()).meta_iteration(PER_DEST, 0)


def _environment():
    from mamrl.envs.routing import RoutingParallelEnv

    RoutingParallelEnv(PER_DEST)


@pytest.mark.parametrize(
    "run,who",
    [
        (lambda: Simulator(PER_DEST).reset(0, 1), "step-wise simulator API"),
        (lambda: QRouting().train(PER_DEST, 0, 1), "q-routing"),
        (lambda: QRouting().evaluate(PER_DEST, 0, 1), "q-routing"),
        (lambda: PolicyGradient().train(PER_DEST, 0, 1), "pg training"),
        (_deep_rollout, "mamrl (deep consensus)"),
        (_maml_iteration, "maml"),
        (_environment, "RL environments"),
    ],
)
def test_fifo_only_code_refuses_per_destination_queues(run, who):
    with pytest.raises(SimulationError) as err:
        run()
    message = str(err.value)
    assert who in message
    assert "supports only queue_discipline 'fifo'" in message and "\n" not in message


def test_table_evaluation_of_a_trained_pg_runs_with_either_discipline():
    agent = PolicyGradient()
    agent.train(SimParams(TOPOLOGIES["b4"], 0.1, horizon_ticks=50), 0, 2)
    fifo = agent.evaluate(SimParams(TOPOLOGIES["b4"], 0.1, horizon_ticks=50), 1, 2)
    per_dest = agent.evaluate(PER_DEST.replace(horizon_ticks=50), 1, 2)
    np.testing.assert_array_equal(fifo["delivered"], per_dest["delivered"])
    np.testing.assert_array_equal(fifo["mean_delivery_time"], per_dest["mean_delivery_time"])


# --------------------------------------------------------------------------- the command line
def test_simulate_queues_option(tmp_path):
    import json

    from typer.testing import CliRunner

    from cli_helpers import assert_one_line_error
    from mamrl.cli import app

    runner = CliRunner()
    docs = {}
    for queues in ("fifo", "per-destination"):
        out = tmp_path / f"{queues}.json"
        result = runner.invoke(app, ["simulate", "-t", "b4", "-l", "0.3", "--horizon", "80", "-n", "2",
                                     "--queues", queues, "--json", str(out)])
        assert result.exit_code == 0, result.output
        docs[queues] = json.loads(out.read_text())
        assert docs[queues]["config"]["simulation"]["queue_discipline"] == queues
    assert docs["fifo"]["per_episode"] == docs["per-destination"]["per_episode"]  # same packets served
    result = runner.invoke(app, ["simulate", "--queues", "lifo", "--horizon", "10", "-n", "1"])
    assert_one_line_error(result)
    assert "fifo, per-destination" in result.stderr
