"""One-command reproduction of the paper's evaluation (E1 and E2): `mamrl reproduce`.

Stages, in order, each writing into a subfolder of the output directory:

* `e1`         — the load sweep (`mamrl.experiments.sweep.run_sweep`) into `e1/`: one resumable sweep
  per training budget (the deep learner may get fewer episodes than the tabular learners, see
  `ReproduceConfig.algorithm_train_episodes`), merged into `e1/results.csv`;
* `saturation` — the saturation bisection (`mamrl.experiments.saturation.saturation_search`) of each
  configured algorithm on each topology into `saturation/<topology>-<algorithm>.json`;
* `meta`       — MAML-TRPO meta-training per topology (`mamrl.experiments.failures.prepare_meta_init`,
  i.e. `mamrl.training.meta_train`) into `e2/<topology>/meta/`, with `e2/<topology>/meta_init.pt`;
* `e2`         — the link-failure experiment per topology
  (`mamrl.experiments.failures.run_failure_experiment`) into `e2/<topology>/`, reusing that
  meta-initialisation;
* `report`     — figures, tables and `REPORT.md` (`mamrl.report.markdown.write_report`).

Resuming
--------
`manifest.json` in the output directory holds the resolved configuration (`ReproduceConfig.resolved`)
and, per stage, its state, its wall time per attempt (stored as work progresses, so a killed
attempt counts up to its last finished unit of work) and, once done, the size and sha256 of each
of its output files (`stage_outputs`). Re-running the same command skips a finished stage only
if its files are still as recorded: a deleted file makes the stage run again (it resumes from what
is left and recomputes the rest; results are deterministic), a truncated or changed one is one
line naming it (delete it to have it recomputed). After any stage ran, the report is redrawn. An
interrupted stage resumes inside itself, because each one's own files are resumable (the sweep's
results CSV, `mamrl train`'s checkpoints, the failure experiment's curves.csv, one JSON file per
saturation search). A different configuration in the same directory is refused with one line,
and so is a second run on the same directory while one is running (`runs.lock_output`).

The configuration, presets and manifest are `mamrl.experiments.reproduce_config`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mamrl import runs
from mamrl.algorithms import make_agent
from mamrl.errors import MamrlError
from mamrl.executors import make_backend_executor, single_threaded
from mamrl.experiments import failures as failures_module
from mamrl.experiments.config import (
    SweepConfig,
)
from mamrl.experiments.failures import make_run_executor, prepare_meta_init, run_failure_experiment
from mamrl.experiments.failures.experiment import CurvesFile, failure_work, last_curve_row, pretrain_tasks
from mamrl.experiments.reproduce_config import (
    REPORT,
    STAGE_NAMES,
    STAGES,
    Manifest,
    check_stage_name,
    meta_curves,
    ReproduceConfig,
)
from mamrl.experiments.saturation import saturation_search, trained_agent_factory
from mamrl.experiments.sweep import (
    MERGED_SIDECAR_FORMAT,
    ResultsFile,
    cell_cost,
    format_row,
    header_line,
    read_results,
    run_cell,
    run_sweep,
    sidecar_path,
    row_key,
    sweep_cells,
    sweep_work,
)
from mamrl.runs import config_hash, jsonable
from mamrl.topologies import load_topology


# ------------------------------------------------------------------------------ progress
class StageListener:
    """Receives the progress of `run_reproduce` (the CLI draws it with rich). Every method is a no-op here."""

    def opened(self, stages_done: Sequence[str]) -> None:
        """The output directory is ready (created, or checked to hold this configuration, with `stages_done` finished)."""

    def stage_started(self, name: str, title: str, total: int, completed: int, unit: str) -> None:
        """A stage starts with `total` units of work (`unit`: cells, searches, iterations, runs), `completed` already done."""

    def advanced(self, name: str, completed: int, total: int, detail: str, share: float | None = None) -> None:
        """A unit of work finished; `share`, where units differ in cost, the estimated share of
        the stage's work now done (E1: cells weighted by `cell_cost`)."""

    def skipped(self, name: str, completed: int, total: int, detail: str, share: float | None = None) -> None:
        """Units found already done in the output directory (a resumed stage): no work of this attempt."""

    def stage_finished(self, name: str, title: str, wall_s: float, skipped: bool) -> None:
        """A stage finished (`skipped`: it was already done in the output directory)."""

    def notice(self, message: str) -> None:
        """Something the user should know (a finished stage runs again because its files were deleted)."""


