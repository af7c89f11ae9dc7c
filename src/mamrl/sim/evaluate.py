"""Evaluate a table-driven policy over many episodes, in batches, with optional progress."""

from __future__ import annotations

from typing import Callable

import numpy as np

from mamrl.errors import SimulationError
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import BatchResult, RoutingTables, Simulator

ProgressCallback = Callable[[int], None]
"""Called with the number of episodes just finished."""


def in_chunks(
    num_episodes: int,
    chunk: int,
    run: Callable[[int, int], dict[str, np.ndarray]],
    on_progress: ProgressCallback | None = None,
) -> dict[str, np.ndarray]:
    """Run `num_episodes` as calls `run(size, done)` of at most `chunk` episodes each (done = how
    many came before) and concatenate their per-episode metrics."""
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, (int, np.integer)) or num_episodes < 1:
        raise SimulationError(f"number of episodes must be an integer >= 1, got {num_episodes!r}")
    if chunk < 1:
        raise SimulationError(f"episodes per batch must be >= 1, got {chunk}")
    parts: dict[str, list[np.ndarray]] = {}
    done = 0
    while done < num_episodes:
        size = min(chunk, num_episodes - done)
        for key, values in run(size, done).items():
            parts.setdefault(key, []).append(values)
        done += size
        if on_progress is not None:
            on_progress(size)
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def evaluate_tables(
    params: SimParams,
    tables: RoutingTables,
    seed: int,
    num_episodes: int,
    *,
    batch_size: int = 32,
    on_batch: ProgressCallback | None = None,
    first_episode: int = 0,
) -> tuple[dict[str, np.ndarray], list[BatchResult]]:
    """Run episodes `first_episode ..` of `seed` and return their concatenated per-episode metrics.

    Episode k's traffic depends only on (seed, k), so results do not depend on `batch_size`, and
    two policies evaluated with the same seed see identical packets (common random numbers).
    """
    sim = Simulator(params)
    results: list[BatchResult] = []

    def run(size: int, done: int) -> dict[str, np.ndarray]:
        result = sim.run_tables(tables, seed, size, first_episode + done)
        results.append(result)
        return result.per_episode()

    return in_chunks(num_episodes, batch_size, run, on_batch), results
