"""Evaluate a table-driven policy over many episodes, in batches, with optional progress."""

from __future__ import annotations

from typing import Callable

import numpy as np

from mamrl.errors import SimulationError
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import BatchResult, RoutingTables, Simulator

ProgressCallback = Callable[[int], None]
"""Called with the number of episodes just finished."""


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
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, (int, np.integer)) or num_episodes < 1:
        raise SimulationError(f"number of episodes must be an integer >= 1, got {num_episodes!r}")
    if batch_size < 1:
        raise SimulationError(f"batch size must be >= 1, got {batch_size}")
    sim = Simulator(params)
    per_episode: dict[str, list[np.ndarray]] = {}
    results = []
    done = 0
    while done < num_episodes:
        size = min(batch_size, num_episodes - done)
        result = sim.run_tables(tables, seed, size, first_episode + done)
        for key, values in result.per_episode().items():
            per_episode.setdefault(key, []).append(values)
        results.append(result)
        done += size
        if on_batch is not None:
            on_batch(size)
    return {k: np.concatenate(v, axis=0) for k, v in per_episode.items()}, results
