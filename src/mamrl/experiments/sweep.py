"""The load sweep (docs/sweep.md, E1): train and evaluate every (topology, algorithm, load, seed) cell.

Seeds and common random numbers
-------------------------------
Cell (topology, algorithm, λ, s) trains on episodes 0, 1, 2, ... of traffic seed `s` and is
evaluated, learning frozen, on episodes 0 .. eval_episodes-1 of seed `s + EVAL_SEED_OFFSET`.
Episode k of a seed has the same packets whatever policy routes them (`mamrl.sim.traffic`), so all
algorithms of a (topology, λ, s) are trained on identical traffic and evaluated on identical
traffic: differences between them are not sampling noise in the arrivals. (Seeds are meant to be
small; a seed equal to another's evaluation seed would reuse that traffic.)

Results file
------------
One CSV row per finished cell, appended as one complete line, flushed and fsync'ed, so an
interrupted sweep loses at most the cells in progress. A re-run reads the file, drops a trailing
partial line, skips finished cells and runs the rest. At the end the file is rewritten (atomically)
with its rows in canonical cell order, so a finished sweep's file does not depend on interruptions
or on the number of workers — apart from the timing columns (`TIMING_COLUMNS`).

The resolved config is written first, to the JSON sidecar `<results>.config.json`; a re-run whose
resolved config differs is refused with the names of the differing fields.

Execution
---------
Cells are independent tasks handed to a `mamrl.executors.CellExecutor` (`map cells -> rows`): `SerialExecutor`
runs them in this process, `ProcessPoolCellExecutor` in worker processes (forkserver, or spawn
where there is none), `RayCellExecutor` as Ray tasks (`--backend ray`; see
`make_backend_executor`). Rows are written by the calling process as cells complete, whatever
the executor, so the results file does not depend on it.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

import mamrl
from mamrl.algorithms import BELOW_CAPACITY_ONLY, make_agent
from mamrl.errors import MamrlError
from mamrl.executors import CellExecutor, WorkShare, check_backend, make_backend_executor, run_tasks, single_threaded
from mamrl.experiments.config import SweepConfig, load_share, resolve_load
from mamrl.runs import ResultsTable, Row, TableSchema, config_hash, lock_output, read_table
from mamrl.sim.capacity import capacity_bound
from mamrl.sim.metrics import METRIC_INFO, Estimate, estimate, predates_loss_honest, predates_loss_honest_message
from mamrl.sim.params import SimParams
from mamrl.topologies import load_topology

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation traffic of seed s is drawn from seed s + EVAL_SEED_OFFSET (training uses s)."""

SIDECAR_FORMAT = "mamrl-sweep/1"
MERGED_SIDECAR_FORMAT = "mamrl-sweep-merged/1"
"""The sidecar of a file merging several sweeps' rows (`reproduce`'s `e1/results.csv`): a list
`merged` of {config_hash, config, results}, one per sweep."""

KEY_COLUMNS: tuple[str, ...] = ("topology", "algorithm", "load", "seed")
"""The columns identifying a cell."""

METRIC_COLUMNS: tuple[str, ...] = tuple(f"{m}_{part}" for m in METRIC_INFO for part in ("mean", "ci95", "n"))
"""Every metric of METRIC_INFO as mean, 95% CI half-width and number of episodes it is defined in."""

TIMING_COLUMNS: tuple[str, ...] = ("train_wall_s", "eval_wall_s")
"""Wall times: the only columns that differ between two runs of the same cell."""

COLUMNS: tuple[str, ...] = (
    "config_hash",
    *KEY_COLUMNS,
    "eval_seed",
    "routers",
    "max_load",
    "load_share",
    "train_episodes",
    "eval_episodes",
    "horizon_ticks",
    "eval_horizon_ticks",
    *METRIC_COLUMNS,
    *TIMING_COLUMNS,
    "mamrl_version",
)
"""Header of the results CSV."""

