"""`mamrl capacity`: λ* of a topology with some links failed, what binds it, and optionally λ*
after every further single-link failure (`mamrl.sim.capacity` computes them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mamrl import runs
from mamrl.errors import MamrlError
from mamrl.experiments.simulate import describe_link
from mamrl.sim.capacity import capacity_bound, failure_scan
from mamrl.sim.params import LinkFailure
from mamrl.topologies.traffic_models import TrafficModel, load_with_traffic

LIMIT_NOTE = ("The model's limit: routers forward at most one packet per tick and links reserve size × latency "
              "per packet while it is in flight; no routing keeps queues bounded at λ ≥ λ*.")


@dataclass
class CapacityReport:
    """λ* of `topology` with `failed_links` down, and `scan`: (link, bound) after each further failure."""

    topology_spec: str
    demand: Path | None
    topology: Any
    failed_links: list[int]
    bound: Any  # CapacityBound
    scan: list[tuple[int, Any]]
    traffic: str = "uniform destinations"
    """The traffic model's one-line description (`apply_traffic_model`)."""

    def _names(self, routers: Sequence[int]) -> str:
        return ", ".join(self.topology.router_names[i] for i in routers)

    def document(self) -> dict[str, Any]:
        """The JSON document (`--json`)."""
        base = self.bound.max_load
        return {
            "command": "capacity",
            "topology_spec": self.topology_spec,
            "demand_file": None if self.demand is None else str(self.demand),
            "traffic": self.traffic,
            **self.bound.describe(),
            "single_link_failures": [
                {"link": self.topology.link_name(e), **b.describe(), "share_of_base": (b.max_load / base) if base > 0 else None}
                for e, b in self.scan
            ],
            **runs.provenance(),
        }

    def summary_lines(self) -> list[str]:
        topo, bound = self.topology, self.bound
        failed = ", ".join(describe_link(topo, e) for e in self.failed_links)
        lines = [f"λ* = {bound.max_load:.4g} packets per router per tick on {topo.name}" + (f" with {failed} failed" if failed else ""),
                 f"traffic: {self.traffic}"]
        if bound.disconnected:
            parts = "; ".join("{" + self._names(part) + "}" for part in bound.components)
            lines.append(f"disconnected: routers that exchange traffic are in different components: {parts}")
        else:
            lines.append("binding routers (forward one packet per tick in every routing that carries λ*): "
                         + self._names(bound.binding_routers))
            lines.append("binding links: " + (", ".join(describe_link(topo, e) for e in bound.binding_links) or "none"))
        return lines

    SCAN_COLUMNS = ("link", "λ*", "share", "binding routers", "cuts off")

    def scan_rows(self) -> list[tuple[str, ...]]:
        """One row per further failure, the most limiting first."""
        base = self.bound.max_load
        return [(describe_link(self.topology, e), f"{b.max_load:.4g}",
                 f"{100 * b.max_load / base:.1f}%" if base > 0 else "n/a", self._names(b.binding_routers), self._names(b.cut_off))
                for e, b in sorted(self.scan, key=lambda item: (item[1].max_load, item[0]))]


def capacity_report(topology_spec: str, *, fail: Sequence[str] = (), all_failures: bool = False, demand: Path | None = None,
                    demand_layout: str = "auto", traffic: str = "uniform", packet_size: int | str | None = None,
                    on_scan_start: Callable[[int], None] | None = None,
                    on_link: Callable[[int], None] | None = None) -> CapacityReport:
    """λ* with the links `fail` down (no @TICK: λ* is a long-run limit); with `all_failures`, also
    after each further single-link failure (`on_scan_start(count)`, then `on_link(link)` per link).
    `traffic` and `packet_size` are a `TrafficModel`'s destinations and packet size."""
    topo, weights, traffic_text = load_with_traffic(topology_spec, demand=demand, demand_layout=demand_layout,
                                                    model=TrafficModel(traffic, packet_size))
    failed: list[int] = []
    for spec in fail:
        failure = LinkFailure.parse(topo, spec)
        if failure.tick != 0:
            raise MamrlError(f"--fail {spec!r}: capacity takes links without @TICK (λ* is a long-run limit)")
        if failure.link in failed:
            raise MamrlError(f"--fail names link {topo.link_name(failure.link)!r} more than once")
        failed.append(failure.link)
    bound = capacity_bound(topo, failed_links=failed, demand_weights=weights)
    scan: list[tuple[int, Any]] = []
    if all_failures:
        if on_scan_start is not None:
            on_scan_start(topo.num_links - len(failed))
        scan = failure_scan(topo, failed_links=failed, demand_weights=weights, on_link=on_link)
    return CapacityReport(topology_spec, demand, topo, failed, bound, scan, traffic_text)


__all__ = ["LIMIT_NOTE", "CapacityReport", "capacity_report"]
