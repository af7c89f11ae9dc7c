"""MAMRL meta-training (paper Algorithm 1): MAML (Finn et al. 2017) with TRPO as the
meta-optimiser, for every router's policy at once, in plain PyTorch.

One meta-iteration, reading like the algorithm:

    sample a batch of tasks M_k ~ eta(M)                       (failure scenarios, `meta.tasks`)
    for each task:
        D   <- K episodes with the current parameters theta     (every router samples its policy)
        theta'_i = theta_i + alpha * grad_i J_i(theta; D)        (inner vanilla PG step per router,
                                                                  on its own decisions and reward)
        D'  <- K episodes with the adapted parameters theta'
    meta-update: TRPO on sum_k J(theta'_k(theta); D'_k), differentiating through the inner step

Per router everything is separable: router i's inner step moves only theta_i using only its own
decisions, so the Jacobian d theta'/d theta is block diagonal and

    grad_theta J(theta') = (I + alpha H) grad_theta' J(theta')      (second order)
                         ~= grad_theta' J(theta')                   (first order, `first_order`)

with H the Hessian of the inner objective on D, applied as a Hessian-vector product (double
backward) chunk by chunk; with several inner steps the chain is applied step by step backwards.
This is exactly what autograd through the inner step gives (tested against it and against finite
differences) but never holds the whole inner-step graph in memory.

The trust region: TRPO's Fisher-vector products use the Fisher of the adapted policies on D'
(mean over tasks), i.e. the Jacobian of the inner step is taken as the identity in the
curvature only (an O(alpha) approximation, exact at alpha = 0); the line search then measures
the *true* post-adaptation KL and surrogate gain of every candidate by redoing the inner step
from it, so the constraint actually enforced is the exact one. Each router accepts or rejects
its own step on its own data (`trpo.trust_region_step`).

The inner step's size is held near `inner_kl_target` by ProMP's adaptive penalty: router i
maximises J_i(theta') - eta_i KL(pi_theta || pi_theta') (the KL on its inner data, differentiated
through the inner step like the surrogate), and eta_i halves or doubles after each iteration as
the KL falls below or rises above the target.

The tasks of an iteration are independent given theta: `run_task` does one task's rollouts,
inner steps and meta-gradient from a `TaskJob`, so a process pool or Ray (`maml_task_executor`)
can run them elsewhere; only the TRPO step, which needs every task's data, stays here.

Defaults: 3 tasks per iteration, K = 15 episodes, one inner step of alpha = 0.01, max KL 0.01,
CG 10 — the paper (alpha) and the paper authors' configuration (the rest). The reward defaults
to `packet`: trained on the paper's reward the learner stops delivering (RESULTS.md §2); set
`reward = "paper"` for the faithful one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from mamrl.agents.base import Progress, RoutingAgent, training_start
from mamrl.agents.deep_consensus import REWARDS, DeepConsensus, DeepConsensusConfig, Rollout, finite_mean, rollout
from mamrl.agents.networks import matmul_precision
from mamrl.agents.trpo import (
    Params,
    RouterBatch,
    TrpoStats,
    axpy,
    chunked_gradient,
    fisher_vector_product,
    hessian_vector_product,
    kl_and_gain,
    log_probs,
    mean_kl,
    mean_kl_of,
    policy_gradient,
    trust_region_step,
    uniform_log_probs,
)
from mamrl.errors import MamrlError
from mamrl.executors import check_backend, make_backend_executor, single_threaded
from mamrl.meta.tasks import WEIGHTINGS, FailureTask, TaskDistribution
from mamrl.validate import Choice, Flag, Items, Number, Text, integer, setting
from mamrl.sim.params import SimParams, require_fifo
from mamrl.sim.simulator import Simulator

if TYPE_CHECKING:
    from mamrl.executors import CellExecutor


@dataclass
class MamlConfig(DeepConsensusConfig):
    """MAML-TRPO meta-training; the policy fields are those of the deep learner
    (`DeepConsensusConfig`), the rest are the meta-learning ones."""

    config_name: ClassVar[str] = "maml"

    reward: str = setting("packet", Choice(REWARDS))
    """Reward of the inner and outer objectives (see `DeepConsensusConfig.reward`); `packet` by
    default because the paper's reward teaches the policies not to deliver (RESULTS.md §2)."""
    tasks_per_iteration: int = setting(3, integer(1))
    """Tasks sampled per meta-iteration (the paper authors' meta-batch size)."""
    episodes_per_task: int = setting(15, integer(1))
    """K: episodes sampled per task before and after each inner step (paper authors: 15 + 15)."""
    inner_steps: int = setting(1, integer(1))
    """Inner policy-gradient steps per task (each on K fresh episodes of the adapted policy)."""
    inner_step_size: float = setting(0.01, Number(at_least=0))
    """alpha of the inner step (paper §4.1: 0.01)."""
    first_order: bool = setting(False, Flag())
    """Drop the inner step's second derivative (first-order MAML; cheaper)."""
    task_weighting: str = setting("probability", Choice(WEIGHTINGS))
    """eta(M): failed link drawn by failure probability (`probability`) or `uniform`."""
    nominal_probability: float = setting(0.2, Number(at_least=0, at_most=1))
    """Share of sampled tasks that are the intact network M_0."""
    fail_tick: int = setting(0, integer(0))
    """Tick at which a task's link fails in each of its episodes (0 = from the start)."""
    held_out: tuple[str, ...] = setting((), Items(Text(), distinct=True))
    """Links (`A-B`) never failed in meta-training, kept for generalisation tests."""
    inner_kl_target: float = setting(0.05, Number(at_least=0))
    """Target size of the inner step, the mean KL(pi_theta || pi_theta') per router on its inner
    data. Router i's meta-objective is penalised by eta_i x that KL, with eta_i adapted after
    every iteration to hold the KL near the target (halved below target/1.5, doubled above
    1.5 x target): ProMP's inner-step KL penalty (Rothfuss et al. 2019). Without it the
    meta-initialisation drifts to where one alpha-step rewrites the policy (KL > 1 nat for five
    b4 routers after 42 iterations; RESULTS.md §3). 0 = no penalty."""
    inner_kl_penalty: float = setting(0.01, Number(above=0))
    """Initial eta of every router (ProMP's default)."""
    corrected_step_start: bool = setting(True, Flag())
    """Start router i's line search at the fraction of its natural-gradient step that its last
    accepted step predicts to be within max_kl, instead of at the full step. The full step is
    sized by a Fisher that ignores the inner step's Jacobian; on b4 its true post-adaptation KL
    is 3-50x the bound, so the full step was rejected in every iteration we logged, a wasted
    line-search evaluation (a seventh of an iteration). With c_i the ratio of router i's true KL to
    the quadratic model's (f^2 max_kl) at its last accepted fraction f, the next search starts at
    min(1, sqrt(0.5 / c_i)), aiming at half the bound, and backtracks from there as before: the
    constraint checked is the same exact one. False = TRPO's full-step start (the paper
    authors')."""
    chunk_rows: int = setting(8192, integer(1))
    """Rows (router x decision) per chunk of gradient and Hessian-vector computations: bounds
    the memory of one meta-iteration independently of the batch size (and small chunks run
    faster, staying in cache)."""

    @property
    def episodes_per_meta_iteration(self) -> int:
        return self.tasks_per_iteration * (self.inner_steps + 1) * self.episodes_per_task