_INT_COLUMNS = {"seed", "eval_seed", "routers", "train_episodes", "eval_episodes", "horizon_ticks", "eval_horizon_ticks"} | {
    f"{m}_n" for m in METRIC_INFO
}
_STR_COLUMNS = {"config_hash", "topology", "algorithm", "mamrl_version"}



def eval_seed(seed: int) -> int:
    """The traffic seed a cell of training seed `seed` is evaluated on."""
    return int(seed) + EVAL_SEED_OFFSET


# ------------------------------------------------------------------------------ cells
@dataclass(frozen=True, order=True)
class Cell:
    """One unit of work: train (if the algorithm learns) and evaluate one algorithm."""

    topology: str
    algorithm: str
    load: float
    seed: int

    @property
    def key(self) -> tuple[str, str, float, int]:
        return (self.topology, self.algorithm, self.load, self.seed)

    def __str__(self) -> str:
        return f"{self.topology} {self.algorithm} λ={self.load:g} seed {self.seed}"


@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs to compute a cell's row (picklable, no live objects)."""

    cell: Cell
    algorithm_config: dict[str, Any]
    train_episodes: int
    eval_episodes: int
    horizon_ticks: int
    config_hash: str
    eval_batch_size: int = 32
    eval_horizon_ticks: int | None = None
    """None = horizon_ticks."""


@functools.lru_cache(maxsize=16)
def _topology(spec: str):
    return load_topology(spec)


def sweep_cells(config: SweepConfig) -> list[Cell]:
    """All cells in canonical order: topologies and algorithms as configured, loads ascending
    (relative loads resolved against each topology's λ*), seeds. An oracle that exists only below
    λ* (`max-throughput`, `min-delay`) gets no cell at a load at or above it (`skipped_cells`)."""
    return [cell for cell in _all_cells(config) if not _beyond_capacity(cell)]


def skipped_cells(config: SweepConfig) -> list[Cell]:
    """Cells of the oracles at loads at or above λ*: not run (no routing carries such a load)."""
    return [cell for cell in _all_cells(config) if _beyond_capacity(cell)]


def _all_cells(config: SweepConfig) -> list[Cell]:
    return [
        Cell(t, a, lam, int(s))
        for t in config.topologies
        for a in config.algorithms
        for lam in topology_loads(config, t)
        for s in config.seeds
    ]


def _beyond_capacity(cell: Cell) -> bool:
    return cell.algorithm in BELOW_CAPACITY_ONLY and cell.load >= topology_capacity(cell.topology)


def topology_loads(config: SweepConfig, topology: str) -> list[float]:
    """The configured loads of one topology as absolute loads, ascending (duplicates merged)."""
    if any(load_share(spec) is not None for spec in config.loads):
        limit = topology_capacity(topology)
        return sorted({resolve_load(spec, limit) for spec in config.loads})
    return sorted({float(spec) for spec in config.loads})


@functools.lru_cache(maxsize=16)
def topology_capacity(spec: str) -> float:
    """λ* of a topology (uniform destinations, intact network): `mamrl.sim.capacity`."""
    return capacity_bound(_topology(spec), find_binding=False).max_load


def make_tasks(config: SweepConfig, cells: Iterable[Cell]) -> list[CellTask]:
    resolved = config.resolved()
    digest = config_hash(resolved)
    return [
        CellTask(
            cell,
            dict(resolved["algorithm_config"][cell.algorithm]),
            config.train_episodes,
            config.eval_episodes,
            config.horizon_ticks,
            digest,
            eval_horizon_ticks=config.effective_eval_horizon,
        )
        for cell in cells
    ]


def cell_params(task: CellTask):
    """The `SimParams` of a cell (intact network, unbounded queues)."""
    return SimParams(_topology(task.cell.topology), task.cell.load, horizon_ticks=task.horizon_ticks)


