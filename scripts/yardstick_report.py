"""The yardstick report: how close each algorithm gets to the capacity limit λ*, and whether
learning beats the best non-learned routing near it.

Reads the sweeps of `experiments/yardstick.toml` and `experiments/yardstick-deep.toml` and the
saturation searches of `scripts/saturation_all.sh`, and writes into OUTPUT:

* `results.md` — λ* per topology; every algorithm's bisected saturation load as a share of λ*;
  the sojourn time (every packet), p99 delivery time and delivered fraction of every algorithm at
  0.5, 0.9 and 0.95 λ*, with the best non-learned routing marked;
* the sweep's figures against λ/λ* (`mamrl plot --relative-load` of the merged results), and its
  full table in `sweep.md`.

Usage: python scripts/yardstick_report.py OUTPUT RESULTS.csv [RESULTS.csv ...] --saturation DIR
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from mamrl.experiments.sweep import COLUMNS, aggregate, format_row, header_line, read_results
from mamrl.plotting.sweep import algorithm_label, describe_setup, format_estimate, format_percent, write_sweep_report

TOPOLOGIES = ("b4", "geant", "att")
NON_LEARNED = ("spa", "ecmp", "max-throughput", "min-delay", "backpressure", "sp-backpressure")
LEARNED = ("q-routing", "pg", "mamrl")


def saturation_table(directory: Path, limits: dict[str, float]) -> list[str]:
    searches = {}
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        searches[(doc["topology"], doc["algorithm"])] = doc
    algorithms = [a for a in (*NON_LEARNED, *LEARNED) if any(k[1] == a for k in searches)]
    topologies = [t for t in TOPOLOGIES if any(k[0] == t for k in searches)]
    lines = ["| algorithm | " + " | ".join(f"{t} (λ* = {limits.get(t, math.nan):.4g})" for t in topologies) + " |",
             "|---|" + "---|" * len(topologies)]
    for algo in algorithms:
        cells = []
        for topo in topologies:
            doc = searches.get((topo, algo))
            if doc is None:
                cells.append("not run")
                continue
            bounded, unbounded, limit = doc["bounded_load"], doc["unbounded_load"], doc["max_load"]
            if bounded is None:
                cells.append(f"< {unbounded:.3g} (< {100 * unbounded / limit:.0f}%)")
            elif unbounded is None:
                cells.append(f"≥ {bounded:.3g} (≥ {100 * bounded / limit:.0f}%)")
            else:
                cells.append(f"{bounded:.3g}–{unbounded:.3g} ({100 * bounded / limit:.0f}–{100 * unbounded / limit:.0f}%)")
        lines.append(f"| {algorithm_label(algo)} | " + " | ".join(cells) + " |")
    return lines


def comparison_table(points, topology: str) -> list[str]:
    shares = sorted({round(p.load_share, 3) for p in points if p.topology == topology})
    lines = ["| algorithm | " + " | ".join(f"{s:g} λ*: sojourn / p99 / delivered" for s in shares) + " |",
             "|---|" + "---|" * len(shares)]
    by_key = {(p.algorithm, round(p.load_share, 3)): p for p in points if p.topology == topology}
    best: dict[float, str] = {}
    for s in shares:
        candidates = [(by_key[(a, s)].metrics["mean_sojourn_time"].mean, a) for a in NON_LEARNED if (a, s) in by_key]
        if candidates:
            best[s] = min(candidates)[1]
    for algo in (*NON_LEARNED, *LEARNED):
        if not any((algo, s) in by_key for s in shares):
            continue
        cells = []
        for s in shares:
            p = by_key.get((algo, s))
            if p is None:
                cells.append("— (not defined at λ ≥ λ*)" if algo in ("max-throughput", "min-delay") else "not run")
                continue
            m = p.metrics
            text = (f"{format_estimate(m['mean_sojourn_time'])} / {format_estimate(m['p99_delivery_time'])} / "
                    f"{format_percent(m['delivered_fraction'])}")
            cells.append(f"**{text}**" if best.get(s) == algo else text)
        lines.append(f"| {algorithm_label(algo)} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--saturation", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = [row for path in args.results for row in read_results(path)]
    points = aggregate(rows)
    limits = {p.topology: p.max_load for p in points}
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        merged = Path(tmp) / "merged.csv"
        merged.write_text(header_line() + "".join(format_row({c: r[c] for c in COLUMNS}) for r in rows), encoding="utf-8")
        written = write_sweep_report(merged, args.output, formats=("png", "pdf"), relative_load=True)
    sweep_md = (args.output / "results.md").read_text(encoding="utf-8")
    # The merged file is temporary: name its sources instead of a path that no longer exists.
    sources = " and ".join(f"`{Path(p).name}`" for p in args.results) + " beside this file, merged"
    (args.output / "sweep.md").write_text(sweep_md.replace(f"`{merged}`", sources), encoding="utf-8")
    (args.output / "results.md").unlink()
    lines = [
        "# The yardstick: λ*, the best non-learned routing, and the learners",
        "",
        f"Sources: {', '.join(f'`{p}`' for p in args.results)} and `{args.saturation}/*.json`. "
        "Made by `python scripts/yardstick_report.py` (commands in RESULTS.md §0).",
        "",
        "## How close each algorithm gets to λ*",
        "",
        "Bisected saturation load (`mamrl saturation`, 2,000-tick episodes; bounded–not shown bounded), as λ and "
        "% of the capacity limit λ* (`mamrl capacity`):",
        "",
        *saturation_table(args.saturation, limits),
        "",
        "## Near λ*: learned routing against the best static routing and backpressure",
        "",
        f"Setup: {describe_setup(rows)}; common random numbers across algorithms. "
        "Sojourn time: every packet created (lost or undelivered ones at their age at the horizon), ticks; p99: "
        "delivery time of delivered packets, ticks. **Bold**: the lowest sojourn time among the routings that do "
        "not learn.",
        "",
    ]
    for topo in TOPOLOGIES:
        if any(p.topology == topo for p in points):
            lines += [f"### {topo} (λ* = {limits[topo]:.4g})", "", *comparison_table(points, topo), ""]
    lines += ["Figures (x axis λ/λ*): [sojourn time](sojourn_time.png), [delivery time](delivery_time.png), "
              "[loss and delivered](loss_delivered.png); every point: [sweep.md](sweep.md).", ""]
    (args.output / "results.md").write_text("\n".join(lines), encoding="utf-8")
    for path in written:
        if path.name != "results.md":
            print(f"wrote {path}")
    print(f"wrote {args.output / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
