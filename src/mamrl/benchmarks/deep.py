"""`mamrl bench-deep`: speed of the deep per-router learner.

* rollout throughput: router decisions actually made per second, with every router's 5x128 MLP
  evaluated in one batched call per tick, sampling and the simulator included;
* time per TRPO iteration (rollout of E episodes + advantage estimation + the batched TRPO step);
* the batched policy path against a Python loop over per-router `nn.Module`s, side by side on the
  same inputs (one tick's forward pass for every router of E episodes).

Uses the machine's cores through torch (2 here); the simulator itself is single-threaded.
"""

from __future__ import annotations

import datetime as _dt
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mamrl.agents.deep_consensus import DeepConsensus, DeepConsensusConfig, rollout
from mamrl.agents.networks import PRECISIONS, encode_fields, input_dim, matmul_precision, policy_logits
from mamrl.agents.trpo import trpo_update
from mamrl.benchmarks.common import close_section, markdown_table, median_time
from mamrl.benchmarks.common import write_section as write_marked_section
from mamrl.sim.params import SimParams
from mamrl.topologies import load_topology

SECTION_START = "<!-- bench-deep:start -->"
SECTION_END = "<!-- bench-deep:end -->"


@dataclass(frozen=True)
class DeepBenchRow:
    topology: str
    routers: int
    load: float
    episodes: int
    decisions_per_s: float
    router_ticks_per_s: float
    iteration_s: float
    rollout_s: float
    update_s: float
    batched_forward_ms: float
    looped_forward_ms: float
    looped_each_ms: float
    update_phases_s: dict[str, float]
    """float32 TRPO update on one batch: seconds of its policy gradient, conjugate gradient and line search."""
    update_float32_s: float
    """That update in float32 ..."""
    update_bfloat16_s: float
    """... and with `update_precision="bfloat16"`, measured alternately on the same batch."""

    @property
    def batched_speedup(self) -> float:
        return self.looped_forward_ms / self.batched_forward_ms


def _looped_modules(agent: DeepConsensus) -> list[nn.Sequential]:
    """The same networks as separate per-router modules (what a straightforward implementation has)."""
    p = agent.policy.param_dict()
    layers = sum(1 for k in p if k.startswith("w"))
    modules = []
    for i in range(agent.policy.num_routers):
        parts: list[nn.Module] = []
        for j in range(layers):
            w = p[f"w{j}"][i]
            lin = nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                lin.weight.copy_(w.T)
                lin.bias.copy_(p[f"b{j}"][i])
            parts += [lin, nn.ReLU()] if j < layers - 1 else [lin]
        modules.append(nn.Sequential(*parts))
    return modules


