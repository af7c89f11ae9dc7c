"""A slow, obviously-correct simulator of the same model: the test oracle for the fast core.

One Python object per packet, a deque per router, a list of packets in flight. It follows SPEC §1
and the tick order documented in `kernel.py` literally, and consumes the same pre-drawn traffic
(`traffic.py`), so on the same seed it must produce exactly the same per-tick counts and per-packet
fates as the fast core. Used by the tests and by `mamrl bench` as the reference speed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

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
    decisions: int = 0

    def end_ticks(self) -> np.ndarray:
        return np.array([p.end_tick for p in self.packets], dtype=np.int64)

    def fates(self) -> list[str]:
        return [p.fate for p in self.packets]


# A routing decision: (router, packet, tick) -> action slot (index into the router's sorted neighbours).
Decide = Callable[[int, Packet, int], int]


def run_oracle_episode(
    params: SimParams,
    created: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    size: np.ndarray,
    decide: Decide,
) -> OracleResult:
    """Simulate one episode whose packets are given (in creation order) by the four arrays."""
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
    queues: list[deque[Packet]] = [deque() for _ in range(n)]
    flying: list[Packet] = []
    res = OracleResult(packets=packets, lost_at=[0] * n)
    generated = delivered = lost = 0
    next_new = 0

    def lose(p: Packet, router: int, t: int) -> None:
        nonlocal lost
        p.fate, p.end_tick = "lost", t
        lost += 1
        res.lost_at[router] += 1

    def enqueue(p: Packet, router: int, t: int) -> None:
        if params.buffer_limit is not None and len(queues[router]) >= params.buffer_limit:
            lose(p, router, t)
        else:
            queues[router].append(p)

    for t in range(params.horizon_ticks):
        # 1. failures
        for failure in params.failures:
            if failure.tick == t and up[failure.link]:
                up[failure.link] = False
                available[failure.link] = 0
                for p in [p for p in flying if p.link == failure.link]:
                    flying.remove(p)
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
        for i in range(n):
            if not queues[i]:
                continue
            p = queues[i].popleft()
            slot = decide(i, p, t)
            res.decisions += 1
            j, e = slots[i][slot]
            if available[e] >= p.size:
                available[e] -= p.size
                p.link, p.sender, p.to, p.sent_tick = e, i, j, t
                p.arrival_tick = t + latency[e]
                p.hops += 1
                flying.append(p)
            else:
                lose(p, i, t)
        # 5. records
        res.generated.append(generated)
        res.delivered.append(delivered)
        res.lost.append(lost)
        res.queued.append(sum(len(q) for q in queues))
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
