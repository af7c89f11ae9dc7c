"""The link-failure experiment (SPEC §3, E2; paper Figs. 5–7 and Table 2): `mamrl failures`.

Online learning over a sequence of episodes on one topology at load λ. Episodes
0 .. fail_episode-1 run on the intact network; from episode `fail_episode` on, one test link is
down — in the failure episode from tick `fail_tick`, in every later episode from tick 0 — and it
stays down. Every controller learns online throughout (its state carries over the failure) and
is measured on every episode.

Controllers
-----------
All follow the `Controller` protocol: `run_episodes(params, seed, first_episode, num_episodes)`
runs (and learns from) the given episodes and returns their per-episode metrics. The driver calls
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

Common random numbers: run (failure, controller, seed) plays episodes 0 .. episodes-1 of traffic
seed `seed`, whatever the controller and the failure, so every controller sees the same packets
in the same episode.

The common reward and the adaptation rule
-----------------------------------------
Every controller is judged on the same per-episode reward, computed by the driver from the
episode's metrics (`common_reward`): minus the cost per created packet in ticks,

    reward = -[mean_sojourn_time + loss_fraction * loss_penalty_ticks],

every packet costing its sojourn time (delivery time if delivered, else its age at the horizon,
lost or not) and a lost one `loss_penalty_ticks` more (default 0).

Episodes to adapt (Table 2) follow `RULE_TEXT`, one rule for every controller.

Outputs
-------
In the output directory: `config.json` (the resolved config, its hash, provenance; written once, a
re-run with a different config is refused), `curves.csv` (one row per topology, failure,
controller, seed, episode; appended run by run, resumable: a re-run skips the runs already
complete), `run.json` (seeds, version, wall times), and — from `mamrl.plotting.failures` —
`table2.md`, `table2.csv` and the figures. With deep controllers, `meta_init.pt` holds the
meta-initialisation the runs started from.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import mamrl
from mamrl.errors import MamrlError
from mamrl.experiments.config import check_int, check_seeds, layered_values
from mamrl.experiments.config import check_fields as _check_fields
from mamrl.executors import CellExecutor, available_cores, make_backend_executor, single_threaded
from mamrl.meta.tasks import link_label
from mamrl.runs import ResultsTable, Row, TableSchema, config_hash, read_table
from mamrl.sim.metrics import METRIC_INFO, Estimate, estimate, predates_loss_honest, predates_loss_honest_message
from mamrl.sim.params import LinkFailure, SimParams

CONFIG_FORMAT = "mamrl-failures-config/1"
"""Format tag of the resolved config (in `config.json`)."""
META_INIT_FORMAT = "mamrl-meta-init/1"

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
DEFAULT_CONTROLLERS: tuple[str, ...] = CLASSICAL_CONTROLLERS + DEEP_CONTROLLERS
"""The paper's E2 controllers."""
CONTROLLER_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(STATIC_CONTROLLERS + QUEUE_CONTROLLERS + CLASSICAL_CONTROLLERS + DEEP_CONTROLLERS)
)
"""Every controller `controllers` may name."""

MA_WINDOW = 10
"""Episodes in the moving averages of the adaptation rules."""
TOLERANCE = 0.05
"""Relative distance to the plateau within which a controller counts as adapted."""
PLATEAU_SHARE = 0.10
"""The plateau is the mean reward of the last max(MA_WINDOW, 10% of the episodes) episodes."""
LOSS_TARGET = 0.01
"""The loss fraction of the second rule ("episodes until loss < 1%")."""
NOISE_SIGMAS = 3.0
"""The band is at least this many standard errors of a 10-episode average on the plateau."""

RULE_TEXT = (
    "**Episodes to adapt.** Let f be the failure episode and E the number of episodes of the run. The "
    f"plateau is the mean reward of the last P = max({MA_WINDOW}, ⌈{PLATEAU_SHARE:.0%} · E⌉) episodes. The controller "
    f"has adapted at the first episode k ≥ f such that the {MA_WINDOW}-episode moving average of the reward "
    f"stays within the band (below) around the plateau for every window of {MA_WINDOW} episodes lying "
    f"entirely at or after k (a trailing average MA_j over episodes j−{MA_WINDOW - 1}..j, for every j ≥ k+{MA_WINDOW - 1}); "
    "we report k − f. If no such k ≤ E − P exists, the controller has not adapted within the budget E − P − f "
    f"(shown as \"> budget\"). **Episodes until loss < {LOSS_TARGET:.0%}** is the same with the condition "
    f"\"the {MA_WINDOW}-episode moving average of the loss fraction is below {LOSS_TARGET:.0%}\". A controller can "
    "adapt quickly to a bad plateau (SPA, which never reacts, \"adapts\" at once to losing packets): read the "
    "plateau reward, loss fraction and sojourn time beside the episode counts. Near saturation rewards are noisy "
    "from episode to episode, and a 5% band alone would then be crossed by chance: the band is therefore "
    f"max({TOLERANCE:.0%} · |plateau|, {NOISE_SIGMAS:g} · SE) with SE = SD · √(1/{MA_WINDOW} + 1/P), the standard error "
    f"of a {MA_WINDOW}-episode average minus the plateau mean on a settled curve; SD is the episode-to-episode standard "
    "deviation of the plateau window's rewards, from successive differences (SD(diff)/√2, blind to a remaining "
    f"trend). *band/noise* is {TOLERANCE:.0%} · |plateau| / SE: below {NOISE_SIGMAS:g} the noise term set the band."
)
"""The adaptation rule, written once: docs, table2.md and `episodes_to_adapt` all use it."""

PAPER_TABLE2: dict[str, dict[str, float]] = {
    "b4": {"q-routing": 23, "mamrl-init": 25, "random-init": 800},
    "geant": {"q-routing": 35, "mamrl-init": 35, "random-init": 100},
    "att": {"q-routing": 29, "mamrl-init": 30, "random-init": 1000},
}
"""The paper's Table 2 (SPEC §4): episodes to adapt to a link failure, Q-routing / MAMRL / random."""


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
    from mamrl.sim.evaluate import evaluate_tables

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
        from mamrl.algorithms import make_policy

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
        from mamrl.algorithms import make_agent

        self.name = name
        self.bias = make_agent(name).cfg.bias_packets_per_hop

    def run_episodes(self, params: SimParams, seed: int, first_episode: int, num_episodes: int) -> dict[str, np.ndarray]:
        from mamrl.agents.backpressure import run_backpressure

        return run_backpressure(params, self.bias, seed, num_episodes, first_episode).per_episode()


