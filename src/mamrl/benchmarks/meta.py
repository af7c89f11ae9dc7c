"""`mamrl bench-meta`: time and memory of one MAML-TRPO meta-iteration (Algorithm 1).

The configuration is the paper authors' (3 tasks per iteration, 15 adaptation + 15 validation
episodes of 500 ticks per task, one inner step, 5x128 networks, CG 10, max KL 0.01), whose code
took 785 s and 10.1 GB per iteration on these machines (BENCHMARKS.md). Reported: wall time per
meta-iteration split into simulation, policy forward passes in the rollouts, batch building,
inner step, meta-gradient and TRPO; decisions made; and the process's peak resident memory (run
it in a fresh process: `ru_maxrss` is a lifetime peak, torch's own import included).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mamrl.agents.base import RoutingAgent
from mamrl.algorithms import make_agent
from mamrl.benchmarks.common import close_section, cpu_ticks, markdown_table, steal_share
from mamrl.benchmarks.common import write_section as write_marked_section
from mamrl.errors import MamrlError
from mamrl.meta.maml import MamlConfig, MetaLearner
from mamrl.sim.params import SimParams
from mamrl.topologies import load_topology

SECTION_START = "<!-- bench-meta:start -->"
SECTION_END = "<!-- bench-meta:end -->"
PHASES = ("simulation", "policy_forward", "batches", "inner_step", "meta_gradient", "trpo")


@dataclass(frozen=True)
class MetaBenchResult:
    topology: str
    routers: int
    load: float
    first_order: bool
    iterations: int
    seconds: list[float]
    phases: dict[str, float]
    """Median seconds per phase."""
    decisions: int
    peak_rss_mb: float
    trained_iterations: int = 0
    """Meta-iterations the initialisation had been trained for (0: a fresh one)."""
    penalised: bool = True
    """With the inner-KL penalty (mamrl's default; not in the paper authors' configuration)."""
    corrected_start: bool = True
    """Line searches start at the KL-corrected fraction of the step (mamrl's default,
    `MamlConfig.corrected_step_start`) rather than at the full step."""
    update_precision: str = "float32"
    """`MamlConfig.update_precision` of the meta-updates."""
    steal: float | None = None
    """Share of the machine's CPU time stolen by the hypervisor during the timed iterations
    (`benchmarks.common.steal_share`; None off Linux)."""

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def trained_learner(checkpoint: str | Path) -> tuple[MetaLearner, int]:
    """The maml learner of a `mamrl train -a maml` checkpoint (its own configuration) and the
    meta-iterations it was trained for; one-line errors for another kind of checkpoint."""
    meta, arrays = RoutingAgent.read_checkpoint(checkpoint)
    if meta["name"] != "maml":
        raise MamrlError(f"{checkpoint} is a {meta['name']} checkpoint, not a maml meta-initialisation")
    learner = make_agent("maml", meta["config"])
    learner.load_state_arrays(arrays)
    return learner, learner.episodes_trained // learner.cfg.episodes_per_meta_iteration


def bench_meta(topology_name: str = "b4", load: float = 0.3, iterations: int = 3, *, first_order: bool = False,
               horizon: int = 500, episodes_per_task: int = 15, on_iteration=None,
               checkpoint: str | Path | None = None, penalised: bool = True,
               corrected_start: bool = True, update_precision: str = "float32") -> MetaBenchResult:
    """Time `iterations` meta-iterations after one warm-up (numba compilation, allocator), from a
    fresh initialisation or from a trained one (`checkpoint`, with its own configuration but
    `corrected_start`: late iterations cost more, RESULTS.md §3.1). `penalised=False` drops the inner-KL penalty, as in
    the paper authors' configuration; `corrected_start=False` starts every line search at the full
    step, as TRPO (and their code) does; `update_precision` as in `MamlConfig`. The warm-up
    iteration also sets the corrected starts."""
    params = SimParams(load_topology(topology_name), load, horizon)
    trained = 0
    if checkpoint is not None:
        learner, trained = trained_learner(checkpoint)
        first_order, penalised = learner.cfg.first_order, learner.cfg.inner_kl_target > 0
        learner.cfg = dataclasses.replace(learner.cfg, corrected_step_start=corrected_start,
                                          update_precision=update_precision)
    else:
        config = MamlConfig(first_order=first_order, episodes_per_task=episodes_per_task,
                            corrected_step_start=corrected_start, update_precision=update_precision)
        learner = MetaLearner(config if penalised else dataclasses.replace(config, inner_kl_target=0.0))
    learner.meta_iteration(params, seed=0)
    totals, phases, decisions = [], [], []
    ticks_before = cpu_ticks()
    for k in range(iterations):
        start = time.perf_counter()
        log, _ = learner.meta_iteration(params, seed=0)
        totals.append(time.perf_counter() - start)
        phases.append(log.seconds)
        decisions.append(log.decisions)
        if on_iteration is not None:
            on_iteration(k + 1, totals[-1])
    steal = steal_share(ticks_before, cpu_ticks())
    median_phases = {p: statistics.median(s[p] for s in phases) for p in PHASES}
    return MetaBenchResult(topology_name, params.topology.num_routers, load, first_order, iterations, totals,
                           median_phases, int(statistics.median(decisions)), peak_rss_mb(), trained, penalised,
                           corrected_start, update_precision, steal)


def run_variants(iterations: int = 3, *, quick: bool = False, first_order: bool = True,
                 from_checkpoint: str | Path | None = None,
                 on_iteration: Callable[[str, int, float], None] | None = None) -> list[MetaBenchResult]:
    """`mamrl bench-meta`: the paper authors' configuration (no inner-KL penalty; TRPO's full-step
    line-search start, then ours), the first-order variant, mamrl's default (with the penalty), and
    from a trained initialisation if given. `on_iteration(label, k, seconds)` after each timed one."""
    kwargs: dict[str, Any] = {"horizon": 100, "episodes_per_task": 3, "iterations": 1} if quick else {"iterations": iterations}
    if from_checkpoint is not None:
        trained_learner(from_checkpoint)  # a wrong file is a one-line error before any timing

    def report(label: str):
        return None if on_iteration is None else (lambda k, seconds: on_iteration(label, k, seconds))

    results = []
    variants = ((False, False, False), (False, False, True), *(((True, False, True),) if first_order else ()),
                (False, True, True))
    for fo, penalised, corrected in variants:
        results.append(bench_meta("b4", 0.3, first_order=fo, penalised=penalised, corrected_start=corrected, **kwargs,
                                  on_iteration=report("meta-iteration")))
    # mamrl's default with bfloat16 updates (the paper preset's; the rollouts stay float32).
    results.append(bench_meta("b4", 0.3, **kwargs, update_precision="bfloat16", on_iteration=report("meta-iteration")))
    if from_checkpoint is not None:
        # Where the full natural-gradient step overshoots the KL bound (a trained initialisation,
        # whose inner step is large), the two line-search starts differ most.
        for corrected in (False, True):
            results.append(bench_meta("b4", 0.3, **kwargs, checkpoint=from_checkpoint, corrected_start=corrected,
                                      on_iteration=report("trained, meta-iteration")))
    return results


COLUMNS = ("topology", "variant", "meta-iteration (s, median)", *PHASES, "decisions", "peak memory (MB)",
           "CPU stolen (%)")


def row_cells(r: MetaBenchResult) -> list[str]:
    total = r.median_s
    shares = [f"{r.phases[p]:.2f} ({100 * r.phases[p] / total:.0f}%)" for p in PHASES]
    variant = ("first order" if r.first_order else "second order") + (", inner-KL penalty" if r.penalised else "")
    if not r.corrected_start:
        variant += ", full-step line-search start"
    if r.update_precision != "float32":
        variant += f", {r.update_precision} updates"
    if r.trained_iterations:
        variant += f", after {r.trained_iterations} meta-iterations"
    stolen = "n/a" if r.steal is None else f"{100 * r.steal:.1f}"
    return [f"{r.topology} ({r.routers})", variant, f"{total:.2f}", *shares, f"{r.decisions:,}", f"{r.peak_rss_mb:.0f}",
            stolen]


def markdown_section(results: list[MetaBenchResult], command: str, machine: dict[str, str]) -> str:
    date = _dt.datetime.now().astimezone().replace(microsecond=0).isoformat()
    lines = [
        SECTION_START,
        "## MAML-TRPO meta-iteration (Algorithm 1)",
        "",
        f"Command: `{command}`  ",
        f"Date: {date}; torch {torch.__version__}, {torch.get_num_threads()} threads; λ = {results[0].load:g}; "
        "3 tasks per iteration, 15 adaptation + 15 validation episodes of 500 ticks per task, one inner step "
        "(α = 0.01), 5x128 networks, CG 10 on 10% of the decisions, max KL 0.01 (the paper authors' configuration; "
        "their code took 785 s and 10.1 GB per iteration here, target ≤ 16 s and < 1 GB).",
        "",
        *markdown_table(COLUMNS, [row_cells(r) for r in results]),
    ]
    lines += [
        "",
        "- Phases (median seconds and share of the iteration): *simulation* = rollouts without the policy; "
        "*policy_forward* = the rollouts' batched network passes and sampling; *batches* = rewards, linear "
        "baselines, advantages and per-router padding; *inner_step* = the per-router policy-gradient steps; "
        "*meta_gradient* = the outer gradient at the adapted parameters pulled back through the inner step "
        "(Hessian-vector products, chunked); *trpo* = Fisher-vector products, conjugate gradient and the line "
        "search, which redoes the inner step for every candidate (only for routers still searching).",
        "- *decisions*: forwarding decisions routers actually made over the iteration's 90 episodes "
        "(routers with empty queues make none and are not recorded).",
        "- *peak memory*: the benchmark process's peak resident set since it started (torch and numba "
        "included; the rows run one after another in one process, so a row's figure is at least the previous "
        "rows').",
        "- *CPU stolen*: the share of the machine's CPU time that the hypervisor gave to other guests while the "
        "row's iterations ran (`steal` in /proc/stat). On this shared VM the same iteration has taken twice as "
        "long in phases of heavy steal; read a row's time with it.",
        "- *inner-KL penalty*: mamrl's default, ProMP's adaptive penalty on the inner step's KL (not in the paper "
        "authors' configuration, which the rows without it reproduce); its gradient through the inner step is "
        "computed on every inner decision and shows in *meta_gradient*.",
        "- *line-search start*: every row but *full-step line-search start* starts router i's line search at "
        "the fraction of its natural-gradient step that its last accepted step predicts at half the KL bound "
        "(mamrl's default, `corrected_step_start`); the full step, sized by a Fisher that ignores the inner "
        "step's Jacobian, overshoots the bound on a trained meta-initialisation and costs one rejected evaluation of every task per iteration. "
        "The bound checked is the same exact post-adaptation KL.",
        "- Measured from a fresh initialisation, and (rows *after N meta-iterations*, `--from-checkpoint`) from the "
        "meta-initialisation of a real run (RESULTS.md §3.1 gives the times of the whole run).",
    ]
    return close_section(lines, machine, SECTION_END)


def write_section(path: str | Path, section: str) -> None:
    """Replace (or append) this benchmark's section of a markdown file."""
    write_marked_section(path, section, SECTION_START, SECTION_END)
