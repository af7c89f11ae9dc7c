"""RL environment adapters over the step-wise `Simulator` API (docs/model.md).

Two thin adapters, one B=1 simulator state each, and no simulation logic of their own: they
define spaces, encode the simulator's `Observation`, handle seeding and assemble rewards from the
per-router `StepEvents`.

* `RoutingParallelEnv`: a PettingZoo `ParallelEnv`, one agent per router (agent id = router name).
* `RoutingEnv`: a Gymnasium `Env` whose action is the joint action of all routers.

Observation of router i (12 integers, see docs/environments.md):

    [0]     destination of the queue head, N (= number of routers) if the queue is empty
    [1]     action slot of the neighbour with the longest queue (lowest slot on ties),
            degree(i) if every neighbour's queue is empty
    [2:12]  the router's last 10 action slots, most recent first, degree(i) = "none yet"

plus an int8 action mask over the router's own slots (1 = the link of that slot is up).

Reward of router i for one step, by default (`reward="sojourn"`, loss-honest):

    r_i = -(packets queued at i + packets i has in flight + packets lost at i since the start)

after the step. Summed over routers it is minus the packets not delivered (generated − delivered),
and summed over the steps of an episode, by Little's law, minus the total sojourn time of every
packet (docs/model.md: a lost packet counts until the horizon). A lost packet stays in the sum, so
dropping a packet never scores better than delivering it.

The paper's reward (`reward="delay_and_loss"`; paper Eq. 4-6 before consensus, docs/model.md names):

    r_i = r~_i + r^_i,   r~_i = -(packets lost at i),
                         r^_i = -(mean delivery time of the packets delivered at i; 0 if none)

kept to reproduce the paper. It is degenerate: r^ is 0 at steps without deliveries, so delivering
fewer packets raises it, and a loss costs 1, less than a delivery of more than one tick.
The dynamic-consensus estimate of the network-wide mean of r^ (`x_i`, Eq. 4) is the learner's job
and is not computed here; the raw events are in the infos so a learner can assemble it.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterable
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from mamrl.errors import MamrlError, SimulationError
from mamrl.sim.kernel import HISTORY_LEN, State
from mamrl.sim.params import LinkFailure, SimParams, require_fifo
from mamrl.sim.simulator import Observation, Simulator, StepEvents, undelivered_by_router
from mamrl.topologies import Topology, load_topology

OBS_LEN = 2 + HISTORY_LEN
"""Length of one router's observation vector."""

RewardFn = Callable[[StepEvents], np.ndarray]
"""A custom reward: B=1 `StepEvents` -> per-router rewards, shape [N] (or [1, N])."""

REWARDS = ("sojourn", "delay_and_loss", "delay", "loss")
"""Named rewards: the loss-honest `sojourn` (default; module doc), and the paper's: r~ + r^
(`delay_and_loss`, docs/model.md), r^ only, r~ only."""

DEFAULT_REWARD = "sojourn"
"""The reward of an env created without one."""

_SEED_HIGH = 2**63 - 1


# ---------------------------------------------------------------------------- shared helpers
def _check_params(params: Any) -> SimParams:
    if not isinstance(params, SimParams):
        raise MamrlError(f"expected SimParams, got {type(params).__name__} (use make_params or parallel_env)")
    require_fifo(params, "the RL environments")
    return params


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SimulationError(f"seed must be an integer >= 0 or None, got {seed!r}")
    return int(seed)


def _resolve_reward(reward: str | RewardFn) -> Callable[[StepEvents, State, int], np.ndarray]:
    """A function (events, state after the step, N) -> float64 [N] of per-router rewards."""
    if callable(reward):

        def custom(events: StepEvents, state: State, n: int) -> np.ndarray:
            out = np.asarray(reward(events), dtype=np.float64).reshape(-1)
            if out.shape != (n,):
                raise MamrlError(f"custom reward must return {n} values (one per router), got shape {out.shape}")
            return out

        return custom
    if not isinstance(reward, str) or reward not in REWARDS:
        raise MamrlError(f"unknown reward {reward!r} (choose from {', '.join(REWARDS)}, or pass a callable)")
    if reward == "sojourn":
        return lambda events, state, n: sojourn_rewards(state)
    use_delay = reward in ("delay_and_loss", "delay")
    use_loss = reward in ("delay_and_loss", "loss")

    def named(events: StepEvents, state: State, n: int) -> np.ndarray:
        return router_rewards(events, delay=use_delay, loss=use_loss)

    return named


