"""Max-throughput static routing: split ratios of an optimal flow of the capacity programme.

`sim.capacity` computes λ*, the largest load any routing can carry. This oracle routes by the
split ratios of a flow that achieves it: among the flows carrying (1 − headroom)·λ* within every
router's forwarding limit and every link's capacity, the one with the least total latency (a
second linear programme; the flows carrying λ* itself are many, and most take needless detours).
Every router's load is proportional to λ, so these tables keep every router below one packet per
tick for any λ < (1 − headroom)·λ* — throughput-optimal up to the headroom — at the price of longer
paths than shortest-path routing at low load (`min-delay` optimises delay at a given load instead).

It knows the traffic matrix (an oracle no router has) and not the queues. The flow's circulations,
if any, are cancelled, so the tables are loop-free. With `reconvergence_delay_ticks` it recomputes
them on the failed network; at or above λ* (of the network it is computed for) it refuses with a
one-line error, since no routing carries that load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mamrl.agents.static_routing import (
    RECONVERGENCE_DELAY,
    loop_free,
    reconverging_tables,
    remove_cycles,
    shortest_latency_next_hop,
    split_ratios,
)
from mamrl.errors import SimulationError
from mamrl.sim.capacity import capacity_bound, check_below_capacity, shortest_flow
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import RoutingTables
from mamrl.topologies.core import Topology
from mamrl.validate import Number, check_fields, setting


def max_throughput_probabilities(
    topology: Topology, load: float, *, links_down: frozenset[int] = frozenset(),
    demand_weights: np.ndarray | None = None, headroom: float = 0.01,
) -> np.ndarray:
    """Next-hop probabilities [N, N, K] of the least-latency flow at (1 − headroom)·λ*."""
    bound = capacity_bound(topology, failed_links=links_down, demand_weights=demand_weights)
    check_below_capacity("max-throughput", bound, load)
    flow = remove_cycles(
        shortest_flow(topology, (1.0 - headroom) * bound.max_load, failed_links=links_down, demand_weights=demand_weights)
    )
    probs = split_ratios(flow, shortest_latency_next_hop(topology, links_down))
    if not loop_free(topology, probs):  # remove_cycles guarantees it; a failure here is a bug
        raise SimulationError("max-throughput: the split ratios contain a routing loop")
    return probs


@dataclass(frozen=True)
class MaxThroughputPolicy:
    """Split ratios of a least-latency flow at (1 − headroom)·λ* (an oracle of the traffic matrix)."""

    headroom: float = setting(0.01, Number(above=0, below=1))
    """The flow is computed at (1 − headroom)·λ*: shorter paths than at λ* itself, stable below it."""
    reconvergence_delay_ticks: int | None = setting(None, RECONVERGENCE_DELAY)
    """Recompute the tables on the failed network this many ticks after a failure; None = never."""

    name = "max-throughput"

    def __post_init__(self) -> None:
        check_fields(self, "max-throughput")

    def routing_tables(self, params: SimParams) -> RoutingTables:
        topo = params.topology
        return reconverging_tables(
            params,
            self.reconvergence_delay_ticks,
            lambda down: max_throughput_probabilities(
                topo, params.load_per_router, links_down=down, demand_weights=params.demand_weights, headroom=self.headroom
            ),
        )