def train_and_evaluate(task: CellTask) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray], float, float]:
    """(agent, training metrics, evaluation metrics per episode, train wall s, eval wall s)."""
    params = cell_params(task)
    agent = make_agent(task.cell.algorithm, task.algorithm_config)
    start = time.perf_counter()
    train_metrics: dict[str, np.ndarray] = {}
    if agent.learns:
        train_metrics = agent.train(params, task.cell.seed, task.train_episodes)
    train_wall = time.perf_counter() - start
    start = time.perf_counter()
    eval_params = params if task.eval_horizon_ticks is None else params.replace(horizon_ticks=task.eval_horizon_ticks)
    eval_metrics = agent.evaluate(eval_params, eval_seed(task.cell.seed), task.eval_episodes, batch_size=task.eval_batch_size)
    eval_wall = time.perf_counter() - start
    return agent, train_metrics, eval_metrics, train_wall, eval_wall


def run_cell(task: CellTask) -> Row:
    """A cell's results row (runs in a worker process)."""
    with single_threaded():
        agent, _, per_episode, train_wall, eval_wall = train_and_evaluate(task)
    cell = task.cell
    row: Row = {
        "config_hash": task.config_hash,
        "topology": cell.topology,
        "algorithm": cell.algorithm,
        "load": cell.load,
        "seed": cell.seed,
        "eval_seed": eval_seed(cell.seed),
        "routers": _topology(cell.topology).num_routers,
        "max_load": topology_capacity(cell.topology),
        "load_share": cell.load / topology_capacity(cell.topology),
        "train_episodes": task.train_episodes if agent.learns else 0,
        "eval_episodes": task.eval_episodes,
        "horizon_ticks": task.horizon_ticks,
        "eval_horizon_ticks": task.eval_horizon_ticks or task.horizon_ticks,
    }
    for metric in METRIC_INFO:
        est = estimate(per_episode[metric])
        row[f"{metric}_mean"], row[f"{metric}_ci95"], row[f"{metric}_n"] = est.mean, est.ci95, est.n
    row["train_wall_s"] = round(train_wall, 3)
    row["eval_wall_s"] = round(eval_wall, 3)
    row["mamrl_version"] = mamrl.__version__
    return row


def cell_cost(task: CellTask) -> float:
    """A rough relative cost, to start the longest cells first (shorter tail; results unaffected)
    and to estimate the time left: simulating grows with the packets in flight, a learner's
    own work with `learning_cost_per_router_tick`."""
    agent = make_agent(task.cell.algorithm, task.algorithm_config)
    packets = 0.01 + task.cell.load
    train_ticks = task.train_episodes * task.horizon_ticks if agent.learns else 0
    eval_ticks = task.eval_episodes * (task.eval_horizon_ticks or task.horizon_ticks)
    per_router = train_ticks * (packets + agent.learning_cost_per_router_tick) + eval_ticks * packets
    return per_router * _topology(task.cell.topology).num_routers


def sweep_work(configs: Sequence[SweepConfig]) -> WorkShare:
    """The cells of one or more sweeps weighted by `cell_cost`, keyed (sweep index, cell key):
    `finished([(index, row_key(row))])` gives the share of the estimated work done."""
    return WorkShare({(index, task.cell.key): cell_cost(task)
                      for index, config in enumerate(configs) for task in make_tasks(config, sweep_cells(config))})


def make_cell_executor(backend: str = "local", workers: int | None = None, address: str | None = None) -> CellExecutor:
    """An executor of sweep cells on `backend` (`mamrl.executors.make_backend_executor`)."""
    return make_backend_executor(backend, workers, address, run=run_cell, cost=cell_cost,
                                 describe=lambda task: f"cell {task.cell}")


# ------------------------------------------------------------------------------ results file
def sidecar_path(results: str | os.PathLike[str]) -> Path:
    """`<results>.config.json`."""
    results = Path(results)
    return results.with_name(results.name + ".config.json")


