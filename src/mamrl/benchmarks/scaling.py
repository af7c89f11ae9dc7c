"""`mamrl bench-scaling`: how the simulator, the learners and the sweep scale.

1. **Versus the number of routers** — b4 (12), geant (22), att (25) and Topology Zoo's TataNld
   (143 routers, 181 links, from topohub), all at one load, λ = 0.02: TataNld's shortest paths
   saturate between λ = 0.02 and 0.03 (SPA delivers 97% of its packets at 0.02, 87% at 0.03, 11%
   at 0.3), while b4, geant and att are far from saturation at 0.02. Per topology:
   * simulator router-ticks/s and packets/s with SPA, end to end and kernel only
     (`simulator.bench_one`, which also cross-checks the oracle);
   * the deep learner's rollout decisions/s and router-ticks/s and one TRPO iteration's seconds
     (`deep.bench_deep_one`);
   * one Q-routing training episode's seconds;
   * SPA's delivered fraction at that load, to show the regime.
   Topologies without a traffic matrix (topohub) get `gravity_demand_weights` (degree masses).
2. **Learning on the big topology** — the deep learner's own reward (`reward="packet"`), delivered
   fraction and sojourn time on fixed evaluation episodes before and after a few TRPO iterations on
   TataNld (`learning_check`).
3. **Sweep wall time** — the quick preset's sweep (b4; SPA, Q-routing, PG; 4 loads; 2 seeds;
   2,000 training episodes) on one local worker, two local workers and a local Ray instance of 2
   CPUs (`make_backend_executor`), and whether the three gave identical result rows (every
   column but the wall times).

The results go to a section of BENCHMARKS.md between `SECTION_START` and `SECTION_END`, with a
figure (PNG and PDF) of throughput and iteration time versus routers.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from mamrl.agents.deep_consensus import DeepConsensus, DeepConsensusConfig, finite_mean, rollout
from mamrl.algorithms import make_agent, make_policy
from mamrl.benchmarks.common import close_section, human, machine_info, markdown_table, median_time, write_section
from mamrl.benchmarks.deep import DeepBenchRow, bench_deep_one
from mamrl.benchmarks.simulator import BenchRow, BenchSettings, bench_one
from mamrl.errors import MamrlError
from mamrl.experiments import sweep
from mamrl.experiments.config import SweepConfig, check_positive, validate
from mamrl.experiments.sweep import TIMING_COLUMNS, eval_seed, format_row, run_sweep
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import Simulator
from mamrl.topologies import load_topology
from mamrl.topologies.wild import TopologyWarning, gravity_demand_weights

SECTION_START = "<!-- bench-scaling:start -->"
SECTION_END = "<!-- bench-scaling:end -->"

BIG_TOPOLOGY = "topohub:topozoo/TataNld"
"""The 100+-router topology: Tata Communications' national network (Topology Zoo; 143 routers,
181 links, connected), the only Topology Zoo network of 100+ routers that topohub ships."""

TOPOLOGIES: tuple[str, ...] = ("b4", "geant", "att", BIG_TOPOLOGY)

LOAD = 0.02
"""The load of the per-topology figures: below SPA's saturation on every topology (TataNld's is
between 0.02 and 0.03)."""

HIGH_LOAD = 0.3
"""The load of the other benchmarks; SPA's delivered fraction there is reported beside."""

FIGURE_DIR = Path("docs/results/scaling")
"""Where the figure goes, relative to the folder of the output markdown file."""
FIGURE_STEM = "scaling"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# ------------------------------------------------------------------------------ settings
def describe_sweep(spec: SweepConfig) -> str:
    """The timed sweep in words, with its number of cells."""
    cells = len(sweep.sweep_cells(spec))
    return (f"{', '.join(spec.topologies)}; {', '.join(spec.algorithms)}; loads {', '.join(f'{x:g}' for x in spec.loads)}; "
            f"seeds {', '.join(map(str, spec.seeds))}; {spec.train_episodes:,} training and {spec.eval_episodes} "
            f"evaluation episodes of {spec.horizon_ticks} ticks per cell ({cells} cells)")


