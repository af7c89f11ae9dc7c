"""A slow, obviously-correct simulator of the same model: the test oracle for the fast core.

One Python object per packet, a dict of deques per router (one deque, or one per destination),
a list of packets in flight. It follows docs/model.md and the tick order documented in `kernel.py`
literally, and consumes the same pre-drawn traffic (`traffic.py`), so on the same seed it must
produce exactly the same per-tick counts and per-packet fates as the fast core. Used by the tests
and by `mamrl bench` as the reference speed.

Routing is either a `Decide` function (a table policy: the router serves the queue whose head it
enqueued first and asks where to send that packet) or a `Backpressure` rule (docs/model.md and
docs/algorithms.md, which the compiled `run_backpressure_episodes` implements).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mamrl.errors import SimulationError
from mamrl.sim.params import SimParams


@dataclass
class Packet:
    id: int
    created: int
    src: int
    dst: int
    size: int
    end_tick: int = -1
    fate: str = "pending"  # pending | delivered | lost
    hops: int = 0
    # while in flight
    link: int = -1
    sender: int = -1
    to: int = -1
    sent_tick: int = -1
    arrival_tick: int = -1
    # order in which packets were enqueued (any router): which queue a table policy serves
    seq: int = -1


@dataclass
class OracleResult:
    """Per-tick totals [H] and per-packet outcomes [P] of one episode."""

    generated: list[int] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    packets: list[Packet] = field(default_factory=list)
    lost_at: list[int] = field(default_factory=list)
    """[N]: packets lost at each router (the sender, or the router whose buffer was full)."""
    queued_sum_at: list[int] = field(default_factory=list)
    """[N]: each router's queue length at the end of every tick, summed over the episode."""
    lost_per_link: list[int] = field(default_factory=list)
    """[E]: packets lost on each link (sent without the capacity for them, or on it when it failed)."""
    decisions: int = 0
    # What the backpressure rule met (so tests can check their cases exercise it):
    tie_breaks: int = 0  # router-ticks with several best pairs
    unfit_pairs: int = 0  # pairs left out because the head did not fit on a link with capacity left
    stale_lengths: int = 0  # pairs weighed where the neighbour had already sent a packet of that destination

    def end_ticks(self) -> np.ndarray:
        return np.array([p.end_tick for p in self.packets], dtype=np.int64)

    def fates(self) -> list[str]:
        return [p.fate for p in self.packets]


# A routing decision: (router, packet, tick) -> action slot (index into the router's sorted neighbours).
Decide = Callable[[int, Packet, int], int]


@dataclass(frozen=True)
class Backpressure:
    """The backpressure rule: at tick t router i sends the head of its queue for destination d
    through slot k maximising w = (Q_i^d + bias H_i^d) - (Q_j^d + bias H_j^d) over the pairs whose
    link's available capacity fits that head, if w > 0; the m tied maxima in (d, k) order are
    resolved by `uniforms[t, i]`: the floor(u m)-th."""

    bias: float
    """eta, packets per hop (0 = classic backpressure)."""
    uniforms: np.ndarray
    """float64 [H, N]: the episode's policy uniforms (`draw_policy_uniforms`)."""


def _hop_distances(n: int, slots: list[list[tuple[int, int]]]) -> list[list[int]]:
    """Breadth-first hop counts between all routers on the intact topology."""
    dist = [[-1] * n for _ in range(n)]
    for s in range(n):
        dist[s][s] = 0
        frontier = [s]
        while frontier:
            nxt = []
            for u in frontier:
                for v, _ in slots[u]:
                    if dist[s][v] < 0:
                        dist[s][v] = dist[s][u] + 1
                        nxt.append(v)
            frontier = nxt
    return dist