SCHEMA = TableSchema(COLUMNS, frozenset(_INT_COLUMNS), frozenset(_STR_COLUMNS), "results file")
"""The results CSV's columns and value types."""


def _refuse_old_header(path: Path, columns: Sequence[str]) -> None:
    if predates_loss_honest(columns):
        raise MamrlError(predates_loss_honest_message(path, "re-run the sweep into a new --results file to plot or extend it"))


def format_row(row: Row) -> str:
    """One CSV line (with its newline) of a row, columns in `COLUMNS` order; NaN is empty."""
    return SCHEMA.format_rows([row])


def header_line() -> str:
    return SCHEMA.header()


def read_results(path: str | os.PathLike[str]) -> list[Row]:
    """The complete rows of a results CSV (a trailing partial line is ignored)."""
    return read_table(path, SCHEMA, check_header=_refuse_old_header)


def row_key(row: Row) -> tuple[str, str, float, int]:
    return (row["topology"], row["algorithm"], float(row["load"]), int(row["seed"]))


def check_rows_in_config(rows: Sequence[Row], resolved: Mapping[str, Any], path: str | os.PathLike[str], remedy: str) -> None:
    """Refuse a row that is not a cell of the sweep config `resolved` (its topology, algorithm,
    load or seed is not swept, or its config hash is another's): a hand-edited or merged file
    would otherwise be resumed, kept and plotted as if this config had produced it."""
    digest = config_hash(resolved)
    for number, row in enumerate(rows, start=1):
        max_load = float(row.get("max_load", math.nan))
        loads = [resolve_load(spec, max_load) for spec in resolved["loads"]
                 if isinstance(spec, (int, float)) or math.isfinite(max_load)]
        relative_unknown = any(isinstance(spec, str) for spec in resolved["loads"]) and not math.isfinite(max_load)
        where = f"{path}: row {number} ({row['topology']} {row['algorithm']} λ={float(row['load']):g} seed {row['seed']})"
        if row.get("config_hash") != digest:
            raise MamrlError(f"{where} has config hash {row.get('config_hash')}, its config {digest}; {remedy}")
        if (row["topology"] not in resolved["topologies"] or row["algorithm"] not in resolved["algorithms"]
                or int(row["seed"]) not in resolved["seeds"]
                or not (relative_unknown or any(math.isclose(float(row["load"]), x, rel_tol=1e-6) for x in loads))):
            raise MamrlError(f"{where} is not a cell of its config (topologies, algorithms, loads, seeds); {remedy}")


def check_rows_in_sidecar(rows: Sequence[Row], sidecar: Any, path: str | os.PathLike[str], remedy: str) -> None:
    """`check_rows_in_config` against a results file's sidecar: one sweep's (`SIDECAR_FORMAT`), or a
    merged file's (`MERGED_SIDECAR_FORMAT`), where each row must be a cell of the listed config whose
    hash it carries. Without a readable sidecar, the rows must all share one config hash."""
    merged = sidecar.get("merged") if isinstance(sidecar, dict) else None
    if isinstance(merged, list) and merged and all(isinstance(m, dict) and isinstance(m.get("config"), dict) for m in merged):
        configs = {config_hash(m["config"]): m["config"] for m in merged}
        by_hash: dict[Any, list[Row]] = {}
        for row in rows:
            by_hash.setdefault(row.get("config_hash"), []).append(row)
        for digest, group in by_hash.items():
            if digest not in configs:
                raise MamrlError(f"{path}: rows with config hash {digest}, which none of the {len(configs)} merged sweep "
                                 f"configs in {sidecar_path(path).name} has; {remedy}")
            check_rows_in_config(group, configs[digest], path, remedy)
    elif isinstance(sidecar, dict) and isinstance(sidecar.get("config"), dict):
        check_rows_in_config(rows, sidecar["config"], path, remedy)
    elif len({row.get("config_hash") for row in rows}) > 1:
        raise MamrlError(f"{path}: rows of {len({row.get('config_hash') for row in rows})} different sweep configs "
                         f"(config_hash) and no {sidecar_path(path).name} to say which is the file's; {remedy}")