class _Ticking(StageListener):
    """Forwards to a listener and stores the running stage's wall time in the manifest at every
    unit of work (so a killed attempt's time is kept)."""

    def __init__(self, inner: StageListener, manifest: Manifest):
        self.inner, self.manifest = inner, manifest

    def opened(self, stages_done: Sequence[str]) -> None:
        self.inner.opened(stages_done)

    def stage_started(self, name: str, title: str, total: int, completed: int, unit: str) -> None:
        self.inner.stage_started(name, title, total, completed, unit)

    def advanced(self, name: str, completed: int, total: int, detail: str, share: float | None = None) -> None:
        self.manifest.tick(name)
        self.inner.advanced(name, completed, total, detail, share)

    def skipped(self, name: str, completed: int, total: int, detail: str, share: float | None = None) -> None:
        self.inner.skipped(name, completed, total, detail, share)

    def stage_finished(self, name: str, title: str, wall_s: float, skipped: bool) -> None:
        self.inner.stage_finished(name, title, wall_s, skipped)

    def notice(self, message: str) -> None:
        self.inner.notice(message)


@dataclass
class ReproduceOutcome:
    """What a `run_reproduce` call did."""

    output: Path
    stages: dict[str, str]
    """Per stage: `ran`, `skipped` (already done) or `not run` (stopped before it)."""
    wall_time_s: float
    """Wall time of this call."""
    report: Path | None
    """REPORT.md, once written."""

    def summary(self) -> str:
        ran = [name for name, state in self.stages.items() if state == "ran"]
        skipped = [name for name, state in self.stages.items() if state == "skipped"]
        return (f"reproduce finished in {self.wall_time_s:.0f} s (stages run: {', '.join(ran) or 'none'}; "
                f"already done: {', '.join(skipped) or 'none'})"
                + (f" → {self.report}" if self.report is not None else f"; results in {self.output}, no report yet"))


# ------------------------------------------------------------------------------ executors
def make_stage_executor(config: ReproduceConfig, workers: int | None = None, *, run: Callable[[Any], Any] | None = None,
                        cost: Callable[[Any], float] | None = None, describe: Callable[[Any], str] | None = None):
    """The executor of a stage's tasks on the configured backend (`mamrl.executors.make_backend_executor`):
    locally in process for one worker, else a process pool; or Ray tasks. `run` is the task
    function (default: a sweep cell); `workers` defaults to the config's."""
    if run is None:
        run, cost, describe = run_cell, cell_cost, (lambda task: f"cell {task.cell}")
    return make_backend_executor(config.backend, config.workers if workers is None else workers, config.address,
                                 run=run, cost=cost, describe=describe)


# ------------------------------------------------------------------------------ stage: E1
def merge_sweeps(config: ReproduceConfig, groups: Sequence[SweepConfig]) -> Path:
    """Write `e1/results.csv`: the rows of every E1 sweep in canonical order (topologies and
    algorithms as configured, loads ascending, seeds), in the sweep's results format."""
    rows = [row for g in groups for row in read_results(g.results)]
    topo_rank = {t: k for k, t in enumerate(config.topologies)}
    algo_rank = {a: k for k, a in enumerate(config.sweep["algorithms"])}
    rows.sort(key=lambda r: (topo_rank.get(r["topology"], 99), algo_rank.get(r["algorithm"], 99), r["load"], r["seed"]))
    path = config.out / "e1" / "results.csv"
    runs.write_text(path, header_line() + "".join(format_row(r) for r in rows))
    # The merged file holds rows of several sweep configs (one per training budget): its sidecar
    # names each, so a plot still refuses a row that none of them produced.
    runs.write_json(sidecar_path(path), {
        "format": MERGED_SIDECAR_FORMAT,
        "merged": [{"config_hash": config_hash(g.resolved()), "config": g.resolved(),
                    "results": Path(g.results).name} for g in groups],
        "created": runs.provenance(),
    })
    return path


