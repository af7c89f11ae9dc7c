"""The simulator core: one tick of the network model as compiled functions over batched arrays.

No RL and no torch here. State is a struct of arrays with a leading batch dimension B (episodes
run in lockstep); packets are rows of one per-packet array, and every FIFO (a router's queue, the
packets landing at one future tick) is an intrusive singly linked list through the packets'
PK_NEXT field, so enqueue and dequeue are O(1) and nothing is allocated while simulating.

Performance note: numba reference-counts arrays with atomic calls whenever an array is taken out
of a tuple or handed to an inlined helper, and cannot remove those inside loops; that cost 4x. So
the drivers (`step_batch`, `run_table_episodes`, the learners' loops) are compiled with
`hot_loop`, i.e. without numba's reference-counting runtime: they only borrow arrays they are
given and must not allocate. They unpack `Net` and `State` once; the per-tick helpers take arrays.

Developers: numba's on-disk cache does not notice that a helper inlined from this file changed,
so after editing it run `make clean-cache` (fresh clones and installs are unaffected).

Tick order (identical in `oracle.py`; docs/model.md explains it):

  begin_tick(t)   1. failures scheduled for tick t: the link's capacity becomes 0 and packets
                     in flight on it are lost (counted at their sender and on the link);
                  2. link arrivals due at t, in the order they were sent (send tick, then sender
                     id): capacity is released; the packet is delivered if the router is its
                     destination, else appended to that router's queue (drop-tail if full);
                  3. new packets created at t, in source-router order, appended to queues;
  (observation: what a learned policy sees is taken here)
  forward(t, i)   4. for routers i = 0..N-1 with a non-empty queue: pop the head, send it to the
                     chosen neighbour if the link's available capacity >= its size (reserving
                     it until arrival at t + latency), else the packet is lost at i and on the link;
  end_tick(t)     5. per-tick accounting (counts, link utilisation).

Queues: with `SimParams.queue_discipline = "per-destination"` every router keeps one FIFO per
destination instead of one FIFO; the state's `router` array then has extra columns (see "Per
destination" below) and `_enqueue` tells the mode from the array's width, so the per-tick helpers
keep their signatures. A table policy serves the destination queue whose head was enqueued first
(`run_table_episodes`), which is exactly the packet the FIFO would serve; `backpressure_kernel.run_backpressure_episodes`
chooses a (destination, link) pair by backpressure weights instead. `forward_one`, `step_batch`,
`observe_batch` and the learners' loops read `RT_HEAD` and are for FIFO queues only
(`params.require_fifo`).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from mamrl.errors import SimulationError
from mamrl.sim.params import SimParams
from mamrl.sim.traffic import Traffic

hot_loop = numba.njit(cache=True, _nrt=False)
"""Decorator of the simulation drivers: compiled without reference counting (see above)."""

HISTORY_LEN = 10
"""Number of past actions of a router kept for its observation (docs/model.md)."""

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
    wheel_mask: int  # arrival buckets - 1; buckets = a power of two > max latency (t & mask, no division)
    per_destination: bool  # queue_discipline "per-destination": make_state adds the per-destination columns


# Field indices of the packed state arrays.
# per packet, int32 [B, P, PK_FIELDS]
PK_CREATED, PK_SRC, PK_DST, PK_SIZE = 0, 1, 2, 3  # the traffic (read-only)
PK_NEXT = 4  # next packet in the same FIFO (a queue or an arrival bucket), -1 = none
PK_LINK = 5  # link the packet is in flight on, -1 = none
PK_SENDER = 6  # router that sent it on PK_LINK
PK_TO = 7  # router at the far end of PK_LINK
PK_SENT_TICK = 8
PK_ENQUEUED_TICK = 9  # tick it entered its current queue
PK_HOPS = 10  # links taken so far
PK_END_TICK = 11  # tick delivered or lost, -1 = still in the network (or not yet created)
PK_FATE = 12  # FATE_*
PK_SEQ = 13  # per-destination queues only: the router's enqueue sequence number (which queue a table policy serves)
PK_FIELDS = 14
# Packet sizes live in the int32 packet array; PacketSizeTable keeps them below 2**31 - 1.
# per router, int64 [B, N, RT_FIELDS]
RT_HEAD, RT_TAIL, RT_QLEN = 0, 1, 2  # the FIFO queue
RT_LOST, RT_DELIVERED = 3, 4  # since the episode start: lost at (sender) / delivered at (destination)
RT_STEP_DELIVERED, RT_STEP_DELIVERY_TIME, RT_STEP_LOST = 5, 6, 7  # events of the last step
RT_ACTIONS = 8  # number of actions taken so far; the last HISTORY_LEN are kept in a ring
RT_RING_POS = 9  # where the ring's next action goes (0..HISTORY_LEN-1)
RT_QUEUED_SUM = 10  # since the episode start: queue length summed over the ticks' ends (/ H = mean queue length)
RT_HISTORY = 11  # RT_HISTORY + k: ring position k
RT_FIELDS = RT_HISTORY + HISTORY_LEN
# Per destination: with per-destination queues, router is int64 [B, N, RT_FIELDS + 3N + DX_MASK + W]
# (`router_width`). RT_HEAD and RT_TAIL stay -1; RT_QLEN is still the router's total queue length.
# Queue (i, d) is the linked list whose head, tail and length are at columns RT_FIELDS + DQ_* * N + d
# (one block of N columns per field, so that a router's lengths, which backpressure scans, are contiguous);
DQ_HEAD, DQ_TAIL, DQ_LEN = 0, 1, 2
DQ_FIELDS = 3
# followed, from column RT_FIELDS + DQ_FIELDS * N (`_dx`), by:
DX_NEXT_SEQ = 0  # sequence number the router gives the next packet it enqueues
DX_SERVED_TICK, DX_SERVED_DST = 1, 2  # last tick the router forwarded a packet, and its destination
DX_MASK = 3  # DX_MASK + w, w < W = ceil(N / 64): bit (d & 63) of word d >> 6 set <=> queue (i, d) non-empty
# per link, int64 [B, LK_FIELDS, E] (field-major: the per-tick utilisation sum vectorises)
LK_AVAIL = 0  # capacity not reserved by packets in flight (0 when down)
LK_UP = 1  # 1 = up, 0 = failed
LK_SENT = 2  # packets sent over the link
LK_RESERVED_SUM = 3  # sum over ticks of the capacity reserved at the end of the tick
LK_LOST = 4  # packets lost on the link: sent when it lacked the capacity (saturated or down), or on it when it
# failed; a buffer drop is on no link, so RT_LOST summed over routers >= LK_LOST summed over links
LK_FIELDS = 5
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
    router: np.ndarray  # int64 [B, N, RT_FIELDS]
    link: np.ndarray  # int64 [B, LK_FIELDS, E]
    wheel: np.ndarray  # int32 [B, W, 2]: (head, tail) of the packets arriving at ticks t with t & (W-1) = w
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
    def history(self) -> np.ndarray:
        """int64 [B, N, HISTORY_LEN]: the last action slots, most recent first, -1 = none."""
        ring = self.router[:, :, RT_HISTORY:]
        taken = self.router[:, :, RT_ACTIONS]
        age = np.arange(HISTORY_LEN)
        # The k-th most recent action sits k+1 positions before the next write position.
        pos = (self.router[:, :, RT_RING_POS][:, :, None] - 1 - age) % HISTORY_LEN
        out = np.take_along_axis(ring, pos, axis=2)
        return np.where(age[None, None, :] < taken[:, :, None], out, -1)

    @property
    def link_up(self) -> np.ndarray:
        return self.link[:, LK_UP, :] != 0

    @property
    def per_destination(self) -> bool:
        return self.router.shape[2] > RT_FIELDS

    @property
    def destination_q_len(self) -> np.ndarray:
        """int64 [B, N, N]: packets queued at router i for destination d (per-destination queues only)."""
        n = self.router.shape[1]
        return self.router[:, :, RT_FIELDS + DQ_LEN * n : RT_FIELDS + (DQ_LEN + 1) * n]


def router_width(num_routers: int, per_destination: bool) -> int:
    """Columns of the per-router state array (see "Per destination" above)."""
    if not per_destination:
        return RT_FIELDS
    return RT_FIELDS + DQ_FIELDS * num_routers + DX_MASK + (num_routers + 63) // 64


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
        wheel_mask=(1 << int(topo.latencies.max()).bit_length()) - 1,
        per_destination=params.queue_discipline == "per-destination",
    )


def make_state(net: Net, traffic: Traffic) -> State:
    """A fresh state for the traffic's episodes: empty queues and links, tick 0 not yet begun."""
    nb, np_ = traffic.created_tick.shape
    n, e, h, w = net.degree.shape[0], net.capacity.shape[0], net.horizon, net.wheel_mask + 1
    pk = np.full((nb, np_, PK_FIELDS), -1, dtype=np.int32)
    pk[:, :, PK_CREATED] = traffic.created_tick
    pk[:, :, PK_SRC] = traffic.src
    pk[:, :, PK_DST] = traffic.dst
    pk[:, :, PK_SIZE] = traffic.size
    pk[:, :, PK_HOPS] = 0
    pk[:, :, PK_FATE] = FATE_PENDING
    router = np.zeros((nb, n, router_width(n, net.per_destination)), dtype=np.int64)
    router[:, :, RT_HEAD] = -1
    router[:, :, RT_TAIL] = -1
    if net.per_destination:
        # Sequence numbers are int32 in `pk`: a router enqueues at most every packet once plus
        # one arrival per sending router and tick.
        if np_ + h * n >= 2**31:
            raise SimulationError(
                f"per-destination queues: {np_} packets over {h} ticks on {n} routers overflow the packets' sequence numbers"
            )
        router[:, :, RT_FIELDS + DQ_HEAD * n : RT_FIELDS + (DQ_TAIL + 1) * n] = -1  # heads and tails
        router[:, :, RT_FIELDS + DQ_FIELDS * n + DX_SERVED_TICK] = -1
    link = np.zeros((nb, LK_FIELDS, e), dtype=np.int64)
    link[:, LK_AVAIL, :] = net.capacity[None, :]
    link[:, LK_UP, :] = 1
    episode = np.zeros((nb, EP_FIELDS), dtype=np.int64)
    episode[:, EP_COUNT] = traffic.count
    return State(
        tick=np.full(1, -1, dtype=np.int64),
        pk=pk,
        router=router,
        link=link,
        wheel=np.full((nb, w, 2), -1, dtype=np.int32),
        episode=episode,
        series=np.zeros((nb, h, SR_FIELDS), dtype=np.int64),
        finished=np.full((nb, np_), -1, dtype=np.int32),
    )


