#!/usr/bin/env python
"""A markdown table of evaluations on the same episodes: `mamrl simulate --json` / `mamrl evaluate
--json` documents and the JSON of examples/ippo_cleanrl_style.py --output.

    python scripts/evaluation_table.py LABEL=FILE [LABEL=FILE ...]

Each row: delivered %, lost %, and the loss-honest mean sojourn time (every packet created, a
lost or undelivered one at its age at the horizon), each with its Student-t 95% CI over episodes,
and the traffic seed and episode count, which must be the same for every file (same episodes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from mamrl.sim.metrics import estimate

KEYS = ("delivered_fraction", "loss_fraction", "mean_sojourn_time")


def per_episode(path: Path) -> tuple[dict[str, np.ndarray], int, int]:
    """(per-episode values of KEYS, traffic seed, episodes) of one file."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    if "evaluation" in doc:  # the IPPO example: its learned policy's episodes
        ev = doc["evaluation"]
        values = ev["per_episode"]["ippo"]
        return {k: np.asarray(values[k], dtype=np.float64) for k in KEYS}, int(ev["seed"]), int(ev["episodes"])
    values = doc["per_episode"]
    return {k: np.asarray(values[k], dtype=np.float64) for k in KEYS}, int(doc["seed"]), int(doc["config"]["episodes"])


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print(__doc__, file=sys.stderr)
        return 2
    rows, traffic = [], set()
    for arg in argv:
        label, file = arg.split("=", 1)
        values, seed, episodes = per_episode(Path(file))
        traffic.add((seed, episodes))
        cells = []
        for key, scale, digits in (("delivered_fraction", 100, 2), ("loss_fraction", 100, 3), ("mean_sojourn_time", 1, 2)):
            e = estimate(values[key] * scale)
            cells.append(f"{e.mean:.{digits}f} ± {e.ci95:.{digits}f}")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(traffic) != 1:
        print(f"error: the files evaluate different episodes (seed, episodes): {sorted(traffic)}", file=sys.stderr)
        return 1
    seed, episodes = traffic.pop()
    print(f"Traffic seed {seed}, episodes 0..{episodes - 1} for every row; mean ± Student-t 95% CI over episodes.\n")
    print("| policy | delivered (%) | lost (%) | sojourn (ticks) |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
