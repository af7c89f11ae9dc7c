"""The memory an experiment's runs need, checked when its config is validated (before any file is
written): the largest cell of a sweep, the largest run of the failure experiment, each times the
worker processes running at once. The estimates are `mamrl.sim.memory`'s."""

from __future__ import annotations

import dataclasses
from typing import Any

from mamrl.algorithms import make_agent
from mamrl.sim.memory import MemoryPart, agent_parts, check_memory
from mamrl.sim.params import SimParams
from mamrl.topologies import load_topology

SWEEP_OPTIONS = {"load": "loads", "horizon": "horizon_ticks / eval_horizon_ticks", "batch": "the episodes per update",
                 "episodes": "train_episodes / eval_episodes", "routers": "the topologies' routers",
                 "latency": "the topologies' link latencies"}
"""The sweep fields (`--loads`, `--horizon`, ...) that set what the estimate measures."""

FAILURE_OPTIONS = {"load": "load", "horizon": "horizon_ticks", "batch": "episodes_per_step", "episodes": "episodes",
                   "meta_batch": "maml.tasks_per_iteration or maml.episodes_per_task",
                   "routers": "the topology's routers", "latency": "the topology's link latencies"}
"""The failure experiment's fields that set what the estimate measures."""

EVAL_BATCH = 32
"""Episodes an evaluation runs at once (`RoutingAgent.evaluate`'s default batch)."""


def _total(parts: list[MemoryPart]) -> float:
    return sum(part.bytes for part in parts)


def check_sweep_memory(config: Any, max_load: float) -> None:
    """Refuse a sweep whose largest cell, times the workers, cannot fit in memory (one line).
    `max_load`: the largest of its loads (an upper bound for loads given as shares of λ*)."""

    largest: list[MemoryPart] = []
    for spec in config.topologies:
        params = SimParams(load_topology(spec), max_load, horizon_ticks=config.horizon_ticks)
        eval_params = params.replace(horizon_ticks=config.effective_eval_horizon)
        for name in config.algorithms:
            agent = make_agent(name, config.algorithm_config.get(name, {}))
            train_at_once = int(getattr(agent, "episodes_per_update", EVAL_BATCH)) if agent.learns else 0
            parts = agent_parts(params, agent, train_episodes_at_once=min(train_at_once, config.train_episodes),
                                eval_params=eval_params, eval_episodes_at_once=min(EVAL_BATCH, config.eval_episodes),
                                episodes_kept=(config.train_episodes if agent.learns else 0) + config.eval_episodes)
            largest = max(largest, parts, key=_total)
    cells = len(config.topologies) * len(config.algorithms) * len(config.loads) * len(config.seeds)
    check_memory(largest, options=SWEEP_OPTIONS, copies=max(1, min(config.effective_workers(), cells)),
                 what="a cell of this sweep")


def check_failure_memory(config: Any, meta_episodes_at_once: int = 0) -> None:
    """Refuse a failure experiment whose largest run, times the workers, cannot fit in memory (one line).
    `meta_episodes_at_once`: episodes of one meta-iteration when the experiment meta-trains first (0: it does not)."""

    params = SimParams(config.topology_value(), config.load_value(), horizon_ticks=config.horizon_ticks)
    # Every controller plays `episodes_per_step` episodes per call and keeps a curve row per episode.
    agent = make_agent("mamrl") if config.deep else None
    parts = agent_parts(params, agent, train_episodes_at_once=config.episodes_per_step, episodes_kept=config.episodes)
    if meta_episodes_at_once:  # meta-training first: every task's rollouts of one meta-iteration
        meta_parts = [dataclasses.replace(part, drivers=tuple("meta_batch" if d == "batch" else d for d in part.drivers))
                      for part in agent_parts(params, agent, train_episodes_at_once=meta_episodes_at_once)]
        parts = max(parts, meta_parts, key=_total)
    runs = len(config.controllers) * len(config.seeds) * max(1, len(config.failures) + len(config.held_out))
    check_memory(parts, options=FAILURE_OPTIONS, copies=max(1, min(config.effective_workers(), runs)),
                 what="a run of this experiment")


__all__ = ["FAILURE_OPTIONS", "SWEEP_OPTIONS", "check_failure_memory", "check_sweep_memory"]