# --------------------------------------------------------------------------- per-episode pieces
# Argument order of the helpers: static network arrays, then state arrays, then indices.
@numba.njit(cache=True, inline="always")
def _finish(episode, finished, b, p):
    finished[b, episode[b, EP_FINISHED]] = p
    episode[b, EP_FINISHED] += 1


@numba.njit(cache=True, inline="always")
def _lose(pk, router, episode, finished, b, p, r, t):
    _finish(episode, finished, b, p)
    pk[b, p, PK_FATE] = FATE_LOST
    pk[b, p, PK_END_TICK] = t
    episode[b, EP_LOST] += 1
    router[b, r, RT_LOST] += 1
    router[b, r, RT_STEP_LOST] += 1


@numba.njit(cache=True, inline="always")
def _dx(router):
    """First column after the per-destination queues (DX_* fields)."""
    return RT_FIELDS + DQ_FIELDS * router.shape[1]


@numba.njit(cache=True, inline="always")
def _enqueue_destination(pk, router, b, p, r):
    """Append packet p to router r's queue for its destination and give it r's next sequence number."""
    d = pk[b, p, PK_DST]
    n = router.shape[1]
    q = RT_FIELDS + d
    x = _dx(router)
    seq = router[b, r, x + DX_NEXT_SEQ]
    pk[b, p, PK_SEQ] = seq
    router[b, r, x + DX_NEXT_SEQ] = seq + 1
    tail = router[b, r, q + DQ_TAIL * n]
    if tail < 0:
        router[b, r, q + DQ_HEAD * n] = p
        router[b, r, x + DX_MASK + (d >> 6)] |= np.int64(1) << (d & 63)
    else:
        pk[b, tail, PK_NEXT] = p
    router[b, r, q + DQ_TAIL * n] = p
    router[b, r, q + DQ_LEN * n] += 1


