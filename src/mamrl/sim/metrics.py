"""Per-episode metrics (docs/model.md) from a finished batch, and summaries with 95% confidence intervals.

The paper's metric — mean delivery time over *delivered* packets — rewards a policy that delivers
few packets. So every summary carries, beside it, the delivered fraction and the mean sojourn
time over **every** packet created in the episode: its delivery time if delivered, else its age at
the horizon (H − creation tick), whether it is still in the network or was lost. A lost packet is
a packet never delivered, so it costs at least as much as one still queued at the horizon, and
dropping a packet can never lower the sojourn time below what delivering it would have given.
`mean_sojourn_time_not_lost` is the figure mamrl reported as the sojourn time before these
loss-honest metrics: it leaves lost packets out, so it *falls* when packets that would have been
slow are dropped. It is kept, under its own name, because committed results used it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from mamrl.sim import kernel
from mamrl.sim.kernel import (
    EP_COUNT,
    EP_DELIVERED,
    EP_GENERATED,
    EP_IN_FLIGHT,
    EP_LOST,
    EP_NEXT_NEW,
    EP_QUEUED,
    FATE_DELIVERED,
    FATE_LOST,
    FATE_PENDING,
    LK_LOST,
    LK_RESERVED_SUM,
    PK_CREATED,
    PK_DST,
    PK_END_TICK,
    PK_FATE,
    PK_HOPS,
    PK_SRC,
    RT_LOST,
    RT_QUEUED_SUM,
    SR_DELIVERED,
    SR_GENERATED,
    SR_IN_FLIGHT,
    SR_LOST,
    SR_QUEUED,
    State,
)

if TYPE_CHECKING:
    from mamrl.sim.params import SimParams

# Metric name -> (short label, unit) in the order tables show them.
METRIC_INFO: dict[str, tuple[str, str]] = {
    "mean_delivery_time": ("delivery time (paper)", "ticks"),
    "mean_sojourn_time": ("sojourn time (every packet)", "ticks"),
    "delivered_fraction": ("delivered fraction", ""),
    "loss_fraction": ("loss fraction", ""),
    "p50_delivery_time": ("delivery time p50", "ticks"),
    "p95_delivery_time": ("delivery time p95", "ticks"),
    "p99_delivery_time": ("delivery time p99", "ticks"),
    "mean_stretch": ("stretch (vs shortest latency)", ""),
    "mean_sojourn_time_not_lost": ("sojourn time, lost packets left out", "ticks"),
    "generated": ("generated", "packets"),
    "delivered": ("delivered", "packets"),
    "lost": ("lost", "packets"),
    "in_network_at_end": ("in network at end", "packets"),
    "mean_queue_length": ("queue length per router", "packets"),
    "mean_link_utilisation": ("mean link utilisation", ""),
    "max_link_utilisation": ("max link utilisation", ""),
    "mean_hops": ("hops per delivered packet", "links"),
    "backlog_growth": ("undelivered growth (2nd half)", "packets/tick"),
}
"""`mean_sojourn_time` is over every generated packet (lost ones at their age at the horizon);
`mean_sojourn_time_not_lost` is the older figure over the packets not lost. `mean_stretch` is the
mean over delivered packets of delivery time ÷ the latency of the shortest-latency path from the
packet's source to its destination on the intact topology (links of capacity 0 left out; ≥ 1).
`mean_queue_length` is the time average of the packets queued at the end of each tick, per
router; `max_link_utilisation` the largest per-link time-average utilisation. `backlog_growth` is
the least-squares slope of the packets *not delivered* (generated − delivered = queued + in flight
+ lost so far) over the second half of the horizon: ~0 when every packet is eventually delivered
and queues are bounded, positive when queues grow without bound (the network is past saturation)
or packets keep being lost."""


def predates_loss_honest(columns: Iterable[str]) -> bool:
    """Whether a results header (metric names, possibly with `_mean`-style suffixes) was written
    before the loss-honest metrics: it has a sojourn time but no `mean_sojourn_time_not_lost`."""
    names = list(columns)
    return (any(c.startswith("mean_sojourn_time") for c in names)
            and not any(c.startswith("mean_sojourn_time_not_lost") for c in names))


def predates_loss_honest_message(path: object, rerun: str) -> str:
    """The one-line refusal of such a file: what changed, and what to do (`rerun`)."""
    return (f"{path} was written before the loss-honest metrics: its mean_sojourn_time and backlog_growth leave lost "
            f"packets out, and the columns differ (p99, stretch, queue length, ...); {rerun}")


def episode_metrics(
    state: State,
    horizon_ticks: int,
    capacity: np.ndarray,
    *,
    shortest_latency_ticks: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Arrays [B] of every metric in METRIC_INFO, plus `lost_per_router` [B, N], `queue_per_router`
    [B, N] (each router's queue length at the ends of ticks, averaged over the horizon), `lost_per_link`
    [B, E] (packets lost on each link: sent without the capacity for them, or on it when it failed;
    buffer drops are on no link) and `link_utilisation` [B, E] (time-average reserved share of each
    link's capacity).

    `shortest_latency_ticks` [N, N] (`Topology.shortest_latency_ticks`) is what `mean_stretch`
    divides by; without it the stretch is NaN. `metrics_for` passes it from the `SimParams`."""
    nb = state.num_episodes
    out: dict[str, np.ndarray] = {k: np.full(nb, np.nan) for k in METRIC_INFO}
    for b in range(nb):
        count = int(state.episode[b, EP_COUNT])
        fate = state.pk[b, :count, PK_FATE]
        created = state.pk[b, :count, PK_CREATED].astype(np.int64)
        end = state.pk[b, :count, PK_END_TICK].astype(np.int64)
        injected = np.arange(count) < state.episode[b, EP_NEXT_NEW]
        delivered = fate == FATE_DELIVERED
        lost = fate == FATE_LOST
        in_network = injected & (fate == FATE_PENDING)
        times = (end - created)[delivered]
        generated = int(state.episode[b, EP_GENERATED])
        out["generated"][b] = generated
        out["delivered"][b] = delivered.sum()
        out["lost"][b] = lost.sum()
        out["in_network_at_end"][b] = in_network.sum()
        if times.size:
            out["mean_delivery_time"][b] = times.mean()
            out["p50_delivery_time"][b], out["p95_delivery_time"][b], out["p99_delivery_time"][b] = np.percentile(times, (50, 95, 99))
            out["mean_hops"][b] = state.pk[b, :count, PK_HOPS][delivered].mean()
            if shortest_latency_ticks is not None:
                src = state.pk[b, :count, PK_SRC][delivered]
                dst = state.pk[b, :count, PK_DST][delivered]
                out["mean_stretch"][b] = (times / shortest_latency_ticks[src, dst]).mean()
        # Integer sums: exact, so a value does not depend on the batch an episode ran in.
        ages = horizon_ticks - created[in_network]
        lost_ages = horizon_ticks - created[lost]
        not_lost = times.size + ages.size
        if not_lost:
            out["mean_sojourn_time_not_lost"][b] = (times.sum() + ages.sum()) / not_lost
        if generated:
            out["mean_sojourn_time"][b] = (times.sum() + ages.sum() + lost_ages.sum()) / generated
            out["delivered_fraction"][b] = delivered.sum() / generated
            out["loss_fraction"][b] = lost.sum() / generated
    sr = state.series
    n_routers = state.router.shape[1]
    out["mean_queue_length"] = sr[:, :horizon_ticks, SR_QUEUED].sum(axis=1) / float(horizon_ticks * n_routers)
    undelivered = (sr[:, :, SR_GENERATED] - sr[:, :, SR_DELIVERED]).astype(np.int64)
    half = undelivered[:, horizon_ticks // 2 :]
    if half.shape[1] >= 2:
        # Slope = sum_t y_t c_t / sum_t c_t^2 * 2 with c_t = 2t - (n - 1) (twice the centred tick):
        # integer sums are exact, so an episode's value does not depend on the batch it ran in
        # (a float matrix-vector product's summation order does).
        centred = 2 * np.arange(half.shape[1], dtype=np.int64) - (half.shape[1] - 1)
        out["backlog_growth"] = 2.0 * (half * centred).sum(axis=1) / float(centred @ centred)
    with np.errstate(invalid="ignore", divide="ignore"):
        util = state.link[:, LK_RESERVED_SUM, :] / (horizon_ticks * capacity[None, :].astype(np.float64))
    util[:, capacity == 0] = np.nan
    out["link_utilisation"] = util
    if np.any(capacity > 0):
        out["mean_link_utilisation"] = np.nanmean(util, axis=1)
        out["max_link_utilisation"] = np.nanmax(util, axis=1)
    out["lost_per_router"] = state.router[:, :, RT_LOST].copy()
    out["queue_per_router"] = state.router[:, :, RT_QUEUED_SUM] / float(horizon_ticks)
    out["lost_per_link"] = state.link[:, LK_LOST, :].copy()
    out["generated_per_bin"], out["lost_per_bin"] = loss_bins(sr, horizon_ticks)
    return out


LOSS_BIN_TICKS = 10
"""Width of the time bins of `loss_bins` (ticks)."""


def loss_bins(series: np.ndarray, horizon_ticks: int) -> tuple[np.ndarray, np.ndarray]:
    """(packets generated, packets lost) in each LOSS_BIN_TICKS-tick bin of each episode, int64
    [B, ceil(H / LOSS_BIN_TICKS)], from the cumulative per-tick series: the loss rate over time
    that recovery after a failure is measured in (the last bin may be shorter)."""
    ends = np.minimum(np.arange(LOSS_BIN_TICKS, horizon_ticks + LOSS_BIN_TICKS, LOSS_BIN_TICKS), horizon_ticks) - 1
    cumulative = series[:, ends][:, :, (SR_GENERATED, SR_LOST)].astype(np.int64)
    per_bin = np.diff(cumulative, axis=1, prepend=0)
    return per_bin[:, :, 0], per_bin[:, :, 1]


def metrics_for(state: State, params: "SimParams") -> dict[str, np.ndarray]:
    """`episode_metrics` of a batch simulated under `params`, stretch included (the topology's
    shortest-latency matrix is computed once per topology and cached on it)."""
    topo = params.topology
    return episode_metrics(state, params.horizon_ticks, topo.capacities, shortest_latency_ticks=topo.shortest_latency_ticks)


@dataclass(frozen=True)
class Estimate:
    """A mean over episodes with the half-width of its 95% confidence interval (Student t)."""

    mean: float
    ci95: float
    n: int

    def __str__(self) -> str:
        if math.isnan(self.mean):
            return "n/a"
        if self.n < 2 or math.isnan(self.ci95):
            return f"{self.mean:.4g}"
        return f"{self.mean:.4g} ± {self.ci95:.2g}"


def estimate(values: np.ndarray) -> Estimate:
    """Mean and 95% CI half-width of the finite values (NaN = metric undefined in that episode)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(float("nan"), float("nan"), 0)
    if v.size == 1:
        return Estimate(float(v[0]), float("nan"), 1)
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return Estimate(float(v.mean()), float(half), int(v.size))


def summarise(per_episode: dict[str, np.ndarray]) -> dict[str, Estimate]:
    """Estimates of every scalar metric in METRIC_INFO."""
    return {k: estimate(per_episode[k]) for k in METRIC_INFO}


def check_conservation(state: State) -> None:
    """Raise AssertionError unless generated = delivered + lost + queued + in flight, at every
    recorded tick and now, and the per-packet fates agree with the counters; with per-destination
    queues, also that every queue's linked list, length and non-empty bit agree."""
    sr = state.series
    lhs = sr[:, :, SR_GENERATED]
    rhs = sr[:, :, SR_DELIVERED] + sr[:, :, SR_LOST] + sr[:, :, SR_QUEUED] + sr[:, :, SR_IN_FLIGHT]
    ticks = int(max(state.tick[0], 0))
    if not np.array_equal(lhs[:, :ticks], rhs[:, :ticks]):
        bad = np.argwhere(lhs[:, :ticks] != rhs[:, :ticks])[0]
        raise AssertionError(f"conservation violated in episode {bad[0]} at tick {bad[1]}")
    ep = state.episode
    now = ep[:, EP_DELIVERED] + ep[:, EP_LOST] + ep[:, EP_QUEUED] + ep[:, EP_IN_FLIGHT]
    if not np.array_equal(ep[:, EP_GENERATED], now):
        raise AssertionError("conservation violated in the current state")
    if not np.array_equal(ep[:, EP_QUEUED], state.q_len.sum(axis=1)):
        raise AssertionError("queued counter disagrees with queue lengths")
    for b in range(state.num_episodes):
        fate = state.pk[b, : ep[b, EP_NEXT_NEW], PK_FATE]
        if (fate == FATE_DELIVERED).sum() != ep[b, EP_DELIVERED] or (fate == FATE_LOST).sum() != ep[b, EP_LOST]:
            raise AssertionError(f"per-packet fates disagree with counters in episode {b}")
    if state.per_destination:
        _check_destination_queues(state)


def _check_destination_queues(state: State) -> None:
    """Walk every per-destination queue: its packets are pending and bound for it, and its
    length, tail and bit in the non-empty mask match the list."""
    nb, n = state.router.shape[0], state.router.shape[1]
    if not np.array_equal(state.destination_q_len.sum(axis=2), state.q_len):
        raise AssertionError("per-destination queue lengths do not add up to the routers' queue lengths")
    x = kernel.RT_FIELDS + kernel.DQ_FIELDS * n
    for b in range(nb):
        for i in range(n):
            row = state.router[b, i]
            for d in range(n):
                head = row[kernel.RT_FIELDS + kernel.DQ_HEAD * n + d]
                p, last, count = head, -1, 0
                while p >= 0:
                    if state.pk[b, p, kernel.PK_DST] != d or state.pk[b, p, PK_FATE] != FATE_PENDING:
                        raise AssertionError(f"packet {p} in queue ({i}, {d}) of episode {b} does not belong there")
                    last, count = p, count + 1
                    p = state.pk[b, p, kernel.PK_NEXT]
                marked = (int(row[x + kernel.DX_MASK + (d >> 6)]) >> (d & 63)) & 1
                if count != row[kernel.RT_FIELDS + kernel.DQ_LEN * n + d] or last != row[kernel.RT_FIELDS + kernel.DQ_TAIL * n + d] or marked != (count > 0):
                    raise AssertionError(f"queue ({i}, {d}) of episode {b}: list, length, tail and mask disagree")
