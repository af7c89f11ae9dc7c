"""The simulator's Python API over the compiled core.

Two ways to drive it:

* step-wise, for learned policies: `state = sim.reset(seed, B)`, then repeatedly
  `obs = sim.observe(state)` → choose `actions [B, N]` → `events = sim.step(state, actions)`,
  for `horizon_ticks` steps;
* whole episodes, for table-driven policies (shortest path, random, tabular learners after
  training): `sim.run_tables(tables, seed, B)` runs everything inside compiled code.

Both run the same kernel functions, so they agree exactly. The step-wise API reads each router's
single FIFO and needs `queue_discipline = "fifo"`; whole episodes run with either discipline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mamrl.errors import SimulationError
from mamrl.sim import kernel
from mamrl.sim.kernel import HISTORY_LEN, State
from mamrl.sim.metrics import Estimate, check_conservation, metrics_for, summarise
from mamrl.sim.params import SimParams, require_fifo
from mamrl.sim.traffic import Traffic, draw_policy_uniforms, draw_traffic


@dataclass(frozen=True, eq=False)
class RoutingTables:
    """A table-driven routing policy in the form the fast path runs.

    `cumulative[r, i, d, k]`: probability that router i sends a packet for destination d through
    one of its slots 0..k, under table r; table r is in force from tick `start_ticks[r]`.
    """

    cumulative: np.ndarray
    """float64 [R, N, N, K]."""
    start_ticks: np.ndarray
    """int64 [R], ascending, first entry 0."""
    stochastic: bool
    """Whether decisions need random draws (False for one-hot tables)."""

    @classmethod
    def from_probabilities(cls, probs: np.ndarray, start_ticks=(0,)) -> "RoutingTables":
        """From next-hop probabilities [R, N, N, K] (or [N, N, K] for one table)."""
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim == 3:
            p = p[None]
        cum = np.cumsum(p, axis=-1)
        # Force each row to end at exactly 1 so a uniform in [0, 1) always picks a slot.
        last = cum[..., -1:]
        cum = np.where(last > 0, cum / np.where(last > 0, last, 1.0), cum)
        stochastic = bool(np.any((p > 0) & (p < 1)))
        return cls(np.ascontiguousarray(cum), np.asarray(start_ticks, dtype=np.int64), stochastic)


@dataclass(frozen=True)
class Observation:
    """What each router sees before forwarding (docs/model.md). Shapes [B, N, ...]."""

    head_destination: np.ndarray
    """int64 [B, N]: destination of the queue head, -1 if the queue is empty."""
    longest_queue_neighbor: np.ndarray
    """int64 [B, N]: action slot of the neighbour with the longest queue (lowest slot on ties),
    -1 when every neighbour's queue is empty."""
    last_actions: np.ndarray
    """int64 [B, N, 10]: the router's last 10 action slots, most recent first, -1 = none yet."""
    action_mask: np.ndarray
    """bool [B, N, K]: slots that exist and whose link is up."""
    has_packet: np.ndarray
    """bool [B, N]: whether the router forwards a packet this tick (its queue is non-empty)."""


@dataclass(frozen=True)
class StepEvents:
    """Per-router consequences of one step (forwarding at t and arrivals at t+1). [B, N]."""

    delivered: np.ndarray
    """Packets delivered at this router (as their destination)."""
    delivery_time_sum: np.ndarray
    """Sum of the delivery times (ticks) of those packets."""
    lost: np.ndarray
    """Packets lost at this router (sent on a link without capacity, buffer overflow, failure)."""
    done: bool
    """Whether the horizon has been reached."""


@dataclass(frozen=True, eq=False)
class BatchResult:
    """Finished episodes: the final state and their metrics."""

    params: SimParams
    traffic: Traffic
    state: State

    def per_episode(self) -> dict[str, np.ndarray]:
        return metrics_for(self.state, self.params)

    def summary(self) -> dict[str, Estimate]:
        return summarise(self.per_episode())

    def check_conservation(self) -> None:
        check_conservation(self.state)


