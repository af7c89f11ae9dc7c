"""ECMP: equal-cost multi-path routing over every hop-count shortest path.

Router i sends a packet for d to one of its neighbours on *some* shortest (hop-count) path to d,
each with the same probability, drawn per packet (packet spraying; real ECMP hashes flows, which
splits the same way on average). It is what a link-state protocol such as OSPF or IS-IS forwards
with unit link weights, and SPA with its ties shared instead of broken by router id. Like SPA it
knows neither queues nor the traffic matrix; with `reconvergence_delay_ticks` it recomputes its
paths without the failed links that many ticks after a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mamrl.agents.shortest_path import hop_distances
from mamrl.agents.static_routing import RECONVERGENCE_DELAY, reconverging_tables
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import RoutingTables
from mamrl.topologies.core import Topology
from mamrl.validate import check_fields, setting


def ecmp_probabilities(topology: Topology, links_down: frozenset[int] = frozenset()) -> np.ndarray:
    """Next-hop probabilities [N, N, K]: equal over the slots on a shortest path to each destination
    (slot 0 where d == i or d is unreachable: never used)."""
    n, k = topology.num_routers, topology.max_degree
    neighbors, link_of_slot = topology.neighbor_table
    dist = hop_distances(topology, links_down)
    down = np.isin(link_of_slot, list(links_down)) | (link_of_slot < 0)
    # on_path[i, d, k]: slot k of i leads one hop closer to d over a link that is up.
    next_dist = np.where(down[:, None, :], -2, dist[np.maximum(neighbors, 0)].transpose(0, 2, 1))
    on_path = (next_dist >= 0) & (next_dist == dist[:, :, None] - 1) & (dist[:, :, None] > 0)
    count = on_path.sum(axis=2, keepdims=True)
    probs = np.where(count > 0, on_path / np.maximum(count, 1), 0.0)
    probs[:, :, 0] += (count[:, :, 0] == 0)
    assert probs.shape == (n, n, k)
    return probs


@dataclass(frozen=True)
class EcmpPolicy:
    """Equal split over every hop-count shortest path, optionally re-converging after failures."""

    reconvergence_delay_ticks: int | None = setting(None, RECONVERGENCE_DELAY)
    """Recompute paths this many ticks after a failure; None = never react."""

    name = "ecmp"

    def __post_init__(self) -> None:
        check_fields(self, "ecmp")

    def routing_tables(self, params: SimParams) -> RoutingTables:
        topo = params.topology
        return reconverging_tables(params, self.reconvergence_delay_ticks, lambda down: ecmp_probabilities(topo, down))
