"""The controllers of the link-failure experiment and the reward they are all judged on.

All follow the `Controller` protocol: `run_episodes(params, seed, first_episode, num_episodes)`
runs (and learns from) the given episodes and returns their per-episode metrics. The learning ones
(Q-routing and the deep controllers) are `AgentController`s: a `RoutingAgent` whose
`train(params, seed, num_episodes, first_episode=...)` plays exactly those episodes. The driver calls
each controller in blocks of `episodes_per_step` episodes, with the `SimParams` of the block;
blocks never straddle the failure episode (with `fail_tick > 0` the failure episode is a block of
its own, since its parameters differ from the episodes after it).

* `spa`            — shortest paths on the intact topology, never reacting (the paper's assumption);
* `spa-reconverge` — shortest paths recomputed `reconvergence_delay_ticks` after the failure in the
  failure episode, and on the failed topology from tick 0 in later episodes (long re-converged);
* `ecmp`, `max-throughput`, `min-delay` and their `-reconverge` forms — the other static routings
  of `mamrl.agents`, the same way (not in the presets: the two flow oracles exist only below the
  post-failure λ*, and refuse with one line otherwise);
* `backpressure`, `sp-backpressure` — backpressure on per-destination queues (no state between
  episodes; it never sends on a link without room, so a failed link is avoided at once);
* `q-routing`      — `QRouting` learning online across all episodes (its table carries over);
* `mamrl-init`, `continued`, `random-init` — the deep per-router learners of
  `mamrl.meta.adaptation.make_deep_controllers`, started from the meta-initialisation (resetting
  to it on detecting the failure), from the meta-initialisation without reset, and from random
  weights (resetting to fresh random weights on detection).

The common reward
-----------------
Every controller is judged on the same per-episode reward, computed by the driver from the
episode's metrics (`common_reward`): minus the cost per created packet in ticks,

    reward = -[mean_sojourn_time + loss_fraction * loss_penalty_ticks],

every packet costing its sojourn time (delivery time if delivered, else its age at the horizon,
lost or not) and a lost one `loss_penalty_ticks` more (default 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mamrl.agents.backpressure import run_backpressure
from mamrl.agents.q_routing import QRouting, QRoutingConfig
from mamrl.algorithms import make_agent, make_policy
from mamrl.errors import MamrlError
from mamrl.sim.evaluate import evaluate_tables
from mamrl.sim.params import LinkFailure, SimParams

if TYPE_CHECKING:
    from mamrl.agents.base import RoutingAgent

CLASSICAL_CONTROLLERS: tuple[str, ...] = ("spa", "spa-reconverge", "q-routing")
"""The paper's classical controllers (the presets' default)."""
STATIC_CONTROLLERS: tuple[str, ...] = (
    "spa", "spa-reconverge", "ecmp", "ecmp-reconverge", "max-throughput", "max-throughput-reconverge",
    "min-delay", "min-delay-reconverge",
)
"""Static routings (`mamrl.agents` table policies): `<policy>` never reacts to a failure,
`<policy>-reconverge` recomputes its tables on the failed network `reconvergence_delay_ticks` after it.
`max-throughput` and `min-delay` are oracles of the traffic matrix and exist only below λ*."""
QUEUE_CONTROLLERS: tuple[str, ...] = ("backpressure", "sp-backpressure")
"""Backpressure, classic and shortest-path-biased: they never choose a link without room for the
packet, so they route around a failed link at once (packets in flight on it are lost)."""
DEEP_CONTROLLERS: tuple[str, ...] = ("mamrl-init", "continued", "random-init")
"""Controllers built by `mamrl.meta.adaptation.make_deep_controllers` (need a meta-initialisation)."""
SCRATCH_CONTROLLERS: tuple[str, ...] = ("random-init-trpo",)
"""Deep comparators from random weights (the policy settings come from the meta-initialisation's)."""
PRETRAINED_CONTROLLERS: tuple[str, ...] = ("fine-tune", "zero-shot", "masked")
"""Deep comparators from a pre-trained policy: `fine-tune` and `masked` from one trained on the
intact network, `zero-shot` from one trained across η(M) (`mamrl.meta.adaptation.make_comparator`)."""
STEPPING_CONTROLLERS: tuple[str, ...] = DEEP_CONTROLLERS + SCRATCH_CONTROLLERS + ("fine-tune",)
"""Controllers that take one adaptation step (or reset) after every block of episodes; the others
take none, except Q-routing, which updates its table on every hop."""
PRETRAINED_POLICY: dict[str, str] = {"fine-tune": "intact", "masked": "intact", "zero-shot": "multitask"}
"""Which pre-trained policy each starts from."""
DEFAULT_CONTROLLERS: tuple[str, ...] = CLASSICAL_CONTROLLERS + DEEP_CONTROLLERS
"""The paper's E2 controllers."""
BENCHMARK_CONTROLLERS: tuple[str, ...] = DEFAULT_CONTROLLERS + (
    "ecmp-reconverge", "min-delay-reconverge", "backpressure", "random-init-trpo", "fine-tune", "zero-shot", "masked")
"""The paper preset's controllers: the paper's six, re-converging ECMP, the min-delay oracle
recomputed after the failure, backpressure, and the deep comparators that separate what
meta-learning buys from fine-tuning, multi-task training and local link-down detection."""
CONTROLLER_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(STATIC_CONTROLLERS + QUEUE_CONTROLLERS + CLASSICAL_CONTROLLERS + DEEP_CONTROLLERS + SCRATCH_CONTROLLERS
                  + PRETRAINED_CONTROLLERS)
)
"""Every controller `controllers` may name."""