@dataclass(frozen=True)
class ScalingSettings:
    topologies: tuple[str, ...] = TOPOLOGIES
    load: float = LOAD
    horizon_ticks: int = 500
    sim_batch: int = 32
    """Episodes per simulator batch (`BenchSettings.batch_size`)."""
    sim_repeats: int = 5
    deep_episodes: int = 16
    """Episodes per deep rollout / TRPO iteration (the learner's default)."""
    deep_repeats: int = 3
    q_episodes: int = 20
    """Q-routing training episodes timed (after one untimed warm-up episode)."""
    learn_topology: str = BIG_TOPOLOGY
    learn_iterations: int = 10
    learn_episodes: int = 16
    learn_eval_episodes: int = 16
    sweep: SweepConfig = field(default_factory=SweepConfig)
    """The sweep timed on each backend (default: `SweepConfig`'s, the `quick` preset's; ~25-50 s on one worker);
    its `workers` and `results` are set per run."""
    ray_cpus: int = 2
    quick: bool = False

    @classmethod
    def quick_settings(cls) -> "ScalingSettings":
        """Tiny sizes for a smoke test (seconds): b4 and a small topohub network (Abilene, 11 routers)."""
        small = "topohub:topozoo/Abilene"
        return cls(topologies=("b4", small), horizon_ticks=50, sim_batch=2, sim_repeats=1, deep_episodes=2,
                   deep_repeats=1, q_episodes=2, learn_topology=small, learn_iterations=2, learn_episodes=2,
                   learn_eval_episodes=2,
                   sweep=SweepConfig(algorithms=("spa", "q-routing"), loads=(0.1, 0.3), seeds=(0,), train_episodes=5,
                                     eval_episodes=2, horizon_ticks=50),
                   quick=True)


# ------------------------------------------------------------------------------ per topology
def demand_weights_for(topology) -> np.ndarray | None:
    """Gravity traffic (degree masses) for a topology without its own demand (no packet-size
    table: topohub, Topology Zoo files); None (uniform destinations) for the built-ins."""
    if topology.packet_sizes is not None:
        return None

    return gravity_demand_weights(topology)


def _load(name: str):
    with warnings.catch_warnings():  # topohub has no capacities: the 1 Gbit/s default is expected
        warnings.simplefilter("ignore", TopologyWarning)
        return load_topology(name)


@dataclass(frozen=True)
class ScalingRow:
    spec: str
    topology: str
    routers: int
    links: int
    load: float
    traffic: str
    """`uniform` or `gravity`."""
    spa_delivered: float
    """SPA's delivered fraction at `load` (on the simulator batch)."""
    spa_delivered_high: float
    """The same at λ = HIGH_LOAD (the other benchmarks' load), to show where saturation is."""
    sim: BenchRow
    deep: DeepBenchRow
    q_episode_s: float


def spa_delivered_fraction(params, episodes: int, seed: int = 0) -> float:
    result = Simulator(params).run_tables(make_policy("spa").routing_tables(params), seed, episodes)
    return float(result.summary()["delivered_fraction"].mean)


def q_routing_episode_seconds(params, episodes: int, repeats: int = 1, seed: int = 0) -> float:
    """Median wall time of one Q-routing training episode (one untimed warm-up episode first)."""
    agent = make_agent("q-routing")
    agent.train(params, seed, 1)
    return median_time(lambda: agent.train(params, seed, episodes), repeats) / episodes


def scaling_row(spec: str, settings: ScalingSettings, progress: Progress = _quiet) -> ScalingRow:
    """Every per-topology figure of one topology."""
    topo = _load(spec)
    weights = demand_weights_for(topo)
    params = SimParams(topo, settings.load, settings.horizon_ticks, demand_weights=weights)
    label = f"{topo.name} ({topo.num_routers} routers)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TopologyWarning)
        bench_settings = BenchSettings(topologies=(spec,), loads=(settings.load,), horizon_ticks=settings.horizon_ticks,
                                       batch_size=settings.sim_batch, oracle_episodes=1, repeats=settings.sim_repeats)
        sim = bench_one(spec, settings.load, bench_settings, demand_weights=weights)
        progress(f"{label}: simulator {human(sim.fast_router_ticks_per_s)} router-ticks/s")
        delivered = spa_delivered_fraction(params, settings.sim_batch)
        delivered_high = spa_delivered_fraction(params.replace(load_per_router=HIGH_LOAD), settings.sim_batch)
        deep = bench_deep_one(spec, settings.load, settings.deep_episodes, settings.deep_repeats, settings.horizon_ticks,
                              demand_weights=weights)
        progress(f"{label}: deep rollout {human(deep.decisions_per_s)} decisions/s, TRPO iteration {deep.iteration_s:.2f} s")
        q_s = q_routing_episode_seconds(params, settings.q_episodes)
        progress(f"{label}: Q-routing {q_s * 1e3:.1f} ms per training episode")
    return ScalingRow(spec, topo.name, topo.num_routers, topo.num_links, settings.load,
                      "uniform" if weights is None else "gravity", delivered, delivered_high, sim, deep, q_s)


