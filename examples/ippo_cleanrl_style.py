"""Parameter-shared IPPO on mamrl's native vector environment, one file, top to bottom (CleanRL style).

Every router of every environment is an agent; all share one actor-critic network, which also sees
which router it is (a one-hot id), so routers can still act differently. Each router learns from
the team reward, the mean over routers of the loss-honest r_i = -(packets queued at i + in flight
from i + lost at i); summed over ticks it is minus the sojourn time of every packet, per router
(docs/environments.md). (A router's own r_i barely depends on where it sends: any send takes the
packet off its books.) Rewards are scaled by a running standard deviation of the return. A router with an
empty queue makes no decision, so its rows are left out of the loss.

    python examples/ippo_cleanrl_style.py                                   # b4, λ = 0.3, 3,200 episodes, ~15 min on 2 cores
    python examples/ippo_cleanrl_style.py --topology geant --load 0.1 --iterations 50
    python examples/ippo_cleanrl_style.py --iterations 2 --num-envs 2 --horizon 50   # a smoke test

Each iteration rolls out one whole episode in every environment (fresh traffic: the reset seed is
seed + iteration), so no advantage crosses an episode boundary; the horizon truncates the episode
and the last value is bootstrapped. It prints the delivered fraction, loss and mean sojourn time of
the iteration's episodes (the vector env's `info["episode"]`), and at the end evaluates the greedy
policy on held-out seeds against shortest paths on the same traffic.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch
from torch import nn

import mamrl.envs  # noqa: F401  (registers mamrl/B4-v0, mamrl/GEANT-v0, mamrl/ATT-v0)
from mamrl.envs import one_hot_observation

GYM_IDS = {"b4": "mamrl/B4-v0", "geant": "mamrl/GEANT-v0", "att": "mamrl/ATT-v0"}


@dataclass
class Args:
    topology: str = "b4"
    load: float = 0.3
    horizon: int = 500
    num_envs: int = 16
    iterations: int = 200
    seed: int = 0
    learning_rate: float = 1e-3  # b4, λ = 0.05, 100 ticks: delivered 47% -> 69% in 40 iterations at this rate
    gamma: float = 0.99
    gae_lambda: float = 0.95
    update_epochs: int = 4
    minibatches: int = 8
    clip_coef: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: int = 128
    eval_episodes: int = 8
    output: str = ""  # a JSON file for the arguments, the learning curve and the evaluation ("" = none)


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in vars(Args()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    return Args(**vars(parser.parse_args()))


class RunningMoments:
    """Running mean and variance of a stream of numbers (Chan et al.'s parallel update)."""

    def __init__(self) -> None:
        self.count, self.mean, self.var = 1e-4, 0.0, 1.0

    def update(self, x: np.ndarray) -> None:
        total = self.count + x.size
        delta = float(x.mean()) - self.mean
        self.mean += delta * x.size / total
        self.var = (self.var * self.count + float(x.var()) * x.size + delta**2 * self.count * x.size / total) / total
        self.count = total


class Agent(nn.Module):
    """Shared actor-critic: input = the router's one-hot observation + its one-hot id."""

    def __init__(self, in_dim: int, num_actions: int, hidden: int):
        super().__init__()

        def mlp(out: int, scale: float) -> nn.Sequential:
            last = nn.Linear(hidden, out)
            nn.init.orthogonal_(last.weight, scale)
            nn.init.zeros_(last.bias)
            return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), last)

        self.actor, self.critic = mlp(num_actions, 0.01), mlp(1, 1.0)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def act(self, x: torch.Tensor, mask: torch.Tensor, action: torch.Tensor | None = None):
        logits = self.actor(x).masked_fill(~mask, -1e9)
        dist = torch.distributions.Categorical(logits=logits)
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.value(x)


