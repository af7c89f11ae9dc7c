"""Saturation: the highest load at which a routing algorithm keeps queues bounded.

Under the model of docs/model.md a router forwards one packet per tick, so every algorithm has a load
past which queues grow without bound; the paper's sweep to λ = 0.5 is mostly past it. Over a
finite horizon "unbounded" has to be read off the trend of the packets not yet delivered.

The rule
--------
`backlog_growth` is, per episode, the least-squares slope of the packets *not delivered*
(generated − delivered = queued + in flight + lost so far) over the second half of the horizon, in
packets per tick. Lost packets count: a policy that keeps its queues short by dropping packets
is not keeping up with the offered load, and must not be called bounded. Over the evaluation episodes
(all seeds pooled) take its mean g and the half-width c of its 95% confidence interval, and the
threshold

    θ = max(1% of the offered load λ·N, 2 / H)      packets per tick

(N routers, H ticks; 2/H = one packet gained over the second half of the horizon, a floor for
very low loads where 1% of λ·N is far below what a 500-tick episode can resolve). Then

* **bounded**       if g + c < θ (the backlog provably grows by less than 1% of the offered load),
* **growing**       if g − c > θ (provably more: the network is past saturation),
* **undetermined**  otherwise (too close to call with this horizon and number of episodes).

For a sweep, an algorithm's queues are *bounded up to* the highest swept load λ_b that is bounded
with no lower swept load growing (bounded queues at λ_b imply bounded queues below it; an
undetermined lower load is a noisy one), and *growing from* the lowest swept load that is growing;
its saturation load lies between. `saturation_search` narrows that bracket by bisection, doubling the
evaluation episodes when a probe is undetermined.

A finite horizon also sees a transient: just below saturation queues take long to fill, so the
second half of a short episode can still show growth. Longer horizons sharpen the answer
(`mamrl saturation` uses 2,000 ticks by default).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from mamrl import runs
from mamrl.algorithms import BELOW_CAPACITY_ONLY, canonical_name, make_agent
from mamrl.errors import MamrlError
from mamrl.experiments.checkpoint import load_agent
from mamrl.experiments.config import check_positive, check_seeds, parse_number, split_list
from mamrl.experiments.sweep import eval_seed
from mamrl.sim.capacity import capacity_bound
from mamrl.sim.metrics import Estimate, estimate
from mamrl.sim.memory import agent_parts, check_memory
from mamrl.sim.params import SimParams, check_horizon
from mamrl.topologies import load_topology

BOUNDED, GROWING, UNDETERMINED = "bounded", "growing", "undetermined"
ABOVE_CAPACITY = "above λ*"
"""A probe of an oracle (`max-throughput`, `min-delay`) at λ >= λ*: it does not exist there, and no
routing keeps queues bounded (counts as not bounded)."""

RELATIVE_THRESHOLD = 0.01
"""θ is at least this share of the offered load λ·N."""
FLOOR_PACKETS = 1.0
"""... and at least this many packets gained over the second half of the horizon."""

RULE_TEXT = (
    "Queues are *bounded* at a load λ if the upper end of the 95% CI of the mean backlog growth "
    "(least-squares slope of the packets not delivered — queued, in flight or lost — over the second half of the "
    "horizon, all evaluation episodes of all seeds pooled) is below θ = max(1% of the offered load λ·N, 2/H) packets/tick; *growing* "
    "if the lower end is above θ; otherwise *undetermined*. \"Bounded up to\" is the highest swept load "
    "that is bounded with no lower swept load growing; \"growing from\" the lowest swept load that is growing."
)


def growth_threshold(load: float, routers: int, horizon_ticks: int) -> float:
    """θ in packets per tick."""
    return max(RELATIVE_THRESHOLD * load * routers, 2.0 * FLOOR_PACKETS / horizon_ticks)


def classify(growth: Estimate, load: float, routers: int, horizon_ticks: int) -> str:
    """`bounded`, `growing` or `undetermined` from the pooled backlog-growth estimate."""
    if growth.n == 0 or math.isnan(growth.mean):
        return UNDETERMINED
    theta = growth_threshold(load, routers, horizon_ticks)
    half = growth.ci95 if growth.n >= 2 and math.isfinite(growth.ci95) else math.inf
    if growth.mean + half < theta:
        return BOUNDED
    if growth.mean - half > theta:
        return GROWING
    return UNDETERMINED


@dataclass(frozen=True)
class SaturationSummary:
    """Saturation of one (topology, algorithm) read off a sweep."""

    topology: str
    algorithm: str
    status: dict[float, str]
    """Classification of each swept load."""
    bounded_up_to: float | None
    """Highest swept load that is bounded with no lower load growing (None: no such load)."""
    growing_from: float | None
    """Lowest swept load whose queues provably grow (None: none does)."""

    @property
    def undetermined(self) -> list[float]:
        return [lam for lam, s in sorted(self.status.items()) if s == UNDETERMINED]

    def describe(self) -> str:
        """e.g. `bounded up to λ=0.1, growing from λ=0.2`."""
        parts = []
        if self.bounded_up_to is None:
            parts.append("not shown bounded at any swept load")
        else:
            parts.append(f"bounded up to λ={self.bounded_up_to:g}")
        if self.growing_from is None:
            parts.append("not provably growing at any swept load")
        else:
            parts.append(f"growing from λ={self.growing_from:g}")
        return ", ".join(parts)


def summarise_saturation(points: Iterable[Any]) -> list[SaturationSummary]:
    """One summary per (topology, algorithm) from `mamrl.experiments.sweep.aggregate` points."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for p in points:
        groups.setdefault((p.topology, p.algorithm), []).append(p)
    out = []
    for (topo, algo), members in groups.items():
        members = sorted(members, key=lambda p: p.load)
        status = {p.load: classify(p.metrics["backlog_growth"], p.load, p.routers, p.horizon_ticks) for p in members}
        bounded_up_to = None
        for p in members:
            if status[p.load] == GROWING:
                break
            if status[p.load] == BOUNDED:
                bounded_up_to = p.load
        growing = [p.load for p in members if status[p.load] == GROWING]
        out.append(SaturationSummary(topo, algo, status, bounded_up_to, growing[0] if growing else None))
    return out


