"""The paper's learner (§2.2, §3.2–3.3): deep per-router policies, a consensus-estimated
network-wide reward, and TRPO per router. Algorithm name `mamrl` (alias `deep-consensus`); it is
the "MAMRL" curve of Fig. 4 (the meta-learning of §2.3 is in `mamrl.meta`).

One training iteration:
 1. roll out E episodes in parallel with every router sampling from its own policy
    (`rollout`): per tick, router i sees its observation, picks a neighbour, and afterwards
    records r^_i = -(mean delivery time of the packets delivered at i that step, 0 if none)
    and r~_i = -(packets lost at i that step);
 2. every router estimates the network-wide mean of r^ by dynamic consensus with its neighbours
    (Eq. 4) and is rewarded e_i = r~_i + x_i (Eq. 6);
 3. per router: values from its linear feature baseline (fitted on the previous iteration's
    returns, as rllab does), GAE advantages over ticks, normalised over its own decisions;
 4. per router: a TRPO step on its own decisions (`trpo.trpo_update`, all routers batched).

The paper's reward (`reward="paper"`) is degenerate and kept for reproduction only: r^ only
counts packets that *are* delivered and is 0 at ticks without deliveries, so delivering fewer
packets raises it (only losses are penalised, through r~, one unit per packet). Trained on it,
policies learn to deliver less (RESULTS.md). Two alternatives of ours, both loss-honest (a lost
packet never scores better than a delivered one):
* `reward="backlog"`: r^_i = -(packets queued at i + packets i has in flight + packets lost at i
  so far), whose network sum is minus the packets not delivered (generated - delivered): summed
  over ticks, by Little's law, minus the sojourn time of every generated packet (docs/model.md, lost
  packets at their age at the horizon). A dropped packet stays in the sum until the horizon, so
  dropping never lowers the backlog. Still spread by consensus;
* `reward="packet"`: no consensus; each decision is credited with its own packet's outcome,
  -(delivery tick - decision tick) if delivered, -(H - decision tick) if still in the network at
  the horizon H, and -(H - decision tick) - loss_penalty if lost: a lost packet is never
  delivered, so it costs at least as much as one stuck until the horizon (the tabular PG's rule,
  `mamrl.agents.policy_gradient`). It is the information a packet can carry back to the routers
  it crossed. Advantages are these returns minus the router's linear baseline.
`loss_honest=False` restores the rules before (backlog without lost packets; a loss charged
`loss_penalty` ticks from when it happened), to resume and reproduce older runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from mamrl.agents.base import Progress, RoutingAgent, in_chunks, training_start
from mamrl.agents.networks import (
    PRECISIONS,
    StackedPolicy,
    encode_fields,
    field_offsets,
    input_dim,
    matmul_precision,
    policy_logits,
    slot_mask,
)
from mamrl.agents.trpo import (
    RouterBatch,
    TrpoStats,
    baseline_features,
    discounted_returns,
    fit_linear_baseline,
    gae,
    trpo_update,
)
from mamrl.consensus import MODES as CONSENSUS_MODES
from mamrl.consensus import DynamicConsensus
from mamrl.errors import MamrlError
from mamrl.sim import kernel
from mamrl.sim.metrics import metrics_for
from mamrl.sim.params import SimParams, require_fifo
from mamrl.sim.simulator import Simulator, in_flight_by_sender, undelivered_by_router
from mamrl.sim.traffic import draw_policy_uniforms
from mamrl.validate import SEED, Choice, Flag, Items, Number, check_fields, integer, setting

REWARDS = ("paper", "backlog", "packet")
MAX_LAYER_SIZE = 65_536
"""Largest hidden layer accepted (per router: 5 such layers would need 80 GB of weights)."""


@dataclass
class DeepConsensusConfig:
    """Hyper-parameters of the deep consensus learner; defaults and where they come from."""

    config_name: ClassVar[str] = "mamrl"

    hidden_sizes: tuple[int, ...] = setting((128, 128, 128, 128, 128), Items(integer(1, MAX_LAYER_SIZE), non_empty=True))
    """Hidden layers of every router's MLP (paper §3.3: five of 128, ReLU)."""
    episodes_per_iteration: int = setting(16, integer(1))
    """Episodes rolled out per TRPO iteration (E)."""
    discount: float = setting(0.99, Number(at_least=0, at_most=1))
    """gamma, per tick (rllab's default)."""
    gae_lambda: float = setting(0.95, Number(at_least=0, at_most=1))
    """lambda of GAE."""
    max_kl: float = setting(0.01, Number(above=0))
    """TRPO trust region (the paper authors' configuration)."""
    cg_iterations: int = setting(10, integer(1))
    """Conjugate-gradient iterations (the paper authors' configuration)."""
    cg_damping: float = setting(1e-3, Number(at_least=0))
    """Damping added to Fisher-vector products."""
    fvp_fraction: float = setting(0.1, Number(above=0, at_most=1))
    """Share of decisions used for Fisher-vector products (TRPO's usual subsampling)."""
    update_precision: str = setting("float32", Choice(PRECISIONS))
    """Arithmetic of the networks' matrix products in the learning updates (gradients,
    Fisher-vector products, line search): `float32`, or `bfloat16` operands with float32
    accumulation, logits, log-probabilities and KLs. bfloat16 makes a TRPO update about 2x faster
    on a CPU with bfloat16 instructions (AVX-512 BF16, AMX) and slower on one without; it learns as
    float32 does within seed noise (BENCHMARKS.md). Rollouts always run in float32."""
    consensus_gain: float = setting(0.0, Number(at_least=0, at_most=1))
    """beta of Eq. 4; 0 = 0.5 / max degree (stable for any topology)."""
    consensus_mode: str = setting("consensus", Choice(CONSENSUS_MODES))
    """`consensus` (Eq. 4) or `centralised` (every router given the true mean; ablation)."""
    reward: str = setting("packet", Choice(REWARDS))
    """`packet` (each decision credited with its packet's outcome; loss-honest), `backlog`, or
    `paper` (r^ = -mean delivery time of delivered packets: the paper's, degenerate, since
    delivering less raises it; by name only, for reproduction); see the module doc."""
    loss_penalty: float = setting(100.0, Number(at_least=0))
    """Extra cost of a lost packet in ticks for `reward="packet"`, on top of the rest of the
    horizon: a loss is strictly worse than a packet still in the network at the horizon."""
    loss_honest: bool = setting(True, Flag())
    """Loss-honest `backlog` and `packet` rewards (module doc); False is the rules before, kept to
    resume and reproduce older runs. No effect on `paper`."""
    mask_down_links: bool = setting(False, Flag())
    """Let policies see which of their links are down (off: the paper's routers learn failures from loss)."""
    seed: int = setting(0, SEED)
    """Seed of the initial weights, combined with the training seed: weights are drawn from
    (seed, training seed) when `train` first runs, so sweep seeds vary the initialisation too."""

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class Rollout:
    """E episodes of every router's experience. Arrays [T, E, N, ...] (T = horizon)."""

    fields: np.ndarray
    """int64 [T, E, N, G] observation rows."""
    acted: np.ndarray
    """bool [T, E, N] whether the router forwarded a packet (made a decision)."""
    actions: np.ndarray
    """int64 [T, E, N] chosen slots (meaningful where acted)."""
    valid: np.ndarray | None
    """bool [T, E, N, K] slots the policy could choose (only with mask_down_links)."""
    signal: np.ndarray
    """float64 [T, E, N] r^ (delivery-time or backlog signal) per router and tick."""
    loss_signal: np.ndarray
    """float64 [T, E, N] r~ = -(packets lost at the router that tick)."""
    metrics: dict[str, np.ndarray]
    """Per-episode metrics (docs/model.md)."""
    decisions: int
    """Number of decisions actually made."""
    packet_return: np.ndarray | None = None
    """float64 [T, E, N] with `reward="packet"`: the decision's packet outcome (see module doc)."""
    policy_seconds: float = 0.0
    """Wall time spent in the policy networks' forward passes and sampling (the rest is simulation)."""


