#!/usr/bin/env python
"""Does the deep learner learn the same with bfloat16 updates? A markdown table of `mamrl train`
run directories trained with `--set update_precision=float32|bfloat16` (BENCHMARKS.md reads it):

    for seed in 0 1 2; do for p in float32 bfloat16; do
      mamrl train -a mamrl -t b4 -l 0.3 -n 2000 --seed $seed --set update_precision=$p \
          --eval-episodes 30 -o docs/results/precision/b4-0.3-$p-s$seed
    done; done
    python scripts/precision_table.py docs/results/precision/*/

Per run: its topology, λ, seed, precision and training episodes (from config.json), the frozen
policy's evaluation (evaluation.json: 30 episodes on seed + 1,000,003) and the training wall time
(attempts.json); then per (topology, λ, precision) the mean over seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def read_run(directory: Path) -> dict:
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        evaluation = json.loads((directory / "evaluation.json").read_text(encoding="utf-8"))
        attempts = json.loads((directory / "attempts.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"error: {directory}: not a finished `mamrl train` run with an evaluation ({exc})") from None
    metrics = evaluation["metrics"]
    run = config["config"]
    return {  # KeyError below: not a deep learner's run
        "topology": run["topology"],
        "load": run["load"],
        "seed": run["seed"],
        "episodes": run["episodes"],
        "precision": config["algorithm_resolved"]["update_precision"],
        "delivered": 100 * metrics["delivered_fraction"]["mean"],
        "sojourn": metrics["mean_sojourn_time"]["mean"],
        "sojourn_ci": metrics["mean_sojourn_time"]["ci95"],
        "loss": 100 * metrics["loss_fraction"]["mean"],
        "wall_s": attempts["total_wall_s"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="`mamrl train` run directories")
    rows = sorted((read_run(d) for d in parser.parse_args().runs),
                  key=lambda r: (str(r["topology"]), float(r["load"] or 0), r["precision"] != "float32", r["seed"]))
    print("| topology | λ | precision | seed | training episodes | delivered (%) | sojourn (ticks, ±95% CI) | lost (%) | training wall (s) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['topology']} | {r['load']} | {r['precision']} | {r['seed']} | {r['episodes']} | {r['delivered']:.2f} | "
              f"{r['sojourn']:.2f} ± {r['sojourn_ci']:.2f} | {r['loss']:.3f} | {r['wall_s']:.0f} |")
    print()
    print("| topology | λ | precision | seeds | delivered (%) | sojourn (ticks) | lost (%) | training wall (s) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["topology"], r["load"], r["precision"]), []).append(r)
    for (topology, load, precision), members in groups.items():
        mean = {k: statistics.mean(m[k] for m in members) for k in ("delivered", "sojourn", "loss", "wall_s")}
        print(f"| {topology} | {load} | {precision} | {len(members)} | {mean['delivered']:.2f} | {mean['sojourn']:.2f} | "
              f"{mean['loss']:.3f} | {mean['wall_s']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