def sojourn_rewards(state: State) -> np.ndarray:
    """float64 [N]: the loss-honest reward of episode 0, r_i = -(queued at i + in flight from i +
    lost at i so far); its sum is -(generated - delivered) (see module doc)."""
    return -undelivered_by_router(state)[0].astype(np.float64)


def router_rewards(events: StepEvents, *, delay: bool = True, loss: bool = True) -> np.ndarray:
    """float64 [N]: the paper's r_i = r~_i + r^_i of the first (only) episode of `events` (see module doc)."""
    delivered = events.delivered[0].astype(np.float64)
    mean_time = np.divide(
        events.delivery_time_sum[0].astype(np.float64),
        delivered,
        out=np.zeros_like(delivered),
        where=delivered > 0,
    )
    out = np.zeros_like(delivered)
    if delay:
        out -= mean_time
    if loss:
        out -= events.lost[0].astype(np.float64)
    return out


def encode_observation(obs: Observation, degree: np.ndarray) -> np.ndarray:
    """int64 [N, 12]: every router's observation vector of episode 0 (see module doc)."""
    n = degree.shape[0]
    out = np.empty((n, OBS_LEN), dtype=np.int64)
    head = obs.head_destination[0]
    out[:, 0] = np.where(head < 0, n, head)
    longest = obs.longest_queue_neighbor[0]
    out[:, 1] = np.where(longest < 0, degree, longest)
    last = obs.last_actions[0]
    out[:, 2:] = np.where(last < 0, degree[:, None], last)
    return out


def observation_nvec(degree: np.ndarray) -> np.ndarray:
    """int64 [N, 12]: the MultiDiscrete bounds of `encode_observation`."""
    n = degree.shape[0]
    nvec = np.empty((n, OBS_LEN), dtype=np.int64)
    nvec[:, 0] = n + 1
    nvec[:, 1] = degree + 1
    nvec[:, 2:] = degree[:, None] + 1
    return nvec


OBSERVATION_MODES = ("dict", "flat", "graph")
"""How the envs present a router's observation (docs/environments.md, "Observation modes")."""

GRAPH_NODE_FEATURES = ("queue_length", "has_packet", "is_head_destination", "is_self")
"""Per-router features of the `graph` observation mode, in column order."""


def one_hot_size(num_routers: int, max_degree: int) -> int:
    """Length of `one_hot_observation`'s vector: (N + 1) + 11 (K + 1)."""
    return (num_routers + 1) + (1 + HISTORY_LEN) * (max_degree + 1)


def one_hot_observation(enc: np.ndarray, degree: np.ndarray, max_degree: int) -> np.ndarray:
    """float32 [..., N, one_hot_size]: the 12 fields of `encode_observation` ([..., N, 12]) as
    concatenated one-hot codes, slots coded against the maximum degree K so that every router's
    vector has the same layout (its "none" value, the router's degree, becomes K). The deep
    learner's network input is this encoding."""
    n = degree.shape[0]
    fields = enc.copy()
    rest = fields[..., 1:]
    rest[rest == np.broadcast_to(degree[:, None], rest.shape)] = max_degree
    offsets = np.concatenate(([0], n + 1 + np.arange(1 + HISTORY_LEN) * (max_degree + 1)))
    out = np.zeros((*enc.shape[:-1], one_hot_size(n, max_degree)), dtype=np.float32)
    np.put_along_axis(out, fields + offsets, 1.0, axis=-1)
    return out