# --------------------------------------------------------------------------- the inner step
def adapt(theta: Params, batches: list[RouterBatch], step_size: float, max_rows: int,
          log_probs_out: list[torch.Tensor] | None = None) -> list[Params]:
    """theta_0 = theta, theta_{s+1} = theta_s + alpha grad J(theta_s; batches[s]); returns every
    theta_s (detached), the last being the adapted parameters. With `log_probs_out`, appends
    log pi_{theta_s} over slots on batches[s] for every step (computed anyway)."""
    path = [{k: v.detach() for k, v in theta.items()}]
    for batch in batches:
        grad = policy_gradient(path[-1], batch, max_rows=max_rows, log_probs_out=log_probs_out)
        path.append(axpy(torch.full((batch.mask.shape[0],), step_size), grad, path[-1]))
    return path


def meta_gradient(path: list[Params], inner_batches: list[RouterBatch], outer_gradient: Params,
                  step_size: float, first_order: bool, max_rows: int, penalty: torch.Tensor | None = None,
                  adapted_log_probs: torch.Tensor | None = None) -> Params:
    """Pull the gradient at the adapted parameters back to theta through the inner steps:
    u <- (I + alpha H_s) u for s = last..first (H_s the inner objective's Hessian at theta_s).

    With `penalty` (eta, [N]), also add the gradient of -eta_i KL(pi_theta || pi_theta') on the
    first inner batch with respect to its first argument, the adapted policy held fixed at
    `adapted_log_probs` (its log-probabilities over slots on that batch): the part of the inner-KL
    penalty's gradient that does not pass through the inner step (that part is in
    `outer_gradient`, see `inner_kl_and_gradient`). It comes from the first step's Hessian pass,
    whose forward pass it shares."""
    u = {k: v.clone() for k, v in outer_gradient.items()}
    extra = None
    if penalty is not None:
        def extra(theta_log_probs: torch.Tensor, chunk: RouterBatch) -> torch.Tensor:
            eta = penalty if chunk.rows is None else penalty[chunk.rows]
            return -eta * mean_kl_of(chunk.part(adapted_log_probs), chunk, theta_log_probs)
    if first_order or step_size == 0:
        if extra is None:
            return u
        direct = hessian_vector_product(path[0], inner_batches[0], u, max_rows=max_rows, scale=0.0, extra=extra)
        return {k: u[k] + direct[k] for k in u}
    for s, (theta_s, batch) in reversed(list(enumerate(zip(path[:-1], inner_batches)))):
        hv = hessian_vector_product(theta_s, batch, u, max_rows=max_rows, scale=step_size,
                                    extra=extra if s == 0 else None)
        u = {k: u[k] + hv[k] for k in u}
    return u