def features(obs: dict[str, np.ndarray], degree: np.ndarray, max_degree: int,
             time_fraction: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[B, N, D] inputs, [B, N, K] bool masks (slots that exist and are up) and [B, N] has-packet.
    The inputs end with the share of the episode gone (t / H): the return to go shrinks to 0 at
    the horizon, and a critic that cannot see the time cannot predict it."""
    b, n, _ = obs["observation"].shape
    one_hot = one_hot_observation(obs["observation"], degree, max_degree)
    ids = np.broadcast_to(np.eye(n, dtype=np.float32), (b, n, n))
    clock = np.full((b, n, 1), time_fraction, dtype=np.float32)
    x = torch.from_numpy(np.concatenate([one_hot, ids, clock], axis=-1))
    mask = torch.from_numpy(obs["action_mask"].astype(bool))
    # A router whose links are all down must still send somewhere (and lose the packet).
    mask = mask | ~mask.any(dim=-1, keepdim=True) & torch.from_numpy(np.arange(max_degree) < degree[:, None])
    busy = torch.from_numpy(obs["observation"][..., 0] < n)
    return x, mask, busy


def evaluate(agent: Agent, args: Args, seeds: list[int]) -> dict:
    """Greedy policy and shortest paths on the same traffic (same seeds), one episode per env."""
    from mamrl.agents.shortest_path import ShortestPathPolicy
    from mamrl.envs import make_params
    from mamrl.sim import Simulator
    from mamrl.sim.metrics import estimate

    env = gymnasium.make_vec(GYM_IDS[args.topology], num_envs=len(seeds), load_per_router=args.load,
                             horizon_ticks=args.horizon)
    obs, _ = env.reset(seed=seeds[0])
    degree, k = env.degree, env.topology.max_degree
    with torch.no_grad():
        for t in range(args.horizon):
            x, mask, _ = features(obs, degree, k, t / args.horizon)
            action = agent.actor(x).masked_fill(~mask, -1e9).argmax(dim=-1)
            obs, _, _, _, info = env.step(action.numpy())
    keys = ("delivered_fraction", "loss_fraction", "mean_sojourn_time")
    learned = {key: np.asarray(info["episode"][key], dtype=np.float64) for key in keys}
    params = make_params(args.topology, args.load, args.horizon)
    spa = Simulator(params).run_tables(ShortestPathPolicy().routing_tables(params), seeds[0], len(seeds)).per_episode()
    out: dict = {"per_episode": {}}
    for name, values in (("ippo", learned), ("spa", spa)):
        out["per_episode"][name] = {key: np.asarray(values[key], dtype=np.float64).tolist() for key in keys}
        for key in keys:
            mean_ci = estimate(values[key])  # mean and Student-t 95% CI, as every mamrl table
            out[f"{name}_{key}"], out[f"{name}_{key}_ci95"] = mean_ci.mean, mean_ci.ci95
    return out


def main(args: Args) -> dict[str, float]:
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # small networks: one thread is fastest, and leaves the other cores to the simulator
    env = gymnasium.make_vec(GYM_IDS[args.topology], num_envs=args.num_envs, load_per_router=args.load,
                             horizon_ticks=args.horizon)
    degree, n, k = env.degree, env.topology.num_routers, env.topology.max_degree
    obs, _ = env.reset(seed=args.seed)
    in_dim = one_hot_observation(obs["observation"][:1], degree, k).shape[-1] + n + 1
    agent = Agent(in_dim, k, args.hidden)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    steps, b = args.horizon, args.num_envs

    # Rollout storage, [T, B, N, ...]: every router of every environment is an agent.
    xs = torch.zeros((steps, b, n, in_dim))
    masks = torch.zeros((steps, b, n, k), dtype=torch.bool)
    busy = torch.zeros((steps, b, n), dtype=torch.bool)
    actions = torch.zeros((steps, b, n), dtype=torch.long)
    logprobs = torch.zeros((steps, b, n))
    rewards = torch.zeros((steps, b, n))
    values = torch.zeros((steps + 1, b, n))
    last: dict[str, float] = {}
    return_stats = RunningMoments()
    start = time.time()
    curve: list[dict[str, float]] = []

    for iteration in range(1, args.iterations + 1):
        obs, _ = env.reset(seed=args.seed + iteration)
        for t in range(steps):
            x, mask, acting = features(obs, degree, k, t / steps)
            with torch.no_grad():
                action, logprob, _, value = agent.act(x, mask)
            xs[t], masks[t], busy[t], actions[t], logprobs[t], values[t] = x, mask, acting, action, logprob, value
            obs, _, _, _, info = env.step(action.numpy())
            # A router's own r_i barely depends on where it sends a packet (any send moves the packet
            # off its books), so every router learns from the team reward: the mean of r_i over routers.
            rewards[t] = torch.from_numpy(info["router_rewards"]).float().mean(dim=-1, keepdim=True).expand(b, n)
        # The objective ends at the horizon (the sojourn time counts to it): no bootstrap, values[steps] = 0.

        # Rewards count packets (hundreds per router per tick in a congested network): divide them by
        # a running standard deviation of the discounted return (SB3's VecNormalize), so the
        # critic's targets stay O(1) and its loss does not drown the actor's gradient.
        discounted = torch.zeros((b, n))
        for t in range(steps):
            discounted = args.gamma * discounted + rewards[t]
            return_stats.update(discounted.reshape(-1).numpy())
        rewards /= float(np.sqrt(return_stats.var) + 1e-8)

        # GAE per router stream.
        advantages = torch.zeros_like(rewards)
        running = torch.zeros((b, n))
        for t in reversed(range(steps)):
            delta = rewards[t] + args.gamma * values[t + 1] - values[t]
            running = delta + args.gamma * args.gae_lambda * running
            advantages[t] = running
        returns = advantages + values[:steps]

        # PPO on the decisions actually made (routers with a packet).
        keep = busy.reshape(-1)
        flat = [tensor.reshape(-1, *tensor.shape[3:])[keep] for tensor in (xs, masks, actions, logprobs, advantages, returns)]
        b_x, b_mask, b_actions, b_logprobs, b_adv, b_returns = flat
        size = b_x.shape[0]
        for _ in range(args.update_epochs if size >= 2 * args.minibatches else 0):
            # Exactly `minibatches` near-equal parts: a remainder of one row would normalise to NaN.
            for idx in torch.tensor_split(torch.randperm(size), args.minibatches):
                _, new_logprob, entropy, new_value = agent.act(b_x[idx], b_mask[idx], b_actions[idx])
                ratio = (new_logprob - b_logprobs[idx]).exp()
                adv = b_adv[idx]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                value_loss = 0.5 * ((new_value - b_returns[idx]) ** 2).mean()
                loss = policy_loss - args.ent_coef * entropy.mean() + args.vf_coef * value_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.actor.parameters(), args.max_grad_norm)
                nn.utils.clip_grad_norm_(agent.critic.parameters(), args.max_grad_norm)
                optimizer.step()

        episode = info["episode"]
        last = {key: float(np.mean(episode[key])) for key in ("delivered_fraction", "loss_fraction", "mean_sojourn_time")}
        curve.append({"iteration": iteration, "episodes": iteration * b, **last})
        print(f"iteration {iteration}/{args.iterations}: delivered {100 * last['delivered_fraction']:.1f}%, "
              f"lost {100 * last['loss_fraction']:.2f}%, sojourn {last['mean_sojourn_time']:.1f} ticks, "
              f"{size} decisions, {time.time() - start:.0f} s", flush=True)

    # Episodes 0..E-1 of seed 10,000 + seed: `mamrl evaluate RUN --seed 10000 -n E` replays the same traffic.
    result = evaluate(agent, args, [10_000 + args.seed + e for e in range(args.eval_episodes)])
    print("greedy policy on held-out traffic, against shortest paths on the same episodes (mean ± 95% CI):")
    for key in ("delivered_fraction", "loss_fraction", "mean_sojourn_time"):
        print(f"  {key}: IPPO {result[f'ippo_{key}']:.4g} ± {result[f'ippo_{key}_ci95']:.2g}, "
              f"SPA {result[f'spa_{key}']:.4g} ± {result[f'spa_{key}_ci95']:.2g}")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"args": vars(args), "wall_time_s": round(time.time() - start, 1), "curve": curve,
                       "evaluation": {"seed": 10_000 + args.seed, "episodes": args.eval_episodes, **result}}, handle, indent=1)
        print(f"wrote {args.output}")
    return {**last, **result}


if __name__ == "__main__":
    main(parse_args())
