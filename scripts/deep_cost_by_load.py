#!/usr/bin/env python
"""Where a deep E1 cell's time goes, by load: one TRPO iteration (16 episodes of 500 ticks) of a
trained deep policy at each load, split into the rollout (and within it the policy networks'
forward passes and sampling) and the update. BENCHMARKS.md ("Where the paper preset's time goes")
reads it:

    python scripts/deep_cost_by_load.py --policy pretrained:att-deep --topology att \\
        --loads 0.005,0.01,0.05,0.1,0.2,0.3,0.5 --repeats 3

The policy is reloaded from its checkpoint before every measurement (an iteration's update would
otherwise change it), and the loads alternate within each repeat so that a slow patch of the
machine touches every load alike. Medians of `--repeats`; one torch thread, as in a sweep cell.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from mamrl.agents.deep_consensus import DeepConsensus
from mamrl.benchmarks.common import machine_info, markdown_table
from mamrl.envs.routing import make_params
from mamrl.errors import MamrlError
from mamrl.experiments.checkpoint import load_agent
from mamrl.sim.capacity import capacity_bound

COLUMNS = ("λ", "λ/λ*", "decisions per iteration", "router-ticks with a packet", "rollout (s)",
           "of which policy networks (s)", "update (s)", "iteration (s)", "iteration / at the highest λ")


def measure(policy: str, topology: str, load: float, first_episode: int, episodes: int) -> dict[str, float]:
    """One rollout (timed, with its networks' share) and one TRPO iteration of a fresh copy of the policy."""
    agent = load_agent(policy).agent
    if not isinstance(agent, DeepConsensus):
        raise MamrlError(f"{policy} is a {agent.name!r} checkpoint, not a deep learner's (mamrl)")
    params = make_params(topology, load, 500)
    start = time.perf_counter()
    data = agent._rollout(params, 0, episodes, first_episode, None)
    rollout_s = time.perf_counter() - start
    entry, _ = agent.train_iteration(params, 0, episodes, first_episode=first_episode)
    return {"decisions": data.decisions, "busy": float(data.acted.mean()), "rollout_s": rollout_s,
            "policy_s": data.policy_seconds, "update_s": entry.update_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="pretrained:att-deep", help="A deep learner's checkpoint (policy spec).")
    parser.add_argument("--topology", default="att")
    parser.add_argument("--loads", default="0.005,0.01,0.05,0.1,0.2,0.3,0.5", help="Comma-separated λ values.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=16, help="Episodes per iteration (the preset's 16).")
    args = parser.parse_args(argv)
    try:
        loads = [float(x) for x in args.loads.split(",")]
    except ValueError:
        print(f"error: --loads must be comma-separated numbers, got {args.loads!r}", file=sys.stderr)
        return 2
    if args.repeats < 1 or args.episodes < 1 or any(not 0 < x for x in loads):
        print("error: --repeats and --episodes must be >= 1 and every load > 0", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    try:
        limit = capacity_bound(make_params(args.topology).topology).max_load
        measure(args.policy, args.topology, loads[0], 0, 2)  # warm-up (numba, torch)
        runs: dict[float, list[dict[str, float]]] = {x: [] for x in loads}
        for k in range(args.repeats):
            for x in loads:
                runs[x].append(measure(args.policy, args.topology, x, 1000 + k * args.episodes, args.episodes))
                print(f"λ={x:g} repeat {k + 1}: {runs[x][-1]}", file=sys.stderr, flush=True)
    except MamrlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    med = {x: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for x, rs in runs.items()}
    top = med[max(loads)]
    top_s = top["rollout_s"] + top["update_s"]
    rows = []
    for x in loads:
        m = med[x]
        iteration = m["rollout_s"] + m["update_s"]
        rows.append([f"{x:g}", f"{x / limit:.2f}", f"{m['decisions']:,.0f}", f"{100 * m['busy']:.1f}%", f"{m['rollout_s']:.2f}",
                     f"{m['policy_s']:.2f}", f"{m['update_s']:.2f}", f"{iteration:.2f}", f"{iteration / top_s:.2f}"])
    print(f"{args.topology}, λ* = {limit:.4f}; policy {args.policy}; {args.episodes} episodes of 500 ticks per iteration; "
          f"medians of {args.repeats}")
    print("\n".join(markdown_table(COLUMNS, rows)))
    info = machine_info(single_core=True)
    print(f"Machine: cpu {info['cpu']}, cores {info['cores']}, torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