class QRoutingController:
    """Q-routing learning online across all episodes; the Q table carries over the failure."""

    name = "q-routing"

    def __init__(self, settings: Mapping[str, Any] | None = None):
        from mamrl.agents.q_routing import QRouting, QRoutingConfig

        self.agent = QRouting(QRoutingConfig(**dict(settings or {})))

    def run_episodes(self, params: SimParams, seed: int, first_episode: int, num_episodes: int) -> dict[str, np.ndarray]:
        # QRouting.train plays episodes from its own counter on: point it at the driver's episode.
        self.agent.episodes_trained = int(first_episode)
        return self.agent.train(params, seed, num_episodes)


# ------------------------------------------------------------------------------ the schedule
@dataclass(frozen=True)
class Block:
    """Consecutive episodes a controller runs in one call, all with the same parameters."""

    first: int
    """Index of the first episode."""
    count: int
    """Number of episodes."""
    phase: str
    """`intact` (before the failure), `failure` (contains the failure episode) or `failed` (after it)."""


def episode_blocks(episodes: int, fail_episode: int, fail_tick: int, episodes_per_step: int) -> list[Block]:
    """The blocks of a run: steps of `episodes_per_step` episodes, cut at the failure episode;
    with `fail_tick > 0` the failure episode is a block of its own (its parameters differ)."""
    blocks: list[Block] = []

    def cut(start: int, end: int, phase: str) -> None:
        k = start
        while k < end:
            size = min(episodes_per_step, end - k)
            blocks.append(Block(k, size, phase))
            k += size

    cut(0, fail_episode, "intact")
    if fail_tick > 0:
        cut(fail_episode, fail_episode + 1, "failure")
        cut(fail_episode + 1, episodes, "failed")
    else:
        start = len(blocks)
        cut(fail_episode, episodes, "failed")
        blocks[start] = dataclasses.replace(blocks[start], phase="failure")
    return blocks


def block_params(intact: SimParams, link: int, block: Block, fail_episode: int, fail_tick: int) -> SimParams:
    """The `SimParams` of a block: intact before the failure episode; the link down from
    `fail_tick` in the failure episode, from tick 0 after it."""
    if block.first + block.count <= fail_episode:
        return intact
    tick = fail_tick if block.first == fail_episode else 0
    return intact.replace(failures=(LinkFailure(link, tick),))


def episode_phases(episodes: int, fail_episode: int) -> list[str]:
    """`intact` / `failure` / `failed` per episode."""
    return ["intact" if e < fail_episode else "failure" if e == fail_episode else "failed" for e in range(episodes)]