def episode_totals(state: State) -> dict[str, int]:
    """Counts of episode 0 since its start: generated, delivered, lost, queued, in flight, in network."""
    totals = {k: int(v[0]) for k, v in Simulator.totals(state).items()}
    totals["in_network"] = totals["queued"] + totals["in_flight"]
    return totals


def _render_ansi(params: SimParams, state: State | None) -> str:
    topo = params.topology
    if state is None:
        return f"{topo.name}: not reset\n"
    tick = int(state.tick[0])
    qlen = state.q_len[0]
    cells = "  ".join(f"{name}:{int(q)}" for name, q in zip(topo.router_names, qlen))
    totals = episode_totals(state)
    return (
        f"{topo.name} tick {tick}/{params.horizon_ticks}  queues  {cells}\n"
        f"  generated {totals['generated']}  delivered {totals['delivered']}  lost {totals['lost']}"
        f"  in network {totals['in_network']}\n"
    )


def _check_render_mode(render_mode: str | None) -> str | None:
    if render_mode not in (None, "ansi"):
        raise MamrlError(f"unsupported render mode {render_mode!r} (None or 'ansi')")
    return render_mode


# ---------------------------------------------------------------------------- parameters
def make_params(
    topology: str | os.PathLike[str] | Topology = "b4",
    load_per_router: float = 0.3,
    horizon_ticks: int = 500,
    failures: Iterable[str | LinkFailure] = (),
    buffer_limit: int | None = None,
) -> SimParams:
    """`SimParams` from a built-in name, a path or a `Topology`, and failures as `"A-B@TICK"` strings
    or `LinkFailure`s. Bad input raises a `MamrlError` subclass."""
    if isinstance(topology, Topology):
        topo = topology
    elif isinstance(topology, (str, os.PathLike)):
        topo = load_topology(topology)
    else:
        raise MamrlError(f"topology must be a built-in name, a path or a Topology, got {type(topology).__name__}")
    if isinstance(failures, (str, LinkFailure)):
        failures = (failures,)
    parsed = []
    for failure in failures:
        if isinstance(failure, LinkFailure):
            parsed.append(failure)
        elif isinstance(failure, str):
            parsed.append(LinkFailure.parse(topo, failure))
        else:
            raise MamrlError(f"a failure must be an 'A-B@TICK' string or a LinkFailure, got {failure!r}")
    return SimParams(topo, load_per_router, horizon_ticks, tuple(parsed), buffer_limit)


