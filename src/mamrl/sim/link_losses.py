"""Where packets are lost, per link, for a table-driven policy — derived without touching the kernel.

The compiled core counts every loss at a router (`lost_per_router`: the sender, or the router
whose buffer was full) but does not record the link involved. A loss involves a link in two of
the model's three loss rules (docs/model.md):

1. **at forwarding**: router i sends its queue head through the slot its policy picks, and the
   link lacks the capacity for it (it is saturated, or it has failed: capacity 0). The packet is
   lost on `link_of_slot[i, slot]`;
2. **in flight when the link fails**: every packet on link e when e fails is lost on e;
3. **buffer overflow** (drop-tail, `--buffer-limit`): the packet is dropped at a router, on no
   link.

`run_tables_with_link_losses` replays `Simulator.run_tables` step by step through the kernel's
own step function with the same traffic, the same routing tables and the same random draws, so
the final state is identical to `run_tables`'s (tests check this array by array; only the
per-step event counters `RT_STEP_*`, which the step API resets every tick, differ). Along the way
it sees which slot each router used and whether its queue head was lost at that tick (rule 1).
Rule 2 is read from the final state: a lost packet that was not lost at forwarding, has taken at
least one hop and ended at the tick its last link (`PK_SENDER` -> `PK_TO`) failed was in flight
on that link (a packet arriving on a link at the tick it fails is lost by the failure, which the
kernel handles first). What remains of `lost_per_router` are buffer drops.

Cost: one Python-level step per tick (vectorised over episodes and routers), a few times slower
than `run_tables`, which runs whole episodes inside compiled code; fine for plots.
"""

from __future__ import annotations

import numpy as np

from mamrl.errors import SimulationError
from mamrl.sim import kernel
from mamrl.sim.params import SimParams, require_fifo
from mamrl.sim.simulator import BatchResult, RoutingTables, Simulator, _check_batch
from mamrl.sim.traffic import draw_policy_uniforms, draw_traffic


