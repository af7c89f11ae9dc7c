"""`mamrl train`: train one algorithm on one configuration, with learning curves and checkpoints.

A run directory holds:
  config.json     configuration, the algorithm's resolved hyper-parameters (defaults included),
                  seed, mamrl version (written once; a resume must match, defaults included)
  checkpoint.pt   the agent after the last completed chunk (torch state dict, weights_only load,
                  written atomically)
  curves.csv      one row per chunk of training episodes (metrics, and for `mamrl` the TRPO stats)
  curves.png      the learning curves
  evaluation.json metrics of frozen-policy evaluation episodes (if asked for)
  attempts.json   wall time of every attempt (killed ones up to their last checkpoint) and the total
  .mamrl.lock     held while a run writes here: a second run on the directory is refused

With `tensorboard_dir` (CLI `--tensorboard DIR`) the curves also go to TensorBoard: every value of
every curves.csv row as the scalar `curves/<column>` at step = training episodes so far, and the
run's record (config.json) as the text `config` when a session starts. A resumed run appends to
the same directory and first backfills the rows the directory does not have yet (so `--tensorboard`
may also be added on resume). Empty curves.csv cells (a metric undefined in that chunk) are not
logged. It needs the optional `tensorboard` package (`pip install 'mamrl[tensorboard]'`).

Killed at any point, `mamrl train` with the same arguments resumes from the checkpoint and, since
training episode k always has the same traffic and the learners are deterministic given it,
finishes with the same weights and curves as an uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from mamrl import __version__
from mamrl.agents.base import RoutingAgent
from mamrl.algorithms import canonical_name, make_agent
from mamrl.errors import MamrlError
from mamrl.executors import check_backend
from mamrl.experiments.config import check_positive
from mamrl.runs import AttemptClock, atomic_file, lock_output, read_json, write_text
from mamrl.sim.metrics import estimate
from mamrl.sim.memory import MemoryPart, agent_parts, check_memory
from mamrl.sim.params import LinkFailure, SimParams, check_horizon
from mamrl.topologies import load_topology
from mamrl.validate import SEED, Items, Number, Text, check_fields, integer, setting

if TYPE_CHECKING:
    from mamrl.executors import CellExecutor
    from mamrl.meta.maml import MamlConfig, MetaLearner

CURVE_METRICS = ("mean_delivery_time", "mean_sojourn_time", "delivered_fraction", "loss_fraction", "mean_sojourn_time_not_lost")
"""Metrics of every curves.csv row (chunk means). Rows written before the loss-honest metrics had
no `mean_sojourn_time_not_lost`, and their `mean_sojourn_time` left lost packets out: on resume
`legacy_rows` moves that value to `mean_sojourn_time_not_lost` and leaves the new one empty."""

TENSORBOARD_HINT = "--tensorboard needs TensorBoard: pip install 'mamrl[tensorboard]'"
"""The one-line error when TensorBoard logging is asked for but the package is missing."""

TENSORBOARD_PREFIX = "curves/"
"""Scalar tags are this prefix + the curves.csv column name."""


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    field_labels: ClassVar[dict[str, str]] = {
        "topology": "--topology", "load": "--load", "horizon_ticks": "--horizon", "failures": "--fail",
        "algorithm": "--algorithm", "episodes": "--episodes", "seed": "--seed", "chunk_episodes": "--chunk",
        "eval_episodes": "--eval-episodes"}
    """How errors name each field: by the `mamrl train` option that sets it."""

    topology: str = setting("b4", Text())
    """Built-in name or path of the topology."""
    load: float = setting(0.3, Number(at_least=0))
    """λ, packets per router per tick."""
    horizon_ticks: int = setting(500, integer(1))
    """Episode length in ticks."""
    failures: tuple[str, ...] = setting((), Items(Text()))
    """Link failures as `A-B[@TICK]`."""
    algorithm: str = setting("mamrl", Text())
    """mamrl (alias deep-consensus), maml (meta-training, Algorithm 1), multitask (TRPO across η(M)), pg or q-routing."""
    algorithm_config: dict[str, Any] = field(default_factory=dict)
    """Algorithm hyper-parameters (fields of its config dataclass)."""
    episodes: int = setting(1000, integer(1))
    """Training episodes."""
    seed: int = setting(0, SEED)
    """Seed of the training traffic (and of the initial weights)."""
    chunk_episodes: int = setting(0, integer(0))
    """Episodes per curve row and checkpoint; 0 = one update of the algorithm (a TRPO or meta iteration), else 50."""
    eval_episodes: int = setting(0, integer(0))
    """Frozen-policy evaluation episodes at the end (on seed + 1_000_003)."""

    def __post_init__(self) -> None:
        check_fields(self, "")
        if not isinstance(self.algorithm_config, dict):
            raise MamrlError(f"algorithm_config: expected a table of settings, got {self.algorithm_config!r}")

    def resolved(self) -> "TrainConfig":
        if self.episodes < 1:
            raise MamrlError(f"episodes must be >= 1, got {self.episodes}")
        if self.eval_episodes < 0:
            raise MamrlError(f"eval episodes must be >= 0, got {self.eval_episodes}")
        name = canonical_name(self.algorithm)
        agent = make_agent(name, self.algorithm_config)
        if not agent.learns:
            raise MamrlError(f"{name} does not learn; nothing to train (evaluate it with `mamrl simulate`)")
        chunk = self.chunk_episodes
        if chunk <= 0:
            chunk = int(getattr(agent, "episodes_per_update", 50))
        return TrainConfig(self.topology, float(self.load), int(self.horizon_ticks), tuple(self.failures), name,
                           dict(self.algorithm_config), int(self.episodes), int(self.seed), int(chunk), int(self.eval_episodes))

    def sim_params(self) -> SimParams:
        topo = load_topology(self.topology)
        failures = tuple(LinkFailure.parse(topo, f) for f in self.failures)
        for spec, failure in zip(self.failures, failures):
            if failure.tick >= self.horizon_ticks:  # the link would never fail: training would ignore the option
                raise MamrlError(f"--fail {spec!r}: tick {failure.tick} is at or after the horizon ({self.horizon_ticks} ticks), "
                                 "so the link would never fail")
        return SimParams(topo, self.load, self.horizon_ticks, failures)


EVAL_SEED_OFFSET = 1_000_003

ATTEMPTS = "attempts.json"
"""Wall time of a run directory's attempts (`mamrl.runs.AttemptClock`)."""