def rollout(
    policy_params: dict[str, torch.Tensor],
    valid_slots: torch.Tensor,
    params: SimParams,
    seed: int,
    num_episodes: int,
    first_episode: int = 0,
    *,
    reward: str = "packet",
    mask_down_links: bool = False,
    loss_penalty: float = 100.0,
    loss_honest: bool = True,
    sim: Simulator | None = None,
) -> Rollout:
    """Run episodes with every router sampling from its policy (inverse CDF on the episode's
    policy stream, so a seed fixes the decisions given the weights). `reward`, `loss_penalty` and
    `loss_honest` as in `DeepConsensusConfig`."""
    require_fifo(params, "mamrl (deep consensus) rollouts")
    sim = sim or Simulator(params)
    topo = params.topology
    n, k, horizon = topo.num_routers, topo.max_degree, params.horizon_ticks
    state = sim.reset(seed, num_episodes, first_episode)
    uniforms = draw_policy_uniforms(seed, num_episodes, horizon, n, first_episode)
    fields = np.empty((horizon, num_episodes, n, 12), dtype=np.int64)
    acted = np.empty((horizon, num_episodes, n), dtype=bool)
    actions = np.zeros((horizon, num_episodes, n), dtype=np.int64)
    valid_log = np.empty((horizon, num_episodes, n, k), dtype=bool) if mask_down_links else None
    signal = np.zeros((horizon, num_episodes, n))
    loss_signal = np.zeros((horizon, num_episodes, n))
    degree_last = topo.degree[None, :] - 1
    heads = np.full((horizon, num_episodes, n), -1, dtype=np.int64) if reward == "packet" else None
    policy_seconds = 0.0
    # Rollouts stay float32 whatever the update precision: one tick's products are too small to gain.
    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        for t in range(horizon):
            obs = sim.observe(state)
            fields[t] = encode_fields(obs.head_destination, obs.longest_queue_neighbor, obs.last_actions, n, k)
            acted[t] = obs.has_packet
            if mask_down_links:
                # A router whose links are all down keeps its full mask (it must send somewhere).
                mask = obs.action_mask | ~obs.action_mask.any(axis=2, keepdims=True)
                mask &= sim.slot_exists[None]
                valid_log[t] = mask
                valid = torch.from_numpy(mask).transpose(0, 1)
            else:
                valid = valid_slots
            start = time.perf_counter()
            logits = policy_logits(policy_params, torch.from_numpy(fields[t]).transpose(0, 1), valid)
            cumulative = torch.softmax(logits, dim=-1).cumsum(dim=-1).transpose(0, 1).numpy()  # [E, N, K]
            choice = (uniforms[:, t, :, None] >= cumulative).sum(axis=2)
            policy_seconds += time.perf_counter() - start
            actions[t] = np.minimum(choice, degree_last)
            if heads is not None:
                heads[t] = state.q_head
            if reward == "backlog":
                # Loss-honest: a lost packet stays undelivered, so it counts until the horizon (at the router that lost it).
                signal[t] = -(undelivered_by_router(state) if loss_honest else state.q_len + in_flight_by_sender(state))
            events = sim.step(state, actions[t])
            if reward == "paper":
                delivered = events.delivered
                signal[t] = -np.divide(events.delivery_time_sum, delivered, out=np.zeros(delivered.shape), where=delivered > 0)
            loss_signal[t] = -events.lost
    metrics = metrics_for(state, params)
    packet_return = None if heads is None else _packet_returns(state, heads, horizon, loss_penalty, loss_honest)
    return Rollout(fields, acted, actions, valid_log, signal, loss_signal, metrics, int(acted.sum()), packet_return,
                   policy_seconds)


