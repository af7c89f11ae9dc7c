"""`REPORT.md` of `mamrl reproduce`: our E1 and E2 figures beside the paper's (docs/algorithms.md).

Reads what the stages wrote (`e1/results.csv`, `saturation/*.json`, `e2/<topology>/curves.csv` and
`meta/curves.csv`; the per-stage figures are already drawn by `mamrl.plotting.sweep` and
`mamrl.plotting.failures`) and writes into the output directory:

* `figures/` — every figure of the paper's evaluation under the paper's numbering, PNG and PDF:
  `fig4-delivery-time`, `fig4-sojourn-time`, `fig4-loss-delivered` (one panel per topology) and
  `fig5-loss-<topology>` (with `fig5-loss-transient-<topology>`, every episode of the first 100
  after the failure, and `fig5-lost-cumulative-<topology>`, the packets lost since the failure),
  `fig6-delivery-time-<topology>`, `fig7-reward-<topology>`, and `table2-recovery-<topology>` (Table 2
  at a glance: episodes and packets lost until loss < 1%, per controller and failure);
* `lambda05.md` / `lambda05.csv` — the paper's comparison at λ = 0.5: % reduction of mean delivery
  time of MAMRL vs each baseline with 95% CIs, and beside it the same for the sojourn time of
  every packet (lost ones included) and the difference in delivered fraction;
* `table2.md` / `table2.csv` — Table 2 (episodes to adapt) over all topologies;
* `REPORT.md` — all of it with the paper's numbers, the saturation loads, meta-training, the
  configuration, seeds, package versions and wall times, labelled when the budgets are reduced.
  It links only to `figures/`, `lambda05.*` and `table2.*`, so a copy of those and REPORT.md (the
  committed reports in docs/results/) keeps working links; stage files are named as paths.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numba
import numpy

import mamrl
from mamrl import runs
from mamrl.errors import MamrlError
from mamrl.experiments.failures import PAPER_TABLE2, read_curves, table2
from mamrl.experiments.failures import RECOVERY_TEXT, STEPS_TEXT
from mamrl.experiments.failures import RULE_TEXT as ADAPT_RULE
from mamrl.experiments.reproduce_config import PRESETS, REPORT, STAGES, curve_seconds
from mamrl.experiments.saturation import summarise_saturation
from mamrl.experiments.sweep import EVAL_SEED_OFFSET, Point, aggregate, read_results
from mamrl.plotting.failures import FIGURES as FAILURE_FIGURES
from mamrl.plotting.failures import controller_label, format_steps, table2_csv, table2_markdown
from mamrl.plotting.sweep import (
    FIGURES as SWEEP_FIGURES,
)
from mamrl.plotting.sweep import (
    PAPER_LOAD,
    PAPER_REDUCTIONS,
    algorithm_label,
    format_estimate,
    format_percent,
    reduction,
)
from mamrl.sim.metrics import Estimate

REDUCED_LABEL = "quick preset: smaller budgets and fewer seeds than the paper; not the paper's numbers"
"""The label a reduced run's REPORT.md opens with."""

FORMATS = ("png", "pdf")
LEARNER = "mamrl"
"""The algorithm the paper's comparison is about (its "MAMRL" curve)."""

_PAPER_FIGURE = {"recovery": "table2", "loss": "fig5", "loss_transient": "fig5", "lost_cumulative": "fig5",
                 "delivery_time": "fig6", "reward": "fig7"}
"""The paper's figure (or table) each E2 figure stands beside: the prefix of its name in `figures/`."""


# ------------------------------------------------------------------------------ formatting
def _signed(value: float, half: float, unit: str = "%") -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.1f} ± {half:.1f}{unit}" if math.isfinite(half) else f"{value:+.1f}{unit}"


def _seconds(s: float) -> str:
    if s < 10:
        return f"{s:.1f} s"  # a tiny run's stages: "0 s" would hide them
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def _num(x: float | None) -> str:
    return "" if x is None or not math.isfinite(float(x)) else repr(float(x))