@numba.njit(cache=True, inline="always")
def _enqueue(buffer_limit, pk, router, episode, finished, b, p, r, t):
    """Append packet p to router r's queue, or drop it (loss at r) if the buffer is full.

    The buffer limit caps the router's total, whatever the queue discipline."""
    if buffer_limit > 0 and router[b, r, RT_QLEN] >= buffer_limit:
        _lose(pk, router, episode, finished, b, p, r, t)
        return
    pk[b, p, PK_NEXT] = -1
    pk[b, p, PK_ENQUEUED_TICK] = t
    if router.shape[2] > RT_FIELDS:  # per-destination queues (see "Per destination")
        _enqueue_destination(pk, router, b, p, r)
    else:
        tail = router[b, r, RT_TAIL]
        if tail < 0:
            router[b, r, RT_HEAD] = p
        else:
            pk[b, tail, PK_NEXT] = p
        router[b, r, RT_TAIL] = p
    router[b, r, RT_QLEN] += 1
    episode[b, EP_QUEUED] += 1


@hot_loop
def _fail_link(pk, router, link, wheel, episode, finished, b, e, t):
    """Take link e down at tick t: capacity 0, every packet in flight on it lost at its sender and on e."""
    link[b, LK_UP, e] = 0
    link[b, LK_AVAIL, e] = 0
    for w in range(wheel.shape[1]):
        prev = -1
        p = wheel[b, w, 0]
        while p >= 0:
            nxt = pk[b, p, PK_NEXT]
            if pk[b, p, PK_LINK] == e:
                if prev < 0:
                    wheel[b, w, 0] = nxt
                else:
                    pk[b, prev, PK_NEXT] = nxt
                if wheel[b, w, 1] == p:
                    wheel[b, w, 1] = prev
                pk[b, p, PK_LINK] = -1
                episode[b, EP_IN_FLIGHT] -= 1
                link[b, LK_LOST, e] += 1
                _lose(pk, router, episode, finished, b, p, pk[b, p, PK_SENDER], t)
            else:
                prev = p
            p = nxt


