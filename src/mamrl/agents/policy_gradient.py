"""Tabular policy gradient (Peshkin & Savova 2002), learning online inside the compiled
simulator loop.

Router i has a softmax (Gibbs) policy over its next hops for each destination d, with logits
theta_i[d, k]; it samples, so it can split traffic between paths. Learning is online policy
gradient with eligibility traces (OLPOMDP, Baxter & Bartlett) where the trace travels with the
packet: every packet carries the list of decisions (router, destination, slot, tick) made for it,
and when it leaves the network each of those decisions gets the packet's outcome from that
decision on (H = the horizon):

    G = -(t_delivered - t_decision)                 if the packet is delivered,
    G = -(H - t_decision)                           if it is still in the network at the horizon,
    G = -(H - t_decision) - loss_penalty            if it is lost,

and every router on the path updates only its own table, with only information the packet
brought back:

    theta_i[d, :] += step_size * (G - b_i[d]) / s * (onehot(a) - pi_i(. | d))

b_i[d] is a running average of G at (i, d) (a baseline: less variance, no bias); s a running
root-mean-square of the advantages, so that one step size suits every load and topology.

Why a lost packet costs the rest of the horizon: a lost packet is never delivered, so it costs at
least as much as one still in the network at the horizon (whose age then is a lower bound on its
delivery time, docs/model.md). A delivered packet ends before the horizon, so its return is strictly
higher than a loss's: dropping a packet is never better than delivering it, however slow the
delivery. The rule before (`loss_honest=False`, kept to resume and reproduce older runs) charged
a loss `loss_penalty` ticks from the tick it happened, so dropping a packet whose remaining
delivery time exceeded ~100 ticks scored better than delivering it. The extra `loss_penalty`
(default 100 ticks) makes a loss strictly worse than a packet stuck until the horizon too, also
for decisions near the end of an episode, where H - t_decision alone is small.

Why per-packet rather than one network-wide reward per tick (Tao, Baxter & Weaver 2001): with a
shared reward the credit of one decision is drowned by every other router's; on B4 such a learner
still delivered under 35% of the packets after 1,000 episodes where this one matches shortest
paths (measured while building this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from mamrl.agents.base import Progress, RoutingAgent, in_chunks, training_start
from mamrl.errors import MamrlError
from mamrl.sim import kernel
from mamrl.sim.evaluate import evaluate_tables
from mamrl.sim.kernel import EP_FINISHED, EP_NEXT_NEW, FATE_LOST, FATE_PENDING, PK_DST, PK_END_TICK, PK_FATE, RT_HEAD
from mamrl.sim.metrics import metrics_for
from mamrl.sim.params import SimParams, require_fifo
from mamrl.sim.simulator import RoutingTables
from mamrl.sim.traffic import draw_policy_uniforms, draw_traffic
from mamrl.validate import Flag, Number, check_fields, integer, setting


@numba.njit(cache=True, inline="always")
def _softmax_row(theta, i, d, deg, probs):
    top = theta[i, d, 0]
    for k in range(1, deg):
        top = max(top, theta[i, d, k])
    total = 0.0
    for k in range(deg):
        probs[k] = np.exp(theta[i, d, k] - top)
        total += probs[k]
    for k in range(deg):
        probs[k] /= total


@kernel.hot_loop
def _credit_packet(degree, theta, baseline, scale, decisions, last_decision, p, t_end, lost, loss_penalty, step_size, baseline_rate, probs):
    """Walk packet p's decisions back from the last one and update each router's table."""
    k = last_decision[p]
    while k >= 0:
        i, d, a, tick = decisions[k, 0], decisions[k, 1], decisions[k, 2], decisions[k, 3]
        ret = -(t_end - tick) - (loss_penalty if lost else 0.0)
        advantage = ret - baseline[i, d]
        baseline[i, d] += baseline_rate * advantage
        scale[0] += baseline_rate * (advantage * advantage - scale[0])
        gain = step_size * advantage / np.sqrt(scale[0] + 1e-8)
        deg = degree[i]
        _softmax_row(theta, i, d, deg, probs)
        for j in range(deg):
            theta[i, d, j] -= gain * probs[j]
        theta[i, d, a] += gain
        k = decisions[k, 4]
    last_decision[p] = -1


@kernel.hot_loop
def run_policy_gradient_episodes(net, st, theta, baseline, scale, uniforms, step_size, loss_penalty, loss_honest,
                                 baseline_rate, learn, scratch):
    """Run the batch's episodes one after another; with `learn`, theta [N, D, K], baseline [N, D]
    and scale [1] are updated in place and carry over between episodes. `scratch` holds the
    caller-allocated work arrays (decision log [H*N, 5], last decision per packet [P], probs [K]).
    `loss_honest`: a lost packet's decisions are charged until the horizon (module doc)."""
    neighbors, link_of_slot, latency, capacity, degree = net.neighbors, net.link_of_slot, net.latency, net.capacity, net.degree
    fail_link, fail_tick, buffer_limit = net.fail_link, net.fail_tick, net.buffer_limit
    pk, router, link, wheel = st.pk, st.router, st.link, st.wheel
    episode, series, finished = st.episode, st.series, st.finished
    decisions, last_decision, probs = scratch
    nb, n = router.shape[0], router.shape[1]
    for b in range(nb):
        # Decision log: (router, destination, slot, tick, previous decision of the same packet).
        last_decision[:] = -1
        num_decisions = 0
        credited = 0
        for t in range(net.horizon):
            kernel.begin_tick_one(fail_link, fail_tick, buffer_limit, pk, router, link, wheel, episode, finished, b, t)
            for i in range(n):
                p = router[b, i, RT_HEAD]
                if p < 0:
                    continue
                d = pk[b, p, PK_DST]
                deg = degree[i]
                _softmax_row(theta, i, d, deg, probs)
                # Same sampling rule as the table path: first slot whose cumulative prob > u.
                u = uniforms[b, t, i]
                slot = deg - 1
                cumulative = 0.0
                for k in range(deg - 1):
                    cumulative += probs[k]
                    if u < cumulative:
                        slot = k
                        break
                if learn:
                    decisions[num_decisions, 0] = i
                    decisions[num_decisions, 1] = d
                    decisions[num_decisions, 2] = slot
                    decisions[num_decisions, 3] = t
                    decisions[num_decisions, 4] = last_decision[p]
                    last_decision[p] = num_decisions
                    num_decisions += 1
                kernel.forward_one(neighbors, link_of_slot, latency, pk, router, link, wheel, episode, finished, b, t, i, slot)
            kernel.end_tick_one(capacity, link, router, episode, series, b, t)
            if learn:
                while credited < episode[b, EP_FINISHED]:
                    p = finished[b, credited]
                    lost = pk[b, p, PK_FATE] == FATE_LOST
                    # Loss-honest: a lost packet is never delivered, so it ends no earlier than the horizon.
                    end = net.horizon if lost and loss_honest else pk[b, p, PK_END_TICK]
                    _credit_packet(degree, theta, baseline, scale, decisions, last_decision, p, end,
                                   lost, loss_penalty, step_size, baseline_rate, probs)
                    credited += 1
        if learn:
            for p in range(episode[b, EP_NEXT_NEW]):
                if pk[b, p, PK_FATE] == FATE_PENDING:
                    _credit_packet(degree, theta, baseline, scale, decisions, last_decision, p, net.horizon,
                                   False, loss_penalty, step_size, baseline_rate, probs)
    st.tick[0] = net.horizon


