"""Frozen simulation parameters: a topology, a load, a horizon, a failure set, a buffer limit.

A meta-learning task is just a value of these parameters (usually a different failure set).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from mamrl.errors import SimulationError
from mamrl.topologies.core import INT64_MAX, Topology

MAX_HORIZON_TICKS = 2**31 - 1
"""Longest episode: the simulator keeps ticks in the int32 packet array."""

QUEUE_DISCIPLINES: tuple[str, ...] = ("fifo", "per-destination")
"""Valid `SimParams.queue_discipline` values (docs/model.md, "Queues")."""


def shown_int(value: object) -> str:
    """An integer for an error message; one of many digits shortened to its first digits and length."""
    text = str(value)
    return text if len(text) <= 20 else f"{text[:6]}... ({len(text.lstrip('-'))} digits)"


def check_horizon(value: object, option: str = "horizon_ticks") -> None:
    """An episode length: an integer from 1 to `MAX_HORIZON_TICKS`; `option` names it in the error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_HORIZON_TICKS:
        raise SimulationError(f"{option} must be an integer from 1 to 2**31 - 1 ticks (ticks are int32 in the simulator), "
                              f"got {shown_int(value)}")


@dataclass(frozen=True)
class LinkFailure:
    """Link `link` goes down (capacity 0) at the start of tick `tick` and stays down."""

    link: int
    """Link id in the topology."""
    tick: int = 0
    """First tick the link is down; 0 = failed from the start of the episode."""

    @classmethod
    def parse(cls, topology: Topology, spec: str) -> "LinkFailure":
        """Parse `LINK[@TICK]`, LINK as `A-B` by router names, a link name or a link id."""
        text = spec.strip()
        tick = 0
        match = re.fullmatch(r"(.+?)@(.*)", text)
        if match:
            text, tick_text = match.group(1), match.group(2)
            try:
                tick = int(tick_text)
            except ValueError:
                raise SimulationError(f"failure {spec!r}: tick {tick_text!r} is not an integer") from None
            if not 0 <= tick <= INT64_MAX:
                raise SimulationError(f"failure {spec[:60]!r}: tick must be an integer from 0 to 2**63 - 1, got {shown_int(tick_text.strip())}")
        return cls(topology.link_id(text), tick)


@dataclass(frozen=True, eq=False)
class SimParams:
    """Everything that defines the simulated network and its traffic (not the policy)."""

    topology: Topology
    """The network."""
    load_per_router: float
    """lambda: mean number of new packets per router per tick (Poisson)."""
    horizon_ticks: int = 500
    """Episode length H in ticks (paper: 500)."""
    failures: tuple[LinkFailure, ...] = field(default=())
    """Links that fail and when; empty = the intact network (task M_0)."""
    buffer_limit: int | None = None
    """Max packets per router queue (drop-tail, counted as loss); None = unbounded."""
    demand_weights: np.ndarray | None = None
    """Optional [N, N] relative traffic from s to d (diagonal ignored). None = every router creates
    Poisson(load) packets with uniform destinations. Given, the network-wide rate stays
    load * N and is shared in proportion to the weights."""
    queue_discipline: str = "fifo"
    """How a router queues packets: "fifo" (one FIFO per router, the paper's model) or
    "per-destination" (one FIFO per (router, destination), which backpressure needs; a table
    policy then serves the queue whose head entered the router first, i.e. the same packet as
    "fifo"). Either way a router forwards at most one packet per tick and `buffer_limit` caps
    its total queued packets."""

    def __post_init__(self) -> None:
        load = self.load_per_router
        if isinstance(load, bool) or not isinstance(load, (int, float, np.floating, np.integer)):
            raise SimulationError(f"load must be a number, got {load!r}")
        if not math.isfinite(float(load)) or float(load) < 0:
            raise SimulationError(f"load must be a finite number >= 0 packets/router/tick, got {load!r}")
        object.__setattr__(self, "load_per_router", float(load))
        check_horizon(self.horizon_ticks)
        if self.buffer_limit is not None and (
            not isinstance(self.buffer_limit, (int, np.integer)) or not 1 <= self.buffer_limit <= INT64_MAX
        ):
            raise SimulationError(f"buffer_limit must be an integer from 1 to 2**63 - 1 or None, got {shown_int(self.buffer_limit)}")
        if not isinstance(self.queue_discipline, str) or self.queue_discipline not in QUEUE_DISCIPLINES:
            raise SimulationError(
                f"queue_discipline must be one of {', '.join(QUEUE_DISCIPLINES)}, got {self.queue_discipline!r}"
            )
        object.__setattr__(self, "failures", tuple(self.failures))
        if self.demand_weights is not None:
            n = self.topology.num_routers
            w = np.array(self.demand_weights, dtype=np.float64)
            if w.shape != (n, n):
                raise SimulationError(f"demand weights must have shape {(n, n)}, got {w.shape}")
            np.fill_diagonal(w, 0.0)
            if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise SimulationError("demand weights must be finite, >= 0, and not all zero off the diagonal")
            w.setflags(write=False)
            object.__setattr__(self, "demand_weights", w)
        for failure in self.failures:
            if not 0 <= failure.link < self.topology.num_links:
                raise SimulationError(
                    f"failure names link {failure.link}, topology {self.topology.name!r} has links 0..{self.topology.num_links - 1}"
                )
            if not isinstance(failure.tick, (int, np.integer)) or not 0 <= failure.tick <= INT64_MAX:
                raise SimulationError(f"failure tick must be an integer from 0 to 2**63 - 1, got {shown_int(failure.tick)}")

    @property
    def packet_size_values(self) -> np.ndarray:
        """int64 [N, N, S]: the pair size table; without one every packet has size 1."""
        if self.topology.packet_sizes is not None:
            return self.topology.packet_sizes.values
        n = self.topology.num_routers
        return np.ones((n, n, 1), dtype=np.int64)

    def describe(self) -> dict:
        """A JSON-ready description (for run records)."""
        return {
            "topology": self.topology.name,
            "routers": self.topology.num_routers,
            "links": self.topology.num_links,
            "load_per_router": self.load_per_router,
            "horizon_ticks": self.horizon_ticks,
            "failures": [
                {"link": self.topology.link_name(f.link), "link_id": f.link, "tick": f.tick} for f in self.failures
            ],
            "buffer_limit": self.buffer_limit,
            "queue_discipline": self.queue_discipline,
            "demand_weights": None if self.demand_weights is None else self.demand_weights.tolist(),
            "packet_sizes": None if self.topology.packet_sizes is None else self.topology.packet_sizes.provenance,
        }

    def replace(self, **changes) -> "SimParams":
        values = {
            "topology": self.topology,
            "load_per_router": self.load_per_router,
            "horizon_ticks": self.horizon_ticks,
            "failures": self.failures,
            "buffer_limit": self.buffer_limit,
            "demand_weights": self.demand_weights,
            "queue_discipline": self.queue_discipline,
        }
        values.update(changes)
        return SimParams(**values)


def require_fifo(params: SimParams, who: str) -> None:
    """Refuse per-destination queues in code that reads a router's single FIFO (its `RT_HEAD`):
    the step-wise API and the learners' compiled loops would otherwise run silently wrong."""
    if params.queue_discipline != "fifo":
        raise SimulationError(
            f"{who} supports only queue_discipline 'fifo' (one queue per router), got {params.queue_discipline!r}"
        )
