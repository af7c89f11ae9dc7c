"""A multi-task policy: the deep learner trained by TRPO across the failure scenarios of η(M).

The comparator that separates what meta-learning buys from what merely training on failures
buys. Each TRPO iteration draws one task from the same task distribution as meta-training
(`meta.tasks.TaskDistribution`: the intact network with probability `nominal_probability`, else
one failed link) and takes an ordinary TRPO step on episodes of that task. The result is one
policy meant to route well on every failure as it is, deployed without adaptation ("zero-shot"),
where MAML learns an initialisation meant to be good after one adaptation step.

The task of an iteration is a function of (config seed, training seed, first episode of the
iteration), so a resumed run draws the same tasks as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mamrl.agents.base import Progress, in_chunks, training_start
from mamrl.agents.deep_consensus import DeepConsensus, DeepConsensusConfig
from mamrl.meta.tasks import WEIGHTINGS, FailureTask, TaskDistribution
from mamrl.sim.params import SimParams
from mamrl.validate import Choice, Items, Number, Text, setting


@dataclass
class MultiTaskConfig(DeepConsensusConfig):
    """The deep learner's settings, and the task distribution it trains across (as `MamlConfig`'s)."""

    config_name: ClassVar[str] = "multitask"

    task_weighting: str = setting("probability", Choice(WEIGHTINGS))
    """eta(M): failed link drawn by failure probability (`probability`) or `uniform`."""
    nominal_probability: float = setting(0.2, Number(at_least=0, at_most=1))
    """Share of iterations on the intact network M_0."""
    held_out: tuple[str, ...] = setting((), Items(Text(), distinct=True))
    """Links (`A-B`) never failed in training, kept for generalisation tests."""


class MultiTaskLearner(DeepConsensus):
    """`DeepConsensus` whose every TRPO iteration runs on a task drawn from η(M)."""

    name = "multitask"

    def __init__(self, config: MultiTaskConfig | None = None):
        super().__init__(config or MultiTaskConfig())  # checked when built (DeepConsensusConfig.__post_init__)
        self.tasks: list[str] = []
        """Names of the tasks trained on, one per iteration of this process (for logs and tests)."""

    def task_distribution(self, params: SimParams) -> TaskDistribution:
        return TaskDistribution.of(params.topology, self.cfg.task_weighting, self.cfg.nominal_probability, 0, self.cfg.held_out)

    def task_of(self, params: SimParams, seed: int, first_episode: int) -> FailureTask:
        """The task of the iteration starting at `first_episode`."""
        rng = np.random.default_rng([self.cfg.seed, seed, first_episode, 0x3A1F])
        return self.task_distribution(params).sample(rng, 1)[0]

    def train(self, params: SimParams, seed: int, num_episodes: int, *, first_episode: int | None = None,
              on_progress: Progress | None = None):
        """`params` is the intact network (its own failures are replaced by each iteration's task)."""
        first = training_start(first_episode, self.episodes_trained)
        self._ensure(params, seed)

        def iteration(size: int, done: int) -> dict[str, np.ndarray]:
            task = self.task_of(params, seed, first + done)
            self.tasks.append(task.name(params.topology))
            return self.train_iteration(task.sim_params(params), seed, size, first_episode=first + done)[1]

        return in_chunks(num_episodes, self.cfg.episodes_per_iteration, iteration, on_progress)


__all__ = ["MultiTaskConfig", "MultiTaskLearner"]