CURVE_ROW_BYTES = 1000
"""Memory of one learning-curve row (a dict of about 12 numbers)."""

TRAIN_OPTIONS = {"load": "--load", "horizon": "--horizon", "batch": "the episodes per update (--set)",
                 "episodes": "--eval-episodes", "train_episodes": "--episodes (or raise --chunk)", "routers": "the topology's routers", "latency": "the topology's link latencies"}
"""The options of `mamrl train` that set what `memory.check_memory` measures."""


def train_run(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    on_chunk: Callable[[dict[str, Any]], None] | None = None,
    stop_after_chunks: int | None = None,
    tensorboard_dir: str | Path | None = None,
    task_executor: Any = None,
) -> dict[str, Any]:
    """Train (or resume) into `out_dir`; returns the last curve row. `stop_after_chunks` stops
    early as if killed (for tests). `tensorboard_dir`: also log the curves there (module docstring);
    raises MamrlError(TENSORBOARD_HINT) before training when TensorBoard is not installed.
    `task_executor` (maml only, `maml.maml_task_executor`): where each meta-iteration's tasks run;
    results do not depend on it."""
    cfg = cfg.resolved()
    params = cfg.sim_params()
    out = Path(out_dir)
    with lock_output(out, "directory"):
        return _train_locked(cfg, params, out, on_chunk=on_chunk, stop_after_chunks=stop_after_chunks,
                             tensorboard_dir=tensorboard_dir, task_executor=task_executor)