class Simulator:
    """The packet-level network model of docs/model.md for one `SimParams`."""

    def __init__(self, params: SimParams):
        self.params = params
        self.net = kernel.make_net(params)
        self.neighbors, self.link_of_slot = params.topology.neighbor_table
        self.slot_exists = self.neighbors >= 0

    @property
    def num_routers(self) -> int:
        return self.params.topology.num_routers

    @property
    def max_degree(self) -> int:
        return self.params.topology.max_degree

    # ------------------------------------------------------------------ step-wise API
    def reset(self, seed: int, num_episodes: int = 1, first_episode: int = 0) -> State:
        """Fresh episodes with traffic drawn from `(seed, episode)`, advanced to tick 0's decision."""
        require_fifo(self.params, "the step-wise simulator API (reset/observe/step)")
        _check_batch(num_episodes)
        traffic = draw_traffic(self.params, seed, num_episodes, first_episode)
        state = kernel.make_state(self.net, traffic)
        kernel.begin_episodes(self.net, state)
        return state

    def observe(self, state: State) -> Observation:
        nb, n = state.q_len.shape
        head = np.empty((nb, n), dtype=np.int64)
        longest = np.empty((nb, n), dtype=np.int64)
        kernel.observe_batch(self.net, state, head, longest)
        safe_links = np.where(self.slot_exists, self.link_of_slot, 0)
        mask = state.link_up[:, safe_links] & self.slot_exists[None]
        return Observation(head, longest, state.history.copy(), mask, head >= 0)

    def observe_encoded(self, state: State, obs: np.ndarray | None = None, mask: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, np.ndarray]:
        """The RL environments' encoding of `observe` in one compiled pass: int64 [B, N, 12]
        (an empty queue as N, "no neighbour queued" and "no action yet" as the router's degree)
        and int8 [B, N, K] masks. Fills `obs` and `mask` if given (reused buffers)."""
        nb, n = state.q_len.shape
        obs = np.empty((nb, n, 2 + HISTORY_LEN), dtype=np.int64) if obs is None else obs
        mask = np.empty((nb, n, self.max_degree), dtype=np.int8) if mask is None else mask
        kernel.observe_encoded_batch(self.net, state, obs, mask)
        return obs, mask

    def step(self, state: State, actions: np.ndarray) -> StepEvents:
        """Forward each router's queue head through action slot `actions[b, i]`."""
        tick = int(state.tick[0])
        if tick >= self.params.horizon_ticks:
            raise SimulationError("episode is over: reset before stepping again")
        acts = np.asarray(actions)
        nb, n = state.q_len.shape
        if acts.shape != (nb, n) or not np.issubdtype(acts.dtype, np.integer):
            raise SimulationError(f"actions must be integers of shape {(nb, n)}, got {acts.dtype} {acts.shape}")
        acts = acts.astype(np.int64, copy=False)
        degree = self.params.topology.degree
        busy = state.q_head >= 0
        if np.any(busy & ((acts < 0) | (acts >= degree[None, :]))):
            b, i = np.argwhere(busy & ((acts < 0) | (acts >= degree[None, :])))[0]
            raise SimulationError(
                f"action {acts[b, i]} of router {self.params.topology.router_names[i]} is not a slot in 0..{degree[i] - 1}"
            )
        kernel.step_batch(self.net, state, acts)
        return self.events(state)

    def events(self, state: State) -> StepEvents:
        """Per-router events of the last `step`; right after `reset`, those of tick 0's start
        (only buffer drops of packets created at tick 0 can happen there)."""
        return StepEvents(
            state.router[:, :, kernel.RT_STEP_DELIVERED].copy(),
            state.router[:, :, kernel.RT_STEP_DELIVERY_TIME].copy(),
            state.router[:, :, kernel.RT_STEP_LOST].copy(),
            int(state.tick[0]) >= self.params.horizon_ticks,
        )

    @staticmethod
    def totals(state: State) -> dict[str, np.ndarray]:
        """Counts [B] since each episode's start: generated, delivered, lost, queued, in flight."""
        ep = state.episode
        return {
            "generated": ep[:, kernel.EP_GENERATED].copy(),
            "delivered": ep[:, kernel.EP_DELIVERED].copy(),
            "lost": ep[:, kernel.EP_LOST].copy(),
            "queued": ep[:, kernel.EP_QUEUED].copy(),
            "in_flight": ep[:, kernel.EP_IN_FLIGHT].copy(),
        }

    def result(self, state: State, traffic: Traffic | None = None) -> BatchResult:
        return BatchResult(self.params, traffic, state)

    # ------------------------------------------------------------------ whole episodes
    def run_tables(
        self, tables: RoutingTables, seed: int, num_episodes: int = 1, first_episode: int = 0
    ) -> BatchResult:
        """Run whole episodes with a table-driven policy, entirely in compiled code (with
        per-destination queues a router serves the queue whose head it enqueued first)."""
        _check_batch(num_episodes)
        n, k = self.num_routers, self.max_degree
        if tables.cumulative.ndim != 4 or tables.cumulative.shape[1:] != (n, n, k):
            raise SimulationError(f"routing tables must have shape [R, {n}, {n}, {k}], got {tables.cumulative.shape}")
        if tables.start_ticks.shape != (tables.cumulative.shape[0],) or tables.start_ticks[0] != 0:
            raise SimulationError("routing table start ticks must be one per table, ascending, starting at 0")
        traffic = draw_traffic(self.params, seed, num_episodes, first_episode)
        state = kernel.make_state(self.net, traffic)
        if tables.stochastic:
            uniforms = draw_policy_uniforms(seed, num_episodes, self.params.horizon_ticks, n, first_episode)
        else:
            uniforms = np.zeros((1, 1, 1), dtype=np.float64)
        kernel.run_table_episodes(self.net, state, tables.cumulative, tables.start_ticks, uniforms, tables.stochastic)
        return BatchResult(self.params, traffic, state)


def in_flight_by_sender(state: State) -> np.ndarray:
    """int64 [B, N]: packets each router has in flight (its share of the link backlog), counted
    over the packets on links only (`kernel.count_in_flight_by_sender`)."""
    out = np.empty(state.q_len.shape, dtype=np.int64)
    kernel.count_in_flight_by_sender(state, out)
    return out


def undelivered_by_router(state: State) -> np.ndarray:
    """int64 [B, N]: per router, the packets queued at it, in flight from it and lost at it since
    the episode start. Summed over routers: generated − delivered, the packets not delivered, which
    a lost packet never leaves (so dropping a packet never lowers it)."""
    return state.q_len + in_flight_by_sender(state) + state.router[:, :, kernel.RT_LOST]


def _check_batch(num_episodes: int) -> None:
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, (int, np.integer)) or num_episodes < 1:
        raise SimulationError(f"number of episodes must be an integer >= 1, got {num_episodes!r}")


__all__ = ["BatchResult", "HISTORY_LEN", "Observation", "RoutingTables", "Simulator", "StepEvents", "in_flight_by_sender",
           "undelivered_by_router"]