def inner_kl(theta: Params, adapted: Params, batch: RouterBatch, max_rows: int,
             theta_log_probs: torch.Tensor | None = None) -> torch.Tensor:
    """[N] mean KL(pi_theta || pi_adapted) over each router's decisions in `batch`: how far the
    inner step moved the policy. `theta_log_probs`: log pi_theta over slots on `batch` if known
    (`adapt` returns it), saving a forward pass."""
    with torch.no_grad():
        total = torch.zeros(batch.mask.shape[0], dtype=adapted[next(iter(adapted))].dtype)
        for chunk in batch.chunks(max_rows):
            old = log_probs(chunk.take(theta), chunk) if theta_log_probs is None else chunk.part(theta_log_probs)
            chunk.add_to(total, mean_kl(chunk.take(adapted), chunk, old))
        return total


def inner_kl_and_gradient(adapted: Params, batch: RouterBatch, theta_log_probs: torch.Tensor,
                          max_rows: int) -> tuple[torch.Tensor, Params, torch.Tensor]:
    """The inner KL(pi_theta || pi_adapted) on `batch` ([N], as `inner_kl`), its gradient with
    respect to the adapted parameters (router i's on its own, pi_theta fixed at
    `theta_log_probs`, its log-probabilities over slots), and log pi_adapted over slots (detached),
    from one forward pass. The penalty's full gradient is then
    (d adapted / d theta)^T (this gradient) + the direct term (`meta_gradient`'s `penalty`)."""
    moved = torch.zeros(batch.mask.shape[0], dtype=theta_log_probs.dtype)
    logs = uniform_log_probs(batch, theta_log_probs.dtype)  # where chunks leave padding out

    def objective(leaves: Params, chunk: RouterBatch) -> torch.Tensor:
        logp = log_probs(leaves, chunk)
        kl = mean_kl_of(logp, chunk, chunk.part(theta_log_probs))
        chunk.add_to(moved, kl.detach())
        chunk.put(logs, logp.detach())
        return kl.sum()

    totals = chunked_gradient(adapted, batch, max_rows, objective)
    return moved, totals, logs


