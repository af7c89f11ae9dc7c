"""The physical limit of the model: the largest load λ* that *any* routing can carry.

A router forwards at most one packet per tick, so a load is sustainable only if the packets it
creates can be routed with every router forwarding at most one packet per tick on average. That
is a maximum concurrent flow linear programme, one commodity per destination d:

    maximise λ over flows f[d, a] >= 0 on directed arcs a = (i -> j)
    conservation   sum_{a out of i} f[d, a] - sum_{a into i} f[d, a] = λ · demand[i, d]   (i != d)
    forwarding     sum_d sum_{a out of i} f[d, a] <= 1                                     (every router i)
    link capacity  sum_d size[d] · latency[e] · (f[d, e->] + f[d, e<-]) <= capacity[e]     (every link e)

`demand[s, d]` is the packets per tick from s to d per unit of load, from the traffic model
(`demand_per_unit_load`: uniform destinations, or the `demand_weights` of `SimParams`). A packet
reserves its size of its link's capacity for the link's latency, so by Little's law the capacity
reserved on average is (packets per tick) × size × latency; it can never exceed the capacity,
which gives the link constraint. `size[d]` is the smallest mean packet size of any source sending
to d, so the programme is a relaxation of the simulated model and λ* an upper bound on the
saturation load of every routing algorithm: at λ >= λ* no routing keeps queues bounded.
(On the built-in topologies no link constraint binds: a B4 link carries ~13 packets per tick
before its capacity is exhausted, while its router forwards at most one.)

Packets are delivered on arrival at their destination, so a destination never forwards its own
commodity, and an arc out of d carries no flow of commodity d.

The programme is solved by HiGHS (`scipy.optimize.linprog`). The forwarding constraints with a
positive dual price are the *binding routers*: the bottleneck every optimal routing saturates.
A failed link (or one of capacity 0) carries nothing; if it splits routers that exchange
traffic, λ* = 0 and the result names the components.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from mamrl.errors import SimulationError
from mamrl.sim.memory import MemoryPart, check_memory
from mamrl.topologies.core import Topology

DUAL_TOLERANCE = 1e-7
"""A forwarding or link constraint whose dual price exceeds this binds (λ* per unit of forwarding)."""
SATURATION_TOLERANCE = 1e-6
"""A router forwarding at least 1 − this many packets per tick is saturated."""
SLACK_CAP = 1e-3
"""Largest slack credited per router when testing which routers every optimal flow saturates."""


# ------------------------------------------------------------------------------ the traffic model
def demand_per_unit_load(topology: Topology, demand_weights: np.ndarray | None = None) -> np.ndarray:
    """float64 [N, N]: packets per tick from s to d at load 1 (zero diagonal).

    Uniform destinations (no weights): every router creates λ packets per tick, each for one of
    the other N−1 routers. With weights (as `SimParams.demand_weights`): the network-wide rate
    stays λ·N and is shared in proportion to the weights — exactly what `sim.traffic` draws.
    """
    n = topology.num_routers
    if demand_weights is None:
        demand = np.full((n, n), 1.0 / (n - 1))
    else:
        w = np.array(demand_weights, dtype=np.float64)
        if w.shape != (n, n):
            raise SimulationError(f"demand weights must have shape {(n, n)}, got {w.shape}")
        np.fill_diagonal(w, 0.0)
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise SimulationError("demand weights must be finite, >= 0, and not all zero off the diagonal")
        demand = n * w / w.sum()
    np.fill_diagonal(demand, 0.0)
    return demand


def mean_packet_sizes(topology: Topology) -> np.ndarray:
    """float64 [N, N]: mean packet size of each (source, destination) pair (1 without a size table)."""
    n = topology.num_routers
    if topology.packet_sizes is None:
        return np.ones((n, n))
    return topology.packet_sizes.values.mean(axis=2).astype(np.float64)


def destination_packet_sizes(topology: Topology, demand: np.ndarray) -> np.ndarray:
    """float64 [N]: per destination, the smallest mean packet size of any source sending to it (the
    size the link constraint charges that commodity: the least it can be, so λ* stays an upper bound)."""
    sizes = mean_packet_sizes(topology)
    n = topology.num_routers
    return np.array([sizes[demand[:, d] > 0, d].min() if np.any(demand[:, d] > 0) else 1.0 for d in range(n)])


# ------------------------------------------------------------------------------ arcs
@dataclass(frozen=True, eq=False)
class Arcs:
    """The directed arcs of a topology: arc 2e runs a -> b of link e, arc 2e+1 runs b -> a."""

    tail: np.ndarray
    """int64 [A]: the router the arc leaves."""
    head: np.ndarray
    """int64 [A]: the router the arc enters."""
    link: np.ndarray
    """int64 [A]: the link the arc belongs to."""
    up: np.ndarray
    """bool [A]: the link is neither failed nor of capacity 0."""

    @classmethod
    def of(cls, topology: Topology, failed_links: frozenset[int] = frozenset()) -> "Arcs":
        ends = topology.link_endpoints
        tail = np.stack([ends[:, 0], ends[:, 1]], axis=1).reshape(-1)
        head = np.stack([ends[:, 1], ends[:, 0]], axis=1).reshape(-1)
        link = np.repeat(np.arange(topology.num_links, dtype=np.int64), 2)
        link_up = topology.capacities > 0
        for e in failed_links:
            link_up[e] = False
        return cls(tail, head, link, link_up[link])

    @property
    def num_arcs(self) -> int:
        return int(self.tail.shape[0])


def check_failed_links(topology: Topology, failed_links) -> frozenset[int]:
    """The failed link ids as a frozenset, each checked against the topology."""
    out = set()
    for e in failed_links:
        if isinstance(e, bool) or not isinstance(e, (int, np.integer)) or not 0 <= e < topology.num_links:
            raise SimulationError(f"failed link {e!r} is not a link id of {topology.name!r} (0..{topology.num_links - 1})")
        out.add(int(e))
    return frozenset(out)


def components_cut(topology: Topology, failed_links: frozenset[int], demand: np.ndarray) -> tuple[tuple[int, ...], ...]:
    """Connected components (router ids, largest first) when they split routers that exchange
    traffic; () when every demand can still be routed."""
    graph = nx.Graph()
    graph.add_nodes_from(range(topology.num_routers))
    graph.add_edges_from(
        (link.a, link.b) for e, link in enumerate(topology.links) if e not in failed_links and link.capacity > 0
    )
    parts = sorted((tuple(sorted(c)) for c in nx.connected_components(graph)), key=lambda c: (-len(c), c))
    if len(parts) == 1:
        return ()
    label = np.empty(topology.num_routers, dtype=np.int64)
    for k, part in enumerate(parts):
        label[list(part)] = k
    split = label[:, None] != label[None, :]
    return tuple(parts) if np.any(split & (demand > 0)) else ()


# ------------------------------------------------------------------------------ the programme
@dataclass(frozen=True, eq=False)
class CommodityFlow:
    """Per-destination flows on the arcs of a topology, in packets per tick."""

    topology: Topology
    """The network the flow lives on."""
    arcs: Arcs
    """The arcs (with which links are up)."""
    flow: np.ndarray
    """float64 [N, A]: flow of commodity d (packets destined to d) on each arc."""
    load_per_router: float
    """The load λ the flow carries."""
    demand: np.ndarray
    """float64 [N, N]: packets per tick from s to d at load 1."""

    def forwarding_rate(self) -> np.ndarray:
        """float64 [N]: packets each router forwards per tick (its utilisation; at most 1)."""
        out = np.zeros(self.topology.num_routers)
        np.add.at(out, self.arcs.tail, self.flow.sum(axis=0))
        return out

    def arc_rate(self) -> np.ndarray:
        """float64 [A]: packets per tick on each arc, all commodities."""
        return self.flow.sum(axis=0)

    def link_share(self) -> np.ndarray:
        """float64 [E]: long-run share of each link's capacity the flow reserves (at most 1; NaN
        for a link that is down)."""
        topo = self.topology
        sizes = destination_packet_sizes(topo, self.demand)
        reserved = np.zeros(topo.num_links)
        np.add.at(reserved, self.arcs.link, (sizes[:, None] * self.flow).sum(axis=0) * topo.latencies[self.arcs.link])
        up = self.arcs.up[0::2]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(up, reserved / topo.capacities, np.nan)


@dataclass(frozen=True, eq=False)
class _Programme:
    """The sparse constraint matrices over variables x = (f[d, a] for active (d, a)) + (λ,)."""

    var_dest: np.ndarray
    var_arc: np.ndarray
    var_tail: np.ndarray
    a_eq: sp.csr_matrix
    a_ub: sp.csr_matrix
    b_ub: np.ndarray
    ub_links: np.ndarray
    num_routers: int


LP_BYTES_PER_VARIABLE = 2000
"""Peak memory per flow variable (commodity × arc) of building and solving the programme with
HiGHS, measured: 1.1 kB on 100 routers, 1.5 kB on 200, rising slowly with size."""


def _programme(topology: Topology, arcs: Arcs, demand: np.ndarray) -> _Programme:
    n, num_arcs = topology.num_routers, arcs.num_arcs
    check_memory([MemoryPart("flow variables", float(LP_BYTES_PER_VARIABLE) * n * num_arcs,
                             f"{n:,} destinations × {num_arcs:,} arcs, ~{LP_BYTES_PER_VARIABLE} bytes each", ("routers",))],
                 options={"routers": "the number of routers (use a smaller topology)"},
                 what=f"the linear programme of topology {topology.name!r}")
    dest, arc = np.meshgrid(np.arange(n), np.arange(num_arcs), indexing="ij")
    # Commodity d never leaves d (it is delivered there) and nothing crosses a link that is down.
    active = arcs.up[None, :] & (arcs.tail[None, :] != dest)
    var_dest, var_arc = dest[active], arc[active]
    nv = var_dest.shape[0]
    lam = nv  # index of λ

    def row(d: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Conservation row of (commodity d, router i != d)."""
        return d * (n - 1) + np.where(i < d, i, i - 1)

    tail, head = arcs.tail[var_arc], arcs.head[var_arc]
    into = head != var_dest  # arriving at d ends the commodity, so no conservation row there
    rows = np.concatenate([row(var_dest, tail), row(var_dest[into], head[into])])
    cols = np.concatenate([np.arange(nv), np.arange(nv)[into]])
    vals = np.concatenate([np.ones(nv), -np.ones(int(into.sum()))])
    dd, ii = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    off = dd != ii
    rows = np.concatenate([rows, row(dd[off], ii[off])])
    cols = np.concatenate([cols, np.full(int(off.sum()), lam)])
    vals = np.concatenate([vals, -demand.T[off]])  # demand[i, d] at row (d, i)
    a_eq = sp.csr_matrix((vals, (rows, cols)), shape=(n * (n - 1), nv + 1))

    # Forwarding: router i sends at most one packet per tick, all commodities together.
    ub_rows = [tail]
    ub_cols = [np.arange(nv)]
    ub_vals = [np.ones(nv)]
    b_ub = [np.ones(n)]
    # Link capacity in its long-run form: packets per tick × size × latency <= capacity.
    size_of_dest = destination_packet_sizes(topology, demand)
    link_ids = np.flatnonzero(np.bincount(arcs.link[arcs.up], minlength=topology.num_links) > 0)
    link_row = np.full(topology.num_links, -1, dtype=np.int64)
    link_row[link_ids] = n + np.arange(link_ids.shape[0])
    var_link = arcs.link[var_arc]
    ub_rows.append(link_row[var_link])
    ub_cols.append(np.arange(nv))
    ub_vals.append(size_of_dest[var_dest] * topology.latencies[var_link] / topology.capacities[var_link])
    b_ub.append(np.ones(link_ids.shape[0]))  # normalised by capacity: 1 = the link's whole capacity
    a_ub = sp.csr_matrix(
        (np.concatenate(ub_vals), (np.concatenate(ub_rows), np.concatenate(ub_cols))),
        shape=(n + link_ids.shape[0], nv + 1),
    )
    return _Programme(var_dest, var_arc, tail, a_eq, a_ub, np.concatenate(b_ub), link_ids, n)


