"""A native batched vector environment over the compiled simulator: `RoutingVectorEnv`.

One simulator state holds all `num_envs` episodes, which run in lockstep (the simulator's batch
dimension): a step is one compiled call for every router of every environment, and observations
are encoded by one compiled pass (`Simulator.observe_encoded`). No Python loop over environments
or routers.

Spaces, per environment, as `RoutingEnv`: observation `{"observation": int64 [N, 12],
"action_mask": int8 [N, K]}`, action `MultiDiscrete(degrees)` (one slot per router; ignored for
routers with an empty queue), reward the mean over routers of r_i (`info["router_rewards"]`
holds r_i, [num_envs, N]). Batched, every array gets a leading `num_envs` dimension, which also
makes it the batched multi-agent form: for parameter-shared MARL, reshape the observation to
[num_envs * N, 12], act per router, and train on `info["router_rewards"]`.

Episodes and seeding. Every episode lasts `horizon_ticks` steps, so all environments truncate on
the same step (`terminated` is always False). `reset(seed=s)` starts episodes 0..num_envs-1 of
traffic seed s; each autoreset starts the next num_envs episodes of the same seed, so a seed fixes
every episode of a run. `reset()` without a seed draws one from the env's generator.

Autoreset follows Gymnasium's `AutoresetMode.NEXT_STEP` (its default): the step after the one that
truncated resets every environment, ignores the actions, and returns the first observations with
reward 0. The truncating step's `info["episode"]` holds each environment's return `r`, length `l`
and the simulator's episode metrics (delivered and lost fractions, mean sojourn time, mean
delivery time), with `info["_episode"]` all True, as `RecordEpisodeStatistics` does.

Actions outside the mask. The mask is what the router knows; choosing a slot whose link is down
is allowed and loses the packet (the simulator's rule, docs/model.md). A slot that does not exist
(>= the router's degree) for a router with a packet is an error naming the router.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from mamrl.envs.routing import (
    DEFAULT_REWARD,
    REWARDS,
    _check_params,
    _check_seed,
    make_params,
    observation_nvec,
)
from mamrl.errors import MamrlError, SimulationError
from mamrl.sim.kernel import State
from mamrl.sim.metrics import metrics_for
from mamrl.sim.params import LinkFailure, SimParams
from mamrl.sim.simulator import Simulator, StepEvents, undelivered_by_router
from mamrl.topologies import Topology

_SEED_HIGH = 2**63 - 1
EPISODE_METRICS = ("delivered_fraction", "loss_fraction", "mean_sojourn_time", "mean_delivery_time")
"""Simulator metrics reported per finished episode in `info["episode"]`."""


def batched_router_rewards(reward: str, events: StepEvents, state: State) -> np.ndarray:
    """float64 [B, N]: the named reward (`REWARDS`, see `mamrl.envs.routing`) of every router of
    every episode after a step."""
    if reward == "sojourn":
        return -undelivered_by_router(state).astype(np.float64)
    out = np.zeros(events.delivered.shape, dtype=np.float64)
    if reward in ("delay_and_loss", "delay"):
        delivered = events.delivered.astype(np.float64)
        out -= np.divide(events.delivery_time_sum, delivered, out=np.zeros_like(delivered), where=delivered > 0)
    if reward in ("delay_and_loss", "loss"):
        out -= events.lost
    return out


class RoutingVectorEnv(VectorEnv):
    """`num_envs` routing episodes stepped together (module doc)."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, params: SimParams, num_envs: int, reward: str = DEFAULT_REWARD):
        self.params = _check_params(params)
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise MamrlError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if not isinstance(reward, str) or reward not in REWARDS:
            raise MamrlError(f"unknown reward {reward!r} for the vector env (choose from {', '.join(REWARDS)})")
        self.num_envs = int(num_envs)
        self.reward = reward
        self.simulator = Simulator(params)
        topo = params.topology
        self.topology = topo
        self.degree = np.asarray(topo.degree, dtype=np.int64)
        self.router_names: tuple[str, ...] = topo.router_names
        n, k = topo.num_routers, topo.max_degree
        self.single_action_space = spaces.MultiDiscrete(self.degree.copy())
        self.single_observation_space = spaces.Dict({
            "observation": spaces.MultiDiscrete(observation_nvec(self.degree)),
            "action_mask": spaces.MultiBinary([n, k]),
        })
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.traffic_seed: int | None = None
        """Traffic seed of the current episodes; environment e runs its episode `first_episode + e`."""
        self.first_episode = 0
        self.sim_state: State | None = None
        """The simulator state of the current episodes (B = num_envs); read it, do not modify it."""
        self._obs = np.empty((self.num_envs, n, 12), dtype=np.int64)
        self._mask = np.empty((self.num_envs, n, k), dtype=np.int8)
        self._returns = np.zeros(self.num_envs)
        self._needs_reset = True

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise MamrlError(f"seed must be one integer for all {self.num_envs} environments (their episodes are "
                             f"0..{self.num_envs - 1} of its traffic), got {seed!r}")
        super().reset(seed=None if seed is None else _check_seed(seed))
        self.traffic_seed = int(seed) if seed is not None else int(self.np_random.integers(0, _SEED_HIGH))
        self.first_episode = 0
        return self._start()

    def step(self, actions):
        if self.sim_state is None:
            raise SimulationError("call reset() before step()")
        if self._needs_reset:  # NEXT_STEP autoreset: this step starts the next episodes
            self.first_episode += self.num_envs
            obs, info = self._start()
            zeros = np.zeros(self.num_envs, dtype=bool)
            return obs, np.zeros(self.num_envs), zeros, zeros.copy(), info
        joint = np.asarray(actions)
        if joint.shape != (self.num_envs, self.degree.shape[0]) or not np.issubdtype(joint.dtype, np.integer):
            raise SimulationError(f"actions must be integers of shape ({self.num_envs}, {self.degree.shape[0]}), "
                                  f"got {joint.dtype} {joint.shape}")
        events = self.simulator.step(self.sim_state, joint)
        per_router = batched_router_rewards(self.reward, events, self.sim_state)
        rewards = per_router.mean(axis=1)
        self._returns += rewards
        self.simulator.observe_encoded(self.sim_state, self._obs, self._mask)
        truncated = np.full(self.num_envs, events.done)
        info: dict[str, Any] = {"router_rewards": per_router, "lost": events.lost, "delivered": events.delivered}
        if events.done:
            self._needs_reset = True
            metrics = metrics_for(self.sim_state, self.params)
            info["episode"] = {"r": self._returns.copy(), "l": np.full(self.num_envs, self.params.horizon_ticks),
                               **{name: metrics[name] for name in EPISODE_METRICS}}
            info["_episode"] = np.ones(self.num_envs, dtype=bool)
        return self._observation(), rewards, np.zeros(self.num_envs, dtype=bool), truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        self.sim_state = None

    # ------------------------------------------------------------------ helpers
    def _start(self):
        self.sim_state = self.simulator.reset(self.traffic_seed, self.num_envs, self.first_episode)
        self._needs_reset = False
        self._returns[:] = 0.0
        self.simulator.observe_encoded(self.sim_state, self._obs, self._mask)
        info = {"traffic_seed": self.traffic_seed, "episode_index": self.first_episode + np.arange(self.num_envs)}
        return self._observation(), info

    def _observation(self) -> dict[str, np.ndarray]:
        # Copies: the buffers are refilled in place next step, and callers keep observations.
        return {"observation": self._obs.copy(), "action_mask": self._mask.copy()}


def vector_env(
    num_envs: int = 1,
    topology: str | os.PathLike[str] | Topology = "b4",
    load_per_router: float = 0.3,
    horizon_ticks: int = 500,
    failures: Iterable[str | LinkFailure] = (),
    buffer_limit: int | None = None,
    *,
    reward: str = DEFAULT_REWARD,
    **unused: Any,
) -> RoutingVectorEnv:
    """A `RoutingVectorEnv`; the `vector_entry_point` of the registered gymnasium ids
    (`gymnasium.make_vec("mamrl/B4-v0", num_envs=64)`). See `make_params` for the arguments."""
    if unused:
        raise MamrlError(f"unknown argument(s) of the mamrl vector env: {', '.join(sorted(unused))}")
    return RoutingVectorEnv(make_params(topology, load_per_router, horizon_ticks, failures, buffer_limit), num_envs,
                            reward=reward)


__all__ = ["EPISODE_METRICS", "RoutingVectorEnv", "batched_router_rewards", "vector_env"]
