"""Backpressure in the compiled core: classic (Tassiulas–Ephremides) and shortest-path-biased
backpressure over per-destination queues (`run_backpressure_episodes`), mirrored by the oracle
(`mamrl.sim.oracle.Backpressure`). The shared per-tick pieces (arrivals, transmission, link
accounting) are `mamrl.sim.kernel`'s; this module holds only the routing rule and its driver.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from mamrl.sim.kernel import (
    DQ_FIELDS,
    DQ_HEAD,
    DQ_LEN,
    DX_MASK,
    DX_SERVED_DST,
    DX_SERVED_TICK,
    EP_COUNT,
    LK_AVAIL,
    Net,
    PK_SIZE,
    RT_FIELDS,
    RT_QLEN,
    State,
    begin_tick_one,
    end_tick_one,
    forward_destination_one,
    hot_loop,
)

# --------------------------------------------------------------------------- backpressure
@numba.njit(cache=True, inline="always")
def _backpressure_weight(router, hops, bias, lens, b, i, j, d, own, served_j):
    """(Q_i^d + bias H_i^d) - (Q_j^d + bias H_j^d), with queue lengths as at the start of the
    forwarding phase: own = Q_i^d (router i has not forwarded yet this tick), `served_j` = the
    destination of the packet neighbour j forwarded this tick (-1 if none yet), `lens` = first
    column of the DQ_LEN block.

    Reading j's length live gives its start-of-phase value but for one packet: no packet joins a
    queue during forwarding (a packet sent at t arrives at t + latency >= t + 1), but j < i may
    already have sent the head of (j, d) this tick, which is added back. Q_d^d = 0 (the
    destination absorbs its packets) needs no case of its own: router d never queues a packet for
    itself, nor serves one (served_j != d). Neighbours' hop distances differ by at most one, so the
    bias term is exactly -bias, 0 or +bias, and the weight is the same float the oracle computes."""
    other = router[b, j, lens + d] + (1 if d == served_j else 0)
    if bias == 0.0:  # classic backpressure: the hop term is +-0.0, skipping it gives the same float
        return float(own - other)
    return float(own - other) + bias * float(hops[i, d] - hops[j, d])


class BackpressureScratch(NamedTuple):
    """Work space of `run_backpressure_episodes` (the drivers do not allocate): `backpressure_scratch`."""

    slots: np.ndarray  # int64 [SC_ROWS, N * K]: the SC_* rows
    lengths: np.ndarray  # int32 [N, L]: classic rule, Q_j^d at the start of the forwarding phase (0 for d >= N;
    # int32 holds any queue length: make_state keeps packet counts below 2**31)
    destinations: np.ndarray  # int32 [DS_ROWS, L]: classic rule, the DS_* rows (per destination d < L)


# Rows of BackpressureScratch.slots: per slot k of the deciding router, its neighbour, the link's
# available capacity and (general rule only) the destination the neighbour served this tick (-1:
# none yet); then the pairs (d, k) reaching the best weight, in (d, k) order (general rule).
SC_NEIGHBOR, SC_AVAIL, SC_SERVED, SC_TIED_D, SC_TIED_K = 0, 1, 2, 3, 4
SC_ROWS = 5
# Rows of BackpressureScratch.destinations (classic rule): L^d = the smallest Q_j^d over the slots
# k whose link fits the head of (i, d); C^d = how many such slots reach it (then C^d times [d is
# a best destination]); the size of the head of (i, d) (0 if the queue is empty).
DS_LEAST, DS_COUNT, DS_SIZE = 0, 1, 2
DS_ROWS = 3
_NOT_FITTED = np.int32(2**31 - 1)  # Q_j^d of a slot that cannot take the head of (i, d): above any queue length


def backpressure_scratch(net: Net) -> BackpressureScratch:
    """Work space of `run_backpressure_episodes` for `net` (reusable across calls)."""
    n, k = net.neighbors.shape
    width = (n + 15) // 16 * 16  # whole vectors of int32
    return BackpressureScratch(
        slots=np.empty((SC_ROWS, n * k), dtype=np.int64),
        lengths=np.zeros((n, width), dtype=np.int32),
        destinations=np.zeros((DS_ROWS, width), dtype=np.int32),
    )


@numba.njit(cache=True, inline="always")
def _backpressure_all_pairs(pk, router, hops, bias, slots, b, i, deg, u):
    """The general rule at router i: weigh every pair (d, k) of a non-empty queue (i, d) and a slot
    whose link fits the head of (i, d), in (d, k) order; return the chosen pair (-1, -1: no
    positive weight, idle)."""
    n = router.shape[1]
    heads, lens, x = RT_FIELDS + DQ_HEAD * n, RT_FIELDS + DQ_LEN * n, RT_FIELDS + DQ_FIELDS * n
    best, ties = 0.0, 0
    for w in range((n + 63) >> 6):
        m = router[b, i, x + DX_MASK + w]
        while m != 0:
            d = (w << 6) + trailing_zeros(m)
            m &= m - 1
            own = router[b, i, lens + d]
            if float(own) + bias < best:
                # No pair of d can reach the best: its weights are at most
                # own + bias (Q_j >= 0, H_i - H_j <= 1), and rounding is monotonic.
                continue
            size = pk[b, router[b, i, heads + d], PK_SIZE]
            for k in range(deg):
                if slots[SC_AVAIL, k] < size:
                    continue  # the head does not fit (a failed link has 0)
                weight = _backpressure_weight(router, hops, bias, lens, b, i, slots[SC_NEIGHBOR, k], d, own, slots[SC_SERVED, k])
                # Without branches (the outcomes are unpredictable; 35% faster): a new
                # best restarts the list, the pair is written at its end and kept
                # only if it reaches a positive best.
                above = weight > best
                best = weight if above else best
                ties = 0 if above else ties
                slots[SC_TIED_D, ties] = d
                slots[SC_TIED_K, ties] = k
                ties += 1 if (weight == best and best > 0.0) else 0
    if ties == 0:
        return -1, -1
    pick = min(int(u * ties), ties - 1) if ties > 1 else 0
    return slots[SC_TIED_D, pick], slots[SC_TIED_K, pick]


@numba.njit(cache=True, inline="always")
def _classic_backpressure(pk, router, scratch_lengths, dest, slots, b, i, deg, min_size, max_size, u):
    """The general rule for bias 0, computed per destination with vector instructions: the same
    choice as `_backpressure_all_pairs` (tested); whole classic runs are about twice as fast.

    Why: classic backpressure keeps most destination queues busy (att at λ = 0.2: ~18 per router,
    and ~12 pairs tied at the best weight per decision), and the general rule's unpredictable
    branches per pair made it ~16x slower than the FIFO kernel. With bias 0 the weight of (d, k) is
    Q_i^d - Q_j^d, so the best pairs of d are the slots reaching L^d = min Q_j^d over the slots
    whose link fits the head of (i, d), the router's best weight is max_d Q_i^d - L^d, and the
    tied pairs are, for each d reaching it, the C^d slots with Q_j^d = L^d. L and C are each one
    branch-free pass per slot over the contiguous rows of `scratch_lengths` (the start-of-phase
    lengths, int32, padded to whole vectors with zeros, which never give a positive weight). The
    floor(u m)-th of the m tied pairs in (d, k) order is then found by walking C. Weights are whole
    numbers, so comparing integers is comparing the general rule's floats.

    Which slots fit which heads: a slot whose available capacity is at least the episode's
    largest packet takes every head, one below its smallest packet takes none (a failed link has
    0), and only for the slots in between are the head sizes read and compared."""
    n = router.shape[1]
    width = scratch_lengths.shape[1]
    own = scratch_lengths[i]  # views, not copies
    least, count, size = dest[DS_LEAST], dest[DS_COUNT], dest[DS_SIZE]
    sizes_read = False
    for d in range(width):
        least[d] = _NOT_FITTED
    for k in range(deg):
        avail = slots[SC_AVAIL, k]
        if avail < min_size:
            continue  # takes no head
        other = scratch_lengths[slots[SC_NEIGHBOR, k]]
        if avail >= max_size:  # takes every head
            for d in range(width):
                least[d] = min(least[d], other[d])
        else:  # takes the heads that fit
            if not sizes_read:
                heads = RT_FIELDS + DQ_HEAD * n
                for d in range(n):
                    size[d] = pk[b, router[b, i, heads + d], PK_SIZE] if own[d] > 0 else 0
                sizes_read = True
            fits_up_to = np.int32(avail)
            for d in range(width):
                least[d] = min(least[d], other[d] if size[d] <= fits_up_to else _NOT_FITTED)
    best = np.int32(0)
    for d in range(width):
        best = max(best, own[d] - least[d])  # an empty queue gives 0 - L^d <= 0, a head no slot fits < 0
    if best <= 0:
        return -1, -1
    for d in range(width):
        count[d] = 0
    for k in range(deg):  # the same slots again, now counting those that reach L^d
        avail = slots[SC_AVAIL, k]
        if avail < min_size:
            continue
        other = scratch_lengths[slots[SC_NEIGHBOR, k]]
        if avail >= max_size:
            for d in range(width):
                count[d] = np.int32(count[d] + (other[d] == least[d]))  # (numba would widen the sum to int64)
        else:
            fits_up_to = np.int32(avail)
            for d in range(width):
                count[d] = np.int32(count[d] + ((other[d] == least[d]) & (size[d] <= fits_up_to)))
    ties = 0
    for d in range(width):
        count[d] = np.int32(count[d] * (own[d] - least[d] == best))  # now: tied pairs of d
        ties += count[d]
    pick = min(int(u * ties), ties - 1) if ties > 1 else 0
    d = 0
    while pick >= count[d]:
        pick -= count[d]
        d += 1
    head_size = size[d] if sizes_read else min_size  # without partly fitting slots, usable = fits
    for k in range(deg):
        if slots[SC_AVAIL, k] >= head_size and scratch_lengths[slots[SC_NEIGHBOR, k], d] == least[d]:
            if pick == 0:
                return d, k
            pick -= 1
    return -1, -1  # not reached


def run_backpressure_episodes(net: Net, st: State, hops: np.ndarray, bias: float, uniforms: np.ndarray,
                              scratch: BackpressureScratch, exhaustive: bool = False) -> None:
    """Run whole episodes with (shortest-path-biased) backpressure routing; per-destination queues.

    At tick t, routers i = 0..N-1 in id order weigh every pair (d, k) of a non-empty queue (i, d)
    and a slot k whose link's available capacity is at least the size of that queue's head:
    w = (Q_i^d + bias H_i^d) - (Q_j^d + bias H_j^d), j = neighbors[i, k], H = hops [N, N] (hop
    distances on the intact topology), Q = per-destination queue lengths at the start of the
    forwarding phase. The router sends the head of (i, d*) through k* maximising w if w > 0, else
    stays idle; m tied maxima are resolved by the router's uniform u = uniforms[b, t, i]: the
    floor(u m)-th of them in (d, k) order. Weights count packets, not capacity units: a router
    forwards one packet per tick whatever its size, so packets are what its service moves; size
    only decides which links can take a queue's head. A chosen packet always fits, so
    backpressure never loses a packet on sending.

    `scratch` = `backpressure_scratch(net)`. Classic backpressure (bias 0) computes the rule per
    destination (`_classic_backpressure`) unless `exhaustive`, which weighs every pair as the
    biased variant does (`_backpressure_all_pairs`): the same run, slower (for tests). The two
    are separate compiled drivers: compiled into one, the biased variant ran ~5% slower.
    """
    if bias == 0.0 and not exhaustive:
        _run_classic_backpressure(net, st, uniforms, scratch)
    else:
        _run_backpressure_all_pairs(net, st, hops, bias, uniforms, scratch.slots)


@hot_loop
def _run_backpressure_all_pairs(net, st, hops, bias, uniforms, slots):
    """`run_backpressure_episodes` with the general rule."""
    neighbors, link_of_slot, latency, capacity, degree = net.neighbors, net.link_of_slot, net.latency, net.capacity, net.degree
    fail_link, fail_tick, buffer_limit = net.fail_link, net.fail_tick, net.buffer_limit
    pk, router, link, wheel = st.pk, st.router, st.link, st.wheel
    episode, series, finished = st.episode, st.series, st.finished
    nb, n = router.shape[0], router.shape[1]
    x = RT_FIELDS + DQ_FIELDS * n
    for b in range(nb):
        for t in range(net.horizon):
            begin_tick_one(fail_link, fail_tick, buffer_limit, pk, router, link, wheel, episode, finished, b, t)
            for i in range(n):
                if router[b, i, RT_QLEN] == 0:
                    continue
                deg = degree[i]
                for k in range(deg):
                    j = neighbors[i, k]
                    slots[SC_NEIGHBOR, k] = j
                    slots[SC_AVAIL, k] = link[b, LK_AVAIL, link_of_slot[i, k]]
                    slots[SC_SERVED, k] = router[b, j, x + DX_SERVED_DST] if router[b, j, x + DX_SERVED_TICK] == t else -1
                d, k = _backpressure_all_pairs(pk, router, hops, bias, slots, b, i, deg, uniforms[b, t, i])
                if d >= 0:
                    forward_destination_one(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, d, k)
            end_tick_one(capacity, link, router, episode, series, b, t)
    st.tick[0] = net.horizon


@hot_loop
def _run_classic_backpressure(net, st, uniforms, scratch):
    """`run_backpressure_episodes` with bias 0, the rule computed per destination."""
    neighbors, link_of_slot, latency, capacity, degree = net.neighbors, net.link_of_slot, net.latency, net.capacity, net.degree
    fail_link, fail_tick, buffer_limit = net.fail_link, net.fail_tick, net.buffer_limit
    pk, router, link, wheel = st.pk, st.router, st.link, st.wheel
    episode, series, finished = st.episode, st.series, st.finished
    slots, scratch_lengths, dest = scratch.slots, scratch.lengths, scratch.destinations
    nb, n = router.shape[0], router.shape[1]
    lens = RT_FIELDS + DQ_LEN * n
    for b in range(nb):
        # The episode's smallest and largest packets: a link with less capacity available takes
        # no head, one with at least the largest every head (`_classic_backpressure`).
        min_size, max_size = np.int64(1) << 62, np.int64(0)
        for p in range(episode[b, EP_COUNT]):
            min_size = min(min_size, np.int64(pk[b, p, PK_SIZE]))
            max_size = max(max_size, np.int64(pk[b, p, PK_SIZE]))
        for t in range(net.horizon):
            begin_tick_one(fail_link, fail_tick, buffer_limit, pk, router, link, wheel, episode, finished, b, t)
            # Invariant of the forwarding phase below: scratch_lengths[j, d] = Q_j^d as at its
            # start, which every router weighs (forwarding changes only the live lengths).
            for j in range(n):
                live, start = router[b, j, lens : lens + n], scratch_lengths[j]  # views
                for d in range(n):
                    start[d] = live[d]
            for i in range(n):
                if router[b, i, RT_QLEN] == 0:
                    continue
                deg = degree[i]
                for k in range(deg):
                    slots[SC_NEIGHBOR, k] = neighbors[i, k]
                    slots[SC_AVAIL, k] = link[b, LK_AVAIL, link_of_slot[i, k]]
                d, k = _classic_backpressure(pk, router, scratch_lengths, dest, slots, b, i, deg, min_size, max_size, uniforms[b, t, i])
                if d >= 0:
                    forward_destination_one(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, d, k)
            end_tick_one(capacity, link, router, episode, series, b, t)
    st.tick[0] = net.horizon
