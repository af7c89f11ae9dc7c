"""Running the link-failure experiment: the schedule that drives a controller through a run, the
runs as worker tasks (`run_failure_run`), `curves.csv`, the meta-initialisation of the deep
controllers, and `run_failure_experiment`, which runs (or resumes) them all into an output directory."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import mamrl
from mamrl import runs, training
from mamrl.agents.base import RoutingAgent
from mamrl.algorithms import make_agent
from mamrl.errors import MamrlError
from mamrl.executors import CellExecutor, WorkShare, make_backend_executor, run_tasks, single_threaded
from mamrl.experiments.failures.config import (
    failure_links,
    CONFIG_FORMAT,
    FailureExperimentConfig,
    Run,
    adaptation_config,
    cached_topology,
    maml_config,
)
from mamrl.experiments.failures.controllers import (
    DEEP_CONTROLLERS,
    PRETRAINED_CONTROLLERS,
    PRETRAINED_POLICY,
    SCRATCH_CONTROLLERS,
    QUEUE_CONTROLLERS,
    STATIC_CONTROLLERS,
    AgentController,
    BackpressureController,
    Controller,
    QRoutingController,
    ReconvergingController,
    StaticRoutingController,
    common_reward,
)
from mamrl.runs import ResultsTable, Row, TableSchema, read_table
from mamrl.experiments.failures.adaptation_rule import recovery_after_failure
from mamrl.sim.metrics import LOSS_BIN_TICKS, METRIC_INFO, predates_loss_honest, predates_loss_honest_message
from mamrl.sim.params import LinkFailure, SimParams

META_INIT_FORMAT = "mamrl-meta-init/1"


# ------------------------------------------------------------------------------ the schedule
@dataclass(frozen=True)
class Block:
    """Consecutive episodes a controller runs in one call, all with the same parameters."""

    first: int
    """Index of the first episode."""
    count: int
    """Number of episodes."""
    phase: str
    """`intact` (before the failure), `failure` (contains the failure episode) or `failed` (after it)."""


def episode_blocks(episodes: int, fail_episode: int, fail_tick: int, episodes_per_step: int) -> list[Block]:
    """The blocks of a run: steps of `episodes_per_step` episodes, cut at the failure episode;
    with `fail_tick > 0` the failure episode is a block of its own (its parameters differ)."""
    blocks: list[Block] = []

    def cut(start: int, end: int, phase: str) -> None:
        k = start
        while k < end:
            size = min(episodes_per_step, end - k)
            blocks.append(Block(k, size, phase))
            k += size

    cut(0, fail_episode, "intact")
    if fail_tick > 0:
        cut(fail_episode, fail_episode + 1, "failure")
        cut(fail_episode + 1, episodes, "failed")
    else:
        start = len(blocks)
        cut(fail_episode, episodes, "failed")
        blocks[start] = dataclasses.replace(blocks[start], phase="failure")
    return blocks


def block_params(intact: SimParams, links: int | tuple[int, ...], block: Block, fail_episode: int, fail_tick: int) -> SimParams:
    """The `SimParams` of a block: intact before the failure episode; the link(s) down from
    `fail_tick` in the failure episode, from tick 0 after it."""
    if block.first + block.count <= fail_episode:
        return intact
    tick = fail_tick if block.first == fail_episode else 0
    return intact.replace(failures=tuple(LinkFailure(link, tick) for link in ((links,) if isinstance(links, int) else links)))


def episode_phases(episodes: int, fail_episode: int) -> list[str]:
    """`intact` / `failure` / `failed` per episode."""
    return ["intact" if e < fail_episode else "failure" if e == fail_episode else "failed" for e in range(episodes)]


def run_schedule(
    controller: Controller,
    intact: SimParams,
    link: int | tuple[int, ...],
    seed: int,
    *,
    episodes: int,
    fail_episode: int,
    fail_tick: int = 0,
    episodes_per_step: int = 5,
) -> dict[str, np.ndarray]:
    """Drive one controller through a run with `link` (or several links at once) failing:
    per-episode arrays [episodes] of every metric in METRIC_INFO, plus `reset` (bool)."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in (*METRIC_INFO, *BIN_METRICS, "reset")}
    for block in episode_blocks(episodes, fail_episode, fail_tick, episodes_per_step):
        params = block_params(intact, link, block, fail_episode, fail_tick)
        metrics = controller.run_episodes(params, seed, block.first, block.count)
        missing = [k for k in METRIC_INFO if k not in metrics]
        if missing:
            raise MamrlError(f"controller {controller.name!r} returned no {', '.join(missing)}")
        for key in METRIC_INFO:
            values = np.asarray(metrics[key], dtype=np.float64)
            if values.shape != (block.count,):
                raise MamrlError(
                    f"controller {controller.name!r} returned {key} of shape {values.shape} for {block.count} episodes"
                )
            out[key].append(values)
        for key in BIN_METRICS:
            values = np.asarray(metrics.get(key, np.full((block.count, 0), np.nan)), dtype=np.float64)
            if values.ndim != 2 or values.shape[0] != block.count:
                raise MamrlError(f"controller {controller.name!r} returned {key} of shape {values.shape} for {block.count} episodes")
            out[key].append(values)
        reset = np.asarray(metrics.get("reset", np.zeros(block.count, dtype=bool)), dtype=bool)
        if reset.shape != (block.count,):
            raise MamrlError(f"controller {controller.name!r} returned reset of shape {reset.shape} for {block.count} episodes")
        out["reset"].append(reset)
    return {k: np.concatenate(v) for k, v in out.items()}


