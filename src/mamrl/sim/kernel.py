"""The simulator core: one tick of the network model as compiled functions over batched arrays.

No RL and no torch here. State is a struct of arrays with a leading batch dimension B (episodes
run in lockstep); packets are rows of per-packet arrays, and every FIFO (a router's queue, the
packets landing at one future tick) is an intrusive singly linked list through the packets' PK_NEXT field, so
enqueue and dequeue are O(1) and nothing is allocated while simulating.

Tick order (identical in `oracle.py`; docs/model.md explains it):

  begin_tick(t)   1. failures scheduled for tick t: the link's capacity becomes 0 and packets
                     in flight on it are lost (counted at their sender);
                  2. link arrivals due at t, in the order they were sent (send tick, then sender
                     id): capacity is released; the packet is delivered if the router is its
                     destination, else appended to that router's queue (drop-tail if full);
                  3. new packets created at t, in source-router order, appended to queues;
  (observation: what a learned policy sees is taken here)
  forward(t, i)   4. for routers i = 0..N-1 with a non-empty queue: pop the head, send it to the
                     chosen neighbour if the link's available capacity >= its size (reserving
                     it until arrival at t + latency), else the packet is lost at i;
  end_tick(t)     5. per-tick accounting (counts, link utilisation).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from mamrl.sim.params import SimParams
from mamrl.sim.traffic import Traffic

HISTORY_LEN = 10
"""Number of past actions of a router kept for its observation (SPEC §2)."""

FATE_PENDING, FATE_DELIVERED, FATE_LOST = 0, 1, 2


class Net(NamedTuple):
    """Static arrays of a `SimParams` (shared by every episode of a batch)."""

    neighbors: np.ndarray  # int64 [N, K], -1 padded
    link_of_slot: np.ndarray  # int64 [N, K], -1 padded
    degree: np.ndarray  # int64 [N]
    capacity: np.ndarray  # int64 [E]
    latency: np.ndarray  # int64 [E]
    fail_link: np.ndarray  # int64 [F]
    fail_tick: np.ndarray  # int64 [F]
    buffer_limit: int  # 0 = unbounded
    horizon: int
    wheel: int  # number of arrival buckets: max latency + 1


# Field indices of the packed state arrays. Numba passes a tuple by value, field by field, into
# every helper it inlines, so the state is a few wide arrays rather than dozens of narrow ones
# (a 44-array tuple made the core 25x slower).
# per packet, int32 [B, P, PK_FIELDS]
PK_CREATED, PK_SRC, PK_DST = 0, 1, 2  # the traffic (read-only)
PK_NEXT = 3  # next packet in the same FIFO (a queue or an arrival bucket), -1 = none
PK_LINK = 4  # link the packet is in flight on, -1 = none
PK_SENDER = 5  # router that sent it on PK_LINK
PK_TO = 6  # router at the far end of PK_LINK
PK_SENT_TICK = 7
PK_ENQUEUED_TICK = 8  # tick it entered its current queue
PK_HOPS = 9  # links taken so far
PK_END_TICK = 10  # tick delivered or lost, -1 = still in the network (or not yet created)
PK_FATE = 11  # FATE_*
PK_FIELDS = 12
# per router, int64 [B, N, RT_FIELDS]
RT_HEAD, RT_TAIL, RT_QLEN = 0, 1, 2  # the FIFO queue
RT_LOST, RT_DELIVERED = 3, 4  # since the episode start: lost at (sender) / delivered at (destination)
RT_STEP_DELIVERED, RT_STEP_DELIVERY_TIME, RT_STEP_LOST = 5, 6, 7  # events of the last step
RT_FIELDS = 8
# per link, int64 [B, E, LK_FIELDS]
LK_AVAIL = 0  # capacity not reserved by packets in flight (0 when down)
LK_UP = 1  # 1 = up, 0 = failed
LK_SENT = 2  # packets sent over the link
LK_RESERVED_SUM = 3  # sum over ticks of the capacity reserved at the end of the tick
LK_FIELDS = 4
# per episode, int64 [B, EP_FIELDS]
EP_COUNT, EP_NEXT_NEW = 0, 1  # packets in the traffic; index of the next one to create
EP_GENERATED, EP_DELIVERED, EP_LOST, EP_QUEUED, EP_IN_FLIGHT = 2, 3, 4, 5, 6
EP_DELIVERY_TIME_SUM = 7
EP_FINISHED = 8  # packets in `finished` (delivered or lost so far)
EP_FIELDS = 9
# per tick, int64 [B, H, SR_FIELDS]: the totals at the end of the tick
SR_GENERATED, SR_DELIVERED, SR_LOST, SR_QUEUED, SR_IN_FLIGHT = 0, 1, 2, 3, 4
SR_FIELDS = 5


class State(NamedTuple):
    """Mutable batched state (see the field indices above). Episodes of a batch run in lockstep."""

    tick: np.ndarray  # int64 [1]: the tick in progress (begin_tick done, forwarding pending)
    pk: np.ndarray  # int32 [B, P, PK_FIELDS]
    pk_size: np.ndarray  # int64 [B, P]
    router: np.ndarray  # int64 [B, N, RT_FIELDS]
    history: np.ndarray  # int64 [B, N, HISTORY_LEN]: last action slots, most recent first, -1 = none
    link: np.ndarray  # int64 [B, E, LK_FIELDS]
    wheel: np.ndarray  # int32 [B, W, 2]: (head, tail) of the packets arriving at ticks = w mod W
    episode: np.ndarray  # int64 [B, EP_FIELDS]
    series: np.ndarray  # int64 [B, H, SR_FIELDS]
    finished: np.ndarray  # int32 [B, P]: packets in the order they left the network (learners read it)

    # Read-only views for Python code (numba never calls these).
    @property
    def num_episodes(self) -> int:
        return int(self.router.shape[0])

    @property
    def q_len(self) -> np.ndarray:
        return self.router[:, :, RT_QLEN]

    @property
    def q_head(self) -> np.ndarray:
        return self.router[:, :, RT_HEAD]

    @property
    def link_up(self) -> np.ndarray:
        return self.link[:, :, LK_UP] != 0

    def ep(self, field: int) -> np.ndarray:
        return self.episode[:, field]


def make_net(params: SimParams) -> Net:
    topo = params.topology
    neighbors, link_of_slot = topo.neighbor_table
    fails = sorted(params.failures, key=lambda f: (f.tick, f.link))
    return Net(
        neighbors=np.ascontiguousarray(neighbors, dtype=np.int64),
        link_of_slot=np.ascontiguousarray(link_of_slot, dtype=np.int64),
        degree=np.ascontiguousarray(topo.degree, dtype=np.int64),
        capacity=np.ascontiguousarray(topo.capacities, dtype=np.int64),
        latency=np.ascontiguousarray(topo.latencies, dtype=np.int64),
        fail_link=np.array([f.link for f in fails], dtype=np.int64),
        fail_tick=np.array([f.tick for f in fails], dtype=np.int64),
        buffer_limit=int(params.buffer_limit or 0),
        horizon=int(params.horizon_ticks),
        wheel=int(topo.latencies.max()) + 1,
    )


def make_state(net: Net, traffic: Traffic) -> State:
    """A fresh state for the traffic's episodes: empty queues and links, tick 0 not yet begun."""
    nb, np_ = traffic.created_tick.shape
    n, e, h, w = net.degree.shape[0], net.capacity.shape[0], net.horizon, net.wheel
    pk = np.full((nb, np_, PK_FIELDS), -1, dtype=np.int32)
    pk[:, :, PK_CREATED] = traffic.created_tick
    pk[:, :, PK_SRC] = traffic.src
    pk[:, :, PK_DST] = traffic.dst
    pk[:, :, PK_HOPS] = 0
    pk[:, :, PK_FATE] = FATE_PENDING
    router = np.zeros((nb, n, RT_FIELDS), dtype=np.int64)
    router[:, :, RT_HEAD] = -1
    router[:, :, RT_TAIL] = -1
    link = np.zeros((nb, e, LK_FIELDS), dtype=np.int64)
    link[:, :, LK_AVAIL] = net.capacity[None, :]
    link[:, :, LK_UP] = 1
    episode = np.zeros((nb, EP_FIELDS), dtype=np.int64)
    episode[:, EP_COUNT] = traffic.count
    return State(
        tick=np.full(1, -1, dtype=np.int64),
        pk=pk,
        pk_size=np.ascontiguousarray(traffic.size, dtype=np.int64),
        router=router,
        history=np.full((nb, n, HISTORY_LEN), -1, dtype=np.int64),
        link=link,
        wheel=np.full((nb, w, 2), -1, dtype=np.int32),
        episode=episode,
        series=np.zeros((nb, h, SR_FIELDS), dtype=np.int64),
        finished=np.full((nb, np_), -1, dtype=np.int32),
    )