# ------------------------------------------------------------------------------ learning check
@dataclass(frozen=True)
class LearningCheck:
    """The deep learner before and after a few TRPO iterations, on the same evaluation episodes."""

    topology: str
    routers: int
    links: int
    load: float
    horizon_ticks: int
    iterations: int
    episodes_per_iteration: int
    eval_episodes: int
    before: dict[str, float]
    after: dict[str, float]
    train_rewards: tuple[float, ...]
    """The learner's reward on each iteration's own training rollout."""
    seconds: float

    def lines(self) -> list[str]:
        def fmt(values: dict[str, float]) -> str:
            return (f"reward {values['reward']:.2f}, delivered {100 * values['delivered_fraction']:.1f}%, "
                    f"sojourn {values['mean_sojourn_time']:.1f} ticks")

        return [f"before: {fmt(self.before)}", f"after {self.trained}: {fmt(self.after)}"]

    @property
    def trained(self) -> str:
        return f"{self.iterations} TRPO iteration" + ("s" if self.iterations != 1 else "")


LEARN_METRICS = ("reward", "delivered_fraction", "mean_sojourn_time", "mean_delivery_time")


def learning_check(spec: str = BIG_TOPOLOGY, load: float = LOAD, iterations: int = 10, episodes: int = 16,
                   eval_episodes: int = 16, horizon: int = 500, seed: int = 0, progress: Progress = _quiet) -> LearningCheck:
    """Train the deep learner (`reward="packet"`) for `iterations` TRPO iterations of `episodes`
    episodes on traffic seed `seed`, and measure it before and after on the same `eval_episodes`
    episodes of the sweep's evaluation seed (learning frozen)."""
    start = time.perf_counter()
    topo = _load(spec)
    params = SimParams(topo, load, horizon, demand_weights=demand_weights_for(topo))
    agent = DeepConsensus(DeepConsensusConfig(episodes_per_iteration=episodes, reward="packet"))
    agent._ensure(params, seed)  # the initial policies, as `train` would draw them for this seed
    sim = Simulator(params)

    def measure() -> dict[str, float]:
        data = rollout(agent.policy.param_dict(), agent.policy.valid, params, eval_seed(seed), eval_episodes,
                       reward=agent.cfg.reward, loss_penalty=agent.cfg.loss_penalty, loss_honest=agent.cfg.loss_honest, sim=sim)
        out = {"reward": agent.mean_return(params, data)}
        for metric in LEARN_METRICS[1:]:
            out[metric] = finite_mean(data.metrics[metric])
        return out

    before = measure()
    progress(f"{topo.name}: deep learner before training: reward {before['reward']:.2f}, "
             f"delivered {100 * before['delivered_fraction']:.1f}%")
    rewards = []
    for k in range(iterations):
        entry, _ = agent.train_iteration(params, seed, episodes, sim=sim)
        rewards.append(entry.reward)
        progress(f"{topo.name}: TRPO iteration {k + 1}/{iterations}: reward {entry.reward:.2f}, "
                 f"delivered {100 * entry.delivered_fraction:.1f}% ({entry.rollout_seconds + entry.update_seconds:.1f} s)")
    after = measure()
    return LearningCheck(topo.name, topo.num_routers, topo.num_links, load, horizon, iterations, episodes, eval_episodes,
                         before, after, tuple(rewards), time.perf_counter() - start)


# ------------------------------------------------------------------------------ sweep backends
@dataclass(frozen=True)
class SweepTiming:
    label: str
    backend: str
    workers: int
    cells: int
    wall_s: float | None
    """Make the executor, run the sweep, close the executor; None = not run."""
    overhead_s: float | None
    """Of which making (Ray: starting the instance) and closing the executor."""
    note: str = ""
    """Why it did not run, or where it ran."""
    rows: tuple[str, ...] = ()
    """The result rows as CSV lines with the wall-time columns blanked (for the identity check)."""

    @property
    def ran(self) -> bool:
        return self.wall_s is not None