def run_tables_with_link_losses(
    params: SimParams,
    tables: RoutingTables,
    seed: int,
    num_episodes: int = 1,
    first_episode: int = 0,
) -> tuple[BatchResult, dict[str, np.ndarray]]:
    """Episodes `first_episode ..` of `seed` under `tables`, exactly as `Simulator.run_tables`
    runs them, and where their packets were lost.

    Returns the batch result and float64 arrays:
      `lost_per_link`            [B, E]: rule 1 + rule 2 (see the module docstring);
      `lost_forwarding_per_link` [B, E]: rule 1 only (no capacity left, or the link was down);
      `lost_in_flight_per_link`  [B, E]: rule 2 only (on the link when it failed);
      `dropped_per_router`       [B, N]: rule 3, buffer overflows at the router.
    `lost_per_link.sum(1) + dropped_per_router.sum(1)` equals the episodes' `lost`.
    """
    require_fifo(params, "per-link loss accounting")  # it replays the step-wise API
    _check_batch(num_episodes)
    sim = Simulator(params)
    topo = params.topology
    n, k, h = topo.num_routers, topo.max_degree, params.horizon_ticks
    cumulative, start_ticks = tables.cumulative, tables.start_ticks
    # The checks of run_tables, with its messages.
    if cumulative.ndim != 4 or cumulative.shape[1:] != (n, n, k):
        raise SimulationError(f"routing tables must have shape [R, {n}, {n}, {k}], got {cumulative.shape}")
    if start_ticks.shape != (cumulative.shape[0],) or start_ticks[0] != 0:
        raise SimulationError("routing table start ticks must be one per table, ascending, starting at 0")
    traffic = draw_traffic(params, seed, num_episodes, first_episode)
    state = kernel.make_state(sim.net, traffic)
    kernel.begin_episodes(sim.net, state)
    uniforms = draw_policy_uniforms(seed, num_episodes, h, n, first_episode) if tables.stochastic else None

    nb = num_episodes
    _, link_of_slot = topo.neighbor_table
    degree = topo.degree
    rows = np.arange(nb)[:, None]
    cols = np.arange(n)[None, :]
    lost_at_forwarding = np.zeros(state.pk.shape[:2], dtype=bool)  # [B, P]
    forwarding = np.zeros((nb, topo.num_links), dtype=np.int64)
    on_links_by_router = np.zeros((nb, n), dtype=np.int64)  # rule 1 + 2 losses, by the router counting them
    for t in range(h):
        # The table in force at t, as run_table_episodes picks it.
        r = int(np.searchsorted(start_ticks, t, side="right")) - 1
        head = state.router[:, :, kernel.RT_HEAD]
        busy = head >= 0
        safe_head = np.where(busy, head, 0)
        dst = state.pk[rows, safe_head, kernel.PK_DST]
        cum = cumulative[r][cols, np.where(busy, dst, 0)]  # [B, N, K]
        # The kernel walks slots 0.. and stops at the first that qualifies, or at the last slot
        # (degree - 1); cumulative rows are non-decreasing, so counting the slots that do not
        # qualify gives the same slot.
        if uniforms is not None:
            passed = (uniforms[:, t, :][:, :, None] >= cum).sum(axis=2)
        else:
            passed = (cum <= 0.0).sum(axis=2)
        slots = np.where(busy, np.minimum(passed, degree[None, :] - 1), 0).astype(np.int64)
        kernel.step_batch(sim.net, state, slots)
        fate = state.pk[rows, safe_head, kernel.PK_FATE]
        end = state.pk[rows, safe_head, kernel.PK_END_TICK]
        lost_now = busy & (fate == kernel.FATE_LOST) & (end == t)  # lost at forwarding, this tick
        if lost_now.any():
            b_idx, i_idx = np.nonzero(lost_now)
            lost_at_forwarding[b_idx, head[b_idx, i_idx]] = True
            np.add.at(forwarding, (b_idx, link_of_slot[i_idx, slots[b_idx, i_idx]]), 1)
            np.add.at(on_links_by_router, (b_idx, i_idx), 1)

    in_flight = np.zeros_like(forwarding)
    if params.failures:
        link_between = np.full((n, n), -1, dtype=np.int64)
        ends = topo.link_endpoints
        link_between[ends[:, 0], ends[:, 1]] = np.arange(topo.num_links)
        link_between[ends[:, 1], ends[:, 0]] = np.arange(topo.num_links)
        pk = state.pk
        candidate = (pk[:, :, kernel.PK_FATE] == kernel.FATE_LOST) & ~lost_at_forwarding & (pk[:, :, kernel.PK_HOPS] > 0)
        last_link = np.where(
            candidate, link_between[np.clip(pk[:, :, kernel.PK_SENDER], 0, None), np.clip(pk[:, :, kernel.PK_TO], 0, None)], -1
        )
        end = pk[:, :, kernel.PK_END_TICK]
        # Only the first failure of a link acts (the kernel skips links that are already down).
        first_failure: dict[int, int] = {}
        for failure in params.failures:
            first_failure[failure.link] = min(failure.tick, first_failure.get(failure.link, failure.tick))
        for link, tick in first_failure.items():
            hit = candidate & (last_link == link) & (end == tick)
            in_flight[:, link] = hit.sum(axis=1)
            b_idx, p_idx = np.nonzero(hit)
            np.add.at(on_links_by_router, (b_idx, pk[b_idx, p_idx, kernel.PK_SENDER]), 1)  # counted at the sender

    per_link = forwarding + in_flight
    dropped = state.router[:, :, kernel.RT_LOST] - on_links_by_router
    result = BatchResult(params, traffic, state)
    return result, {
        "lost_per_link": per_link.astype(np.float64),
        "lost_forwarding_per_link": forwarding.astype(np.float64),
        "lost_in_flight_per_link": in_flight.astype(np.float64),
        "dropped_per_router": dropped.astype(np.float64),
    }


__all__ = ["run_tables_with_link_losses"]