def run_schedule(
    controller: Controller,
    intact: SimParams,
    link: int,
    seed: int,
    *,
    episodes: int,
    fail_episode: int,
    fail_tick: int = 0,
    episodes_per_step: int = 5,
) -> dict[str, np.ndarray]:
    """Drive one controller through a run: per-episode arrays [episodes] of every metric in
    METRIC_INFO, plus `reset` (bool)."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in (*METRIC_INFO, "reset")}
    for block in episode_blocks(episodes, fail_episode, fail_tick, episodes_per_step):
        params = block_params(intact, link, block, fail_episode, fail_tick)
        metrics = controller.run_episodes(params, seed, block.first, block.count)
        missing = [k for k in METRIC_INFO if k not in metrics]
        if missing:
            raise MamrlError(f"controller {controller.name!r} returned no {', '.join(missing)}")
        for key in METRIC_INFO:
            values = np.asarray(metrics[key], dtype=np.float64)
            if values.shape != (block.count,):
                raise MamrlError(
                    f"controller {controller.name!r} returned {key} of shape {values.shape} for {block.count} episodes"
                )
            out[key].append(values)
        reset = np.asarray(metrics.get("reset", np.zeros(block.count, dtype=bool)), dtype=bool)
        if reset.shape != (block.count,):
            raise MamrlError(f"controller {controller.name!r} returned reset of shape {reset.shape} for {block.count} episodes")
        out["reset"].append(reset)
    return {k: np.concatenate(v) for k, v in out.items()}


# ------------------------------------------------------------------------------ the config
@dataclass(frozen=True)
class FailureExperimentConfig:
    """The link-failure experiment: one topology, test links × controllers × seeds, each an online run."""

    topology: str = "b4"
    """A built-in name (`b4`, `geant`, `att`) or a topology file/directory."""
    load: float = 0.3
    """λ, new packets per router per tick (paper: 0.3)."""
    horizon_ticks: int = 500
    """Episode length H in ticks (paper: 500)."""
    seeds: tuple[int, ...] = (0, 1)
    """Traffic seeds (integers >= 0); a run plays episodes 0 .. episodes-1 of its seed. Curves show seed bands."""
    failures: tuple[str, ...] = ()
    """Test links (`A-B` by router names, link names or ids); empty = the paper's three for a built-in."""
    held_out: tuple[str, ...] = ()
    """More test links, also never failed in meta-training (generalisation to unseen failures)."""
    fail_episode: int = 20
    """First episode with the link down (episodes before it run on the intact network)."""
    fail_tick: int = 0
    """Tick the link goes down in the failure episode (in later episodes it is down from tick 0)."""
    episodes: int = 200
    """Episodes per run in total (before and after the failure)."""
    episodes_per_step: int = 5
    """Episodes per controller call (one learning step of the deep controllers)."""
    controllers: tuple[str, ...] = DEFAULT_CONTROLLERS
    """Controllers: spa, spa-reconverge, q-routing, mamrl-init, continued, random-init."""
    loss_penalty_ticks: float = 0.0
    """Extra cost of a lost packet in the common reward, in ticks, on top of its age at the horizon
    (`common_reward`); 0 = the reward is minus the sojourn time of every packet."""
    reconvergence_delay_ticks: int = 50
    """spa-reconverge: ticks after the failure until the paths avoid the failed link."""
    q_routing: Mapping[str, Any] = field(default_factory=dict)
    """Q-routing hyper-parameters (`QRoutingConfig` fields); unnamed ones keep their defaults."""
    adaptation: Mapping[str, Any] = field(default_factory=dict)
    """Deep controllers' online adaptation settings (`AdaptationConfig` fields)."""
    maml: Mapping[str, Any] = field(default_factory=dict)
    """Meta-training settings (`MamlConfig` fields, including the policy's), used when no finished meta-training is found."""
    meta_iterations: int = 300
    """MAML-TRPO meta-iterations of the meta-training (the paper authors configured 300)."""
    meta_seed: int = 0
    """Seed of the meta-training's traffic and task draws."""
    meta_init: str | None = None
    """Meta-training directory to reuse (resumed if unfinished), or a maml `checkpoint.pt` used as
    it is; None = `<output>/meta`."""
    workers: int | None = None
    """Worker processes running (failure, controller, seed) runs in parallel; None = one per core. Never changes the results."""
    output: str = "runs/failures"
    """Output directory (curves.csv, table2.md/.csv, figures, config.json, run.json)."""

    # ------------------------------------------------------------------ derived values
    def topology_value(self):
        return _topology(self.topology)

    def test_links(self) -> list[tuple[str, int, bool]]:
        """(label `A-B`, link id, held out) of every test link, failures first, then held-out ones."""
        topo = self.topology_value()
        failures = self.failures or tuple(_paper_links(self.topology))
        out = [(link_label(topo, topo.link_id(s)), topo.link_id(s), False) for s in failures]
        out += [(link_label(topo, topo.link_id(s)), topo.link_id(s), True) for s in self.held_out]
        return out

    @property
    def deep(self) -> bool:
        """Whether any controller needs the meta-initialisation."""
        return any(c in DEEP_CONTROLLERS for c in self.controllers)

    def plateau_window(self) -> int:
        return plateau_window(self.episodes)

    def resolved(self) -> dict[str, Any]:
        """The result-determining config, JSON-ready: everything but `workers` and `output`, test
        links as `A-B`, and every used controller's full settings (defaults filled in)."""
        from mamrl.agents.q_routing import QRoutingConfig
        from mamrl.runs import jsonable

        topo = self.topology_value()
        links = self.test_links()
        resolved: dict[str, Any] = {
            "format": CONFIG_FORMAT,
            "topology": self.topology,
            "routers": topo.num_routers,
            "links": topo.num_links,
            "load": self.load,
            "horizon_ticks": self.horizon_ticks,
            "seeds": list(self.seeds),
            "failures": [label for label, _, held in links if not held],
            "held_out": [label for label, _, held in links if held],
            "fail_episode": self.fail_episode,
            "fail_tick": self.fail_tick,
            "episodes": self.episodes,
            "episodes_per_step": self.episodes_per_step,
            "controllers": list(self.controllers),
            "loss_penalty_ticks": self.loss_penalty_ticks,
        }
        if any(c.endswith("-reconverge") for c in self.controllers):
            resolved["reconvergence_delay_ticks"] = self.reconvergence_delay_ticks
        if "q-routing" in self.controllers:
            resolved["q_routing"] = dataclasses.asdict(QRoutingConfig(**dict(self.q_routing)))
        if self.deep:
            resolved["adaptation"] = _dataclass_values(adaptation_config(self.adaptation, self.episodes_per_step))
            resolved["maml"] = _dataclass_values(maml_config(self.maml, resolved["held_out"]))
            resolved["meta_iterations"] = self.meta_iterations
            resolved["meta_seed"] = self.meta_seed
            resolved["meta_init"] = self.meta_init
        return json.loads(json.dumps(jsonable(resolved), allow_nan=False))

    def config_hash(self) -> str:
        return config_hash(self.resolved())

    def effective_workers(self) -> int:
        return self.workers if self.workers is not None else available_cores()

    def runs(self) -> list["Run"]:
        """Every run in canonical order: test links, controllers, seeds."""
        return [
            Run(self.topology, label, controller, int(seed))
            for label, _, _ in self.test_links()
            for controller in self.controllers
            for seed in self.seeds
        ]

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("q_routing", "adaptation", "maml"):
            out[key] = dict(getattr(self, key))
        for key in ("seeds", "failures", "held_out", "controllers"):
            out[key] = list(out[key])
        return out


