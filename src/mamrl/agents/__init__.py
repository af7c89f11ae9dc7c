"""Routing algorithms, one per module (the registry by name is `mamrl.algorithms`).

Every algorithm is a `RoutingAgent` (train / evaluate / save / load). Table-driven policies
(`spa`, `ecmp`, `max-throughput`, `min-delay`, `random`) also expose `routing_tables(params)`, which
the simulator runs in compiled code. `max-throughput` and `min-delay` are oracles: they know the
traffic matrix, and exist only below the capacity limit λ* (`mamrl.sim.capacity`).
`backpressure` and `sp-backpressure` (shortest-path-biased) route by neighbours' per-destination
queue lengths in their own compiled driver.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from mamrl.agents.base import Progress, RoutingAgent
from mamrl.sim.evaluate import evaluate_tables
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import RoutingTables


class TablePolicy(Protocol):
    name: str

    def routing_tables(self, params: SimParams) -> RoutingTables: ...


class TableAgent(RoutingAgent):
    """A fixed table-driven policy (SPA, ECMP, the flow oracles, random) behind the common agent interface."""

    learns = False

    def __init__(self, policy: TablePolicy):
        self.policy = policy
        self.name = policy.name

    def evaluate(self, params, seed, num_episodes, *, batch_size=32, on_progress: Progress | None = None):
        metrics, _ = evaluate_tables(params, self.policy.routing_tables(params), seed, num_episodes,
                                     batch_size=batch_size, on_batch=on_progress)
        return metrics

    def config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.policy) if dataclasses.is_dataclass(self.policy) else {}


__all__ = [
    "RoutingAgent",
    "TableAgent",
    "TablePolicy",
]
