"""Every packet counts: on a toy network where one policy drops every packet and several policies
lose none, every headline metric and every reward ranks the dropping policy strictly last; and
the new metrics on hand-checked cases.

The toy is a ring of four routers (latency 1) with the two chords 0-2 and 1-3 of capacity 0: a
packet sent on a chord is lost. "drop-all" sends every packet on its router's chord; the
loss-free policies route on the ring (clockwise, counter-clockwise, shortest, or a 50/50 mix).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from mamrl.agents.deep_consensus import _packet_returns
from mamrl.agents.policy_gradient import run_policy_gradient_episodes
from mamrl.agents.q_routing import QRouting, QRoutingConfig, run_q_routing_episodes
from mamrl.envs import RoutingParallelEnv
from mamrl.errors import MamrlError
from mamrl.experiments.failures import common_reward
from mamrl.experiments.saturation import GROWING, classify
from mamrl.sim import kernel
from mamrl.sim.metrics import episode_metrics, estimate, metrics_for
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import RoutingTables, Simulator, in_flight_by_sender, undelivered_by_router
from mamrl.sim.traffic import Traffic, draw_policy_uniforms, draw_traffic
from mamrl.topologies.core import Link, PacketSizeTable, Topology

N = 4
H = 120
LOAD = 0.3
EPISODES = 4
SEED = 7

NextHops = Callable[[int, int], dict[int, float]]
LOSS_FREE: dict[str, NextHops] = {
    "clockwise": lambda i, d: {(i + 1) % N: 1.0},
    "counter-clockwise": lambda i, d: {(i - 1) % N: 1.0},
    "shortest": lambda i, d: {d if (d - i) % N in (1, N - 1) else (i + 1) % N: 1.0},
    "ring-mix": lambda i, d: {(i + 1) % N: 0.5, (i - 1) % N: 0.5},
}
DROP_ALL: NextHops = lambda i, d: {(i + 2) % N: 1.0}  # the chord: capacity 0
POLICIES: dict[str, NextHops] = {**LOSS_FREE, "drop-all": DROP_ALL}


def toy_topology() -> Topology:
    ring = [Link(i, (i + 1) % N, 10**6, 1) for i in range(N)]
    chords = [Link(0, 2, 0, 1), Link(1, 3, 0, 1)]
    sizes = PacketSizeTable(np.ones((N, N, 1)), "unit packets")
    return Topology("toy-ring", tuple(f"r{i}" for i in range(N)), tuple(ring + chords), packet_sizes=sizes)


def toy_params() -> SimParams:
    return SimParams(toy_topology(), LOAD, horizon_ticks=H)


def probabilities(topology: Topology, next_hops: NextHops) -> np.ndarray:
    """Next-hop probabilities [N, N, K] by action slot from a rule router -> {next router: p}."""
    neighbors, _ = topology.neighbor_table
    probs = np.zeros((N, N, topology.max_degree))
    for i in range(N):
        for d in range(N):
            if d == i:
                probs[i, d, 0] = 1.0  # never used: a packet at its destination is delivered
                continue
            for j, p in next_hops(i, d).items():
                probs[i, d, int(np.flatnonzero(neighbors[i] == j)[0])] = p
    return probs


def choose(cumulative: np.ndarray, heads_dst: np.ndarray, uniforms: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Slots [E, N]: the table path's rule (first slot whose cumulative probability exceeds u)."""
    e, n = heads_dst.shape
    out = np.zeros((e, n), dtype=np.int64)
    for b in range(e):
        for i in range(n):
            d = heads_dst[b, i]
            if d >= 0:
                out[b, i] = min(int(np.sum(uniforms[b, i] >= cumulative[i, d, : degree[i]])), degree[i] - 1)
    return out


