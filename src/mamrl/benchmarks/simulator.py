"""`mamrl bench`: how fast the compiled simulator is, against the slow Python oracle.

For each topology (b4, geant, att) and load (0.1, 0.3, 0.5), with shortest-path routing (SPA) and
horizon 500, in one process on one core (the kernel is not parallel):

* **fast, end to end** — `Simulator.run_tables` on a batch of episodes, which includes drawing the
  traffic, allocating the state and running the compiled kernel;
* **fast, kernel only** — `kernel.run_table_episodes` alone, on traffic drawn beforehand;
* **oracle** — `oracle.run_oracle_episode` with `table_decider` on one or two episodes.

Figures are router-ticks per second (episodes x horizon x routers / time) and packets forwarded per
second (successful link sends: the per-link `LK_SENT` counters of the fast core, the packets' hop
counts in the oracle; the two are checked to agree on the same episode). Each figure is the median
of `repeats` timed runs after an untimed warm-up, so numba compilation (or loading its cache) is
never timed. Performance is reported here, never asserted by the tests.

A second table (`run_queue_bench`) compares queue disciplines and routers side by side on one
workload (att at λ = 0.2): the FIFO kernel with SPA tables, the per-destination kernel with SPA
tables and with backpressure (classic and shortest-path-biased), and the oracle running each rule.
Its variants are timed in turn within every repeat, so a load change on a shared machine hits
them alike.

A third table (`run_solver_bench`) times the yardsticks' solvers as `mamrl capacity` and the
`min-delay` policy call them: the capacity LP (λ* and the binding routers) and the minimum-delay
routing at 0.9 λ* (its own capacity LP, flow deviation and split ratios), on b4, geant, att and
the 143-router TataNld (topohub), uniform destinations.

`mamrl bench --output FILE` writes its section of FILE between `SECTION_START` and `SECTION_END`
(the other benchmarks' sections are kept).
"""

from __future__ import annotations

import datetime as _dt
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mamrl.agents.backpressure import SP_BACKPRESSURE_BIAS
from mamrl.agents.min_delay import min_delay_flow, min_delay_probabilities
from mamrl.agents.shortest_path import hop_distances
from mamrl.algorithms import make_policy
from mamrl.benchmarks.common import human, machine_info, markdown_table, median_time, write_section
from mamrl.errors import MamrlError
from mamrl.sim import backpressure_kernel, kernel
from mamrl.sim.capacity import capacity_bound
from mamrl.sim.oracle import Backpressure, run_oracle_episode, table_decider
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import Simulator
from mamrl.sim.traffic import Traffic, draw_policy_uniforms, draw_traffic
from mamrl.topologies import load_topology

TOPOLOGIES: tuple[str, ...] = ("b4", "geant", "att")
LOADS: tuple[float, ...] = (0.1, 0.3, 0.5)
SECTION_START = "<!-- bench:start -->"
SECTION_END = "<!-- bench:end -->"