@numba.njit(cache=True, inline="always")
def begin_tick_one(fail_link, fail_tick, buffer_limit, pk, router, link, wheel, episode, finished, b, t):
    """Steps 1-3 of tick t for episode b (failures, arrivals, new packets)."""
    for f in range(fail_link.shape[0]):
        if fail_tick[f] == t and link[b, LK_UP, fail_link[f]] != 0:
            _fail_link(pk, router, link, wheel, episode, finished, b, fail_link[f], t)
    w = t & (wheel.shape[1] - 1)
    p = wheel[b, w, 0]
    wheel[b, w, 0] = -1
    wheel[b, w, 1] = -1
    while p >= 0:
        nxt = pk[b, p, PK_NEXT]
        link[b, LK_AVAIL, pk[b, p, PK_LINK]] += pk[b, p, PK_SIZE]
        pk[b, p, PK_LINK] = -1
        episode[b, EP_IN_FLIGHT] -= 1
        r = pk[b, p, PK_TO]
        if r == pk[b, p, PK_DST]:
            dt = t - pk[b, p, PK_CREATED]
            _finish(episode, finished, b, p)
            pk[b, p, PK_FATE] = FATE_DELIVERED
            pk[b, p, PK_END_TICK] = t
            episode[b, EP_DELIVERED] += 1
            episode[b, EP_DELIVERY_TIME_SUM] += dt
            router[b, r, RT_DELIVERED] += 1
            router[b, r, RT_STEP_DELIVERED] += 1
            router[b, r, RT_STEP_DELIVERY_TIME] += dt
        else:
            _enqueue(buffer_limit, pk, router, episode, finished, b, p, r, t)
        p = nxt
    count = episode[b, EP_COUNT]
    p = episode[b, EP_NEXT_NEW]
    while p < count and pk[b, p, PK_CREATED] == t:
        episode[b, EP_GENERATED] += 1
        _enqueue(buffer_limit, pk, router, episode, finished, b, p, pk[b, p, PK_SRC], t)
        p += 1
    episode[b, EP_NEXT_NEW] = p