def _solve(prog: _Programme, cost: np.ndarray, load_bounds: tuple[float, float | None], what: str):
    res = linprog(
        cost,
        A_ub=prog.a_ub,
        b_ub=prog.b_ub,
        A_eq=prog.a_eq,
        b_eq=np.zeros(prog.a_eq.shape[0]),
        bounds=[(0, None)] * (cost.shape[0] - 1) + [load_bounds],
        # Interior point without presolve: HiGHS's presolve took 80% of the time on the 143-router
        # TataNld (11.6 s against 2.3 s); crossover still gives a basic solution and its duals.
        method="highs-ipm",
        options={"presolve": False},
    )
    if res.status != 0:
        raise SimulationError(f"{what}: the linear programme failed ({res.message})")
    return res


def _flow_from(prog: _Programme, x: np.ndarray, topology: Topology, arcs: Arcs, demand: np.ndarray, load: float) -> CommodityFlow:
    flow = np.zeros((topology.num_routers, arcs.num_arcs))
    flow[prog.var_dest, prog.var_arc] = np.maximum(x[:-1], 0.0)
    return CommodityFlow(topology, arcs, flow, load, demand)


@dataclass(frozen=True, eq=False)
class CapacityBound:
    """λ*: the largest load any routing can carry, and what limits it."""

    topology: Topology
    """The network."""
    failed_links: frozenset[int]
    """Links that carry nothing (failed)."""
    max_load: float
    """λ* in packets per router per tick (0 when the failures disconnect routers that exchange traffic)."""
    binding_routers: tuple[int, ...]
    """Routers that forward one packet per tick in every flow carrying λ* (the bottleneck), highest
    dual price first."""
    router_price: np.ndarray
    """float64 [N]: dual price of each router's forwarding limit (increase of λ* per unit of extra forwarding)."""
    binding_links: tuple[int, ...]
    """Links whose capacity constraint binds (usually none)."""
    components: tuple[tuple[int, ...], ...] = field(default=())
    """When disconnected: the connected components (router ids, largest first); else ()."""
    flow: CommodityFlow | None = None
    """An optimal flow at λ* (None when λ* = 0)."""

    @property
    def disconnected(self) -> bool:
        return bool(self.components)

    @property
    def cut_off(self) -> tuple[int, ...]:
        """Routers outside the largest component (sorted ids); () when connected."""
        return tuple(sorted(i for part in self.components[1:] for i in part))

    def describe(self) -> dict:
        """JSON-ready summary."""
        topo = self.topology
        names = topo.router_names
        return {
            "topology": topo.name,
            "failed_links": [topo.link_name(e) for e in sorted(self.failed_links)],
            "max_load_per_router": self.max_load,
            "binding_routers": [
                {"router": names[i], "dual_price": float(self.router_price[i])} for i in self.binding_routers
            ],
            "binding_links": [topo.link_name(e) for e in self.binding_links],
            "components": [[names[i] for i in part] for part in self.components],
            "cut_off": [names[i] for i in self.cut_off],
        }