SATURATION_COLUMNS = ("topology", "algorithm", "bounded up to λ", "growing from λ", "undetermined at λ")


def saturation_rows(points: Iterable[Any]) -> list[tuple[str, ...]]:
    """The saturation summary of a sweep's aggregated points (`sweep.aggregate`), as table rows."""
    return [(s.topology, s.algorithm, "none" if s.bounded_up_to is None else f"{s.bounded_up_to:g}",
             "none" if s.growing_from is None else f"{s.growing_from:g}", ", ".join(f"{x:g}" for x in s.undetermined) or "-")
            for s in summarise_saturation(points)]


# ------------------------------------------------------------------------------ bisection search
@dataclass(frozen=True)
class Probe:
    """One evaluated load of a saturation search."""

    load: float
    status: str
    growth: Estimate
    threshold: float
    episodes: int
    """Evaluation episodes per seed behind the estimate."""
    delivered_fraction: Estimate


@dataclass
class SearchResult:
    """Outcome of `saturation_search`."""

    topology: str
    algorithm: str
    horizon_ticks: int
    seeds: tuple[int, ...]
    bounded_load: float | None
    """Highest probed load with bounded queues (None: the low end was not bounded)."""
    unbounded_load: float | None
    """Lowest probed load above `bounded_load` not shown bounded (None: the high end was bounded)."""
    probes: list[Probe] = field(default_factory=list)
    max_load: float = math.nan
    """λ*, the capacity limit of the topology (`mamrl.sim.capacity`): no routing is bounded above it."""

    def share(self, load: float | None) -> float:
        """`load` as a share of λ* (NaN if either is unknown)."""
        return load / self.max_load if load is not None and self.max_load > 0 else math.nan

    def describe(self) -> str:
        who = f"{self.algorithm} on {self.topology}"
        of = (lambda load: f" ({100 * self.share(load):.0f}% of λ* = {self.max_load:.4g})") if self.max_load > 0 else (lambda load: "")
        if self.bounded_load is None:
            return f"{who}: queues not bounded even at λ={self.unbounded_load:g}{of(self.unbounded_load)} (the low end)"
        if self.unbounded_load is None:
            return f"{who}: queues bounded up to λ={self.bounded_load:g}{of(self.bounded_load)} (the high end) at least"
        last = next((p for p in reversed(self.probes) if p.load == self.unbounded_load), None)
        how = ("growing" if last is None or last.status == GROWING
               else "above λ*" if last.status == ABOVE_CAPACITY else "not shown bounded")
        return (
            f"{who}: saturation between λ={self.bounded_load:.4g} (bounded) and λ={self.unbounded_load:.4g} ({how}), "
            f"i.e. {100 * self.share(self.bounded_load):.1f}–{100 * self.share(self.unbounded_load):.1f}% of "
            f"λ* = {self.max_load:.4g}, horizon {self.horizon_ticks} ticks"
            if self.max_load > 0 else
            f"{who}: saturation between λ={self.bounded_load:.4g} (bounded) and λ={self.unbounded_load:.4g} ({how}), "
            f"horizon {self.horizon_ticks} ticks"
        )

    def probe_rows(self) -> list[tuple[str, ...]]:
        """The probes as table rows (`PROBE_COLUMNS`), by load."""
        rows = []
        for p in sorted(self.probes, key=lambda p: p.load):
            measured = p.growth.n > 0
            rows.append((f"{p.load:.4g}", f"{self.share(p.load):.3f}", p.status,
                         f"{p.growth.mean:+.4f} ± {p.growth.ci95:.4f}" if measured else "-", f"{p.threshold:.4f}",
                         f"{100 * p.delivered_fraction.mean:.1f}%" if measured else "-", str(p.episodes)))
        return rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "algorithm": self.algorithm,
            "horizon_ticks": self.horizon_ticks,
            "seeds": list(self.seeds),
            "max_load": self.max_load,
            "bounded_load": self.bounded_load,
            "unbounded_load": self.unbounded_load,
            "bounded_share_of_max_load": None if self.bounded_load is None else self.share(self.bounded_load),
            "unbounded_share_of_max_load": None if self.unbounded_load is None else self.share(self.unbounded_load),
            "rule": RULE_TEXT,
            "probes": [
                {
                    "load": p.load,
                    "status": p.status,
                    "backlog_growth": p.growth,
                    "threshold": p.threshold,
                    "episodes_per_seed": p.episodes,
                    "delivered_fraction": p.delivered_fraction,
                }
                for p in self.probes
            ],
        }