def _stage_e1(config: ReproduceConfig, listener: StageListener, title: str) -> None:
    groups = config.sweep_groups()
    total = sum(len(sweep_cells(g)) for g in groups)
    state = {"done": 0}
    work = sweep_work(groups)  # a deep cell costs a hundred others: the time left follows cost
    listener.stage_started("e1", title, total, 0, "cells")
    with make_stage_executor(config) as executor:
        for index, group in enumerate(groups):
            base = state["done"]

            def on_start(done_keys: list[tuple], _total: int, base: int = base, index: int = index) -> None:
                state["done"] = base + len(done_keys)
                if done_keys:
                    listener.skipped("e1", state["done"], total, f"{', '.join(group.algorithms)}: {len(done_keys)} cells already done",
                                     work.finished((index, key) for key in done_keys))

            def on_row(row: dict[str, Any], done: int, _total: int, base: int = base, index: int = index) -> None:
                state["done"] = base + done
                listener.advanced("e1", state["done"], total,
                                  f"{row['topology']} {row['algorithm']} λ={row['load']:g} seed {row['seed']}: "
                                  f"sojourn {row['mean_sojourn_time_mean']:.3g}, delivered {100 * row['delivered_fraction_mean']:.1f}%",
                                  work.finished([(index, row_key(row))]))

            outcome = run_sweep(group, executor=executor, on_start=on_start, on_row=on_row)
            if not outcome.complete:  # pragma: no cover - run_sweep completes unless stopped
                raise MamrlError(f"E1 sweep {group.results} did not complete")
            state["done"] = base + outcome.total_cells
    merge_sweeps(config, groups)


# ------------------------------------------------------------------------------ stage: saturation
@dataclass(frozen=True)
class SaturationTask:
    """One saturation search (picklable, for the stage's executor)."""

    topology: str
    algorithm: str
    settings: dict[str, Any]
    """`SaturationSettings` as a dict."""
    algorithm_config: dict[str, Any]
    path: str
    """The JSON file the result goes to."""
    config: dict[str, Any]
    """What determines the result (stored in the file; a file with another one is recomputed)."""


def run_saturation_task(task: SaturationTask) -> dict[str, Any]:
    """Run one saturation search; returns the document of its JSON file (runs in a worker, maybe on
    another machine: the calling process writes the file)."""
    s = task.settings
    factory = trained_agent_factory(task.algorithm, task.algorithm_config, s["train_episodes"], s["train_horizon_ticks"])
    with single_threaded():
        result = saturation_search(load_topology(task.topology), task.algorithm, factory, low=s["low"], high=s["high"],
                                   tolerance=s["tolerance"], horizon_ticks=s["horizon_ticks"], episodes=s["episodes"],
                                   max_episodes=s["max_episodes"], seeds=s["seeds"])
    return {**result.as_dict(), "topology_spec": task.topology, "config": task.config, "path": task.path,
            "description": result.describe(), **runs.provenance()}


def saturation_tasks(config: ReproduceConfig) -> list[SaturationTask]:
    """One search per (topology, algorithm), with the algorithm's E1 hyper-parameters."""
    settings = dataclasses.asdict(config.saturation)
    algorithm_config = dict(config.sweep.get("algorithm_config", {}))
    out = []
    for topo, slug in config.topology_slugs().items():
        for algo in config.saturation.algorithms:
            algo_config = make_agent(algo, dict(algorithm_config.get(algo, {}))).config()
            determining = json.loads(json.dumps(jsonable({"topology": topo, "algorithm": algo, "settings": settings,
                                                          "algorithm_config": algo_config})))
            out.append(SaturationTask(topo, algo, settings, dict(algorithm_config.get(algo, {})),
                                      str(config.out / "saturation" / f"{slug}-{algo}.json"), determining))
    return out


def _saturation_done(task: SaturationTask) -> bool:
    try:
        return json.loads(Path(task.path).read_text(encoding="utf-8")).get("config") == task.config
    except (OSError, ValueError, AttributeError):
        return False


def _stage_saturation(config: ReproduceConfig, listener: StageListener, title: str) -> None:

    tasks = saturation_tasks(config)
    todo = [t for t in tasks if not _saturation_done(t)]
    done = len(tasks) - len(todo)
    listener.stage_started("saturation", title, len(tasks), done, "searches")
    if not todo:
        return
    (config.out / "saturation").mkdir(parents=True, exist_ok=True)
    def cost(task: SaturationTask) -> float:
        # Learning algorithms retrain at every probe: start them first (shorter tail).
        return 0.0 if task.algorithm in ("spa", "random") else 1.0

    with make_stage_executor(config, min(config.workers, len(todo)), run=run_saturation_task, cost=cost,
                             describe=lambda t: f"saturation search {t.algorithm} on {t.topology}") as executor:
        for doc in executor.map_cells(todo):
            runs.write_json(doc.pop("path"), doc)
            done += 1
            listener.advanced("saturation", done, len(tasks), doc["description"])


