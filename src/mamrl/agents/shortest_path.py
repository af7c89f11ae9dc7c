"""Shortest-path routing (SPA, docs/model.md): static hop-count shortest paths on the intact topology.

Ties are broken deterministically: among the neighbours on some shortest path to the destination,
the one with the lowest router id (= the lowest action slot). SPA does not react to failures (the
paper's assumption); with `reconvergence_delay_ticks = D` the tables are recomputed without the
failed links D ticks after each failure, modelling OSPF/IS-IS re-convergence.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from mamrl.agents.static_routing import RECONVERGENCE_DELAY, reconverging_tables
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import RoutingTables
from mamrl.topologies.core import Topology
from mamrl.validate import check_fields, setting


def hop_distances(topology: Topology, links_down: frozenset[int] = frozenset()) -> np.ndarray:
    """int64 [N, N] hop counts over links not in `links_down` (-1 = unreachable)."""
    n = topology.num_routers
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((l.a, l.b) for e, l in enumerate(topology.links) if e not in links_down)
    dist = np.full((n, n), -1, dtype=np.int64)
    for src, lengths in nx.all_pairs_shortest_path_length(graph):
        for dst, hops in lengths.items():
            dist[src, dst] = hops
    return dist


def shortest_path_next_hop(topology: Topology, links_down: frozenset[int] = frozenset()) -> np.ndarray:
    """int64 [N, N]: the action slot router i uses for destination d (-1 for d == i or unreachable)."""
    neighbors, link_of_slot = topology.neighbor_table
    dist = hop_distances(topology, links_down)
    n = topology.num_routers
    slots = np.full((n, n), -1, dtype=np.int64)
    for i in range(n):
        for d in range(n):
            if d == i or dist[i, d] < 0:
                continue
            for k in range(topology.degree[i]):
                if link_of_slot[i, k] in links_down:
                    continue
                if dist[neighbors[i, k], d] == dist[i, d] - 1:
                    slots[i, d] = k
                    break
    return slots


def one_hot_tables(topology: Topology, slots: np.ndarray) -> np.ndarray:
    """Next-hop probabilities [N, N, K] putting all mass on `slots[i, d]` (slot 0 where undefined)."""
    n, k = topology.num_routers, topology.max_degree
    probs = np.zeros((n, n, k))
    rows, cols = np.indices((n, n))
    probs[rows, cols, np.maximum(slots, 0)] = 1.0
    return probs


@dataclass(frozen=True)
class ShortestPathPolicy:
    """Static hop-count shortest-path routing, optionally re-converging after failures."""

    reconvergence_delay_ticks: int | None = setting(None, RECONVERGENCE_DELAY)
    """Recompute paths this many ticks after a failure; None = never (the paper's SPA)."""

    name = "spa"

    def __post_init__(self) -> None:
        check_fields(self, "spa")

    def routing_tables(self, params: SimParams) -> RoutingTables:
        topo = params.topology
        return reconverging_tables(
            params, self.reconvergence_delay_ticks, lambda down: one_hot_tables(topo, shortest_path_next_hop(topo, down))
        )