def _read_run_record(config_path: Path) -> dict[str, Any]:
    """A run directory's config.json, checked for shape; one line naming a damaged one."""
    recover = f"delete {config_path.parent} to start the run over, or use another directory"
    doc = read_json(config_path, "run record", recover)
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise MamrlError(f"run record {config_path} is not a `mamrl train` config.json; {recover}")
    return doc


def _resume_agent(agent: RoutingAgent, checkpoint: Path, arrays: dict[str, Any], meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Load a checkpoint's weights into `agent`; its curve rows. One line for one that does not fit."""
    recover = "delete it to retrain from the start, or use another directory"
    if meta["name"] != agent.name:
        raise MamrlError(f"checkpoint {checkpoint} holds a {meta['name']} agent, this run trains {agent.name}; {recover}")
    try:
        agent.load_state_arrays(arrays)
    except MamrlError as exc:
        raise MamrlError(f"checkpoint {checkpoint} does not fit this run ({exc}); {recover}") from None
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        raise MamrlError(f"checkpoint {checkpoint} is incomplete or does not fit this run "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}); {recover}") from None
    extra = meta["extra"]
    rows = extra.get("rows", []) if isinstance(extra, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "episodes" in r for r in rows):
        raise MamrlError(f"checkpoint {checkpoint} has no valid curve rows; {recover}")
    trained = int(getattr(agent, "episodes_trained", 0))
    if rows and rows[-1]["episodes"] != trained:  # e.g. a counter missing from the arrays (read as 0)
        raise MamrlError(f"checkpoint {checkpoint} is inconsistent: its weights count {trained} training episodes, "
                         f"its curve {rows[-1]['episodes']}; {recover}")
    return legacy_rows(rows)