@dataclass(frozen=True)
class BenchSettings:
    """What one benchmark run measures."""

    topologies: tuple[str, ...] = TOPOLOGIES
    loads: tuple[float, ...] = LOADS
    horizon_ticks: int = 500
    batch_size: int = 32
    """Episodes per fast-simulator batch."""
    oracle_episodes: int = 2
    repeats: int = 5
    seed: int = 0
    policy: str = "spa"

    @classmethod
    def quick(cls, repeats: int = 2) -> "BenchSettings":
        """A small configuration for tests and smoke runs (seconds, not minutes)."""
        return cls(horizon_ticks=100, batch_size=4, oracle_episodes=1, repeats=repeats)

    def check(self) -> None:
        for name, value in (
            ("horizon", self.horizon_ticks),
            ("batch size", self.batch_size),
            ("oracle episodes", self.oracle_episodes),
            ("repeats", self.repeats),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MamrlError(f"bench: {name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class BenchRow:
    """The figures of one (topology, load)."""

    topology: str
    routers: int
    load: float
    fast_router_ticks_per_s: float
    """End to end (traffic drawing + state + kernel), median over repeats."""
    fast_packets_per_s: float
    kernel_router_ticks_per_s: float
    """Kernel alone on pre-drawn traffic, median over repeats."""
    kernel_packets_per_s: float
    oracle_router_ticks_per_s: float
    oracle_packets_per_s: float
    fast_seconds: float
    """Median wall time of one end-to-end batch."""
    kernel_seconds: float
    oracle_seconds: float
    """Median wall time of the oracle's episodes (all of them, one repeat)."""
    packets_forwarded_per_episode: float
    """Mean successful link sends per episode in the fast batch (the work done)."""

    @property
    def speedup(self) -> float:
        """Fast end to end / oracle, in router-ticks per second."""
        return self.fast_router_ticks_per_s / self.oracle_router_ticks_per_s

    @property
    def kernel_speedup(self) -> float:
        return self.kernel_router_ticks_per_s / self.oracle_router_ticks_per_s


def bench_one(topology_name: str, load: float, settings: BenchSettings, *, demand_weights: np.ndarray | None = None) -> BenchRow:
    """Measure one (topology, load); `demand_weights` as for `SimParams` (default: uniform destinations)."""
    topology = load_topology(topology_name)
    params = SimParams(topology, load, horizon_ticks=settings.horizon_ticks, demand_weights=demand_weights)
    tables = make_policy(settings.policy).routing_tables(params)
    if tables.stochastic:
        raise MamrlError("bench: the kernel-only timing needs a deterministic policy (spa)")
    sim = Simulator(params)
    n, h, nb = topology.num_routers, settings.horizon_ticks, settings.batch_size
    seed = settings.seed

    # Fast, end to end. The warm-up run compiles (or loads from numba's cache) every kernel.
    warm = sim.run_tables(tables, seed, nb)
    forwarded = int(warm.state.link[:, kernel.LK_SENT, :].sum())
    fast_s = median_time(lambda: sim.run_tables(tables, seed, nb), settings.repeats)

    # Kernel only, on the same pre-drawn traffic; state allocation is outside the timed region.
    traffic = draw_traffic(params, seed, nb)
    no_uniforms = np.zeros((1, 1, 1), dtype=np.float64)
    kernel_times = []
    for _ in range(settings.repeats):
        state = kernel.make_state(sim.net, traffic)
        start = time.perf_counter()
        kernel.run_table_episodes(sim.net, state, tables.cumulative, tables.start_ticks, no_uniforms, False)
        kernel_times.append(time.perf_counter() - start)
        if int(state.link[:, kernel.LK_SENT, :].sum()) != forwarded:
            raise AssertionError("bench: kernel-only run forwarded a different number of packets")
    kernel_s = statistics.median(kernel_times)

    # Oracle on the first episodes of the same seed (episode k's traffic depends only on (seed, k)).
    k = settings.oracle_episodes
    oracle_traffic = draw_traffic(params, seed, k)
    decide = table_decider(tables.cumulative, tables.start_ticks, None, topology.degree)
    episodes = [
        (
            oracle_traffic.created_tick[b, : oracle_traffic.count[b]],
            oracle_traffic.src[b, : oracle_traffic.count[b]],
            oracle_traffic.dst[b, : oracle_traffic.count[b]],
            oracle_traffic.size[b, : oracle_traffic.count[b]],
        )
        for b in range(k)
    ]

    def run_oracle() -> int:
        sent = 0
        for created, src, dst, size in episodes:
            result = run_oracle_episode(params, created, src, dst, size, decide)
            sent += sum(p.hops for p in result.packets)
        return sent

    oracle_forwarded = run_oracle()  # warm-up, and a cross-check of the two simulators
    check = sim.run_tables(tables, seed, k)
    fast_forwarded = int(check.state.link[:, kernel.LK_SENT, :].sum())
    if oracle_forwarded != fast_forwarded:
        raise AssertionError(
            f"bench: oracle forwarded {oracle_forwarded} packets, fast core {fast_forwarded}, on the same episodes"
        )
    oracle_s = median_time(run_oracle, settings.repeats)

    fast_ticks = nb * h * n
    oracle_ticks = settings.oracle_episodes * h * n
    return BenchRow(
        topology=topology.name,
        routers=n,
        load=float(load),
        fast_router_ticks_per_s=fast_ticks / fast_s,
        fast_packets_per_s=forwarded / fast_s,
        kernel_router_ticks_per_s=fast_ticks / kernel_s,
        kernel_packets_per_s=forwarded / kernel_s,
        oracle_router_ticks_per_s=oracle_ticks / oracle_s,
        oracle_packets_per_s=oracle_forwarded / oracle_s,
        fast_seconds=fast_s,
        kernel_seconds=kernel_s,
        oracle_seconds=oracle_s,
        packets_forwarded_per_episode=forwarded / nb,
    )


QUEUE_BENCH_TOPOLOGY, QUEUE_BENCH_LOAD = "att", 0.2
"""The workload of the queue-discipline table."""


@dataclass(frozen=True)
class QueueBenchRow:
    """One variant of the queue-discipline table."""

    variant: str
    simulator: str
    """"kernel" or "oracle"."""
    router_ticks_per_s: float
    """Median over repeats, on pre-drawn traffic (state allocation not timed)."""
    packets_per_s: float
    """Successful link sends per second."""
    vs_fifo_kernel: float
    """This variant's router-ticks/s over the FIFO kernel's (SPA tables)."""
    kernel_over_oracle: float | None
    """For a kernel row: its router-ticks/s over the oracle's running the same rule (None if not measured)."""


def run_queue_bench(settings: BenchSettings, on_row: Callable[[QueueBenchRow], None] | None = None) -> list[QueueBenchRow]:
    """The queue-discipline table on att at λ = 0.2 (see the module docstring)."""
    settings.check()
    topology = load_topology(QUEUE_BENCH_TOPOLOGY)
    fifo = SimParams(topology, QUEUE_BENCH_LOAD, horizon_ticks=settings.horizon_ticks)
    per_dest = fifo.replace(queue_discipline="per-destination")
    n, h, nb, k = topology.num_routers, settings.horizon_ticks, settings.batch_size, settings.oracle_episodes
    tables = make_policy("spa").routing_tables(fifo)
    no_uniforms = np.zeros((1, 1, 1), dtype=np.float64)
    hops = np.ascontiguousarray(hop_distances(topology), dtype=np.int64)
    nets = {"fifo": kernel.make_net(fifo), "per-destination": kernel.make_net(per_dest)}
    scratch = backpressure_kernel.backpressure_scratch(nets["per-destination"])

    # A variant: (name, queue discipline, routing): "spa" tables or a backpressure bias.
    variants: list[tuple[str, str, str | float]] = [
        ("fifo + spa tables", "fifo", "spa"),
        ("per-dest + spa tables", "per-destination", "spa"),
        ("per-dest + backpressure η=0", "per-destination", 0.0),
        (f"per-dest + sp-backpressure η={SP_BACKPRESSURE_BIAS:g}", "per-destination", SP_BACKPRESSURE_BIAS),
    ]

    def run_kernel(discipline: str, routing: str | float, traffic: Traffic, uniforms: np.ndarray) -> tuple[float, int]:
        """(seconds, packets forwarded) of the compiled driver; the state is allocated untimed."""
        state = kernel.make_state(nets[discipline], traffic)
        start = time.perf_counter()
        if routing == "spa":
            kernel.run_table_episodes(nets[discipline], state, tables.cumulative, tables.start_ticks, no_uniforms, False)
        else:
            backpressure_kernel.run_backpressure_episodes(nets[discipline], state, hops, float(routing), uniforms, scratch)
        return time.perf_counter() - start, int(state.link[:, kernel.LK_SENT, :].sum())

    oracle_traffic = draw_traffic(fifo, settings.seed, k)
    oracle_uniforms = draw_policy_uniforms(settings.seed, k, h, n)
    decide = table_decider(tables.cumulative, tables.start_ticks, None, topology.degree)

    def run_oracle(discipline: str, routing: str | float) -> tuple[float, int]:
        """(seconds, packets forwarded) of the oracle on the first `oracle_episodes` episodes."""
        params = per_dest if discipline == "per-destination" else fifo
        start = time.perf_counter()
        sent = 0
        for b in range(k):
            c = int(oracle_traffic.count[b])
            how = {"decide": decide} if routing == "spa" else {"backpressure": Backpressure(float(routing), oracle_uniforms[b])}
            result = run_oracle_episode(params, oracle_traffic.created_tick[b, :c], oracle_traffic.src[b, :c],
                                        oracle_traffic.dst[b, :c], oracle_traffic.size[b, :c], **how)
            sent += sum(p.hops for p in result.packets)
        return time.perf_counter() - start, sent

    # The oracle runs each routing rule once (per-destination queues with SPA tables serve the same
    # packets as FIFO queues: the first row's oracle stands for both).
    oracle_of = {name: (discipline, routing) for name, discipline, routing in variants if name != variants[1][0]}
    traffic = draw_traffic(fifo, settings.seed, nb)
    uniforms = draw_policy_uniforms(settings.seed, nb, h, n)
    forwarded: dict[str, int] = {}
    for name, discipline, routing in variants:
        # Warm-up (compilation, or numba's cache), and a cross-check of the kernel against the oracle.
        forwarded[name] = run_kernel(discipline, routing, traffic, uniforms)[1]
        if name in oracle_of:
            _, kernel_sent = run_kernel(discipline, routing, oracle_traffic, oracle_uniforms)
            if run_oracle(discipline, routing)[1] != kernel_sent:
                raise AssertionError(f"bench: the oracle and the kernel forwarded different numbers of packets ({name})")
    times: dict[str, list[float]] = {name: [] for name, *_ in variants}
    oracle_times: dict[str, list[float]] = {name: [] for name in oracle_of}
    oracle_sent: dict[str, int] = {}
    for _ in range(settings.repeats):
        for name, discipline, routing in variants:
            times[name].append(run_kernel(discipline, routing, traffic, uniforms)[0])
            if name in oracle_of:
                seconds, oracle_sent[name] = run_oracle(discipline, routing)
                oracle_times[name].append(seconds)

    ticks, oracle_ticks = nb * h * n, k * h * n
    fifo_rate = ticks / statistics.median(times[variants[0][0]])
    rows: list[QueueBenchRow] = []
    for name, _, routing in variants:
        rate = ticks / statistics.median(times[name])
        oracle_name = name if name in oracle_of else variants[0][0]
        oracle_rate = oracle_ticks / statistics.median(oracle_times[oracle_name])
        rows.append(QueueBenchRow(name, "kernel", rate, forwarded[name] / statistics.median(times[name]),
                                  rate / fifo_rate, rate / oracle_rate))
    for name in oracle_of:
        seconds = statistics.median(oracle_times[name])
        rows.append(QueueBenchRow(name, "oracle", oracle_ticks / seconds, oracle_sent[name] / seconds,
                                  oracle_ticks / seconds / fifo_rate, None))
    if on_row is not None:
        for row in rows:
            on_row(row)
    return rows


QUEUE_COLUMNS: tuple[str, ...] = ("variant", "simulator", "router-ticks/s", "pkts/s", "× FIFO kernel", "kernel / oracle")
QUEUE_CONSOLE_COLUMNS: tuple[str, ...] = ("variant", "", "router-\nticks/s", "pkts/s", "× fifo\nkernel", "kernel/\noracle")
"""QUEUE_COLUMNS as headers that fit an 80-column terminal."""


def queue_row_cells(row: QueueBenchRow) -> list[str]:
    return [
        row.variant,
        row.simulator,
        human(row.router_ticks_per_s),
        human(row.packets_per_s),
        f"{row.vs_fifo_kernel:.3g}",
        "" if row.kernel_over_oracle is None else f"{row.kernel_over_oracle:.0f}x",
    ]


SOLVER_TOPOLOGIES: tuple[str, ...] = ("b4", "geant", "att", "topohub:topozoo/TataNld")
SOLVER_LOAD_SHARE = 0.9
"""min-delay is timed at this share of λ*."""


@dataclass(frozen=True)
class SolverBenchRow:
    """The yardsticks' solvers on one topology."""

    topology: str
    routers: int
    links: int
    max_load: float
    """λ*."""
    capacity_s: float
    """`capacity_bound` (λ* and the binding routers), median seconds."""
    min_delay_s: float
    """`min_delay_probabilities` at SOLVER_LOAD_SHARE · λ*, median seconds (its capacity LP included)."""
    min_delay_iterations: int
    """Flow-deviation iterations to a relative gap of 1e-4."""


def run_solver_bench(topologies: tuple[str, ...], repeats: int,
                     on_row: Callable[[SolverBenchRow], None] | None = None) -> tuple[list[SolverBenchRow], list[str]]:
    """(rows, notes): the third table; a topology that cannot be loaded (topohub not installed) is
    left out with a note."""
    rows, notes = [], []
    for spec in topologies:
        try:
            with warnings.catch_warnings():  # topohub has no capacities: the 1 Gbit/s default is expected
                warnings.simplefilter("ignore")
                topology = load_topology(spec)
        except MamrlError as exc:
            notes.append(f"{spec} not measured: {exc}")
            continue
        bound = capacity_bound(topology)
        load = SOLVER_LOAD_SHARE * bound.max_load
        iterations = min_delay_flow(topology, load).iterations  # also the untimed warm-up (numba)
        capacity_s = median_time(lambda: capacity_bound(topology), repeats)
        min_delay_s = median_time(lambda: min_delay_probabilities(topology, load), repeats)
        row = SolverBenchRow(topology.name, topology.num_routers, topology.num_links, bound.max_load, capacity_s,
                             min_delay_s, iterations)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows, notes


SOLVER_COLUMNS = ("topology", "routers", "links", "λ*", "capacity LP (s)", f"min-delay at {SOLVER_LOAD_SHARE:g} λ* (s)",
                  "flow-deviation iterations")


def solver_row_cells(row: SolverBenchRow) -> list[str]:
    return [row.topology, str(row.routers), str(row.links), f"{row.max_load:.4g}", f"{row.capacity_s:.2f}",
            f"{row.min_delay_s:.2f}", str(row.min_delay_iterations)]


def run_bench(settings: BenchSettings, on_row: Callable[[BenchRow], None] | None = None) -> list[BenchRow]:
    """Measure every (topology, load) of `settings`, in order."""
    settings.check()
    rows = []
    for name in settings.topologies:
        for load in settings.loads:
            row = bench_one(name, load, settings)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


# ------------------------------------------------------------------------------ reporting
COLUMNS: tuple[str, ...] = (
    "topology",
    "λ",
    "fast router-ticks/s",
    "fast pkts/s",
    "kernel-only router-ticks/s",
    "kernel-only pkts/s",
    "oracle router-ticks/s",
    "oracle pkts/s",
    "kernel / oracle",
    "fast / oracle",
)


CONSOLE_COLUMNS: tuple[str, ...] = (
    "topology",
    "λ",
    "fast\nrouter-\nticks/s",
    "kernel\nrouter-\nticks/s",
    "kernel\npkts/s",
    "oracle\nrouter-\nticks/s",
    "kernel/\noracle",
    "fast/\noracle",
)
CONSOLE_CELLS = (0, 1, 2, 4, 5, 6, 8, 9)
"""The columns (indices CONSOLE_CELLS of row_cells) shown on an 80-column terminal; the markdown
report has them all."""


def console_cells(row: BenchRow) -> list[str]:
    cells = row_cells(row)
    return [cells[k] for k in CONSOLE_CELLS]


def row_cells(row: BenchRow) -> list[str]:
    return [
        f"{row.topology} ({row.routers})",
        f"{row.load:g}",
        human(row.fast_router_ticks_per_s),
        human(row.fast_packets_per_s),
        human(row.kernel_router_ticks_per_s),
        human(row.kernel_packets_per_s),
        human(row.oracle_router_ticks_per_s),
        human(row.oracle_packets_per_s),
        f"{row.kernel_speedup:.0f}x",
        f"{row.speedup:.0f}x",
    ]


def describe_settings(settings: BenchSettings) -> str:
    return (
        f"policy {settings.policy}, horizon {settings.horizon_ticks} ticks, seed {settings.seed}; "
        f"fast: batches of {settings.batch_size} episodes; oracle: {settings.oracle_episodes} episode(s); "
        f"median of {settings.repeats} timed repeat(s) after an untimed warm-up; single process, one core"
    )


def markdown_report(rows: list[BenchRow], settings: BenchSettings, command: str, total_seconds: float,
                    queue_rows: list[QueueBenchRow] | None = None,
                    solver: tuple[list[SolverBenchRow], list[str]] | None = None) -> str:
    """The benchmark's BENCHMARKS.md section: table(s), command, machine and date, between the markers."""
    info = machine_info()
    date = _dt.date.today().isoformat()  # a date, not a clock time: the file is a report, not a log
    lines = [
        SECTION_START,
        "# mamrl simulator benchmark",
        "",
        f"Command: `{command}`  ",
        f"Date: {date}  ",
        f"Settings: {describe_settings(settings)}.",
        "",
        *markdown_table(COLUMNS, [row_cells(row) for row in rows]),
    ]
    lines += [
        "",
        "- *router-ticks/s*: episodes x horizon x routers simulated per second of wall time; "
        "*pkts/s*: successful link sends (packets forwarded) per second.",
        "- *fast*: `Simulator.run_tables` end to end (drawing the Poisson traffic, allocating the state, "
        "running the compiled kernel); *kernel-only*: `kernel.run_table_episodes` alone on pre-drawn "
        "traffic; *oracle*: the pure-Python reference simulator `run_oracle_episode` with `table_decider`. "
        "The oracle and the fast core forward the same number of packets on the same episodes (checked).",
        "- *kernel / oracle*: the like-for-like ratio (both simulate pre-drawn traffic); *fast / oracle*: "
        "end to end (traffic drawing included on the fast side only, so it understates the core's advantage).",
        "- For scale: the paper authors' simulator ran 40,000-115,000 router-ticks per second (BENCHMARKS.md).",
        f"- Total benchmark wall time: {total_seconds:.1f} s.",
        "",
    ]
    if queue_rows:
        lines += [
            f"## Queue disciplines and backpressure ({QUEUE_BENCH_TOPOLOGY}, λ = {QUEUE_BENCH_LOAD:g})",
            "",
            *markdown_table(QUEUE_COLUMNS, [queue_row_cells(row) for row in queue_rows]),
        ]
        lines += [
            "",
            "- Kernel rows: the compiled whole-episode drivers on pre-drawn traffic (`run_table_episodes`, "
            "`run_backpressure_episodes`); oracle rows: `run_oracle_episode` with the same rule, on the first "
            "episodes of the same seed (checked to forward the same packets as the kernel). Variants are timed "
            "in turn within each repeat. *× FIFO kernel*: router-ticks/s over the first row's. Per-destination "
            "queues with SPA tables serve the same packets as FIFO queues, so their kernel / oracle ratio is "
            "against the FIFO oracle.",
            "- The biased variant's work per router-tick grows with the number of its non-empty destination "
            "queues (short at this load) times its links; classic backpressure, whose queues are long, computes "
            "the same rule per destination, in vector passes over every destination and link.",
            "",
        ]
    if solver is not None:
        solver_rows, notes = solver
        lines += [
            "## The yardsticks' solvers",
            "",
            "| " + " | ".join(SOLVER_COLUMNS) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(SOLVER_COLUMNS) - 1)) + "|",
        ]
        lines += ["| " + " | ".join(solver_row_cells(row)) + " |" for row in solver_rows]
        lines += [
            "",
            "- *capacity LP*: `mamrl.sim.capacity.capacity_bound`, what `mamrl capacity` computes: the max-concurrent-flow "
            "LP for λ* (HiGHS interior point) and the LP that finds the routers every optimal flow saturates. "
            f"*min-delay*: `min_delay_probabilities` at {SOLVER_LOAD_SHARE:g} λ*, what the `min-delay` policy computes: "
            "its capacity LP, flow deviation to a relative duality gap of 1e-4, cycle removal and split ratios. "
            "Uniform destinations; medians of the timed repeats after an untimed run.",
            *[f"- {note}" for note in notes],
            "",
        ]
    lines += [
        "## Machine",
        "",
    ]
    for key, value in info.items():
        lines.append(f"- {key}: {value}")
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


