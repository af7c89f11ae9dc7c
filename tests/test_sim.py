"""The simulator core against SPEC §1: oracle agreement, invariants, exact cases, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from mamrl.agents.random_policy import UniformRandomPolicy
from mamrl.agents.shortest_path import ShortestPathPolicy, hop_distances, shortest_path_next_hop
from mamrl.errors import MamrlError, SimulationError
from mamrl.sim import LinkFailure, SimParams, Simulator, draw_policy_uniforms
from mamrl.sim import kernel
from mamrl.sim.simulator import in_flight_by_sender
from mamrl.sim.kernel import FATE_DELIVERED, FATE_LOST, PK_END_TICK, PK_FATE, PK_HOPS, PK_CREATED, PK_DST, PK_SRC
from mamrl.sim.metrics import check_conservation
from mamrl.sim.oracle import run_oracle_episode, table_decider
from mamrl.sim.traffic import Traffic
from mamrl.topologies import load_topology
from mamrl.topologies.core import Link, PacketSizeTable, Topology

TOPOLOGIES = {name: load_topology(name) for name in ("b4", "geant", "att")}


def line_topology(latencies: list[int], capacity: int = 10**9, sizes: int | None = None) -> Topology:
    n = len(latencies) + 1
    links = tuple(Link(i, i + 1, capacity, lat) for i, lat in enumerate(latencies))
    table = None if sizes is None else PacketSizeTable(np.full((n, n, 1), sizes), "test")
    return Topology("line", tuple(f"r{i}" for i in range(n)), links, packet_sizes=table)


def hand_traffic(packets: list[tuple[int, int, int, int]]) -> Traffic:
    """One episode from (created_tick, src, dst, size) tuples, sorted as draw_traffic would."""
    packets = sorted(packets, key=lambda p: (p[0], p[1]))
    arr = np.array(packets, dtype=np.int64).reshape(-1, 4)
    return Traffic(
        arr[None, :, 0].astype(np.int32),
        arr[None, :, 1].astype(np.int32),
        arr[None, :, 2].astype(np.int32),
        arr[None, :, 3].astype(np.int64),
        np.array([len(packets)]),
        0,
        0,
    )


def run_hand(params: SimParams, traffic: Traffic, policy=None) -> kernel.State:
    policy = policy or ShortestPathPolicy()
    tables = policy.routing_tables(params)
    sim = Simulator(params)
    state = kernel.make_state(sim.net, traffic)
    kernel.run_table_episodes(sim.net, state, tables.cumulative, tables.start_ticks, np.zeros((1, 1, 1)), False)
    return state


# --------------------------------------------------------------------------- oracle agreement
ORACLE_CASES = [
    (topo, load, fails, policy, queues)
    for topo in ("b4", "geant", "att")
    for load in (0.005, 0.05, 0.2, 0.5)
    for fails in ("none", "failures")
    for policy in ("spa", "random")
    for queues in ("fifo", "per-destination")
]


def _failures(topology: Topology, kind: str) -> tuple[LinkFailure, ...]:
    if kind == "none":
        return ()
    # One link down from the start, one failing mid-episode while packets are in flight on it.
    busiest = int(np.argmax(topology.degree))
    links_of_busiest = [e for e, l in enumerate(topology.links) if busiest in (l.a, l.b)]
    return (LinkFailure(0, 0), LinkFailure(links_of_busiest[-1], 57))


@pytest.mark.parametrize("topo_name,load,fails,policy_name,queues", ORACLE_CASES)
def test_fast_core_agrees_with_oracle(topo_name, load, fails, policy_name, queues):
    topology = TOPOLOGIES[topo_name]
    params = SimParams(topology, load, horizon_ticks=150, failures=_failures(topology, fails),
                       buffer_limit=25 if load >= 0.5 else None, queue_discipline=queues)
    policy = ShortestPathPolicy() if policy_name == "spa" else UniformRandomPolicy()
    tables = policy.routing_tables(params)
    lost_on_links = 0
    for seed in (0, 1):
        result = Simulator(params).run_tables(tables, seed=seed, num_episodes=2)
        result.check_conservation()
        state, traffic = result.state, result.traffic
        uniforms = draw_policy_uniforms(seed, 2, params.horizon_ticks, topology.num_routers) if tables.stochastic else None
        for b in range(2):
            k = int(traffic.count[b])
            oracle = run_oracle_episode(
                params, traffic.created_tick[b, :k], traffic.src[b, :k], traffic.dst[b, :k], traffic.size[b, :k],
                table_decider(tables.cumulative, tables.start_ticks, None if uniforms is None else uniforms[b], topology.degree),
            )
            per_tick = np.array([oracle.generated, oracle.delivered, oracle.lost, oracle.queued, oracle.in_flight]).T
            np.testing.assert_array_equal(state.series[b], per_tick)
            np.testing.assert_array_equal(state.pk[b, :k, PK_END_TICK], oracle.end_ticks())
            fates = np.array([{"pending": 0, "delivered": 1, "lost": 2}[f] for f in oracle.fates()])
            np.testing.assert_array_equal(state.pk[b, :k, PK_FATE], fates)
            np.testing.assert_array_equal(state.router[b, :, kernel.RT_LOST], oracle.lost_at)
            np.testing.assert_array_equal(state.router[b, :, kernel.RT_QUEUED_SUM], oracle.queued_sum_at)
            np.testing.assert_array_equal(state.link[b, kernel.LK_LOST], oracle.lost_per_link)
            lost_on_links += sum(oracle.lost_per_link)
            assert state.series[b, -1, kernel.SR_GENERATED] > 0 or load < 0.01
    # Not vacuous: with a link down (from the start, and one failing mid-episode) packets are lost on links.
    assert lost_on_links > 0 or fails == "none"


def test_oracle_cases_exercise_loss_and_delivery():
    """Guard against a vacuous differential test: the cases above see deliveries, capacity/failure
    losses and buffer drops."""
    topology = TOPOLOGIES["att"]
    params = SimParams(topology, 0.5, horizon_ticks=150, failures=_failures(topology, "failures"), buffer_limit=25)
    result = Simulator(params).run_tables(ShortestPathPolicy().routing_tables(params), seed=0, num_episodes=2)
    ep = result.state.episode
    assert ep[:, kernel.EP_DELIVERED].min() > 100
    assert ep[:, kernel.EP_LOST].min() > 10


# --------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("topo_name", ["b4", "att"])
def test_conservation_every_tick_step_api(topo_name):
    topology = TOPOLOGIES[topo_name]
    params = SimParams(topology, 0.4, horizon_ticks=120, failures=(LinkFailure(3, 40),), buffer_limit=10)
    sim = Simulator(params)
    state = sim.reset(seed=5, num_episodes=3)
    rng = np.random.default_rng(0)
    for _ in range(params.horizon_ticks):
        ep = state.episode
        assert np.array_equal(
            ep[:, kernel.EP_GENERATED],
            ep[:, kernel.EP_DELIVERED] + ep[:, kernel.EP_LOST] + ep[:, kernel.EP_QUEUED] + ep[:, kernel.EP_IN_FLIGHT],
        )
        actions = rng.integers(0, topology.degree[None, :], size=(3, topology.num_routers))
        events = sim.step(state, actions)
    assert events.done
    check_conservation(state)


@pytest.mark.parametrize("topo_name", ["b4", "att"])
def test_compiled_observation_encoding_and_in_flight_counts_equal_their_plain_definitions(topo_name):
    """`Simulator.observe_encoded` and `in_flight_by_sender` (compiled, one pass) agree every tick,
    through a link failure and buffer drops, with the plain definitions: the environments'
    `encode_observation` of `observe`, and a count over every packet marked as on a link."""
    from mamrl.envs.routing import encode_observation

    topology = TOPOLOGIES[topo_name]
    params = SimParams(topology, 0.4, horizon_ticks=80, failures=(LinkFailure(2, 30),), buffer_limit=6)
    sim = Simulator(params)
    state = sim.reset(seed=3, num_episodes=3)
    rng = np.random.default_rng(1)
    n = topology.num_routers
    seen_in_flight = 0
    for _ in range(params.horizon_ticks):
        obs, mask = sim.observe_encoded(state)
        plain = sim.observe(state)
        for b in range(3):
            single = type(plain)(*(np.asarray(getattr(plain, f))[b:b + 1] for f in plain.__dataclass_fields__))
            np.testing.assert_array_equal(obs[b], encode_observation(single, topology.degree))
        np.testing.assert_array_equal(mask.astype(bool), plain.action_mask)
        on_link = state.pk[:, :, kernel.PK_LINK] >= 0
        expected = np.zeros((3, n), dtype=np.int64)
        for b, p in zip(*np.nonzero(on_link)):
            expected[b, state.pk[b, p, kernel.PK_SENDER]] += 1
        counted = in_flight_by_sender(state)
        np.testing.assert_array_equal(counted, expected)
        seen_in_flight += int(counted.sum())
        sim.step(state, rng.integers(0, topology.degree[None, :], size=(3, n)))
    assert seen_in_flight > 0
    failed_slots = sim.slot_exists & (sim.link_of_slot == 2)
    assert failed_slots.sum() == 2 and not mask[:, failed_slots].any()  # the failed link, at both ends


def test_step_api_equals_whole_episode_path():
    topology = TOPOLOGIES["geant"]
    params = SimParams(topology, 0.3, horizon_ticks=200, failures=(LinkFailure(5, 30),))
    slots = shortest_path_next_hop(topology)
    sim = Simulator(params)
    state = sim.reset(seed=11, num_episodes=2)
    for _ in range(params.horizon_ticks):
        obs = sim.observe(state)
        dst = np.maximum(obs.head_destination, 0)
        actions = np.maximum(slots[np.arange(topology.num_routers)[None, :], dst], 0)
        sim.step(state, actions)
    whole = sim.run_tables(ShortestPathPolicy().routing_tables(params), seed=11, num_episodes=2).state
    np.testing.assert_array_equal(state.series, whole.series)
    np.testing.assert_array_equal(state.pk, whole.pk)
    np.testing.assert_array_equal(state.link, whole.link)  # the per-link counters, losses included
    assert state.link[:, kernel.LK_LOST, 5].min() > 0


# --------------------------------------------------------------------------- exact cases
def test_line_topology_delivery_time_is_sum_of_latencies():
    latencies = [1, 2, 3, 4]
    topology = line_topology(latencies)
    params = SimParams(topology, 0.0, horizon_ticks=400)
    pairs = [(s, d) for s in range(5) for d in range(5) if s != d]
    # One packet every 15 ticks: never two in the network at once, so queueing is zero.
    traffic = hand_traffic([(15 * k, s, d, 1) for k, (s, d) in enumerate(pairs)])
    state = run_hand(params, traffic)
    ends = state.pk[0, : len(pairs), PK_END_TICK]
    created = state.pk[0, : len(pairs), PK_CREATED]
    for k in range(len(pairs)):
        s, d = int(state.pk[0, k, PK_SRC]), int(state.pk[0, k, PK_DST])
        assert state.pk[0, k, PK_FATE] == FATE_DELIVERED
        assert ends[k] - created[k] == sum(latencies[min(s, d) : max(s, d)])


def test_line_topology_low_poisson_load_has_no_queueing():
    latencies = [1, 2, 3, 4]
    params = SimParams(line_topology(latencies), 0.002, horizon_ticks=20000)
    result = Simulator(params).run_tables(ShortestPathPolicy().routing_tables(params), seed=3, num_episodes=1)
    pk = result.state.pk[0, : result.traffic.count[0]]
    done = pk[:, PK_FATE] == FATE_DELIVERED
    assert done.sum() > 150
    path = np.array([[sum(latencies[min(s, d) : max(s, d)]) for d in range(5)] for s in range(5)])
    times = (pk[:, PK_END_TICK] - pk[:, PK_CREATED])[done]
    exact = path[pk[done, PK_SRC], pk[done, PK_DST]]
    assert np.all(times >= exact)
    # At 0.002 packets/router/tick almost no packet ever meets another one.
    assert np.mean(times == exact) > 0.97


def test_queue_grows_linearly_at_a_bottleneck():
    # Two routers: each creates Poisson(1.3) packets per tick and forwards one, so each queue
    # grows by ~0.3 per tick; at 0.7 per tick they stay bounded.
    topology = line_topology([1])
    for load, bounded in ((1.3, False), (0.7, True)):
        params = SimParams(topology, load, horizon_ticks=2000)
        sim = Simulator(params)
        state = sim.reset(seed=0, num_episodes=1)
        queue = []
        for _ in range(params.horizon_ticks):
            queue.append(state.q_len[0, 0])
            sim.step(state, np.zeros((1, 2), dtype=np.int64))
        queue = np.array(queue, dtype=float)
        ticks = np.arange(len(queue))
        slope, intercept = np.polyfit(ticks, queue, 1)
        if bounded:
            assert queue.max() < 60
            assert abs(slope) < 0.01
        else:
            fitted = slope * ticks + intercept
            r2 = 1 - np.sum((queue - fitted) ** 2) / np.sum((queue - queue.mean()) ** 2)
            assert 0.25 < slope < 0.35
            assert r2 > 0.98


@pytest.mark.parametrize("topo_name", ["b4", "geant", "att"])
def test_spa_only_uses_shortest_paths(topo_name):
    topology = TOPOLOGIES[topo_name]
    slots = shortest_path_next_hop(topology)
    dist = hop_distances(topology)
    neighbors = topology.neighbor_table[0]
    for i in range(topology.num_routers):
        for d in range(topology.num_routers):
            if i != d:
                assert dist[neighbors[i, slots[i, d]], d] == dist[i, d] - 1
    params = SimParams(topology, 0.3, horizon_ticks=300)
    state = Simulator(params).run_tables(ShortestPathPolicy().routing_tables(params), seed=2, num_episodes=2).state
    for b in range(2):
        pk = state.pk[b]
        done = pk[:, PK_FATE] == FATE_DELIVERED
        assert done.sum() > 0
        np.testing.assert_array_equal(pk[done, PK_HOPS], dist[pk[done, PK_SRC], pk[done, PK_DST]])


def test_spa_reconvergence_avoids_failed_link_after_delay():
    topology = TOPOLOGIES["b4"]
    failed = topology.link_id("D-E")
    params = SimParams(topology, 0.05, horizon_ticks=400, failures=(LinkFailure(failed, 100),))
    static = Simulator(params).run_tables(ShortestPathPolicy().routing_tables(params), seed=0, num_episodes=4)
    healed = Simulator(params).run_tables(ShortestPathPolicy(20).routing_tables(params), seed=0, num_episodes=4)
    lost_static = static.state.pk[..., PK_END_TICK][static.state.pk[..., PK_FATE] == FATE_LOST]
    lost_healed = healed.state.pk[..., PK_END_TICK][healed.state.pk[..., PK_FATE] == FATE_LOST]
    assert np.sum(lost_static >= 100) > 20  # static SPA keeps losing packets on the failed link
    assert np.all(lost_healed <= 120)  # re-converged SPA loses only during the delay


# --------------------------------------------------------------------------- links and losses
def test_capacity_is_reserved_in_flight_and_released_on_arrival():
    # Capacity 10: a size-6 packet occupies the link for 3 ticks; a second size-6 packet sent
    # meanwhile is lost; one sent after the first arrives goes through.
    topology = line_topology([3], capacity=10)
    params = SimParams(topology, 0.0, horizon_ticks=20)
    traffic = hand_traffic([(0, 0, 1, 6), (1, 0, 1, 6), (3, 0, 1, 6), (4, 1, 0, 4)])
    state = run_hand(params, traffic)
    fate = state.pk[0, :4, PK_FATE]
    assert list(fate) == [FATE_DELIVERED, FATE_LOST, FATE_DELIVERED, FATE_DELIVERED]
    assert list(state.pk[0, :4, PK_END_TICK]) == [3, 1, 6, 7]
    # Capacity is shared by both directions: at tick 4 the link holds 6 (0->1), 4 more fit.
    assert state.router[0, 0, kernel.RT_LOST] == 1
    assert state.link[0, kernel.LK_LOST, 0] == 1


def test_failed_link_loses_packets_sent_and_in_flight():
    topology = line_topology([5], capacity=100)
    params = SimParams(topology, 0.0, horizon_ticks=30, failures=(LinkFailure(0, 3),))
    traffic = hand_traffic([(0, 0, 1, 1), (4, 0, 1, 1), (10, 1, 0, 1)])
    state = run_hand(params, traffic)
    assert list(state.pk[0, :3, PK_FATE]) == [FATE_LOST] * 3
    assert list(state.pk[0, :3, PK_END_TICK]) == [3, 4, 10]  # in flight at failure; then sent into it
    assert list(state.router[0, :, kernel.RT_LOST]) == [2, 1]
    assert state.link[0, kernel.LK_LOST, 0] == 3
    assert state.link[0, kernel.LK_AVAIL, 0] == 0


@pytest.mark.parametrize("algorithm,run", [
    ("spa", "evaluate"),  # run_table_episodes, FIFO queues
    ("random", "evaluate"),  # the same driver, stochastic tables
    ("backpressure", "evaluate"),  # per-destination queues, classic rule
    ("sp-backpressure", "evaluate"),  # per-destination queues, general rule
    ("q-routing", "train"),  # its own compiled loop
    ("pg", "train"),  # its own compiled loop
    ("mamrl", "evaluate"),  # the deep learner's rollouts through the step API
])
def test_every_driver_counts_each_loss_on_its_link_when_buffers_are_unbounded(algorithm, run):
    """Without a buffer limit every loss is on a link (sent without capacity, or in flight at a
    failure), so the per-link counts of every driver add up to the losses."""
    from mamrl.algorithms import make_agent

    topology = TOPOLOGIES["b4"]
    params = SimParams(topology, 0.5, horizon_ticks=120, failures=_failures(topology, "failures"))
    agent = make_agent(algorithm)
    per_episode = getattr(agent, run)(params, 3, 2)
    assert per_episode["lost_per_link"].shape == (2, topology.num_links)
    np.testing.assert_array_equal(per_episode["lost_per_link"].sum(axis=1), per_episode["lost"])
    assert per_episode["lost"].sum() > 0


def test_buffer_limit_drops_tail():
    topology = line_topology([1])
    params = SimParams(topology, 0.0, horizon_ticks=5, buffer_limit=2)
    traffic = hand_traffic([(0, 0, 1, 1)] * 4)
    state = run_hand(params, traffic)
    # Queue holds 2: packets 3 and 4 are dropped on creation; 1 is sent at tick 0, 2 at tick 1.
    assert list(state.pk[0, :4, PK_FATE]) == [FATE_DELIVERED, FATE_DELIVERED, FATE_LOST, FATE_LOST]
    assert state.link[0, kernel.LK_LOST, 0] == 0  # dropped at the router, on no link


# --------------------------------------------------------------------------- determinism
def test_seeds_reproduce_bit_identical_results_and_batches_do_not_matter():
    params = SimParams(TOPOLOGIES["b4"], 0.3, horizon_ticks=200)
    sim = Simulator(params)
    tables = UniformRandomPolicy().routing_tables(params)
    a = sim.run_tables(tables, seed=42, num_episodes=4).state
    b = sim.run_tables(tables, seed=42, num_episodes=4).state
    c = sim.run_tables(tables, seed=43, num_episodes=4).state
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.series, c.series)
    # Episode 2 of seed 42 drawn alone equals episode 2 of the batch (common random numbers).
    alone = sim.run_tables(tables, seed=42, num_episodes=1, first_episode=2).state
    np.testing.assert_array_equal(alone.series[0], a.series[2])
    width = alone.pk.shape[1]
    np.testing.assert_array_equal(alone.pk[0], a.pk[2, :width])


def test_poisson_arrival_rate():
    params = SimParams(TOPOLOGIES["att"], 0.3, horizon_ticks=500)
    traffic = Simulator(params).run_tables(ShortestPathPolicy().routing_tables(params), 0, 8).traffic
    rate = traffic.count.mean() / (500 * 25)
    assert abs(rate - 0.3) < 0.01
    dst, src = traffic.dst[0, : traffic.count[0]], traffic.src[0, : traffic.count[0]]
    assert np.all(dst != src)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"load_per_router": -0.1}, "load"),
        ({"load_per_router": float("nan")}, "load"),
        ({"load_per_router": "0.3"}, "load"),
        ({"horizon_ticks": 0}, "horizon"),
        ({"buffer_limit": 0}, "buffer"),
        ({"failures": (LinkFailure(99, 0),)}, "link"),
        ({"failures": (LinkFailure(0, -1),)}, "tick"),
    ],
)
def test_bad_params_give_one_line_errors(kwargs, needle):
    values = {"topology": TOPOLOGIES["b4"], "load_per_router": 0.3} | kwargs
    with pytest.raises(SimulationError) as err:
        SimParams(**values)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_bad_failure_specs_and_actions():
    topology = TOPOLOGIES["b4"]
    assert LinkFailure.parse(topology, "D-E@7") == LinkFailure(topology.link_id("E-D"), 7)
    for spec in ("A-Z", "A-L", "D-E@soon"):
        with pytest.raises(MamrlError):
            LinkFailure.parse(topology, spec)
    sim = Simulator(SimParams(topology, 0.5, horizon_ticks=3))
    state = sim.reset(0, 1)
    with pytest.raises(SimulationError):
        sim.step(state, np.full((1, 12), 7))
    with pytest.raises(SimulationError):
        sim.reset(0, 0)