class ResultsFile:
    """The results CSV of one sweep config (`mamrl.runs.ResultsTable`), opened for resuming and
    appending; `rows` holds the finished cells' rows by cell key."""

    def __init__(self, path: str | os.PathLike[str], config: SweepConfig):
        self.path = Path(path)
        self.config = config
        self.table = ResultsTable(self.path, SCHEMA, sidecar=sidecar_path(self.path), sidecar_format=SIDECAR_FORMAT,
                                  resolved=config.resolved(), kind="sweep", start_over="use a new --results file",
                                  check_header=_refuse_old_header)
        self.hash = self.table.hash
        self.rows: dict[tuple, Row] = {}

    def open(self) -> None:
        """Check or write the sidecar, repair a trailing partial line, load finished rows."""
        rows = self.table.open()
        check_rows_in_config(rows, self.table.resolved, self.path, "remove the row or use a new --results file")
        for row in rows:
            self.rows.setdefault(row_key(row), row)

    def finished_keys(self) -> set[tuple]:
        """The cell keys already in the file, checked against this config, without changing
        anything (what `--dry-run` reports)."""
        if not self.path.exists():
            return set()
        self.table.check_sidecar()
        rows = read_results(self.path)
        check_rows_in_config(rows, self.table.resolved, self.path, "remove the row or use a new --results file")
        return {row_key(r) for r in rows}

    def append(self, row: Row) -> None:
        """Append one complete line and make it durable before returning."""
        self.table.append([row])
        self.rows.setdefault(row_key(row), row)

    def finalize(self, order: Sequence[Cell]) -> None:
        """Rewrite the file with its rows in canonical cell order (atomically)."""
        rank = {c.key: k for k, c in enumerate(order)}
        self.table.rewrite(sorted(self.rows.values(), key=lambda r: rank.get(row_key(r), len(rank))))



# ------------------------------------------------------------------------------ the sweep
@dataclass
class SweepOutcome:
    """What a `run_sweep` call did."""

    results: Path
    total_cells: int
    skipped: int
    """Cells already in the results file (not recomputed)."""
    ran: int
    """Cells computed by this call."""
    wall_time_s: float
    complete: bool
    """Whether every cell of the config is now in the results file."""
    rows: list[Row] = field(default_factory=list)
    """All rows of the results file, in canonical order."""


OnRow = Callable[[Row, int, int], None]
"""Called after each row is written with (row, cells finished incl. skipped, total cells)."""


def run_sweep(
    config: SweepConfig,
    *,
    executor: CellExecutor | None = None,
    on_start: Callable[[list[tuple], int], None] | None = None,
    on_row: OnRow | None = None,
    stop_after: int | None = None,
) -> SweepOutcome:
    """Run (or resume) a sweep: skip the cells in `config.results`, compute the rest, append rows.

    `stop_after=k` stops after k newly computed cells (a test hook for interruptions).
    `on_start(done_keys, total)` is called once the results file is open, with the keys of the
    cells already in it. The results file is
    locked while the sweep runs (`runs.lock_output`): a second sweep on it is refused.
    """
    with lock_output(config.results, "--results", directory=False):
        return _run_locked(config, executor=executor, on_start=on_start, on_row=on_row, stop_after=stop_after)