def run_stepwise(params: SimParams, probs: np.ndarray) -> tuple[kernel.State, np.ndarray, np.ndarray, np.ndarray]:
    """Episodes through the step API, as the deep learner's rollout drives them: (final state,
    queue heads [T, E, N] before each step, the loss-honest backlog signal [T, E, N], and the
    signal before the change, -(queued + in flight))."""
    sim = Simulator(params)
    state = sim.reset(SEED, EPISODES)
    cumulative = RoutingTables.from_probabilities(probs).cumulative[0]
    uniforms = draw_policy_uniforms(SEED, EPISODES, H, N)
    heads = np.empty((H, EPISODES, N), dtype=np.int64)
    backlog = np.empty((H, EPISODES, N))
    old_backlog = np.empty((H, EPISODES, N))
    for t in range(H):
        obs = sim.observe(state)
        heads[t] = state.q_head
        backlog[t] = -undelivered_by_router(state)
        old_backlog[t] = -(state.q_len + in_flight_by_sender(state))
        sim.step(state, choose(cumulative, obs.head_destination, uniforms[:, t], params.topology.degree))
    return state, heads, backlog, old_backlog


def pg_mean_return(params: SimParams, probs: np.ndarray, loss_penalty: float, loss_honest: bool) -> float:
    """Mean return per decision that PG's compiled loop credits, with the policy frozen.

    Step size 0 keeps theta (= log probs) fixed; with a baseline rate r ≪ 1 each baseline is
    r · (sum of the returns credited to it) up to O(r · updates), so their sum / r is the total."""
    net = kernel.make_net(params)
    state = kernel.make_state(net, draw_traffic(params, SEED, EPISODES, 0))
    uniforms = draw_policy_uniforms(SEED, EPISODES, H, N, 0)
    with np.errstate(divide="ignore"):
        theta = np.where(probs > 0, np.log(probs), -1e9)
    baseline, scale, rate = np.zeros((N, N)), np.ones(1), 2.0**-30
    scratch = (np.empty((H * N, 5), dtype=np.int64), np.empty(state.pk.shape[1], dtype=np.int64),
               np.empty(params.topology.max_degree))
    run_policy_gradient_episodes(net, state, theta, baseline, scale, uniforms, 0.0, loss_penalty, loss_honest, rate,
                                 True, scratch)
    decisions = int(state.link[:, kernel.LK_SENT, :].sum() + state.episode[:, kernel.EP_LOST].sum())
    return float(baseline.sum() / rate / decisions)


def env_return(params: SimParams, probs: np.ndarray, **env_args) -> tuple[float, list[tuple[float, int]]]:
    """Sum over steps and routers of the env's reward under the policy (default reward unless
    given), and per step (sum of the routers' rewards, generated - delivered)."""
    env = RoutingParallelEnv(params, **env_args)
    cumulative = RoutingTables.from_probabilities(probs).cumulative[0]
    rng = np.random.default_rng(0)
    total, per_step = 0.0, []
    obs, _ = env.reset(seed=SEED)
    while env.agents:
        heads = env.sim_state.q_head[0]
        dst = np.where(heads >= 0, env.sim_state.pk[0, np.maximum(heads, 0), kernel.PK_DST], -1)
        slots = choose(cumulative, dst[None], rng.random((1, N)), params.topology.degree)[0]
        _, rewards, *_ = env.step({a: int(slots[i]) for i, a in enumerate(env.possible_agents)})
        step_sum = sum(rewards.values())
        totals = env.episode_totals()
        per_step.append((step_sum, totals["generated"] - totals["delivered"]))
        total += step_sum
    return total, per_step


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict]:
    params = toy_params()
    sim = Simulator(params)
    out = {}
    for name, rule in POLICIES.items():
        probs = probabilities(params.topology, rule)
        metrics = metrics_for(sim.run_tables(RoutingTables.from_probabilities(probs), SEED, EPISODES).state, params)
        state, heads, backlog, _ = run_stepwise(params, probs)
        returns = _packet_returns(state, heads, H, 100.0, True)[heads >= 0]
        out[name] = {
            "metrics": metrics,
            "packet_return": float(returns.mean()),
            "backlog": float(backlog.sum()),
            "pg": pg_mean_return(params, probs, 100.0, True),
            "pg_no_penalty": pg_mean_return(params, probs, 0.0, True),
            "pg_old_rule": pg_mean_return(params, probs, 0.0, False),
            "env": env_return(params, probs),
            "stepwise_lost": int(state.episode[:, kernel.EP_LOST].sum()),
        }
    return out


def test_toy_policies_are_what_they_claim(outcomes):
    assert np.all(outcomes["drop-all"]["metrics"]["loss_fraction"] == 1.0)
    assert outcomes["drop-all"]["stepwise_lost"] > 0
    for name in LOSS_FREE:
        m = outcomes[name]["metrics"]
        assert np.all(m["lost"] == 0) and np.all(m["delivered_fraction"] > 0.5), name
        assert outcomes[name]["stepwise_lost"] == 0, name


