"""The executors themselves: in this process (`SerialExecutor`) or in a local process pool
(`ProcessPoolCellExecutor`); the Ray one is `ray_cluster.RayCellExecutor`. Pick one with
`mamrl.executors.make_backend_executor`."""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from mamrl.errors import MamrlError
from mamrl.executors.lifetime import die_with_parent


def available_cores() -> int:
    """Cores this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run a cell with one torch thread, whatever the executor: parallelism is across cells, and
    a thread count that varied with the number of workers could change floating-point summation
    order, hence results."""
    try:
        # lazy: torch takes ~1 s to import; make_agent imports it for the deep learner anyway
        import torch
    except ImportError:
        torch = None
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)





class CellExecutor(ABC):
    """Runs tasks and yields their results as they complete (in any order).

    Callers only need `map_cells`; the Ray backend (`ray_cluster.RayCellExecutor`) is another subclass.
    """

    @abstractmethod
    def map_cells(self, tasks: Sequence[Any]) -> Iterator[Any]:
        """Run `tasks`; yield each one's row as soon as it is done. A caller that stops early
        closes the executor: `close()` cancels the tasks not started and waits for the running
        ones, `close(wait=False)` abandons them."""

    def close(self, *, wait: bool = True) -> None:
        """Release workers; `wait=False` (on an interruption) does not wait for running cells."""

    def __enter__(self) -> "CellExecutor":
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(wait=exc_type is None)


class SerialExecutor(CellExecutor):
    """Runs the cells one after another in the calling process, in the given order. `run` is
    what a task runs (default: a sweep cell; the failure experiment passes its runs)."""

    def __init__(self, run: Callable[[Any], Any]):
        self.run = run

    def map_cells(self, tasks: Sequence[Any]) -> Iterator[Any]:
        for task in tasks:
            yield self.run(task)


def _pool_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # Import the heavy modules (numba, numpy, scipy, the kernels' modules, torch for the deep
        # learner) once in the server rather than in every worker; a failed import is skipped.
        # The first module makes the forkserver die with this process (`lifetime`).
        ctx.set_forkserver_preload(["mamrl.executors.forkserver_preload", "mamrl.experiments.sweep", "mamrl.algorithms", "torch"])
        return ctx
    return multiprocessing.get_context("spawn")


class WorkShare:
    """The share of a job's estimated work done, each task weighted by its cost (the executors'
    `cost`): the basis of a time-left estimate when tasks differ a hundredfold in cost (a deep
    learner's sweep cell against a tabular one). Each key counts once."""

    def __init__(self, costs: Mapping[Hashable, float]):
        self._cost = dict(costs)
        self._total = sum(self._cost.values())
        self._done: set[Hashable] = set()
        self._done_cost = 0.0

    @property
    def share(self) -> float:
        """Share of the estimated work done, 0..1."""
        return self._done_cost / self._total if self._total > 0 else 1.0

    def finished(self, keys: Iterable[Hashable]) -> float:
        """Count finished tasks by key (unknown keys count nothing); returns the share done."""
        for key in keys:
            if key in self._cost and key not in self._done:
                self._done.add(key)
                self._done_cost += self._cost[key]
        return self.share


class CellFailed(MamrlError):
    """A cell raised in a worker."""


class ProcessPoolCellExecutor(CellExecutor):
    """`concurrent.futures.ProcessPoolExecutor` over local cores, one cell per task.

    Workers start by forkserver (spawn where there is none), never plain fork, so a parent that
    already runs threads (numba, BLAS) is safe. Tasks are submitted longest first.
    """

    def __init__(self, workers: int, *, run: Callable[[Any], Any], cost: Callable[[Any], float] | None = None,
                 describe: Callable[[Any], str] | None = None):
        """`run` (a picklable top-level function) computes a task's result in a worker; `cost`
        orders the tasks (longest first); `describe` names a task in errors (defaults: equal costs, the task's repr)."""
        if workers < 1:
            raise MamrlError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.run = run
        self.cost = cost or (lambda task: 1.0)
        self.describe = describe or (lambda task: f"task {task}")
        self._pool: ProcessPoolExecutor | None = None

    def map_cells(self, tasks: Sequence[Any]) -> Iterator[Any]:
        if not tasks:
            return
        if self._pool is None:
            # Workers die with their parent even when this process is SIGKILL'ed (`lifetime`).
            self._pool = ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=_pool_context(),
                                             initializer=die_with_parent, initargs=(os.getpid(),))
        ordered = sorted(tasks, key=self.cost, reverse=True)
        pending: dict[Future, Any] = {self._pool.submit(self.run, t): t for t in ordered}
        # Tasks left when the caller stops early are cancelled by `close` (not here: cancelling
        # futures and then terminating workers trips a CPython 3.11 bug in the pool's manager).
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                exc = future.exception()
                if exc is not None:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise CellFailed(f"{self.describe(task)} failed: {reason}") from exc
                yield future.result()

    def close(self, *, wait: bool = True) -> None:
        if self._pool is None:
            return
        if wait:
            self._pool.shutdown(wait=True, cancel_futures=True)
        else:
            # Interrupted or failed: the cells in progress are lost anyway; stop their workers now
            # rather than let interpreter exit wait for them (finished cells are already on disk).
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                if process.is_alive():
                    process.terminate()
            self._pool.shutdown(wait=False)
        self._pool = None


__all__ = [
    "CellExecutor",
    "CellFailed",
    "ProcessPoolCellExecutor",
    "SerialExecutor",
    "WorkShare",
    "available_cores",
    "single_threaded",
]