def _run_locked(config: SweepConfig, *, executor: CellExecutor | None, on_start: Callable[[list[tuple], int], None] | None,
                on_row: OnRow | None, stop_after: int | None) -> SweepOutcome:
    start = time.perf_counter()
    results = ResultsFile(config.results, config)
    results.open()
    cells = sweep_cells(config)
    todo = [c for c in cells if c.key not in results.rows]
    skipped = len(cells) - len(todo)
    if on_start is not None:
        on_start([c.key for c in cells if c.key in results.rows], len(cells))
    done = [skipped]

    def record(row: Row) -> None:
        results.append(row)
        done[0] += 1
        if on_row is not None:
            on_row(row, done[0], len(cells))

    ran = run_tasks(make_tasks(config, todo) if todo else [], record, executor=executor, stop_after=stop_after,
                    make_executor=lambda count: make_cell_executor("local", min(config.effective_workers(), count)))
    results.finalize(cells)
    rank = {c.key: k for k, c in enumerate(cells)}
    ordered = sorted(results.rows.values(), key=lambda r: rank.get(row_key(r), len(rank)))
    complete = all(c.key in results.rows for c in cells)
    return SweepOutcome(results.path, len(cells), skipped, ran, time.perf_counter() - start, complete, ordered)


class SweepRun:
    """A sweep as a command runs it: the backend checked and, for Ray, connected before the
    results file is touched (a missing Ray or an unreachable cluster is one line before any work);
    the executor closed on every exit path."""

    def __init__(self, config: SweepConfig, backend: str = "local", address: str | None = None):
        self.config = config
        self.backend = check_backend(backend, address)
        self.address = address
        self.executor: CellExecutor | None = None

    def where(self, total: int | None = None, skipped: int = 0) -> str:
        if self.backend == "local":
            workers = self.config.effective_workers()
            return f"{workers if total is None else min(workers, max(total - skipped, 1))} worker(s)"
        if self.executor is not None:
            return f"on {getattr(self.executor, 'label', self.backend)}"
        return f"on the Ray cluster at {self.address}" if self.address else "on a local Ray instance"

    def plan(self) -> str:
        """What a run would do (`--dry-run`): the cells, those left, where they would run."""
        config = self.config
        done = ResultsFile(config.results, config).finished_keys()
        cells = sweep_cells(config)
        left = [c for c in cells if c.key not in done]
        beyond = skipped_cells(config)
        return (f"{len(cells)} cells, {len(left)} left to run, {self.where()}"
                + (f"; not run (λ ≥ λ*): {', '.join(map(str, beyond))}" if beyond else ""))

    def start_message(self, skipped: int, total: int) -> str:
        config = self.config
        beyond = skipped_cells(config)
        return (f"sweep: {total} cells ({len(config.topologies)} topologies × {len(config.algorithms)} algorithms × "
                f"{len(config.loads)} loads × {len(config.seeds)} seeds"
                + (f", less {len(beyond)} of max-throughput/min-delay at λ ≥ λ*, where no routing carries the load"
                   if beyond else "")
                + f"), {skipped} already in {config.results}, {self.where(total, skipped)}")

    def run(self, *, on_start: Callable[[list[tuple], int], None] | None = None, on_row: OnRow | None = None) -> SweepOutcome:
        # Local: run_sweep sizes its pool to the cells left. Ray: connect now (see the class doc).
        if self.backend != "local":
            self.executor = make_cell_executor(self.backend, self.config.workers, self.address)
        finished = False
        try:
            outcome = run_sweep(self.config, executor=self.executor, on_start=on_start, on_row=on_row)
            finished = True
            return outcome
        finally:
            if self.executor is not None:
                self.executor.close(wait=finished)


def row_summary(row: Row) -> str:
    """One line on a finished cell, for progress reports."""
    return (f"{row['topology']} {row['algorithm']} λ={row['load']:g} seed {row['seed']}: "
            f"delivery {row['mean_delivery_time_mean']:.3g}, sojourn {row['mean_sojourn_time_mean']:.3g}, "
            f"delivered {100 * row['delivered_fraction_mean']:.1f}%")