BACKEND_RUNS: tuple[tuple[str, str, int], ...] = (
    ("local (1 worker)", "local", 1),
    ("local (2 workers)", "local", 2),
)
"""The local runs; the Ray run (`ray_cpus` CPUs) comes after them."""


def comparable_rows(rows: Sequence[dict]) -> tuple[str, ...]:
    """Rows as the results file writes them, with the wall-time columns zeroed."""
    return tuple(format_row({**row, **{c: 0.0 for c in TIMING_COLUMNS}}) for row in rows)


def time_sweep(spec: SweepConfig, backend: str, workers: int, results: Path, label: str = "") -> SweepTiming:
    """One run of the sweep `spec` on `backend` with `workers`, into a new results file."""
    config = validate(replace(spec, workers=workers, results=str(results)))
    cells = len(sweep.sweep_cells(config))
    label = label or f"{backend}, {workers} worker(s)"
    start = time.perf_counter()
    try:
        executor = sweep.make_cell_executor(backend, workers)
    except MamrlError as exc:  # Ray missing, or unable to start: reported in the row
        if backend != "ray":
            raise
        return SweepTiming(label, backend, workers, cells, None, None, f"not run: {exc}")
    made = time.perf_counter()
    try:
        outcome = run_sweep(config, executor=executor)
    except Exception as exc:
        executor.close(wait=False)
        if backend != "ray":
            raise
        # A Ray failure (a lost worker, a broken instance) should not discard the other measurements.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return SweepTiming(label, backend, workers, cells, None, None, f"not run: failed ({reason})")
    except BaseException:
        executor.close(wait=False)
        raise
    swept = time.perf_counter()
    executor.close()
    end = time.perf_counter()
    if not outcome.complete:
        raise MamrlError(f"bench-scaling: the sweep on {label} did not finish")
    where = getattr(executor, "label", "")
    return SweepTiming(label, backend, workers, cells, end - start, (made - start) + (end - swept), where,
                       comparable_rows(outcome.rows))


def time_sweeps(spec: SweepConfig, *, skip_ray: bool = False, ray_cpus: int = 2, workdir: Path | None = None,
                progress: Progress = _quiet) -> list[SweepTiming]:
    """The sweep on one and two local workers and on a local Ray instance (`ray_cpus` CPUs)."""
    runs = [(label, b, w) for label, b, w in BACKEND_RUNS if b == "local"]
    runs.append((f"Ray (local instance, {ray_cpus} CPUs)", "ray", ray_cpus))
    cells = len(sweep.sweep_cells(spec))
    out = []
    with tempfile.TemporaryDirectory(prefix="mamrl-bench-scaling-", dir=workdir) as tmp:
        for k, (label, backend, workers) in enumerate(runs):
            if backend == "ray" and skip_ray:
                out.append(SweepTiming(label, backend, workers, cells, None, None, "not run: skipped (--skip-ray)"))
                progress(f"sweep on {label}: skipped (--skip-ray)")
                continue
            progress(f"sweep on {label}: {cells} cells ...")
            timing = time_sweep(spec, backend, workers, Path(tmp) / f"sweep-{k}.csv", label)
            out.append(timing)
            progress(f"sweep on {label}: " + (f"{timing.wall_s:.1f} s" if timing.ran else timing.note))
    return out


def identical(timings: Sequence[SweepTiming]) -> bool | None:
    """Whether every sweep that ran gave the same rows (None if fewer than two ran)."""
    ran = [t for t in timings if t.ran]
    if len(ran) < 2:
        return None
    return all(t.rows == ran[0].rows for t in ran[1:])


def identical_line(timings: Sequence[SweepTiming]) -> str:
    """`identical results: yes|no (...)`."""
    ran = [t for t in timings if t.ran]
    same = identical(timings)
    verdict = "n/a" if same is None else ("yes" if same else "no")
    compared = "; ".join(t.label for t in ran)
    text = f"identical results: {verdict}"
    if ran:
        text += f" ({compared}: {len(ran[0].rows)} rows each, every column but the wall times"
        missing = [t.label for t in timings if not t.ran]
        text += f"; not run: {'; '.join(missing)})" if missing else ")"
    return text


# ------------------------------------------------------------------------------ the whole bench
@dataclass
class ScalingResult:
    settings: ScalingSettings
    rows: list[ScalingRow]
    learning: LearningCheck
    sweeps: list[SweepTiming]
    seconds: float = 0.0