def _packet_returns(state: kernel.State, heads: np.ndarray, horizon: int, loss_penalty: float,
                    loss_honest: bool = True) -> np.ndarray:
    """[T, E, N]: -(end tick - decision tick) - loss_penalty * lost for each decision's packet;
    a packet still in the network ends at the horizon (its age then, a lower bound), and so does
    a lost one with `loss_honest` (it is never delivered)."""
    episode = np.arange(heads.shape[1])[None, :, None]
    p = np.maximum(heads, 0)
    fate = state.pk[episode, p, kernel.PK_FATE]
    at_horizon = (fate == kernel.FATE_PENDING) | ((fate == kernel.FATE_LOST) & loss_honest)
    end = np.where(at_horizon, horizon, state.pk[episode, p, kernel.PK_END_TICK])
    ticks = np.arange(heads.shape[0])[:, None, None]
    out = -(end - ticks) - loss_penalty * (fate == kernel.FATE_LOST)
    return np.where(heads >= 0, out, 0.0).astype(np.float64)


@dataclass
class IterationLog:
    """One training iteration, for learning curves."""

    iteration: int
    episodes: int
    reward: float
    """Mean per-router return (sum over ticks of e_i), averaged over routers and episodes."""
    mean_delivery_time: float
    mean_sojourn_time: float
    delivered_fraction: float
    loss_fraction: float
    kl: float
    accepted_share: float
    decisions: int
    rollout_seconds: float
    update_seconds: float


