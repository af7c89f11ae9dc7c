"""Experiments over the simulator and the routing algorithms.

* `config`     — `SweepConfig` (typed, validated, hashable) and the `quick` / `paper` presets;
* `sweep`      — the load sweep E1: cells, the resumable results CSV, pooling
  over seeds;
* `saturation` — the rule that tells bounded from growing queues, per-sweep saturation summaries
  and a bisection search for one algorithm.
"""

from mamrl.experiments.config import PRESETS, SweepConfig, build_sweep_config
from mamrl.experiments.saturation import classify, saturation_search, summarise_saturation
from mamrl.experiments.sweep import (
    EVAL_SEED_OFFSET,
    aggregate,
    eval_seed,
    read_results,
    run_sweep,
)

__all__ = [
    "EVAL_SEED_OFFSET",
    "PRESETS",
    "SweepConfig",
    "aggregate",
    "build_sweep_config",
    "classify",
    "eval_seed",
    "read_results",
    "run_sweep",
    "saturation_search",
    "summarise_saturation",
]
