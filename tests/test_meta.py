"""Meta-learning: the task distribution, MAML-TRPO's gradient through the inner step, failure
detection and the deployment controllers (Algorithms 1–2)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mamrl.agents.deep_consensus import rollout
from mamrl.agents.networks import policy_logits, slot_mask
from mamrl.agents.trpo import RouterBatch, dot, kl_and_gain, policy_gradient, policy_gradient_step, surrogate
from mamrl.errors import MamrlError
from mamrl.meta.adaptation import AdaptationConfig, detect_failed_links, make_deep_controllers, random_params
from mamrl.meta.maml import MamlConfig, MetaLearner, adapt, meta_gradient
from mamrl.meta.tasks import FailureTask, TaskDistribution, parse_task
from mamrl.sim import SimParams
from mamrl.sim.params import LinkFailure
from mamrl.topologies import load_topology

from deep_helpers import small_batch

B4 = load_topology("b4")


def _double(params, batch: RouterBatch):
    return ({k: v.double() for k, v in params.items()},
            dataclasses.replace(batch, advantages=batch.advantages.double()))


def _meta_problem(alpha: float, seed: int = 1):
    """Tiny per-router policies, an inner batch and an outer batch (float64)."""
    params, pre = _double(*small_batch(seed))
    _, post = _double(*small_batch(seed + 10))
    path = adapt(params, [pre], alpha, max_rows=1 << 20)
    logp = []
    outer = policy_gradient(path[-1], post, log_probs_out=logp)
    old_actions = logp[0].gather(2, post.actions[..., None]).squeeze(2)

    def objective(theta):
        """Sum over routers of the post-adaptation surrogate, old policy fixed at theta'(params)."""
        return surrogate(adapt(theta, [pre], alpha, max_rows=1 << 20)[-1], post, old_actions).sum()

    return params, pre, post, path, outer, objective


# --------------------------------------------------------------------------- MAML gradient
def test_maml_gradient_through_the_inner_step_matches_finite_differences():
    alpha = 0.5  # large, so that the second-order term matters
    params, pre, _, path, outer, objective = _meta_problem(alpha)
    second = meta_gradient(path, [pre], outer, alpha, first_order=False, max_rows=1 << 20)
    first = meta_gradient(path, [pre], outer, alpha, first_order=True, max_rows=1 << 20)
    generator = torch.Generator().manual_seed(3)
    for _ in range(3):
        v = {k: torch.randn(p.shape, generator=generator, dtype=torch.float64) for k, p in params.items()}
        # Small: the inner step is a gradient of a ReLU network, which jumps where a unit's
        # pre-activation crosses 0; larger steps straddle such kinks (float64 keeps this exact).
        eps = 1e-6
        plus = objective({k: params[k] + eps * v[k] for k in params})
        minus = objective({k: params[k] - eps * v[k] for k in params})
        finite = float((plus - minus) / (2 * eps))
        analytic = float(dot(second, v).sum())
        assert analytic == pytest.approx(finite, rel=1e-5, abs=1e-8)
        # The first-order variant misses the Hessian term by far more than that tolerance.
        assert abs(float(dot(first, v).sum()) - finite) > 1e-3 * abs(finite)