def capacity_bound(
    topology: Topology, *, failed_links=(), demand_weights: np.ndarray | None = None, find_binding: bool = True
) -> CapacityBound:
    """Solve the max-concurrent-flow programme of this module for `topology` with `failed_links` down.
    `find_binding=False` skips the test of which routers every optimal flow saturates (a second LP)
    and reports only the routers with a positive dual price."""
    failed = check_failed_links(topology, failed_links)
    demand = demand_per_unit_load(topology, demand_weights)
    n = topology.num_routers
    parts = components_cut(topology, failed, demand)
    if parts:
        return CapacityBound(topology, failed, 0.0, (), np.zeros(n), (), parts, None)
    arcs = Arcs.of(topology, failed)
    prog = _programme(topology, arcs, demand)
    cost = np.zeros(prog.a_eq.shape[1])
    cost[-1] = -1.0
    res = _solve(prog, cost, (0, None), f"capacity of {topology.name!r}")
    max_load = float(res.x[-1])
    price = np.maximum(-np.asarray(res.ineqlin.marginals, dtype=np.float64), 0.0)
    flow = _flow_from(prog, res.x, topology, arcs, demand, max_load)
    if find_binding:
        binding = _always_saturated(prog, flow.forwarding_rate(), price[:n], max_load)
    else:
        priced = np.flatnonzero(price[:n] > DUAL_TOLERANCE)
        binding = tuple(int(i) for i in priced[np.argsort(-price[priced], kind="stable")])
    binding_links = tuple(int(e) for e in prog.ub_links[price[n:] > DUAL_TOLERANCE])
    return CapacityBound(topology, failed, max_load, binding, price[:n], binding_links, (), flow)