def _train_locked(cfg: TrainConfig, params: SimParams, out: Path, *, on_chunk, stop_after_chunks, tensorboard_dir,
                  task_executor) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    config_path, checkpoint, curves_path = out / "config.json", out / "checkpoint.pt", out / "curves.csv"
    agent = make_agent(cfg.algorithm, cfg.algorithm_config)
    record = {"config": _jsonable(asdict(cfg)), "algorithm_resolved": _jsonable(agent.config()),
              "simulation": params.describe(), "mamrl_version": __version__}
    if task_executor is not None:
        if not hasattr(agent, "task_executor"):
            raise MamrlError(f"--backend/--workers spread maml's meta-training tasks; {cfg.algorithm} trains in one process")
        agent.task_executor = task_executor
    rows: list[dict[str, Any]] = []
    previous = _read_run_record(config_path) if config_path.exists() else None
    if previous is not None:
        meta, arrays = RoutingAgent.read_checkpoint(checkpoint) if checkpoint.exists() else (None, {})
        _check_resumable(out, previous, record, None if meta is None else meta["config"])
        if meta is not None:
            rows = _resume_agent(agent, checkpoint, arrays, meta)
    done = int(getattr(agent, "episodes_trained", 0))
    # A run cannot go back: its weights would not be what a smaller target says. (Its own target
    # is fine even when passed: maml's last whole iteration may overshoot it.)
    if previous is not None and cfg.episodes < done and cfg.episodes != previous["config"].get("episodes"):
        raise MamrlError(f"{out} has already trained {done} episodes, more than the {cfg.episodes} asked; "
                         f"ask for at least {done} (or use another directory)")
    # The attempt starts before anything is written, so a kill at any later moment leaves it counted.
    clock = AttemptClock(out / ATTEMPTS).start()
    if previous is None or any(previous["config"].get(key) != record["config"][key] for key in EXTENDABLE):
        write_text(config_path, json.dumps(record, indent=2))  # a new run, or a resumed one's new target
    board = TensorBoardLogger(tensorboard_dir, record, rows) if tensorboard_dir is not None else None
    try:
        chunks = 0
        while done < cfg.episodes:
            size = min(cfg.chunk_episodes, cfg.episodes - done)
            start = time.perf_counter()
            metrics = agent.train(params, cfg.seed, size)
            # Learners that consume whole iterations (maml) may use more than `size` episodes.
            size = max(size, int(getattr(agent, "episodes_trained", done + size)) - done)
            row = {"episodes": done + size, "seconds": round(time.perf_counter() - start, 3)}
            for key in CURVE_METRICS:
                finite = metrics[key][np.isfinite(metrics[key])]
                row[key] = _finite(float(finite.mean()) if finite.size else math.nan)
            log = getattr(agent, "log", None)
            if log:
                entry = log[-1]
                row.update({key: getattr(entry, key) for key in ("reward", "pre_reward", "kl", "accepted_share", "inner_kl", "inner_kl_penalty") if hasattr(entry, key)})
            check_finite_state(agent, f"{out}: training diverged", done + size)
            rows.append(row)
            done += size
            agent.save(checkpoint, extra={"rows": rows})
            write_text(curves_path, _csv_text(rows))
            clock.tick()
            if board is not None:
                board.log_row(row)
            if on_chunk is not None:
                on_chunk(row)
            chunks += 1
            if stop_after_chunks is not None and chunks >= stop_after_chunks and done < cfg.episodes:
                return row
        write_text(curves_path, _csv_text(rows))
        plot_curves(rows, out / "curves.png", title=f"{params.topology.name}, λ = {cfg.load:g}, {cfg.algorithm}")
        if cfg.eval_episodes:
            evaluation = agent.evaluate(params, cfg.seed + EVAL_SEED_OFFSET, cfg.eval_episodes)
            summary = {k: asdict(estimate(evaluation[k])) for k in CURVE_METRICS + ("generated", "delivered", "lost")}
            write_text(out / "evaluation.json", json.dumps({"seed": cfg.seed + EVAL_SEED_OFFSET,
                                                                 "episodes": cfg.eval_episodes, "metrics": summary}, indent=2))
        clock.stop()
        return rows[-1] if rows else {}
    except BaseException:
        clock.tick()  # an interrupted attempt keeps its time up to now, its unfinished chunk included
        raise
    finally:
        if board is not None:  # also on Ctrl-C: flushes what was logged
            board.close()


def check_finite_state(agent: RoutingAgent, what: str, episodes: int) -> None:
    """Refuse learned state holding NaN or inf (a step size too large, an overflow): it would be
    saved, evaluated and plotted as if it were a policy. The last checkpoint stays as it was."""
    for name, value in agent.state_arrays().items():
        array = np.asarray(value)
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise MamrlError(f"{what}: non-finite {name} after episode {episodes}; lower the step size "
                             "(or the learning rate) and train into a new directory")


def chunk_summary(row: dict[str, Any]) -> str:
    """One line on a curve row (a chunk of training), for progress reports."""
    reward = f"reward {row['reward']:.3g}  " if "reward" in row else ""
    return (f"{reward}delivery {row['mean_delivery_time'] or float('nan'):.3g}  "
            f"sojourn {row['mean_sojourn_time'] or float('nan'):.3g}  "
            f"delivered {100 * (row['delivered_fraction'] or 0):.1f}%  loss {100 * (row['loss_fraction'] or 0):.2f}%")


