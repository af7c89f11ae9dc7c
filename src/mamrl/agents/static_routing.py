"""What the static (table-driven) baselines share: flows to split ratios, loop removal, and
recomputing tables after failures.

A static routing is a table of next-hop probabilities per (router, destination), run in the
compiled kernel (`RoutingTables`): each packet at router i for destination d leaves through slot k
with probability `probs[i, d, k]`, drawn independently per packet. A multi-commodity flow
(`sim.capacity.CommodityFlow`) becomes such a table by its split ratios: the share of commodity
d's flow out of i on each arc. A split table must be loop-free per destination, or a packet could
circle for ever; flows from convex combinations (flow deviation) can carry circulations, which
`remove_cycles` cancels (cancelling a circulation only lowers every router's load and every cost).
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from mamrl.errors import SimulationError
from mamrl.sim.capacity import Arcs, CommodityFlow
from mamrl.sim.params import SimParams, shown_int
from mamrl.sim.simulator import RoutingTables
from mamrl.topologies.core import INT64_MAX, Topology
from mamrl.validate import integer

RECONVERGENCE_DELAY = integer(0, optional=True)
"""The rule of a static routing's `reconvergence_delay_ticks` (None = never re-converge)."""
FLOW_TOLERANCE = 1e-9
"""Flows below this share of a commodity's largest arc flow are rounding noise and dropped."""


def remove_cycles(flow: CommodityFlow) -> CommodityFlow:
    """The flow with every circulation cancelled and rounding noise dropped: each commodity's
    support (arcs with flow) is acyclic afterwards, and conservation is unchanged."""
    arcs = flow.arcs
    out = flow.flow.copy()
    for d in range(out.shape[0]):
        row = out[d]
        if not np.any(row > 0):
            continue
        row[row < FLOW_TOLERANCE * row.max()] = 0.0
        graph = nx.DiGraph()
        for a in np.flatnonzero(row > 0):
            graph.add_edge(int(arcs.tail[a]), int(arcs.head[a]), arc=int(a))
        while True:
            try:
                cycle = nx.find_cycle(graph)
            except nx.NetworkXNoCycle:
                break
            cycle_arcs = [graph.edges[u, v]["arc"] for u, v in cycle]
            amount = row[cycle_arcs].min()
            row[cycle_arcs] -= amount
            for (u, v), a in zip(cycle, cycle_arcs):
                if row[a] <= FLOW_TOLERANCE * max(amount, 1e-300):
                    row[a] = 0.0
                    graph.remove_edge(u, v)
    return CommodityFlow(flow.topology, arcs, out, flow.load_per_router, flow.demand)


def shortest_latency_next_hop(topology: Topology, links_down: frozenset[int] = frozenset()) -> np.ndarray:
    """int64 [N, N]: a slot of router i on a least-latency path to d over links that are up
    (lowest slot on ties; -1 for d == i or unreachable)."""
    arcs = Arcs.of(topology, links_down)
    n = topology.num_routers
    lengths = np.where(arcs.up, topology.latencies[arcs.link], 0).astype(np.float64)
    dist = distances_to(n, arcs, lengths)
    neighbors, link_of_slot = topology.neighbor_table
    slots = np.full((n, n), -1, dtype=np.int64)
    for i in range(n):
        for k in range(topology.degree[i]):
            e = link_of_slot[i, k]
            if not arcs.up[2 * e]:
                continue
            via = topology.latencies[e] + dist[:, neighbors[i, k]]
            better = (slots[i] < 0) & np.isfinite(dist[:, i]) & np.isclose(via, dist[:, i])
            slots[i, better] = k
    slots[np.arange(n), np.arange(n)] = -1
    return slots


