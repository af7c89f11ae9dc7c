"""Q-routing (Boyan & Littman 1994), learning online inside the compiled simulator loop.

Router i keeps Q_i(d, k): its estimate of the time for a packet to reach destination d if sent
through action slot k. It sends greedily (lowest Q; optional epsilon exploration) and, on every
forwarding, moves the estimate towards what the neighbour j reports back:

    Q_i(d, k) += eta * (q + s + min_k' Q_j(d, k') - Q_i(d, k))

with q the ticks the packet waited in i's queue, s the link latency, and min Q_j = 0 when j is the
destination. A packet lost on sending (no capacity, failed link) instead pulls the estimate towards

    max_k' Q_i(d, k') + loss_penalty_ticks,

which is how Q-routing learns to avoid a failed link. Why this target: a lost packet is never
delivered, so the hop that lost it must end up estimated worse than every hop of i that delivers.
The target is above all of i's current estimates for d, so repeated losses drive Q_i(d, k) above
the worst alternative, whatever the load. The rule before (`loss_honest=False`, kept to resume and
reproduce older runs) pulled it towards a fixed `loss_penalty_ticks` (1000): once congestion made
the delivering hops' estimates exceed that, a hop that loses packets looked best. Packets lost
later (in flight when a link fails, or dropped at a full buffer downstream) give no feedback, as in
the original algorithm where feedback comes only from the immediate neighbour.

Q starts at zero: optimistic (real costs are positive), so untried next hops get tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mamrl.agents.base import Progress, RoutingAgent, in_chunks, training_start
from mamrl.errors import MamrlError
from mamrl.sim import kernel
from mamrl.sim.kernel import FATE_LOST, PK_DST, PK_ENQUEUED_TICK, PK_FATE, RT_HEAD
from mamrl.sim.metrics import metrics_for
from mamrl.sim.params import SimParams, require_fifo
from mamrl.sim.traffic import draw_policy_uniforms, draw_traffic
from mamrl.validate import Flag, Number, check_fields, integer, setting


@kernel.hot_loop
def run_q_routing_episodes(net, st, q_table, uniforms, learning_rate, exploration, loss_penalty, loss_honest, learn):
    """Run the batch's episodes one after another, all routers sharing and updating `q_table`
    [N, D, K] (so learning carries over from episode to episode). A loss pulls Q towards the
    router's worst estimate plus `loss_penalty` with `loss_honest`, else towards `loss_penalty`."""
    neighbors, link_of_slot, latency, capacity, degree = net.neighbors, net.link_of_slot, net.latency, net.capacity, net.degree
    fail_link, fail_tick, buffer_limit = net.fail_link, net.fail_tick, net.buffer_limit
    pk, router, link, wheel = st.pk, st.router, st.link, st.wheel
    episode, series, finished = st.episode, st.series, st.finished
    nb, n = router.shape[0], router.shape[1]
    for b in range(nb):
        for t in range(net.horizon):
            kernel.begin_tick_one(fail_link, fail_tick, buffer_limit, pk, router, link, wheel, episode, finished, b, t)
            for i in range(n):
                p = router[b, i, RT_HEAD]
                if p < 0:
                    continue
                d = pk[b, p, PK_DST]
                deg = degree[i]
                u = uniforms[b, t, i] if exploration > 0.0 else 1.0
                if u < exploration:
                    slot = min(int(u / exploration * deg), deg - 1)
                else:
                    slot = 0
                    for k in range(1, deg):
                        if q_table[i, d, k] < q_table[i, d, slot]:
                            slot = k
                waited = t - pk[b, p, PK_ENQUEUED_TICK]
                kernel.forward_one(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, slot)
                if learn:
                    if pk[b, p, PK_FATE] == FATE_LOST:
                        target = loss_penalty
                        if loss_honest:
                            worst = q_table[i, d, 0]
                            for k in range(1, deg):
                                worst = max(worst, q_table[i, d, k])
                            target += worst
                    else:
                        target = float(waited + latency[link_of_slot[i, slot]])
                        j = neighbors[i, slot]
                        if j != d:
                            best = q_table[j, d, 0]
                            for k in range(1, degree[j]):
                                best = min(best, q_table[j, d, k])
                            target += best
                    q_table[i, d, slot] += learning_rate * (target - q_table[i, d, slot])
            kernel.end_tick_one(capacity, link, router, episode, series, b, t)
    st.tick[0] = net.horizon