def _always_saturated(prog: _Programme, rate: np.ndarray, price: np.ndarray, max_load: float) -> tuple[int, ...]:
    """Routers that forward one packet per tick in *every* flow carrying λ*, highest price first.

    The dual prices alone are not canonical (on b4 two equally valid dual solutions price {E, F} or
    {G, H}). A positive price proves a router saturated in every optimal flow (complementary
    slackness). The other routers saturated in the flow found are candidates: an LP at λ* gives
    each candidate a slack s_c in [0, SLACK_CAP] below its forwarding limit and maximises their sum;
    a candidate with slack left is not always saturated. Repeat on the rest until the LP finds no
    slack: since the optimal flows form a convex set, every remaining candidate is then saturated
    in all of them.
    """
    always = [int(i) for i in np.flatnonzero((rate >= 1.0 - SATURATION_TOLERANCE) & (price > DUAL_TOLERANCE))]
    candidates = [int(i) for i in np.flatnonzero((rate >= 1.0 - SATURATION_TOLERANCE) & (price <= DUAL_TOLERANCE))]
    nx_ = prog.a_eq.shape[1]
    # λ a hair below λ*: the optimum is a limit, and exactly λ* can be infeasible in floating point.
    load = max_load * (1 - 1e-9)
    while candidates:
        c = len(candidates)
        rows = [np.flatnonzero(prog.var_tail == i) for i in candidates]
        extra = sp.csr_matrix(
            (
                np.ones(sum(r.shape[0] for r in rows) + c),
                (
                    np.concatenate([np.full(r.shape[0], k) for k, r in enumerate(rows)] + [np.arange(c)]),
                    np.concatenate(rows + [nx_ + np.arange(c)]),
                ),
            ),
            shape=(c, nx_ + c),
        )
        a_ub = sp.vstack([sp.hstack([prog.a_ub, sp.csr_matrix((prog.a_ub.shape[0], c))]), extra]).tocsr()
        a_eq = sp.hstack([prog.a_eq, sp.csr_matrix((prog.a_eq.shape[0], c))]).tocsr()
        cost = np.concatenate([np.zeros(nx_), -np.ones(c)])
        res = linprog(
            cost, A_ub=a_ub, b_ub=np.concatenate([prog.b_ub, np.ones(c)]), A_eq=a_eq, b_eq=np.zeros(a_eq.shape[0]),
            bounds=[(0, None)] * (nx_ - 1) + [(load, load)] + [(0, SLACK_CAP)] * c,
            method="highs-ipm", options={"presolve": False},
        )
        if res.status != 0:
            raise SimulationError(f"the binding routers: the linear programme failed ({res.message})")
        slack = res.x[nx_:]
        if np.all(slack <= SATURATION_TOLERANCE):
            always.extend(candidates)
            break
        candidates = [i for i, s_i in zip(candidates, slack) if s_i <= SATURATION_TOLERANCE]
    return tuple(sorted(always, key=lambda i: (-price[i], i)))