# ------------------------------------------------------------------------------ stages: meta-training and E2
def _deep_topologies(config: ReproduceConfig) -> list[str]:
    return [t for t in config.topologies if config.failure_config(t).deep]


def _stage_meta(config: ReproduceConfig, listener: StageListener, title: str) -> None:
    # lazy: imports torch (~1 s); only meta-training needs it
    from mamrl.meta.maml import maml_task_executor

    topologies = _deep_topologies(config)
    per = {t: config.failure_config(t) for t in topologies}
    total = sum(c.meta_iterations for c in per.values())
    done_before = {t: min(meta_curves(Path(c.output) / "meta")[0], c.meta_iterations) for t, c in per.items()}
    listener.stage_started("meta", title, total, sum(done_before.values()), "iterations")
    # On Ray each meta-iteration's tasks go to the cluster; locally meta-training runs in this
    # process (all cores for one task beats one core per task here).
    executor = maml_task_executor(config.backend, config.workers, config.address) if config.backend == "ray" else None
    try:
        _meta_train_all(per, listener, total, executor)
    finally:
        if executor is not None:
            executor.close(wait=False)


def _meta_train_all(per: dict[str, Any], listener: StageListener, total: int, executor: Any) -> None:
    offset = 0
    for topo, fcfg in per.items():
        episodes_per = failures_module.maml_config(fcfg.maml).episodes_per_meta_iteration
        base = offset

        def on_chunk(row: dict[str, Any], base: int = base, topo: str = topo) -> None:
            iteration = int(row["episodes"]) // max(episodes_per, 1)
            reward = row.get("reward")
            detail = (f"{topo}: iteration {iteration}, {row.get('seconds', 0):.1f} s"
                      + (f", post-adaptation reward {reward:.3g}" if isinstance(reward, (int, float)) else "")
                      + f", delivered {100 * (row.get('delivered_fraction') or 0):.1f}%")
            listener.advanced("meta", base + iteration, total, detail)

        prepare_meta_init(fcfg, Path(fcfg.output), on_chunk=on_chunk, task_executor=executor)
        offset += fcfg.meta_iterations
        listener.advanced("meta", offset, total, f"{topo}: meta-initialisation ready")


def _stage_e2(config: ReproduceConfig, listener: StageListener, title: str) -> None:
    per = {t: config.failure_config(t) for t in config.topologies}
    total = sum(len(c.runs()) for c in per.values())
    state = {"done": 0}
    work = failure_work(list(per.values()))  # a deep run costs a hundred classical ones: the time left follows cost
    listener.stage_started("e2", title, total, 0, "runs")
    with make_run_executor(config.workers, backend=config.backend, address=config.address) as executor:
        for index, (topo, fcfg) in enumerate(per.items()):
            base = state["done"]

            def on_start(done_keys: list[tuple], _total: int, base: int = base, index: int = index) -> None:
                state["done"] = base + len(done_keys)
                if done_keys:
                    listener.skipped("e2", state["done"], total, f"{topo}: {len(done_keys)} runs already done",
                                     work.finished((index, key) for key in done_keys))

            def on_run(result: Any, done: int, _total: int, base: int = base, index: int = index) -> None:
                state["done"] = base + done
                after = [r["loss_fraction"] for r in result.rows if r["phase"] != "intact"]
                loss = sum(after) / len(after) if after else float("nan")
                listener.advanced("e2", state["done"], total,
                                  f"{result.run}: loss after the failure {100 * loss:.2f}%, {result.wall_s:.1f} s",
                                  work.finished([(index, result.run.key)]))

            def on_training(row: dict[str, Any], topo: str = topo) -> None:
                # Pre-training the fine-tune and zero-shot comparators' policies: hours at the paper's budget.
                listener.advanced("e2", state["done"], total, f"{topo}: {row.get('stage', 'training')}: "
                                                              f"{int(row['episodes'])} episodes done")

            outcome = run_failure_experiment(fcfg, executor=executor, on_start=on_start, on_run=on_run,
                                             on_meta_chunk=on_training)
            if not outcome.complete:  # pragma: no cover
                raise MamrlError(f"E2 on {topo} did not complete")
            state["done"] = base + outcome.total_runs