# --------------------------------------------------------------------------- per-episode pieces
@numba.njit(cache=True, inline="always")
def _finish(st, b, p):
    st.finished[b, st.episode[b, EP_FINISHED]] = p
    st.episode[b, EP_FINISHED] += 1


@numba.njit(cache=True, inline="always")
def _lose(st, b, p, router, t):
    _finish(st, b, p)
    st.pk[b, p, PK_FATE] = FATE_LOST
    st.pk[b, p, PK_END_TICK] = t
    st.episode[b, EP_LOST] += 1
    st.router[b, router, RT_LOST] += 1
    st.router[b, router, RT_STEP_LOST] += 1


@numba.njit(cache=True, inline="always")
def _enqueue(net, st, b, p, router, t):
    """Append packet p to router's queue, or drop it (loss at router) if the buffer is full."""
    if net.buffer_limit > 0 and st.router[b, router, RT_QLEN] >= net.buffer_limit:
        _lose(st, b, p, router, t)
        return
    st.pk[b, p, PK_NEXT] = -1
    st.pk[b, p, PK_ENQUEUED_TICK] = t
    tail = st.router[b, router, RT_TAIL]
    if tail < 0:
        st.router[b, router, RT_HEAD] = p
    else:
        st.pk[b, tail, PK_NEXT] = p
    st.router[b, router, RT_TAIL] = p
    st.router[b, router, RT_QLEN] += 1
    st.episode[b, EP_QUEUED] += 1


