"""Executors: run independent tasks (sweep cells, failure-experiment runs, MAML's per-task
meta-training work) in this process, in a local process pool or on Ray, and yield their results
as they complete.

This module is shared infrastructure at the bottom of the layer stack: it knows nothing of
topologies, the simulator or agents. A task is any picklable object and `run` a top-level
function of it; callers write and order the results, so results never depend on the executor.
"""


from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mamrl.errors import MamrlError
from mamrl.executors.base import (
    CellExecutor,
    CellFailed,
    ProcessPoolCellExecutor,
    SerialExecutor,
    WorkShare,
    available_cores,
    single_threaded,
)
from mamrl.executors.ray_cluster import RayCellExecutor

BACKENDS: tuple[str, ...] = ("local", "ray")
"""Where cells run: `local` (this machine's cores) or `ray` (a Ray cluster, `ray_backend.py`)."""


def check_backend(backend: str, address: str | None = None) -> str:
    """The backend's canonical name; one-line errors for an unknown one and for an address
    given to a backend that takes none."""
    name = str(backend).strip().lower()
    if name not in BACKENDS:
        raise MamrlError(f"--backend: unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if address is not None and name != "ray":
        raise MamrlError("--address is the address of a Ray cluster: use it with --backend ray")
    return name


def make_backend_executor(backend: str = "local", workers: int | None = None, address: str | None = None, *,
                          run: Callable[[Any], Any], cost: Callable[[Any], float] | None = None,
                          describe: Callable[[Any], str] | None = None) -> CellExecutor:
    """An executor of `backend` running `run` (`cost` and `describe` as for
    `ProcessPoolCellExecutor`).

    `local`: in process for one worker, else a process pool of `workers` (default: one per
    core). `ray`: a `RayCellExecutor`, already connected, so that a missing Ray or an
    unreachable `address` is reported before any work starts; without `address` it starts a
    local Ray instance of `workers` CPUs.
    """
    name = check_backend(backend, address)
    if name == "ray":
        executor = RayCellExecutor(workers, address=address, run=run, cost=cost, describe=describe)
        executor.connect()
        return executor
    count = workers if workers is not None else available_cores()
    if count <= 1:
        return SerialExecutor(run=run)
    return ProcessPoolCellExecutor(count, run=run, cost=cost, describe=describe)


def run_tasks(tasks: Sequence[Any], on_result: Callable[[Any], None], *, executor: CellExecutor | None = None,
              make_executor: Callable[[int], CellExecutor] | None = None, stop_after: int | None = None) -> int:
    """Run `tasks` on `executor`, or on one from `make_executor(len(tasks))` that is closed
    afterwards (at once, abandoning running tasks, on an error or interruption); call
    `on_result(result)` as each completes; stop after `stop_after` results. Returns how many ran."""
    if not tasks or (stop_after is not None and stop_after <= 0):
        return 0
    own = executor is None
    if own:
        if make_executor is None:
            raise ValueError("run_tasks needs an executor or make_executor")
        executor = make_executor(len(tasks))
    ran = 0
    try:
        results = executor.map_cells(tasks)
        try:
            for result in results:
                on_result(result)
                ran += 1
                if stop_after is not None and ran >= stop_after:
                    break
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
    except BaseException:
        if own:
            executor.close(wait=False)
        raise
    if own:
        executor.close()
    return ran


__all__ = [
    "BACKENDS",
    "CellExecutor",
    "CellFailed",
    "ProcessPoolCellExecutor",
    "SerialExecutor",
    "WorkShare",
    "available_cores",
    "check_backend",
    "make_backend_executor",
    "run_tasks",
    "single_threaded",
]