def distances_to(num_routers: int, arcs: Arcs, lengths: np.ndarray) -> np.ndarray:
    """float64 [D, N]: length of a shortest path from router i to destination d over arcs that are
    up, with `lengths` [A] per arc (inf = unreachable)."""
    up = np.flatnonzero(arcs.up)
    # Dijkstra from every destination on the reversed graph gives distances *to* it.
    reversed_graph = csr_matrix((lengths[up] + 0.0, (arcs.head[up], arcs.tail[up])), shape=(num_routers, num_routers))
    # csgraph treats an explicit 0 as "no edge"; lengths here are latencies >= 1 or marginal costs > 0.
    return dijkstra(reversed_graph, directed=True)


def split_ratios(flow: CommodityFlow, fallback_slots: np.ndarray) -> np.ndarray:
    """Next-hop probabilities [N, N, K] from a flow's split ratios; a (router, destination) that
    carries no flow of that destination uses `fallback_slots[i, d]` (a packet only gets there when
    traffic deviates from the flow, e.g. after a failure the tables do not know of)."""
    topo = flow.topology
    n, k = topo.num_routers, topo.max_degree
    neighbors, link_of_slot = topo.neighbor_table
    # Arc of (router i, slot k): link e's arc a -> b is 2e, b -> a is 2e + 1.
    safe_links = np.maximum(link_of_slot, 0)
    arc_of_slot = 2 * safe_links + (topo.link_endpoints[safe_links, 0] != np.arange(n)[:, None])
    exists = link_of_slot >= 0
    out_flow = np.where(exists[None], flow.flow[:, arc_of_slot], 0.0).transpose(1, 0, 2)  # [i, d, k]
    total = out_flow.sum(axis=2, keepdims=True)
    probs = np.divide(out_flow, total, out=np.zeros_like(out_flow), where=total > 0)
    rows, dests = np.nonzero(total[:, :, 0] <= 0)
    probs[rows, dests, :] = 0.0
    probs[rows, dests, np.maximum(fallback_slots[rows, dests], 0)] = 1.0
    assert probs.shape == (n, n, k)
    return probs


def loop_free(topology: Topology, probs: np.ndarray) -> bool:
    """Whether, for every destination, the next hops with positive probability form no cycle."""
    n = topology.num_routers
    neighbors = topology.neighbor_table[0]
    for d in range(n):
        graph = nx.DiGraph()
        graph.add_nodes_from(range(n))
        for i in range(n):
            if i == d:
                continue
            for k in np.flatnonzero(probs[i, d] > 0):
                graph.add_edge(i, int(neighbors[i, k]))
        if not nx.is_directed_acyclic_graph(graph):
            return False
    return True


def reconverging_tables(
    params: SimParams,
    reconvergence_delay_ticks: int | None,
    probabilities: Callable[[frozenset[int]], np.ndarray],
) -> RoutingTables:
    """Tables computed by `probabilities(links_down)` [N, N, K]: on the intact network from tick 0;
    with a delay D, recomputed without the failed links D ticks after each failure tick (how a
    link-state protocol re-converges); None = never react (the paper's assumption)."""
    probs = [probabilities(frozenset())]
    starts = [0]
    delay = reconvergence_delay_ticks
    if delay is not None:
        if isinstance(delay, bool) or not isinstance(delay, (int, np.integer)) or not 0 <= delay <= INT64_MAX:
            raise SimulationError(f"re-convergence delay must be an integer from 0 to 2**63 - 1 ticks, got {shown_int(delay)}")
        down: set[int] = set()
        for tick in sorted({f.tick for f in params.failures}):
            down |= {f.link for f in params.failures if f.tick == tick}
            table = probabilities(frozenset(down))
            if tick + delay == 0:
                probs[0] = table
            else:
                probs.append(table)
                # A table due at or after the horizon never applies; capped, the start fits int64.
                starts.append(min(tick + delay, params.horizon_ticks))
    return RoutingTables.from_probabilities(np.stack(probs), starts)


__all__ = [
    "FLOW_TOLERANCE",
    "distances_to",
    "loop_free",
    "reconverging_tables",
    "remove_cycles",
    "shortest_latency_next_hop",
    "split_ratios",
]
