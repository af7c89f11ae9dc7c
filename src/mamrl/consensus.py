"""Dynamic average consensus (paper Eq. 4; Kia et al. 2019): every router estimates the
network-wide mean of a signal, talking only to its neighbours.

    x_i(t)   = r_i(t) - y_i(t)
    y_i(t+1) = y_i(t) + beta * sum_{j in N(i)} (x_i(t) - x_j(t)),      y_i(0) = 0

Because the update moves y along the graph Laplacian L, sum_i y_i stays 0, so sum_i x_i = sum_i r_i
at every step; for constant inputs and 0 < beta < 1/max_degree every x_i converges to the mean of
r. Router i's reward is then e_i = r~_i + x_i (Eq. 6).

Sign: the paper prints the sum as (x_j - x_i). With x = r - y that makes y(t+1) = (I + beta L) y(t)
- beta L r(t), whose eigenvalues exceed 1 for every beta > 0: the estimate diverges (we saw
|x| ~ 1e110 within one 500-tick episode). The form above is the first-order dynamic average
consensus of Kia et al. (the paper's reference [17]), y(t+1) = (I - beta L) y(t) + beta L r(t),
stable for beta < 2 / lambda_max(L) (so for beta < 1 / max degree) and with the properties the
paper states.

`mode="centralised"` replaces x_i by the true mean (an ablation: what perfect communication buys).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mamrl.errors import MamrlError
from mamrl.topologies.core import Topology

MODES = ("consensus", "centralised")


def default_gain(topology: Topology) -> float:
    """beta = 0.5 / max degree: inside the stability bound 1 / max degree with margin."""
    return 0.5 / float(topology.max_degree)


@dataclass
class DynamicConsensus:
    """Batched estimator state for B parallel episodes of one topology."""

    neighbors: np.ndarray
    """int64 [N, K] neighbour ids, -1 padded (the only values router i reads are x_j of these)."""
    gain: float
    """beta, the control gain."""
    mode: str = "consensus"
    """`consensus` (Eq. 4) or `centralised` (every router gets the true mean)."""

    @classmethod
    def for_topology(cls, topology: Topology, gain: float | None = None, mode: str = "consensus") -> "DynamicConsensus":
        if mode not in MODES:
            raise MamrlError(f"unknown consensus mode {mode!r} (choose from {', '.join(MODES)})")
        beta = default_gain(topology) if gain is None else float(gain)
        if not 0 < beta < 1:
            raise MamrlError(f"consensus gain must be in (0, 1), got {beta}")
        return cls(topology.neighbor_table[0], beta, mode)

    def step(self, signal: np.ndarray, y: np.ndarray) -> np.ndarray:
        """One step for signals [B, N]: returns x [B, N] and updates y [B, N] in place."""
        if self.mode == "centralised":
            return np.broadcast_to(signal.mean(axis=1, keepdims=True), signal.shape).copy()
        x = signal - y
        exists = self.neighbors >= 0
        neighbour_x = np.where(exists[None], x[:, np.maximum(self.neighbors, 0)], 0.0)  # [B, N, K]
        y += self.gain * (exists.sum(axis=1)[None, :] * x - neighbour_x.sum(axis=2))
        return x

    def run(self, signals: np.ndarray) -> np.ndarray:
        """x [T, B, N] for a sequence of signals [T, B, N], starting from y = 0."""
        y = np.zeros(signals.shape[1:])
        out = np.empty_like(signals, dtype=np.float64)
        for t in range(signals.shape[0]):
            out[t] = self.step(signals[t], y)
        return out