# ------------------------------------------------------------------------------ runs
@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs to compute a run (picklable)."""

    run: Run
    config: dict[str, Any]
    """The resolved config."""
    config_hash: str
    meta_init_file: str | None = None
    """`meta_init.pt` written by the driver (deep controllers only)."""
    policy_files: tuple[tuple[str, str], ...] = ()
    """(pre-trained policy kind, its file) written by the driver (`prepare_pretrained`)."""


@dataclass
class RunResult:
    """A finished run's rows and wall time."""

    run: Run
    rows: list[dict[str, Any]]
    wall_s: float


BIN_METRICS = ("generated_per_bin", "lost_per_bin")
"""Per-episode time bins (`sim.metrics.loss_bins`) recovery is measured from."""
KEY_COLUMNS: tuple[str, ...] = ("topology", "failure", "controller", "seed", "episode")
COLUMNS: tuple[str, ...] = (
    "config_hash",
    "topology",
    "failure",
    "held_out",
    "controller",
    "seed",
    "episode",
    "phase",
    "reset",
    "reward",
    "recovery_ticks",
    "transient_lost",
    *METRIC_INFO,
    "mamrl_version",
)
"""Header of curves.csv: one row per (topology, failure, controller, seed, episode)."""

_INT_COLUMNS = {"seed", "episode", "held_out", "reset"}
_STR_COLUMNS = {"config_hash", "topology", "failure", "controller", "phase", "mamrl_version"}


def intact_params(config: Mapping[str, Any]) -> SimParams:
    return SimParams(cached_topology(config["topology"]), config["load"], horizon_ticks=config["horizon_ticks"])


def load_meta_init(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Any]:
    """(meta-initialisation tensors, DeepConsensusConfig) from a `meta_init.pt`."""
    # lazy: torch takes ~1 s to import; only the deep controllers need it
    import torch

    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if payload.get("format") != META_INIT_FORMAT:
            raise ValueError("format")
        values = json.loads(payload["policy_config"])
    except Exception as exc:  # missing, corrupt or foreign: one line
        raise MamrlError(f"meta-initialisation {str(path)!r} is unreadable ({type(exc).__name__})") from None
    return dict(payload["params"]), policy_config_from(values)