def softmax_tables(theta: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Next-hop probabilities [N, D, K] of logits theta, zero beyond each router's degree."""
    valid = np.arange(theta.shape[2])[None, :] < degree[:, None]
    logits = np.where(valid[:, None, :], theta, -np.inf)
    logits = logits - logits.max(axis=2, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=2, keepdims=True)


@dataclass
class PolicyGradientConfig:
    """Hyper-parameters of tabular policy-gradient routing."""

    config_name: ClassVar[str] = "pg"

    step_size: float = setting(0.05, Number(above=0))
    """Logit step per credited decision, on the normalised advantage."""
    loss_penalty: float = setting(100.0, Number(at_least=0))
    """Extra cost of a lost packet in ticks, on top of the rest of the horizon (module doc): makes a
    loss strictly worse than a packet still in the network at the horizon."""
    loss_honest: bool = setting(True, Flag())
    """Charge a lost packet's decisions until the horizon (True), so dropping is never better than
    delivering; False is the rule before (a loss costs `loss_penalty` ticks from when it happened),
    kept to resume and reproduce older runs."""
    baseline_rate: float = setting(0.01, Number(above=0, at_most=1))
    """Rate of the running averages (per-(router, destination) baseline, advantage scale)."""
    episodes_per_call: int = setting(16, integer(1))
    """Episodes simulated per compiled call while training (granularity of progress reports)."""

    def __post_init__(self) -> None:
        check_fields(self)


class PolicyGradient(RoutingAgent):
    """Per-router softmax next-hop tables trained by online policy gradient."""

    name = "pg"
    learns = True
    rollout_bytes_per_router_tick = 40.0  # one int64 [5] decision record per router and tick

    def __init__(self, config: PolicyGradientConfig | None = None):
        self.cfg = config or PolicyGradientConfig()  # checked when built (PolicyGradientConfig.__post_init__)
        self.theta: np.ndarray | None = None
        self.baseline: np.ndarray | None = None
        self.scale = np.ones(1)
        self.episodes_trained = 0

    def _arrays_for(self, params: SimParams) -> None:
        shape = (params.topology.num_routers, params.topology.num_routers, params.topology.max_degree)
        if self.theta is None:
            self.theta, self.baseline = np.zeros(shape), np.zeros(shape[:2])
        elif self.theta.shape != shape:
            raise MamrlError(f"pg tables have shape {self.theta.shape}, topology needs {shape}")

    def probabilities(self, params: SimParams) -> np.ndarray:
        self._arrays_for(params)
        return softmax_tables(self.theta, params.topology.degree)

    def train(self, params, seed, num_episodes, *, first_episode: int | None = None, on_progress: Progress | None = None):
        require_fifo(params, "pg training")  # its compiled loop serves RT_HEAD (evaluation runs tables: any discipline)
        start = training_start(first_episode, self.episodes_trained)
        self._arrays_for(params)
        net = kernel.make_net(params)

        def run(size: int, done: int) -> dict[str, np.ndarray]:
            first = start + done
            state = kernel.make_state(net, draw_traffic(params, seed, size, first))
            uniforms = draw_policy_uniforms(seed, size, params.horizon_ticks, params.topology.num_routers, first)
            scratch = (
                np.empty((params.horizon_ticks * params.topology.num_routers, 5), dtype=np.int64),
                np.empty(state.pk.shape[1], dtype=np.int64),
                np.empty(params.topology.max_degree),
            )
            run_policy_gradient_episodes(
                net, state, self.theta, self.baseline, self.scale, uniforms, self.cfg.step_size,
                self.cfg.loss_penalty, bool(self.cfg.loss_honest), self.cfg.baseline_rate, True, scratch,
            )
            self.episodes_trained = first + size
            return metrics_for(state, params)

        return in_chunks(num_episodes, self.cfg.episodes_per_call, run, on_progress)

    def evaluate(self, params, seed, num_episodes, *, batch_size=32, on_progress: Progress | None = None):
        tables = RoutingTables.from_probabilities(self.probabilities(params))
        metrics, _ = evaluate_tables(params, tables, seed, num_episodes, batch_size=batch_size, on_batch=on_progress)
        return metrics

    def config(self):
        return dict(vars(self.cfg))

    def state_arrays(self):
        if self.theta is None:
            return {}
        return {"theta": self.theta, "baseline": self.baseline, "scale": self.scale, "episodes_trained": np.array(self.episodes_trained)}

    def load_state_arrays(self, arrays):
        if "theta" not in arrays or arrays["theta"].ndim != 3:
            raise MamrlError("pg checkpoint has no [N, D, K] theta")
        self.theta = np.array(arrays["theta"], dtype=np.float64)
        self.baseline = np.array(arrays.get("baseline", np.zeros(self.theta.shape[:2])), dtype=np.float64)
        self.scale = np.array(arrays.get("scale", [1.0]), dtype=np.float64).reshape(1)
        self.episodes_trained = int(arrays.get("episodes_trained", 0))