def bench_to_dict(rows: list[BenchRow], settings: BenchSettings) -> dict:
    """A JSON-ready record of the benchmark."""
    return {
        "settings": asdict(settings),
        "machine": machine_info(),
        "rows": [{**asdict(r), "speedup": r.speedup, "kernel_speedup": r.kernel_speedup} for r in rows],
        "python_executable": sys.executable,
    }


__all__ = [
    "COLUMNS",
    "SECTION_END",
    "SECTION_START",
    "SOLVER_TOPOLOGIES",
    "SolverBenchRow",
    "run_solver_bench",
    "CONSOLE_COLUMNS",
    "LOADS",
    "TOPOLOGIES",
    "BenchRow",
    "BenchSettings",
    "QUEUE_BENCH_LOAD",
    "QUEUE_BENCH_TOPOLOGY",
    "QUEUE_COLUMNS",
    "QUEUE_CONSOLE_COLUMNS",
    "QueueBenchRow",
    "queue_row_cells",
    "run_queue_bench",
    "bench_one",
    "bench_to_dict",
    "describe_settings",
    "markdown_report",
    "CONSOLE_NOTE",
    "SimulatorBench",
    "run_all",
    "console_cells",
    "row_cells",
    "run_bench",
]


@dataclass
class SimulatorBench:
    """Everything `mamrl bench` measures, in one run: the simulator table, the queue-discipline
    table and the yardsticks' solvers."""

    settings: BenchSettings
    rows: list[BenchRow]
    queue_rows: list[QueueBenchRow]
    solver_rows: list[SolverBenchRow]
    solver_notes: list[str]
    elapsed_s: float

    def console_tables(self) -> list[tuple[str, Sequence[str], list[list[str]], int]]:
        """(title, columns, rows, left-aligned columns) of each table."""
        return [
            ("Simulator speed (SPA, single process, one core)", CONSOLE_COLUMNS, [console_cells(r) for r in self.rows], 1),
            (f"Queue disciplines and backpressure ({QUEUE_BENCH_TOPOLOGY}, λ = {QUEUE_BENCH_LOAD:g}, timed side by side)",
             QUEUE_CONSOLE_COLUMNS, [queue_row_cells(r) for r in self.queue_rows], 2),
            (f"The yardsticks' solvers (capacity LP; min-delay at {SOLVER_LOAD_SHARE:g} λ*)", SOLVER_COLUMNS,
             [solver_row_cells(r) for r in self.solver_rows], 1),
        ]

    def write(self, path: str | Path, command: str) -> None:
        """Write (or replace) the benchmark's section of a markdown file."""
        write_section(path, markdown_report(self.rows, self.settings, command, self.elapsed_s, self.queue_rows,
                                            (self.solver_rows, self.solver_notes)), SECTION_START, SECTION_END)


CONSOLE_NOTE = ("fast = Simulator.run_tables end to end (traffic drawing included); kernel-only = "
                "kernel.run_table_episodes on pre-drawn traffic; oracle = run_oracle_episode (pure Python).")


def run_all(settings: BenchSettings, *, quick: bool = False, on_total: Callable[[int], None] | None = None,
            on_step: Callable[[], None] | None = None) -> SimulatorBench:
    """Run the three benchmarks (`on_total(steps)` first, `on_step()` after each step); `quick`
    times the solvers on the first topology only."""
    step = (lambda _row: on_step()) if on_step is not None else None
    solver_topologies = SOLVER_TOPOLOGIES[:1] if quick else SOLVER_TOPOLOGIES
    if on_total is not None:
        on_total(len(settings.topologies) * len(settings.loads) + 1 + len(solver_topologies))
    start = time.perf_counter()
    rows = run_bench(settings, on_row=step)
    queue_rows = run_queue_bench(settings)
    if on_step is not None:
        on_step()
    solver_rows, notes = run_solver_bench(solver_topologies, settings.repeats, on_row=step)
    return SimulatorBench(settings, rows, queue_rows, solver_rows, notes, time.perf_counter() - start)