def make_controller(task: RunTask) -> Controller:
    """The controller of a task, freshly initialised."""
    cfg, name = task.config, task.run.controller
    if name in STATIC_CONTROLLERS:
        if name.endswith("-reconverge"):
            return ReconvergingController(name.removesuffix("-reconverge"), cfg["reconvergence_delay_ticks"])
        return StaticRoutingController(name)
    if name in QUEUE_CONTROLLERS:
        return BackpressureController(name)
    if name == "q-routing":
        return QRoutingController(cfg["q_routing"])
    if name in DEEP_CONTROLLERS:
        # lazy: imports torch (~1 s); only the deep controllers need it
        from mamrl.meta.adaptation import make_deep_controllers

        if task.meta_init_file is None:
            raise MamrlError(f"controller {name!r} needs a meta-initialisation")
        init, policy_config = load_meta_init(task.meta_init_file)
        adaptation = adaptation_config(cfg["adaptation"], cfg["episodes_per_step"])
        agents = make_deep_controllers(init, cached_topology(cfg["topology"]), policy_config, adaptation, task.run.seed)
        for agent in agents:
            if agent.name == name:
                return AgentController(name, agent)
        raise MamrlError(f"make_deep_controllers returned no controller named {name!r}")
    if name in SCRATCH_CONTROLLERS + PRETRAINED_CONTROLLERS:
        # lazy: imports torch (~1 s); only the deep controllers need it
        from mamrl.meta.adaptation import make_comparator

        if name in PRETRAINED_CONTROLLERS:
            files = dict(task.policy_files)
            if PRETRAINED_POLICY[name] not in files:
                raise MamrlError(f"controller {name!r} needs the pre-trained {PRETRAINED_POLICY[name]} policy")
            initial, policy_config = load_meta_init(files[PRETRAINED_POLICY[name]])
        else:  # from random weights, with the meta-training's policy settings
            initial, policy_config = None, policy_config_from(cfg["maml"])
        adaptation = adaptation_config(cfg["adaptation"], cfg["episodes_per_step"])
        return AgentController(name, make_comparator(name, initial, cached_topology(cfg["topology"]), policy_config,
                                                     adaptation, task.run.seed))
    raise MamrlError(f"unknown controller {name!r}")


def policy_values(settings: Any) -> dict[str, Any]:
    """The `DeepConsensusConfig` fields of `settings` (a mapping, or a config such as `MamlConfig`)."""
    # lazy: imports torch (~1 s); only the deep controllers need it
    from mamrl.agents.deep_consensus import DeepConsensusConfig

    get = settings.__getitem__ if isinstance(settings, Mapping) else lambda name: getattr(settings, name)
    return {f.name: get(f.name) for f in dataclasses.fields(DeepConsensusConfig)}


def policy_config_from(settings: Any) -> Any:
    """`DeepConsensusConfig` from the policy fields of `settings` (JSON lists become tuples)."""
    # lazy: imports torch (~1 s); only the deep controllers need it
    from mamrl.agents.deep_consensus import DeepConsensusConfig

    return DeepConsensusConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in policy_values(settings).items()})


def run_failure_run(task: RunTask) -> RunResult:
    """Compute one run's curve rows (runs in a worker process)."""
    start = time.perf_counter()
    cfg, run = task.config, task.run
    intact = intact_params(cfg)
    topo = intact.topology
    link = failure_links(topo, run.failure)
    with single_threaded():
        controller = make_controller(task)
        per_episode = run_schedule(
            controller, intact, link, run.seed, episodes=cfg["episodes"], fail_episode=cfg["fail_episode"],
            fail_tick=cfg["fail_tick"], episodes_per_step=cfg["episodes_per_step"],
        )
    reward = common_reward(per_episode, cfg["loss_penalty_ticks"])
    f = cfg["fail_episode"]
    if per_episode["lost_per_bin"].shape[1]:
        recovery, transient = recovery_after_failure(per_episode["generated_per_bin"][f:], per_episode["lost_per_bin"][f:],
                                                     cfg["fail_tick"], LOSS_BIN_TICKS)
    else:  # a controller without the simulator's time bins
        recovery, transient = math.nan, math.nan
    phases = episode_phases(cfg["episodes"], cfg["fail_episode"])
    held = run.failure in cfg["held_out"]
    rows = []
    for e in range(cfg["episodes"]):
        row: Row = {
            "config_hash": task.config_hash,
            "topology": run.topology,
            "failure": run.failure,
            "held_out": int(held),
            "controller": run.controller,
            "seed": run.seed,
            "episode": e,
            "phase": phases[e],
            "reset": int(bool(per_episode["reset"][e])),
            "reward": float(reward[e]),
            "recovery_ticks": recovery,
            "transient_lost": transient,
        }
        for key in METRIC_INFO:
            row[key] = float(per_episode[key][e])
        row["mamrl_version"] = mamrl.__version__
        rows.append(row)
    return RunResult(run, rows, time.perf_counter() - start)