def _dataclass_values(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def adaptation_config(settings: Mapping[str, Any], episodes_per_step: int):
    """`AdaptationConfig` of the deep controllers from `settings` (lazy import). A deep controller
    takes one adaptation step per call, so its `episodes_per_step` is the driver's."""
    from mamrl.meta.adaptation import AdaptationConfig

    values = dict(settings)
    if values.get("episodes_per_step", episodes_per_step) != episodes_per_step:
        raise MamrlError(f"adaptation.episodes_per_step: set by the experiment's episodes_per_step ({episodes_per_step}), "
                         f"got {values['episodes_per_step']!r}")
    if "episodes_per_step" in {f.name for f in dataclasses.fields(AdaptationConfig)}:
        values["episodes_per_step"] = episodes_per_step
    return _build(AdaptationConfig, values, "adaptation")


def maml_config(settings: Mapping[str, Any], held_out: Sequence[str] = ()):
    """`MamlConfig` from `settings`, with the held-out test links added to its held-out links."""
    from mamrl.meta.maml import MamlConfig

    values = dict(settings)
    values["held_out"] = tuple(dict.fromkeys([*values.get("held_out", ()), *held_out]))
    return _build(MamlConfig, values, "maml")


def _build(cls: Any, settings: Mapping[str, Any], label: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise MamrlError(f"{label}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    try:
        return cls(**dict(settings))
    except MamrlError as exc:
        raise MamrlError(f"{label}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise MamrlError(f"{label}: {exc}") from None


@functools.lru_cache(maxsize=16)
def _topology(spec: str):
    from mamrl.topologies import load_topology

    return load_topology(spec)


def _paper_links(spec: str) -> list[str]:
    from mamrl.topologies import builtin_names, paper_failure_links

    if spec.lower() not in builtin_names():
        raise MamrlError(f"failures: topology {spec!r} is not a built-in, so it has no paper failures: name the test links")
    return paper_failure_links(spec.lower())


def plateau_window(episodes: int) -> int:
    """P = max(MA_WINDOW, ⌈PLATEAU_SHARE · episodes⌉)."""
    return max(MA_WINDOW, math.ceil(PLATEAU_SHARE * episodes - 1e-9))


# ------------------------------------------------------------------------------ presets and validation
PRESETS: dict[str, dict[str, Any]] = {
    # The classical controllers on b4's three paper failures: seconds. (Add the deep controllers
    # with a small `maml` budget once meta-training is cheap enough to be quick.)
    "quick": {
        "topology": "b4",
        "load": 0.3,
        "horizon_ticks": 500,
        "seeds": [0, 1],
        "fail_episode": 20,
        "episodes": 200,
        "episodes_per_step": 5,
        "controllers": list(CLASSICAL_CONTROLLERS),
        "output": "runs/failures-quick",
    },
    # The paper's E2 (§4.3): λ = 0.3, H = 500, every controller, 1000 episodes after the failure so
    # that random-init's slow adaptation (paper: 800-1000 episodes) is visible, 3 seeds.
    "paper": {
        "topology": "b4",
        "load": 0.3,
        "horizon_ticks": 500,
        "seeds": [0, 1, 2],
        "fail_episode": 20,
        "episodes": 1020,
        "episodes_per_step": 5,
        "controllers": list(DEFAULT_CONTROLLERS),
        "output": "runs/failures-paper",
    },
}
"""Named starting points; any field can be overridden by a config file or a flag."""

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FailureExperimentConfig))


def _number(value: Any, label: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MamrlError(f"{label}: expected a finite number, got {value!r}")
    if (value <= 0) if positive else (value < 0):
        raise MamrlError(f"{label}: must be {'>' if positive else '>='} 0, got {value!r}")
    return float(value)


def _str_list(value: Any, label: str, *, allow_empty: bool) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise MamrlError(f"{label}: expected a list, got {value!r}")
    if not value and not allow_empty:
        raise MamrlError(f"{label}: must not be empty")
    out = []
    for k, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (str, int)) or not str(item).strip():
            raise MamrlError(f"{label}[{k}]: expected a name, got {item!r}")
        text = str(item).strip()
        if text in out:
            raise MamrlError(f"{label}: {text!r} is listed twice")
        out.append(text)
    return tuple(out)


def _check_topology(value: Any, label: str) -> str:
    from mamrl.topologies import builtin_names

    if not isinstance(value, str) or not value.strip():
        raise MamrlError(f"{label}: expected a topology name or path, got {value!r}")
    name = value.strip()
    if name.lower() in builtin_names():
        return name.lower()
    try:
        _topology(name)
    except MamrlError as exc:
        raise MamrlError(f"{label}: {exc}") from None
    return name


def _check_controllers(value: Any, label: str) -> tuple[str, ...]:
    names = tuple(n.lower() for n in _str_list(value, label, allow_empty=False))
    for k, name in enumerate(names):
        if name not in CONTROLLER_NAMES:
            raise MamrlError(f"{label}[{k}]: unknown controller {name!r} (choose from {', '.join(CONTROLLER_NAMES)})")
    if len(set(names)) != len(names):
        raise MamrlError(f"{label}: a controller is listed twice")
    return names


def _check_settings(value: Any, label: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise MamrlError(f"{label}: expected a table of settings, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _check_optional_path(value: Any, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise MamrlError(f"{label}: expected a path, got {value!r}")
    return str(value)


def _check_output(value: Any, label: str) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise MamrlError(f"{label}: expected a directory name, got {value!r}")
    return str(value)


_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "topology": _check_topology,
    "load": lambda v, label: _number(v, label, positive=True),
    "horizon_ticks": lambda v, label: check_int(v, label, 1),
    "seeds": check_seeds,
    "failures": lambda v, label: _str_list(v, label, allow_empty=True),
    "held_out": lambda v, label: _str_list(v, label, allow_empty=True),
    "fail_episode": lambda v, label: check_int(v, label, 0),
    "fail_tick": lambda v, label: check_int(v, label, 0),
    "episodes": lambda v, label: check_int(v, label, 1),
    "episodes_per_step": lambda v, label: check_int(v, label, 1),
    "controllers": _check_controllers,
    "loss_penalty_ticks": lambda v, label: _number(v, label, positive=False),
    "reconvergence_delay_ticks": lambda v, label: check_int(v, label, 0),
    "q_routing": _check_settings,
    "adaptation": _check_settings,
    "maml": _check_settings,
    "meta_iterations": lambda v, label: check_int(v, label, 1),
    "meta_seed": lambda v, label: check_int(v, label, 0),
    "meta_init": _check_optional_path,
    "workers": lambda v, label: None if v is None else check_int(v, label, 1),
    "output": _check_output,
}


def check_fields(values: Mapping[str, Any], label: Callable[[str], str]) -> dict[str, Any]:
    """Validated, normalised values of the given fields; `label(field)` says where each came from."""
    return _check_fields(values, label, _CHECKS)


def validate(config: FailureExperimentConfig, label: Callable[[str], str] | None = None) -> FailureExperimentConfig:
    """Check every field and the relations between them (one-line `MamrlError`s naming the field)."""
    label = label or (lambda key: key)
    checked = check_fields({f: getattr(config, f) for f in FIELD_NAMES}, label)
    config = FailureExperimentConfig(**checked)
    topo = config.topology_value()
    if config.fail_episode >= config.episodes:
        raise MamrlError(
            f"{label('fail_episode')}: the failure episode ({config.fail_episode}) must come before the end of the run "
            f"({config.episodes} episodes)"
        )
    after = config.episodes - config.fail_episode
    if after <= config.plateau_window():
        raise MamrlError(
            f"{label('episodes')}: {after} episode(s) after the failure leave nothing before the plateau window of "
            f"{config.plateau_window()} episodes; raise the episodes or lower the failure episode"
        )
    if config.fail_tick >= config.horizon_ticks:
        raise MamrlError(f"{label('fail_tick')}: {config.fail_tick} is at or after the horizon ({config.horizon_ticks} ticks)")
    seen: dict[int, str] = {}
    for field_name in ("failures", "held_out"):
        specs = getattr(config, field_name) or (tuple(_paper_links(config.topology)) if field_name == "failures" else ())
        for spec in specs:
            try:
                link = topo.link_id(spec)
            except MamrlError as exc:
                raise MamrlError(f"{label(field_name)}: {exc}") from None
            if link in seen:
                raise MamrlError(f"{label(field_name)}: link {link_label(topo, link)} is listed twice (as {seen[link]!r} and {spec!r})")
            if topo.links[link].capacity <= 0:
                raise MamrlError(f"{label(field_name)}: link {link_label(topo, link)} has no capacity (already down)")
            seen[link] = spec
    if "q-routing" in config.controllers:
        from mamrl.agents.q_routing import QRouting, QRoutingConfig

        q_config = _build(QRoutingConfig, config.q_routing, label("q_routing"))
        try:
            QRouting(q_config)  # checks the ranges
        except MamrlError as exc:
            raise MamrlError(f"{label('q_routing')}: {exc}") from None
    if config.deep:
        try:
            config.resolved()  # builds AdaptationConfig and MamlConfig: bad settings fail here
        except ImportError as exc:
            raise MamrlError(f"controllers: the deep controllers need mamrl.meta ({exc})") from None
    return config


def build_failure_config(
    *,
    preset: str | None = None,
    file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_label: Callable[[str], str] | None = None,
) -> FailureExperimentConfig:
    """Defaults ← preset ← config file (TOML/JSON; may name `preset`) ← overrides, validated.
    Without a preset and a file, `quick` is the base."""
    values, source = layered_values(PRESETS, check_fields, preset=preset, file=file, overrides=overrides,
                                    override_label=override_label)
    return validate(FailureExperimentConfig(**values), source)


# ------------------------------------------------------------------------------ runs
@dataclass(frozen=True, order=True)
class Run:
    """One online run: a controller through all episodes of one seed, one test link failing."""

    topology: str
    failure: str
    controller: str
    seed: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.topology, self.failure, self.controller, self.seed)

    def __str__(self) -> str:
        return f"{self.topology} {self.failure} {self.controller} seed {self.seed}"


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs to compute a run (picklable)."""

    run: Run
    config: dict[str, Any]
    """The resolved config."""
    config_hash: str
    meta_init_file: str | None = None
    """`meta_init.pt` written by the driver (deep controllers only)."""


@dataclass
class RunResult:
    """A finished run's rows and wall time."""

    run: Run
    rows: list[dict[str, Any]]
    wall_s: float


KEY_COLUMNS: tuple[str, ...] = ("topology", "failure", "controller", "seed", "episode")
COLUMNS: tuple[str, ...] = (
    "config_hash",
    "topology",
    "failure",
    "held_out",
    "controller",
    "seed",
    "episode",
    "phase",
    "reset",
    "reward",
    *METRIC_INFO,
    "mamrl_version",
)
"""Header of curves.csv: one row per (topology, failure, controller, seed, episode)."""

_INT_COLUMNS = {"seed", "episode", "held_out", "reset"}
_STR_COLUMNS = {"config_hash", "topology", "failure", "controller", "phase", "mamrl_version"}


def intact_params(config: Mapping[str, Any]) -> SimParams:
    return SimParams(_topology(config["topology"]), config["load"], horizon_ticks=config["horizon_ticks"])


def load_meta_init(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Any]:
    """(meta-initialisation tensors, DeepConsensusConfig) from a `meta_init.pt`."""
    import torch

    from mamrl.agents.deep_consensus import DeepConsensusConfig

    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if payload.get("format") != META_INIT_FORMAT:
            raise ValueError("format")
        values = json.loads(payload["policy_config"])
    except Exception as exc:  # missing, corrupt or foreign: one line
        raise MamrlError(f"meta-initialisation {str(path)!r} is unreadable ({type(exc).__name__})") from None
    known = {f.name for f in dataclasses.fields(DeepConsensusConfig)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
    return dict(payload["params"]), DeepConsensusConfig(**values)


def make_controller(task: RunTask) -> Controller:
    """The controller of a task, freshly initialised."""
    cfg, name = task.config, task.run.controller
    if name in STATIC_CONTROLLERS:
        if name.endswith("-reconverge"):
            return ReconvergingController(name.removesuffix("-reconverge"), cfg["reconvergence_delay_ticks"])
        return StaticRoutingController(name)
    if name in QUEUE_CONTROLLERS:
        return BackpressureController(name)
    if name == "q-routing":
        return QRoutingController(cfg["q_routing"])
    if name in DEEP_CONTROLLERS:
        from mamrl.meta.adaptation import make_deep_controllers

        if task.meta_init_file is None:
            raise MamrlError(f"controller {name!r} needs a meta-initialisation")
        init, policy_config = load_meta_init(task.meta_init_file)
        adaptation = adaptation_config(cfg["adaptation"], cfg["episodes_per_step"])
        controllers = make_deep_controllers(init, _topology(cfg["topology"]), policy_config, adaptation, task.run.seed)
        for controller in controllers:
            if controller.name == name:
                return controller
        raise MamrlError(f"make_deep_controllers returned no controller named {name!r}")
    raise MamrlError(f"unknown controller {name!r}")


def run_failure_run(task: RunTask) -> RunResult:
    """Compute one run's curve rows (runs in a worker process)."""
    start = time.perf_counter()
    cfg, run = task.config, task.run
    intact = intact_params(cfg)
    topo = intact.topology
    link = topo.link_id(run.failure)
    with single_threaded():
        controller = make_controller(task)
        per_episode = run_schedule(
            controller, intact, link, run.seed, episodes=cfg["episodes"], fail_episode=cfg["fail_episode"],
            fail_tick=cfg["fail_tick"], episodes_per_step=cfg["episodes_per_step"],
        )
    reward = common_reward(per_episode, cfg["loss_penalty_ticks"])
    phases = episode_phases(cfg["episodes"], cfg["fail_episode"])
    held = run.failure in cfg["held_out"]
    rows = []
    for e in range(cfg["episodes"]):
        row: Row = {
            "config_hash": task.config_hash,
            "topology": run.topology,
            "failure": run.failure,
            "held_out": int(held),
            "controller": run.controller,
            "seed": run.seed,
            "episode": e,
            "phase": phases[e],
            "reset": int(bool(per_episode["reset"][e])),
            "reward": float(reward[e]),
        }
        for key in METRIC_INFO:
            row[key] = float(per_episode[key][e])
        row["mamrl_version"] = mamrl.__version__
        rows.append(row)
    return RunResult(run, rows, time.perf_counter() - start)


def run_cost(task: RunTask) -> float:
    """Relative cost, to start the longest runs first (results unaffected)."""
    weight = 100.0 if task.run.controller in DEEP_CONTROLLERS else 2.0 if task.run.controller == "q-routing" else 1.0
    return weight * task.config["episodes"] * task.config["horizon_ticks"]


# ------------------------------------------------------------------------------ executors
def describe_run(task: RunTask) -> str:
    """A task's name in error messages."""
    return f"run {task.run}"


def make_run_executor(workers: int | None, *, backend: str = "local", address: str | None = None) -> CellExecutor:
    """The sweep's executors running failure runs, longest first: locally in process for one
    worker, else a process pool; or on Ray (`backend="ray"`, see `make_backend_executor`)."""
    return make_backend_executor(backend, workers, address, run=run_failure_run, cost=run_cost, describe=describe_run)


# ------------------------------------------------------------------------------ curves.csv
SCHEMA = TableSchema(COLUMNS, frozenset(_INT_COLUMNS), frozenset(_STR_COLUMNS), "curves file")
"""curves.csv's columns and value types."""


def _refuse_old_header(path: Path, columns: Sequence[str]) -> None:
    if predates_loss_honest(columns):
        raise MamrlError(predates_loss_honest_message(path, "re-run the experiment into a new output directory to plot or extend it"))


def header_line() -> str:
    return SCHEMA.header()


def format_rows(rows: Iterable[Row]) -> str:
    return SCHEMA.format_rows(rows)


def read_curves(path: str | os.PathLike[str]) -> list[Row]:
    """The complete rows of a curves.csv (a trailing partial line is ignored)."""
    return read_table(path, SCHEMA, check_header=_refuse_old_header)


def run_key(row: Row) -> tuple[str, str, str, int]:
    return (row["topology"], row["failure"], row["controller"], int(row["seed"]))


def complete_runs(rows: Iterable[Row], episodes: int) -> dict[tuple, list[Row]]:
    """Rows grouped by run, keeping only runs with exactly episodes 0..episodes-1."""
    groups: dict[tuple, dict[int, Row]] = {}
    for row in rows:
        groups.setdefault(run_key(row), {})[int(row["episode"])] = row
    return {
        key: [by_episode[e] for e in range(episodes)]
        for key, by_episode in groups.items()
        if len(by_episode) == episodes and all(e in by_episode for e in range(episodes))
    }


class CurvesFile:
    """`curves.csv` of one output directory, with its `config.json` (`mamrl.runs.ResultsTable`):
    open (check or write the config, drop partial runs), append runs durably, rewrite in
    canonical order."""

    def __init__(self, output: str | os.PathLike[str], config: FailureExperimentConfig):
        self.output = Path(output)
        self.path = self.output / "curves.csv"
        self.config = config
        self.table = ResultsTable(self.path, SCHEMA, sidecar=self.output / "config.json", sidecar_format=CONFIG_FORMAT,
                                  resolved=config.resolved(), kind="failure-experiment",
                                  start_over="use a new output directory", check_header=_refuse_old_header)
        self.hash = self.table.hash
        self.runs: dict[tuple, list[Row]] = {}

    def open(self) -> None:
        if self.output.exists() and not self.output.is_dir():
            raise MamrlError(f"output {str(self.output)!r} exists and is not a directory")
        rows = self.table.open()
        self.runs = complete_runs(rows, self.config.episodes)
        if sum(len(v) for v in self.runs.values()) != len(rows):
            self._rewrite(list(self.runs.values()))  # drop partial runs (an interrupted write)

    def _rewrite(self, runs: Iterable[list[Row]]) -> None:
        self.table.rewrite(row for rows in runs for row in rows)

    def append(self, result: RunResult) -> None:
        """Append a run's rows in one write and make them durable before returning."""
        self.table.append(result.rows)
        self.runs.setdefault(result.run.key, result.rows)

    def ordered(self, order: Sequence[Run]) -> list[list[Row]]:
        rank = {r.key: k for k, r in enumerate(order)}
        return [self.runs[k] for k in sorted(self.runs, key=lambda k: rank.get(k, len(rank)))]

    def finalize(self, order: Sequence[Run]) -> None:
        """Rewrite the file with its runs in canonical order (atomically)."""
        self._rewrite(self.ordered(order))


# ------------------------------------------------------------------------------ the meta-initialisation
def prepare_meta_init(config: FailureExperimentConfig, output: Path, *,
                      on_chunk: Callable[[dict[str, Any]], None] | None = None, task_executor: Any = None) -> Path:
    """Meta-train (or resume / reuse a finished meta-training) and write `output/meta_init.pt`.
    `on_chunk(row)` is called after every meta-iteration (`mamrl train`'s curve row);
    `task_executor` runs the meta-iterations' tasks (`maml.maml_task_executor`; None: in process)."""
    import torch

    from mamrl import runs
    from mamrl.training import meta_train

    resolved = config.resolved()
    meta_dir = Path(config.meta_init) if config.meta_init is not None else output / "meta"
    if meta_dir.is_file():
        # A checkpoint file is used as it is (for example the last one of an unfinished meta-training).
        from mamrl.algorithms import make_agent
        from mamrl.agents.base import RoutingAgent

        meta, arrays = RoutingAgent.read_checkpoint(meta_dir)
        if meta["name"] != "maml":
            raise MamrlError(f"{meta_dir} is a {meta['name']} checkpoint, not a maml meta-initialisation")
        topo = _topology(config.topology)
        trained_without = {topo.link_id(spec) for spec in meta["config"].get("held_out", [])}
        missing = [spec for spec in resolved["held_out"] if topo.link_id(spec) not in trained_without]
        if missing:
            raise MamrlError(f"{meta_dir} was meta-trained with {', '.join(missing)} among its tasks; "
                             "a held-out test needs a meta-initialisation trained with it held out")
        learner = make_agent("maml", meta["config"])
        learner.load_state_arrays(arrays)
    else:
        learner = meta_train(config.topology, config.load, maml_config(config.maml, resolved["held_out"]), meta_dir,
                             seed=config.meta_seed, iterations=config.meta_iterations, horizon_ticks=config.horizon_ticks,
                             on_chunk=on_chunk, task_executor=task_executor)
    policy = learner.policy_config
    from mamrl.agents.deep_consensus import DeepConsensusConfig

    values = {f.name: getattr(policy, f.name) for f in dataclasses.fields(DeepConsensusConfig)}
    path = output / "meta_init.pt"
    payload = {
        "format": META_INIT_FORMAT,
        "params": {k: v.detach().cpu().clone() for k, v in learner.initial_params().items()},
        "policy_config": json.dumps(runs.jsonable(values)),
        "meta_dir": str(meta_dir),
    }
    with runs.atomic_file(path, "wb") as handle:
        torch.save(payload, handle)
    return path


# ------------------------------------------------------------------------------ the experiment
@dataclass
class FailureOutcome:
    """What a `run_failure_experiment` call did."""

    output: Path
    total_runs: int
    skipped: int
    ran: int
    wall_time_s: float
    complete: bool
    rows: list[Row] = field(default_factory=list)
    """Every row of curves.csv in canonical order."""


OnRun = Callable[[RunResult, int, int], None]
"""Called after each run is written with (result, runs finished incl. skipped, total runs)."""


def run_failure_experiment(
    config: FailureExperimentConfig,
    *,
    executor: Any = None,
    on_start: Callable[[int, int], None] | None = None,
    on_run: OnRun | None = None,
    stop_after: int | None = None,
    on_meta_chunk: Callable[[dict[str, Any]], None] | None = None,
    meta_executor: Any = None,
) -> FailureOutcome:
    """Run (or resume) the experiment into `config.output`: skip the runs already complete in
    curves.csv, compute the rest (meta-training first if a deep controller needs it), write
    run.json. `on_meta_chunk(row)` reports meta-training progress; `on_start(skipped, total)` is
    called once the meta-initialisation is ready, before the first run; `stop_after=k` stops
    after k new runs (a test hook for interruptions). `meta_executor` runs meta-training's tasks
    (`prepare_meta_init`)."""
    from mamrl import runs

    start = time.perf_counter()
    output = Path(config.output)
    curves = CurvesFile(output, config)
    curves.open()
    order = config.runs()
    todo = [r for r in order if r.key not in curves.runs]
    skipped = len(order) - len(todo)
    work = bool(todo) and (stop_after is None or stop_after > 0)
    meta_file = None
    if work and any(r.controller in DEEP_CONTROLLERS for r in todo):
        meta_file = str(prepare_meta_init(config, output, on_chunk=on_meta_chunk, task_executor=meta_executor))
    if on_start is not None:
        on_start(skipped, len(order))
    ran = 0
    walls: dict[str, float] = {}
    if work:
        tasks = [RunTask(r, curves.table.resolved, curves.hash, meta_file) for r in todo]
        own = executor is None
        if own:
            executor = make_run_executor(min(config.effective_workers(), len(tasks)))
        try:
            results = executor.map_cells(tasks)
            try:
                for result in results:
                    curves.append(result)
                    ran += 1
                    walls[str(result.run)] = round(result.wall_s, 3)
                    if on_run is not None:
                        on_run(result, skipped + ran, len(order))
                    if stop_after is not None and ran >= stop_after:
                        break
            finally:
                close = getattr(results, "close", None)
                if close is not None:
                    close()
        except BaseException:
            if own:
                executor.close(wait=False)
            raise
        if own:
            executor.close()
    curves.finalize(order)
    rows = [row for run_rows in curves.ordered(order) for row in run_rows]
    complete = all(r.key in curves.runs for r in order)
    wall = time.perf_counter() - start
    previous: dict[str, Any] = {}
    if (output / "run.json").is_file():
        try:
            previous = json.loads((output / "run.json").read_text(encoding="utf-8")).get("run_wall_s", {})
        except (OSError, ValueError, AttributeError):
            previous = {}
    runs.write_json(output / "run.json", {
        "config_hash": curves.hash,
        "seeds": list(config.seeds),
        **runs.provenance(),
        "wall_time_s": round(wall, 3),
        "workers": config.effective_workers(),
        "runs": {"total": len(order), "skipped": skipped, "ran": ran, "complete": complete},
        "run_wall_s": {**previous, **walls},
    })
    return FailureOutcome(output, len(order), skipped, ran, wall, complete, rows)


# ------------------------------------------------------------------------------ Table 2
def _window_means(values: np.ndarray, start: int, window: int) -> np.ndarray:
    """Means of values[s:s+window] for s = start .. len-window (NaN-ignoring; NaN if all NaN)."""
    values = np.asarray(values, dtype=np.float64)
    count = len(values) - window - start + 1
    if count <= 0:
        return np.empty(0)
    stacked = np.lib.stride_tricks.sliding_window_view(values[start:], window)
    finite = np.isfinite(stacked)
    sums = np.where(finite, stacked, 0.0).sum(axis=1)
    n = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, sums / np.maximum(n, 1), np.nan)


def _settled_from(ok: np.ndarray, start: int, last_start: int) -> int | None:
    """First k >= start with ok[s - start] for every window start s >= k, if k <= last_start."""
    bad = np.flatnonzero(~ok)
    k = start if bad.size == 0 else start + int(bad[-1]) + 1
    return k if k <= last_start else None


@dataclass(frozen=True)
class Adaptation:
    """The adaptation rule (`RULE_TEXT`) applied to one run."""

    episodes_to_adapt: int | None
    """k − f, or None: not adapted within the budget."""
    episodes_to_low_loss: int | None
    """The same for "loss below LOSS_TARGET", or None."""
    budget: int
    """E − P − f: the largest value either count can take."""
    plateau_reward: float
    """Mean reward of the last P episodes."""
    plateau_loss_fraction: float
    plateau_sojourn_time: float
    plateau_delivery_time: float
    pre_failure_reward: float
    """Mean reward of the MA_WINDOW episodes before the failure (NaN if there are none)."""
    band_to_noise: float
    """TOLERANCE·|plateau| divided by the standard deviation a MA_WINDOW-episode average of
    independent episodes would have, estimated from the plateau window (SD/√MA_WINDOW). Below
    about 2, chance alone takes moving averages out of the band: the count measures noise."""


def plateau_noise(rewards: np.ndarray) -> float:
    """Standard error of (a MA_WINDOW-episode average - the plateau mean) on a settled curve:
    SD * sqrt(1/MA_WINDOW + 1/P) for the P plateau episodes `rewards`, with their
    episode-to-episode SD estimated from successive differences (SD(diff) / sqrt 2) so that a
    curve still trending in the window does not count its trend as noise."""
    values = np.asarray(rewards, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 3:
        return float("nan")
    sd = float(np.diff(values).std(ddof=1)) / math.sqrt(2)
    return sd * math.sqrt(1 / MA_WINDOW + 1 / values.size)


def episodes_to_adapt(reward: np.ndarray, fail_episode: int) -> tuple[int | None, float, int]:
    """(k − f or None, plateau, budget) of a reward curve under `RULE_TEXT`."""
    reward = np.asarray(reward, dtype=np.float64)
    n = len(reward)
    window = plateau_window(n)
    plateau = float(np.nanmean(reward[n - window:])) if np.isfinite(reward[n - window:]).any() else float("nan")
    budget = n - window - fail_episode
    means = _window_means(reward, fail_episode, MA_WINDOW)
    if not math.isfinite(plateau) or budget < 0:
        return None, plateau, budget
    noise = plateau_noise(reward[n - window:])
    band = max(TOLERANCE * abs(plateau), NOISE_SIGMAS * (noise if math.isfinite(noise) else 0.0))
    ok = np.isfinite(means) & (np.abs(means - plateau) <= band)
    k = _settled_from(ok, fail_episode, n - window)
    return (None if k is None else k - fail_episode), plateau, budget


def episodes_to_low_loss(loss: np.ndarray, fail_episode: int, threshold: float = LOSS_TARGET) -> int | None:
    """k − f for "the MA_WINDOW-episode moving average of the loss fraction stays below
    `threshold`", with the same budget as `episodes_to_adapt`; None if not within it."""
    loss = np.asarray(loss, dtype=np.float64)
    n = len(loss)
    means = _window_means(loss, fail_episode, MA_WINDOW)
    ok = np.isfinite(means) & (means < threshold)
    k = _settled_from(ok, fail_episode, n - plateau_window(n))
    return None if k is None else k - fail_episode


def analyse_run(rows: Sequence[Row]) -> Adaptation:
    """The adaptation rule on one run's rows (episodes in order)."""
    rows = sorted(rows, key=lambda r: int(r["episode"]))
    f = next((int(r["episode"]) for r in rows if r["phase"] != "intact"), len(rows))
    reward = np.array([r["reward"] for r in rows], dtype=np.float64)
    adapt, plateau, budget = episodes_to_adapt(reward, f)
    loss = np.array([r["loss_fraction"] for r in rows], dtype=np.float64)
    tail = rows[len(rows) - plateau_window(len(rows)):]

    def tail_mean(key: str) -> float:
        values = np.array([r[key] for r in tail], dtype=np.float64)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    before = reward[max(0, f - MA_WINDOW):f]
    noise = plateau_noise(reward[len(rows) - len(tail):])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.float64(TOLERANCE * abs(plateau)) / noise) if math.isfinite(noise) else float("nan")
    return Adaptation(
        adapt, episodes_to_low_loss(loss, f), budget, plateau, tail_mean("loss_fraction"),
        tail_mean("mean_sojourn_time"), tail_mean("mean_delivery_time"),
        float(np.nanmean(before)) if np.isfinite(before).any() else float("nan"), ratio,
    )


@dataclass(frozen=True)
class TableRow:
    """Table 2 for one (topology, failure, controller), over seeds (mean ± 95% CI)."""

    topology: str
    failure: str
    held_out: bool
    controller: str
    seeds: tuple[int, ...]
    per_seed: tuple[Adaptation, ...]
    episodes_to_adapt: Estimate
    """Over the seeds that adapted within the budget."""
    adapted_seeds: int
    episodes_to_low_loss: Estimate
    low_loss_seeds: int
    budget: int
    plateau_reward: Estimate
    plateau_loss_fraction: Estimate
    plateau_sojourn_time: Estimate
    plateau_delivery_time: Estimate
    pre_failure_reward: Estimate
    band_to_noise: Estimate
    paper: float | None
    """The paper's Table 2 figure for this topology and controller, if it has one."""


def table2(rows: Iterable[Row]) -> list[TableRow]:
    """Table 2 rows from curves rows, in first-seen order of failures and controllers."""
    runs: dict[tuple, list[Row]] = {}
    for row in rows:
        runs.setdefault(run_key(row), []).append(row)
    groups: dict[tuple[str, str, str], list[tuple[int, Adaptation, bool]]] = {}
    for (topo, failure, controller, seed), members in runs.items():
        groups.setdefault((topo, failure, controller), []).append((seed, analyse_run(members), bool(members[0]["held_out"])))
    out = []
    for (topo, failure, controller), members in groups.items():
        members.sort(key=lambda m: m[0])
        per = [m[1] for m in members]

        def est(attr: str) -> Estimate:
            return estimate(np.array([getattr(a, attr) for a in per], dtype=np.float64))

        adapted = np.array([a.episodes_to_adapt for a in per if a.episodes_to_adapt is not None], dtype=np.float64)
        low = np.array([a.episodes_to_low_loss for a in per if a.episodes_to_low_loss is not None], dtype=np.float64)
        out.append(TableRow(
            topo, failure, members[0][2], controller, tuple(m[0] for m in members), tuple(per),
            estimate(adapted), len(adapted), estimate(low), len(low), min(a.budget for a in per),
            est("plateau_reward"), est("plateau_loss_fraction"), est("plateau_sojourn_time"),
            est("plateau_delivery_time"), est("pre_failure_reward"), est("band_to_noise"),
            PAPER_TABLE2.get(topo.lower(), {}).get(controller),
        ))
    return out


__all__ = [
    "CLASSICAL_CONTROLLERS",
    "COLUMNS",
    "CONTROLLER_NAMES",
    "DEEP_CONTROLLERS",
    "DEFAULT_CONTROLLERS",
    "QUEUE_CONTROLLERS",
    "STATIC_CONTROLLERS",
    "LOSS_TARGET",
    "MA_WINDOW",
    "PAPER_TABLE2",
    "PRESETS",
    "RULE_TEXT",
    "TOLERANCE",
    "Adaptation",
    "Block",
    "Controller",
    "CurvesFile",
    "FailureExperimentConfig",
    "FailureOutcome",
    "BackpressureController",
    "QRoutingController",
    "ReconvergingController",
    "Run",
    "RunResult",
    "RunTask",
    "StaticRoutingController",
    "TableRow",
    "analyse_run",
    "block_params",
    "build_failure_config",
    "common_reward",
    "episode_blocks",
    "episodes_to_adapt",
    "episodes_to_low_loss",
    "load_meta_init",
    "make_run_executor",
    "plateau_window",
    "prepare_meta_init",
    "read_curves",
    "run_failure_experiment",
    "run_failure_run",
    "run_schedule",
    "table2",
    "validate",
]