def _strictly_last(outcomes, score: Callable[[dict], float]) -> None:
    """The drop-all policy scores strictly below every loss-free one (higher = better)."""
    dropped = score(outcomes["drop-all"])
    for name in LOSS_FREE:
        assert score(outcomes[name]) > dropped, f"{name}: {score(outcomes[name])} vs drop-all {dropped}"


def test_sojourn_time_ranks_dropping_last_in_every_episode(outcomes):
    for b in range(EPISODES):
        _strictly_last(outcomes, lambda o: -o["metrics"]["mean_sojourn_time"][b])


def test_common_reward_ranks_dropping_last(outcomes):
    for penalty in (0.0, 50.0):
        for b in range(EPISODES):
            _strictly_last(outcomes, lambda o: common_reward(o["metrics"], penalty)[b])
    # Default extra penalty 0: the reward is minus the sojourn time of every packet.
    m = outcomes["shortest"]["metrics"]
    np.testing.assert_array_equal(common_reward(m), -m["mean_sojourn_time"])


def test_backlog_growth_ranks_dropping_last(outcomes):
    _strictly_last(outcomes, lambda o: -o["metrics"]["backlog_growth"].mean())
    growth = estimate(outcomes["drop-all"]["metrics"]["backlog_growth"])
    assert classify(growth, LOAD, N, H) == GROWING
    for name in LOSS_FREE:
        assert classify(estimate(outcomes[name]["metrics"]["backlog_growth"]), LOAD, N, H) != GROWING, name


def test_policy_gradient_returns_rank_dropping_last(outcomes):
    _strictly_last(outcomes, lambda o: o["pg"])
    _strictly_last(outcomes, lambda o: o["pg_no_penalty"])  # the horizon alone already ranks it last
    # The rule before charged a loss from when it happened: with no extra penalty, dropping at once
    # scored 0, better than any delivery. (Shows the test above can fail.)
    assert outcomes["drop-all"]["pg_old_rule"] == 0.0
    assert all(outcomes[name]["pg_old_rule"] < 0.0 for name in LOSS_FREE)


def test_packet_reward_returns_rank_dropping_last(outcomes):
    _strictly_last(outcomes, lambda o: o["packet_return"])


def test_backlog_reward_summed_over_routers_and_ticks_ranks_dropping_last(outcomes):
    _strictly_last(outcomes, lambda o: o["backlog"])


def test_env_default_reward_ranks_dropping_last_and_sums_to_undelivered(outcomes):
    _strictly_last(outcomes, lambda o: o["env"][0])
    for name in POLICIES:
        for step_sum, undelivered in outcomes[name]["env"][1]:
            assert step_sum == -undelivered


def test_env_paper_reward_is_kept_and_prefers_dropping():
    # The paper's reward, still available by name, scores dropping everything better than
    # delivering on this toy: the reason it is no longer the default.
    params = toy_params()
    dropped, _ = env_return(params, probabilities(params.topology, DROP_ALL), reward="delay_and_loss")
    delivered, _ = env_return(params, probabilities(params.topology, LOSS_FREE["shortest"]), reward="delay_and_loss")
    assert delivered < dropped


def test_deep_rewards_before_the_change_preferred_dropping():
    # Shows the tests above can fail: under the rules before, dropping everything scored better.
    params = toy_params()
    drop_state, drop_heads, _, drop_old = run_stepwise(params, probabilities(params.topology, DROP_ALL))
    keep_state, keep_heads, _, keep_old = run_stepwise(params, probabilities(params.topology, LOSS_FREE["shortest"]))
    assert drop_old.sum() > keep_old.sum()  # nothing stays queued or in flight when it is dropped
    assert _packet_returns(drop_state, drop_heads, H, 0.0, False)[drop_heads >= 0].mean() == 0.0
    assert _packet_returns(keep_state, keep_heads, H, 0.0, False)[keep_heads >= 0].mean() < 0.0