def run_cost(task: RunTask) -> float:
    """Relative cost, to start the longest runs first (results unaffected)."""
    return _run_cost(task.run.controller, task.config["episodes"], task.config["horizon_ticks"])


def _run_cost(controller: str, episodes: int, horizon_ticks: int) -> float:
    weight = 100.0 if controller in DEEP_CONTROLLERS else 2.0 if controller == "q-routing" else 1.0
    return weight * episodes * horizon_ticks


def failure_work(configs: Sequence[FailureExperimentConfig]) -> WorkShare:
    """The runs of one or more failure experiments weighted by `run_cost`, keyed (experiment
    index, run key): `finished([(index, run_key(row))])` gives the share of the estimated work done."""
    return WorkShare({(index, run.key): _run_cost(run.controller, config.episodes, config.horizon_ticks)
                      for index, config in enumerate(configs) for run in config.runs()})


# ------------------------------------------------------------------------------ executors
def describe_run(task: RunTask) -> str:
    """A task's name in error messages."""
    return f"run {task.run}"


def make_run_executor(workers: int | None, *, backend: str = "local", address: str | None = None) -> CellExecutor:
    """The sweep's executors running failure runs, longest first: locally in process for one
    worker, else a process pool; or on Ray (`backend="ray"`, see `make_backend_executor`)."""
    return make_backend_executor(backend, workers, address, run=run_failure_run, cost=run_cost, describe=describe_run)


# ------------------------------------------------------------------------------ curves.csv
SCHEMA = TableSchema(COLUMNS, frozenset(_INT_COLUMNS), frozenset(_STR_COLUMNS), "curves file")
"""curves.csv's columns and value types."""


def _refuse_old_header(path: Path, columns: Sequence[str]) -> None:
    if predates_loss_honest(columns):
        raise MamrlError(predates_loss_honest_message(path, "re-run the experiment into a new output directory to plot or extend it"))


def header_line() -> str:
    return SCHEMA.header()


def format_rows(rows: Iterable[Row]) -> str:
    return SCHEMA.format_rows(rows)


def read_curves(path: str | os.PathLike[str]) -> list[Row]:
    """The complete rows of a curves.csv (a trailing partial line is ignored)."""
    return read_table(path, SCHEMA, check_header=_refuse_old_header)


def run_key(row: Row) -> tuple[str, str, str, int]:
    return (row["topology"], row["failure"], row["controller"], int(row["seed"]))


def complete_runs(rows: Iterable[Row], episodes: int) -> dict[tuple, list[Row]]:
    """Rows grouped by run, keeping only runs with exactly episodes 0..episodes-1."""
    groups: dict[tuple, dict[int, Row]] = {}
    for row in rows:
        groups.setdefault(run_key(row), {})[int(row["episode"])] = row
    return {
        key: [by_episode[e] for e in range(episodes)]
        for key, by_episode in groups.items()
        if len(by_episode) == episodes and all(e in by_episode for e in range(episodes))
    }