@numba.njit(cache=True, inline="always")
def _transmit(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, slot, p):
    """Send packet p (already taken out of router i's queue) via action slot `slot`: record the
    action, then reserve the link's capacity until arrival, or lose p at i and on the link if it
    does not fit."""
    pos = router[b, i, RT_RING_POS]
    router[b, i, RT_HISTORY + pos] = slot
    router[b, i, RT_RING_POS] = 0 if pos == HISTORY_LEN - 1 else pos + 1
    router[b, i, RT_ACTIONS] += 1
    e = link_of_slot[i, slot]
    size = pk[b, p, PK_SIZE]
    if link[b, LK_AVAIL, e] >= size:
        link[b, LK_AVAIL, e] -= size
        link[b, LK_SENT, e] += 1
        pk[b, p, PK_LINK] = e
        pk[b, p, PK_SENDER] = i
        pk[b, p, PK_TO] = neighbors[i, slot]
        pk[b, p, PK_SENT_TICK] = t
        pk[b, p, PK_HOPS] += 1
        pk[b, p, PK_NEXT] = -1
        episode[b, EP_IN_FLIGHT] += 1
        w = (t + latency[e]) & (wheel.shape[1] - 1)
        tail = wheel[b, w, 1]
        if tail < 0:
            wheel[b, w, 0] = p
        else:
            pk[b, tail, PK_NEXT] = p
        wheel[b, w, 1] = p
    else:
        link[b, LK_LOST, e] += 1
        _lose(pk, router, episode, finished, b, p, i, t)


@numba.njit(cache=True, inline="always")
def forward_one(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, slot):
    """Step 4 for router i of episode b: send its queue head via action slot `slot` (FIFO queues).

    Returns the packet id (or -1 if the queue was empty); the packet's fate is LOST if the link
    could not take it. The action is recorded in the router's history either way.
    """
    p = router[b, i, RT_HEAD]
    if p < 0:
        return -1
    nxt = pk[b, p, PK_NEXT]
    router[b, i, RT_HEAD] = nxt
    if nxt < 0:
        router[b, i, RT_TAIL] = -1
    router[b, i, RT_QLEN] -= 1
    episode[b, EP_QUEUED] -= 1
    _transmit(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, slot, p)
    return p


@numba.njit(cache=True, inline="always")
def forward_destination_one(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, d, slot):
    """Step 4 with per-destination queues: send the head of router i's (non-empty) queue for
    destination d via action slot `slot`, as `forward_one` does. Returns the packet id."""
    n = router.shape[1]
    q = RT_FIELDS + d
    x = _dx(router)
    p = router[b, i, q + DQ_HEAD * n]
    nxt = pk[b, p, PK_NEXT]
    router[b, i, q + DQ_HEAD * n] = nxt
    if nxt < 0:
        router[b, i, q + DQ_TAIL * n] = -1
        router[b, i, x + DX_MASK + (d >> 6)] &= ~(np.int64(1) << (d & 63))
    router[b, i, q + DQ_LEN * n] -= 1
    router[b, i, RT_QLEN] -= 1
    episode[b, EP_QUEUED] -= 1
    router[b, i, x + DX_SERVED_TICK] = t
    router[b, i, x + DX_SERVED_DST] = d
    _transmit(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, slot, p)
    return p


@numba.njit(cache=True, inline="always")
def earliest_destination(pk, router, b, i):
    """The destination whose queue head was enqueued at router i first (smallest sequence
    number), -1 if every queue is empty: the packet a single FIFO would serve now."""
    x = _dx(router)
    best, best_seq = -1, 0
    for w in range((router.shape[1] + 63) >> 6):
        m = router[b, i, x + DX_MASK + w]
        while m != 0:
            d = (w << 6) + trailing_zeros(m)
            m &= m - 1
            seq = pk[b, router[b, i, RT_FIELDS + DQ_HEAD * router.shape[1] + d], PK_SEQ]
            if best < 0 or seq < best_seq:
                best, best_seq = d, seq
    return best


