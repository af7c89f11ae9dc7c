"""Routing algorithms: Q-routing and tabular policy gradient learn what they should."""

from __future__ import annotations

import numpy as np
import pytest

from mamrl.algorithms import make_policy
from mamrl.agents.base import RoutingAgent
from mamrl.agents.policy_gradient import PolicyGradient, _credit_packet
from mamrl.agents.q_routing import QRouting
from mamrl.agents.shortest_path import ShortestPathPolicy
from mamrl.errors import MamrlError
from mamrl.sim import LinkFailure, SimParams
from mamrl.sim.evaluate import evaluate_tables
from mamrl.sim.kernel import LK_SENT, make_net
from mamrl.sim.simulator import Simulator
from mamrl.topologies import load_topology
from mamrl.topologies.core import Link, Topology


def ring(n: int = 6) -> Topology:
    return Topology("ring", tuple(f"r{i}" for i in range(n)), tuple(Link(i, (i + 1) % n, 10**9, 2) for i in range(n)))


def two_path() -> tuple[Topology, np.ndarray]:
    """S1 and S2 send to D. Their shortest paths share router M (2 hops); each also has a private
    3-hop detour. At 0.7 packets/tick per source, M (one packet per tick) saturates."""
    names = ["S1", "S2", "M", "D", "A", "A2", "B", "B2"]
    edges = [("S1", "M"), ("S2", "M"), ("M", "D"), ("S1", "A"), ("A", "A2"), ("A2", "D"), ("S2", "B"), ("B", "B2"), ("B2", "D")]
    topo = Topology("two-path", names, tuple(Link(names.index(a), names.index(b), 10**9, 1) for a, b in edges))
    weights = np.zeros((8, 8))
    weights[0, 3] = weights[1, 3] = 1.0
    return topo, weights


# --------------------------------------------------------------------------- Q-routing
def test_q_routing_learns_to_avoid_a_dead_link():
    topology = ring()
    params = SimParams(topology, 0.1, horizon_ticks=300, failures=(LinkFailure(0, 0),))
    agent = QRouting()
    curve = agent.train(params, seed=0, num_episodes=30)
    assert curve["lost"][0] > 5  # the shortest paths over r0-r1 start by losing packets
    assert curve["lost"][-10:].max() == 0  # ... and stop within 20 episodes
    evaluation = agent.evaluate(params, seed=100, num_episodes=5)
    assert evaluation["lost"].sum() == 0
    assert evaluation["delivered_fraction"].mean() > 0.95


def test_q_routing_converges_to_shortest_path_times_at_low_load():
    params = SimParams(load_topology("b4"), 0.02, horizon_ticks=500)
    agent = QRouting()
    agent.train(params, seed=0, num_episodes=300)
    q_metrics = agent.evaluate(params, seed=7, num_episodes=20)
    spa_metrics, _ = evaluate_tables(params, ShortestPathPolicy().routing_tables(params), 7, 20)
    q_time, spa_time = q_metrics["mean_delivery_time"].mean(), spa_metrics["mean_delivery_time"].mean()
    assert abs(q_time - spa_time) / spa_time < 0.05
    assert q_metrics["delivered_fraction"].mean() > 0.97


def test_q_routing_beats_spa_past_spa_saturation():
    params = SimParams(load_topology("b4"), 0.3, horizon_ticks=500)
    agent = QRouting()
    agent.train(params, seed=0, num_episodes=200)
    q_metrics = agent.evaluate(params, seed=7, num_episodes=10)
    spa_metrics, _ = evaluate_tables(params, ShortestPathPolicy().routing_tables(params), 7, 10)
    assert q_metrics["mean_sojourn_time"].mean() < spa_metrics["mean_sojourn_time"].mean()
    assert q_metrics["delivered_fraction"].mean() > spa_metrics["delivered_fraction"].mean()


# --------------------------------------------------------------------------- policy gradient
def test_pg_probabilities_are_normalised():
    topology = load_topology("geant")
    params = SimParams(topology, 0.2, horizon_ticks=200)
    agent = PolicyGradient()
    agent.train(params, seed=0, num_episodes=20)
    probs = agent.probabilities(params)
    valid = np.arange(topology.max_degree)[None, :] < topology.degree[:, None]
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-12)
    assert np.all(probs[~np.broadcast_to(valid[:, None, :], probs.shape)] == 0)
    assert np.all(probs >= 0)


def test_pg_update_is_the_policy_gradient():
    """One credited decision moves theta_i[d] by step * advantage / scale * grad log pi(a | d);
    the gradient is checked against finite differences of log softmax."""
    topology = ring(4)
    net = make_net(SimParams(topology, 0.1, horizon_ticks=10))
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(4, 4, topology.max_degree))
    before = theta.copy()
    baseline, scale = np.zeros((4, 4)), np.ones(1)
    # Router 1 sent a packet for destination 3 through slot 1 at tick 2; it was delivered at tick 9.
    decisions = np.array([[1, 3, 1, 2, -1]], dtype=np.int64)
    last = np.array([0], dtype=np.int64)
    step, rate = 0.05, 0.01
    _credit_packet(net.degree, theta, baseline, scale, decisions, last, 0, 9, False, 100.0, step, rate, np.empty(4))
    advantage = -7.0
    new_scale = 1.0 + rate * (advantage**2 - 1.0)
    gain = step * advantage / np.sqrt(new_scale + 1e-8)

    def log_pi(row):
        z = row - row.max()
        return z[1] - np.log(np.exp(z).sum())

    row = before[1, 3, :2]
    eps = 1e-6
    numeric = np.array([(log_pi(row + eps * np.eye(2)[k]) - log_pi(row - eps * np.eye(2)[k])) / (2 * eps) for k in range(2)])
    np.testing.assert_allclose(theta[1, 3, :2] - row, gain * numeric, rtol=1e-6)
    theta[1, 3, :2] = row
    np.testing.assert_array_equal(theta, before)  # nothing else moved
    assert baseline[1, 3] == pytest.approx(rate * advantage)
    assert last[0] == -1


