"""Minimum-delay static routing at a given load (Gallager 1977), computed by flow deviation
(Fratta, Gerla & Kleinrock 1973).

The best routing a designer who knows the traffic matrix can fix in advance: split ratios per
(router, destination) that minimise the mean delivery time the model predicts at load λ. It is
the yardstick for learned *state-dependent* routing: whatever a learner gains over it comes from
reacting to the network's state, not from knowing the traffic better.

Delay model. A router forwarding F packets per tick (F < 1) is a discrete-time single server
with one departure per tick; with Poisson arrivals (Kleinrock's independence approximation) the
packets left queued at the end of a tick, Q_{t} = max(Q_{t-1} + A_t − 1, 0), average

    E[Q] = F² / (2 (1 − F))          (waiting packet-ticks per tick at that router)

(a packet joining an empty queue leaves in the same tick; the M/D/1 waiting time F/(2(1−F)) per
packet). A packet also spends its links' latencies in flight. The total delay per tick is

    D(f) = Σ_i F_i² / (2 (1 − F_i)) + Σ_arcs latency_a · f_a,

and D / (λ N) is the predicted mean delivery time. D is convex, so flow deviation (the
Frank–Wolfe method) finds its minimum over the flows that carry the demand: from a feasible flow,
route every commodity on its shortest paths under the marginal costs
dD/df_a = F(2 − F) / (2 (1 − F)²) at the arc's router + the arc's latency, and move the flow
towards that by the step that minimises D (a line search that keeps every router below one packet
per tick and every link within its long-run capacity). Stop when the Frank–Wolfe duality gap,
a bound on how far D is above its minimum, is below `relative_gap` of D.

The start is the capacity programme's optimal flow scaled down to λ, so a load at or above λ*
has no start: no routing carries it, and `min-delay` refuses with one line naming λ*. The link
constraint enters only through the line search; where it binds the result is the best flow the
search reached (reported as `link_limited`). The arrivals at a transit router are not Poisson (a
neighbour sends at most one packet per tick), so the prediction is an approximation; docs/sweep.md
compares it with the simulated delay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from mamrl.agents.static_routing import (
    RECONVERGENCE_DELAY,
    distances_to,
    loop_free,
    reconverging_tables,
    remove_cycles,
    shortest_latency_next_hop,
    split_ratios,
)
from mamrl.errors import SimulationError
from mamrl.sim.capacity import (
    Arcs,
    CommodityFlow,
    capacity_bound,
    check_below_capacity,
    demand_per_unit_load,
    destination_packet_sizes,
)
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import RoutingTables
from mamrl.topologies.core import Topology
from mamrl.validate import Number, check_fields, setting


CONJUGATE_CAP_SHARE = 0.01
"""The conjugate target keeps at least this share of the new shortest-path flow (so it moves)."""


# ------------------------------------------------------------------------------ the delay model
def queued_per_tick(rate: np.ndarray) -> np.ndarray:
    """Mean packets left queued at a router forwarding `rate` < 1 packets per tick (M/D/1, discrete time)."""
    return rate * rate / (2.0 * (1.0 - rate))


def marginal_queued(rate: np.ndarray) -> np.ndarray:
    """d queued_per_tick / d rate."""
    return rate * (2.0 - rate) / (2.0 * (1.0 - rate) ** 2)


@dataclass(frozen=True, eq=False)
class MinDelayFlow:
    """The minimum-delay flow at one load and what the model predicts for it."""

    flow: CommodityFlow
    """Per-destination arc flows (loop-free), packets per tick."""
    predicted_delivery_time: float
    """The model's mean delivery time, ticks (queueing + latency; NaN at load 0)."""
    predicted_queueing_time: float
    """Its queueing part, ticks per packet."""
    relative_gap: float
    """Frank–Wolfe duality gap at the end, as a share of the delay: D is at most this far above its minimum."""
    iterations: int
    """Flow-deviation iterations run."""
    link_limited: bool
    """A link's capacity stopped the line search at some iteration (the result may then not be optimal)."""


@numba.njit(cache=True)
def _all_or_nothing(dist, next_arc, head, demand, load, out):
    """Route each commodity's demand on its shortest-path tree: out[d, a] = flow on arc a.
    dist [D, N] distances to d, next_arc [N, D] the tree's arc out of i, demand [N, N] (s, d)."""
    n = dist.shape[1]
    out[:] = 0.0
    carried = np.empty(n)
    for d in range(dist.shape[0]):
        order = np.argsort(-dist[d])  # farthest first: everything upstream of i is in before i pushes
        for i in range(n):
            carried[i] = load * demand[i, d]
        for i in order:
            if i == d or not np.isfinite(dist[d, i]) or carried[i] == 0.0:
                continue
            a = next_arc[i, d]
            out[d, a] += carried[i]
            carried[head[a]] += carried[i]