def run_scaling(settings: ScalingSettings, *, skip_ray: bool = False, progress: Progress = _quiet) -> ScalingResult:
    start = time.perf_counter()
    rows = [scaling_row(spec, settings, progress) for spec in settings.topologies]
    learning = learning_check(settings.learn_topology, settings.load, settings.learn_iterations, settings.learn_episodes,
                              settings.learn_eval_episodes, settings.horizon_ticks, progress=progress)
    sweeps = time_sweeps(settings.sweep, skip_ray=skip_ray, ray_cpus=settings.ray_cpus, progress=progress)
    return ScalingResult(settings, rows, learning, sweeps, time.perf_counter() - start)


# ------------------------------------------------------------------------------ report
TOPOLOGY_COLUMNS = ("topology", "routers", "links", "traffic", "SPA delivered", f"SPA delivered at λ = {HIGH_LOAD:g}", "simulator router-ticks/s",
                    "simulator pkts/s", "kernel-only router-ticks/s", "deep rollout decisions/s",
                    "deep rollout router-ticks/s", "TRPO iteration (s)", "of which update (s)",
                    "Q-routing training episode (ms)")


def topology_cells(row: ScalingRow) -> list[str]:
    return [row.topology, str(row.routers), str(row.links), row.traffic, f"{100 * row.spa_delivered:.1f}%",
            f"{100 * row.spa_delivered_high:.1f}%",
            human(row.sim.fast_router_ticks_per_s), human(row.sim.fast_packets_per_s),
            human(row.sim.kernel_router_ticks_per_s), human(row.deep.decisions_per_s),
            human(row.deep.router_ticks_per_s), f"{row.deep.iteration_s:.2f}", f"{row.deep.update_s:.2f}",
            f"{row.q_episode_s * 1e3:.1f}"]


CONSOLE_TOPOLOGY_COLUMNS = ("topology", "routers", "links", "SPA\ndelivered", "simulator\nrouter-\nticks/s",
                            "deep\ndecisions/s", "TRPO\niteration\n(s)", "Q-routing\nepisode\n(ms)")
CONSOLE_TOPOLOGY_CELLS = (0, 1, 2, 4, 6, 9, 11, 13)
"""The columns (indices of `topology_cells`) shown on the terminal; the markdown has them all."""


def console_topology_cells(row: ScalingRow) -> list[str]:
    cells = topology_cells(row)
    return [cells[k] for k in CONSOLE_TOPOLOGY_CELLS]


SWEEP_COLUMNS = ("backend", "workers", "cells", "wall time (s)", "of which start-up and shut-down (s)", "speed-up vs 1 worker")


def sweep_cells(timings: Sequence[SweepTiming]) -> list[list[str]]:
    base = next((t.wall_s for t in timings if t.ran and t.backend == "local" and t.workers == 1), None)
    out = []
    for t in timings:
        if not t.ran:
            out.append([t.label, str(t.workers), str(t.cells), t.note, "", ""])
            continue
        speedup = f"{base / t.wall_s:.2f}x" if base else ""
        out.append([t.label, str(t.workers), str(t.cells), f"{t.wall_s:.1f}", f"{t.overhead_s:.1f}", speedup])
    return out


LEARN_COLUMNS = ("", "reward (packet, higher is better)", "delivered fraction", "mean sojourn time (ticks)",
                 "mean delivery time (ticks)")


def learning_cells(check: LearningCheck) -> list[list[str]]:
    def cells(name: str, v: dict[str, float]) -> list[str]:
        return [name, f"{v['reward']:.2f}", f"{100 * v['delivered_fraction']:.1f}%", f"{v['mean_sojourn_time']:.1f}",
                f"{v['mean_delivery_time']:.1f}"]

    b, a = check.before, check.after
    change = ["change", f"{a['reward'] - b['reward']:+.2f}", f"{100 * (a['delivered_fraction'] - b['delivered_fraction']):+.1f} pp",
              f"{a['mean_sojourn_time'] - b['mean_sojourn_time']:+.1f}", f"{a['mean_delivery_time'] - b['mean_delivery_time']:+.1f}"]
    return [cells("initial policies", b), cells(f"after {check.trained}", a), change]