def test_pg_learns_to_split_traffic_where_the_short_path_saturates():
    topology, weights = two_path()
    # 0.7 packets/tick from each source: through M alone that is 1.4 per tick for a router that
    # forwards one.
    params = SimParams(topology, 0.7 * 2 / 8, horizon_ticks=300, demand_weights=weights)
    agent = PolicyGradient()
    agent.train(params, seed=0, num_episodes=400)
    pg = agent.evaluate(params, seed=50, num_episodes=10)
    spa, _ = evaluate_tables(params, ShortestPathPolicy().routing_tables(params), 50, 10)
    assert spa["delivered_fraction"].mean() < 0.8  # M saturates under shortest paths
    assert pg["delivered_fraction"].mean() > 0.95
    assert pg["mean_sojourn_time"].mean() < 0.25 * spa["mean_sojourn_time"].mean()
    # Traffic for D is split between the short path (M-D) and the detours (A2-D, B2-D).
    result = Simulator(params).run_tables(
        __import__("mamrl.sim.simulator", fromlist=["RoutingTables"]).RoutingTables.from_probabilities(agent.probabilities(params)), 50, 5
    )
    sent = result.state.link[:, LK_SENT, :].sum(axis=0)
    via_m = sent[topology.link_id("M-D")]
    via_detours = sent[topology.link_id("A2-D")] + sent[topology.link_id("B2-D")]
    share = via_m / (via_m + via_detours)
    assert 0.2 < share < 0.8


def test_pg_matches_shortest_paths_at_low_load_on_b4():
    params = SimParams(load_topology("b4"), 0.05, horizon_ticks=500)
    agent = PolicyGradient()
    agent.train(params, seed=0, num_episodes=200)
    pg = agent.evaluate(params, seed=7, num_episodes=10)
    spa, _ = evaluate_tables(params, ShortestPathPolicy().routing_tables(params), 7, 10)
    assert pg["mean_sojourn_time"].mean() < 1.1 * spa["mean_sojourn_time"].mean()
    assert pg["delivered_fraction"].mean() > 0.97


# --------------------------------------------------------------------------- persistence, interface
@pytest.mark.parametrize("factory", [QRouting, PolicyGradient])
def test_save_and_load_round_trip(tmp_path, factory):
    params = SimParams(load_topology("b4"), 0.2, horizon_ticks=100)
    agent = factory()
    agent.train(params, seed=0, num_episodes=5)
    path = agent.save(tmp_path / "agent.pt")
    meta, arrays = RoutingAgent.read_checkpoint(path)
    assert meta["name"] == agent.name and meta["config"] == agent.config()
    clone = factory()
    clone.load_state_arrays(arrays)
    a = agent.evaluate(params, seed=3, num_episodes=3)
    b = clone.evaluate(params, seed=3, num_episodes=3)
    for key in ("mean_delivery_time", "delivered", "lost"):
        np.testing.assert_array_equal(a[key], b[key])
    assert clone.episodes_trained == agent.episodes_trained == 5


def test_corrupt_or_foreign_checkpoints_give_one_line_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    for path in (bad, tmp_path / "missing.npz"):
        with pytest.raises(MamrlError) as err:
            RoutingAgent.read_checkpoint(path)
        assert "\n" not in str(err.value)
    foreign = tmp_path / "foreign.pt"
    import torch

    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(MamrlError):
        RoutingAgent.read_checkpoint(foreign)
    with pytest.raises(MamrlError):
        QRouting().load_state_arrays({"weights": np.zeros(3)})


def test_training_is_deterministic_and_continues_with_new_episodes():
    params = SimParams(load_topology("b4"), 0.3, horizon_ticks=200)
    runs = []
    for _ in range(2):
        agent = PolicyGradient()
        first = agent.train(params, seed=4, num_episodes=20)
        second = agent.train(params, seed=4, num_episodes=20)
        runs.append((first, second, agent.theta.copy()))
    np.testing.assert_array_equal(runs[0][0]["mean_sojourn_time"], runs[1][0]["mean_sojourn_time"])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    # The second call trains on episodes 20..39, not the same traffic again.
    assert not np.array_equal(runs[0][0]["generated"], runs[0][1]["generated"])


@pytest.mark.parametrize("factory", [QRouting, PolicyGradient])
def test_first_episode_names_the_training_episodes(factory):
    """`train(..., first_episode=k)` plays episodes k.. of the seed and the agent continues after them."""
    params = SimParams(load_topology("b4"), 0.2, horizon_ticks=60)
    straight = factory().train(params, seed=2, num_episodes=7)
    agent = factory()
    jumped = agent.train(params, seed=2, num_episodes=3, first_episode=4)
    np.testing.assert_array_equal(jumped["generated"], straight["generated"][4:])  # traffic depends on (seed, episode)
    assert agent.episodes_trained == 7
    for bad in (-1, True, 1.5):
        with pytest.raises(MamrlError, match="first_episode"):
            agent.train(params, seed=2, num_episodes=1, first_episode=bad)
    assert agent.episodes_trained == 7


def test_unknown_policy_name():
    with pytest.raises(MamrlError):
        make_policy("ospf")