class CurvesFile:
    """`curves.csv` of one output directory, with its `config.json` (`mamrl.runs.ResultsTable`):
    open (check or write the config, drop partial runs), append runs durably, rewrite in
    canonical order."""

    def __init__(self, output: str | os.PathLike[str], config: FailureExperimentConfig):
        self.output = Path(output)
        self.path = self.output / "curves.csv"
        self.config = config
        self.table = ResultsTable(self.path, SCHEMA, sidecar=self.output / "config.json", sidecar_format=CONFIG_FORMAT,
                                  resolved=config.resolved(), kind="failure-experiment",
                                  start_over="use a new output directory", check_header=_refuse_old_header)
        self.hash = self.table.hash
        self.runs: dict[tuple, list[Row]] = {}

    def open(self) -> None:
        if self.output.exists() and not self.output.is_dir():
            raise MamrlError(f"output {str(self.output)!r} exists and is not a directory")
        rows = self.table.open()
        self.runs = complete_runs(rows, self.config.episodes)
        if sum(len(v) for v in self.runs.values()) != len(rows):
            self._rewrite(list(self.runs.values()))  # drop partial runs (an interrupted write)

    def finished_keys(self) -> set[tuple]:
        """Keys of the complete runs already in curves.csv, changing nothing (`--dry-run`)."""
        if self.output.exists() and not self.output.is_dir():
            raise MamrlError(f"output {str(self.output)!r} exists and is not a directory")
        return set(complete_runs(self.table.read(), self.config.episodes))

    def _rewrite(self, runs: Iterable[list[Row]]) -> None:
        self.table.rewrite(row for rows in runs for row in rows)

    def append(self, result: RunResult) -> None:
        """Append a run's rows in one write and make them durable before returning."""
        self.table.append(result.rows)
        self.runs.setdefault(result.run.key, result.rows)

    def ordered(self, order: Sequence[Run]) -> list[list[Row]]:
        rank = {r.key: k for k, r in enumerate(order)}
        return [self.runs[k] for k in sorted(self.runs, key=lambda k: rank.get(k, len(rank)))]

    def finalize(self, order: Sequence[Run]) -> None:
        """Rewrite the file with its runs in canonical order (atomically)."""
        self._rewrite(self.ordered(order))


# ------------------------------------------------------------------------------ the meta-initialisation
def prepare_meta_init(config: FailureExperimentConfig, output: Path, *,
                      on_chunk: Callable[[dict[str, Any]], None] | None = None, task_executor: Any = None) -> Path:
    """Meta-train (or resume / reuse a finished meta-training) and write `output/meta_init.pt`.
    `on_chunk(row)` is called after every meta-iteration (`mamrl train`'s curve row);
    `task_executor` runs the meta-iterations' tasks (`maml.maml_task_executor`; None: in process)."""
    resolved = config.resolved()
    meta_dir = Path(config.meta_init) if config.meta_init is not None else output / "meta"
    if meta_dir.is_file():
        # A checkpoint file is used as it is (for example the last one of an unfinished meta-training).
        meta, arrays = RoutingAgent.read_checkpoint(meta_dir)
        if meta["name"] != "maml":
            raise MamrlError(f"{meta_dir} is a {meta['name']} checkpoint, not a maml meta-initialisation")
        topo = cached_topology(config.topology)
        trained_without = {topo.link_id(spec) for spec in meta["config"].get("held_out", [])}
        missing = [spec for spec in resolved["held_out"] if not set(failure_links(topo, spec)) <= trained_without]
        if missing:
            raise MamrlError(f"{meta_dir} was meta-trained with {', '.join(missing)} among its tasks; "
                             "a held-out test needs a meta-initialisation trained with it held out")
        learner = make_agent("maml", meta["config"])
        learner.load_state_arrays(arrays)
    else:
        learner = training.meta_train(config.topology, config.load_value(), maml_config(config.maml, config.meta_held_out()), meta_dir,
                             seed=config.meta_seed, iterations=config.meta_iterations, horizon_ticks=config.horizon_ticks,
                             on_chunk=on_chunk, task_executor=task_executor)
    return write_policy_file(output / "meta_init.pt", learner.initial_params(), policy_values(learner.policy_config), meta_dir)


