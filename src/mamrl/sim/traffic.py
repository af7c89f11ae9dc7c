"""Pre-drawn traffic: every packet of every episode, drawn from explicit seeds before simulation.

Drawing all randomness up front makes the fast core and the oracle consume the identical stream,
and gives common random numbers for free: two routing algorithms given the same
`(seed, episode index)` see exactly the same packets. Episode `k` of seed `s` is the same whatever
batch it is drawn in.

Packets of an episode are ordered by creation tick, then source router, which is the order in which
the simulator injects them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mamrl.sim.memory import check_run_memory
from mamrl.sim.params import SimParams

# Stream ids under one (seed, episode): independent substreams for traffic and for policy sampling.
TRAFFIC_STREAM = 0
POLICY_STREAM = 1


def episode_rng(seed: int, episode: int, stream: int) -> np.random.Generator:
    """The generator of one stream of one episode; no global random state is touched."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=int(seed), spawn_key=(int(episode), int(stream)))))


@dataclass(frozen=True, eq=False)
class Traffic:
    """Packets of B episodes, padded to P = the largest packet count. Shapes: [B, P] unless noted."""

    created_tick: np.ndarray
    """int32: tick the packet enters its source queue."""
    src: np.ndarray
    """int32: source router."""
    dst: np.ndarray
    """int32: destination router (never the source)."""
    size: np.ndarray
    """int64: packet size, in capacity units."""
    count: np.ndarray
    """int64 [B]: number of real packets per episode (the rest is padding)."""
    seed: int
    """The seed the episodes were drawn from."""
    first_episode: int
    """Index of the batch's first episode under `seed`."""

    @property
    def num_episodes(self) -> int:
        return int(self.count.shape[0])


def draw_traffic(params: SimParams, seed: int, num_episodes: int, first_episode: int = 0) -> Traffic:
    """Draw the packets of episodes `first_episode .. first_episode + num_episodes - 1`; refuses
    (one line) a batch whose packets would not fit in memory (`memory.check_run_memory`)."""
    check_run_memory(params, num_episodes)
    n = params.topology.num_routers
    horizon = params.horizon_ticks
    size_table = params.packet_size_values
    if params.demand_weights is None:
        rate_per_router = np.full(n, params.load_per_router)
        dst_cumulative = None
    else:
        w = params.demand_weights
        rate_per_router = params.load_per_router * n * w.sum(axis=1) / w.sum()
        row = w.sum(axis=1, keepdims=True)
        dst_cumulative = np.cumsum(w, axis=1) / np.where(row > 0, row, 1.0)
    total_rate = float(rate_per_router.sum())
    router_cumulative = np.cumsum(rate_per_router) / total_rate if total_rate > 0 else None
    per_episode = []
    for b in range(num_episodes):
        rng = episode_rng(seed, first_episode + b, TRAFFIC_STREAM)
        # Independent Poisson(rate_i) counts in every (tick, router) cell are the same process as
        # a Poisson(H * sum(rate)) total scattered over the cells (uniform ticks, routers in
        # proportion to their rates): one draw and one sort instead of H * N Poisson draws.
        total = int(rng.poisson(horizon * total_rate)) if total_rate > 0 else 0
        ticks = rng.integers(0, horizon, size=total)
        if params.demand_weights is None:
            routers = rng.integers(0, n, size=total)
        else:
            routers = np.searchsorted(router_cumulative, rng.random(total), side="right").clip(max=n - 1)
        key = np.sort(ticks * n + routers)
        ticks, src = np.divmod(key, n)
        if dst_cumulative is None:
            # Uniform over the other n-1 routers: draw from n-1 slots and skip the source.
            offset = rng.integers(0, n - 1, size=total)
            dst = offset + (offset >= src)
        else:
            u = rng.random(total)
            dst = np.minimum((u[:, None] >= dst_cumulative[src]).sum(axis=1), n - 1)
        size_index = rng.integers(0, size_table.shape[2], size=total)
        size = size_table[src, dst, size_index]
        per_episode.append((ticks, src, dst, size))
    width = max([len(t) for t, *_ in per_episode] + [1])
    created = np.zeros((num_episodes, width), dtype=np.int32)
    src_arr = np.zeros((num_episodes, width), dtype=np.int32)
    dst_arr = np.zeros((num_episodes, width), dtype=np.int32)
    size_arr = np.zeros((num_episodes, width), dtype=np.int64)
    count = np.zeros(num_episodes, dtype=np.int64)
    for b, (ticks, src, dst, size) in enumerate(per_episode):
        k = len(ticks)
        created[b, :k], src_arr[b, :k], dst_arr[b, :k], size_arr[b, :k] = ticks, src, dst, size
        count[b] = k
    return Traffic(created, src_arr, dst_arr, size_arr, count, int(seed), int(first_episode))


def draw_policy_uniforms(seed: int, num_episodes: int, horizon_ticks: int, num_routers: int, first_episode: int = 0) -> np.ndarray:
    """float64 [B, H, N] uniforms in [0, 1) for stochastic routing decisions (one per router-tick)."""
    out = np.empty((num_episodes, horizon_ticks, num_routers), dtype=np.float64)
    for b in range(num_episodes):
        out[b] = episode_rng(seed, first_episode + b, POLICY_STREAM).random((horizon_ticks, num_routers))
    return out