@dataclass
class QRoutingConfig:
    """Hyper-parameters of Q-routing."""

    config_name: ClassVar[str] = "q-routing"

    learning_rate: float = setting(0.7, Number(above=0, at_most=1))
    """eta; the paper authors used 0.7."""
    exploration: float = setting(0.0, Number(at_least=0, below=1))
    """Probability of a uniformly random next hop while training (Boyan & Littman: 0, greedy)."""
    loss_penalty_ticks: float = setting(3.0, Number(at_least=0))
    """Margin in ticks above the router's worst estimate for the destination that a lost packet
    pulls Q towards (module doc); with `loss_honest=False`, the fixed estimate it pulls towards
    (1000 before). 3 = one link of the built-in topologies. Small on purpose: healthy but busy
    links lose packets too (no capacity at that tick), and a large margin takes such a hop out of
    use for long. On b4 (16 seeds, 2,000 training episodes) margins of 1000 / 100 / 30 / 3 / 1 gave
    delivery times of 8.8 / 8.8 / 8.5 / 7.9 / 7.8 ticks at λ = 0.1 and 48 / 39 / 27 / 24.5 / 24.5
    at λ = 0.3 (the old fixed 1000: 8.7 and 48), with losses at ~0.04% throughout."""
    loss_honest: bool = setting(True, Flag())
    """Pull a losing hop's estimate above every alternative (True); False is the rule before (a
    fixed target of `loss_penalty_ticks`), kept to resume and reproduce older runs."""
    episodes_per_call: int = setting(16, integer(1))
    """Episodes simulated per compiled call while training (granularity of progress reports)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.loss_honest and not self.loss_penalty_ticks > 0:
            # A zero margin would let a losing hop tie with the worst delivering one.
            raise MamrlError(f"q-routing.loss_penalty_ticks: must be > 0 with loss_honest, got {self.loss_penalty_ticks}")


class QRouting(RoutingAgent):
    """Tabular Q-routing; the table lives in one float64 array [N, D, K]."""

    name = "q-routing"
    learns = True

    def __init__(self, config: QRoutingConfig | None = None):
        self.cfg = config or QRoutingConfig()  # checked when built (QRoutingConfig.__post_init__)
        self.q_table: np.ndarray | None = None
        self.episodes_trained = 0

    def _table_for(self, params: SimParams) -> np.ndarray:
        n, k = params.topology.num_routers, params.topology.max_degree
        if self.q_table is None:
            self.q_table = np.zeros((n, n, k))
        elif self.q_table.shape != (n, n, k):
            raise MamrlError(f"q-routing table has shape {self.q_table.shape}, topology needs {(n, n, k)}")
        return self.q_table

    def _run(self, params: SimParams, seed: int, count: int, first: int, learn: bool) -> dict[str, np.ndarray]:
        require_fifo(params, "q-routing")  # its compiled loop serves RT_HEAD
        q_table = self._table_for(params)
        net = kernel.make_net(params)
        traffic = draw_traffic(params, seed, count, first)
        state = kernel.make_state(net, traffic)
        explore = self.cfg.exploration if learn else 0.0
        if explore > 0:
            uniforms = draw_policy_uniforms(seed, count, params.horizon_ticks, params.topology.num_routers, first)
        else:
            uniforms = np.ones((1, 1, 1))
        run_q_routing_episodes(net, state, q_table, uniforms, self.cfg.learning_rate, explore, self.cfg.loss_penalty_ticks,
                               bool(self.cfg.loss_honest), learn)
        return metrics_for(state, params)

    def train(self, params, seed, num_episodes, *, first_episode: int | None = None, on_progress: Progress | None = None):
        start = training_start(first_episode, self.episodes_trained)

        def run(size: int, done: int) -> dict[str, np.ndarray]:
            metrics = self._run(params, seed, size, start + done, True)
            self.episodes_trained = start + done + size
            return metrics

        return in_chunks(num_episodes, self.cfg.episodes_per_call, run, on_progress)

    def evaluate(self, params, seed, num_episodes, *, batch_size=32, on_progress: Progress | None = None):
        return in_chunks(num_episodes, batch_size, lambda size, done: self._run(params, seed, size, done, False), on_progress)

    def config(self):
        return dict(vars(self.cfg))

    def state_arrays(self):
        if self.q_table is None:
            return {}
        return {"q_table": self.q_table, "episodes_trained": np.array(self.episodes_trained)}

    def load_state_arrays(self, arrays):
        if "q_table" not in arrays or arrays["q_table"].ndim != 3:
            raise MamrlError("q-routing checkpoint has no [N, D, K] q_table")
        self.q_table = np.array(arrays["q_table"], dtype=np.float64)
        self.episodes_trained = int(arrays.get("episodes_trained", 0))