def write_policy_file(path: Path, params: Mapping[str, Any], policy_values: Mapping[str, Any], source: Path) -> Path:
    """A deep policy's weights and settings as the workers read them (`load_meta_init`)."""
    payload = {
        "format": META_INIT_FORMAT,
        "params": {k: v.detach().cpu().clone() for k, v in params.items()},
        "policy_config": json.dumps(runs.jsonable(dict(policy_values))),
        "meta_dir": str(source),
    }
    return runs.save_torch(path, payload, "deep policy")


@dataclass(frozen=True)
class PretrainTask:
    """One pre-trained comparator's policy to train (or resume): picklable, for a worker process."""

    kind: str
    """`intact` or `multitask` (`FailureExperimentConfig.pretrained`)."""
    train_config: training.TrainConfig
    run_dir: str
    """Its `mamrl train` run directory (`output/pretrain/<kind>`)."""
    policy_file: str
    """Where its policy is written as the workers read it (`output/<kind>_policy.pt`)."""
    policy_values: dict[str, Any]
    """The meta-training's policy settings, recorded in the policy file."""

    def describe(self) -> str:
        return f"pre-training the {self.kind} policy into {self.run_dir} ({self.train_config.episodes} episodes)"


def pretrain_tasks(config: FailureExperimentConfig, output: Path) -> list[PretrainTask]:
    """The pre-trained comparators' policies: `intact`, the deep learner by TRPO on the intact
    network; `multitask`, across η(M) (`meta.multitask`). Both use the meta-training's policy
    settings, load, horizon and seed. None without a pre-trained controller (nor meta-training settings)."""
    if not config.pretrained:
        return []
    resolved = config.resolved()
    values = policy_values(resolved["maml"])
    tasks = []
    for kind in config.pretrained:
        algorithm_config = dict(values)
        if kind == "multitask":
            maml = resolved["maml"]
            algorithm_config.update(task_weighting=maml["task_weighting"], nominal_probability=maml["nominal_probability"],
                                    held_out=list(maml["held_out"]))
        train_config = training.TrainConfig(config.topology, config.load_value(), config.horizon_ticks, (),
                                            "mamrl" if kind == "intact" else "multitask", runs.jsonable(algorithm_config),
                                            resolved["pretrain_episodes"], config.meta_seed, 0, 0)
        tasks.append(PretrainTask(kind, train_config, str(output / "pretrain" / kind), str(output / f"{kind}_policy.pt"), values))
    return tasks


def run_pretrain_task(task: PretrainTask, on_chunk: Callable[[dict[str, Any]], None] | None = None) -> tuple[str, str]:
    """Train (or resume, or reuse) one pre-trained policy on one thread, as the runs are computed,
    so the policy does not depend on how many workers there are; (kind, policy file)."""
    with single_threaded():
        training.train_run(task.train_config, task.run_dir, on_chunk=on_chunk)
    agent = make_agent(task.train_config.algorithm, task.train_config.algorithm_config)
    _, arrays = RoutingAgent.read_checkpoint(Path(task.run_dir) / "checkpoint.pt")
    agent.load_state_arrays(arrays)
    return task.kind, str(write_policy_file(Path(task.policy_file), agent.policy.param_dict(), task.policy_values,
                                            Path(task.run_dir)))


def last_curve_row(run_dir: str) -> dict[str, Any] | None:
    """The last row of a training run's curves.csv (numbers as floats), None before its first."""
    try:
        lines = (Path(run_dir) / "curves.csv").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    if len(lines) < 2:
        return None
    row: dict[str, Any] = {}
    for key, value in zip(lines[0].split(","), lines[-1].split(",")):
        try:
            row[key] = float(value)
        except ValueError:
            row[key] = value
    return row