def shortest_flow(
    topology: Topology, load: float, *, failed_links=(), demand_weights: np.ndarray | None = None
) -> CommodityFlow:
    """Among the flows that carry `load` within every router's and link's limit, one with the least
    total latency (Σ flow × latency: short paths). Raises SimulationError if `load` >= λ*... more
    precisely if no such flow exists (load > λ*)."""
    failed = check_failed_links(topology, failed_links)
    demand = demand_per_unit_load(topology, demand_weights)
    arcs = Arcs.of(topology, failed)
    prog = _programme(topology, arcs, demand)
    cost = np.zeros(prog.a_eq.shape[1])
    cost[:-1] = topology.latencies[arcs.link[prog.var_arc]]
    res = _solve(prog, cost, (float(load), float(load)), f"a flow of load {load:g} on {topology.name!r}")
    return _flow_from(prog, res.x, topology, arcs, demand, float(load))


class InfeasibleLoadError(SimulationError):
    """The load is at or above λ*: no routing carries it, so an oracle routing for it does not exist."""

    def __init__(self, who: str, bound: CapacityBound, load: float):
        self.load = float(load)
        self.max_load = bound.max_load
        where = bound.topology.name
        if bound.failed_links:
            where += " with " + ", ".join(bound.topology.link_name(e) for e in sorted(bound.failed_links)) + " failed"
        super().__init__(
            f"{who}: load {load:g} is at or above the capacity limit λ* = {bound.max_load:.4g} of {where}; "
            f"no routing carries it (choose a load below λ*, e.g. a share of it)"
        )


def check_below_capacity(who: str, bound: CapacityBound, load: float) -> None:
    """Raise InfeasibleLoadError unless `load` < λ*."""
    if not load < bound.max_load:
        raise InfeasibleLoadError(who, bound, load)


def failure_scan(
    topology: Topology, *, failed_links=(), demand_weights: np.ndarray | None = None, on_link=None
) -> list[tuple[int, CapacityBound]]:
    """(link, λ* with that link failed too) for every link not already in `failed_links`, in link
    id order. `on_link(link)` is called after each (progress)."""
    base = check_failed_links(topology, failed_links)
    out = []
    for e in range(topology.num_links):
        if e in base:
            continue
        out.append((e, capacity_bound(topology, failed_links=base | {e}, demand_weights=demand_weights)))
        if on_link is not None:
            on_link(e)
    return out


__all__ = [
    "Arcs",
    "CapacityBound",
    "InfeasibleLoadError",
    "check_below_capacity",
    "CommodityFlow",
    "capacity_bound",
    "components_cut",
    "demand_per_unit_load",
    "destination_packet_sizes",
    "failure_scan",
    "mean_packet_sizes",
    "shortest_flow",
]
