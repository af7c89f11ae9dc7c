"""Routing algorithms, one per module, and a registry by name.

A table-driven policy has `name` and `routing_tables(params) -> RoutingTables`; the simulator runs
it in compiled code (`Simulator.run_tables`).
"""

from __future__ import annotations

from typing import Protocol

from mamrl.errors import MamrlError
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import RoutingTables


class TablePolicy(Protocol):
    name: str

    def routing_tables(self, params: SimParams) -> RoutingTables: ...


POLICY_NAMES = ("spa", "random")


def make_policy(name: str, *, reconvergence_delay_ticks: int | None = None) -> TablePolicy:
    """A routing policy by name: `spa` (shortest path) or `random` (uniform next hop)."""
    from mamrl.agents.random_policy import UniformRandomPolicy
    from mamrl.agents.shortest_path import ShortestPathPolicy

    key = name.strip().lower()
    if key == "spa":
        return ShortestPathPolicy(reconvergence_delay_ticks)
    if key == "random":
        return UniformRandomPolicy()
    raise MamrlError(f"unknown policy {name!r} (choose from {', '.join(POLICY_NAMES)})")