@numba.njit(cache=True)
def _fail_link(net, st, b, e, t):
    """Take link e down at tick t: capacity 0, every packet in flight on it lost at its sender."""
    st.link[b, e, LK_UP] = 0
    st.link[b, e, LK_AVAIL] = 0
    for w in range(net.wheel):
        prev = -1
        p = st.wheel[b, w, 0]
        while p >= 0:
            nxt = st.pk[b, p, PK_NEXT]
            if st.pk[b, p, PK_LINK] == e:
                if prev < 0:
                    st.wheel[b, w, 0] = nxt
                else:
                    st.pk[b, prev, PK_NEXT] = nxt
                if st.wheel[b, w, 1] == p:
                    st.wheel[b, w, 1] = prev
                st.pk[b, p, PK_LINK] = -1
                st.episode[b, EP_IN_FLIGHT] -= 1
                _lose(st, b, p, st.pk[b, p, PK_SENDER], t)
            else:
                prev = p
            p = nxt


@numba.njit(cache=True, inline="always")
def begin_tick_one(net, st, b, t):
    """Steps 1-3 of tick t for episode b (failures, arrivals, new packets)."""
    for f in range(net.fail_link.shape[0]):
        if net.fail_tick[f] == t and st.link[b, net.fail_link[f], LK_UP] != 0:
            _fail_link(net, st, b, net.fail_link[f], t)
    w = t % net.wheel
    p = st.wheel[b, w, 0]
    st.wheel[b, w, 0] = -1
    st.wheel[b, w, 1] = -1
    while p >= 0:
        nxt = st.pk[b, p, PK_NEXT]
        e = st.pk[b, p, PK_LINK]
        st.link[b, e, LK_AVAIL] += st.pk_size[b, p]
        st.pk[b, p, PK_LINK] = -1
        st.episode[b, EP_IN_FLIGHT] -= 1
        router = st.pk[b, p, PK_TO]
        if router == st.pk[b, p, PK_DST]:
            dt = t - st.pk[b, p, PK_CREATED]
            _finish(st, b, p)
            st.pk[b, p, PK_FATE] = FATE_DELIVERED
            st.pk[b, p, PK_END_TICK] = t
            st.episode[b, EP_DELIVERED] += 1
            st.episode[b, EP_DELIVERY_TIME_SUM] += dt
            st.router[b, router, RT_DELIVERED] += 1
            st.router[b, router, RT_STEP_DELIVERED] += 1
            st.router[b, router, RT_STEP_DELIVERY_TIME] += dt
        else:
            _enqueue(net, st, b, p, router, t)
        p = nxt
    count = st.episode[b, EP_COUNT]
    p = st.episode[b, EP_NEXT_NEW]
    while p < count and st.pk[b, p, PK_CREATED] == t:
        st.episode[b, EP_GENERATED] += 1
        _enqueue(net, st, b, p, st.pk[b, p, PK_SRC], t)
        p += 1
    st.episode[b, EP_NEXT_NEW] = p