PENALTY_BOUNDS = (1e-3, 1e3)
"""Range of eta. The lower bound is ours: early in meta-training the inner step is far below its
target and ProMP's rule would halve eta every iteration (to 2e-5 after 10 b4 iterations), so that
when the step does grow, eta needs ~15 doublings (iterations) to matter; from 1e-3 it needs ~10."""


def adapt_penalty(penalty: torch.Tensor, moved: torch.Tensor, target: float) -> torch.Tensor:
    """ProMP's rule for the inner-KL coefficients: halve eta_i where router i's inner step moved its
    policy less than target/1.5, double it where more than 1.5 x target (within `PENALTY_BOUNDS`)."""
    penalty = torch.where(moved < target / 1.5, penalty / 2, torch.where(moved > 1.5 * target, penalty * 2, penalty))
    return penalty.clamp(*PENALTY_BOUNDS)


def corrected_start(start: torch.Tensor, stats: TrpoStats, max_kl: float) -> torch.Tensor:
    """Next line-search start per router (`MamlConfig.corrected_step_start`): min(1, sqrt(0.5 / c))
    with c = KL / (f^2 max_kl) the ratio of the true KL of the accepted fraction f to the
    quadratic model's; routers that took no step keep their start."""
    modelled = stats.step_fraction**2 * max_kl
    ratio = torch.where(stats.accepted, stats.kl / modelled.clamp(min=1e-30), torch.zeros_like(modelled))
    corrected = torch.where(ratio > 0, torch.sqrt(0.5 / ratio.clamp(min=1e-30)), torch.ones_like(ratio)).clamp(max=1.0)
    return torch.where(stats.accepted, corrected, start)


# --------------------------------------------------------------------------- the learner
@dataclass
class MetaLog:
    """One meta-iteration, for learning curves."""

    iteration: int
    episodes: int
    tasks: list[str]
    reward: float
    """Mean decision return of the post-adaptation episodes (the meta-objective's scale)."""
    pre_reward: float
    """The same before adaptation."""
    mean_delivery_time: float
    mean_sojourn_time: float
    delivered_fraction: float
    loss_fraction: float
    """Post-adaptation episode metrics, mean over tasks."""
    kl: float
    accepted_share: float
    inner_kl: float
    """Mean over routers and tasks of KL(pi_theta || pi_theta') on the inner data: how far the
    inner step moved the policies at the start of this iteration."""
    inner_kl_penalty: float
    """Mean over routers of the inner-KL coefficient eta used in this iteration (0 = no penalty)."""
    decisions: int
    seconds: dict[str, float]
    """Wall time by phase: simulation (rollouts without the policy), policy_forward (rollouts'
    network passes and sampling), batches (rewards, baseline, advantages), inner_step,
    meta_gradient (outer gradient and Hessian-vector products), trpo (CG and line search)."""


@dataclass
class _TaskData:
    task: FailureTask
    inner_batches: list[RouterBatch]
    path: list[Params]
    outer: RouterBatch
    old_logp: torch.Tensor
    old_logp_actions: torch.Tensor
    rollouts: list[Rollout]
    moved: torch.Tensor
    """[N] KL(pi_theta || pi_theta') of the inner step on the first inner batch."""


@dataclass
class TaskJob:
    """One task of a meta-iteration: everything its rollouts, inner steps and meta-gradient
    depend on (a pure function of this object: it can run in another process or on a cluster)."""

    index: int
    """Position in the iteration's task list (results are combined in this order)."""
    task: FailureTask
    params: SimParams
    """The base configuration; the task's failure is applied to it."""
    theta: Params
    """The meta-initialisation, per router (stacked)."""
    valid: torch.Tensor
    """[N, max degree] which output ports of each router exist."""
    penalty: torch.Tensor
    """[N] inner-KL coefficient eta (zeros when the penalty is off)."""
    config: MamlConfig
    seed: int
    first_episode: int
    """Episode index of the task's first episode (episodes are numbered across the iteration,
    so each task draws its own traffic)."""
    baseline_seed: int
    """Seed of the rows the linear baselines are fitted on: the episodes trained before the
    iteration, as the deep learner seeds it."""