class _CurveWatcher:
    """Reports the progress of trainings running in other processes, by reading their curves.csv
    every `interval_s` (each is rewritten whole, atomically, after every chunk)."""

    def __init__(self, tasks: Sequence[PretrainTask], on_chunk: Callable[[dict[str, Any]], None], interval_s: float = 5.0):
        self.tasks, self.on_chunk, self.interval_s = tasks, on_chunk, interval_s
        self.seen: dict[str, Any] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="pretrain-progress", daemon=True)

    def _watch(self) -> None:
        while not self.stop.wait(self.interval_s):
            for task in self.tasks:
                row = last_curve_row(task.run_dir)
                if row is not None and row.get("episodes") != self.seen.get(task.kind):
                    self.seen[task.kind] = row.get("episodes")
                    self.on_chunk({**row, "episodes": int(row.get("episodes") or 0), "stage": task.describe()})

    def __enter__(self) -> "_CurveWatcher":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def prepare_pretrained(config: FailureExperimentConfig, output: Path, *,
                       on_chunk: Callable[[dict[str, Any]], None] | None = None, workers: int = 1) -> dict[str, str]:
    """Train (or resume, or reuse) the pre-trained comparators' policies (`pretrain_tasks`) into
    `output/pretrain/<kind>` (`mamrl train` run directories) and write `output/<kind>_policy.pt`;
    returns kind → file. With `workers` > 1 they train side by side in local worker processes
    (hours each at the paper's budget), reporting progress from their curves; the result is the same."""
    tasks = pretrain_tasks(config, output)
    files: dict[str, str] = {}
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            report = None if on_chunk is None else (lambda row, what=task.describe(): on_chunk({**row, "stage": what}))
            kind, file = run_pretrain_task(task, report)
            files[kind] = file
        return files
    with make_backend_executor("local", min(workers, len(tasks)), None, run=run_pretrain_task,
                               describe=PretrainTask.describe) as executor:
        watcher = _CurveWatcher(tasks, on_chunk) if on_chunk is not None else contextlib.nullcontext()
        with watcher:
            for kind, file in executor.map_cells(tasks):
                files[kind] = file
    return files


# ------------------------------------------------------------------------------ the experiment
@dataclass
class FailureOutcome:
    """What a `run_failure_experiment` call did."""

    output: Path
    total_runs: int
    skipped: int
    ran: int
    wall_time_s: float
    complete: bool
    rows: list[Row] = field(default_factory=list)
    """Every row of curves.csv in canonical order."""


OnRun = Callable[[RunResult, int, int], None]
"""Called after each run is written with (result, runs finished incl. skipped, total runs)."""


def run_failure_experiment(
    config: FailureExperimentConfig,
    *,
    executor: Any = None,
    on_start: Callable[[list[tuple], int], None] | None = None,
    on_run: OnRun | None = None,
    stop_after: int | None = None,
    on_meta_chunk: Callable[[dict[str, Any]], None] | None = None,
    meta_executor: Any = None,
) -> FailureOutcome:
    """Run (or resume) the experiment into `config.output`: skip the runs already complete in
    curves.csv, compute the rest (meta-training first if a deep controller needs it), write
    run.json. `on_meta_chunk(row)` reports meta-training progress; `on_start(done_keys, total)` is
    called once the meta-initialisation is ready, before the first run; `stop_after=k` stops
    after k new runs (a test hook for interruptions). `meta_executor` runs meta-training's tasks
    (`prepare_meta_init`). The output directory is locked while it runs (`runs.lock_output`)."""
    output = Path(config.output)
    with runs.lock_output(output, "--output"):
        return _run_locked(config, output, executor=executor, on_start=on_start, on_run=on_run, stop_after=stop_after,
                           on_meta_chunk=on_meta_chunk, meta_executor=meta_executor)


