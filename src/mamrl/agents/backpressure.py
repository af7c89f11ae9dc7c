"""Backpressure routing (Tassiulas & Ephremides 1992) and its shortest-path-biased variant
(Neely's "enhanced backpressure"): classical yardsticks that do not learn.

Every router keeps one FIFO per destination (backpressure always runs with
`queue_discipline = "per-destination"`: given FIFO parameters it switches them, since the queues
are part of the algorithm). At each tick, router i looks at every destination d it holds packets
for and every link k whose available capacity fits the head packet of (i, d), and weighs

    w = (Q_i^d + eta * H_i^d) - (Q_j^d + eta * H_j^d),      j = the neighbour behind link k,

with Q the per-destination queue lengths at the start of the tick's forwarding phase (Q_j^d = 0
when j = d) and H the hop distance to d on the intact topology. It sends the head of (i, d*)
through k* maximising w if w > 0 and stays idle otherwise; tied maxima are broken with the
router's policy uniform for the tick. eta = 0 is classic backpressure, throughput-optimal but a
random walk at low load; eta > 0 pulls packets along shortest paths until queues build up.

Information advantage: a backpressure router sees its neighbours' per-destination queue lengths
every tick, and its own links' available capacity, which SPA, ECMP and the learned routers do
not; it does not know the traffic matrix. The rule itself is compiled in
`backpressure_kernel.run_backpressure_episodes` and mirrored by the oracle (`oracle.Backpressure`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mamrl.agents.base import Progress, RoutingAgent, in_chunks
from mamrl.agents.shortest_path import hop_distances
from mamrl.errors import MamrlError
from mamrl.sim import backpressure_kernel, kernel
from mamrl.sim.params import SimParams
from mamrl.sim.simulator import BatchResult
from mamrl.sim.traffic import draw_policy_uniforms, draw_traffic
from mamrl.validate import Number, check_fields, setting

SP_BACKPRESSURE_BIAS = 2.0
"""Default eta of `sp-backpressure`, in packets per hop. Measured (docs/algorithms.md): from
eta = 2 on, packets take exactly SPA's hop counts at low load (b4, geant, att at lambda <= 0.1),
with SPA's delay or slightly less; near the throughput limit (att, geant at lambda = 0.2, b4 at
0.3) eta = 1-2 keeps the backlog bounded with the lowest delays, while eta >= 5 needs queues
that grow with eta (att at 0.2: 0.972 delivered at eta = 5, 0.958 at 10, against 0.984 at 2)."""


@dataclass(frozen=True)
class BackpressureConfig:
    """Parameters of backpressure routing."""

    config_name: ClassVar[str] = "backpressure"

    bias_packets_per_hop: float = setting(0.0, Number(at_least=0))
    """eta: queue difference, in packets, that one hop of distance to the destination is worth;
    0 = classic backpressure. Must be finite and >= 0."""

    def __post_init__(self) -> None:
        check_fields(self)


def per_destination(params: SimParams) -> SimParams:
    """`params` with per-destination queues (unchanged if it already has them)."""
    if params.queue_discipline == "per-destination":
        return params
    return params.replace(queue_discipline="per-destination")


def _check_bias(bias: float) -> None:
    if isinstance(bias, bool) or not isinstance(bias, (int, float, np.integer, np.floating)) or not (
        math.isfinite(float(bias)) and float(bias) >= 0
    ):
        raise MamrlError(f"backpressure bias_packets_per_hop must be a finite number >= 0, got {bias!r}")


def run_backpressure(
    params: SimParams, bias_packets_per_hop: float, seed: int, num_episodes: int = 1, first_episode: int = 0
) -> BatchResult:
    """Episodes `first_episode ..` of `seed` routed by backpressure, in compiled code. The
    result's params have per-destination queues."""
    _check_bias(bias_packets_per_hop)
    params = per_destination(params)
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, (int, np.integer)) or num_episodes < 1:
        raise MamrlError(f"number of episodes must be an integer >= 1, got {num_episodes!r}")
    net = kernel.make_net(params)
    traffic = draw_traffic(params, seed, num_episodes, first_episode)
    state = kernel.make_state(net, traffic)
    uniforms = draw_policy_uniforms(seed, num_episodes, params.horizon_ticks, params.topology.num_routers, first_episode)
    hops = np.ascontiguousarray(hop_distances(params.topology), dtype=np.int64)
    scratch = backpressure_kernel.backpressure_scratch(net)
    backpressure_kernel.run_backpressure_episodes(net, state, hops, float(bias_packets_per_hop), uniforms, scratch)
    return BatchResult(params, traffic, state)


class Backpressure(RoutingAgent):
    """Backpressure routing on per-destination queues; `bias_packets_per_hop` > 0 is the
    shortest-path-biased variant."""

    learns = False

    def __init__(self, config: BackpressureConfig | None = None, name: str = "backpressure"):
        self.cfg = config or BackpressureConfig()
        _check_bias(self.cfg.bias_packets_per_hop)
        self.name = name

    def evaluate(
        self, params: SimParams, seed: int, num_episodes: int, *, batch_size: int = 32, on_progress: Progress | None = None
    ) -> dict[str, np.ndarray]:
        """Per-episode metrics of episodes 0..num_episodes-1 of `seed`, in batches of `batch_size`
        (results do not depend on it), with per-destination queues whatever `params` say."""

        def run(size: int, done: int) -> dict[str, np.ndarray]:
            return run_backpressure(params, self.cfg.bias_packets_per_hop, seed, size, done).per_episode()

        return in_chunks(num_episodes, batch_size, run, on_progress)

    def config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.cfg)