def test_meta_gradient_equals_autograd_through_the_inner_step_and_chunks_do_not_matter():
    alpha = 0.3
    params, pre, post, path, outer, _ = _meta_problem(alpha, seed=4)
    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    adapted = policy_gradient_step(theta, pre, alpha, create_graph=True)
    logp = torch.log_softmax(policy_logits(adapted, post.fields, post.valid), -1).gather(2, post.actions[..., None]).squeeze(2)
    objective = ((logp * post.advantages * post.mask).sum(1) / post.mask.sum(1)).sum()
    expected = torch.autograd.grad(objective, list(theta.values()))
    whole = meta_gradient(path, [pre], outer, alpha, first_order=False, max_rows=1 << 20)
    chunked = meta_gradient(adapt(params, [pre], alpha, max_rows=9), [pre],
                            policy_gradient(path[-1], post, max_rows=9), alpha, first_order=False, max_rows=9)
    for key, g in zip(theta, expected):
        torch.testing.assert_close(whole[key], g, rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(chunked[key], g, rtol=1e-7, atol=1e-9)


def test_chunks_leave_out_routers_without_decisions_and_change_no_result():
    params, pre, post, path, _, _ = _meta_problem(0.3, seed=5)
    m = pre.mask.shape[1]  # small_batch: router 1 decides in the first half of the columns only
    chunks = pre.chunks(9)  # 3 columns each
    assert [c.column for c in chunks] == list(range(0, m, 3))
    for c in chunks:
        expected = None if c.column < m // 2 else [0, 2]  # None: all routers
        assert (None if c.rows is None else c.rows.tolist()) == expected
    whole_logp, chunked_logp = [], []
    whole = policy_gradient(params, pre, max_rows=1 << 20, log_probs_out=whole_logp)
    chunked = policy_gradient(params, pre, max_rows=9, log_probs_out=chunked_logp)
    for key in whole:
        torch.testing.assert_close(chunked[key], whole[key], rtol=1e-10, atol=1e-12)
    real = pre.mask
    torch.testing.assert_close(chunked_logp[0][real], whole_logp[0][real])
    left_out = chunked_logp[0][1, m // 2 + 1:]  # router 1's padding beyond the chunk it ends in
    assert torch.isfinite(left_out[:, pre.valid[1]]).all()  # a finite stand-in, not nan

    # The line search measures router subsets, whose chunks are cut on another grid than the
    # pass that gave the old log-probabilities: the measure must not depend on either.
    old = []
    policy_gradient(path[-1], post, max_rows=9, log_probs_out=old)
    old_actions = old[0].gather(2, post.actions[..., None]).squeeze(2)
    generator = torch.Generator().manual_seed(3)
    candidate = {k: v + 0.05 * torch.randn(v.shape, generator=generator, dtype=v.dtype) for k, v in path[-1].items()}
    for routers in (torch.tensor([0, 1, 2]), torch.tensor([1, 2]), torch.tensor([1])):
        sub = {k: v[routers] for k, v in candidate.items()}
        kl, gain = kl_and_gain(sub, post.routers(routers), old[0][routers], old_actions[routers], max_rows=1 << 20)
        kl_chunked, gain_chunked = kl_and_gain(sub, post.routers(routers), old[0][routers], old_actions[routers], max_rows=5)
        assert torch.isfinite(kl).all() and (kl > 0).all() and (gain != 0).all()
        torch.testing.assert_close(kl_chunked, kl, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gain_chunked, gain, rtol=1e-10, atol=1e-12)


def test_first_and_second_order_agree_when_the_inner_step_is_zero():
    params, pre, _, path, outer, _ = _meta_problem(alpha=0.0)
    second = meta_gradient(path, [pre], outer, 0.0, first_order=False, max_rows=1 << 20)
    first = meta_gradient(path, [pre], outer, 0.0, first_order=True, max_rows=1 << 20)
    for key in params:
        torch.testing.assert_close(second[key], first[key])
        torch.testing.assert_close(path[-1][key], params[key])


def test_adapted_parameters_equal_a_manual_inner_step_per_router():
    params, batch = _double(*small_batch(5))
    alpha = 0.01
    adapted = adapt(params, [batch], alpha, max_rows=1 << 20)[-1]
    for i in range(batch.mask.shape[0]):
        mine = {k: v[i : i + 1].clone().requires_grad_(True) for k, v in params.items()}
        rows = batch.mask[i]
        logits = policy_logits(mine, batch.fields[i : i + 1, rows], batch.valid[i : i + 1])
        logp = torch.log_softmax(logits, -1)[0].gather(1, batch.actions[i, rows][:, None]).squeeze(1)
        grads = torch.autograd.grad((logp * batch.advantages[i, rows]).mean(), list(mine.values()))
        for (key, value), g in zip(mine.items(), grads):
            torch.testing.assert_close(adapted[key][i], (value + alpha * g)[0].detach())


# --------------------------------------------------------------------------- meta-learner
def _tiny_maml(**changes) -> MamlConfig:
    values = dict(hidden_sizes=(8,), episodes_per_task=2, tasks_per_iteration=2, nominal_probability=0.0)
    values.update(changes)
    return MamlConfig(**values)


def test_meta_iteration_is_deterministic_and_moves_the_initialisation():
    params = SimParams(B4, 0.3, 40)
    runs = []
    for _ in range(2):
        learner = MetaLearner(_tiny_maml())
        log, metrics = learner.meta_iteration(params, seed=2)
        runs.append(learner.initial_params())
        assert log.episodes == learner.episodes_trained == 8
        assert len(log.tasks) == 2 and all(t != "M0" for t in log.tasks)
        assert metrics["generated"].shape == (4,)  # post-adaptation episodes: 2 tasks x 2
        assert 0 < log.accepted_share <= 1 and log.kl <= 0.01 + 1e-6
        assert set(log.seconds) == {"simulation", "policy_forward", "batches", "inner_step", "meta_gradient", "trpo"}
    for key in runs[0]:
        torch.testing.assert_close(runs[0][key], runs[1][key], rtol=0, atol=0)
    fresh = MetaLearner(_tiny_maml())
    fresh.learner._ensure(params, 2)
    assert any(not torch.equal(fresh.initial_params()[k], runs[0][k]) for k in runs[0])


def test_maml_config_rejects_bad_values():
    with pytest.raises(MamrlError, match="inner_steps"):
        MamlConfig(inner_steps=0)
    with pytest.raises(MamrlError, match="task_weighting"):
        MamlConfig(task_weighting="sometimes")
    with pytest.raises(MamrlError, match="no meta-initialisation"):
        MetaLearner().initial_params()


# --------------------------------------------------------------------------- task distribution
def test_task_sampler_follows_the_failure_probabilities_and_skips_held_out_links():
    probs = np.linspace(1, 5, B4.num_links)
    links = tuple(dataclasses.replace(link, failure_prob=float(p) / 100) for link, p in zip(B4.links, probs))
    topology = dataclasses.replace(B4, links=links)
    held = (topology.link_id("D-E"),)
    dist = TaskDistribution(topology, "probability", nominal_probability=0.25, held_out=held)
    expected = dist.link_probabilities()
    assert expected[held[0]] == 0 and expected.sum() == pytest.approx(1)
    draws = dist.sample(np.random.default_rng(0), 40_000)
    nominal = sum(1 for t in draws if not t.links)
    assert nominal / len(draws) == pytest.approx(0.25, abs=0.01)
    counts = np.bincount([t.links[0] for t in draws if t.links], minlength=topology.num_links)
    failures = counts.sum()
    sigma = np.sqrt(failures * expected * (1 - expected))
    assert counts[held[0]] == 0
    assert np.all(np.abs(counts - failures * expected) <= 4 * sigma + 1)
    # Heavier links are drawn more: the frequencies follow the probabilities, not uniform.
    assert counts[-1] > 3 * counts[0]
    uniform = TaskDistribution(topology, "uniform", nominal_probability=0.0).link_probabilities()
    np.testing.assert_allclose(uniform, 1 / topology.num_links)


def test_tasks_parse_name_and_become_simulation_parameters():
    task = parse_task(B4, "D-E@100")
    assert task == FailureTask((B4.link_id("D-E"),), 100)
    assert task.name(B4) == "D-E@100" and parse_task(B4, "M0").name(B4) == "M0"
    params = task.sim_params(SimParams(B4, 0.3, 200))
    assert params.failures == (LinkFailure(B4.link_id("D-E"), 100),)
    with pytest.raises(MamrlError, match="every link is held out"):
        TaskDistribution(B4, held_out=tuple(range(B4.num_links)))
    with pytest.raises(MamrlError, match="do not exist"):
        TaskDistribution(B4, held_out=(99,))


# --------------------------------------------------------------------------- deployment
def _random_rollout(failures: tuple[LinkFailure, ...], seed: int = 0):
    params = SimParams(B4, 0.3, 150, failures)
    policy = random_params(B4, (16,), seed)
    valid = slot_mask(B4.degree, B4.max_degree)
    return rollout(policy, valid, params, seed, 3)


def test_failure_detection_fires_on_a_failed_link_and_not_on_an_intact_network():
    link_of_slot = B4.neighbor_table[1]
    for spec in ("D-E", "I-K@60"):
        failure = LinkFailure.parse(B4, spec)
        data = _random_rollout((failure,))
        flagged = detect_failed_links(data.acted, data.actions, -data.loss_signal, link_of_slot, 5)
        assert np.flatnonzero(flagged).tolist() == [failure.link]
    for seed in range(3):
        data = _random_rollout((), seed)
        flagged = detect_failed_links(data.acted, data.actions, -data.loss_signal, link_of_slot, 5)
        assert not flagged.any()


def test_deployment_controllers_reset_as_specified():
    config = _tiny_maml(reward="packet")
    meta_init = random_params(B4, (8,), 123)
    adaptation = AdaptationConfig(episodes_per_step=2)
    controllers = {c.name: c for c in make_deep_controllers(meta_init, B4, config, adaptation, seed=0)}
    intact = SimParams(B4, 0.3, 80)
    failed = SimParams(B4, 0.3, 80, (LinkFailure.parse(B4, "D-E"),))
    for c in controllers.values():
        out = c.train(intact, 0, 2, first_episode=0)
        assert not out["reset"].any()
    # one adaptation step moved everyone away from their start
    assert not torch.equal(controllers["mamrl-init"].params["w0"], meta_init["w0"])
    outs = {name: c.train(failed, 0, 2, first_episode=2) for name, c in controllers.items()}
    assert outs["mamrl-init"]["reset"].tolist() == [False, True] and outs["random-init"]["reset"].tolist() == [False, True]
    assert not outs["continued"]["reset"].any()
    for key in meta_init:
        torch.testing.assert_close(controllers["mamrl-init"].params[key], meta_init[key], rtol=0, atol=0)
    assert not torch.equal(controllers["continued"].params["w0"], meta_init["w0"])
    # the failure is known now: no second reset
    assert not controllers["mamrl-init"].train(failed, 0, 2, first_episode=4)["reset"].any()
    with pytest.raises(MamrlError, match="update"):
        AdaptationConfig(update="sgd")


@pytest.mark.slow
def test_meta_benchmark_reports_every_phase(tmp_path):
    from mamrl.benchmarks.meta import PHASES, bench_meta, markdown_section, write_section

    result = bench_meta("b4", 0.3, iterations=1, horizon=40, episodes_per_task=1, penalised=False)
    assert set(result.phases) == set(PHASES) and result.decisions > 0 and result.peak_rss_mb > 0
    assert sum(result.phases.values()) <= result.median_s * 1.05
    assert result.steal is None or 0 <= result.steal <= 1
    path = tmp_path / "BENCH.md"
    path.write_text("# Benchmarks\n")
    write_section(path, markdown_section([result], "mamrl bench-meta --quick", {"cpu": "test"}))
    write_section(path, markdown_section([result], "mamrl bench-meta --quick", {"cpu": "test"}))
    text = path.read_text()
    assert text.count("## MAML-TRPO meta-iteration") == 1 and "| b4 (12) | second order |" in text


@pytest.mark.slow
def test_meta_benchmark_from_a_trained_checkpoint(tmp_path):
    from mamrl.benchmarks.meta import bench_meta, row_cells
    from mamrl.training import TrainConfig, train_run

    tiny = {"hidden_sizes": [8], "episodes_per_task": 1, "tasks_per_iteration": 2}
    train_run(TrainConfig("b4", 0.3, 40, (), "maml", tiny, 8, 0, 0, 0), tmp_path / "meta")  # two iterations of 4 episodes
    result = bench_meta("b4", 0.3, iterations=1, horizon=40, checkpoint=tmp_path / "meta" / "checkpoint.pt")
    assert result.trained_iterations == 2 and result.decisions > 0
    assert row_cells(result)[1] == "second order, inner-KL penalty, after 2 meta-iterations"
    train_run(TrainConfig("b4", 0.3, 40, (), "q-routing", {}, 2, 0, 0, 0), tmp_path / "q")
    with pytest.raises(MamrlError, match="is a q-routing checkpoint, not a maml meta-initialisation"):
        bench_meta("b4", 0.3, iterations=1, horizon=40, checkpoint=tmp_path / "q" / "checkpoint.pt")


def test_inner_kl_penalty_gradient_through_the_inner_step_matches_finite_differences():
    from mamrl.meta.maml import inner_kl, inner_kl_and_gradient
    from mamrl.agents.trpo import axpy

    alpha = 0.5
    params, pre, _, _, outer, objective = _meta_problem(alpha, seed=6)
    theta_log_probs = []
    path = adapt(params, [pre], alpha, max_rows=1 << 20, log_probs_out=theta_log_probs)
    n = pre.mask.shape[0]
    eta = torch.linspace(0.5, 3.0, n, dtype=torch.float64)

    def penalised(theta):
        moved = inner_kl(theta, adapt(theta, [pre], alpha, max_rows=1 << 20)[-1], pre, max_rows=1 << 20)
        return objective(theta) - (eta * moved).sum()

    # Chunked on purpose, and differently in the two passes: the adapted log-probabilities
    # must line up with the Hessian pass's rows whatever the chunks.
    moved, d_adapted, adapted_log_probs = inner_kl_and_gradient(path[-1], pre, theta_log_probs[0], max_rows=7)
    torch.testing.assert_close(moved, inner_kl(params, path[-1], pre, max_rows=1 << 20))
    assert float(moved.sum()) > 1e-4  # the penalty is not trivially 0
    through_inner = axpy(-eta, d_adapted, outer)
    analytic_grad = meta_gradient(path, [pre], through_inner, alpha, first_order=False, max_rows=5,
                                  penalty=eta, adapted_log_probs=adapted_log_probs)
    first_order = meta_gradient(path, [pre], through_inner, alpha, first_order=True, max_rows=5,
                                penalty=eta, adapted_log_probs=adapted_log_probs)
    generator = torch.Generator().manual_seed(8)
    eps = 1e-6

    def along(f, v):
        return float((f({k: params[k] + eps * v[k] for k in params}) - f({k: params[k] - eps * v[k] for k in params}))
                     / (2 * eps))

    def direct_penalty(theta):  # the adapted policy held fixed
        return -(eta * inner_kl(theta, path[-1], pre, max_rows=1 << 20)).sum()

    for _ in range(3):
        v = {k: torch.randn(p.shape, generator=generator, dtype=torch.float64) for k, p in params.items()}
        finite = along(penalised, v)
        assert float(dot(analytic_grad, v).sum()) == pytest.approx(finite, rel=1e-5, abs=1e-8)
        # Dropping the penalty's path through the inner step (d_adapted) gets it wrong.
        partial = meta_gradient(path, [pre], outer, alpha, first_order=False, max_rows=1 << 20,
                                penalty=eta, adapted_log_probs=adapted_log_probs)
        assert abs(float(dot(partial, v).sum()) - finite) > 1e-4 * abs(finite)
        # First order keeps the penalty's direct term: its gradient with theta' held fixed.
        direct = float(dot(first_order, v).sum() - dot(through_inner, v).sum())
        assert direct == pytest.approx(along(direct_penalty, v), rel=1e-5, abs=1e-8)
        assert abs(direct) > 1e-6


def test_inner_kl_penalty_follows_promps_rule():
    from mamrl.meta.maml import adapt_penalty

    eta = torch.tensor([1.0, 1.0, 1.0, 1.0])
    moved = torch.tensor([0.01, 0.04, 0.07, 0.2])  # target 0.05: below /1.5, within, within, above x1.5
    assert adapt_penalty(eta, moved, 0.05).tolist() == [0.5, 1.0, 1.0, 2.0]
    assert adapt_penalty(torch.tensor([1e-3, 1e3]), torch.tensor([0.0, 1.0]), 0.05).tolist() == pytest.approx([1e-3, 1e3])  # bounded


def test_a_large_inner_kl_penalty_keeps_the_inner_step_from_growing():
    from mamrl.meta.maml import inner_kl

    params = SimParams(B4, 0.3, 40)
    seen = {}

    def run(**changes):
        # A huge inner step makes the meta-gradient push hard towards a sensitive initialisation.
        learner = MetaLearner(_tiny_maml(inner_step_size=2.0, max_kl=0.5, **changes))
        original = learner._log_entry

        def keep(params_, data, stats, *rest):
            seen.setdefault("data", data)
            return original(params_, data, stats, *rest)

        learner._log_entry = keep
        learner.learner._ensure(params, 2)
        theta = learner.initial_params()
        learner.meta_iteration(params, seed=2)
        return theta, learner.initial_params(), learner

    theta, held, learner = run(inner_kl_target=1e-6, inner_kl_penalty=400.0)
    _, free, _ = run(inner_kl_target=0.0)
    data = seen["data"]

    def moved(p):
        return sum(inner_kl(p, adapt(p, d.inner_batches, 2.0, 8192)[-1], d.inner_batches[0], 8192) for d in data) / len(data)

    before = moved(theta)
    assert bool((moved(held) <= before * (1 + 1e-3) + 1e-6).all())
    assert bool((moved(free) > before * (1 + 1e-3) + 1e-6).any())
    # Every router's inner step was above the target: its coefficient doubled.
    assert torch.equal(learner.inner_kl_penalty, torch.full_like(learner.inner_kl_penalty, 800.0))
    assert learner.log[-1].inner_kl_penalty == pytest.approx(400.0)


def test_line_search_starts_where_the_last_accepted_step_predicts_half_the_bound():
    from mamrl.agents.trpo import TrpoStats, trust_region_step
    from mamrl.meta.maml import corrected_start

    # Router 0 took half its step at exactly the bound: its true KL is 4x the model's, so it next
    # starts at sqrt(0.5 / 4). Router 1's full step had a tenth of the modelled KL: capped at 1.
    # Router 2 took no step and keeps its start.
    stats = TrpoStats(kl=torch.tensor([0.01, 0.001, 0.0]), improvement=torch.ones(3),
                      accepted=torch.tensor([True, True, False]), step_fraction=torch.tensor([0.5, 1.0, 0.0]))
    start = corrected_start(torch.tensor([1.0, 1.0, 0.7]), stats, max_kl=0.01)
    assert start.tolist() == pytest.approx([np.sqrt(0.5 / 4), 1.0, 0.7])

    # The line search's first candidate is the start's fraction of the full step; it backtracks from there.
    theta = {"w": torch.zeros(2, 3)}
    gradient = {"w": torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])}
    tried = []

    def evaluate(candidate, routers):
        tried.append(candidate["w"].norm(dim=1).tolist())
        kl = candidate["w"].norm(dim=1) ** 2 / 2  # identity Fisher: the quadratic model is exact
        return kl, torch.ones(len(routers))

    new, stats = trust_region_step(theta, gradient, lambda v: v, evaluate, max_kl=0.01, cg_iterations=5,
                                   backtrack_ratio=0.5, max_backtracks=5, start=torch.tensor([0.25, 1.0]))
    full = np.sqrt(2 * 0.01)  # |step| whose KL is the bound
    assert tried[0] == pytest.approx([0.25 * full, full], rel=1e-5)
    assert stats.step_fraction.tolist() == [0.25, 1.0] and bool(stats.accepted.all())