def run_oracle_episode(
    params: SimParams,
    created: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    size: np.ndarray,
    decide: Decide | None = None,
    *,
    backpressure: Backpressure | None = None,
) -> OracleResult:
    """Simulate one episode whose packets are given (in creation order) by the four arrays,
    routed by `decide` or by `backpressure` (exactly one; backpressure needs per-destination queues)."""
    if (decide is None) == (backpressure is None):
        raise SimulationError("run_oracle_episode needs exactly one of decide and backpressure")
    per_destination = params.queue_discipline == "per-destination"
    if backpressure is not None and not per_destination:
        raise SimulationError("the oracle's backpressure needs queue_discipline 'per-destination'")
    topo = params.topology
    n = topo.num_routers
    # Neighbours of each router sorted by router id: slot k -> (neighbour, link id).
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for e, link in enumerate(topo.links):
        adjacency[link.a].append((link.b, e))
        adjacency[link.b].append((link.a, e))
    slots = [sorted(a) for a in adjacency]
    capacity = [link.capacity for link in topo.links]
    latency = [link.latency_ticks for link in topo.links]
    available = list(capacity)
    up = [True] * len(topo.links)

    packets = [Packet(k, int(created[k]), int(src[k]), int(dst[k]), int(size[k])) for k in range(len(created))]
    # queues[i][key]: router i's FIFO for key = the destination (per-destination) or 0 (fifo).
    queues: list[dict[int, deque[Packet]]] = [{} for _ in range(n)]
    flying: list[Packet] = []
    res = OracleResult(packets=packets, lost_at=[0] * n, queued_sum_at=[0] * n, lost_per_link=[0] * len(topo.links))
    generated = delivered = lost = 0
    next_new = 0
    enqueued = 0  # packets enqueued so far, anywhere: the next sequence number
    hops = _hop_distances(n, slots) if backpressure is not None else []

    def queued_at(router: int) -> int:
        return sum(len(q) for q in queues[router].values())

    def lose(p: Packet, router: int, t: int) -> None:
        nonlocal lost
        p.fate, p.end_tick = "lost", t
        lost += 1
        res.lost_at[router] += 1

    def enqueue(p: Packet, router: int, t: int) -> None:
        nonlocal enqueued
        if params.buffer_limit is not None and queued_at(router) >= params.buffer_limit:
            lose(p, router, t)
        else:
            p.seq = enqueued
            enqueued += 1
            queues[router].setdefault(p.dst if per_destination else 0, deque()).append(p)

    def send(p: Packet, i: int, slot: int, t: int) -> None:
        j, e = slots[i][slot]
        if available[e] >= p.size:
            available[e] -= p.size
            p.link, p.sender, p.to, p.sent_tick = e, i, j, t
            p.arrival_tick = t + latency[e]
            p.hops += 1
            flying.append(p)
        else:
            res.lost_per_link[e] += 1
            lose(p, i, t)

    for t in range(params.horizon_ticks):
        # 1. failures
        for failure in params.failures:
            if failure.tick == t and up[failure.link]:
                up[failure.link] = False
                available[failure.link] = 0
                for p in [p for p in flying if p.link == failure.link]:
                    flying.remove(p)
                    res.lost_per_link[failure.link] += 1
                    lose(p, p.sender, t)
        # 2. arrivals, in send order
        landing = sorted((p for p in flying if p.arrival_tick == t), key=lambda p: (p.sent_tick, p.sender))
        for p in landing:
            flying.remove(p)
            available[p.link] += p.size
            if p.to == p.dst:
                p.fate, p.end_tick = "delivered", t
                delivered += 1
            else:
                enqueue(p, p.to, t)
        # 3. new packets
        while next_new < len(packets) and packets[next_new].created == t:
            generated += 1
            enqueue(packets[next_new], packets[next_new].src, t)
            next_new += 1
        # 4. forwarding, routers in id order
        if decide is not None:
            for i in range(n):
                waiting = [q for q in queues[i].values() if q]
                if not waiting:
                    continue
                # The queue whose head entered the router first: with one FIFO, its head.
                p = min(waiting, key=lambda q: q[0].seq).popleft()
                send(p, i, decide(i, p, t), t)
                res.decisions += 1
        else:
            bias, u = backpressure.bias, backpressure.uniforms
            # Queue lengths at the start of the forwarding phase, which every router weighs.
            start = [{d: len(q) for d, q in queues[i].items()} for i in range(n)]
            for i in range(n):
                pairs = []  # (weight, d, slot) in (d, slot) order
                for d in sorted(d for d, q in queues[i].items() if q):
                    head = queues[i][d][0]
                    for k, (j, e) in enumerate(slots[i]):
                        if available[e] < head.size:
                            res.unfit_pairs += available[e] > 0
                            continue
                        other = 0 if j == d else start[j].get(d, 0)
                        res.stale_lengths += j != d and other != len(queues[j].get(d, ()))
                        weight = float(start[i][d] - other) + bias * float(hops[i][d] - hops[j][d])
                        pairs.append((weight, d, k))
                if not pairs or max(w for w, _, _ in pairs) <= 0:
                    continue
                best = max(w for w, _, _ in pairs)
                tied = [(d, k) for w, d, k in pairs if w == best]
                res.tie_breaks += len(tied) > 1
                d, k = tied[min(int(u[t, i] * len(tied)), len(tied) - 1)]
                send(queues[i][d].popleft(), i, k, t)
                res.decisions += 1
        # 5. records
        res.generated.append(generated)
        res.delivered.append(delivered)
        res.lost.append(lost)
        res.queued.append(sum(queued_at(i) for i in range(n)))
        for i in range(n):
            res.queued_sum_at[i] += queued_at(i)
        res.in_flight.append(len(flying))
    return res


def table_decider(
    cumulative: np.ndarray, start_ticks: np.ndarray, uniforms: np.ndarray | None, degree: np.ndarray
) -> Decide:
    """The oracle's reading of a `RoutingTables` policy (see kernel.run_table_episodes): the first
    slot whose cumulative probability exceeds the uniform draw, never beyond the router's last slot."""

    def decide(router: int, packet: Packet, t: int) -> int:
        r = max(k for k in range(len(start_ticks)) if start_ticks[k] <= t)
        u = 0.0 if uniforms is None else float(uniforms[t, router])
        last_slot = int(degree[router]) - 1
        for k in range(last_slot):
            if u < cumulative[r, router, packet.dst, k]:
                return k
        return last_slot

    return decide