# ------------------------------------------------------------------------------ stage: report
def _stage_report(config: ReproduceConfig, manifest: Manifest, listener: StageListener, title: str) -> Path:
    # lazy: matplotlib only when drawing
    from mamrl.plotting.failures import write_failure_report
    from mamrl.plotting.sweep import write_sweep_report
    from mamrl.report.markdown import write_report

    steps = 2 + len(config.topologies)
    listener.stage_started("report", title, steps, 0, "steps")
    listener.advanced("report", 0, steps, "drawing E1 figures")
    write_sweep_report(config.out / "e1" / "results.csv", config.out / "e1")
    for k, topo in enumerate(config.topologies):
        listener.advanced("report", 1 + k, steps, f"drawing E2 figures and Table 2 on {topo}")
        write_failure_report(config.failure_config(topo).output)
    listener.advanced("report", steps - 1, steps, "writing REPORT.md")
    manifest.tick("report")
    path = write_report(config, manifest.doc, manifest.wall_times())
    listener.advanced("report", steps, steps, "REPORT.md")
    return path


# ------------------------------------------------------------------------------ the driver
REPORT_FILES = (REPORT, "lambda05.md", "lambda05.csv", "table2.md", "table2.csv")
"""The report stage's recorded outputs (its figures are redrawn with it, not checked)."""


def stage_outputs(config: ReproduceConfig, name: str) -> list[Path]:
    """The files a stage leaves, whose size and sha256 the manifest records when it is done and
    checks before skipping it. Each is written only by its own stage (a later stage may rewrite
    one with identical bytes: meta_init.pt and the meta-training curves when E2 resumes)."""
    out = config.out
    if name == "e1":
        groups = config.sweep_groups()
        merged = out / "e1" / "results.csv"
        return [Path(g.results) for g in groups] + [sidecar_path(g.results) for g in groups] + [merged, sidecar_path(merged)]
    if name == "saturation":
        return [Path(t.path) for t in saturation_tasks(config)]
    if name == "meta":
        dirs = [Path(config.failure_config(t).output) for t in _deep_topologies(config)]
        return [d / "meta" / f for d in dirs for f in ("config.json", "checkpoint.pt", "curves.csv")] + [d / "meta_init.pt" for d in dirs]
    if name == "e2":
        dirs = [Path(config.failure_config(t).output) for t in config.topologies]
        return [d / f for d in dirs for f in ("config.json", "curves.csv", "run.json")]
    return [out / f for f in REPORT_FILES]


def _records(config: ReproduceConfig, name: str) -> dict[str, Any]:
    out = config.out
    return {str(p.relative_to(out)): runs.file_record(p) for p in stage_outputs(config, name) if p.is_file()}


def stage_progress(config: ReproduceConfig) -> list[str]:
    """One line per stage on what the output folder already holds (`--dry-run`): its state, wall
    time and attempts from the manifest, and the finished units of work counted in its own files
    (cells, searches, meta-iterations, pre-training episodes, runs). Reads only."""
    doc = Manifest(config).existing() or {"stages": {}}

    def head(name: str) -> str:
        entry = doc["stages"].get(name, {})
        text = f"{name}: {entry.get('status', 'not started')}"
        if isinstance(entry.get("wall_s"), (int, float)):
            attempts = int(entry.get("attempts", 1))
            text += f", {entry['wall_s']:,.0f} s of wall time in {attempts} attempt{'s' if attempts != 1 else ''}"
        return text

    groups = config.sweep_groups()
    cells = [(g, sweep_cells(g)) for g in groups]
    e1_done = sum(len({c.key for c in group_cells} & ResultsFile(g.results, g).finished_keys()) for g, group_cells in cells)
    lines = [f"{head('e1')}; {e1_done} of {sum(len(c) for _, c in cells)} cells"]
    searches = saturation_tasks(config)
    lines.append(f"{head('saturation')}; {sum(map(_saturation_done, searches))} of {len(searches)} searches")
    meta = []
    for topo in _deep_topologies(config):
        fcfg = config.failure_config(topo)
        iterations, seconds = meta_curves(Path(fcfg.output) / "meta")
        meta.append(f"{topo} {min(iterations, fcfg.meta_iterations)} of {fcfg.meta_iterations}"
                    + (f" ({seconds:,.0f} s in its curves)" if iterations else ""))
    lines.append(f"{head('meta')}; iterations: {', '.join(meta) or 'none to run'}")
    parts = []
    for topo in config.topologies:
        fcfg = config.failure_config(topo)
        order = fcfg.runs()
        done = {r.key for r in order} & CurvesFile(fcfg.output, fcfg).finished_keys()
        pre = []
        for task in pretrain_tasks(fcfg, Path(fcfg.output)):
            last = last_curve_row(task.run_dir)
            episodes = int(last["episodes"]) if last and isinstance(last.get("episodes"), float) else 0
            pre.append(f"{task.kind} {episodes:,} of {task.train_config.episodes:,}")
        parts.append(f"{topo} {len(done)} of {len(order)} runs" + (f" (pre-training episodes: {', '.join(pre)})" if pre else ""))
    lines.append(f"{head('e2')}; {'; '.join(parts)}")
    lines.append(head("report") + ("" if (config.out / REPORT).is_file() else "; no REPORT.md yet"))
    return lines


