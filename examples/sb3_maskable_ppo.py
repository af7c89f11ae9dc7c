"""MaskablePPO (sb3-contrib) on mamrl's joint-action Gymnasium env: one agent sets every router's
next hop, and never picks a link that is down.

    pip install 'mamrl[examples]'        # stable-baselines3 and sb3-contrib
    python examples/sb3_maskable_ppo.py                                    # b4, λ = 0.3, 200k steps
    python examples/sb3_maskable_ppo.py --fail D-E --timesteps 100000      # with a failed link
    python examples/sb3_maskable_ppo.py --timesteps 256 --n-steps 128      # a smoke test

The env's `observation_mode="flat"` gives SB3 a flat `Box` (every router's one-hot observation and
action mask), and `RoutingEnv.action_masks()` the flat mask over the `MultiDiscrete` action that
MaskablePPO reads (sb3-contrib's `ActionMasker` wrapper finds it through `env.unwrapped`). At the
end the deterministic policy is evaluated on held-out traffic against shortest paths on the same
episodes.
"""

from __future__ import annotations

import argparse

import gymnasium
import numpy as np
from sb3_contrib import MaskablePPO
from sb3_contrib.common.wrappers import ActionMasker

import mamrl.envs  # noqa: F401  (registers the ids)
from mamrl.agents.shortest_path import ShortestPathPolicy
from mamrl.sim import Simulator

GYM_IDS = {"b4": "mamrl/B4-v0", "geant": "mamrl/GEANT-v0", "att": "mamrl/ATT-v0"}


def make_env(args: argparse.Namespace) -> gymnasium.Env:
    env = gymnasium.make(GYM_IDS[args.topology], load_per_router=args.load, horizon_ticks=args.horizon,
                         failures=tuple(args.fail), observation_mode="flat")
    return ActionMasker(env, lambda e: e.unwrapped.action_masks())


def evaluate(model: MaskablePPO, args: argparse.Namespace) -> dict[str, float]:
    env = make_env(args)
    inner = env.unwrapped
    learned = []
    for episode in range(args.eval_episodes):
        obs, _ = env.reset(seed=10_000 + episode)
        truncated = False
        while not truncated:
            action, _ = model.predict(obs, action_masks=inner.action_masks(), deterministic=True)
            obs, _, _, truncated, info = env.step(action)
        totals = info["totals"]
        learned.append((totals["delivered"] / max(totals["generated"], 1), totals["lost"] / max(totals["generated"], 1),
                        inner.traffic_seed))
    # Shortest paths on the very same episodes: each episode's traffic seed, episode index 0.
    spa = [Simulator(inner.params).run_tables(ShortestPathPolicy().routing_tables(inner.params), seed, 1).per_episode()
           for _, _, seed in learned]
    return {"ppo_delivered_fraction": float(np.mean([d for d, _, _ in learned])),
            "ppo_loss_fraction": float(np.mean([lost for _, lost, _ in learned])),
            "spa_delivered_fraction": float(np.mean([s["delivered_fraction"][0] for s in spa])),
            "spa_loss_fraction": float(np.mean([s["loss_fraction"][0] for s in spa]))}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="b4", choices=sorted(GYM_IDS))
    parser.add_argument("--load", type=float, default=0.3)
    parser.add_argument("--horizon", type=int, default=500)
    parser.add_argument("--fail", action="append", default=[], help="A failed link A-B[@TICK]; repeatable.")
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--n-steps", type=int, default=2048)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    env = make_env(args)
    model = MaskablePPO("MlpPolicy", env, n_steps=args.n_steps, batch_size=min(256, args.n_steps), seed=args.seed,
                        device="cpu", verbose=0)
    model.learn(total_timesteps=args.timesteps)
    result = evaluate(model, args)
    print(f"MaskablePPO after {args.timesteps} steps: delivered {100 * result['ppo_delivered_fraction']:.1f}%, "
          f"lost {100 * result['ppo_loss_fraction']:.2f}%; shortest paths on the same episodes: delivered "
          f"{100 * result['spa_delivered_fraction']:.1f}%, lost {100 * result['spa_loss_fraction']:.2f}%")
    return result


if __name__ == "__main__":
    main()