# ------------------------------------------------------------------------------ Q-routing
def _hand_traffic(packets: list[tuple[int, int, int]]) -> Traffic:
    """One episode of unit packets from (created_tick, src, dst), in creation order."""
    arr = np.array(packets, dtype=np.int64).reshape(-1, 3)
    return Traffic(arr[None, :, 0].astype(np.int32), arr[None, :, 1].astype(np.int32), arr[None, :, 2].astype(np.int32),
                   np.ones((1, len(packets)), dtype=np.int64), np.array([len(packets)]), 0, 0)


def test_q_routing_loss_target_is_above_every_alternative():
    # Router 0's slots: 0 -> r1, 1 -> r2 (the chord), 2 -> r3. The chord looks best (Q = 0).
    params = toy_params()
    net = kernel.make_net(params)
    state = kernel.make_state(net, _hand_traffic([(0, 0, 2)]))
    q = np.zeros((N, N, params.topology.max_degree))
    q[0, 2] = [10.0, 0.0, 20.0]
    run_q_routing_episodes(net, state, q, np.ones((1, 1, 1)), 0.7, 0.0, 3.0, True, True)
    assert state.episode[0, kernel.EP_LOST] == 1
    assert q[0, 2, 1] == pytest.approx(0.7 * (20.0 + 3.0))  # towards max(10, 0, 20) + 3


@pytest.mark.parametrize("loss_honest,margin", [(True, 3.0), (False, 1000.0)])
def test_repeated_losses_put_the_hop_above_every_alternative(loss_honest, margin):
    # Ten packets r0 -> r2, one per tick; the ring hops' estimates are 5000 ticks (as after heavy
    # congestion), the chord's 0. Honest: each loss pulls the chord towards 5000 + 3, so after a few
    # losses it is worse than both ring hops and the rest are delivered. The fixed target of the
    # rule before (1000) stays below 5000: every packet is dropped.
    params = toy_params()
    net = kernel.make_net(params)
    state = kernel.make_state(net, _hand_traffic([(t, 0, 2) for t in range(10)]))
    q = np.zeros((N, N, params.topology.max_degree))
    q[0, 2] = [5000.0, 0.0, 5000.0]
    q[1, 2] = [5000.0, 0.0, 5000.0]  # r1 forwards straight to r2 (slot 1)
    run_q_routing_episodes(net, state, q, np.ones((1, 1, 1)), 0.7, 0.0, margin, loss_honest, True)
    lost = int(state.episode[0, kernel.EP_LOST])
    if loss_honest:
        chord, losses = 0.0, 0
        while chord <= 5000.0:  # the greedy choice stays on the chord until it is above 5000
            chord += 0.7 * (5000.0 + margin - chord)
            losses += 1
        assert lost == losses == 7
        assert q[0, 2, 1] == pytest.approx(chord)
        assert q[0, 2, 1] > max(q[0, 2, 0], q[0, 2, 2])
    else:
        assert lost == 10 and q[0, 2, 1] < 1000.0


def test_q_routing_learns_to_stop_dropping_even_when_congested_estimates_are_high():
    # Estimates of the ring hops start at 5000 ticks (as after heavy congestion), the chords at 0.
    # Honest: losses pull a chord above the worst ring hop, the greedy policy then delivers.
    # The old fixed target (1000) stays below 5000: the chords keep looking best for ever.
    params = toy_params()
    chord = probabilities(params.topology, DROP_ALL).argmax(axis=2)
    results = {}
    for honest, penalty in ((True, 3.0), (False, 1000.0)):
        agent = QRouting(QRoutingConfig(loss_penalty_ticks=penalty, loss_honest=honest))
        q = np.full((N, N, params.topology.max_degree), 5000.0)
        np.put_along_axis(q, chord[:, :, None], 0.0, axis=2)
        agent.q_table = q
        agent.train(params, 0, 3)
        results[honest] = agent.evaluate(params, 1, 2)
        if honest:
            # Every chord ends above the best ring hop (the greedy choice). Other ring hops' estimates
            # may have risen since the chord's last loss: that chord is then retried, once.
            rows, cols = np.nonzero(~np.eye(N, dtype=bool))
            chord_q = agent.q_table[rows, cols, chord[rows, cols]]
            others = np.where(np.arange(params.topology.max_degree)[None, :] == chord[rows, cols][:, None], np.inf,
                              agent.q_table[rows, cols])
            assert np.all(chord_q > others.min(axis=1))
    assert np.all(results[True]["loss_fraction"] == 0.0)
    assert np.all(results[False]["loss_fraction"] == 1.0)


