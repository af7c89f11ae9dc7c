"""The task distribution eta(M) of meta-training (paper §2.3, docs/model.md).

A task is a failure scenario: a set of failed links and the tick they go down at. The nominal task
M_0 has none. `TaskDistribution` draws single-link failures, weighted by the links' failure
probabilities (or uniformly), mixed with M_0 at a configurable rate; links listed as held out are
never drawn, so they can test generalisation to failures never seen in meta-training. A task turns
into simulation parameters with `task.sim_params(base)`: a task is just a parameter value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mamrl.errors import MamrlError
from mamrl.sim.params import LinkFailure, SimParams
from mamrl.topologies.core import Topology

WEIGHTINGS = ("probability", "uniform")


@dataclass(frozen=True)
class FailureTask:
    """A failure scenario M_k: links (ids) that go down at `fail_tick` and stay down."""

    links: tuple[int, ...]
    """Failed link ids; empty = the intact network M_0."""
    fail_tick: int = 0
    """First tick the links are down (0 = from the start of every episode)."""

    def sim_params(self, base: SimParams) -> SimParams:
        """`base` with this task's failures (replacing any it had)."""
        return base.replace(failures=tuple(LinkFailure(link, self.fail_tick) for link in self.links))

    def name(self, topology: Topology) -> str:
        """`M0` or the failed links as `A-B` (joined by `+`), with `@tick` when not 0."""
        if not self.links:
            return "M0"
        text = "+".join(link_label(topology, link) for link in self.links)
        return text if self.fail_tick == 0 else f"{text}@{self.fail_tick}"


def link_label(topology: Topology, link: int) -> str:
    """`A-B` by router names (parses back with `topology.link_id`)."""
    ends = topology.links[link]
    return f"{topology.router_names[ends.a]}-{topology.router_names[ends.b]}"


def parse_task(topology: Topology, spec: str, fail_tick: int = 0) -> FailureTask:
    """`M0`, or one or more links joined by `+` (`A-B`, link names or ids), optionally `@TICK`."""
    text = spec.strip()
    if text.upper() == "M0":
        return FailureTask((), fail_tick)
    if "@" in text:
        text, _, tick_text = text.rpartition("@")
        try:
            fail_tick = int(tick_text)
        except ValueError:
            raise MamrlError(f"task {spec!r}: tick {tick_text!r} is not an integer") from None
    links = tuple(sorted({topology.link_id(part) for part in text.split("+")}))
    return FailureTask(links, fail_tick)


@dataclass(frozen=True, eq=False)
class TaskDistribution:
    """eta(M): M_0 with probability `nominal_probability`, else one failed link drawn from the
    links not held out, in proportion to their failure probabilities (or uniformly)."""

    topology: Topology
    """The network whose links may fail."""
    weighting: str = "probability"
    """`probability` (weights p_e; uniform if every p_e is 0) or `uniform`."""
    nominal_probability: float = 0.2
    """Share of draws that are the intact network M_0, so the initialisation stays good on it."""
    fail_tick: int = 0
    """Tick the drawn link fails at in every episode of the task (0 = from the start)."""
    held_out: tuple[int, ...] = ()
    """Link ids never drawn (generalisation tests)."""

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise MamrlError(f"task weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        if not 0.0 <= self.nominal_probability <= 1.0:
            raise MamrlError(f"nominal_probability must be in [0, 1], got {self.nominal_probability}")
        if self.fail_tick < 0:
            raise MamrlError(f"fail_tick must be >= 0, got {self.fail_tick}")
        num_links = self.topology.num_links
        bad = [link for link in self.held_out if not 0 <= link < num_links]
        if bad:
            raise MamrlError(f"held-out link ids {bad} do not exist (topology has {num_links} links)")
        if self.nominal_probability < 1.0 and not self.candidate_links().size:
            raise MamrlError("every link is held out: no failure task can be drawn")

    @classmethod
    def of(cls, topology: Topology, weighting: str, nominal_probability: float, fail_tick: int,
           held_out: tuple[str, ...] | list[str]) -> "TaskDistribution":
        """η(M) from a learner's settings, held-out links given as specs (`A-B`, names or ids)."""
        held = tuple(sorted({topology.link_id(spec) for spec in held_out}))
        return cls(topology, weighting, nominal_probability, fail_tick, held)

    def candidate_links(self) -> np.ndarray:
        """int64 link ids that can fail (usable capacity, not held out)."""
        held = set(self.held_out)
        return np.array([e for e, link in enumerate(self.topology.links) if link.capacity > 0 and e not in held], dtype=np.int64)

    def link_probabilities(self) -> np.ndarray:
        """float64 [E]: the probability of each link being the failed one, given a failure task."""
        candidates = self.candidate_links()
        weights = np.zeros(self.topology.num_links)
        if self.weighting == "probability":
            weights[candidates] = [self.topology.links[e].failure_prob for e in candidates]
        if weights.sum() <= 0:
            weights[candidates] = 1.0
        return weights / weights.sum()

    def sample(self, rng: np.random.Generator, num_tasks: int) -> list[FailureTask]:
        """`num_tasks` independent draws."""
        probs = self.link_probabilities()
        nominal = rng.random(num_tasks) < self.nominal_probability
        links = rng.choice(self.topology.num_links, size=num_tasks, p=probs)
        return [FailureTask(() if nom else (int(link),), self.fail_tick) for nom, link in zip(nominal, links)]