# ---------------------------------------------------------------------------- PettingZoo
class RoutingParallelEnv(ParallelEnv):
    """PettingZoo parallel env: one agent per router, agent id = router name.

    Every live agent acts every step; the action of a router whose queue is empty is ignored (it
    may be omitted from the action dict). The episode ends by truncation after
    `params.horizon_ticks` steps.
    """

    metadata = {"name": "mamrl_routing_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, params: SimParams, reward: str | RewardFn = DEFAULT_REWARD, render_mode: str | None = None,
                 observation_mode: str = "dict"):
        self.params = _check_params(params)
        self.render_mode = _check_render_mode(render_mode)
        self._reward = _resolve_reward(reward)
        if observation_mode not in OBSERVATION_MODES:
            raise MamrlError(f"unknown observation_mode {observation_mode!r} (choose from {', '.join(OBSERVATION_MODES)})")
        self.observation_mode = observation_mode
        self.simulator = Simulator(params)
        topo = params.topology
        self.topology = topo
        self.degree = np.asarray(topo.degree, dtype=np.int64)
        self.possible_agents: list[str] = list(topo.router_names)
        self.agent_index: dict[str, int] = {a: i for i, a in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        n, k = topo.num_routers, topo.max_degree
        # Both directions of every link, as a GNN's edge index.
        ends = np.array([(link.a, link.b) for link in topo.links], dtype=np.int64).reshape(-1, 2).T
        self._edge_index = np.concatenate([ends, ends[::-1]], axis=1)
        self._edge_link = np.concatenate([np.arange(ends.shape[1]), np.arange(ends.shape[1])])
        self._observation_spaces = {agent: self._agent_space(i) for i, agent in enumerate(self.possible_agents)}
        self._action_spaces = {agent: spaces.Discrete(k if observation_mode == "flat" else int(self.degree[i]))
                               for i, agent in enumerate(self.possible_agents)}
        self.observation_spaces = self._observation_spaces
        self.action_spaces = self._action_spaces
        state_size = n * OBS_LEN + n + len(topo.links) + 1
        self.state_space = spaces.Box(0.0, np.inf, (state_size,), dtype=np.float32)
        """`state()`'s space: a global view for centralised critics (MAPPO, QMIX)."""
        self.np_random: np.random.Generator | None = None
        """Draws the traffic seeds of unseeded resets; re-seeded by every seeded reset."""
        self.traffic_seed: int | None = None
        """The seed of the current episode's traffic (episode index 0)."""
        self.sim_state: State | None = None
        """The simulator state (B=1) of the current episode; read it, do not modify it."""
        self.last_events: StepEvents | None = None
        """The simulator's events of the last step."""
        self._has_packet: list[bool] = []
        self._degrees: list[int] = self.degree.tolist()

    def observation_space(self, agent: str) -> spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._action_spaces[agent]

    def _agent_space(self, i: int) -> spaces.Space:
        n, k, degree = self.topology.num_routers, self.topology.max_degree, int(self.degree[i])
        if self.observation_mode == "flat":
            return spaces.Box(0.0, 1.0, (one_hot_size(n, k) + k,), dtype=np.float32)
        if self.observation_mode == "graph":
            edges = self._edge_index.shape[1]
            return spaces.Dict({
                "nodes": spaces.Box(0.0, np.inf, (n, len(GRAPH_NODE_FEATURES)), dtype=np.float32),
                "edge_index": spaces.Box(0, n - 1, (2, edges), dtype=np.int64),
                "edge_up": spaces.MultiBinary(edges),
                "agent": spaces.Discrete(n),
                "action_mask": spaces.MultiBinary(degree),
            })
        return spaces.Dict({"observation": spaces.MultiDiscrete(observation_nvec(self.degree)[i]),
                            "action_mask": spaces.MultiBinary(degree)})

    def state(self) -> np.ndarray:
        """float32 [N*12 + N + E + 1]: every router's observation (`encode_observation`), queue
        lengths, which links are up, and the tick over the horizon."""
        if self.sim_state is None:
            raise SimulationError("call reset() first")
        enc, _ = self.simulator.observe_encoded(self.sim_state)
        st = self.sim_state
        return np.concatenate([enc[0].ravel(), st.q_len[0], st.link_up[0],
                               [st.tick[0] / self.params.horizon_ticks]]).astype(np.float32)

    def action_masks(self) -> dict[str, np.ndarray]:
        """bool mask over each live agent's action space: the slots whose link is up (in `flat`
        mode, slots beyond the router's degree are False)."""
        if self.sim_state is None:
            raise SimulationError("call reset() first")
        _, mask = self.simulator.observe_encoded(self.sim_state)
        width = self.topology.max_degree if self.observation_mode == "flat" else None
        return {a: mask[0, self.agent_index[a], : width or self._degrees[self.agent_index[a]]].astype(bool)
                for a in self.agents}

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.np_random = np.random.default_rng(_check_seed(seed))
            traffic_seed = int(seed)
        else:
            if self.np_random is None:
                self.np_random = np.random.default_rng()
            traffic_seed = int(self.np_random.integers(0, _SEED_HIGH))
        self.traffic_seed = traffic_seed
        self.sim_state = self.simulator.reset(traffic_seed, 1)
        self.last_events = None
        self.agents = list(self.possible_agents)
        observations, has_packet = self._observe()
        lost = self.simulator.events(self.sim_state).lost[0].tolist()
        infos = {
            agent: {"has_packet": has_packet[i], "lost": lost[i], "traffic_seed": traffic_seed}
            for i, agent in enumerate(self.agents)
        }
        return observations, infos

    def step(self, actions: dict[str, Any]):
        if self.sim_state is None or not self.agents:
            raise SimulationError("the episode is over (or was never started): call reset() first")
        busy = self._has_packet
        joint = np.zeros((1, len(self.possible_agents)), dtype=np.int64)
        for agent, action in actions.items():
            i = self.agent_index.get(agent)
            if i is None:
                raise SimulationError(f"unknown agent {agent!r}")
            try:
                joint[0, i] = operator.index(action)
            except (TypeError, ValueError):
                raise SimulationError(f"action of agent {agent!r} must be an integer slot, got {action!r}") from None
        if len(actions) < len(self.agents):
            missing = [a for a in self.agents if a not in actions and busy[self.agent_index[a]]]
            if missing:
                raise SimulationError(f"no action for router(s) {missing[:5]} with a packet to forward")
        if self.observation_mode == "flat":
            # One Discrete(K) for every agent (parameter sharing): slot k of a router of degree d
            # is slot k mod d, a documented rule; masks (`action_masks`) mark slots >= d invalid.
            if (joint < 0).any() or (joint >= self.topology.max_degree).any():
                raise SimulationError(f"actions must be slots in 0..{self.topology.max_degree - 1}, got {joint[0].tolist()}")
            joint = joint % self.degree[None, :]
        events = self.simulator.step(self.sim_state, joint)
        self.last_events = events
        rewards_arr = self._reward(events, self.sim_state, len(self.possible_agents)).tolist()
        live = self.agents
        observations, has_packet = self._observe()
        index = self.agent_index
        rewards = {a: rewards_arr[index[a]] for a in live}
        terminations = dict.fromkeys(live, False)
        truncations = dict.fromkeys(live, bool(events.done))
        delivered, time_sum, lost = (x[0].tolist() for x in (events.delivered, events.delivery_time_sum, events.lost))
        infos = {}
        for a in live:
            i = index[a]
            infos[a] = {"delivered": delivered[i], "delivery_time_sum": time_sum[i], "lost": lost[i], "acted": busy[i],
                        "has_packet": has_packet[i]}
        if events.done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called with render_mode=None; create the env with render_mode='ansi'")
            return None
        return _render_ansi(self.params, self.sim_state)

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ extras
    def episode_totals(self) -> dict[str, int]:
        """Counts since the episode start: generated, delivered, lost, queued, in_flight, in_network."""
        if self.sim_state is None:
            raise SimulationError("call reset() first")
        return episode_totals(self.sim_state)

    def _observe(self) -> tuple[dict[str, Any], list[bool]]:
        """Every agent's observation of the current tick (one compiled encoding pass) in the
        env's `observation_mode`, and which routers have a packet to forward."""
        enc, mask = self.simulator.observe_encoded(self.sim_state)
        n, k = self.topology.num_routers, self.topology.max_degree
        has_packet = (enc[0, :, 0] < n).tolist()
        self._has_packet = has_packet
        agents = self.possible_agents
        if self.observation_mode == "flat":
            flat = np.concatenate([one_hot_observation(enc[0], self.degree, k), mask[0].astype(np.float32)], axis=1)
            return {a: flat[i] for i, a in enumerate(agents)}, has_packet
        if self.observation_mode == "graph":
            st = self.sim_state
            head = enc[0, :, 0]
            nodes = np.zeros((n, len(GRAPH_NODE_FEATURES)), dtype=np.float32)
            nodes[:, 0] = st.q_len[0]
            nodes[:, 1] = head < n
            edge_up = st.link_up[0][self._edge_link].astype(np.int8)
            out = {}
            for i, a in enumerate(agents):
                own = nodes.copy()
                if head[i] < n:
                    own[head[i], 2] = 1.0
                own[i, 3] = 1.0
                out[a] = {"nodes": own, "edge_index": self._edge_index, "edge_up": edge_up, "agent": i,
                          "action_mask": mask[0, i, : self._degrees[i]]}
            return out, has_packet
        return {a: {"observation": enc[0, i], "action_mask": mask[0, i, : self._degrees[i]]}
                for i, a in enumerate(agents)}, has_packet


# ---------------------------------------------------------------------------- Gymnasium
class RoutingEnv(gymnasium.Env):
    """Gymnasium env over the joint action of all routers.

    Action: `MultiDiscrete(degrees)`, one slot per router (ignored for routers with an empty
    queue). Observation: `{"observation": int64 [N, 12], "action_mask": int8 [N, K]}`. Reward: the
    mean over routers of r_i. `truncated` is True after `horizon_ticks` steps; `terminated` is
    always False.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, params: SimParams, reward: str | RewardFn = DEFAULT_REWARD, render_mode: str | None = None,
                 observation_mode: str = "dict"):
        self.params = _check_params(params)
        self.render_mode = _check_render_mode(render_mode)
        self._reward = _resolve_reward(reward)
        if observation_mode not in ("dict", "flat"):
            raise MamrlError(f"unknown observation_mode {observation_mode!r} for the joint env (choose from dict, flat)")
        self.observation_mode = observation_mode
        self.simulator = Simulator(params)
        topo = params.topology
        self.topology = topo
        self.degree = np.asarray(topo.degree, dtype=np.int64)
        self.router_names: tuple[str, ...] = topo.router_names
        n, k = topo.num_routers, topo.max_degree
        self.action_space = spaces.MultiDiscrete(self.degree.copy())
        if observation_mode == "flat":
            self.observation_space = spaces.Box(0.0, 1.0, (n * (one_hot_size(n, k) + k),), dtype=np.float32)
        else:
            self.observation_space = spaces.Dict(
                {
                    "observation": spaces.MultiDiscrete(observation_nvec(self.degree)),
                    "action_mask": spaces.MultiBinary([n, k]),
                }
            )
        self.traffic_seed: int | None = None
        """The seed of the current episode's traffic (episode index 0)."""
        self.sim_state: State | None = None
        """The simulator state (B=1) of the current episode; read it, do not modify it."""
        self.last_events: StepEvents | None = None
        self._obs: dict[str, np.ndarray] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.traffic_seed = int(self.np_random.integers(0, _SEED_HIGH))
        self.sim_state = self.simulator.reset(self.traffic_seed, 1)
        self.last_events = None
        self._obs = self._observation()
        info = {
            "has_packet": self._has_packet(),
            "lost": self.simulator.events(self.sim_state).lost[0],
            "traffic_seed": self.traffic_seed,
            "totals": episode_totals(self.sim_state),
        }
        return self._obs, info

    def step(self, action):
        if self.sim_state is None or self.last_events is not None and self.last_events.done:
            raise SimulationError("the episode is over (or was never started): call reset() first")
        joint = np.asarray(action)
        if joint.shape != self.degree.shape or not np.issubdtype(joint.dtype, np.integer):
            raise SimulationError(f"action must be {self.degree.shape[0]} integer slots, got {joint.dtype} {joint.shape}")
        busy = self._has_packet()
        events = self.simulator.step(self.sim_state, joint.astype(np.int64)[None])
        self.last_events = events
        per_router = self._reward(events, self.sim_state, self.degree.shape[0])
        self._obs = self._observation()
        info = {
            "delivered": events.delivered[0].copy(),
            "delivery_time_sum": events.delivery_time_sum[0].copy(),
            "lost": events.lost[0].copy(),
            "acted": busy,
            "has_packet": self._has_packet(),
            "router_rewards": per_router,
            "totals": episode_totals(self.sim_state),
        }
        return self._obs, float(per_router.mean()), False, bool(events.done), info

    def render(self) -> str | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called with render_mode=None; create the env with render_mode='ansi'")
            return None
        return _render_ansi(self.params, self.sim_state)

    def episode_totals(self) -> dict[str, int]:
        """Counts since the episode start: generated, delivered, lost, queued, in_flight, in_network."""
        if self.sim_state is None:
            raise SimulationError("call reset() first")
        return episode_totals(self.sim_state)

    def action_masks(self) -> np.ndarray:
        """bool [sum of degrees]: every router's slots whose link is up, concatenated in router
        order (the flat mask `sb3_contrib.MaskablePPO` takes for a MultiDiscrete action)."""
        if self.sim_state is None:
            raise SimulationError("call reset() first")
        return self._mask[self.simulator.slot_exists]

    def _observation(self) -> dict[str, np.ndarray] | np.ndarray:
        enc, mask = self.simulator.observe_encoded(self.sim_state)
        self._head, self._mask = enc[0, :, 0], mask[0].astype(bool)
        if self.observation_mode == "flat":
            one_hot = one_hot_observation(enc[0], self.degree, self.topology.max_degree)
            return np.concatenate([one_hot, mask[0].astype(np.float32)], axis=1).ravel()
        return {"observation": enc[0], "action_mask": mask[0]}

    def _has_packet(self) -> np.ndarray:
        """bool [N]: routers with a packet to forward (an empty queue is encoded as N)."""
        return self._head < self.degree.shape[0]


# ---------------------------------------------------------------------------- factories
def parallel_env(
    topology: str | os.PathLike[str] | Topology = "b4",
    load_per_router: float = 0.3,
    horizon_ticks: int = 500,
    failures: Iterable[str | LinkFailure] = (),
    buffer_limit: int | None = None,
    *,
    reward: str | RewardFn = DEFAULT_REWARD,
    render_mode: str | None = None,
    observation_mode: str = "dict",
) -> RoutingParallelEnv:
    """A `RoutingParallelEnv` (PettingZoo-style factory); see `make_params` for the arguments."""
    params = make_params(topology, load_per_router, horizon_ticks, failures, buffer_limit)
    return RoutingParallelEnv(params, reward=reward, render_mode=render_mode, observation_mode=observation_mode)


def gym_env(
    topology: str | os.PathLike[str] | Topology = "b4",
    load_per_router: float = 0.3,
    horizon_ticks: int = 500,
    failures: Iterable[str | LinkFailure] = (),
    buffer_limit: int | None = None,
    *,
    reward: str | RewardFn = DEFAULT_REWARD,
    render_mode: str | None = None,
    observation_mode: str = "dict",
) -> RoutingEnv:
    """A `RoutingEnv`; the entry point of the registered gymnasium ids."""
    params = make_params(topology, load_per_router, horizon_ticks, failures, buffer_limit)
    return RoutingEnv(params, reward=reward, render_mode=render_mode, observation_mode=observation_mode)


GYM_IDS = {"mamrl/B4-v0": "b4", "mamrl/GEANT-v0": "geant", "mamrl/ATT-v0": "att"}
"""Registered gymnasium ids and their built-in topologies."""


def register_envs() -> None:
    """Register `GYM_IDS` with gymnasium (idempotent): `gymnasium.make` gives a `RoutingEnv`,
    `gymnasium.make_vec(id, num_envs=N)` the native `mamrl.envs.vector.RoutingVectorEnv`."""
    for env_id, topology in GYM_IDS.items():
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point="mamrl.envs.routing:gym_env",
            vector_entry_point="mamrl.envs.vector:vector_env",
            kwargs={
                "topology": topology,
                "load_per_router": 0.3,
                "horizon_ticks": 500,
                "failures": (),
                "buffer_limit": None,
            },
        )


__all__ = [
    "GRAPH_NODE_FEATURES",
    "GYM_IDS",
    "OBSERVATION_MODES",
    "OBS_LEN",
    "DEFAULT_REWARD",
    "REWARDS",
    "RewardFn",
    "RoutingEnv",
    "RoutingParallelEnv",
    "encode_observation",
    "episode_totals",
    "gym_env",
    "make_params",
    "observation_nvec",
    "one_hot_observation",
    "one_hot_size",
    "parallel_env",
    "register_envs",
    "router_rewards",
    "sojourn_rewards",
]
