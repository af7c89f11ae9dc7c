"""The link-failure experiment as `mamrl failures` runs it: options to a validated config, the
backend's executors (connected before any work and closed on every exit path), and the lines
that report progress."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mamrl.errors import MamrlError
from mamrl.executors import check_backend
from mamrl.experiments.config import split_list
from mamrl.experiments.failures.feasibility import check_load_spec
from mamrl.experiments.failures import (
    CurvesFile,
    FailureExperimentConfig,
    FailureOutcome,
    build_failure_config,
    make_run_executor,
    run_failure_experiment,
)

FIGURE_FORMATS = ("png", "pdf", "svg")

_LIST_OPTIONS = {"failures": "--failure", "held_out": "--held-out"}
OPTION_FLAGS = {"horizon_ticks": "--horizon", "failures": "--failure", "output": "--output"}
"""Command-line flag of each config field whose flag is not `--<field-with-dashes>`."""


def figure_formats(formats: Sequence[str]) -> list[str]:
    """`--format` values as file suffixes (`.PNG` → `png`); one line naming an unknown one."""
    fmts = [f.strip().lower().lstrip(".") for f in formats]
    for fmt in fmts:
        if fmt not in FIGURE_FORMATS:
            raise MamrlError(f"--format: unknown figure format {fmt!r} (choose from {', '.join(FIGURE_FORMATS)})")
    return fmts


def _overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """Config overrides from option values (None: not given); list options may repeat or hold commas."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None or (isinstance(value, list) and not value):
            continue
        if key in _LIST_OPTIONS:
            out[key] = [part for item in value for part in split_list(item, _LIST_OPTIONS[key], "str")]
        elif key == "controllers":
            out[key] = split_list(value, "--controllers", "str")
        elif key == "seeds":
            out[key] = [n for item in value for n in split_list(item, "--seeds", "int")]
        elif key == "load":
            out[key] = check_load_spec(value, "--load")
        elif isinstance(value, Path):
            out[key] = str(value)
        else:
            out[key] = value
    return out


class FailureCommand:
    """A validated failure experiment and where it runs."""

    def __init__(self, config: FailureExperimentConfig, formats: Sequence[str], backend: str, address: str | None):
        self.config = config
        self.formats = list(formats)
        self.backend = check_backend(backend, address)
        self.address = address
        self.executor: Any = None

    @classmethod
    def from_options(cls, preset: str | None, file: str | Path | None, values: Mapping[str, Any], formats: Sequence[str],
                     backend: str = "local", address: str | None = None) -> "FailureCommand":
        fmts = figure_formats(formats)
        config = build_failure_config(preset=preset, file=file, overrides=_overrides(values),
                                      override_label=lambda key: OPTION_FLAGS.get(key, "--" + key.replace("_", "-")))
        return cls(config, fmts, backend, address)

    def start_message(self, skipped: int, total: int) -> str:
        c = self.config
        where = (f"{min(c.effective_workers(), max(total - skipped, 1))} worker(s)" if self.executor is None
                 else f"on {getattr(self.executor, 'label', self.backend)}")
        return (f"failures: {total} runs ({len(c.test_links())} links × {len(c.controllers)} controllers × {len(c.seeds)} seeds) "
                f"of {c.episodes} episodes on {c.topology}, {skipped} already in {c.output}, {where}; {c.load_plan.describe()}")

    def plan(self) -> str:
        """What a run would do (`--dry-run`): the runs, those left, the load plan."""
        c = self.config
        order = c.runs()
        done = CurvesFile(c.output, c).finished_keys()
        left = [r for r in order if r.key not in done]
        return (f"{len(order)} runs ({len(c.test_links())} links × {len(c.controllers)} controllers × {len(c.seeds)} seeds) "
                f"of {c.episodes} episodes on {c.topology}, {len(left)} left to run into {c.output}; {c.load_plan.describe()}")

    @staticmethod
    def run_summary(result: Any) -> str:
        after = [r for r in result.rows if r["phase"] != "intact"]
        loss = float(np.nanmean([r["loss_fraction"] for r in after])) if after else float("nan")
        return f"{result.run}: loss after the failure {100 * loss:.2f}%, {result.wall_s:.1f} s"

    def meta_message(self, row: Mapping[str, Any]) -> str:
        c = self.config
        meta_dir = c.meta_init or str(Path(c.output) / "meta")
        stage = row.get("stage") or f"meta-training into {meta_dir} ({c.meta_iterations} iterations)"
        return (f"{stage}: {row['episodes']} episodes, "
                f"{row.get('seconds', 0):.1f} s for the last iteration, delivered {100 * (row.get('delivered_fraction') or 0):.1f}%")

    def run(self, *, on_start: Callable[[list[tuple], int], None] | None = None, on_run: Callable[[Any, int, int], None] | None = None,
            on_meta_chunk: Callable[[Mapping[str, Any]], None] | None = None) -> FailureOutcome:
        # Local: the experiment sizes its pool to the runs left. Ray: connect now, so a missing Ray
        # or an unreachable cluster is reported before meta-training or any run; meta-training's
        # tasks go to the cluster too (locally they run in this process).
        meta_executor = None
        finished = False
        try:
            if self.backend != "local":
                self.executor = make_run_executor(self.config.workers, backend=self.backend, address=self.address)
                # lazy: imports torch (~1 s); only meta-training needs it
                from mamrl.meta.maml import maml_task_executor

                meta_executor = maml_task_executor(self.backend, self.config.workers, self.address)
            outcome = run_failure_experiment(self.config, executor=self.executor, on_start=on_start, on_run=on_run,
                                             on_meta_chunk=on_meta_chunk, meta_executor=meta_executor)
            finished = True
            return outcome
        finally:
            if meta_executor is not None:  # before `executor`, which may own the Ray instance
                meta_executor.close(wait=False)
            if self.executor is not None:
                self.executor.close(wait=finished)


__all__ = ["FIGURE_FORMATS", "FailureCommand"]