@numba.njit(cache=True, inline="always")
def end_tick_one(capacity, link, router, episode, series, b, t):
    """Step 5: per-tick records of episode b."""
    for i in range(router.shape[1]):
        router[b, i, RT_QUEUED_SUM] += router[b, i, RT_QLEN]
    for e in range(capacity.shape[0]):
        # A failed link has nothing reserved (LK_UP = 0 zeroes its term).
        link[b, LK_RESERVED_SUM, e] += link[b, LK_UP, e] * (capacity[e] - link[b, LK_AVAIL, e])
    series[b, t, SR_GENERATED] = episode[b, EP_GENERATED]
    series[b, t, SR_DELIVERED] = episode[b, EP_DELIVERED]
    series[b, t, SR_LOST] = episode[b, EP_LOST]
    series[b, t, SR_QUEUED] = episode[b, EP_QUEUED]
    series[b, t, SR_IN_FLIGHT] = episode[b, EP_IN_FLIGHT]


@numba.njit(cache=True, inline="always")
def clear_step_events_one(router, b):
    for i in range(router.shape[1]):
        router[b, i, RT_STEP_DELIVERED] = 0
        router[b, i, RT_STEP_DELIVERY_TIME] = 0
        router[b, i, RT_STEP_LOST] = 0


# --------------------------------------------------------------------------- batched step API
@hot_loop
def begin_episodes(net, st):
    """Tick 0 up to the forwarding decision, for every episode."""
    fail_link, fail_tick, buffer_limit = net.fail_link, net.fail_tick, net.buffer_limit
    pk, router, link, wheel, episode, finished = st.pk, st.router, st.link, st.wheel, st.episode, st.finished
    for b in range(router.shape[0]):
        begin_tick_one(fail_link, fail_tick, buffer_limit, pk, router, link, wheel, episode, finished, b, 0)
    st.tick[0] = 0


@hot_loop
def step_batch(net, st, actions):
    """Forward with actions [B, N] (slots), finish the tick, begin the next one (if any).

    Step events (deliveries, losses per router) cover this forwarding and the next tick's
    arrivals, i.e. the consequences visible one tick after acting.
    """
    neighbors, link_of_slot, latency, capacity = net.neighbors, net.link_of_slot, net.latency, net.capacity
    fail_link, fail_tick, buffer_limit, horizon = net.fail_link, net.fail_tick, net.buffer_limit, net.horizon
    pk, router, link, wheel = st.pk, st.router, st.link, st.wheel
    episode, series, finished = st.episode, st.series, st.finished
    t = st.tick[0]
    nb, n = router.shape[0], router.shape[1]
    for b in range(nb):
        clear_step_events_one(router, b)
        for i in range(n):
            if router[b, i, RT_HEAD] >= 0:
                forward_one(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, actions[b, i])
        end_tick_one(capacity, link, router, episode, series, b, t)
        if t + 1 < horizon:
            begin_tick_one(fail_link, fail_tick, buffer_limit, pk, router, link, wheel, episode, finished, b, t + 1)
    st.tick[0] = t + 1


@hot_loop
def observe_batch(net, st, head_dst, longest_slot):
    """Fill head_dst [B, N] (destination of the queue head, -1 if empty) and longest_slot [B, N]
    (slot of the neighbour with the longest queue, lowest slot on ties; -1 if all are empty)."""
    neighbors, degree = net.neighbors, net.degree
    pk, router = st.pk, st.router
    nb, n = router.shape[0], router.shape[1]
    for b in range(nb):
        for i in range(n):
            p = router[b, i, RT_HEAD]
            head_dst[b, i] = pk[b, p, PK_DST] if p >= 0 else -1
            best, best_len = -1, 0
            for k in range(degree[i]):
                qlen = router[b, neighbors[i, k], RT_QLEN]
                if qlen > best_len:
                    best, best_len = k, qlen
            longest_slot[b, i] = best


