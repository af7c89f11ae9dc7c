"""The simplest baseline: every router sends its queue head to a uniformly random neighbour.

Like SPA it knows nothing of failures (it picks among all neighbours, up or down).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mamrl.sim.params import SimParams
from mamrl.sim.simulator import RoutingTables


@dataclass(frozen=True)
class UniformRandomPolicy:
    """Uniform random next hop among all of the router's neighbours."""

    name = "random"

    def routing_tables(self, params: SimParams) -> RoutingTables:
        topo = params.topology
        n, k = topo.num_routers, topo.max_degree
        exists = (topo.neighbor_table[0] >= 0).astype(np.float64)
        probs = np.broadcast_to((exists / exists.sum(axis=1, keepdims=True))[:, None, :], (n, n, k))
        return RoutingTables.from_probabilities(probs)