# ------------------------------------------------------------------------------ the protocol
class Controller(Protocol):
    """A routing controller that learns online over a sequence of episodes."""

    name: str

    def run_episodes(self, params: SimParams, seed: int, first_episode: int, num_episodes: int) -> dict[str, np.ndarray]:
        """Run (and learn online from) episodes first_episode..first_episode+num_episodes-1 of `seed`
        on `params`; return per-episode metrics (keys of sim.metrics.episode_metrics, arrays [num_episodes]),
        optionally plus "reset" (bool [num_episodes]: the controller re-initialised in that episode)."""
        ...


def common_reward(metrics: Mapping[str, np.ndarray], loss_penalty_ticks: float = 0.0) -> np.ndarray:
    """Per-episode reward shared by every controller: minus the cost per created packet in ticks,
    `-[sojourn + loss * loss_penalty_ticks]` (NaN for an episode without packets).

    `mean_sojourn_time` counts a lost packet at its age at the horizon, like a packet still in the
    network: a lost packet is never delivered, so dropping one can never raise the reward above
    what delivering it would have given. The reward before charged a lost packet a fixed 100
    ticks instead, so losing a packet older than that at the horizon *raised* the reward, and an
    episode losing every packet scored -100, better than many plateaus. `loss_penalty_ticks`
    (default 0) charges a loss more than a packet stuck until the horizon; 0 keeps the reward
    equal to minus the headline metric, and the horizon term already costs a lost packet
    H - creation tick (250 ticks on average at H = 500), an order of magnitude above the delivery
    times the controllers reach."""
    loss = np.asarray(metrics["loss_fraction"], dtype=np.float64)
    sojourn = np.asarray(metrics["mean_sojourn_time"], dtype=np.float64)
    return -(sojourn + loss * float(loss_penalty_ticks))


# ------------------------------------------------------------------------------ classical controllers
def _table_metrics(params: SimParams, tables, seed: int, first: int, count: int) -> dict[str, np.ndarray]:
    metrics, _ = evaluate_tables(params, tables, seed, count, batch_size=count, first_episode=first)
    return metrics


class StaticRoutingController:
    """A static routing (`mamrl.algorithms.make_policy`) computed on the intact topology, never reacting
    to failures (SPA so is the paper's assumption). Its tables are computed once per failure set."""

    def __init__(self, policy: str):
        self.policy = policy
        self.name = policy
        self._tables: dict[tuple, Any] = {}

    def tables(self, params: SimParams, reconvergence_delay_ticks: int | None = None):
        key = (tuple(sorted((f.link, f.tick) for f in params.failures)), reconvergence_delay_ticks)
        if key not in self._tables:
            self._tables[key] = make_policy(self.policy, reconvergence_delay_ticks=reconvergence_delay_ticks).routing_tables(params)
        return self._tables[key]

    def run_episodes(self, params: SimParams, seed: int, first_episode: int, num_episodes: int) -> dict[str, np.ndarray]:
        # Never reacting: the tables depend on the intact topology only.
        return _table_metrics(params, self.tables(params.replace(failures=())), seed, first_episode, num_episodes)


class ReconvergingController(StaticRoutingController):
    """A static routing that re-converges: the first episode in which a link failure appears
    recomputes the tables `reconvergence_delay_ticks` after it; in later episodes with the same
    failed links the network has long re-converged, so the tables avoid them from tick 0.

    The controller remembers which failed links it has seen, so it does not depend on how the
    driver cuts the episodes into blocks."""

    def __init__(self, policy: str, reconvergence_delay_ticks: int = 50):
        super().__init__(policy)
        self.name = f"{policy}-reconverge"
        if reconvergence_delay_ticks < 0:
            raise MamrlError(f"reconvergence_delay_ticks must be >= 0, got {reconvergence_delay_ticks}")
        self.reconvergence_delay_ticks = int(reconvergence_delay_ticks)
        self._converged: set[int] = set()

    def run_episodes(self, params: SimParams, seed: int, first_episode: int, num_episodes: int) -> dict[str, np.ndarray]:
        links = {f.link for f in params.failures}
        parts: list[dict[str, np.ndarray]] = []
        first, count = first_episode, num_episodes
        if links - self._converged:
            # The failure is new: this episode re-converges D ticks after it.
            parts.append(_table_metrics(params, self.tables(params, self.reconvergence_delay_ticks), seed, first, 1))
            self._converged |= links
            first, count = first + 1, count - 1
        if count > 0:
            converged = params.replace(failures=tuple(LinkFailure(f.link, 0) for f in params.failures))
            parts.append(_table_metrics(params, self.tables(converged, 0), seed, first, count))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class BackpressureController:
    """Backpressure (`backpressure` or `sp-backpressure`, `mamrl.agents.backpressure`) on
    per-destination queues; it keeps no state between episodes."""

    def __init__(self, name: str):
        self.name = name
        self.bias = make_agent(name).cfg.bias_packets_per_hop

    def run_episodes(self, params: SimParams, seed: int, first_episode: int, num_episodes: int) -> dict[str, np.ndarray]:
        return run_backpressure(params, self.bias, seed, num_episodes, first_episode).per_episode()


class AgentController:
    """A learning agent (`RoutingAgent`) as a controller: each block is `agent.train` on exactly the
    driver's episodes, so the agent's state (and its own episode index) carries over the failure."""

    def __init__(self, name: str, agent: RoutingAgent):
        self.name = name
        self.agent = agent

    def run_episodes(self, params: SimParams, seed: int, first_episode: int, num_episodes: int) -> dict[str, np.ndarray]:
        return self.agent.train(params, seed, num_episodes, first_episode=first_episode)


class QRoutingController(AgentController):
    """Q-routing learning online across all episodes; the Q table carries over the failure."""

    def __init__(self, settings: Mapping[str, Any] | None = None):
        super().__init__("q-routing", QRouting(QRoutingConfig(**dict(settings or {}))))