class _Problem:
    """Arrays of one flow-deviation run (arcs up, their routers and latencies)."""

    def __init__(self, topology: Topology, links_down: frozenset[int], demand: np.ndarray, load: float):
        self.topology = topology
        self.arcs = Arcs.of(topology, links_down)
        self.demand = demand
        self.load = load
        n = topology.num_routers
        self.latency = topology.latencies[self.arcs.link].astype(np.float64)
        sizes = destination_packet_sizes(topology, demand)
        caps = topology.capacities[self.arcs.link].astype(np.float64)
        # Share of the arc's link capacity one packet per tick of commodity d reserves in the long run.
        self.link_cost = np.where(self.arcs.up[None, :], sizes[:, None] * self.latency[None, :] / np.where(caps > 0, caps, 1), 0)
        neighbors, link_of_slot = topology.neighbor_table
        safe = np.maximum(link_of_slot, 0)
        self.arc_of_slot = np.where(link_of_slot >= 0, 2 * safe + (topology.link_endpoints[safe, 0] != np.arange(n)[:, None]), -1)
        self.slot_up = (link_of_slot >= 0) & self.arcs.up[np.maximum(self.arc_of_slot, 0)]

    def rates(self, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(router forwarding rates [N], arc totals [A], link shares [E]) of a flow [D, A]."""
        arc_total = flow.sum(axis=0)
        router = np.bincount(self.arcs.tail, weights=arc_total, minlength=self.topology.num_routers)
        link = np.bincount(self.arcs.link, weights=(self.link_cost * flow).sum(axis=0), minlength=self.topology.num_links)
        return router, arc_total, link

    def delay(self, router: np.ndarray, arc_total: np.ndarray) -> float:
        return float(queued_per_tick(router).sum() + self.latency @ arc_total)

    def shortest_paths_flow(self, router: np.ndarray, out: np.ndarray) -> None:
        """The all-or-nothing flow on shortest paths under the marginal costs at `router` rates."""
        lengths = np.where(self.arcs.up, marginal_queued(router)[self.arcs.tail] + self.latency, np.inf)
        n = self.topology.num_routers
        dist = distances_to(n, self.arcs, np.where(self.arcs.up, lengths, 0.0))
        neighbors = self.topology.neighbor_table[0]
        # via[i, d, k]: length through slot k of i; the tree takes the best slot (lowest on ties).
        via = np.where(
            self.slot_up[:, None, :],
            lengths[np.maximum(self.arc_of_slot, 0)][:, None, :] + dist[:, np.maximum(neighbors, 0)].transpose(1, 0, 2),
            np.inf,
        )
        best_slot = np.argmin(via, axis=2)
        next_arc = np.take_along_axis(np.maximum(self.arc_of_slot, 0)[:, None, :].repeat(n, axis=1), best_slot[:, :, None], axis=2)[:, :, 0]
        _all_or_nothing(dist, next_arc.astype(np.int64), self.arcs.head, self.demand, self.load, out)


def min_delay_flow(
    topology: Topology,
    load: float,
    *,
    links_down: frozenset[int] = frozenset(),
    demand_weights: np.ndarray | None = None,
    relative_gap: float = 1e-4,
    max_iterations: int = 2000,
) -> MinDelayFlow:
    """Flow deviation to the minimum-delay flow at `load` (raises InfeasibleLoadError at λ >= λ*)."""
    bound = capacity_bound(topology, failed_links=links_down, demand_weights=demand_weights)
    check_below_capacity("min-delay", bound, load)
    demand = demand_per_unit_load(topology, demand_weights)
    prob = _Problem(topology, bound.failed_links, demand, float(load))
    n, num_arcs = topology.num_routers, prob.arcs.num_arcs
    if load == 0:
        empty = CommodityFlow(topology, prob.arcs, np.zeros((n, num_arcs)), 0.0, demand)
        return MinDelayFlow(empty, math.nan, math.nan, 0.0, 0, False)
    flow = bound.flow.flow * (load / bound.max_load)  # every router below λ/λ* < 1
    shortest = np.empty_like(flow)
    target = previous_target = previous_router = None
    gap_share, iterations, link_limited = math.inf, 0, False
    router, arc_total, link = prob.rates(flow)
    while iterations < max_iterations:
        total = prob.delay(router, arc_total)
        prob.shortest_paths_flow(router, shortest)
        gap = -float(marginal_queued(router) @ (prob.rates(shortest)[0] - router) + prob.latency @ (shortest.sum(axis=0) - arc_total))
        gap_share = gap / total if total > 0 else 0.0
        if gap_share <= relative_gap:
            break
        # Conjugate direction (Mitradjieva & Lindberg 2013): mix the shortest-path flow with the
        # previous target so the new direction is conjugate to the last one under D's Hessian
        # (diagonal in the router rates: 1 / (1 - F)^3), which stops plain flow deviation's zigzag
        # near capacity. The mix stays a convex combination of path flows, so it carries the demand.
        target = shortest
        if previous_target is not None:
            curvature = 1.0 / (1.0 - router) ** 3
            last = prob.rates(previous_target)[0] - previous_router
            towards_shortest = prob.rates(shortest)[0]
            numerator = float(last @ (curvature * (towards_shortest - router)))
            denominator = float(last @ (curvature * (towards_shortest - prob.rates(previous_target)[0])))
            mix = numerator / denominator if denominator != 0 else 0.0
            if 0 < mix <= 1 - CONJUGATE_CAP_SHARE:
                target = mix * previous_target + (1 - mix) * shortest
            elif mix > 1 - CONJUGATE_CAP_SHARE:
                target = (1 - CONJUGATE_CAP_SHARE) * previous_target + CONJUGATE_CAP_SHARE * shortest
        direction = target - flow
        d_router, d_arc, d_link = (new - old for new, old in zip(prob.rates(target), (router, arc_total, link)))
        if -(marginal_queued(router) @ d_router + prob.latency @ d_arc) <= 0:  # not a descent direction
            target = shortest.copy()
            direction = target - flow
            d_router, d_arc, d_link = (new - old for new, old in zip(prob.rates(target), (router, arc_total, link)))
        previous_target, previous_router = target.copy(), router.copy()

        def slope(step: float) -> float:
            """d D(flow + step · direction) / d step."""
            return float(marginal_queued(router + step * d_router) @ d_router + prob.latency @ d_arc)

        # Largest step keeping every router below one packet per tick and every link within capacity.
        with np.errstate(divide="ignore", invalid="ignore"):
            router_room = np.where(d_router > 0, (1.0 - router) / d_router, np.inf).min(initial=np.inf)
            link_room = np.where(d_link > 0, (1.0 - link) / d_link, np.inf).min(initial=np.inf)
        high = min(1.0, router_room * (1 - 1e-9), link_room)
        if slope(high) <= 0:
            step = high
            link_limited |= link_room <= 1.0 and link_room <= router_room
        else:
            low = 0.0
            for _ in range(60):  # bisection on the increasing derivative of a convex function
                mid = 0.5 * (low + high)
                if slope(mid) > 0:
                    high = mid
                else:
                    low = mid
            step = low
        flow += step * direction
        router, arc_total, link = prob.rates(flow)
        iterations += 1
    result = remove_cycles(CommodityFlow(topology, prob.arcs, flow, float(load), demand))
    router, arc_total, _ = prob.rates(result.flow)
    packets_per_tick = load * demand.sum()
    queueing = float(queued_per_tick(router).sum()) / packets_per_tick
    return MinDelayFlow(
        result, prob.delay(router, arc_total) / packets_per_tick, queueing, float(gap_share), iterations, link_limited
    )


def min_delay_probabilities(
    topology: Topology, load: float, *, links_down: frozenset[int] = frozenset(),
    demand_weights: np.ndarray | None = None, relative_gap: float = 1e-4,
) -> np.ndarray:
    """Next-hop probabilities [N, N, K] of the minimum-delay flow at `load`."""
    result = min_delay_flow(topology, load, links_down=links_down, demand_weights=demand_weights, relative_gap=relative_gap)
    probs = split_ratios(result.flow, shortest_latency_next_hop(topology, links_down))
    if not loop_free(topology, probs):  # remove_cycles guarantees it; a failure here is a bug
        raise SimulationError("min-delay: the split ratios contain a routing loop")
    return probs


@dataclass(frozen=True)
class MinDelayPolicy:
    """Gallager's minimum-delay static routing at the simulated load (an oracle of the traffic matrix)."""

    relative_gap: float = setting(1e-4, Number(above=0, below=1))
    """Stop flow deviation when the predicted delay is provably within this share of its minimum."""
    reconvergence_delay_ticks: int | None = setting(None, RECONVERGENCE_DELAY)
    """Recompute the routing on the failed network this many ticks after a failure; None = never."""

    name = "min-delay"

    def __post_init__(self) -> None:
        check_fields(self, "min-delay")

    def routing_tables(self, params: SimParams) -> RoutingTables:
        topo = params.topology
        return reconverging_tables(
            params,
            self.reconvergence_delay_ticks,
            lambda down: min_delay_probabilities(
                topo, params.load_per_router, links_down=down, demand_weights=params.demand_weights,
                relative_gap=self.relative_gap,
            ),
        )