def test_q_routing_refuses_a_zero_margin():
    with pytest.raises(MamrlError, match="loss_penalty_ticks"):
        QRouting(QRoutingConfig(loss_penalty_ticks=0.0))


# ------------------------------------------------------------------------------ new metrics, by hand
def line_params(horizon: int = 10) -> SimParams:
    """r0 -(2 ticks)- r1 -(3 ticks)- r2 -(capacity 0)- r3; unit packets, capacity 4."""
    links = (Link(0, 1, 4, 2), Link(1, 2, 4, 3), Link(2, 3, 0, 1))
    sizes = PacketSizeTable(np.ones((4, 4, 1)), "unit packets")
    return SimParams(Topology("line", ("r0", "r1", "r2", "r3"), links, packet_sizes=sizes), 0.1, horizon_ticks=horizon)


def run_line(params: SimParams, packets: list[tuple[int, int, int]]) -> kernel.State:
    from mamrl.agents.shortest_path import ShortestPathPolicy

    sim = Simulator(params)
    tables = ShortestPathPolicy().routing_tables(params)
    state = kernel.make_state(sim.net, _hand_traffic(packets))
    kernel.run_table_episodes(sim.net, state, tables.cumulative, tables.start_ticks, np.zeros((1, 1, 1)), False)
    return state


LINE_PACKETS = [
    (0, 0, 2),  # sent at 0, at r1 at 2, sent, at r2 at 5: delivery time 5, shortest latency 5
    (0, 0, 1),  # waits a tick behind the first, at r1 at 3: delivery time 3, shortest latency 2
    (1, 2, 0),  # at r1 at 4, at r0 at 6: delivery time 5, shortest latency 5
    (2, 2, 3),  # sent on the capacity-0 link at tick 2: lost, age 10 - 2 = 8 at the horizon
    (8, 0, 2),  # sent at 8, still on the link at the horizon: age 10 - 8 = 2
]


def test_line_metrics_by_hand():
    params = line_params()
    m = metrics_for(run_line(params, LINE_PACKETS), params)
    assert (m["generated"][0], m["delivered"][0], m["lost"][0], m["in_network_at_end"][0]) == (5, 3, 1, 1)
    assert m["mean_delivery_time"][0] == pytest.approx(13 / 3)
    assert m["mean_sojourn_time"][0] == pytest.approx((5 + 3 + 5 + 8 + 2) / 5)  # every packet
    assert m["mean_sojourn_time_not_lost"][0] == pytest.approx((5 + 3 + 5 + 2) / 4)
    assert m["p99_delivery_time"][0] == pytest.approx(np.percentile([5, 3, 5], 99))
    assert m["mean_stretch"][0] == pytest.approx((5 / 5 + 3 / 2 + 5 / 5) / 3)
    # Queued at the end of a tick: only the second packet, at the end of tick 0 (N = 4 routers).
    assert m["mean_queue_length"][0] == pytest.approx(1 / (10 * 4))
    # Reserved capacity summed over ticks: link r0-r1 8, link r1-r2 6 (capacity 4, 10 ticks).
    np.testing.assert_allclose(m["link_utilisation"][0, :2], [8 / 40, 6 / 40])
    assert m["max_link_utilisation"][0] == pytest.approx(8 / 40)
    assert m["mean_link_utilisation"][0] == pytest.approx(7 / 40)
    # Not delivered at the end of ticks 5..9: 2, 1, 1, 2, 2 -> slope 1/10.
    assert m["backlog_growth"][0] == pytest.approx(0.1)


def test_stretch_is_nan_without_the_latency_matrix_and_positional_call_still_works():
    params = line_params()
    state = run_line(params, LINE_PACKETS)
    m = episode_metrics(state, params.horizon_ticks, params.topology.capacities)
    assert math.isnan(m["mean_stretch"][0])
    assert m["mean_sojourn_time"][0] == pytest.approx(23 / 5)