# ------------------------------------------------------------------------------ the λ = 0.5 comparison
@dataclass(frozen=True)
class Comparison:
    """Algorithm X against baseline Y at one load on one topology."""

    topology: str
    load: float
    algorithm: str
    baseline: str
    delivery: tuple[Estimate, Estimate]
    """Mean delivery time of delivered packets (the paper's metric), X and Y."""
    sojourn: tuple[Estimate, Estimate]
    """Mean sojourn time of every packet created (lost ones included), X and Y."""
    delivered: tuple[Estimate, Estimate]
    """Delivered fraction, X and Y."""
    paper: float | None
    """The paper's % reduction of delivery time of MAMRL vs Y at λ = 0.5 (when X is MAMRL and the load is 0.5)."""

    def delivery_reduction(self) -> tuple[float, float]:
        """% reduction of the paper's metric and its 95% CI half-width (`plotting.sweep.reduction`)."""
        return reduction(*self.delivery)

    def sojourn_reduction(self) -> tuple[float, float]:
        return reduction(*self.sojourn)

    def delivered_difference(self) -> tuple[float, float]:
        """X − Y in percentage points and its 95% CI half-width (independent samples: conservative,
        as common random numbers correlate X and Y positively)."""
        x, y = self.delivered
        if not (math.isfinite(x.mean) and math.isfinite(y.mean)):
            return float("nan"), float("nan")
        cis = [e.ci95 for e in (x, y)]
        half = 100 * math.hypot(*cis) if all(math.isfinite(c) for c in cis) else float("nan")
        return 100 * (x.mean - y.mean), half

    def paper_in_ci(self) -> str:
        """Whether the paper's reduction lies inside our 95% CI of it (`yes`/`no`/`—`)."""
        value, half = self.delivery_reduction()
        if self.paper is None or not math.isfinite(value):
            return "—"
        if not math.isfinite(half):
            return "no CI"
        return "yes" if abs(value - self.paper) <= half else "no"


def comparison_load(points: Sequence[Point], topology: str) -> float | None:
    """λ = 0.5 if swept on `topology`, else its highest swept load."""
    loads = sorted({p.load for p in points if p.topology == topology})
    if not loads:
        return None
    return next((x for x in loads if math.isclose(x, PAPER_LOAD)), loads[-1])


def compare(points: Sequence[Point], load_of: Mapping[str, float | None]) -> list[Comparison]:
    """MAMRL against every other algorithm at `load_of[topology]` (every pair if MAMRL was not swept)."""
    by_key = {(p.topology, p.algorithm, p.load): p for p in points}
    topologies = list(dict.fromkeys(p.topology for p in points))
    algorithms = list(dict.fromkeys(p.algorithm for p in points))
    learners = [LEARNER] if LEARNER in algorithms else algorithms
    out = []
    for topo in topologies:
        load = load_of.get(topo)
        if load is None:
            continue
        for x in learners:
            for y in algorithms:
                px, py = by_key.get((topo, x, load)), by_key.get((topo, y, load))
                if x == y or px is None or py is None:
                    continue
                paper = PAPER_REDUCTIONS.get(topo.lower(), {}).get(y) if x == LEARNER and math.isclose(load, PAPER_LOAD) else None
                out.append(Comparison(
                    topo, load, x, y,
                    (px.metrics["mean_delivery_time"], py.metrics["mean_delivery_time"]),
                    (px.metrics["mean_sojourn_time"], py.metrics["mean_sojourn_time"]),
                    (px.metrics["delivered_fraction"], py.metrics["delivered_fraction"]),
                    paper,
                ))
    return out