@numba.njit(cache=True, inline="always")
def forward_one(net, st, b, t, i, slot):
    """Step 4 for router i of episode b: send its queue head via action slot `slot`.

    Returns the packet id (or -1 if the queue was empty); the packet's fate is LOST if the link
    could not take it. The action is recorded in the router's history either way.
    """
    p = st.router[b, i, RT_HEAD]
    if p < 0:
        return -1
    nxt = st.pk[b, p, PK_NEXT]
    st.router[b, i, RT_HEAD] = nxt
    if nxt < 0:
        st.router[b, i, RT_TAIL] = -1
    st.router[b, i, RT_QLEN] -= 1
    st.episode[b, EP_QUEUED] -= 1
    for k in range(HISTORY_LEN - 1, 0, -1):
        st.history[b, i, k] = st.history[b, i, k - 1]
    st.history[b, i, 0] = slot
    e = net.link_of_slot[i, slot]
    size = st.pk_size[b, p]
    if st.link[b, e, LK_AVAIL] >= size:
        st.link[b, e, LK_AVAIL] -= size
        st.link[b, e, LK_SENT] += 1
        st.pk[b, p, PK_LINK] = e
        st.pk[b, p, PK_SENDER] = i
        st.pk[b, p, PK_TO] = net.neighbors[i, slot]
        st.pk[b, p, PK_SENT_TICK] = t
        st.pk[b, p, PK_HOPS] += 1
        st.pk[b, p, PK_NEXT] = -1
        st.episode[b, EP_IN_FLIGHT] += 1
        w = (t + net.latency[e]) % net.wheel
        tail = st.wheel[b, w, 1]
        if tail < 0:
            st.wheel[b, w, 0] = p
        else:
            st.pk[b, tail, PK_NEXT] = p
        st.wheel[b, w, 1] = p
    else:
        _lose(st, b, p, i, t)
    return p


@numba.njit(cache=True, inline="always")
def end_tick_one(net, st, b, t):
    """Step 5: per-tick records of episode b."""
    for e in range(net.capacity.shape[0]):
        if st.link[b, e, LK_UP] != 0:
            st.link[b, e, LK_RESERVED_SUM] += net.capacity[e] - st.link[b, e, LK_AVAIL]
    st.series[b, t, SR_GENERATED] = st.episode[b, EP_GENERATED]
    st.series[b, t, SR_DELIVERED] = st.episode[b, EP_DELIVERED]
    st.series[b, t, SR_LOST] = st.episode[b, EP_LOST]
    st.series[b, t, SR_QUEUED] = st.episode[b, EP_QUEUED]
    st.series[b, t, SR_IN_FLIGHT] = st.episode[b, EP_IN_FLIGHT]