def bench_deep_one(topology_name: str, load: float, episodes: int, repeats: int, horizon: int = 500, *,
                   demand_weights: np.ndarray | None = None) -> DeepBenchRow:
    """Measure one (topology, episodes); `demand_weights` as for `SimParams` (default: uniform destinations)."""
    topo = load_topology(topology_name)
    params = SimParams(topo, load, horizon, demand_weights=demand_weights)
    agent = DeepConsensus(DeepConsensusConfig(episodes_per_iteration=episodes))
    agent._ensure(params)
    weights, valid = agent.policy.param_dict(), agent.policy.valid

    rollout(weights, valid, params, 0, 2)  # warm-up (numba, torch)
    rollout_times, decisions = [], []
    for k in range(repeats):
        start = time.perf_counter()
        data = rollout(weights, valid, params, 100 + k, episodes)
        rollout_times.append(time.perf_counter() - start)
        decisions.append(data.decisions)
    roll_s = statistics.median(rollout_times)
    decisions_per_s = statistics.median(d / t for d, t in zip(decisions, rollout_times))

    agent.train_iteration(params, 0, episodes)  # warm-up of the update path
    iteration_logs = [agent.train_iteration(params, 0, episodes)[0] for _ in range(max(1, repeats // 2))]
    update_s = statistics.median(e.update_seconds for e in iteration_logs)
    iteration_s = statistics.median(e.update_seconds + e.rollout_seconds for e in iteration_logs)
    phases, update_by_precision = _update_profile(agent, params, episodes, max(2, repeats // 2))

    # One tick's policy evaluation for every router of `episodes` episodes, both ways.
    n, k = topo.num_routers, topo.max_degree
    rng = np.random.default_rng(0)
    head = rng.integers(-1, n, (episodes, n))
    longest = np.minimum(rng.integers(-1, k, (episodes, n)), topo.degree[None, :] - 1)
    history = np.minimum(rng.integers(-1, k, (episodes, n, 10)), topo.degree[None, :, None] - 1)
    fields = torch.from_numpy(encode_fields(head, longest, history, n, k)).transpose(0, 1).contiguous()
    modules = _looped_modules(agent)
    d_in = input_dim(n, k)

    def batched():
        with torch.no_grad():
            torch.softmax(policy_logits(weights, fields, valid), dim=-1)

    def looped_each():
        with torch.no_grad():
            for i, module in enumerate(modules):
                for e in range(episodes):
                    one_hot = torch.zeros((1, d_in))
                    one_hot.scatter_(1, fields[i, e : e + 1], 1.0)
                    torch.softmax(module(one_hot)[:, : topo.degree[i]], dim=-1)

    def looped():
        with torch.no_grad():
            for i, module in enumerate(modules):
                one_hot = torch.zeros((episodes, d_in))
                one_hot.scatter_(1, fields[i], 1.0)
                torch.softmax(module(one_hot)[:, : topo.degree[i]], dim=-1)

    for fn in (batched, looped, looped_each):
        fn()
    inner = 50
    batched_ms = median_time(lambda: [batched() for _ in range(inner)], repeats) / inner * 1e3
    looped_ms = median_time(lambda: [looped() for _ in range(inner)], repeats) / inner * 1e3
    each_ms = median_time(lambda: [looped_each() for _ in range(5)], repeats) / 5 * 1e3
    return DeepBenchRow(topo.name, n, load, episodes, decisions_per_s, episodes * horizon * n / roll_s,
                        iteration_s, roll_s, update_s, batched_ms, looped_ms, each_ms, phases,
                        update_by_precision["float32"], update_by_precision["bfloat16"])


def _update_profile(agent: DeepConsensus, params: SimParams, episodes: int, repeats: int,
                    ) -> tuple[dict[str, float], dict[str, float]]:
    """Where a TRPO update's time goes (float32), and the whole update at each `PRECISIONS`,
    alternating between them on one batch (medians of `repeats`, after one warm-up round)."""
    data = agent._rollout(params, 0, episodes, agent.episodes_trained, None)
    batch, _ = agent.router_batch(params, data, agent.baseline_weights)
    cfg = agent.cfg
    phases: dict[str, list[dict[str, float]]] = {p: [] for p in PRECISIONS}
    for _ in range(repeats + 1):
        for precision in PRECISIONS:
            timings: dict[str, float] = {}
            start = time.perf_counter()
            with matmul_precision(precision):
                trpo_update(agent.policy.param_dict(), batch, max_kl=cfg.max_kl, cg_iterations=cfg.cg_iterations,
                            cg_damping=cfg.cg_damping, fvp_fraction=cfg.fvp_fraction,
                            generator=torch.Generator().manual_seed(0), timings=timings)
            timings["total"] = time.perf_counter() - start
            phases[precision].append(timings)
    median = {p: {key: statistics.median(t[key] for t in runs[1:]) for key in runs[0]} for p, runs in phases.items()}
    return ({key: median["float32"][key] for key in ("policy_gradient", "conjugate_gradient", "line_search")},
            {p: median[p]["total"] for p in PRECISIONS})


def run_deep_bench(topologies=("b4", "att"), load: float = 0.3, episodes=(16, 64), repeats: int = 3, on_row=None) -> list[DeepBenchRow]:
    rows = []
    for name in topologies:
        for e in episodes:
            row = bench_deep_one(name, load, e, repeats)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


COLUMNS = ("topology", "λ", "episodes in parallel", "decisions/s (rollout)", "router-ticks/s (rollout)",
           "TRPO iteration (s)", "of which rollout (s)", "of which update (s)",
           "policy forward, batched (ms/tick)", "loop over routers (ms/tick)", "batched / loop over routers",
           "loop over routers and episodes (ms/tick)", "batched / loop over both",
           "update: policy gradient / CG / line search (s)", "update, float32 (s)", "update, bfloat16 (s)",
           "float32 / bfloat16")


def row_cells(row: DeepBenchRow) -> list[str]:
    return [f"{row.topology} ({row.routers})", f"{row.load:g}", str(row.episodes), f"{row.decisions_per_s / 1e3:.0f}k",
            f"{row.router_ticks_per_s / 1e3:.0f}k", f"{row.iteration_s:.2f}", f"{row.rollout_s:.2f}", f"{row.update_s:.2f}",
            f"{row.batched_forward_ms:.3f}", f"{row.looped_forward_ms:.3f}", f"{row.batched_speedup:.1f}x",
            f"{row.looped_each_ms:.2f}", f"{row.looped_each_ms / row.batched_forward_ms:.0f}x",
            " / ".join(f"{row.update_phases_s[k]:.2f}" for k in ("policy_gradient", "conjugate_gradient", "line_search")),
            f"{row.update_float32_s:.2f}", f"{row.update_bfloat16_s:.2f}",
            f"{row.update_float32_s / row.update_bfloat16_s:.1f}x"]


def markdown_section(rows: list[DeepBenchRow], command: str, machine: dict[str, str]) -> str:
    date = _dt.datetime.now().astimezone().replace(microsecond=0).isoformat()
    lines = [
        SECTION_START,
        "## Deep per-router policies",
        "",
        f"Command: `{command}`  ",
        f"Date: {date}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"policies: 5 hidden layers of 128 per router (the paper's), horizon 500 ticks.",
        "",
        *markdown_table(COLUMNS, [row_cells(r) for r in rows]),
    ]
    lines += [
        "",
        "- *decisions/s*: forwarding decisions routers actually made (non-empty queues) per second of a "
        "rollout with the initial policies, the simulator, observation encoding and sampling included.",
        "- *TRPO iteration*: one rollout of that many episodes, consensus rewards, baseline, GAE, and the "
        "per-router TRPO step (10 CG iterations on 10% of the decisions, backtracking line search).",
        "- *batched / loop*: one tick's policy forward pass for every router of every parallel episode, "
        "as one stacked call versus a Python loop over per-router `nn.Sequential` modules with the same weights: "
        "*loop over routers* calls each router's module once on all episodes' observations; *loop over routers "
        "and episodes* once per observation (a simulator that runs one episode at a time). With 16+ episodes "
        "the 5x128 networks are compute-bound, so batching over routers alone gains 3-8x, not more.",
        "- *update: policy gradient / CG / line search*: where one float32 TRPO update on one rollout's batch "
        "goes: the policy gradient over every decision (its pass also gives the old log-probabilities), the "
        "11 Fisher-vector products of conjugate gradient and the step's curvature (a forward-mode and a "
        "backward pass each, on 10% of the decisions), and the backtracking line search (forward passes).",
        "- *update, float32 / bfloat16*: that update with `update_precision` float32 and bfloat16 "
        "(bfloat16 matrix products, float32 accumulation, logits and KLs), alternating on the same batch. "
        "The gain needs a CPU with bfloat16 instructions (AVX-512 BF16 or AMX); without them bfloat16 is slower.",
    ]
    return close_section(lines, machine, SECTION_END)


def write_section(path: str | Path, section: str) -> None:
    """Replace (or append) this benchmark's section of a markdown file."""
    write_marked_section(path, section, SECTION_START, SECTION_END)