class DeepConsensus(RoutingAgent):
    """Deep per-router policies + consensus reward + per-router TRPO (the paper's learner)."""

    name = "mamrl"
    learns = True
    rollout_bytes_per_router_tick = 2000.0  # measured: 1.6 kB (b4, 10 episodes of 4,000 ticks)
    # Measured on the paper preset's E1: a deep cell costs 80-100 PG cells at λ = 0.3-0.5, and its
    # rollout calls every router's network every tick whatever the load.
    learning_cost_per_router_tick = 40.0

    def __init__(self, config: DeepConsensusConfig | None = None):
        self.cfg = config or DeepConsensusConfig()  # checked when built (DeepConsensusConfig.__post_init__)
        self.policy: StackedPolicy | None = None
        self.baseline_weights: torch.Tensor | None = None
        self.episodes_trained = 0
        self.log: list[IterationLog] = []
        self._shape: tuple[int, int] | None = None

    @property
    def episodes_per_update(self) -> int:
        """Episodes consumed by one TRPO iteration (a natural checkpoint interval)."""
        return self.cfg.episodes_per_iteration

    # ------------------------------------------------------------------ setup
    def _ensure(self, params: SimParams, train_seed: int = 0) -> None:
        topo = params.topology
        shape = (topo.num_routers, topo.max_degree)
        if self.policy is None:
            init_seed = int(np.random.SeedSequence([self.cfg.seed, train_seed]).generate_state(1)[0])
            self.policy = StackedPolicy(topo.num_routers, topo.max_degree, topo.degree, self.cfg.hidden_sizes, init_seed)
            self._shape = shape
            feature_dim = input_dim(*shape) + 4
            self.baseline_weights = torch.zeros((topo.num_routers, feature_dim), dtype=torch.float64)
        elif self._shape != shape:
            raise MamrlError(f"mamrl policies are for {self._shape[0]} routers of degree <= {self._shape[1]}, topology {topo.name!r} differs")

    def consensus(self, params: SimParams) -> DynamicConsensus:
        gain = self.cfg.consensus_gain or None
        return DynamicConsensus.for_topology(params.topology, gain, self.cfg.consensus_mode)

    # ------------------------------------------------------------------ data -> batch
    def rewards(self, params: SimParams, data: Rollout) -> np.ndarray:
        """e [T, E, N] = r~ + x, x the consensus estimate of the mean of r^ (Eq. 4, 6)."""
        return data.loss_signal + self.consensus(params).run(data.signal)

    def router_batch(self, params: SimParams, data: Rollout, baseline_weights: torch.Tensor | None, *,
                     baseline_seed: int | None = None) -> tuple[RouterBatch, torch.Tensor]:
        """Each router's decisions with advantages; also returns the baseline refitted on this
        data's returns. Advantages use `baseline_weights` (fitted on earlier data, as rllab's TRPO
        does), or with None the baseline refitted on this same data (as rllab's MAML does: each
        task's batch gets its own baseline). `baseline_seed` seeds the sample of rows the baseline
        is fitted on (None: `episodes_trained`, this learner's own)."""
        horizon = params.horizon_ticks
        n = params.topology.num_routers
        in_dim = input_dim(n, params.topology.max_degree)
        fields = torch.from_numpy(data.fields)  # [T, E, N, G]
        ticks = torch.arange(horizon)[:, None, None].expand(data.acted.shape)
        acted = torch.from_numpy(data.acted)
        if data.packet_return is not None:
            rewards = None
            returns = torch.from_numpy(data.packet_return)
            new_weights = self._fit_baseline(fields, ticks, returns, in_dim, horizon, baseline_seed, rows_mask=acted)
        else:
            rewards = torch.from_numpy(self.rewards(params, data))  # [T, E, N]
            returns = discounted_returns(rewards, self.cfg.discount)
            new_weights = self._fit_baseline(fields, ticks, returns, in_dim, horizon, baseline_seed)
        # Values of every (tick, episode, router) under the baseline: gather, no dense features.
        w = new_weights if baseline_weights is None else baseline_weights  # [N, D_in + 4]
        router_index = torch.arange(n)[None, None, :, None].expand(fields.shape)
        values = w[router_index, fields].sum(dim=-1)
        tau = ticks.to(torch.float64) / horizon
        values = values + w[:, in_dim] * tau + w[:, in_dim + 1] * tau**2 + w[:, in_dim + 2] * tau**3 + w[:, in_dim + 3]
        if rewards is None:
            advantages = returns - values
        else:
            advantages = gae(rewards, values, self.cfg.discount, self.cfg.gae_lambda)

        counts = acted.sum(dim=(0, 1))  # [N]
        m = int(max(int(counts.max()), 1))
        batch_fields = torch.zeros((n, m, fields.shape[-1]), dtype=torch.int64)
        batch_actions = torch.zeros((n, m), dtype=torch.int64)
        batch_adv = torch.zeros((n, m), dtype=torch.float32)
        mask = torch.zeros((n, m), dtype=torch.bool)
        valid = None if data.valid is None else torch.ones((n, m, params.topology.max_degree), dtype=torch.bool)
        actions = torch.from_numpy(data.actions)
        for i in range(n):
            sel = acted[:, :, i]
            c = int(counts[i])
            batch_fields[i, :c] = fields[:, :, i][sel]
            batch_actions[i, :c] = actions[:, :, i][sel]
            adv = advantages[:, :, i][sel]
            if c > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            batch_adv[i, :c] = adv.to(torch.float32)
            mask[i, :c] = True
            if valid is not None:
                valid[i, :c] = torch.from_numpy(data.valid)[:, :, i][sel]
        # Padding rows point at row 0 of each field; they are masked out of every mean.
        batch_fields[~mask] = torch.from_numpy(field_offsets(n, params.topology.max_degree))
        slots = slot_mask(params.topology.degree, params.topology.max_degree) if valid is None else valid
        return RouterBatch(batch_fields, batch_actions, batch_adv, mask, slots), new_weights

    def _fit_baseline(self, fields, ticks, returns, in_dim, horizon, seed: int | None, max_rows: int = 2048,
                      rows_mask=None) -> torch.Tensor:
        """Refit every router's linear baseline on (a sample of) its rows, drawn with `seed` (None:
        `episodes_trained`); with `rows_mask` [T, E, N] only on the rows it marks (a router's decisions)."""
        t, e, n, g = fields.shape
        generator = torch.Generator().manual_seed(self.episodes_trained if seed is None else seed)
        f_all = fields.reshape(t * e, n, g).transpose(0, 1)
        tk_all = ticks.reshape(t * e, n).transpose(0, 1)
        ret_all = returns.reshape(t * e, n).transpose(0, 1)
        if rows_mask is None:
            pick = torch.randperm(t * e, generator=generator)[: min(t * e, max_rows)]
            return fit_linear_baseline(baseline_features(f_all[:, pick], tk_all[:, pick], in_dim, horizon), ret_all[:, pick])
        # Rows per router differ: take up to max_rows of each router's own rows, padding with
        # zero-weight copies so the batched solve stays rectangular.
        m = rows_mask.reshape(t * e, n).transpose(0, 1)
        chosen = torch.zeros((n, max_rows), dtype=torch.int64)
        weight = torch.zeros((n, max_rows), dtype=torch.float64)
        for i in range(n):
            rows = torch.nonzero(m[i]).squeeze(1)
            rows = rows[torch.randperm(len(rows), generator=generator)[:max_rows]]
            chosen[i, : len(rows)] = rows
            weight[i, : len(rows)] = 1.0
        take = lambda a: torch.gather(a, 1, chosen if a.dim() == 2 else chosen[..., None].expand(-1, -1, a.shape[-1]))
        features = baseline_features(take(f_all), take(tk_all), in_dim, horizon) * weight[..., None]
        return fit_linear_baseline(features, take(ret_all) * weight)

    # ------------------------------------------------------------------ RoutingAgent
    def train(self, params: SimParams, seed: int, num_episodes: int, *, first_episode: int | None = None,
              on_progress: Progress | None = None):
        first = training_start(first_episode, self.episodes_trained)
        self._ensure(params, seed)
        sim = Simulator(params)

        def iteration(size: int, done: int) -> dict[str, np.ndarray]:
            return self.train_iteration(params, seed, size, first_episode=first + done, sim=sim)[1]

        return in_chunks(num_episodes, self.cfg.episodes_per_iteration, iteration, on_progress)

    def train_iteration(self, params: SimParams, seed: int, num_episodes: int, *, first_episode: int | None = None,
                        sim: Simulator | None = None):
        """One rollout of episodes `first_episode ..` (None: after those already trained) + TRPO
        step; returns its log entry and the episodes' metrics."""
        first = training_start(first_episode, self.episodes_trained)
        self._ensure(params, seed)
        start = time.perf_counter()
        data = self._rollout(params, seed, num_episodes, first, sim)
        rolled = time.perf_counter()
        # The episode index also seeds the baseline's row sample and the TRPO subsample.
        batch, new_weights = self.router_batch(params, data, self.baseline_weights, baseline_seed=first)
        generator = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + first)
        with matmul_precision(self.cfg.update_precision):
            new_params, stats = trpo_update(
                self.policy.param_dict(), batch, max_kl=self.cfg.max_kl, cg_iterations=self.cfg.cg_iterations,
                cg_damping=self.cfg.cg_damping, fvp_fraction=self.cfg.fvp_fraction, generator=generator,
            )
        with torch.no_grad():
            for key, value in new_params.items():
                self.policy.params[key].copy_(value)
        self.baseline_weights = new_weights
        self.episodes_trained = first + num_episodes
        entry = self._log_entry(params, data, stats, rolled - start, time.perf_counter() - rolled, num_episodes)
        self.log.append(entry)
        return entry, data.metrics

    def mean_return(self, params: SimParams, data: Rollout) -> float:
        """The learner's own reward of a rollout: the mean decision return with `reward="packet"`,
        else the per-router return (sum over ticks of e_i) averaged over routers and episodes."""
        if data.packet_return is not None:
            returns = data.packet_return[data.acted]
            return float(returns.mean()) if returns.size else float("nan")
        return float(self.rewards(params, data).sum(axis=0).mean())

    def _log_entry(self, params, data: Rollout, stats: TrpoStats, rollout_s: float, update_s: float, episodes: int) -> IterationLog:
        m = data.metrics
        rewards = self.mean_return(params, data)
        return IterationLog(
            iteration=len(self.log) + 1,
            episodes=self.episodes_trained,
            reward=float(rewards),
            # No packet delivered in any episode leaves the paper's delivery time undefined (nan).
            mean_delivery_time=finite_mean(m["mean_delivery_time"]),
            mean_sojourn_time=finite_mean(m["mean_sojourn_time"]),
            delivered_fraction=finite_mean(m["delivered_fraction"]),
            loss_fraction=finite_mean(m["loss_fraction"]),
            kl=float(stats.kl[stats.accepted].mean()) if bool(stats.accepted.any()) else 0.0,
            accepted_share=float(stats.accepted.float().mean()),
            decisions=data.decisions,
            rollout_seconds=rollout_s,
            update_seconds=update_s,
        )

    def evaluate(self, params, seed, num_episodes, *, batch_size=32, on_progress: Progress | None = None):
        self._ensure(params)
        sim = Simulator(params)

        return in_chunks(num_episodes, batch_size,
                         lambda size, done: self._rollout(params, seed, size, done, sim).metrics, on_progress)

    def _rollout(self, params: SimParams, seed: int, num_episodes: int, first_episode: int, sim: Simulator | None) -> Rollout:
        """Episodes with the current policies and this agent's reward and masking settings."""
        return rollout(self.policy.param_dict(), self.policy.valid, params, seed, num_episodes, first_episode,
                       reward=self.cfg.reward, mask_down_links=self.cfg.mask_down_links,
                       loss_penalty=self.cfg.loss_penalty, loss_honest=self.cfg.loss_honest, sim=sim)

    # ------------------------------------------------------------------ persistence
    def config(self):
        values = dict(vars(self.cfg))
        values["hidden_sizes"] = list(values["hidden_sizes"])
        return values

    def state_arrays(self):
        if self.policy is None:
            return {}
        out = {f"policy.{k}": v.detach().numpy() for k, v in self.policy.params.items()}
        out["baseline"] = self.baseline_weights.numpy()
        out["episodes_trained"] = np.array(self.episodes_trained)
        out["degree"] = self.policy.valid.sum(dim=1).numpy().astype(np.int64)
        return out

    def load_state_arrays(self, arrays):
        if "degree" not in arrays or not any(k.startswith("policy.") for k in arrays):
            raise MamrlError("mamrl checkpoint has no policy weights")
        degree = np.asarray(arrays["degree"], dtype=np.int64)
        n, k = len(degree), int(degree.max())
        self.policy = StackedPolicy(n, k, degree, self.cfg.hidden_sizes, self.cfg.seed)
        with torch.no_grad():
            for key, param in self.policy.params.items():
                if f"policy.{key}" not in arrays:
                    raise MamrlError(f"mamrl checkpoint lacks policy.{key}")
                value = torch.from_numpy(np.asarray(arrays[f"policy.{key}"]))
                if value.shape != param.shape:
                    raise MamrlError(f"mamrl checkpoint: {key} has shape {tuple(value.shape)}, expected {tuple(param.shape)} (hidden_sizes differ?)")
                param.copy_(value)
        self._shape = (n, k)
        self.baseline_weights = torch.from_numpy(np.asarray(arrays["baseline"], dtype=np.float64))
        self.episodes_trained = int(arrays["episodes_trained"])


def finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")