STAGE_NEEDS: dict[str, tuple[str, ...]] = {"e2": ("meta",), "report": ("e1", "saturation", "meta", "e2")}
"""The stages a stage reads: run alone (`only_stage`), it needs them done first. E1, saturation and
meta-training read nothing of each other, so they can run in any order (meta-training first makes
the meta-initialisations available hours before E1 ends)."""


def run_reproduce(config: ReproduceConfig, *, listener: StageListener | None = None,
                  stop_after_stage: str | None = None, only_stage: str | None = None) -> ReproduceOutcome:
    """Run (or resume) every stage into `config.output`, holding its lock. `only_stage` runs (or
    resumes) that stage alone, if the stages it reads (`STAGE_NEEDS`) are done; its attempts are
    recorded in the manifest like any other, and the full command later skips it. `stop_after_stage`
    stops once that stage is done (a test hook standing in for a kill)."""
    check_stage_name(stop_after_stage)
    check_stage_name(only_stage)
    manifest = Manifest(config)
    existing = manifest.existing()  # a foreign or different folder is refused before anything is written in it
    if only_stage is not None:
        done = existing["stages"] if existing else {}
        missing = [n for n in STAGE_NEEDS.get(only_stage, ()) if done.get(n, {}).get("status") != "done"]
        if missing:
            raise MamrlError(f"stage {only_stage} reads the {', '.join(missing)} stage(s), not done yet in {config.out}: "
                             f"run them first (--stage {missing[0]}), or the whole command")
    with runs.lock_output(config.out, "--output"):
        return _run_locked(config, manifest, listener or StageListener(), stop_after_stage, only_stage)


def _run_locked(config: ReproduceConfig, manifest: Manifest, outer: StageListener,
                stop_after_stage: str | None, only_stage: str | None = None) -> ReproduceOutcome:
    start = time.perf_counter()
    manifest.open()
    listener = _Ticking(outer, manifest)
    rerun = {name: manifest.check_files(name) == "rerun" for name in STAGE_NAMES if manifest.done(name)}
    listener.opened([name for name in STAGE_NAMES if manifest.done(name) and not rerun[name]])
    status = {name: "not run" for name in STAGE_NAMES}
    report: Path | None = None
    runners: dict[str, Callable[[str], Any]] = {
        "e1": lambda title: _stage_e1(config, listener, title),
        "saturation": lambda title: _stage_saturation(config, listener, title),
        "meta": lambda title: _stage_meta(config, listener, title),
        "e2": lambda title: _stage_e2(config, listener, title),
        "report": lambda title: _stage_report(config, manifest, listener, title),
    }
    for name, title in STAGES:
        if only_stage is not None and name != only_stage:
            continue
        upstream_ran = name == "report" and "ran" in status.values()
        if manifest.done(name) and not rerun[name] and not upstream_ran:
            status[name] = "skipped"
            listener.stage_finished(name, title, float(manifest.stage(name).get("wall_s", 0.0)), True)
        else:
            if manifest.done(name) and rerun[name]:
                listener.notice(f"{title}: some of its files are missing or unrecorded; running it again "
                                "(it resumes from what is left)")
            manifest.start_attempt(name)
            try:
                result = runners[name](title)
            except BaseException:
                manifest.tick(name)  # an interrupted attempt's time counts too
                raise
            if name == "report":
                report = result
            manifest.tick(name, finished=True, files=_records(config, name))
            status[name] = "ran"
            listener.stage_finished(name, title, float(manifest.stage(name)["wall_s"]), False)
        if name == stop_after_stage:
            break
    if report is None and (config.out / REPORT).is_file():
        report = config.out / REPORT
    return ReproduceOutcome(config.out, status, time.perf_counter() - start, report)


__all__ = [
    "ReproduceOutcome",
    "SaturationTask",
    "STAGE_NEEDS",
    "StageListener",
    "make_stage_executor",
    "merge_sweeps",
    "run_reproduce",
    "run_saturation_task",
    "saturation_tasks",
    "stage_outputs",
    "stage_progress",
]
