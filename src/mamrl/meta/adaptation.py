"""MAMRL deployment (paper Algorithm 2): online adaptation with failure detection and reset.

Routers run their policies episode after episode and adapt online: after every block of episodes
(K trajectories) each router takes one vanilla policy-gradient step of size alpha on its own
decisions and reward (`update="pg"`, Algorithm 2; `update="trpo"` takes a TRPO step instead).
When a router sees persistent loss on one of its links — `detect_consecutive_losses` packets in a
row that it sent on the link were lost — the link is declared failed and the policies are reset
(MAMRL: to the meta-initialisation; random-init: to fresh random weights; `continued`: never),
then adapt from there. A reset discards that block's update: its data came from the old policy.

Why a run of consecutive losses: a packet is lost at a healthy link only when the link's free
capacity cannot take it, which needs many packets in flight on it at once (on the paper's
topologies capacity is ~40 mean packets); a failed link loses every packet sent on it. A run of
5 is unambiguous on those networks and is seen within a few ticks of a failure by the routers
that use the link. The loss a router counts at a tick is attributed to the link it sent on at
that tick (the simulator charges send losses, and packets lost in flight when their link fails,
to the sender); with a buffer limit, drop-tail losses are charged to the queue's router too and
could, under heavy congestion, be mistaken for a failure (documented, not special-cased).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, ClassVar

import numpy as np
import torch

from mamrl.agents.base import Progress, RoutingAgent, in_chunks, training_start
from mamrl.agents.deep_consensus import DeepConsensus, DeepConsensusConfig, Rollout, rollout
from mamrl.agents.networks import init_params, input_dim, matmul_precision, slot_mask
from mamrl.agents.trpo import Params, axpy, policy_gradient, trpo_update
from mamrl.errors import MamrlError
from mamrl.sim.params import SimParams, require_fifo
from mamrl.topologies.core import Topology
from mamrl.validate import Choice, Number, check_fields, integer, setting

UPDATES = ("pg", "trpo")


@dataclass
class AdaptationConfig:
    """Online adaptation after deployment (Algorithm 2)."""

    config_name: ClassVar[str] = "adaptation"

    step_size: float = setting(0.01, Number(at_least=0))
    """alpha of the online policy-gradient steps (paper §4.1: the same alpha as the inner step)."""
    episodes_per_step: int = setting(5, integer(1))
    """Episodes (trajectories K) per adaptation step."""
    update: str = setting("pg", Choice(UPDATES))
    """`pg`: vanilla policy-gradient step of size alpha (Algorithm 2); `trpo`: a TRPO step."""
    detect_consecutive_losses: int = setting(5, integer(1))
    """A router declares a link failed after this many consecutive packets it sent on it were lost."""

    def __post_init__(self) -> None:
        check_fields(self)


def detect_failed_links(acted: np.ndarray, actions: np.ndarray, lost: np.ndarray, link_of_slot: np.ndarray,
                        consecutive: int) -> np.ndarray:
    """bool [num links]: links some router saw `consecutive` of its sends on in a row lost, in any
    episode. acted, actions, lost: [T, E, N] (lost = packets lost at the router that tick)."""
    num_links = int(link_of_slot.max()) + 1
    flagged = np.zeros(num_links, dtype=bool)
    _, episodes, routers = acted.shape
    for e in range(episodes):
        for i in range(routers):
            ticks = np.flatnonzero(acted[:, e, i])
            if ticks.size < consecutive:
                continue
            slots = actions[ticks, e, i]
            failed = lost[ticks, e, i] > 0
            for slot in np.unique(slots[failed]):
                on_slot = failed[slots == slot]
                # longest run of True in on_slot
                edges = np.diff(np.concatenate(([0], on_slot.astype(np.int8), [0])))
                runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
                if runs.size and runs.max() >= consecutive:
                    flagged[link_of_slot[i, slot]] = True
    return flagged


class DeepOnlineController(RoutingAgent):
    """The deep learner adapting online (Algorithm 2), optionally resetting on detected failures.
    `train` plays its episodes in blocks of `adaptation.episodes_per_step`: each block is rolled out
    with the current policies, then followed by a reset (if a new failure was detected and this
    controller resets) or one adaptation step. `evaluate` runs the current policies frozen."""

    learns = True

    def __init__(self, name: str, initial: Params, reset_to: Callable[[int], Params] | None,
                 policy_config: DeepConsensusConfig, adaptation: AdaptationConfig, topology: Topology, *, adapts: bool = True):
        """`adapts=False`: a frozen policy (deployed without adaptation; it never resets either)."""
        self.name = name
        self.adapts = adapts
        self.adaptation = adaptation
        self.reset_to = reset_to
        self.learner = DeepConsensus(policy_config)
        self.topology = topology
        self.params = {k: v.detach().clone() for k, v in initial.items()}
        self.valid = slot_mask(topology.degree, topology.max_degree)
        self.known_failed: set[int] = set()
        self.resets = 0
        self.episodes_trained = 0
        """Index of the episode after the last one trained on (`training_start`)."""
        self.steps_taken = 0
        """Adaptation steps taken; seeds each step's baseline row sample (and TRPO's subsample)."""
        self._link_of_slot = topology.neighbor_table[1]
        feature_dim = input_dim(topology.num_routers, topology.max_degree) + 4
        self.baseline = torch.zeros((topology.num_routers, feature_dim), dtype=torch.float64)

    def train(self, params: SimParams, seed: int, num_episodes: int, *, first_episode: int | None = None,
              on_progress: Progress | None = None) -> dict[str, np.ndarray]:
        """Per-episode metrics of the training episodes, plus "reset" (bool: the policies were reset
        after that episode, the last of its block)."""
        require_fifo(params, f"{self.name} online adaptation")
        first = training_start(first_episode, self.episodes_trained)

        def block(size: int, done: int) -> dict[str, np.ndarray]:
            metrics = self._run_block(params, seed, first + done, size)
            self.episodes_trained = first + done + size
            return metrics

        return in_chunks(num_episodes, self.adaptation.episodes_per_step, block, on_progress)

    def evaluate(self, params: SimParams, seed: int, num_episodes: int, *, batch_size: int = 32,
                 on_progress: Progress | None = None) -> dict[str, np.ndarray]:
        return in_chunks(num_episodes, batch_size, lambda size, done: self._rollout(params, seed, done, size).metrics,
                         on_progress)

    def _rollout(self, params: SimParams, seed: int, first_episode: int, num_episodes: int) -> Rollout:
        cfg = self.learner.cfg
        return rollout(self.params, self.valid, params, seed, num_episodes, first_episode, reward=cfg.reward,
                       mask_down_links=cfg.mask_down_links, loss_penalty=cfg.loss_penalty, loss_honest=cfg.loss_honest)

    def _run_block(self, params: SimParams, seed: int, first_episode: int, num_episodes: int) -> dict[str, np.ndarray]:
        """Roll out the block with the current policies, then reset (if a new failure was
        detected and this controller resets) or take one adaptation step."""
        data = self._rollout(params, seed, first_episode, num_episodes)
        flagged = detect_failed_links(data.acted, data.actions, -data.loss_signal, self._link_of_slot,
                                      self.adaptation.detect_consecutive_losses)
        new_failures = set(np.flatnonzero(flagged).tolist()) - self.known_failed
        self.known_failed |= new_failures
        reset = bool(new_failures) and self.reset_to is not None
        if reset:
            self.resets += 1
            self.params = {k: v.detach().clone() for k, v in self.reset_to(self.resets).items()}
        elif self.adapts:
            self._adapt(params, data)
        metrics = dict(data.metrics)
        # The reset happens after the block, on what its episodes showed: mark the block's last one.
        metrics["reset"] = np.zeros(num_episodes, dtype=bool)
        metrics["reset"][-1] = reset
        return metrics

    def _adapt(self, params: SimParams, data: Rollout) -> None:
        self.steps_taken += 1  # varies the baseline's row sample between steps
        with matmul_precision(self.learner.cfg.update_precision):
            self._adapt_step(params, data)

    def _adapt_step(self, params: SimParams, data: Rollout) -> None:
        if self.adaptation.update == "pg":
            batch, _ = self.learner.router_batch(params, data, None, baseline_seed=self.steps_taken)
            grad = policy_gradient(self.params, batch)
            n = self.topology.num_routers
            self.params = axpy(torch.full((n,), self.adaptation.step_size), grad, self.params)
        else:
            batch, self.baseline = self.learner.router_batch(params, data, self.baseline, baseline_seed=self.steps_taken)
            cfg = self.learner.cfg
            generator = torch.Generator().manual_seed(self.steps_taken)
            self.params, _ = trpo_update(self.params, batch, max_kl=cfg.max_kl, cg_iterations=cfg.cg_iterations,
                                         cg_damping=cfg.cg_damping, fvp_fraction=cfg.fvp_fraction, generator=generator)


def random_params(topology: Topology, hidden: tuple[int, ...], seed: int) -> Params:
    """Fresh random weights for every router (the networks' default initialisation)."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 0x5EED]).generate_state(1)[0]))
    return init_params(topology.num_routers, input_dim(topology.num_routers, topology.max_degree), tuple(hidden),
                       topology.max_degree, generator)


def make_deep_controllers(meta_init: Params, topology: Topology, policy_config: DeepConsensusConfig,
                          adaptation: AdaptationConfig, seed: int) -> list[DeepOnlineController]:
    """The three deep controllers of the failure experiment:
    `mamrl-init` starts from the meta-initialisation and resets to it on a detected failure;
    `continued` starts from it and never resets (it continues from its pre-failure weights);
    `random-init` starts from random weights and resets to fresh random weights on a detected failure."""
    hidden = tuple(policy_config.hidden_sizes)
    return [
        DeepOnlineController("mamrl-init", meta_init, lambda k: meta_init, policy_config, adaptation, topology),
        DeepOnlineController("continued", meta_init, None, policy_config, adaptation, topology),
        DeepOnlineController("random-init", random_params(topology, hidden, seed), lambda k: random_params(topology, hidden, seed + 7919 * k),
                             policy_config, adaptation, topology),
    ]


COMPARATORS = ("random-init-trpo", "fine-tune", "zero-shot", "masked")
"""Deep comparators of the failure experiment beside the paper's three (`make_comparator`)."""


def make_comparator(name: str, initial: Params | None, topology: Topology, policy_config: DeepConsensusConfig,
                    adaptation: AdaptationConfig, seed: int) -> DeepOnlineController:
    """One deep comparator (docs/failures.md):

    * `random-init-trpo`: random weights adapting by TRPO steps, reset to fresh random weights on a
      detected failure (the paper's comparator: the same learner trained from scratch);
    * `fine-tune`: `initial` = a policy trained on the intact network, adapting online from its
      pre-failure weights with the experiment's adaptation rule (no meta-learning, no reset);
    * `zero-shot`: `initial` = a multi-task policy trained across η(M), deployed frozen;
    * `masked`: `initial` = the intact-network policy, frozen, but the routers at a failed link's
      ends no longer choose it (local link-down detection, as a real router has within
      milliseconds); packets that can then no longer move stay queued.
    """
    if name == "random-init-trpo":
        hidden = tuple(policy_config.hidden_sizes)
        return DeepOnlineController(name, random_params(topology, hidden, seed),
                                    lambda k: random_params(topology, hidden, seed + 7919 * k), policy_config,
                                    replace(adaptation, update="trpo"), topology)
    if initial is None:
        raise MamrlError(f"controller {name!r} needs a pre-trained policy")
    if name == "fine-tune":
        return DeepOnlineController(name, initial, None, policy_config, adaptation, topology)
    if name == "zero-shot":
        return DeepOnlineController(name, initial, None, policy_config, adaptation, topology, adapts=False)
    if name == "masked":
        return DeepOnlineController(name, initial, None, replace(policy_config, mask_down_links=True), adaptation, topology,
                                    adapts=False)
    raise MamrlError(f"unknown deep comparator {name!r} (choose from {', '.join(COMPARATORS)})")
