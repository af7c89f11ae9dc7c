#!/usr/bin/env python
"""How deterministic meta-initialisations are: the mean entropy of each router's policy over the
decisions it makes on the intact network (RESULTS.md §3.2 compares the four b4 seeds with it).

    python scripts/policy_entropy.py runs/failures-b4/meta_init.pt runs/failures-b4-meta-seed3/meta_init.pt \
        [--topology b4] [--load 0.3] [--episodes 4] [--seed 777]

Each file is a `meta_init.pt` that `mamrl failures` writes. Every file is measured on the same
episodes' traffic (same seed); the decisions differ because the policies do.
"""

from __future__ import annotations

import argparse
import sys

import torch

from mamrl.agents.deep_consensus import DeepConsensus, rollout
from mamrl.agents.trpo import log_probs
from mamrl.errors import MamrlError
from mamrl.experiments.failures import load_meta_init
from mamrl.sim.params import SimParams
from mamrl.topologies import load_topology


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("meta_inits", nargs="+", help="meta_init.pt files")
    parser.add_argument("--topology", default="b4")
    parser.add_argument("--load", type=float, default=0.3, help="load per router (λ)")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=777)
    args = parser.parse_args()
    try:
        params = SimParams(load_topology(args.topology), args.load, 500)
        for path in args.meta_inits:
            theta, policy_config = load_meta_init(path)
            agent = DeepConsensus(policy_config)
            agent._ensure(params, 0)
            data = rollout(theta, agent.policy.valid, params, args.seed, args.episodes, reward=policy_config.reward)
            batch, _ = agent.router_batch(params, data, None)
            with torch.no_grad():
                logp = log_probs(theta, batch)
                p = logp.exp()
                entropy = -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)  # [N, M]
                decisions = batch.mask.sum(1)
                per_router = (entropy * batch.mask).sum(1) / decisions.clamp(min=1)
                mean = float((entropy * batch.mask).sum() / decisions.sum())
                top = float((p.max(-1).values * batch.mask).sum() / decisions.sum())
            print(f"{path}: {mean:.3f} nats per decision (routers {float(per_router.min()):.3f}-"
                  f"{float(per_router.max()):.3f}), mean probability of the likeliest port {top:.3f}, "
                  f"{int(decisions.sum())} decisions")
    except MamrlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