def train_command(config: TrainConfig, out: str | Path, *, on_chunk: Callable[[dict[str, Any]], None] | None = None,
                  tensorboard_dir: str | Path | None = None, workers: int = 1, backend: str = "local",
                  address: str | None = None, on_ready: Callable[[int], None] | None = None) -> list[str]:
    """`mamrl train`: check everything before any work (a missing TensorBoard, a bad topology, load
    or failure, workers for an algorithm that trains in one process), train into `out` with maml's
    tasks spread over `workers` or Ray, and return the summary lines. `on_ready(episodes)` is
    called once the checks passed."""
    if tensorboard_dir is not None:
        require_tensorboard()
    check_positive(config.episodes, "--episodes")
    check_horizon(config.horizon_ticks, "--horizon")
    cfg = config.resolved()
    params = cfg.sim_params()
    agent = make_agent(cfg.algorithm, cfg.algorithm_config)
    fail_tick = getattr(getattr(agent, "cfg", None), "fail_tick", 0)  # maml's tasks fail their links at this tick
    if isinstance(fail_tick, int) and fail_tick >= cfg.horizon_ticks:
        raise MamrlError(f"--set fail_tick={fail_tick} is at or after the horizon ({cfg.horizon_ticks} ticks): the tasks' links would never fail")
    per_update = int(getattr(agent, "episodes_per_update", min(cfg.chunk_episodes, 32)))
    parts = agent_parts(params, agent, train_episodes_at_once=per_update, eval_episodes_at_once=min(cfg.eval_episodes, 32),
                        episodes_kept=cfg.eval_episodes)
    rows = -(-cfg.episodes // cfg.chunk_episodes)  # every curve row stays in memory and in curves.csv
    parts.append(MemoryPart("learning-curve rows", CURVE_ROW_BYTES * rows, f"{rows:.3g} rows of {cfg.chunk_episodes} episodes",
                            ("train_episodes",)))
    check_memory(parts, options=TRAIN_OPTIONS)
    check_positive(workers, "--workers")
    task_executor = None
    if check_backend(backend, address) == "ray" or workers > 1:
        if cfg.algorithm != "maml":
            raise MamrlError(f"--backend/--workers spread maml's meta-training tasks; {cfg.algorithm} trains in one process")
        # lazy: imports torch (~1 s); only meta-training needs it
        from mamrl.meta.maml import maml_task_executor

        task_executor = maml_task_executor(backend, workers, address)  # Ray: connects now
    if on_ready is not None:
        on_ready(cfg.episodes)
    try:
        last = train_run(cfg, out, on_chunk=on_chunk, tensorboard_dir=tensorboard_dir, task_executor=task_executor)
    finally:
        if task_executor is not None:
            task_executor.close(wait=False)
    lines = [f"trained {cfg.algorithm} on {cfg.topology} at λ = {cfg.load:g} for {cfg.episodes} episodes; "
             f"run directory {out} (curves.csv, curves.png, checkpoint.pt{', evaluation.json' if cfg.eval_episodes else ''})"
             + (f"; TensorBoard logs in {tensorboard_dir}" if tensorboard_dir is not None else "")]
    if last:
        lines.append(f"last chunk: delivered {100 * (last['delivered_fraction'] or 0):.1f}%, "
                     f"sojourn {last['mean_sojourn_time']}, delivery time {last['mean_delivery_time']}")
    return lines


def meta_train(topology: str, load: float, config: MamlConfig, out_dir: str | Path, *, seed: int = 0,
               iterations: int = 300, horizon_ticks: int = 500, on_chunk=None,
               task_executor: CellExecutor | None = None) -> MetaLearner:
    """Meta-train into `out_dir` with `mamrl train`'s machinery (config.json, checkpoint.pt after
    every meta-iteration, curves.csv/png), resuming from its checkpoint; returns the learner
    holding the meta-initialisation. `task_executor`: see `MetaLearner.task_executor`."""
    # lazy: imports torch (~1 s); only meta-training needs it
    from mamrl.meta.maml import MetaLearner

    values = asdict(config)
    train_config = TrainConfig(topology=topology, load=load, horizon_ticks=horizon_ticks, algorithm="maml",
                               algorithm_config=values, episodes=iterations * config.episodes_per_meta_iteration,
                               seed=seed, chunk_episodes=config.episodes_per_meta_iteration)
    train_run(train_config, out_dir, on_chunk=on_chunk, task_executor=task_executor)
    meta, arrays = RoutingAgent.read_checkpoint(Path(out_dir) / "checkpoint.pt")
    learner = MetaLearner(config)
    learner.load_state_arrays(arrays)
    return learner


class TensorBoardLogger:
    """Learning-curve rows to TensorBoard (`torch.utils.tensorboard.SummaryWriter`).

    Each value of a row becomes the scalar `curves/<column>` at step `row["episodes"]`. On
    opening, rows of `rows` (the run's curve so far) beyond the last step already in `log_dir`
    are written first (backfill after a resume or a kill between a checkpoint and its log), then
    `record` as the text `config`. Use it as a context manager or call `close()`.
    """

    def __init__(self, log_dir: str | Path, record: dict[str, Any] | None = None,
                 rows: list[dict[str, Any]] | None = None) -> None:
        writer_class = require_tensorboard()
        log_dir = Path(log_dir)
        if log_dir.exists() and not log_dir.is_dir():
            raise MamrlError(f"--tensorboard {str(log_dir)!r} is a file, expected a directory")
        last = _last_logged_step(log_dir) if log_dir.is_dir() else None
        self._writer = writer_class(log_dir=str(log_dir))
        rows = rows or []
        # Steps must not go back, or TensorBoard's reader discards the later points as orphans:
        # backfill first, then the config at the step this session starts from.
        for row in rows:
            if last is None or row["episodes"] > last:
                self.log_row(row)
        if record is not None:
            text = json.dumps(record, indent=2)
            # Markdown: indented lines are a code block, which keeps the JSON layout.
            self._writer.add_text("config", "\n".join("    " + line for line in text.splitlines()),
                                  global_step=int(rows[-1]["episodes"]) if rows else 0)
        self._writer.flush()

    def log_row(self, row: dict[str, Any]) -> None:
        """Every numeric value of `row` (None = empty cell: skipped) at step `row["episodes"]`."""
        step = int(row["episodes"])
        for key, value in row.items():
            if key == "episodes" or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            self._writer.add_scalar(TENSORBOARD_PREFIX + key, float(value), global_step=step)
        self._writer.flush()  # a chunk takes seconds; a killed run keeps every logged row

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> "TensorBoardLogger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def require_tensorboard() -> type:
    """`SummaryWriter`, or MamrlError(TENSORBOARD_HINT) when TensorBoard is not installed."""
    try:
        # lazy: an optional dependency; torch's module imports the tensorboard package itself and
        # raises ImportError without it.
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MamrlError(TENSORBOARD_HINT) from None
    return SummaryWriter


def _last_logged_step(log_dir: Path) -> int | None:
    """The largest step of `curves/seconds` (present in every row) in `log_dir`'s event files."""
    if not any(log_dir.glob("events.out.tfevents.*")):
        return None
    # lazy: optional dependency (TensorBoard logging)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    tag = TENSORBOARD_PREFIX + "seconds"
    if tag not in accumulator.Tags().get("scalars", []):
        return None
    return max(event.step for event in accumulator.Scalars(tag))


def plot_curves(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Learning curves: the algorithm's own reward (if any), delivery/sojourn time, delivered/loss."""
    # lazy: matplotlib only when drawing
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    episodes = [r["episodes"] for r in rows]
    panels = [("reward", "reward (algorithm's own)")] if any("reward" in r for r in rows) else []
    fig = Figure(figsize=(4.2 * (len(panels) + 2), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels) + 2)
    k = 0
    if panels:
        has_pre = any("pre_reward" in r for r in rows)
        axes[0].plot(episodes, [r.get("reward", math.nan) for r in rows], color="black",
                     label="after the inner step" if has_pre else None)
        if has_pre:  # maml: the meta-initialisation's own reward, before adaptation
            axes[0].plot(episodes, [r.get("pre_reward", math.nan) for r in rows], color="grey", label="before (meta-init)")
            axes[0].legend(fontsize=8)
        axes[0].set_title("reward (the algorithm's own)")
        k = 1
    axes[k].plot(episodes, [r["mean_delivery_time"] for r in rows], label="delivery time (paper)")
    axes[k].plot(episodes, [_number(r.get("mean_sojourn_time")) for r in rows], label="sojourn time (every packet)")
    axes[k].set_ylabel("ticks")
    axes[k].legend(fontsize=8)
    axes[k + 1].plot(episodes, [r["delivered_fraction"] for r in rows], label="delivered fraction")
    axes[k + 1].plot(episodes, [r["loss_fraction"] for r in rows], label="loss fraction")
    axes[k + 1].set_ylim(0, 1)
    axes[k + 1].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("training episodes")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)


def legacy_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Curve rows with the sojourn time of rows from before the loss-honest metrics moved to
    `mean_sojourn_time_not_lost` (what it measured) and `mean_sojourn_time` left empty (None)."""
    out = []
    for row in rows:
        if "mean_sojourn_time" in row and "mean_sojourn_time_not_lost" not in row:
            row = {**row, "mean_sojourn_time_not_lost": row["mean_sojourn_time"], "mean_sojourn_time": None}
        out.append(row)
    return out


def _number(value: Any) -> float:
    """A curve value for plotting: None (an empty cell) becomes NaN, a gap in the line."""
    return math.nan if value is None else float(value)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    # Not a runs.ResultsTable on purpose: the checkpoint holds the rows (one source of truth, saved
    # atomically with the weights), and curves.csv is rewritten from them, so it can never hold a
    # row of a chunk whose weights were lost in a kill. Columns differ between algorithms.
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


EXTENDABLE = ("episodes", "eval_episodes")
"""Config fields a resume may change: the training target (a larger one extends the run, which then
continues as if it had been started with it, when the earlier target was a whole number of chunks)
and the final evaluation's length (computed at the end, from the final weights)."""


def _check_resumable(out: Path, previous: dict[str, Any], record: dict[str, Any],
                     checkpoint_config: dict[str, Any] | None) -> None:
    """Refuse (one line) to resume a run under another configuration. Hyper-parameters are compared
    resolved, defaults included: a default changed by a newer mamrl would otherwise be adopted
    silently half-way through a run. `checkpoint_config` is the resolved configuration the last
    checkpoint was written with (runs recorded before `algorithm_resolved` existed)."""
    old, new = dict(previous.get("config") or {}), dict(record["config"])
    old_given, given = old.pop("algorithm_config", {}) or {}, new.pop("algorithm_config", {}) or {}
    differing = sorted(key for key in old.keys() | new.keys()
                       if key not in EXTENDABLE and old.get(key) != new.get(key))
    if differing:
        raise MamrlError(f"{out} holds a run with a different configuration (differs in: {', '.join(differing)}); "
                         "use another directory")
    old_resolved = previous.get("algorithm_resolved") or checkpoint_config
    if old_resolved is None:  # nothing trained and nothing resolved recorded: compare what was given
        if old_given != given:
            raise MamrlError(f"{out} holds a run with a different configuration (differs in: algorithm_config); "
                             "use another directory")
        return
    old_resolved, new_resolved = _jsonable(old_resolved), record["algorithm_resolved"]
    problems = []
    for key in sorted(old_resolved.keys() | new_resolved.keys()):
        if key not in new_resolved:
            problems.append(f"{key} (set to {json.dumps(old_resolved[key])} in the run) no longer exists")
        elif key not in old_resolved:
            if key not in given:  # a hyper-parameter newer than the run: only the user knows its old behaviour
                problems.append(f"{key} did not exist when the run started (now {json.dumps(new_resolved[key])}); "
                                f"pin its behaviour then with --set {key}=VALUE")
        elif old_resolved[key] != new_resolved[key]:
            how = "given" if key in given else "this mamrl's default"
            problems.append(f"{key} is {json.dumps(old_resolved[key])} in the run but {json.dumps(new_resolved[key])} "
                            f"now ({how}); resume it with --set {key}={json.dumps(old_resolved[key])}")
    if problems:
        raise MamrlError(f"{out} cannot be resumed as it was: {'; '.join(problems)}; or use another directory")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=list))