@dataclass
class TaskResult:
    index: int
    data: _TaskData
    gradient: Params
    """The task's (penalised) meta-gradient with respect to theta."""
    seconds: dict[str, float]


def _sample(learner: DeepConsensus, job: TaskJob, task_params: SimParams, policy: Params, first_episode: int,
            sim: Simulator, seconds: dict[str, float]) -> tuple[RouterBatch, Rollout]:
    """K episodes of `policy` on the task and the routers' batches (each with its own baseline)."""
    cfg = job.config
    start = time.perf_counter()
    roll = rollout(policy, job.valid, task_params, job.seed, cfg.episodes_per_task, first_episode,
                   reward=cfg.reward, mask_down_links=cfg.mask_down_links, loss_penalty=cfg.loss_penalty,
                   loss_honest=cfg.loss_honest, sim=sim)
    middle = time.perf_counter()
    batch, _ = learner.router_batch(task_params, roll, None, baseline_seed=job.baseline_seed)
    seconds["simulation"] += middle - start - roll.policy_seconds
    seconds["policy_forward"] += roll.policy_seconds
    seconds["batches"] += time.perf_counter() - middle
    return batch, roll


def run_task(job: TaskJob) -> TaskResult:
    """One task of Algorithm 1: D with theta, the inner steps, D' with theta', and the task's
    meta-gradient (the post-adaptation policy gradient pulled back through the inner steps,
    with the inner-KL penalty's gradient)."""
    with matmul_precision(job.config.update_precision):  # the rollouts inside stay float32
        return _run_task(job)


def _run_task(job: TaskJob) -> TaskResult:
    cfg, theta, penalty = job.config, job.theta, job.penalty
    seconds = dict.fromkeys(("simulation", "policy_forward", "batches", "inner_step", "meta_gradient"), 0.0)
    learner = DeepConsensus(cfg)  # for its reward and baseline code (the baseline's seed comes with the job)
    task_params = job.task.sim_params(job.params)
    sim = Simulator(task_params)
    episode = job.first_episode
    inner_batches: list[RouterBatch] = []
    rollouts: list[Rollout] = []
    path = [theta]
    inner_log_probs: list[torch.Tensor] = []
    for _ in range(cfg.inner_steps):
        batch, roll = _sample(learner, job, task_params, path[-1], episode, sim, seconds)
        episode += cfg.episodes_per_task
        inner_batches.append(batch)
        rollouts.append(roll)
        start = time.perf_counter()
        path = path + adapt(path[-1], [batch], cfg.inner_step_size, cfg.chunk_rows, inner_log_probs)[1:]
        seconds["inner_step"] += time.perf_counter() - start
    outer, roll = _sample(learner, job, task_params, path[-1], episode, sim, seconds)
    rollouts.append(roll)
    start = time.perf_counter()
    # At theta' the surrogate's gradient is the policy gradient on D'; pull it back to theta,
    # together with the penalty's gradient with respect to theta' (the pull-back is linear).
    logp_out: list[torch.Tensor] = []
    outer_grad = policy_gradient(path[-1], outer, max_rows=cfg.chunk_rows, log_probs_out=logp_out)
    penalised = cfg.inner_kl_target > 0
    adapted_log_probs = None
    if penalised:
        moved, d_adapted, adapted_log_probs = inner_kl_and_gradient(path[-1], inner_batches[0], inner_log_probs[0],
                                                                    cfg.chunk_rows)
        outer_grad = axpy(-penalty, d_adapted, outer_grad)
    else:
        moved = inner_kl(theta, path[-1], inner_batches[0], cfg.chunk_rows, inner_log_probs[0])
    task_grad = meta_gradient(path, inner_batches, outer_grad, cfg.inner_step_size, cfg.first_order, cfg.chunk_rows,
                              penalty=penalty if penalised else None, adapted_log_probs=adapted_log_probs)
    old_logp = logp_out[0]
    old_logp_actions = old_logp.gather(2, outer.actions[..., None]).squeeze(2)
    seconds["meta_gradient"] += time.perf_counter() - start
    data = _TaskData(job.task, inner_batches, path, outer, old_logp, old_logp_actions, rollouts, moved)
    return TaskResult(job.index, data, task_grad, seconds)