AgentFactory = Callable[[Any, int], Any]
"""(SimParams, seed) -> a RoutingAgent ready to evaluate (trained, loaded or table-driven)."""


def trained_agent_factory(algorithm: str, config: dict[str, Any] | None, train_episodes: int, train_horizon: int) -> AgentFactory:
    """A fresh agent per probe, trained at the probed load on seed `seed` with `train_episodes`
    episodes of `train_horizon` ticks (as a sweep cell would be); no training for spa/random."""
    def factory(params: Any, seed: int) -> Any:
        agent = make_agent(algorithm, config)
        if agent.learns:
            agent.train(params.replace(horizon_ticks=train_horizon), seed, train_episodes)
        return agent

    return factory


def checkpoint_agent_factory(path: str) -> tuple[str, AgentFactory]:
    """(algorithm name, factory) evaluating one saved agent at every probed load, no training."""
    loaded = load_agent(path)  # fails now, not at the first probe

    def factory(params: Any, seed: int) -> Any:
        return copy.deepcopy(loaded.agent)

    return loaded.name, factory


def saturation_search(
    topology: Any,
    algorithm: str,
    factory: AgentFactory,
    *,
    low: float = 0.01,
    high: float = 0.5,
    tolerance: float = 0.005,
    horizon_ticks: int = 2000,
    episodes: int = 10,
    max_episodes: int = 80,
    seeds: Sequence[int] = (0,),
    on_probe: Callable[[Probe], None] | None = None,
) -> SearchResult:
    """Bisect the load between `low` and `high` for the saturation point of an algorithm.

    Each probe builds agents with `factory(params, seed)` per seed, evaluates them on the
    evaluation seeds of the sweep (seed + 1,000,003, common random numbers across loads and
    algorithms) and classifies the pooled backlog growth (`classify`). An undetermined probe is
    re-evaluated with twice the episodes, up to `max_episodes`; if still undetermined it counts as
    "not shown bounded" (the bracket's upper end). Stops when the bracket is narrower than
    `tolerance`.
    """
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 or high <= low:
        raise MamrlError(f"saturation search needs 0 < low < high, got low={low}, high={high}")
    if tolerance <= 0:
        raise MamrlError(f"tolerance must be > 0, got {tolerance}")
    if episodes < 2 or max_episodes < episodes:
        raise MamrlError(f"need 2 <= episodes <= max_episodes, got {episodes} and {max_episodes}")
    if horizon_ticks < 4:
        raise MamrlError(f"horizon must be >= 4 ticks to measure a trend, got {horizon_ticks}")
    if not seeds:
        raise MamrlError("saturation search needs at least one seed")
    result = SearchResult(topology.name, algorithm, horizon_ticks, tuple(seeds), None, None,
                          max_load=capacity_bound(topology, find_binding=False).max_load)

    def probe(load: float) -> Probe:
        params = SimParams(topology, load, horizon_ticks=horizon_ticks)
        if algorithm in BELOW_CAPACITY_ONLY and load >= result.max_load:
            # The oracle does not exist here (InfeasibleLoadError); no routing is bounded at λ >= λ*.
            nan = Estimate(math.nan, math.nan, 0)
            p = Probe(load, ABOVE_CAPACITY, nan, growth_threshold(load, topology.num_routers, horizon_ticks), 0, nan)
            result.probes.append(p)
            if on_probe is not None:
                on_probe(p)
            return p
        agents = [factory(params, s) for s in seeds]
        n = episodes
        while True:
            growth, delivered = [], []
            for s, agent in zip(seeds, agents):
                m = agent.evaluate(params, eval_seed(s), n)
                growth.append(m["backlog_growth"])
                delivered.append(m["delivered_fraction"])
            g = estimate(np.concatenate(growth))
            status = classify(g, load, topology.num_routers, horizon_ticks)
            if status != UNDETERMINED or n >= max_episodes:
                break
            n = min(2 * n, max_episodes)
        p = Probe(load, status, g, growth_threshold(load, topology.num_routers, horizon_ticks), n,
                  estimate(np.concatenate(delivered)))
        result.probes.append(p)
        if on_probe is not None:
            on_probe(p)
        return p

    if probe(low).status != BOUNDED:
        result.unbounded_load = low
        return result
    if probe(high).status == BOUNDED:
        result.bounded_load = high
        return result
    lo, hi = low, high
    while hi - lo > tolerance:
        mid = round((lo + hi) / 2, 10)
        if probe(mid).status == BOUNDED:
            lo = mid
        else:
            hi = mid
    result.bounded_load, result.unbounded_load = lo, hi
    return result


