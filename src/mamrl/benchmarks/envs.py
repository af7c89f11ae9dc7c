"""`mamrl bench-envs`: speed of the RL environments, each against the raw simulator step.

* the native vector environment (`gymnasium.make_vec`, `RoutingVectorEnv`): router decisions per
  second with uniformly random valid slots, beside the simulator's `step` on the same batch with
  the same actions (what the environment adds: observation encoding, rewards, bookkeeping);
* the PettingZoo `ParallelEnv` and the Gymnasium `Env` (one episode each): environment steps per
  second, random valid actions;
* `mamrl evaluate` of a deep checkpoint (20 episodes on b4) against `mamrl simulate` with SPA on
  the same episodes: the evaluation's wall time, the share of it in the network's forward passes,
  and the ratio of the evaluation to SPA's simulation plus those forward passes (target ≤ 2).

Random actions are drawn before timing, so the figures are the environments' own cost.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from mamrl.benchmarks.common import close_section, markdown_table
from mamrl.benchmarks.common import write_section as write_marked_section
from mamrl.envs import RoutingEnv, RoutingParallelEnv, RoutingVectorEnv, make_params
from mamrl.sim.simulator import Simulator

SECTION_START = "<!-- bench-envs:start -->"
SECTION_END = "<!-- bench-envs:end -->"


@dataclass(frozen=True)
class VectorRow:
    topology: str
    routers: int
    num_envs: int
    steps: int
    env_decisions_per_s: float
    """Router decisions (num_envs x routers per step) per second through `RoutingVectorEnv.step`."""
    raw_decisions_per_s: float
    """The same through `Simulator.step` alone, on the same batch and actions."""


@dataclass(frozen=True)
class SingleRow:
    topology: str
    env: str
    steps_per_s: float


def _random_actions(rng: np.random.Generator, degree: np.ndarray, steps: int, batch: int) -> np.ndarray:
    return (rng.random((steps, batch, len(degree))) * degree).astype(np.int64)


def bench_vector(topology: str = "b4", num_envs: int = 64, load: float = 0.3, horizon: int = 500,
                 episodes: int = 2) -> VectorRow:
    """Whole episodes through the vector env and through the raw simulator, same actions; the
    better of two rounds of each (after a warm-up)."""
    params = make_params(topology, load, horizon)
    env = RoutingVectorEnv(params, num_envs)
    sim = Simulator(params)
    actions = _random_actions(np.random.default_rng(0), env.degree, horizon, num_envs)

    def through_env() -> float:
        start = time.perf_counter()
        for _ in range(episodes):
            env.reset(seed=1)
            for t in range(horizon):
                env.step(actions[t])
        return time.perf_counter() - start

    def through_simulator() -> float:
        start = time.perf_counter()
        for _ in range(episodes):
            state = sim.reset(1, num_envs)
            for t in range(horizon):
                sim.step(state, actions[t])
        return time.perf_counter() - start

    through_env(), through_simulator()  # compile and warm up
    env_s = min(through_env(), through_env())
    raw_s = min(through_simulator(), through_simulator())
    decisions = episodes * horizon * num_envs * params.topology.num_routers
    return VectorRow(params.topology.name, params.topology.num_routers, num_envs, episodes * horizon,
                     decisions / env_s, decisions / raw_s)


def bench_single(topology: str = "b4", load: float = 0.3, horizon: int = 500) -> list[SingleRow]:
    """Steps per second of the PettingZoo and Gymnasium envs over one episode (after a warm-up one)."""
    params = make_params(topology, load, horizon)
    rng = np.random.default_rng(0)
    parallel, gym = RoutingParallelEnv(params), RoutingEnv(params)
    joint = _random_actions(rng, parallel.degree, horizon, 1)[:, 0]
    agents = parallel.possible_agents
    per_agent = [{a: int(joint[t, i]) for i, a in enumerate(agents)} for t in range(horizon)]

    def parallel_episode() -> float:
        parallel.reset(seed=1)
        start = time.perf_counter()
        for t in range(horizon):
            parallel.step(per_agent[t])
        return time.perf_counter() - start

    def gym_episode() -> float:
        gym.reset(seed=1)
        start = time.perf_counter()
        for t in range(horizon):
            gym.step(joint[t])
        return time.perf_counter() - start

    parallel_episode(), gym_episode()
    name = params.topology.name
    return [SingleRow(name, "PettingZoo ParallelEnv", horizon / min(parallel_episode(), parallel_episode())),
            SingleRow(name, "Gymnasium Env (joint action)", horizon / min(gym_episode(), gym_episode()))]


@dataclass(frozen=True)
class EvaluateRow:
    checkpoint: str
    """The policy spec evaluated (a shipped policy, or a deep learner's fresh initialisation)."""
    episodes: int
    spa_simulate_s: float
    """`prepare_simulation` + `run_simulation` with SPA (the `mamrl simulate` path), best of two."""
    evaluate_s: float
    """The same with the deep checkpoint (the `mamrl evaluate` path), best of two."""
    forward_s: float
    """Of `evaluate_s`: the networks' forward passes and sampling (the rollout's own timer)."""
    decisions: int
    """Forwarding decisions the deep policy made over the episodes."""

    @property
    def ratio(self) -> float:
        """evaluate / (SPA simulate + forward passes): what evaluation adds beyond the two."""
        return self.evaluate_s / (self.spa_simulate_s + self.forward_s)


def default_checkpoint() -> str | None:
    """`pretrained:b4-deep` when it ships, else None (a fresh deep learner)."""
    # lazy: the experiment layer imports torch
    from mamrl.experiments.checkpoint import PRETRAINED_PREFIX, pretrained_names

    return f"{PRETRAINED_PREFIX}b4-deep" if "b4-deep" in pretrained_names() else None


def bench_evaluate(checkpoint: str | None = None, episodes: int = 20, topology: str = "b4", load: float = 0.3) -> EvaluateRow:
    """`mamrl evaluate CHECKPOINT -n 20` against `mamrl simulate -p spa -n 20` on the same episodes.
    Without a checkpoint, a deep learner (the paper's 5 x 128 networks) at its fresh initialisation."""
    # lazy: torch and the experiment layer are only needed for this row
    import tempfile

    from mamrl.algorithms import make_agent
    from mamrl.executors.base import single_threaded
    from mamrl.experiments.simulate import SimulationRequest, prepare_simulation, run_simulation

    def timed(request: SimulationRequest) -> tuple[float, object]:
        best, sim = float("inf"), None
        for _ in range(2):
            start = time.perf_counter()
            sim = prepare_simulation(request)
            run_simulation(sim)
            best = min(best, time.perf_counter() - start)
        return best, sim

    with tempfile.TemporaryDirectory() as scratch:
        spec = checkpoint
        if spec is None:
            agent = make_agent("mamrl", {})
            agent._ensure(make_params(topology, load, 20))  # the networks at their seeded initialisation, untrained
            spec = str(Path(scratch) / "fresh.pt")
            agent.save(spec)
        run_simulation(prepare_simulation(SimulationRequest(topology, str(load), "spa", 2)))  # warm-up (compilation)
        spa_s, _ = timed(SimulationRequest(topology, str(load), "spa", episodes, batch_size=episodes))
        eval_s, sim = timed(SimulationRequest(topology, str(load), spec, episodes, batch_size=episodes))
        with single_threaded():  # as run_simulation times it
            rolled = sim.agent._rollout(sim.params, sim.request.seed, episodes, 0, None)
    label = checkpoint or "deep learner, fresh initialisation (5 x 128)"
    return EvaluateRow(label, episodes, spa_s, eval_s, rolled.policy_seconds, rolled.decisions)


def run_envs_bench(topologies=("b4", "att"), num_envs=(64,), on_row=None) -> tuple[list[VectorRow], list[SingleRow]]:
    vector_rows: list[VectorRow] = []
    single_rows: list[SingleRow] = []
    for name in topologies:
        for n in num_envs:
            vector_rows.append(bench_vector(name, n))
            if on_row is not None:
                on_row(f"{name}: vector env × {n} done")
        single_rows += bench_single(name)
        if on_row is not None:
            on_row(f"{name}: single-episode envs done")
    return vector_rows, single_rows


VECTOR_COLUMNS = ("topology", "environments", "vector env (router decisions/s)", "raw simulator step (router decisions/s)",
                  "vector env / raw step")
SINGLE_COLUMNS = ("topology", "environment", "environment steps/s")
EVALUATE_COLUMNS = ("checkpoint", "episodes", "simulate SPA (s)", "evaluate (s)", "of which forward passes (s)",
                    "decisions", "evaluate / (SPA + forward)")


def vector_cells(row: VectorRow) -> list[str]:
    return [f"{row.topology} ({row.routers})", str(row.num_envs), f"{row.env_decisions_per_s / 1e6:.2f}M",
            f"{row.raw_decisions_per_s / 1e6:.2f}M", f"{row.env_decisions_per_s / row.raw_decisions_per_s:.2f}"]


def single_cells(row: SingleRow) -> list[str]:
    return [row.topology, row.env, f"{row.steps_per_s:,.0f}"]


def evaluate_cells(row: EvaluateRow) -> list[str]:
    return [row.checkpoint, str(row.episodes), f"{row.spa_simulate_s:.2f}", f"{row.evaluate_s:.2f}", f"{row.forward_s:.2f}",
            f"{row.decisions:,}", f"{row.ratio:.2f}"]


def markdown_section(vector_rows: list[VectorRow], single_rows: list[SingleRow], command: str,
                     machine: dict[str, str], evaluate_rows: Sequence[EvaluateRow] = ()) -> str:
    date = _dt.datetime.now().astimezone().replace(microsecond=0).isoformat()
    lines = [
        SECTION_START,
        "## RL environments",
        "",
        f"Command: `{command}`  ",
        f"Date: {date}; λ = 0.3, horizon 500 ticks, uniformly random valid slots drawn before timing.",
        "",
        *markdown_table(VECTOR_COLUMNS, [vector_cells(r) for r in vector_rows]),
        "",
        *markdown_table(SINGLE_COLUMNS, [single_cells(r) for r in single_rows]),
        "",
    ]
    if evaluate_rows:
        lines += [*markdown_table(EVALUATE_COLUMNS, [evaluate_cells(r) for r in evaluate_rows]), ""]
    lines += [
        "- *vector env*: `gymnasium.make_vec(\"mamrl/B4-v0\", num_envs=N)`, whole episodes of `step` (observations "
        "encoded in one compiled pass, the loss-honest reward, episode statistics); *raw simulator step*: "
        "`Simulator.step` alone on the same batch and actions. A router decision is one router of one environment "
        "in one step (routers with empty queues included).",
        "- *environment steps/s*: one episode at a time, one step = every router forwards once.",
    ]
    if evaluate_rows:
        lines.append("- *evaluate*: `mamrl evaluate CHECKPOINT -n 20` on b4, λ = 0.3 (checkpoint loaded, 20 episodes in one "
                     "batch, metrics); *simulate SPA*: `mamrl simulate -p spa -n 20` on the same episodes; *forward passes*: "
                     "the share of the evaluation in the networks and the sampling (the rollout's own timer). Best of two.")
    return close_section(lines, machine, SECTION_END)


def write_section(path: str | Path, section: str) -> None:
    """Replace (or append) this benchmark's section of a markdown file."""
    write_marked_section(path, section, SECTION_START, SECTION_END)