def run_task_single_threaded(job: TaskJob) -> TaskResult:
    """`run_task` with one torch thread: what pool and Ray workers run (parallelism is across
    tasks, and one thread count everywhere keeps results independent of the executor)."""
    with single_threaded():
        return run_task(job)


def task_cost(job: TaskJob) -> float:
    """Relative cost of a task (for longest-first scheduling): all tasks cost about the same."""
    return 1.0


def describe_task(job: TaskJob) -> str:
    return f"meta-training task {job.task.name(job.params.topology)}"


def maml_task_executor(backend: str = "local", workers: int | None = 1, address: str | None = None) -> CellExecutor | None:
    """The executor of a meta-iteration's tasks: None (in this process) for the local backend
    with one worker, else a process pool of `workers` or Ray (see `make_backend_executor`).
    Pool and Ray workers run each task with one torch thread."""
    if check_backend(backend, address) == "local" and (workers or 1) <= 1:
        return None
    return make_backend_executor(backend, workers, address, run=run_task_single_threaded, cost=task_cost,
                                 describe=describe_task)


class MetaLearner(RoutingAgent):
    """MAML-TRPO over failure tasks; its parameters are the meta-initialisation theta per router.
    `train` runs meta-iterations (each consuming `episodes_per_meta_iteration` episodes);
    `evaluate` runs the meta-initialisation frozen."""

    name = "maml"
    learns = True
    rollout_bytes_per_router_tick = DeepConsensus.rollout_bytes_per_router_tick  # the same rollouts, per task
    learning_cost_per_router_tick = DeepConsensus.learning_cost_per_router_tick

    def __init__(self, config: MamlConfig | None = None):
        self.cfg = config or MamlConfig()
        self.learner = DeepConsensus(self.cfg)
        """Holds the meta-initialisation's policy (its own episode counter is not used)."""
        self.episodes_trained = 0
        """Index of the episode after the last one meta-training used (`training_start`), part of the checkpoint."""
        self.log: list[MetaLog] = []
        self.inner_kl_penalty: torch.Tensor | None = None
        """[N] eta per router (see `MamlConfig.inner_kl_target`), part of the checkpoint."""
        self.step_start: torch.Tensor | None = None
        """[N] fraction of the natural-gradient step each router's next line search starts at
        (see `MamlConfig.corrected_step_start`), part of the checkpoint."""
        self.task_executor: CellExecutor | None = None
        """Runs the iteration's tasks (`run_task`): None = one after another in this process; a
        process pool or Ray executor (`maml_task_executor`) spreads them over cores or a
        cluster with identical results."""

    @property
    def policy_config(self) -> DeepConsensusConfig:
        return self.cfg

    @property
    def episodes_per_update(self) -> int:
        return self.cfg.episodes_per_meta_iteration

    def initial_params(self) -> Params:
        """The meta-initialisation (a copy)."""
        if self.learner.policy is None:
            raise MamrlError("maml has not been trained or loaded: no meta-initialisation yet")
        return {k: v.detach().clone() for k, v in self.learner.policy.param_dict().items()}

    def task_distribution(self, params: SimParams) -> TaskDistribution:
        return TaskDistribution.of(params.topology, self.cfg.task_weighting, self.cfg.nominal_probability, self.cfg.fail_tick,
                                   self.cfg.held_out)

    def sample_tasks(self, params: SimParams, iteration: int, seed: int) -> list[FailureTask]:
        """The tasks of meta-iteration `iteration` (a function of the seeds: resumable)."""
        rng = np.random.default_rng([self.cfg.seed, seed, iteration, 0x7A5C])
        return self.task_distribution(params).sample(rng, self.cfg.tasks_per_iteration)

    # ------------------------------------------------------------------ one meta-iteration
    def meta_iteration(self, params: SimParams, seed: int, tasks: list[FailureTask] | None = None, *,
                       first_episode: int | None = None) -> tuple[MetaLog, dict[str, np.ndarray]]:
        """One meta-update on `tasks` (default: the iteration's sampled tasks) with episodes from
        `first_episode` on (None: after those already used); returns its log entry and the
        post-adaptation episodes' metrics."""
        require_fifo(params, "maml")  # before any task is sent to a worker
        learner, cfg = self.learner, self.cfg
        first = training_start(first_episode, self.episodes_trained)
        learner._ensure(params, seed)
        if tasks is None:
            tasks = self.sample_tasks(params, first // cfg.episodes_per_meta_iteration, seed)
        seconds = dict.fromkeys(("simulation", "policy_forward", "batches", "inner_step", "meta_gradient", "trpo"), 0.0)
        theta = {k: v.detach() for k, v in learner.policy.param_dict().items()}
        episode = first
        data: list[_TaskData] = []
        gradient = {key: torch.zeros_like(v) for key, v in theta.items()}
        penalised = cfg.inner_kl_target > 0
        n_routers = next(iter(theta.values())).shape[0]
        if self.inner_kl_penalty is None or len(self.inner_kl_penalty) != n_routers:
            self.inner_kl_penalty = torch.full((n_routers,), float(cfg.inner_kl_penalty))
        penalty = self.inner_kl_penalty if penalised else torch.zeros(n_routers)

        per_task = (cfg.inner_steps + 1) * cfg.episodes_per_task
        jobs = [TaskJob(index, task, params, theta, learner.policy.valid, penalty, cfg, seed, episode + index * per_task,
                        episode) for index, task in enumerate(tasks)]
        # Tasks are independent given theta: an executor (process pool or Ray) may run them
        # anywhere, in any order; the gradient is summed in task order whatever the order of arrival.
        done = self.task_executor.map_cells(jobs) if self.task_executor is not None else map(run_task, jobs)
        results = sorted(done, key=lambda result: result.index)
        episode += len(tasks) * per_task
        for result in results:
            for key in gradient:
                gradient[key] += result.gradient[key] / len(tasks)
            for key, value in result.seconds.items():
                seconds[key] += value
            data.append(result.data)

        start = time.perf_counter()
        with matmul_precision(cfg.update_precision):
            generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + first)
            fisher = [fisher_vector_product(d.path[-1], d.outer.subsample(cfg.fvp_fraction, generator)
                                            if cfg.fvp_fraction < 1 else d.outer, cfg.cg_damping) for d in data]

            def fisher_vector(v: Params) -> Params:
                products = [f(v) for f in fisher]
                return {key: sum(p[key] for p in products) / len(products) for key in v}

            current_inner = sum(d.moved for d in data) / len(data)

            def evaluate(candidate: Params, routers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                """True post-adaptation KL and gain of the penalised objective for a candidate theta (of
                `routers`), mean over tasks: the inner step is redone from the candidate."""
                kl, gain = 0.0, 0.0
                for d in data:
                    inner = [b.routers(routers) for b in d.inner_batches]
                    candidate_log_probs: list[torch.Tensor] = []
                    adapted = adapt(candidate, inner, cfg.inner_step_size, cfg.chunk_rows, candidate_log_probs)[-1]
                    task_kl, task_gain = kl_and_gain(adapted, d.outer.routers(routers), d.old_logp[routers],
                                                     d.old_logp_actions[routers], cfg.chunk_rows)
                    if penalised:
                        task_gain = task_gain - penalty[routers] * (
                            inner_kl(candidate, adapted, inner[0], cfg.chunk_rows, candidate_log_probs[0]) - d.moved[routers])
                    kl, gain = kl + task_kl / len(data), gain + task_gain / len(data)
                return kl, gain

            if self.step_start is None or len(self.step_start) != n_routers:
                self.step_start = torch.ones(n_routers)
            new_theta, stats = trust_region_step(theta, gradient, fisher_vector, evaluate, max_kl=cfg.max_kl,
                                                 cg_iterations=cfg.cg_iterations, backtrack_ratio=0.5, max_backtracks=10,
                                                 start=self.step_start if cfg.corrected_step_start else None)
            if cfg.corrected_step_start:
                self.step_start = corrected_start(self.step_start, stats, cfg.max_kl)
            with torch.no_grad():
                for key, value in new_theta.items():
                    learner.policy.params[key].copy_(value)
        seconds["trpo"] += time.perf_counter() - start
        self.episodes_trained = episode
        if penalised:
            self.inner_kl_penalty = adapt_penalty(penalty, current_inner, cfg.inner_kl_target)
        entry = self._log_entry(params, data, stats, seconds, float(current_inner.mean()), float(penalty.mean()))
        self.log.append(entry)
        return entry, _post_metrics([d.rollouts[-1] for d in data])

    def _log_entry(self, params: SimParams, data: list[_TaskData], stats, seconds: dict[str, float],
                   moved: float, penalty: float) -> MetaLog:
        post = [d.rollouts[-1] for d in data]
        pre = [d.rollouts[0] for d in data]

        def metric(key: str) -> float:
            return finite_mean(np.concatenate([r.metrics[key] for r in post]))

        return MetaLog(
            iteration=len(self.log) + 1,
            episodes=self.episodes_trained,
            tasks=[d.task.name(params.topology) for d in data],
            reward=float(np.mean([self.learner.mean_return(params, r) for r in post])),
            pre_reward=float(np.mean([self.learner.mean_return(params, r) for r in pre])),
            mean_delivery_time=metric("mean_delivery_time"),
            mean_sojourn_time=metric("mean_sojourn_time"),
            delivered_fraction=metric("delivered_fraction"),
            loss_fraction=metric("loss_fraction"),
            kl=float(stats.kl[stats.accepted].mean()) if bool(stats.accepted.any()) else 0.0,
            accepted_share=float(stats.accepted.float().mean()),
            inner_kl=moved,
            inner_kl_penalty=penalty,
            decisions=int(sum(r.decisions for d in data for r in d.rollouts)),
            seconds={key: round(value, 3) for key, value in seconds.items()},
        )

    # ------------------------------------------------------------------ RoutingAgent
    def train(self, params: SimParams, seed: int, num_episodes: int, *, first_episode: int | None = None,
              on_progress: Progress | None = None):
        """Meta-iterations from episode `first_episode` on (None: after those already used) until
        `num_episodes` more episodes are used (whole iterations, at least one); returns the
        post-adaptation episodes' metrics."""
        per = self.cfg.episodes_per_meta_iteration
        collected = []
        start = first_episode
        for _ in range(max(1, -(-num_episodes // per))):
            _, metrics = self.meta_iteration(params, seed, first_episode=start)
            start = None  # later iterations continue after it
            collected.append(metrics)
            if on_progress is not None:
                on_progress(per)
        return {key: np.concatenate([m[key] for m in collected]) for key in collected[0]}

    def evaluate(self, params, seed, num_episodes, *, batch_size=32, on_progress: Progress | None = None):
        return self.learner.evaluate(params, seed, num_episodes, batch_size=batch_size, on_progress=on_progress)

    def config(self):
        values = self.learner.config()
        values["held_out"] = list(values["held_out"])
        return values

    def state_arrays(self):
        arrays = self.learner.state_arrays()
        if arrays:
            arrays["episodes_trained"] = np.array(self.episodes_trained)
        if self.inner_kl_penalty is not None:
            arrays["inner_kl_penalty"] = self.inner_kl_penalty.numpy()
        if self.step_start is not None:
            arrays["step_start"] = self.step_start.numpy()
        return arrays

    def load_state_arrays(self, arrays):
        self.learner.load_state_arrays(arrays)
        self.episodes_trained = int(arrays["episodes_trained"])
        # Checkpoints from before the penalty start from the configured eta.
        penalty = arrays.get("inner_kl_penalty")
        self.inner_kl_penalty = None if penalty is None else torch.from_numpy(np.array(penalty, dtype=np.float32))
        start = arrays.get("step_start")  # absent before corrected starts: the full step
        self.step_start = None if start is None else torch.from_numpy(np.array(start, dtype=np.float32))


def _post_metrics(rollouts: list[Rollout]) -> dict[str, np.ndarray]:
    keys = rollouts[0].metrics.keys()
    return {key: np.concatenate([r.metrics[key] for r in rollouts]) for key in keys}