PROBE_COLUMNS = ("λ", "λ/λ*", "queues", "backlog growth (packets/tick)", "threshold θ", "delivered", "episodes/seed")


@dataclass(frozen=True)
class SaturationRequest:
    """A saturation search as `mamrl saturation` states it (validated by `run_saturation_request`)."""

    topology: str = "b4"
    """A built-in topology or a topology file/directory."""
    algorithm: str = "spa"
    """The algorithm, trained at each probed load if it learns."""
    checkpoint: str | None = None
    """A saved agent evaluated at every load instead (no training)."""
    low: str = "0.01"
    """Lower end of the search (must be bounded)."""
    high: str = "0.5"
    """Upper end of the search."""
    tolerance: str = "0.005"
    """Stop when the bracket is this narrow."""
    horizon_ticks: int = 2000
    """Evaluation episode length (longer = sharper)."""
    episodes: int = 10
    """Evaluation episodes per seed and probe."""
    max_episodes: int = 80
    """Doubling limit for undetermined probes."""
    seeds: str = "0"
    """Comma-separated seeds, pooled."""
    train_episodes: int | None = None
    """Training episodes per probe (learning algorithms only; default 2000)."""
    train_horizon_ticks: int | None = None
    """Training episode length (learning algorithms only; default 500 ticks)."""
    algorithm_config: str | None = None
    """Hyper-parameters as a JSON object."""


