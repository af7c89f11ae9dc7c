"""Deep per-router policies, the consensus estimator and per-router TRPO."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from mamrl.agents import deep_consensus
from mamrl.agents.deep_consensus import DeepConsensus, DeepConsensusConfig, rollout
from mamrl.agents.networks import StackedPolicy, encode_fields, input_dim, matmul_precision, policy_logits
from mamrl.agents.trpo import (
    RouterBatch,
    baseline_features,
    conjugate_gradient,
    fisher_vector_product,
    fit_linear_baseline,
    mean_kl,
    policy_gradient_step,
    surrogate,
    trpo_update,
)
from mamrl.consensus import DynamicConsensus
from mamrl.errors import MamrlError
from mamrl.sim import SimParams
from mamrl.topologies import load_topology

from deep_helpers import small_batch

TOPOLOGIES = {name: load_topology(name) for name in ("b4", "geant", "att")}


# --------------------------------------------------------------------------- consensus (Eq. 4)
@pytest.mark.parametrize("name", ["b4", "geant", "att"])
def test_consensus_conserves_the_sum_and_converges_to_the_mean(name):
    topology = TOPOLOGIES[name]
    estimator = DynamicConsensus.for_topology(topology)
    assert 0 < estimator.gain < 1 / topology.max_degree
    rng = np.random.default_rng(0)
    varying = rng.normal(size=(200, 3, topology.num_routers))
    x = estimator.run(varying)
    np.testing.assert_allclose(x.sum(axis=2), varying.sum(axis=2), atol=1e-9)  # sum x_i = sum r_i, always
    constant = np.broadcast_to(varying[:1], (1500, 3, topology.num_routers))
    x = estimator.run(constant)
    np.testing.assert_allclose(x[-1], np.broadcast_to(constant[0].mean(axis=1, keepdims=True), x[-1].shape), atol=1e-6)
    assert np.abs(x[0] - constant[0]).max() == 0  # no information has travelled yet at t = 0


def test_consensus_reads_only_neighbours():
    topology = TOPOLOGIES["b4"]
    estimator = DynamicConsensus.for_topology(topology)
    neighbors = topology.neighbor_table[0]
    rng = np.random.default_rng(1)
    signal, y = rng.normal(size=(1, 12)), rng.normal(size=(1, 12))
    for i in range(12):
        far = [j for j in range(12) if j != i and j not in neighbors[i]]
        changed = signal.copy()
        changed[0, far] += rng.normal(size=len(far)) * 100
        y1, y2 = y.copy(), y.copy()
        estimator.step(signal, y1)
        estimator.step(changed, y2)
        assert y1[0, i] == y2[0, i]  # router i's estimate ignores non-neighbours
        near = [j for j in neighbors[i] if j >= 0]
        poked = signal.copy()
        poked[0, near[0]] += 1.0
        y3 = y.copy()
        estimator.step(poked, y3)
        assert y3[0, i] != y1[0, i]  # ... and does read its neighbours


def test_centralised_mode_and_bad_settings():
    topology = TOPOLOGIES["geant"]
    signal = np.random.default_rng(2).normal(size=(5, 2, topology.num_routers))
    x = DynamicConsensus.for_topology(topology, mode="centralised").run(signal)
    np.testing.assert_allclose(x, np.broadcast_to(signal.mean(axis=2, keepdims=True), x.shape))
    for kwargs in ({"mode": "gossip"}, {"gain": 1.5}, {"gain": 0.0}):
        with pytest.raises(MamrlError):
            DynamicConsensus.for_topology(topology, **{"gain": None, "mode": "consensus", **kwargs})


# --------------------------------------------------------------------------- networks
def test_stacked_networks_equal_separate_modules():
    topology = TOPOLOGIES["b4"]
    n, k = topology.num_routers, topology.max_degree
    policy = StackedPolicy(n, k, topology.degree, (32, 32, 32), seed=3)
    d_in = input_dim(n, k)
    rng = np.random.default_rng(4)
    raw = (rng.integers(-1, n, (n, 7)), rng.integers(-1, k, (n, 7)), rng.integers(-1, k, (n, 7, 10)))
    raw = (np.where(raw[0] == np.arange(n)[:, None], -1, raw[0]), np.minimum(raw[1], topology.degree[:, None] - 1),
           np.minimum(raw[2], topology.degree[:, None, None] - 1))
    fields = torch.from_numpy(encode_fields(*raw, n, k))
    stacked = policy(fields)
    stacked_loss = torch.nan_to_num(stacked, neginf=0.0).square().sum()
    stacked_loss.backward()
    for i in range(n):
        layers, p = [], policy.param_dict()
        sizes = [d_in, 32, 32, 32, k]
        for j in range(4):
            lin = nn.Linear(sizes[j], sizes[j + 1])
            with torch.no_grad():
                lin.weight.copy_(p[f"w{j}"][i].T)
                lin.bias.copy_(p[f"b{j}"][i])
            layers += [lin, nn.ReLU()] if j < 3 else [lin]
        module = nn.Sequential(*layers)
        one_hot = torch.zeros((7, d_in))
        one_hot.scatter_(1, fields[i], 1.0)
        out = module(one_hot)[:, : topology.degree[i]]
        torch.testing.assert_close(stacked[i, :, : topology.degree[i]], out, rtol=1e-5, atol=1e-6)
        assert torch.isinf(stacked[i, :, topology.degree[i]:]).all()
        out.square().sum().backward()
        torch.testing.assert_close(p["w0"].grad[i], module[0].weight.grad.T, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(p["w3"].grad[i][:, : topology.degree[i]], module[6].weight.grad.T[:, : topology.degree[i]], rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- TRPO pieces
def test_conjugate_gradient_solves_per_router_spd_systems():
    rng = np.random.default_rng(5)
    mats = []
    for _ in range(4):
        a = rng.normal(size=(6, 6))
        mats.append(a @ a.T + 6 * np.eye(6))
    mats = torch.tensor(np.stack(mats))
    b = {"v": torch.tensor(rng.normal(size=(4, 6)))}
    x = conjugate_gradient(lambda v: {"v": (mats @ v["v"][..., None]).squeeze(-1)}, b, iterations=12)
    torch.testing.assert_close(x["v"], torch.linalg.solve(mats, b["v"]), rtol=1e-8, atol=1e-8)


def test_linear_baseline_fits_a_linear_return_exactly():
    n, rows, in_dim, horizon = 2, 300, 9, 50
    rng = np.random.default_rng(6)
    fields = torch.from_numpy(np.stack([rng.integers(0, 4, rows), 4 + rng.integers(0, 5, rows)], axis=-1))[None].repeat(n, 1, 1)
    ticks = torch.from_numpy(rng.integers(0, horizon, (n, rows)))
    features = baseline_features(fields, ticks, in_dim, horizon)
    true_w = torch.from_numpy(rng.normal(size=(n, in_dim + 4)))
    returns = (features @ true_w[..., None]).squeeze(-1)
    w = fit_linear_baseline(features, returns, reg=1e-10)
    torch.testing.assert_close((features @ w[..., None]).squeeze(-1), returns, rtol=1e-6, atol=1e-6)


def test_fisher_vector_product_is_the_kl_hessian():
    params, batch = small_batch(1)
    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    with torch.no_grad():
        old_logp = torch.log_softmax(policy_logits(theta, batch.fields, batch.valid), -1)
    v = {k: torch.randn(p.shape, generator=torch.Generator().manual_seed(7)) for k, p in params.items()}
    kl = mean_kl(theta, batch, old_logp).sum()
    grads = torch.autograd.grad(kl, list(theta.values()), create_graph=True)
    hv = torch.autograd.grad(sum((g * v[k]).sum() for k, g in zip(theta, grads)), list(theta.values()))
    fv = fisher_vector_product(params, batch, damping=0.0)(v)
    for (k, h) in zip(theta, hv):
        torch.testing.assert_close(fv[k], h, rtol=1e-4, atol=1e-6)


def test_trpo_step_respects_the_trust_region_and_improves_every_router():
    params, batch = small_batch(2)
    max_kl = 0.01
    new, stats = trpo_update(params, batch, max_kl=max_kl, cg_iterations=10, cg_damping=1e-3)
    with torch.no_grad():
        old_logp = torch.log_softmax(policy_logits(params, batch.fields, batch.valid), -1)
        old_actions = old_logp.gather(2, batch.actions[..., None]).squeeze(2)
        kl = mean_kl(new, batch, old_logp)
        gain = surrogate(new, batch, old_actions) - surrogate(params, batch, old_actions)
    assert stats.accepted.all()
    assert (kl <= max_kl + 1e-6).all() and (kl > 0).all()
    assert (gain > 0).all()
    torch.testing.assert_close(kl, stats.kl)
    # Each router's step depends only on its own data: scrambling router 2's advantages leaves
    # routers 0 and 1 where they were.
    other = RouterBatch(batch.fields, batch.actions, batch.advantages.clone(), batch.mask, batch.valid)
    other.advantages[2] = -other.advantages[2]
    new2, _ = trpo_update(params, other, max_kl=max_kl, cg_iterations=10, cg_damping=1e-3)
    for key in params:
        torch.testing.assert_close(new2[key][:2], new[key][:2])
        assert not torch.allclose(new2[key][2], new[key][2])
    # Passes of a few rows at a time (router 1's padding left out of the later chunks) take the
    # same step. (In float64 and with a damping that keeps CG's residuals far above its stopping
    # tolerance: this tiny problem's Fisher is nearly singular, and a residual that crosses the
    # tolerance in one summation order and not in the other changes CG's path.)
    params64 = {k: v.double() for k, v in params.items()}
    batch64 = dataclasses.replace(batch, advantages=batch.advantages.double())
    whole, whole_stats = trpo_update(params64, batch64, max_kl=max_kl, cg_iterations=10, cg_damping=0.1)
    chunked, chunked_stats = trpo_update(params64, batch64, max_kl=max_kl, cg_iterations=10, cg_damping=0.1, max_rows=7)
    torch.testing.assert_close(chunked_stats.step_fraction, whole_stats.step_fraction)
    for key in params:
        torch.testing.assert_close(chunked[key], whole[key], rtol=1e-9, atol=1e-12)
        assert not torch.equal(whole[key], params64[key])


def test_bfloat16_updates_take_nearly_the_float32_step_and_keep_the_trust_region():
    """`update_precision="bfloat16"` changes only the arithmetic of the matrix products: logits
    stay float32, the step points where the float32 step points, and the line search still holds
    every router to the exact KL bound (measured in float32 on the accepted parameters)."""
    params, batch = small_batch(4, m=400)
    max_kl = 0.01
    exact, _ = trpo_update(params, batch, max_kl=max_kl, cg_damping=1e-3)
    with matmul_precision("bfloat16"):
        assert policy_logits(params, batch.fields, batch.valid).dtype == torch.float32
        fast, fast_stats = trpo_update(params, batch, max_kl=max_kl, cg_damping=1e-3)
    assert fast_stats.accepted.all()
    with torch.no_grad():
        old_logp = torch.log_softmax(policy_logits(params, batch.fields, batch.valid), -1)
        kl = mean_kl(fast, batch, old_logp)
    assert (kl <= 1.05 * max_kl).all() and (kl > 0.1 * max_kl).all()
    for key in params:
        step_exact, step_fast = (exact[key] - params[key]).flatten(1), (fast[key] - params[key]).flatten(1)
        cosine = torch.nn.functional.cosine_similarity(step_exact, step_fast, dim=1)
        assert (cosine > 0.95).all(), (key, cosine)
    with pytest.raises(ValueError, match="unknown precision"):
        matmul_precision("float16")


def test_rollouts_stay_float32_under_bfloat16_updates(monkeypatch):
    params = SimParams(TOPOLOGIES["b4"], 0.3, horizon_ticks=20)
    agent = DeepConsensus(DeepConsensusConfig(hidden_sizes=(32, 32)))
    agent._ensure(params)
    autocast_seen = []

    def spy(*args):
        autocast_seen.append(torch.is_autocast_enabled("cpu"))
        return policy_logits(*args)

    monkeypatch.setattr(deep_consensus, "policy_logits", spy)
    plain = rollout(agent.policy.param_dict(), agent.policy.valid, params, 3, 2)
    with matmul_precision("bfloat16"):
        assert torch.is_autocast_enabled("cpu")
        under = rollout(agent.policy.param_dict(), agent.policy.valid, params, 3, 2)
    assert len(autocast_seen) == 40 and not any(autocast_seen)
    np.testing.assert_array_equal(plain.actions, under.actions)


def test_policy_gradient_step_is_plain_gradient_ascent():
    params, batch = small_batch(3)
    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    stepped = policy_gradient_step(theta, batch, 0.01)
    logp = torch.log_softmax(policy_logits(theta, batch.fields, batch.valid), -1).gather(2, batch.actions[..., None]).squeeze(2)
    objective = ((logp * batch.advantages * batch.mask).sum(1) / batch.mask.sum(1)).sum()
    grads = torch.autograd.grad(objective, list(theta.values()))
    for (k, v), g in zip(params.items(), grads):
        torch.testing.assert_close(stepped[k], v + 0.01 * g)


# --------------------------------------------------------------------------- the learner
def test_rollout_decisions_match_the_simulator_and_training_is_deterministic():
    params = SimParams(TOPOLOGIES["b4"], 0.3, horizon_ticks=60)
    curves = []
    for _ in range(2):
        agent = DeepConsensus(DeepConsensusConfig(hidden_sizes=(32, 32), episodes_per_iteration=4, seed=5))
        curve = agent.train(params, seed=9, num_episodes=8)
        curves.append((curve["mean_sojourn_time"], agent.policy.params["w0"].detach().clone(), [e.reward for e in agent.log]))
    np.testing.assert_array_equal(curves[0][0], curves[1][0])
    torch.testing.assert_close(curves[0][1], curves[1][1], rtol=0, atol=0)
    assert curves[0][2] == curves[1][2]
    data = rollout(agent.policy.param_dict(), agent.policy.valid, params, 0, 3)
    assert data.decisions == int(data.acted.sum()) > 0
    assert np.all(data.actions[data.acted] < params.topology.degree[np.nonzero(data.acted)[2]])


def test_checkpoint_round_trip(tmp_path):
    params = SimParams(TOPOLOGIES["geant"], 0.2, horizon_ticks=40)
    agent = DeepConsensus(DeepConsensusConfig(hidden_sizes=(16,), episodes_per_iteration=2))
    agent.train(params, seed=1, num_episodes=2)
    path = agent.save(tmp_path / "deep.pt")
    meta, arrays = DeepConsensus.read_checkpoint(path)
    clone = DeepConsensus(DeepConsensusConfig(hidden_sizes=(16,)))
    clone.load_state_arrays(arrays)
    a = agent.evaluate(params, seed=4, num_episodes=2)
    b = clone.evaluate(params, seed=4, num_episodes=2)
    np.testing.assert_array_equal(a["delivered"], b["delivered"])
    with pytest.raises(MamrlError):
        DeepConsensus(DeepConsensusConfig(hidden_sizes=(8,))).load_state_arrays(arrays)


@pytest.mark.slow
def test_deep_policies_beat_spa_where_the_short_path_saturates():
    """Two sources share the short path's middle router (0.7 + 0.7 packets/tick into a router
    that forwards one); the deep per-router policies learn to use the detours. Judged on the
    sojourn time of every packet and the delivered fraction as well as the paper's metric."""
    from test_agents import two_path

    from mamrl.agents.shortest_path import ShortestPathPolicy
    from mamrl.sim.evaluate import evaluate_tables

    topology, weights = two_path()
    params = SimParams(topology, 0.7 * 2 / 8, horizon_ticks=200, demand_weights=weights)
    agent = DeepConsensus(DeepConsensusConfig(hidden_sizes=(32, 32), episodes_per_iteration=8, reward="packet"))
    agent.train(params, seed=0, num_episodes=200)
    deep = agent.evaluate(params, seed=50, num_episodes=10)
    spa, _ = evaluate_tables(params, ShortestPathPolicy().routing_tables(params), 50, 10)
    assert deep["mean_delivery_time"].mean() < spa["mean_delivery_time"].mean()
    assert deep["mean_sojourn_time"].mean() < 0.5 * spa["mean_sojourn_time"].mean()
    assert deep["delivered_fraction"].mean() > spa["delivered_fraction"].mean() + 0.1