def comparison_markdown(rows: Sequence[Comparison]) -> list[str]:
    """The comparison as markdown table lines."""
    lines = [
        "| topology | λ | X vs Y | delivery time X / Y (ticks, paper's metric) | reduction | paper: MAMRL vs Y "
        "| paper inside our CI? | sojourn time X / Y (ticks, every packet) | reduction (sojourn time) "
        "| delivered X / Y | delivered X − Y |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        dv, dh = c.delivery_reduction()
        sv, sh = c.sojourn_reduction()
        fv, fh = c.delivered_difference()
        lines.append(
            f"| {c.topology} | {c.load:g} | {algorithm_label(c.algorithm)} vs {algorithm_label(c.baseline)} "
            f"| {format_estimate(c.delivery[0])} / {format_estimate(c.delivery[1])} | {_signed(dv, dh)} "
            f"| {'—' if c.paper is None else f'{c.paper:+.0f}%'} | {c.paper_in_ci()} "
            f"| {format_estimate(c.sojourn[0])} / {format_estimate(c.sojourn[1])} | {_signed(sv, sh)} "
            f"| {format_percent(c.delivered[0], 2)} / {format_percent(c.delivered[1], 2)} | {_signed(fv, fh, ' points')} |"
        )
    return lines


def overloaded_topologies(rows: Sequence[Comparison], limits: Mapping[str, float]) -> list[str]:
    """The topologies whose comparison load is at or above their capacity limit λ* (no routing carries it)."""
    loads = {c.topology: c.load for c in rows}
    return [t for t, load in loads.items() if t in limits and load >= limits[t]]


def overloaded_phrase(rows: Sequence[Comparison], limits: Mapping[str, float]) -> str:
    """The overloaded topologies (`overloaded_topologies`) in words: "every topology" when that is all of those
    with a known λ*, else their names ("b4 and geant"); "" when none is overloaded."""
    names = overloaded_topologies(rows, limits)
    known = [t for t in dict.fromkeys(c.topology for c in rows) if t in limits]
    if not names:
        return ""
    if names == known and len(known) > 1:
        return "every topology"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def load_against_capacity(rows: Sequence[Comparison], limits: Mapping[str, float]) -> str:
    """One paragraph: each topology's comparison load as a share of its λ*, and what that means for the rows."""
    loads = {c.topology: c.load for c in rows if c.topology in limits}
    if not loads:
        return ""
    if len(set(loads.values())) == 1:  # one load everywhere (λ = 0.5 swept on every topology)
        text = f"λ = {next(iter(loads.values())):g} is " + ", ".join(
            f"{100 * load / limits[t]:.0f}% of λ* = {limits[t]:.4g} on {t}" for t, load in loads.items()) + "."
    else:
        text = "Against each topology's capacity limit λ*: " + ", ".join(
            f"λ = {load:g} is {100 * load / limits[t]:.0f}% of λ* = {limits[t]:.4g} on {t}" for t, load in loads.items()) + "."
    over = overloaded_phrase(rows, limits)
    if over:
        text += (f" On {over} no routing can carry this load: queues grow without bound "
                 "(or packets are dropped), so those rows compare overloaded networks — transients that grow with the "
                 "horizon — not algorithms.")
    else:
        text += " Every topology can carry this load (below λ*), so the rows compare steady states."
    return text


COMPARISON_NOTE = (
    "Reduction of X vs Y = 100·(T_Y − T_X)/T_Y: positive means X is faster. 95% CIs by the delta method, "
    "X and Y treated as independent (conservative: common random numbers correlate them). The paper's metric "
    "averages over *delivered* packets only and ignores the undelivered ones: a policy that delivers fewer "
    "packets looks faster. Judge by the sojourn time (every packet created; one still in the network at the "
    "horizon, or lost, counts with its age at the horizon) and the delivered fraction beside it."
)

COMPARISON_COLUMNS = (
    "topology", "load", "algorithm", "baseline",
    "delivery_time_x_mean", "delivery_time_x_ci95", "delivery_time_y_mean", "delivery_time_y_ci95",
    "delivery_time_reduction_pct", "delivery_time_reduction_ci95", "paper_delivery_time_reduction_pct",
    "sojourn_time_x_mean", "sojourn_time_x_ci95", "sojourn_time_y_mean", "sojourn_time_y_ci95",
    "sojourn_time_reduction_pct", "sojourn_time_reduction_ci95",
    "delivered_fraction_x_mean", "delivered_fraction_x_ci95", "delivered_fraction_y_mean", "delivered_fraction_y_ci95",
    "delivered_difference_points", "delivered_difference_ci95",
)
"""Header of lambda05.csv."""


def comparison_csv(rows: Sequence[Comparison]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COMPARISON_COLUMNS)
    for c in rows:
        dv, dh = c.delivery_reduction()
        sv, sh = c.sojourn_reduction()
        fv, fh = c.delivered_difference()
        writer.writerow([
            c.topology, repr(c.load), c.algorithm, c.baseline,
            _num(c.delivery[0].mean), _num(c.delivery[0].ci95), _num(c.delivery[1].mean), _num(c.delivery[1].ci95),
            _num(dv), _num(dh), _num(c.paper),
            _num(c.sojourn[0].mean), _num(c.sojourn[0].ci95), _num(c.sojourn[1].mean), _num(c.sojourn[1].ci95),
            _num(sv), _num(sh),
            _num(c.delivered[0].mean), _num(c.delivered[0].ci95), _num(c.delivered[1].mean), _num(c.delivered[1].ci95),
            _num(fv), _num(fh),
        ])
    return out.getvalue()


# ------------------------------------------------------------------------------ reading the stages
def copy_figures(out: Path, slugs: Mapping[str, str], formats: Sequence[str] = FORMATS) -> list[Path]:
    """Copy the stages' figures into `out/figures/` under the paper's figure numbers."""
    pairs: list[tuple[Path, str]] = []
    for stem in SWEEP_FIGURES:
        pairs.append((out / "e1" / stem, f"fig4-{stem.replace('_', '-')}"))
    for slug in slugs.values():
        for stem in FAILURE_FIGURES:
            pairs.append((out / "e2" / slug / stem, f"{_PAPER_FIGURE[stem]}-{stem.replace('_', '-')}-{slug}"))
    target = out / "figures"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for source, name in pairs:
        for fmt in formats:
            src = source.with_name(f"{source.name}.{fmt}")
            if not src.is_file():
                raise MamrlError(f"figure {src} is missing (was its stage run?)")
            written.append(Path(shutil.copyfile(src, target / f"{name}.{fmt}")))
    return written


def _meta_summary(meta_dir: Path) -> dict[str, Any] | None:
    """Iterations, wall time and the first and last curve rows of a meta-training."""
    path = meta_dir / "curves.csv"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return None

    def value(row: dict[str, str], key: str) -> float:
        if key == "mean_sojourn_time" and "mean_sojourn_time_not_lost" not in row:
            return float("nan")  # a row from before the loss-honest metrics: its figure left lost packets out
        try:
            return float(row.get(key) or "nan")
        except ValueError:
            return float("nan")

    return {"iterations": len(rows), "seconds": curve_seconds(rows),
            "first": {k: value(rows[0], k) for k in ("reward", "pre_reward", "delivered_fraction", "loss_fraction", "mean_sojourn_time")},
            "last": {k: value(rows[-1], k) for k in ("reward", "pre_reward", "delivered_fraction", "loss_fraction", "mean_sojourn_time")}}


def _meta_wall(walls: Mapping[str, float], metas: Sequence[dict[str, Any] | None]) -> tuple[dict[str, float], str]:
    """The run record's meta-training time: the manifest's, or, when larger, the sum of the
    topologies' iteration times in their curves. They differ when a meta-initialisation was trained
    before this folder's manifest existed (restored from another folder): the manifest then holds
    only the attempts made here, and would understate the run's cost. Returns the walls and a note."""
    walls = dict(walls)
    curves_s = sum(m["seconds"] for m in metas if m is not None)
    manifest_s = walls.get("meta", 0.0)
    if curves_s <= manifest_s:
        return walls, ""
    walls["meta"] = curves_s
    return walls, (f"Meta-training: its curves record {_seconds(curves_s)} of iterations, the manifest "
                   f"{_seconds(manifest_s)}; part of it ran before this folder's manifest (a meta-initialisation "
                   f"restored from another folder), so the run record counts the curves' time.")


def _versions() -> dict[str, str]:
    try:
        # lazy: torch takes ~1 s to import, and may be absent
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover
        torch_version = "not installed"
    return {"mamrl": mamrl.__version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "torch": torch_version, "numba": numba.__version__, "matplotlib": matplotlib.__version__}


# ------------------------------------------------------------------------------ REPORT.md
def _budget_table(config: Any) -> list[str]:
    paper = PRESETS["paper"]
    ours_sweep, paper_sweep = config.sweep, paper["sweep"]
    ours_fail, paper_fail = config.failures, paper["failures"]
    deep = config.algorithm_train_episodes.get(LEARNER, ours_sweep["train_episodes"])
    rows = [
        ("topologies", ", ".join(config.topologies), ", ".join(paper["topologies"])),
        ("E1 algorithms", ", ".join(ours_sweep["algorithms"]), ", ".join(paper_sweep["algorithms"])),
        ("E1 loads λ", ", ".join(f"{x:g}" for x in ours_sweep["loads"]), ", ".join(f"{x:g}" for x in paper_sweep["loads"])),
        ("E1 training episodes (tabular learners)", f"{ours_sweep['train_episodes']:,}", f"{paper_sweep['train_episodes']:,}"),
        ("E1 training episodes (deep learner)", f"{deep:,}" if LEARNER in ours_sweep["algorithms"] else "not run",
         f"{paper_sweep['train_episodes']:,}"),
        ("E1 training seeds", ", ".join(map(str, ours_sweep["seeds"])), ", ".join(map(str, paper_sweep["seeds"]))),
        ("E1 evaluation episodes per cell", str(ours_sweep["eval_episodes"]), str(paper_sweep["eval_episodes"])),
        ("episode length (ticks)", str(ours_sweep["horizon_ticks"]), str(paper_sweep["horizon_ticks"])),
        ("meta-iterations (MAML-TRPO)", str(ours_fail.get("meta_iterations", "—")), str(paper_fail["meta_iterations"])),
        ("E2 episodes (failure at episode)", f"{ours_fail['episodes']} ({ours_fail['fail_episode']})",
         f"{paper_fail['episodes']} ({paper_fail['fail_episode']})"),
        ("E2 seeds", ", ".join(map(str, ours_fail["seeds"])), ", ".join(map(str, paper_fail["seeds"]))),
    ]
    lines = ["| | this run | paper preset |", "|---|---|---|"]
    lines += [f"| {name} | {ours} | {theirs} |" for name, ours, theirs in rows]
    return lines


def _count(est: Estimate, reached: int, seeds: int, budget: object) -> str:
    if reached == 0:
        return f"> {budget}"
    text = format_estimate(est, 4)
    return text + (f" ({reached} of {seeds} seeds)" if reached < seeds else "")


def attempt_machines(stage: Mapping[str, Any]) -> str:
    """The CPUs a stage's attempts ran on (the manifest's `attempt_cpus`), with how many attempts
    ran on each and how many predate the record: a resumed run may have moved to another machine."""
    cpus = stage.get("attempt_cpus")
    cpus = cpus if isinstance(cpus, list) else []
    attempts = int(stage.get("attempts", len(cpus)) or 0)
    counts: dict[str, int] = {}
    for cpu in cpus:
        if isinstance(cpu, str) and cpu:
            counts[cpu] = counts.get(cpu, 0) + 1
    parts = [f"{cpu} ({n})" for cpu, n in counts.items()]
    unknown = attempts - sum(counts.values())
    if unknown > 0:
        parts.append(f"not recorded ({unknown})")
    return "; ".join(parts) or "—"


def write_report(config: Any, manifest: Mapping[str, Any], walls: Mapping[str, float]) -> Path:
    """Write the figures folder, lambda05.*, table2.* and REPORT.md into `config.out`; returns REPORT.md.
    `config` is a `ReproduceConfig`, `manifest` the manifest document, `walls` the seconds per stage."""
    out = config.out
    slugs = config.topology_slugs()
    copy_figures(out, slugs)

    # E1.
    rows = read_results(out / "e1" / "results.csv")
    points = aggregate(rows)
    topologies = list(config.topologies)
    at_paper = compare(points, {t: comparison_load(points, t) for t in topologies})
    lowest = compare(points, {t: min((p.load for p in points if p.topology == t), default=None) for t in topologies})
    runs.write_text(out / "lambda05.md", "\n".join([
        f"# The paper's comparison at λ = {PAPER_LOAD:g} (E1)", "", COMPARISON_NOTE, "", *comparison_markdown(at_paper)]) + "\n")
    runs.write_text(out / "lambda05.csv", comparison_csv(at_paper))
    sweep_saturation = summarise_saturation(points)
    limits = {p.topology: p.max_load for p in points if math.isfinite(p.max_load)}  # λ* per topology

    # Saturation searches.
    searches = []
    for path in sorted((out / "saturation").glob("*.json")):
        try:
            searches.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue

    # E2.
    curve_rows = []
    for topo in topologies:
        curve_rows += read_curves(out / "e2" / slugs[topo] / "curves.csv")
    schedule = config.failure_config(topologies[0])  # the failures section, shared by every topology
    table = table2(curve_rows, episodes_per_step=schedule.episodes_per_step, fail_tick=schedule.fail_tick)
    runs.write_text(out / "table2.md", table2_markdown(table, source="e2/<topology>/curves.csv"))
    runs.write_text(out / "table2.csv", table2_csv(table))

    # REPORT.md.
    resolved = manifest.get("config", {})
    created = manifest.get("created", {})
    git = created.get("git") or {}
    metas = {t: _meta_summary(out / "e2" / slugs[t] / "meta") for t in topologies}
    walls, meta_note = _meta_wall(walls, list(metas.values()))
    total = sum(walls.values())
    lines = ["# Reproducing MAMRL's evaluation (E1 and E2)", ""]
    if config.reduced:
        if config.preset == "paper":
            label = f"paper preset changed by --set ({', '.join(config.overrides)}): not the paper's budgets; not the paper's numbers"
        else:
            label = REDUCED_LABEL
        lines += [f"> **{label}.**", ""]
    command = f"mamrl reproduce --preset {config.preset} " + " ".join(f"--topology {t}" for t in topologies)
    lines += [
        f"Made by `{command}`"
        + (f" with `--set` changes to {', '.join(f'`{k}`' for k in config.overrides)} (values in the configuration below)"
           if config.overrides else "")
        + f"; mamrl {created.get('mamrl_version', '?')}"
        + (f", git {git['commit'][:10]}{' + local changes' if git.get('dirty') else ''}" if git.get("commit") else "")
        + f"; started {created.get('date_utc', '?')}; config hash {manifest.get('config_hash', '?')}. "
        f"Total wall time {_seconds(total)} on {os.cpu_count()} logical cores, {config.workers} worker process"
        f"{'es' if config.workers != 1 else ''} ({config.backend} backend).",
        "",
        "Every value is a mean with its 95% confidence interval (Student t). Evaluation traffic is independent of "
        f"training traffic (seed s + {EVAL_SEED_OFFSET:,}) and identical for every algorithm (common random numbers). "
        "The paper's metric — mean delivery time of *delivered* packets — is always shown beside the delivered fraction "
        "and the sojourn time of every packet created (lost ones included), which is what we judge by.",
        "",
        "## Budgets",
        "",
        *_budget_table(config),
        "",
        "## E1: load sweep (Fig. 4)",
        "",
        "In the output folder: every point in `e1/results.md`, the data in `e1/results.csv`. "
        "One panel per topology; markers: filled = queues bounded, hollow = growing (past saturation).",
        "",
        "![Fig. 4: sojourn time vs load](figures/fig4-sojourn-time.png)",
        "",
        "![Fig. 4: delivery time vs load (the paper's metric)](figures/fig4-delivery-time.png)",
        "",
        "![loss and delivered fraction vs load](figures/fig4-loss-delivered.png)",
        "",
        f"### The paper's comparison at λ = {PAPER_LOAD:g}",
        "",
        "The paper (§4.2) reports MAMRL's mean delivery time at λ = 0.5 below SPA / Q-routing / PG by:",
        "",
        "| topology | vs SPA | vs Q-routing | vs PG |",
        "|---|---|---|---|",
    ]
    for topo, values in PAPER_REDUCTIONS.items():
        lines.append(f"| {topo} | {values['spa']:.0f}% | {values['q-routing']:.0f}% | {values['pg']:.0f}% |")
    lines += ["", "Ours (also in [lambda05.md](lambda05.md) and [lambda05.csv](lambda05.csv)):", ""]
    if any(not math.isclose(c.load, PAPER_LOAD) for c in at_paper):
        lines += [f"λ = {PAPER_LOAD:g} was not swept on every topology; those rows are at the highest swept load.", ""]
    capacity_text = load_against_capacity(at_paper, limits)
    lines += [*comparison_markdown(at_paper), "", *([capacity_text, ""] if capacity_text else []), COMPARISON_NOTE, ""]
    if lowest and lowest != at_paper:
        lines += [
            "At low load the paper finds MAMRL slightly worse than SPA and Q-routing. Ours at the lowest swept load:",
            "",
            *comparison_markdown(lowest),
            "",
        ]

    def with_share(load: float | None, limit: float | None) -> str:
        if load is None:
            return "none"
        return f"{load:.4g} ({100 * load / limit:.0f}%)" if limit else f"{load:.4g}"

    lines += ["## Saturation loads", "",
              "Under the model one router forwards one packet per tick, so no routing carries more than the capacity "
              "limit λ* (`mamrl capacity`: a max-concurrent-flow linear programme); "
              + ", ".join(f"λ* = {limit:.4g} on {topo}" for topo, limit in limits.items())
              + ". Every algorithm saturates at or below it; past its saturation load the sweep's figures are transients "
              "that grow with the horizon. Bisection (`mamrl saturation`; its rule is printed with each search), as λ and % of λ*:", "",
              "| topology | algorithm | highest λ with bounded queues (% of λ*) | lowest λ not shown bounded (% of λ*) | probes | horizon (ticks) |",
              "|---|---|---|---|---|---|"]
    for doc in searches:
        bounded, unbounded = doc.get("bounded_load"), doc.get("unbounded_load")
        limit = doc.get("max_load") or limits.get(doc.get("topology_spec", doc.get("topology")))
        lines.append(f"| {doc.get('topology_spec', doc.get('topology'))} | {algorithm_label(doc.get('algorithm', '?'))} "
                     f"| {with_share(bounded, limit)} | {'none (high end bounded)' if unbounded is None else with_share(unbounded, limit)} "
                     f"| {len(doc.get('probes', []))} | {doc.get('horizon_ticks')} |")
    if not searches:
        lines.append("| — | (no saturation search configured) | | | | |")
    lines += ["", f"From the sweep itself ({config.sweep['horizon_ticks']}-tick episodes, swept loads only):", "",
              "| topology | algorithm | queues bounded up to λ (% of λ*) | growing from λ (% of λ*) |", "|---|---|---|---|"]
    for s in sweep_saturation:
        limit = limits.get(s.topology)
        lines.append(f"| {s.topology} | {algorithm_label(s.algorithm)} | {with_share(s.bounded_up_to, limit)} "
                     f"| {with_share(s.growing_from, limit)} |")

    lines += ["", "## E2: link failures (Figs. 5–7, Table 2)", ""]
    e2 = resolved.get("e2", {})
    for topo in topologies:
        cfg = e2.get(topo, {})
        slug = slugs[topo]
        lines += [f"### {topo}", ""]
        meta = metas[topo]
        if meta is not None:
            first, last = meta["first"], meta["last"]
            changed = any(k.startswith("failures.maml") for k in config.overrides)
            lines += [
                f"Meta-training (MAML-TRPO, Algorithm 1; `MamlConfig` {'changed by --set' if changed else 'defaults'}): "
                f"{meta['iterations']} of {cfg.get('meta_iterations')} iterations in {_seconds(meta['seconds'])}; "
                f"post-adaptation reward {first['reward']:.3g} → {last['reward']:.3g} (pre {first['pre_reward']:.3g} → {last['pre_reward']:.3g}), "
                f"delivered {100 * first['delivered_fraction']:.1f}% → {100 * last['delivered_fraction']:.1f}% on the sampled tasks "
                f"(curves: `e2/{slug}/meta/curves.png` in the output folder).",
                "",
            ]
        lines += [
            f"λ = {cfg.get('load')}, {cfg.get('episodes')} episodes × {cfg.get('horizon_ticks')} ticks, the link down from "
            f"episode {cfg.get('fail_episode')}, seeds {', '.join(map(str, cfg.get('seeds', [])))}; test links "
            f"{', '.join(cfg.get('failures', []))}{(' and held out ' + ', '.join(cfg['held_out'])) if cfg.get('held_out') else ''}. "
            f"Full table with per-seed counts: `e2/{slug}/table2.md` in the output folder.",
            "",
            f"![Table 2 at a glance: recovery per controller and failure on {topo}](figures/table2-recovery-{slug}.png)",
            "",
            f"![Fig. 5: loss vs episode on {topo}](figures/fig5-loss-{slug}.png)",
            "",
            f"![Fig. 5, the transient: loss in the first episodes after the failure on {topo}](figures/fig5-loss-transient-{slug}.png)",
            "",
            f"![Packets lost since the failure on {topo}](figures/fig5-lost-cumulative-{slug}.png)",
            "",
            f"![Fig. 6: delivery and sojourn time vs episode on {topo}](figures/fig6-delivery-time-{slug}.png)",
            "",
            f"![Fig. 7: reward vs episode on {topo}](figures/fig7-reward-{slug}.png)",
            "",
        ]
    lines += [
        "### Table 2: episodes to adapt",
        "",
        "The paper's Table 2 (average episodes to adapt to a link failure; it does not state its rule or spread):",
        "",
        "| topology | Q-routing | MAMRL | random |",
        "|---|---|---|---|",
    ]
    for topo, values in PAPER_TABLE2.items():
        lines.append(f"| {topo} | {values['q-routing']:g} | {values['mamrl-init']:g} | {values['random-init']:g} |")
    lines += [
        "",
        "Ours (mean ± 95% CI over seeds; `> N` = not within the N episodes the run leaves before its plateau window; "
        "also in [table2.md](table2.md) and [table2.csv](table2.csv)). Read the counts with the plateau they reach: "
        "SPA, which never reacts, \"adapts\" at once to losing packets.",
        "",
        "| topology | failed link | controller | episodes to adapt (reward rule) | episodes until loss < 1% "
        "| adaptation steps until loss < 1% | packets lost until loss < 1% | recovery (ticks of network time) "
        "| plateau loss | plateau sojourn time (ticks, every packet) | plateau delivery time (ticks, paper's metric) | paper |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in table:
        seeds = len(t.seeds)
        lines.append(
            f"| {t.topology} | {t.failure}{' (held out)' if t.held_out else ''} | {controller_label(t.controller)} "
            f"| {_count(t.episodes_to_adapt, t.adapted_seeds, seeds, t.budget)} "
            f"| {_count(t.episodes_to_low_loss, t.low_loss_seeds, seeds, t.budget)} | {format_steps(t)} "
            f"| {format_estimate(t.lost_until_low_loss)} | {_count(t.recovery_ticks, t.recovered_seeds, seeds, 'run')} "
            f"| {format_percent(t.plateau_loss_fraction, 2)} | {format_estimate(t.plateau_sojourn_time)} | {format_estimate(t.plateau_delivery_time)} "
            f"| {'—' if t.paper is None else f'{t.paper:g}'} |"
        )
    lines += ["", "<details><summary>The adaptation rule and recovery in network time</summary>", "", ADAPT_RULE, "",
              STEPS_TEXT, "", RECOVERY_TEXT, "", "</details>", ""]

    lines += [
        "## Where this differs from the paper, and why",
        "",
    ]
    overloaded = overloaded_phrase(at_paper, limits)
    if overloaded:
        lines.append(
            f"* **Saturation.** The comparison load is past the capacity limit λ* of {overloaded} (above), so no routing "
            "keeps its queues bounded there: the paper's comparison point measures transients that grow with the "
            "horizon, not steady-state delays, and compares overloaded networks rather than algorithms.")
    lines += [
        "* **The paper's metric ignores undelivered packets.** A policy can look fast by delivering fewer packets; "
        "the sojourn time of every packet and the delivered fraction in the same rows show whether a reduction is real.",
        "* **Reward.** The deep learner and the meta-training use per-packet credit (`reward = \"packet\"`): trained "
        "on the paper's reward the policies learn to stop delivering: its per-router signal counts delivered packets "
        "only and is 0 when none is delivered, so delivering less raises it. Set "
        "`--set sweep.algorithm_config.mamrl.reward='\"paper\"'` (and `failures.maml.reward`) for the faithful one.",
        "* **Eq. 4** as printed diverges; the consensus uses the stable form of its cited source (dynamic average "
        "consensus, gain 0.5 / maximum degree).",
    ]
    if config.reduced:
        lines.append("* **Budgets.** This run's budgets are below the paper's (table above): learned policies and the "
                     "meta-initialisation are not trained to convergence, and CIs cover fewer seeds.")
    lines += [""]

    lines += ["## Run record", "", "| stage | wall time | attempts | CPUs of the attempts |", "|---|---|---|---|"]
    stages_doc = manifest.get("stages", {})
    for name, title in STAGES:
        attempts = stages_doc.get(name, {}).get("attempts", 0)  # the report's own attempt is counted when it starts
        lines.append(f"| {title} | {_seconds(walls.get(name, 0.0))} | {attempts} "
                     f"| {attempt_machines(stages_doc.get(name, {}))} |")
    lines.append(f"| **total** | **{_seconds(total)}** | | |")
    if meta_note:
        lines += ["", meta_note]
    versions = _versions()
    sweep = config.sweep
    fail = config.failures
    lines += [
        "",
        "Seeds: E1 training " + ", ".join(map(str, sweep["seeds"]))
        + f" (evaluation on s + {EVAL_SEED_OFFSET:,}); saturation " + ", ".join(map(str, config.saturation.seeds))
        + "; E2 " + ", ".join(map(str, fail["seeds"])) + f"; meta-training {fail.get('meta_seed', 0)}.",
        "",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + f"; {platform.platform()}.",
        "",
        "<details><summary>The resolved configuration (manifest.json)</summary>",
        "",
        "```json",
        json.dumps(resolved, indent=2),
        "```",
        "",
        "</details>",
    ]
    return runs.write_text(out / REPORT, "\n".join(lines).rstrip() + "\n")


__all__ = [
    "COMPARISON_COLUMNS",
    "COMPARISON_NOTE",
    "REDUCED_LABEL",
    "Comparison",
    "compare",
    "comparison_csv",
    "comparison_load",
    "comparison_markdown",
    "copy_figures",
    "load_against_capacity",
    "overloaded_phrase",
    "overloaded_topologies",
    "write_report",
]
