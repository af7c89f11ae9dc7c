#!/usr/bin/env python
"""Ship a trained policy inside the package as `pretrained:NAME` (src/mamrl/pretrained/NAME.pt + NAME.json).

    python scripts/ship_pretrained.py RUN_DIR NAME --command "mamrl train ..." [--evaluation EVAL.json] [--note TEXT]

RUN_DIR is a `mamrl train` run directory (a meta-training folder `e2/<topology>/meta` of `mamrl reproduce`
or `mamrl failures` is one). The card records its training config, the command that
trained it, the checkpoint's SHA-256 (checked on every load) and, from EVAL.json (a `mamrl evaluate
--json` or `mamrl simulate --json` document), what it achieves: the summary's means and 95% CIs and
the evaluation's seed, episodes, failures, online adaptation (`--adapt`) and traffic, with the
`mamrl evaluate` command that repeats it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mamrl.errors import MamrlError
from mamrl.experiments.checkpoint import ship_pretrained

SUMMARY_KEYS = ("delivered_fraction", "loss_fraction", "mean_sojourn_time", "mean_delivery_time", "mean_queue_length")


def evaluation_summary(path: Path) -> dict:
    """The card's `evaluation`: what the evaluation ran (seed, episodes, failures, online adaptation)
    and its summary, with the `mamrl evaluate` command that re-runs it."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    config = doc["config"]
    summary = {key: doc["summary"][key] for key in SUMMARY_KEYS if key in doc["summary"]}
    adapt = bool(config["policy"].get("adapt"))
    failures = [str(f) for f in config["failures"]]  # as given to --fail
    trained_failures = [str(f) for f in (config["policy"].get("training") or {}).get("failures") or []]
    command = f"mamrl evaluate pretrained:NAME --seed {doc['seed']} -n {config['episodes']}"
    command += "".join(f" --fail {f}" for f in failures) if failures != trained_failures else ""
    command += " --adapt" if adapt else ""
    return {"command": command, "seed": doc["seed"], "episodes": config["episodes"], "adapt": adapt,
            "failures": failures, "simulation": config["simulation"], "summary": summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--command", required=True, help="The command line that trained it.")
    parser.add_argument("--evaluation", type=Path, help="A mamrl evaluate --json document of it.")
    parser.add_argument("--note", help="What a user must know (e.g. trained above λ*).")
    args = parser.parse_args()
    try:
        evaluation = evaluation_summary(args.evaluation) if args.evaluation else None
        target = ship_pretrained(args.run_dir, args.name, command=args.command, evaluation=evaluation, note=args.note)
    except (MamrlError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {target} and {target.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
