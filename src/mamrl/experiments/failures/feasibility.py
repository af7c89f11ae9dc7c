"""Which load the link-failure experiment runs at, read against λ* after each tested failure.

An experiment run above the capacity limit λ* of the network it routes on measures an overloaded
network, not an algorithm: packets must queue without bound or be dropped whatever the routing.
So the experiment computes λ* after each tested failure (`sim.capacity`, the max-concurrent-flow
LP) and chooses its load from them:

* `auto` (the default): the paper's λ = 0.3 where it is below λ* after every tested failure,
  else `AUTO_SHARE` (0.8) of the smallest post-failure λ*;
* `"<share>x"`, e.g. `"0.8x"`: that share of the smallest post-failure λ*;
* a number: that load, refused (one line naming the link and its λ*) where a tested failure leaves
  λ* at or below it, unless `allow_infeasible` is set.

Meta-training's task distribution η(M) leaves out the links whose failure would make its load
infeasible (`infeasible_links`), and the resolved config lists them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mamrl.errors import MamrlError
from mamrl.experiments.config import load_share, parse_load_spec
from mamrl.meta.tasks import link_label
from mamrl.sim.capacity import capacity_bound
from mamrl.topologies import Topology

PAPER_LOAD = 0.3
"""The paper's λ for E2 (§4.3)."""
AUTO_SHARE = 0.8
"""`auto`'s share of the smallest post-failure λ* where the paper's λ is infeasible."""
AUTO = "auto"


def check_load_spec(value: object, label: str) -> float | str:
    """A load spec: a number > 0, `"<share>x"` or `"auto"` (canonical form)."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    return parse_load_spec(value, label)


@functools.lru_cache(maxsize=64)
def capacity_after(topology: Topology, links: tuple[int, ...]) -> float:
    """λ* with `links` failed (0 when that disconnects routers that exchange traffic)."""
    return capacity_bound(topology, failed_links=links, find_binding=False).max_load


@dataclass(frozen=True)
class LoadPlan:
    """The load of an experiment and the capacity limits it was chosen from."""

    spec: float | str
    """What was asked: a number, `"<share>x"` or `"auto"`."""
    load: float
    """The load used, packets per router per tick."""
    capacity: dict[str, float]
    """λ* after each tested failure (label `A-B` → packets per router per tick; 0 = disconnected)."""
    intact_capacity: float
    """λ* of the intact network."""

    @property
    def limiting_failure(self) -> str:
        """The tested failure with the smallest λ*."""
        return min(self.capacity, key=lambda label: self.capacity[label])

    @property
    def infeasible(self) -> list[str]:
        """Tested failures whose λ* is at or below the load."""
        return [label for label, bound in self.capacity.items() if not self.load < bound]

    def describe(self) -> str:
        """One line: the load, why, and the smallest post-failure λ*."""
        limit = self.capacity[self.limiting_failure]
        if self.spec == AUTO:
            why = " (auto: the paper's λ)" if self.load == PAPER_LOAD else f" (auto: {AUTO_SHARE:g} × the smallest λ*)"
        elif isinstance(self.spec, str):
            why = f" ({self.spec}: a share of the smallest λ*)"
        else:
            why = ""
        share = f"{self.load / limit:.0%} of" if limit > 0 else "above"
        return (f"λ = {self.load:g}{why}, {share} λ* = {limit:.4g} after {self.limiting_failure} "
                f"(intact λ* = {self.intact_capacity:.4g})")


def plan_load(spec: float | str, topology: Topology, test_links: list[tuple[str, tuple[int, ...]]], *,
              allow_infeasible: bool, label: str = "load") -> LoadPlan:
    """The load for `spec` given the tested failures (label, failed link ids). Raises a one-line
    MamrlError when a tested failure disconnects the network or leaves λ* at or below an explicit
    load, unless `allow_infeasible`."""
    capacity = {name: capacity_after(topology, links) for name, links in test_links}
    intact = capacity_after(topology, ())
    if not capacity:
        raise MamrlError(f"{label}: no tested failure to choose the load from")
    smallest = min(capacity.values())
    disconnecting = [name for name, bound in capacity.items() if bound <= 0]
    if disconnecting and not allow_infeasible:
        raise MamrlError(f"failures: {disconnecting[0]} disconnects {topology.name} (λ* = 0): no routing delivers every "
                         "packet; choose another link, or pass --allow-infeasible to run it anyway")
    if spec == AUTO:
        load = PAPER_LOAD if PAPER_LOAD < smallest else float(f"{AUTO_SHARE * smallest:.6g}")
    elif isinstance(spec, str):
        load = float(f"{load_share(spec) * smallest:.6g}")
    else:
        load = float(spec)
    if load <= 0:
        raise MamrlError(f"{label}: {spec} of λ* = 0 is no load; choose an absolute load or other failures")
    plan = LoadPlan(spec, load, capacity, intact)
    if plan.infeasible and not allow_infeasible:
        worst = plan.infeasible[0]
        raise MamrlError(f"{label}: λ = {load:g} is at or above λ* = {capacity[worst]:.4g} after {worst} fails: no routing "
                         f"carries it, so the run would measure an overloaded network; choose a lower load (e.g. "
                         f"{AUTO_SHARE:g}x, or {AUTO}), or pass --allow-infeasible")
    return plan


def infeasible_links(topology: Topology, load: float) -> tuple[str, ...]:
    """Links (`A-B`) whose failure alone leaves λ* at or below `load` (or disconnects the network):
    meta-training leaves them out of η(M)."""
    return tuple(link_label(topology, link) for link, bound in _scan(topology) if not load < bound)


@functools.lru_cache(maxsize=8)
def _scan(topology: Topology) -> tuple[tuple[int, float], ...]:
    return tuple((link, capacity_after(topology, (link,))) for link in range(topology.num_links)
                 if topology.links[link].capacity > 0)


__all__ = ["AUTO", "AUTO_SHARE", "PAPER_LOAD", "LoadPlan", "capacity_after", "check_load_spec", "infeasible_links", "plan_load"]