@hot_loop
def observe_encoded_batch(net, st, obs, mask):
    """Every router's observation as the RL environments encode it (docs/environments.md), in one
    pass: obs int64 [B, N, 2 + HISTORY_LEN] = (destination of the queue head, N if empty; slot of
    the neighbour with the longest queue, lowest on ties, degree if all are empty; the last
    HISTORY_LEN action slots, most recent first, degree = none yet) and mask int8 [B, N, K] =
    1 where the slot exists and its link is up. The same values as `observe_batch` and
    `State.history` give, encoded (tested against them)."""
    neighbors, link_of_slot, degree = net.neighbors, net.link_of_slot, net.degree
    pk, router, link = st.pk, st.router, st.link
    nb, n, k_max = router.shape[0], router.shape[1], mask.shape[2]
    for b in range(nb):
        for i in range(n):
            d = degree[i]
            p = router[b, i, RT_HEAD]
            obs[b, i, 0] = pk[b, p, PK_DST] if p >= 0 else n
            best, best_len = d, 0
            for k in range(d):
                qlen = router[b, neighbors[i, k], RT_QLEN]
                if qlen > best_len:
                    best, best_len = k, qlen
            obs[b, i, 1] = best
            taken, pos = router[b, i, RT_ACTIONS], router[b, i, RT_RING_POS]
            for age in range(HISTORY_LEN):
                if age < taken:
                    obs[b, i, 2 + age] = router[b, i, RT_HISTORY + (pos - 1 - age) % HISTORY_LEN]
                else:
                    obs[b, i, 2 + age] = d
            for k in range(k_max):
                mask[b, i, k] = 1 if k < d and link[b, LK_UP, link_of_slot[i, k]] != 0 else 0


@hot_loop
def count_in_flight_by_sender(st, out):
    """out int64 [B, N] = packets each router has in flight, walking only the packets on links
    (the arrival wheel's lists) rather than every packet of the episode."""
    pk, wheel = st.pk, st.wheel
    nb, n = out.shape[0], out.shape[1]
    for b in range(nb):
        for i in range(n):
            out[b, i] = 0
        for w in range(wheel.shape[1]):
            p = wheel[b, w, 0]
            while p >= 0:
                out[b, pk[b, p, PK_SENDER]] += 1
                p = pk[b, p, PK_NEXT]


# --------------------------------------------------------------------------- whole episodes
@hot_loop
def run_table_episodes(net, st, tables, table_start, uniforms, stochastic):
    """Run whole episodes with a routing table policy (no Python per tick).

    tables [R, N, D, K] float64: cumulative next-hop probabilities per (router, destination);
    table r is in force from tick table_start[r] (ascending, table_start[0] == 0) — this is how a
    shortest-path re-convergence after a failure is expressed. With `stochastic`, router i at tick
    t picks the first slot k with uniforms[b, t, i] < tables[r, i, d, k]; otherwise the first slot
    whose cumulative probability is positive (deterministic tables are one-hot).

    With per-destination queues the router serves the queue whose head it enqueued first
    (`earliest_destination`): the packet its FIFO would serve, so both disciplines give the same run.
    """
    neighbors, link_of_slot, latency, capacity, degree = net.neighbors, net.link_of_slot, net.latency, net.capacity, net.degree
    fail_link, fail_tick, buffer_limit = net.fail_link, net.fail_tick, net.buffer_limit
    pk, router, link, wheel = st.pk, st.router, st.link, st.wheel
    episode, series, finished = st.episode, st.series, st.finished
    nb, n = router.shape[0], router.shape[1]
    per_destination = router.shape[2] > RT_FIELDS
    for b in range(nb):
        r = 0
        for t in range(net.horizon):
            begin_tick_one(fail_link, fail_tick, buffer_limit, pk, router, link, wheel, episode, finished, b, t)
            while r + 1 < table_start.shape[0] and table_start[r + 1] <= t:
                r += 1
            for i in range(n):
                if per_destination:
                    if router[b, i, RT_QLEN] == 0:
                        continue
                    d = earliest_destination(pk, router, b, i)
                else:
                    p = router[b, i, RT_HEAD]
                    if p < 0:
                        continue
                    d = pk[b, p, PK_DST]
                slot = 0
                deg = degree[i]
                if stochastic:
                    u = uniforms[b, t, i]
                    while slot < deg - 1 and not (u < tables[r, i, d, slot]):
                        slot += 1
                else:
                    while slot < deg - 1 and tables[r, i, d, slot] <= 0.0:
                        slot += 1
                if per_destination:
                    forward_destination_one(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, d, slot)
                else:
                    forward_one(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, slot)
            end_tick_one(capacity, link, router, episode, series, b, t)
    st.tick[0] = net.horizon