def test_no_queueing_gives_stretch_one_and_no_queue():
    params = line_params(horizon=30)
    m = metrics_for(run_line(params, [(0, 0, 2), (5, 2, 0), (9, 1, 0)]), params)
    assert m["mean_stretch"][0] == 1.0
    assert m["mean_queue_length"][0] == 0.0
    assert m["mean_delivery_time"][0] == pytest.approx((5 + 5 + 2) / 3)
    assert m["mean_sojourn_time"][0] == m["mean_delivery_time"][0]


def test_backlog_growth_counts_lost_packets():
    # One packet lost per tick in the second half: nothing stays queued or in flight, yet the
    # packets not delivered grow by one per tick.
    params = line_params(horizon=20)
    m = metrics_for(run_line(params, [(t, 2, 3) for t in range(20)]), params)
    assert m["loss_fraction"][0] == 1.0
    assert m["backlog_growth"][0] == pytest.approx(1.0)
    assert m["mean_sojourn_time"][0] == pytest.approx(np.mean([20 - t for t in range(20)]))


def test_shortest_latency_matrix_leaves_out_capacity_zero_links_and_is_cached():
    topo = line_params().topology
    latency = topo.shortest_latency_ticks
    assert latency[0, 2] == 5 and latency[2, 0] == 5 and latency[0, 1] == 2
    assert math.isinf(latency[2, 3]) and latency[3, 3] == 0
    assert topo.shortest_latency_ticks is latency


# ------------------------------------------------------------------------------ files from before
NEW_METRICS = ("p99_delivery_time", "mean_stretch", "mean_sojourn_time_not_lost", "mean_queue_length", "max_link_utilisation")


def _old_header(columns: tuple[str, ...]) -> str:
    """The header mamrl wrote before the loss-honest metrics: today's without the new metrics."""
    return ",".join(c for c in columns if not any(c == m or c.startswith(m + "_") for m in NEW_METRICS)) + "\n"


def test_old_sweep_results_are_refused_with_one_line(tmp_path):
    from typer.testing import CliRunner

    from cli_helpers import assert_one_line_error
    from mamrl.cli import app
    from mamrl.experiments.config import build_sweep_config
    from mamrl.experiments.sweep import COLUMNS, ResultsFile, read_results, sidecar_path

    results = tmp_path / "old.csv"
    results.write_text(_old_header(COLUMNS) + "x\n")
    assert "mean_sojourn_time_mean" in results.read_text() and "p99" not in results.read_text()
    with pytest.raises(MamrlError, match="before the loss-honest metrics"):
        read_results(results)
    sidecar_path(results).write_text("{}")
    config = build_sweep_config(preset="quick", overrides={"results": str(results)})
    with pytest.raises(MamrlError, match="before the loss-honest metrics.*new --results file"):
        ResultsFile(results, config).open()
    plotted = CliRunner().invoke(app, ["plot", str(results), "--output", str(tmp_path / "plots")])
    assert_one_line_error(plotted)
    assert "leave lost packets out" in plotted.stderr
    assert not (tmp_path / "plots").exists()


def test_old_failure_curves_are_refused_with_one_line(tmp_path):
    from mamrl.experiments.failures import COLUMNS, CurvesFile, build_failure_config, read_curves
    from mamrl.plotting.failures import write_failure_report

    out = tmp_path / "e2"
    out.mkdir()
    (out / "curves.csv").write_text(_old_header(COLUMNS))
    with pytest.raises(MamrlError, match="before the loss-honest metrics"):
        read_curves(out / "curves.csv")
    with pytest.raises(MamrlError, match="before the loss-honest metrics"):
        write_failure_report(out)
    config = build_failure_config(preset="quick", overrides={"failures": ["D-E"], "output": str(out)})
    with pytest.raises(MamrlError, match="before the loss-honest metrics.*new output directory"):
        CurvesFile(config.output, config).open()


def test_training_curve_rows_from_before_keep_their_figure_under_its_own_name():
    from mamrl.training import legacy_rows

    old = {"episodes": 50, "mean_delivery_time": 12.0, "mean_sojourn_time": 13.0, "delivered_fraction": 0.9}
    new = {"episodes": 100, "mean_delivery_time": 11.0, "mean_sojourn_time": 40.0, "mean_sojourn_time_not_lost": 12.5}
    migrated = legacy_rows([old, new])
    assert migrated[0]["mean_sojourn_time"] is None and migrated[0]["mean_sojourn_time_not_lost"] == 13.0
    assert migrated[1] == new