@numba.njit(cache=True, inline="always")
def clear_step_events_one(st, b):
    for i in range(st.router.shape[1]):
        st.router[b, i, RT_STEP_DELIVERED] = 0
        st.router[b, i, RT_STEP_DELIVERY_TIME] = 0
        st.router[b, i, RT_STEP_LOST] = 0


# --------------------------------------------------------------------------- batched step API
@numba.njit(cache=True)
def begin_episodes(net, st):
    """Tick 0 up to the forwarding decision, for every episode."""
    for b in range(st.router.shape[0]):
        begin_tick_one(net, st, b, 0)
    st.tick[0] = 0


@numba.njit(cache=True)
def step_batch(net, st, actions):
    """Forward with actions [B, N] (slots), finish the tick, begin the next one (if any).

    Step events (deliveries, losses per router) cover this forwarding and the next tick's
    arrivals, i.e. the consequences visible one tick after acting.
    """
    t = st.tick[0]
    nb, n = st.router.shape[0], st.router.shape[1]
    for b in range(nb):
        clear_step_events_one(st, b)
        for i in range(n):
            if st.router[b, i, RT_HEAD] >= 0:
                forward_one(net, st, b, t, i, actions[b, i])
        end_tick_one(net, st, b, t)
        if t + 1 < net.horizon:
            begin_tick_one(net, st, b, t + 1)
    st.tick[0] = t + 1


@numba.njit(cache=True)
def observe_batch(net, st, head_dst, longest_slot):
    """Fill head_dst [B, N] (destination of the queue head, -1 if empty) and longest_slot [B, N]
    (slot of the neighbour with the longest queue, lowest slot on ties; -1 if all are empty)."""
    nb, n = st.router.shape[0], st.router.shape[1]
    for b in range(nb):
        for i in range(n):
            p = st.router[b, i, RT_HEAD]
            head_dst[b, i] = st.pk[b, p, PK_DST] if p >= 0 else -1
            best, best_len = -1, 0
            for k in range(net.degree[i]):
                qlen = st.router[b, net.neighbors[i, k], RT_QLEN]
                if qlen > best_len:
                    best, best_len = k, qlen
            longest_slot[b, i] = best


# --------------------------------------------------------------------------- whole episodes
@numba.njit(cache=True)
def run_table_episodes(net, st, tables, table_start, uniforms, stochastic):
    """Run whole episodes with a routing table policy (no Python per tick).

    tables [R, N, D, K] float64: cumulative next-hop probabilities per (router, destination);
    table r is in force from tick table_start[r] (ascending, table_start[0] == 0) — this is how a
    shortest-path re-convergence after a failure is expressed. With `stochastic`, router i at tick
    t picks the first slot k with uniforms[b, t, i] < tables[r, i, d, k]; otherwise the first slot
    whose cumulative probability is positive (deterministic tables are one-hot).
    """
    nb, n = st.router.shape[0], st.router.shape[1]
    for b in range(nb):
        r = 0
        begin_tick_one(net, st, b, 0)
        for t in range(net.horizon):
            if t > 0:
                begin_tick_one(net, st, b, t)
            while r + 1 < table_start.shape[0] and table_start[r + 1] <= t:
                r += 1
            for i in range(n):
                p = st.router[b, i, RT_HEAD]
                if p < 0:
                    continue
                d = st.pk[b, p, PK_DST]
                u = uniforms[b, t, i] if stochastic else 0.0
                slot = 0
                deg = net.degree[i]
                while slot < deg - 1 and not (u < tables[r, i, d, slot]):
                    slot += 1
                forward_one(net, st, b, t, i, slot)
            end_tick_one(net, st, b, t)
    st.tick[0] = net.horizon