def _run_locked(config: FailureExperimentConfig, output: Path, *, executor: Any, on_start: Callable[[list[tuple], int], None] | None,
                on_run: OnRun | None, stop_after: int | None, on_meta_chunk: Callable[[dict[str, Any]], None] | None,
                meta_executor: Any) -> FailureOutcome:
    start = time.perf_counter()
    curves = CurvesFile(output, config)
    curves.open()
    clock = runs.AttemptClock(output / "attempts.json").start()
    try:
        order = config.runs()
        todo = [r for r in order if r.key not in curves.runs]
        skipped = len(order) - len(todo)
        work = bool(todo) and (stop_after is None or stop_after > 0)

        def chunk(row: dict[str, Any]) -> None:
            clock.tick()  # hours of (pre-)training before the first run: a kill there keeps its time
            if on_meta_chunk is not None:
                on_meta_chunk(row)

        meta_file, policy_files = None, {}
        if work and any(r.controller in DEEP_CONTROLLERS for r in todo):
            meta_file = str(prepare_meta_init(config, output, on_chunk=chunk, task_executor=meta_executor))
        if work and any(r.controller in PRETRAINED_CONTROLLERS for r in todo):
            policy_files = prepare_pretrained(config, output, on_chunk=chunk, workers=config.effective_workers())
        if on_start is not None:
            on_start([r.key for r in order if r.key in curves.runs], len(order))
        walls = dict(_previous_run_walls(output))
        done = [skipped]
        attempt = runs.provenance()  # once per attempt: it asks git (three subprocesses) for the commit

        def record(result: RunResult) -> None:
            curves.append(result)
            clock.tick()
            done[0] += 1
            walls[str(result.run)] = round(result.wall_s, 3)
            # run.json as each run finishes: an attempt stopped by a signal or a kill keeps its runs' times
            _write_run_json(output, curves.hash, config, clock, attempt, wall_s=time.perf_counter() - start,
                            total=len(order), skipped=skipped, ran=done[0] - skipped, complete=False, walls=walls)
            if on_run is not None:
                on_run(result, done[0], len(order))

        tasks = [RunTask(r, curves.table.resolved, curves.hash, meta_file, tuple(sorted(policy_files.items()))) for r in todo] if work else []
        ran = run_tasks(tasks, record, executor=executor, stop_after=stop_after,
                        make_executor=lambda count: make_run_executor(min(config.effective_workers(), count)))
        curves.finalize(order)
        rows = [row for run_rows in curves.ordered(order) for row in run_rows]
        complete = all(r.key in curves.runs for r in order)
        wall = time.perf_counter() - start
    except BaseException:
        clock.tick()  # an interrupted attempt keeps its time up to now (the manifest's rule too)
        raise
    clock.stop()
    _write_run_json(output, curves.hash, config, clock, runs.provenance(), wall_s=wall, total=len(order),
                    skipped=skipped, ran=ran, complete=complete, walls=walls)
    return FailureOutcome(output, len(order), skipped, ran, wall, complete, rows)


def _previous_run_walls(output: Path) -> dict[str, float]:
    """Per-run wall times (s) an earlier attempt recorded in run.json ({} if none or unreadable)."""
    try:
        walls = json.loads((output / "run.json").read_text(encoding="utf-8")).get("run_wall_s", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return walls if isinstance(walls, dict) else {}


def _write_run_json(output: Path, config_hash: str, config: FailureExperimentConfig, clock: runs.AttemptClock,
                    provenance: Mapping[str, Any], *, wall_s: float, total: int, skipped: int, ran: int, complete: bool,
                    walls: Mapping[str, float]) -> None:
    """run.json: seeds, `provenance` (`runs.provenance()`), this attempt's and every attempt's wall time,
    the runs' count, and every finished run's wall time in any attempt (`run_wall_s`)."""
    runs.write_json(output / "run.json", {
        "config_hash": config_hash,
        "seeds": list(config.seeds),
        **provenance,
        "wall_time_s": round(wall_s, 3),
        "total_wall_time_s": clock.total_s(),
        "workers": config.effective_workers(),
        "runs": {"total": total, "skipped": skipped, "ran": ran, "complete": complete},
        "run_wall_s": dict(walls),
    })