DEFAULT_TRAIN_EPISODES = 2000
"""Training episodes per probe of a learning algorithm when none are given."""
DEFAULT_TRAIN_HORIZON_TICKS = 500
"""Training episode length of a learning algorithm when none is given."""

SATURATION_OPTIONS = {"load": "--high", "horizon": "--horizon / --train-horizon", "batch": "the episodes per update",
                      "episodes": "--max-episodes / --train-episodes", "routers": "the topology's routers",
                      "latency": "the topology's link latencies"}
"""The options of `mamrl saturation` that set what `memory.check_memory` measures."""


def run_saturation_request(request: SaturationRequest, *, on_start: Callable[[str], None] | None = None,
                           on_probe: Callable[[str], None] | None = None, json_out: str | None = None) -> SearchResult:
    """Validate the request, run the search (`on_start(line)`, then `on_probe(line)` per probe) and
    write `json_out` if given."""
    r = request
    agent = None
    stated_training = [option for value, option in ((r.train_episodes, "--train-episodes"), (r.train_horizon_ticks, "--train-horizon"))
                       if value is not None]
    r = replace(r, train_episodes=DEFAULT_TRAIN_EPISODES if r.train_episodes is None else r.train_episodes,
                train_horizon_ticks=DEFAULT_TRAIN_HORIZON_TICKS if r.train_horizon_ticks is None else r.train_horizon_ticks)
    for value, option in ((r.horizon_ticks, "--horizon"), (r.episodes, "--episodes"), (r.max_episodes, "--max-episodes"),
                          (r.train_episodes, "--train-episodes"), (r.train_horizon_ticks, "--train-horizon")):
        check_positive(value, option)
    check_horizon(r.horizon_ticks, "--horizon")
    check_horizon(r.train_horizon_ticks, "--train-horizon")
    if stated_training and r.checkpoint is not None:
        raise MamrlError(f"{' and '.join(stated_training)} {'does' if len(stated_training) == 1 else 'do'} not apply with "
                         "--checkpoint (a saved agent is evaluated, not trained)")
    if r.episodes < 2:
        raise MamrlError(f"--episodes must be >= 2 (a confidence interval needs two), got {r.episodes}")
    if r.max_episodes < r.episodes:
        raise MamrlError(f"--max-episodes must be >= --episodes ({r.episodes}), got {r.max_episodes}")
    if r.horizon_ticks < 4:
        raise MamrlError(f"--horizon must be >= 4 ticks to measure a trend, got {r.horizon_ticks}")
    low, high, tolerance = (parse_number(v, o) for v, o in ((r.low, "--low"), (r.high, "--high"), (r.tolerance, "--tolerance")))
    if high <= low:
        raise MamrlError(f"--high ({high:g}) must be above --low ({low:g})")
    seeds = check_seeds(split_list(r.seeds, "--seeds", "int"), "--seeds")
    topology = load_topology(r.topology)
    agent = None
    if r.checkpoint is not None:
        if r.algorithm_config is not None:
            raise MamrlError("--algorithm-config does not apply with --checkpoint (the checkpoint holds its config)")
        name, factory = checkpoint_agent_factory(r.checkpoint)
    else:
        try:
            name = canonical_name(r.algorithm)
        except MamrlError as exc:
            raise MamrlError(f"--algorithm: {exc}") from None
        settings: dict[str, Any] = {}
        if r.algorithm_config is not None:
            try:
                settings = json.loads(r.algorithm_config)
            except (ValueError, RecursionError) as exc:
                raise MamrlError(f"--algorithm-config is not valid JSON: {str(exc)[:200]}") from None
            if not isinstance(settings, dict):
                raise MamrlError("--algorithm-config must be a JSON object of hyper-parameters")
        try:
            agent = make_agent(name, settings)  # validate now
        except MamrlError as exc:
            raise MamrlError(f"--algorithm-config: {exc}") from None
        factory = trained_agent_factory(name, settings, r.train_episodes, r.train_horizon_ticks)
    # The largest probe: `high`, doubled up to `max_episodes` per seed, after training at `high`.
    trains = r.checkpoint is None and agent.learns
    if stated_training and r.checkpoint is None and not trains:
        raise MamrlError(f"{' and '.join(stated_training)} {'applies' if len(stated_training) == 1 else 'apply'} to learning "
                         f"algorithms (q-routing, pg, mamrl), not {name}, which is not trained")
    train_at_once = min(int(getattr(agent, "episodes_per_update", 32)), r.train_episodes) if trains else 0
    check_memory(agent_parts(SimParams(topology, high, horizon_ticks=r.train_horizon_ticks), agent,
                             train_episodes_at_once=train_at_once, eval_params=SimParams(topology, high, horizon_ticks=r.horizon_ticks),
                             eval_episodes_at_once=min(32, r.max_episodes), episodes_kept=r.max_episodes + (r.train_episodes if trains else 0)),
                 options=SATURATION_OPTIONS, what="the probe at --high")
    if on_start is not None:
        on_start(f"saturation search: {name} on {topology.name}, λ in [{low:g}, {high:g}], horizon {r.horizon_ticks} ticks, "
                 f"{r.episodes} episodes × {len(seeds)} seed(s) per probe")

    def report(p: Probe) -> None:
        if on_probe is None:
            return
        if p.growth.n == 0:
            on_probe(f"λ={p.load:.4g}: {p.status} (not run: {name} exists only below the capacity limit)")
        else:
            on_probe(f"λ={p.load:.4g}: {p.status} (growth {p.growth.mean:+.4f} ± {p.growth.ci95:.4f} vs θ {p.threshold:.4f} "
                     f"packets/tick, {p.episodes} episodes/seed)")

    result = saturation_search(topology, name, factory, low=low, high=high, tolerance=tolerance, horizon_ticks=r.horizon_ticks,
                               episodes=r.episodes, max_episodes=r.max_episodes, seeds=seeds, on_probe=report)
    if json_out is not None:
        runs.write_json(json_out, {**result.as_dict(), "checkpoint": r.checkpoint,
                                   "train_episodes": None if r.checkpoint is not None else r.train_episodes, **runs.provenance()})
    return result


__all__ = [
    "PROBE_COLUMNS",
    "SaturationRequest",
    "run_saturation_request",
    "SATURATION_COLUMNS",
    "saturation_rows",
    "ABOVE_CAPACITY",
    "BOUNDED",
    "GROWING",
    "RULE_TEXT",
    "UNDETERMINED",
    "Probe",
    "SaturationSummary",
    "SearchResult",
    "checkpoint_agent_factory",
    "classify",
    "growth_threshold",
    "saturation_search",
    "summarise_saturation",
    "trained_agent_factory",
]