def figure_path(output: Path, suffix: str = ".png") -> Path:
    return Path(output).parent / FIGURE_DIR / f"{FIGURE_STEM}{suffix}"


def plot_scaling(result: ScalingResult):
    """Throughput (left) and time per step (right) versus routers, log-log."""
    # lazy: matplotlib only when drawing
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    rows = sorted(result.rows, key=lambda r: r.routers)
    x = [r.routers for r in rows]
    fig = Figure(figsize=(11.0, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    series_left = [
        ("simulator, SPA, end to end", [r.sim.fast_router_ticks_per_s for r in rows], "o", "#1f77b4"),
        ("simulator, SPA, kernel only", [r.sim.kernel_router_ticks_per_s for r in rows], "s", "#17becf"),
        ("deep learner rollout", [r.deep.router_ticks_per_s for r in rows], "*", "#d62728"),
    ]
    for label, y, marker, colour in series_left:
        left.plot(x, y, marker=marker, color=colour, label=label)
    left.set_ylabel("router-ticks per second")
    left.set_title("Throughput")
    series_right = [
        (f"TRPO iteration ({result.settings.deep_episodes} episodes)", [r.deep.iteration_s for r in rows], "*", "#d62728"),
        ("  of which rollout", [r.deep.rollout_s for r in rows], "v", "#ff9896"),
        ("Q-routing training episode", [r.q_episode_s for r in rows], "s", "#ff7f0e"),
    ]
    for label, y, marker, colour in series_right:
        right.plot(x, y, marker=marker, color=colour, label=label)
    right.set_ylabel("seconds")
    right.set_title("Time per training step")
    ticks = sorted(set(x))
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FixedFormatter([str(t) for t in ticks]))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("routers (log scale)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for k, r in enumerate(rows):  # alternate above and below: geant (22) and att (25) are close
        left.annotate(r.topology.split("/")[-1], (r.routers, r.sim.fast_router_ticks_per_s), textcoords="offset points",
                      xytext=(3, 6 if k % 2 == 0 else -12), fontsize=8)
    s = result.settings
    fig.suptitle(f"Scaling with the number of routers (λ = {s.load:g}, horizon {s.horizon_ticks} ticks"
                 + (", --quick sizes" if s.quick else "") + ")", fontsize=10.5)
    return fig


def write_figures(result: ScalingResult, output: Path) -> list[Path]:
    # lazy: matplotlib only when drawing
    from mamrl.plotting.topology import save_figure

    fig = plot_scaling(result)
    return [save_figure(fig, figure_path(output, suffix)) for suffix in (".png", ".pdf")]


def markdown_section(result: ScalingResult, command: str, machine: dict[str, str], figure: str | None = None) -> str:
    s = result.settings
    date = _dt.datetime.now().astimezone().replace(microsecond=0).isoformat()
    big = max(result.rows, key=lambda r: r.routers)
    lines = [
        SECTION_START,
        "## Scaling",
        "",
        f"Command: `{command}`  ",
        f"Date: {date}; torch {torch.__version__}, {torch.get_num_threads()} threads; total wall time {result.seconds:.0f} s"
        + ("; **--quick sizes (a smoke test, not measurements)**" if s.quick else "") + ".",
        "",
        f"### Versus the number of routers (λ = {s.load:g}, horizon {s.horizon_ticks} ticks)",
        "",
        *markdown_table(TOPOLOGY_COLUMNS, [topology_cells(r) for r in result.rows]),
        "",
        f"- One load for all topologies, λ = {s.load:g} packets per router per tick (the other benchmarks use 0.1-0.5), "
        "low enough for the 100+-router network: shortest-path routing saturates TataNld between λ = 0.02 and 0.03 "
        "(long paths through few routers). Here SPA delivers "
        f"{100 * big.spa_delivered:.0f}% of the packets of the largest topology, {big.topology}, at λ = {s.load:g} and "
        f"{100 * big.spa_delivered_high:.0f}% at λ = {HIGH_LOAD:g}. *SPA delivered*: SPA's delivered fraction on the "
        "simulator batch's episodes.",
        "- *traffic*: built-ins create packets for uniformly chosen destinations with their TEAVAR packet sizes; "
        "topohub topologies have no traffic matrix, so destinations follow `gravity_demand_weights` (degree masses) "
        "and every packet has size 1 (capacities default to 1 Gbit/s, so links never bind).",
        f"- *simulator*: `benchmarks.simulator.bench_one` with SPA, batches of {s.sim_batch} episodes, median of {s.sim_repeats} "
        "timed repeat(s) after a warm-up (end to end = traffic drawing + kernel; kernel only on pre-drawn traffic), one core.",
        f"- *deep rollout*, *TRPO iteration*: `benchmarks.deep.bench_deep_one` with {s.deep_episodes} episodes in parallel, "
        "5x128 policies per router, initial policies (decisions = forwarding decisions routers made).",
        f"- *Q-routing training episode*: wall time of one training episode (mean over {s.q_episodes} after a warm-up episode).",
        "- The simulator and Q-routing run on one core; the deep learner's networks use torch's threads (above).",
    ]
    if figure:
        lines += ["", f"![Throughput and time per training step versus routers]({figure})"]
    check = result.learning
    lines += [
        "",
        f"### The deep learner trains on {check.topology} ({check.routers} routers, {check.links} links)",
        "",
        f"λ = {check.load:g}, reward `packet`, {check.trained} of {check.episodes_per_iteration} "
        f"episodes ({check.seconds:.0f} s in all); both rows on the same {check.eval_episodes} evaluation episodes "
        "(the sweep's evaluation seed), learning frozen.",
        "",
        *markdown_table(LEARN_COLUMNS, learning_cells(check)),
        "",
        "- Training reward per iteration: " + ", ".join(f"{r:.2f}" for r in check.train_rewards) + ".",
        "",
        "### Sweep wall time by backend",
        "",
        f"The same sweep on each: {describe_sweep(s.sweep)}. Each run writes a new results file.",
        "",
        *markdown_table(SWEEP_COLUMNS, sweep_cells(result.sweeps)),
        "",
        f"{identical_line(result.sweeps)}.",
        "",
        "- *wall time*: making the executor, `run_sweep`, closing the executor. One worker runs the cells in this "
        "process (as `mamrl sweep -j 1`); two workers in a process pool, whose start (forkserver, importing mamrl "
        "and torch, loading numba's cache) is inside `run_sweep`; Ray starts a private local instance "
        "(`make_backend_executor(\"ray\", 2)`), whose start and shut-down are the *start-up and shut-down* column, "
        "and its workers import mamrl on their first cell.",
    ]
    return close_section(lines, machine, SECTION_END)


def write_report(result: ScalingResult, output: Path, command: str) -> list[Path]:
    """The figures (PNG, PDF) under `docs/results/scaling/` next to `output`, then the section."""
    output = Path(output)
    figures = write_figures(result, output)
    reference = Path(os.path.relpath(figures[0], output.parent)).as_posix()
    write_section(output, markdown_section(result, command, machine_info(single_core=False), reference),
                  SECTION_START, SECTION_END)
    return [output, *figures]


def settings_for(*, quick: bool = False, learn_iterations: int | None = None) -> ScalingSettings:
    """`mamrl bench-scaling`'s settings: the full or the quick ones, with the deep learner's TRPO
    iterations if given (>= 1)."""
    settings = ScalingSettings.quick_settings() if quick else ScalingSettings()
    if learn_iterations is not None:
        check_positive(learn_iterations, "--learn-iterations")
        settings = replace(settings, learn_iterations=learn_iterations)
    return settings


def console_tables(result: ScalingResult, settings: ScalingSettings) -> list[tuple[str, Sequence[str], list[list[str]]]]:
    """(title, columns, rows) of each console table."""
    return [
        (f"Versus routers (λ = {settings.load:g})", CONSOLE_TOPOLOGY_COLUMNS, [console_topology_cells(r) for r in result.rows]),
        (f"Deep learner on {result.learning.topology}", LEARN_COLUMNS, learning_cells(result.learning)),
        ("Sweep wall time", SWEEP_COLUMNS, sweep_cells(result.sweeps)),
    ]


__all__ = [
    "console_tables",
    "settings_for",
    "BIG_TOPOLOGY",
    "LOAD",
    "SECTION_END",
    "SECTION_START",
    "TOPOLOGIES",
    "LearningCheck",
    "ScalingResult",
    "ScalingRow",
    "ScalingSettings",
    "SweepTiming",
    "demand_weights_for",
    "identical",
    "identical_line",
    "learning_check",
    "markdown_section",
    "plot_scaling",
    "run_scaling",
    "scaling_row",
    "time_sweeps",
    "write_report",
]