# ------------------------------------------------------------------------------ aggregation
def pooled_estimate(parts: Iterable[tuple[float, float, int]]) -> Estimate:
    """The mean and 95% CI of the union of several samples given each one's (mean, ci95, n).

    Each sample's standard deviation is recovered from its CI half-width (Student t), so the result
    equals `estimate` of the concatenated per-episode values (up to rounding). Across the seeds of
    a sweep this treats all evaluation episodes as one sample: differences between training seeds
    enter through the spread of the episodes, not with their own degrees of freedom.
    """
    groups = [(float(m), float(c), int(n)) for m, c, n in parts if int(n) > 0 and math.isfinite(float(m))]
    total = sum(n for _, _, n in groups)
    if total == 0:
        return Estimate(float("nan"), float("nan"), 0)
    mean = sum(n * m for m, _, n in groups) / total
    if total == 1:
        return Estimate(mean, float("nan"), 1)
    ss = 0.0
    for m, c, n in groups:
        if n >= 2:
            sd = c * math.sqrt(n) / stats.t.ppf(0.975, n - 1) if math.isfinite(c) else 0.0
            ss += (n - 1) * sd * sd
        ss += n * (m - mean) ** 2
    sd = math.sqrt(max(ss, 0.0) / (total - 1))
    return Estimate(mean, float(stats.t.ppf(0.975, total - 1) * sd / math.sqrt(total)), total)


@dataclass(frozen=True)
class Point:
    """One (topology, algorithm, load) of a sweep, pooled over its seeds."""

    topology: str
    algorithm: str
    load: float
    routers: int
    horizon_ticks: int
    """Evaluation episode length (the horizon the backlog growth was measured over)."""
    seeds: tuple[int, ...]
    metrics: dict[str, Estimate]
    max_load: float = math.nan
    """λ*, the topology's capacity limit (NaN in results written before it was recorded)."""

    @property
    def load_share(self) -> float:
        """λ / λ*."""
        return self.load / self.max_load if self.max_load > 0 else math.nan


def aggregate(rows: Iterable[Row]) -> list[Point]:
    """Rows pooled over seeds, one `Point` per (topology, algorithm, load), in first-seen order
    of topologies and algorithms and ascending load."""
    groups: dict[tuple[str, str, float], list[Row]] = {}
    for row in rows:
        groups.setdefault((row["topology"], row["algorithm"], float(row["load"])), []).append(row)
    topo_order = list(dict.fromkeys(k[0] for k in groups))
    algo_order = list(dict.fromkeys(k[1] for k in groups))
    points = []
    for (topo, algo, load), members in sorted(groups.items(), key=lambda kv: (topo_order.index(kv[0][0]), algo_order.index(kv[0][1]), kv[0][2])):
        metrics = {
            m: pooled_estimate((r[f"{m}_mean"], r[f"{m}_ci95"], r[f"{m}_n"]) for r in members) for m in METRIC_INFO
        }
        points.append(
            Point(topo, algo, load, int(members[0]["routers"]), int(members[0]["eval_horizon_ticks"]),
                  tuple(sorted(int(r["seed"]) for r in members)), metrics,
                  float(members[0].get("max_load", math.nan)))
        )
    return points


__all__ = [
    "COLUMNS",
    "EVAL_SEED_OFFSET",
    "KEY_COLUMNS",
    "MERGED_SIDECAR_FORMAT",
    "METRIC_COLUMNS",
    "TIMING_COLUMNS",
    "Cell",
    "CellTask",
    "Point",
    "ResultsFile",
    "SweepRun",
    "row_summary",
    "SweepOutcome",
    "aggregate",
    "check_rows_in_config",
    "check_rows_in_sidecar",
    "make_cell_executor",
    "eval_seed",
    "format_row",
    "make_tasks",
    "pooled_estimate",
    "read_results",
    "run_cell",
    "run_sweep",
    "sidecar_path",
    "skipped_cells",
    "sweep_cells",
    "sweep_work",
    "topology_capacity",
    "topology_loads",
    "train_and_evaluate",
]
