"""Figures and the markdown report of a load sweep (docs/sweep.md E1, in the style of the paper's Fig. 4).

Three figures, one panel per topology, one line per algorithm, loads on a log axis, shaded 95%
confidence bands (all evaluation episodes of all seeds pooled):

* `delivery_time`  — mean delivery time of *delivered* packets (the paper's metric);
* `sojourn_time`   — the mean sojourn time over every packet created, lost ones included (docs/model.md);
* `loss_delivered` — loss fraction (top row) and delivered fraction (bottom row).

Markers tell each point's queue behaviour (`mamrl.experiments.saturation`): filled = bounded,
hollow = growing (past saturation), half-filled = undetermined; a dotted vertical line in the
algorithm's colour marks the highest load up to which its queues are bounded.

The report (`results.md`) holds the saturation table, the paper's comparison at λ = 0.5 (% reduction
of delivery time of each algorithm vs each other one, on the paper's metric and on the sojourn
time, beside the paper's own figures for MAMRL), the same comparison at the highest load where
every algorithm is stable, and every point of the sweep.

Uses `matplotlib.figure.Figure` with the Agg canvas directly (no pyplot, no backend switch).
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from mamrl import runs
from mamrl.errors import MamrlError
from mamrl.experiments.saturation import BOUNDED, GROWING, RULE_TEXT, UNDETERMINED, SaturationSummary, summarise_saturation
from mamrl.experiments.sweep import Point, Row, aggregate, check_rows_in_sidecar, read_results, sidecar_path
from mamrl.plotting.style import new_figure, set_suptitle
from mamrl.plotting.topology import save_figure
from mamrl.sim.metrics import Estimate

PAPER_LOAD = 0.5
"""The load of the paper's comparison (§4.2)."""

PAPER_REDUCTIONS: dict[str, dict[str, float]] = {
    "b4": {"spa": 25.0, "q-routing": 24.0, "pg": 14.0},
    "geant": {"spa": 37.0, "q-routing": 37.0, "pg": 10.0},
    "att": {"spa": 33.0, "q-routing": 28.0, "pg": 10.0},
}
"""The paper's % reduction of mean delivery time of MAMRL vs SPA / Q-routing / PG at λ = 0.5 (docs/algorithms.md)."""

_KNOWN_COLOURS = {
    "spa": "#1f77b4",
    "q-routing": "#ff7f0e",
    "pg": "#2ca02c",
    "random": "#7f7f7f",
    "mamrl": "#d62728",
    "ecmp": "#9467bd",
    "max-throughput": "#8c564b",
    "min-delay": "#e377c2",
    "backpressure": "#bcbd22",
    "sp-backpressure": "#17becf",
}
_KNOWN_MARKERS = {"spa": "o", "q-routing": "s", "pg": "^", "random": "D", "mamrl": "*", "ecmp": "P",
                  "max-throughput": "X", "min-delay": "h", "backpressure": "<", "sp-backpressure": ">"}
_DASH = 2.0  # dash length (in line widths) of the saturation markers
_LABELS = {"spa": "SPA", "q-routing": "Q-routing", "pg": "PG", "random": "random", "mamrl": "MAMRL", "ecmp": "ECMP",
           "max-throughput": "max-throughput", "min-delay": "min-delay", "backpressure": "backpressure",
           "sp-backpressure": "SP-backpressure"}

FIGURES = ("delivery_time", "sojourn_time", "loss_delivered")
"""Figure file stems written by `write_sweep_report`."""
REPORT_NAME = "results.md"


def algorithm_label(name: str) -> str:
    return _LABELS.get(name, name)


def _styles(algorithms: Sequence[str]) -> dict[str, tuple[str, str]]:
    extra = [c for c in colormaps["tab10"].colors]
    out, k = {}, 0
    for name in algorithms:
        if name in _KNOWN_COLOURS:
            out[name] = (_KNOWN_COLOURS[name], _KNOWN_MARKERS[name])
        else:
            out[name] = (extra[(4 + k) % len(extra)], "v")
            k += 1
    return out


def _order(points: Sequence[Point]) -> tuple[list[str], list[str]]:
    topologies = list(dict.fromkeys(p.topology for p in points))
    algorithms = list(dict.fromkeys(p.algorithm for p in points))
    return topologies, algorithms


def _saturation_index(saturation: Sequence[SaturationSummary]) -> dict[tuple[str, str], SaturationSummary]:
    return {(s.topology, s.algorithm): s for s in saturation}


def _x(p: Point, relative: bool) -> float:
    return p.load_share if relative else p.load


def _capacity(points: Sequence[Point], topology: str) -> float:
    """λ* of a topology as recorded in its rows (NaN if not recorded)."""
    limits = [p.max_load for p in points if p.topology == topology and math.isfinite(p.max_load)]
    return limits[0] if limits else math.nan


def _format_load_axis(ax: Axes, loads: Sequence[float], *, relative: bool = False, capacity: float = math.nan) -> None:
    """Log load axis with the swept loads as ticks and the capacity limit λ* as a black line."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted(loads)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:.3g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="x", labelrotation=45 if len(loads) > 5 else 0, labelsize=8)
    limit = 1.0 if relative else capacity
    if loads:
        lo, hi = min(loads), max(loads)
        if math.isfinite(limit):
            lo, hi = min(lo, limit), max(hi, limit)
        pad = (hi / lo) ** 0.04 if hi > lo else 1.3
        ax.set_xlim(lo / pad, hi * pad)
    if math.isfinite(limit):
        ax.axvline(limit, color="black", linewidth=1.4, zorder=1)
        ax.annotate("λ*", (limit, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", fontsize=9)
    if not relative and math.isfinite(capacity) and capacity > 0 and loads:
        # The same axis read as λ/λ* on top, so every panel gives both readings.
        top = ax.secondary_xaxis("top", functions=(lambda x: x / capacity, lambda r: r * capacity))
        lo, hi = (v / capacity for v in ax.get_xlim())
        shares = [r for r in (0.01, 0.03, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0) if lo <= r <= hi]
        top.xaxis.set_major_locator(FixedLocator(shares))
        top.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
        top.xaxis.set_minor_locator(NullLocator())
        top.tick_params(axis="x", labelsize=7, colors="#555555")
        top.set_xlabel("λ/λ*", fontsize=8, color="#555555", labelpad=1)
    ax.set_xlabel("load as a share of the capacity limit, λ/λ* (log scale)" if relative
                  else "load λ (packets per router per tick, log scale)")
    ax.grid(True, which="major", alpha=0.3)


def _draw_series(
    ax: Axes,
    points: Sequence[Point],
    topology: str,
    algorithms: Sequence[str],
    metric: str,
    styles: dict[str, tuple[str, str]],
    saturation: dict[tuple[str, str], SaturationSummary],
    scale: float = 1.0,
    clip: tuple[float, float] | None = None,
    relative: bool = False,
) -> None:
    for algo in algorithms:
        series = sorted((p for p in points if p.topology == topology and p.algorithm == algo), key=lambda p: p.load)
        if not series:
            continue
        colour, marker = styles[algo]
        loads = [_x(p, relative) for p in series]
        est = [p.metrics[metric] for p in series]
        mean = [e.mean * scale for e in est]
        lo = [(e.mean - e.ci95) * scale if math.isfinite(e.ci95) else float("nan") for e in est]
        hi = [(e.mean + e.ci95) * scale if math.isfinite(e.ci95) else float("nan") for e in est]
        if clip is not None:  # a CI of a share or a time cannot leave its range
            lo = [min(max(v, clip[0]), clip[1]) for v in lo]
            hi = [min(max(v, clip[0]), clip[1]) for v in hi]
        ax.plot(loads, mean, color=colour, linewidth=1.8, zorder=3)
        ax.fill_between(loads, lo, hi, color=colour, alpha=0.18, linewidth=0, zorder=2)
        summary = saturation.get((topology, algo))
        for p, y in zip(series, mean):
            status = summary.status.get(p.load, UNDETERMINED) if summary else UNDETERMINED
            fill = {BOUNDED: "full", GROWING: "none", UNDETERMINED: "left"}[status]
            ax.plot(
                [_x(p, relative)], [y], linestyle="", marker=marker, markersize=7, color=colour, markeredgecolor=colour,
                markerfacecolor=colour if fill != "none" else "white", fillstyle=fill,
                markerfacecoloralt="white", markeredgewidth=1.4, zorder=4,
            )
        if summary is not None and summary.bounded_up_to is not None:
            # Interleaved dashes: algorithms whose lines coincide share it in alternating colours.
            k, n = list(algorithms).index(algo), len(algorithms)
            ax.axvline(summary.bounded_up_to / (series[0].max_load if relative else 1.0), color=colour, linewidth=1.8, zorder=1,
                       linestyle=(k * _DASH, (_DASH, _DASH * max(n - 1, 1))))


def _legend_handles(algorithms: Sequence[str], styles: dict[str, tuple[str, str]]) -> list[Line2D]:
    handles = [
        Line2D([], [], color=styles[a][0], marker=styles[a][1], linewidth=1.8, markersize=7, label=algorithm_label(a))
        for a in algorithms
    ]
    grey = "#555555"
    handles += [
        Line2D([], [], linestyle="", marker="o", color=grey, markersize=7, label="queues bounded"),
        Line2D([], [], linestyle="", marker="o", color=grey, markerfacecolor="white", markeredgewidth=1.4,
               markersize=7, label="queues growing (past saturation)"),
        Line2D([], [], linestyle="", marker="o", color=grey, fillstyle="left", markerfacecoloralt="white",
               markersize=7, label="undetermined"),
        Line2D([], [], color=grey, linestyle=(0, (_DASH, _DASH)), linewidth=1.8, label="highest load with bounded queues"),
        Line2D([], [], color="black", linewidth=1.4, label="λ*, the capacity limit"),
        Line2D([], [], color=grey, alpha=0.25, linewidth=8, label="95% CI"),
    ]
    return handles


def _new_figure(rows: int, cols: int) -> Figure:
    return new_figure(max(5.2 * cols, 10.0), 4.1 * rows + 2.2)


def _panels(fig: Figure, rows: int, cols: int) -> list[list[Axes]]:
    axes = fig.subplots(rows, cols, squeeze=False)
    return [list(r) for r in axes]


def _finish(fig: Figure, algorithms: Sequence[str], styles: dict[str, tuple[str, str]], title: str, subtitle: str) -> None:
    width = int(fig.get_figwidth() * 11)  # characters per subtitle line at 9.5 pt
    lines = [line for part in subtitle.split("\n") for line in textwrap.wrap(part, width)]
    set_suptitle(fig, title + "\n" + "\n".join(lines), fontsize=10.5)
    handles = _legend_handles(algorithms, styles)
    fig.legend(handles=handles, loc="outside lower center", ncol=math.ceil(len(handles) / 2), frameon=False, fontsize=9)


def describe_setup(rows: Sequence[Row]) -> str:
    """e.g. `trained 2000 episodes × 500 ticks; evaluated 10 episodes × 2 seeds; mean ± 95% CI`."""
    if not rows:
        return ""
    trained = sorted({int(r["train_episodes"]) for r in rows if int(r["train_episodes"]) > 0})
    horizons = sorted({int(r["horizon_ticks"]) for r in rows})
    evals = sorted({int(r["eval_episodes"]) for r in rows})
    seeds = sorted({int(r["seed"]) for r in rows})
    h = "/".join(map(str, horizons))
    eval_h = "/".join(map(str, sorted({int(r["eval_horizon_ticks"]) for r in rows})))
    parts = []
    if trained:
        parts.append(f"learners trained {'/'.join(f'{t:,}' for t in trained)} episodes × {h} ticks")
    parts.append(f"evaluated {'/'.join(map(str, evals))} episodes × {len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
                 + ("" if trained and eval_h == h else f" × {eval_h} ticks"))
    parts.append("mean ± 95% CI")
    return "; ".join(parts)


def plot_time_metric(
    points: Sequence[Point], saturation: Sequence[SaturationSummary], metric: str, *, title: str, subtitle: str, ylabel: str,
    relative: bool = False,
) -> Figure:
    """One panel per topology: `metric` vs load (or λ/λ* with `relative`), one line per algorithm."""
    topologies, algorithms = _order(points)
    styles = _styles(algorithms)
    sat = _saturation_index(saturation)
    fig = _new_figure(1, len(topologies))
    for ax, topo in zip(_panels(fig, 1, len(topologies))[0], topologies):
        _draw_series(ax, points, topo, algorithms, metric, styles, sat, clip=(0.0, math.inf), relative=relative)
        _format_load_axis(ax, sorted({_x(p, relative) for p in points if p.topology == topo}), relative=relative,
                          capacity=_capacity(points, topo))
        ax.set_title(topo, fontsize=11, fontweight="bold")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
    _finish(fig, algorithms, styles, title, subtitle)
    return fig


def plot_fractions(points: Sequence[Point], saturation: Sequence[SaturationSummary], *, subtitle: str,
                   relative: bool = False) -> Figure:
    """Loss fraction (top row) and delivered fraction (bottom row), one column per topology."""
    topologies, algorithms = _order(points)
    styles = _styles(algorithms)
    sat = _saturation_index(saturation)
    fig = _new_figure(2, len(topologies))
    axes = _panels(fig, 2, len(topologies))
    for col, topo in enumerate(topologies):
        loads = sorted({_x(p, relative) for p in points if p.topology == topo})
        for row, (metric, label) in enumerate((("loss_fraction", "lost (% of packets created)"),
                                               ("delivered_fraction", "delivered (% of packets created)"))):
            ax = axes[row][col]
            _draw_series(ax, points, topo, algorithms, metric, styles, sat, scale=100.0, clip=(0.0, 100.0), relative=relative)
            _format_load_axis(ax, loads, relative=relative, capacity=_capacity(points, topo))
            ax.set_ylabel(label)
            if row == 0:
                ax.set_title(topo, fontsize=11, fontweight="bold")
                values = [p.metrics[metric].mean for p in points if p.topology == topo]
                if values and all(v == 0 for v in values if math.isfinite(v)):
                    ax.set_ylim(-1, 10)
                    ax.text(0.5, 0.55, "no packet lost at any load\n(intact network, unbounded queues)",
                            transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#555555")
                else:
                    ax.set_ylim(bottom=0)
            else:
                ax.set_ylim(top=100.5)
    _finish(fig, algorithms, styles, "Loss and delivered fraction vs load",
            subtitle + "\nnot delivered = lost + still in the network at the horizon")
    return fig


# ------------------------------------------------------------------------------ markdown
def format_estimate(e: Estimate, digits: int = 3, scale: float = 1.0, suffix: str = "") -> str:
    """`mean ± 95% CI` (just the mean without a CI; n/a without data)."""
    if e.n == 0 or not math.isfinite(e.mean):
        return "n/a"
    mean = e.mean * scale
    if not math.isfinite(e.ci95):
        return f"{mean:.{digits}g}{suffix}"
    return f"{mean:.{digits}g} ± {e.ci95 * scale:.2g}{suffix}"


def format_percent(e: Estimate, decimals: int = 1) -> str:
    """A fraction as `mean ± 95% CI %`."""
    if e.n == 0 or not math.isfinite(e.mean):
        return "n/a"
    ci = f" ± {100 * e.ci95:.{decimals}f}" if math.isfinite(e.ci95) else ""
    return f"{100 * e.mean:.{decimals}f}{ci} %"


def _fmt_growth(e: Estimate) -> str:
    if e.n == 0 or not math.isfinite(e.mean):
        return "n/a"
    ci = f" ± {e.ci95:.4f}" if math.isfinite(e.ci95) else ""
    return f"{e.mean:+.4f}{ci}"


def reduction(x: Estimate, y: Estimate) -> tuple[float, float]:
    """% reduction of x vs y, 100·(y − x)/y, and its 95% CI half-width (delta method, x and y
    treated as independent: conservative, since common random numbers correlate them positively)."""
    if not (math.isfinite(x.mean) and math.isfinite(y.mean)) or y.mean == 0:
        return float("nan"), float("nan")
    ratio = x.mean / y.mean
    rel = []
    for e in (x, y):
        rel.append((e.ci95 / e.mean) ** 2 if math.isfinite(e.ci95) and e.mean != 0 else float("nan"))
    half = 100 * abs(ratio) * math.sqrt(rel[0] + rel[1]) if all(math.isfinite(r) for r in rel) else float("nan")
    return 100 * (1 - ratio), half


def _fmt_reduction(x: Estimate, y: Estimate) -> str:
    value, half = reduction(x, y)
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.0f} ± {half:.0f} %" if math.isfinite(half) else f"{value:+.0f} %"


def _fmt_limit(limit: float) -> str:
    return f"{limit:.4g}" if math.isfinite(limit) else "n/a"


def _fmt_share(share: float) -> str:
    return f"{share:.2f}" if math.isfinite(share) else "n/a"


def _load_and_share(load: float, limit: float) -> str:
    """`0.18 (57%)`: a load and its share of λ*."""
    return f"{load:g} ({100 * load / limit:.0f}%)" if math.isfinite(limit) and limit > 0 else f"{load:g}"


def _comparison_table(
    points: Sequence[Point], sat: dict[tuple[str, str], SaturationSummary], loads: dict[str, float]
) -> list[str]:
    lines = [
        "| topology | λ | X | vs Y | delivery time, paper's metric (X / Y) | reduction (paper's metric) "
        "| sojourn time, every packet (X / Y) | reduction (sojourn time) | delivered X / Y | queues X / Y | paper: MAMRL vs Y |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    topologies, algorithms = _order(points)
    by_key = {(p.topology, p.algorithm, p.load): p for p in points}
    for topo in topologies:
        load = loads.get(topo)
        if load is None:
            continue
        for x in algorithms:
            for y in algorithms:
                px, py = by_key.get((topo, x, load)), by_key.get((topo, y, load))
                if x == y or px is None or py is None:
                    continue
                dx, dy = px.metrics["mean_delivery_time"], py.metrics["mean_delivery_time"]
                sx, sy = px.metrics["mean_sojourn_time"], py.metrics["mean_sojourn_time"]
                fx, fy = px.metrics["delivered_fraction"], py.metrics["delivered_fraction"]
                qx = sat[(topo, x)].status.get(load, "?") if (topo, x) in sat else "?"
                qy = sat[(topo, y)].status.get(load, "?") if (topo, y) in sat else "?"
                paper = PAPER_REDUCTIONS.get(topo.lower(), {}).get(y)
                paper_text = f"{paper:.0f} %" if paper is not None and math.isclose(load, PAPER_LOAD) else "—"
                lines.append(
                    f"| {topo} | {load:g} | {algorithm_label(x)} | {algorithm_label(y)} "
                    f"| {format_estimate(dx, 3)} / {format_estimate(dy, 3)} | {_fmt_reduction(dx, dy)} "
                    f"| {format_estimate(sx, 3)} / {format_estimate(sy, 3)} | {_fmt_reduction(sx, sy)} "
                    f"| {format_percent(fx)} / {format_percent(fy)} | {qx} / {qy} | {paper_text} |"
                )
    return lines


def markdown_report(
    rows: Sequence[Row],
    *,
    source: str,
    figures: Sequence[str] = (),
    sidecar: dict[str, Any] | None = None,
) -> str:
    """The sweep's markdown report: saturation, the paper's comparison, all points."""
    points = aggregate(rows)
    saturation = summarise_saturation(points)
    sat = _saturation_index(saturation)
    topologies, algorithms = _order(points)
    hashes = sorted({r["config_hash"] for r in rows})
    versions = sorted({r["mamrl_version"] for r in rows})
    out = ["# Load sweep (E1)", ""]
    out.append(
        f"Results: `{source}` — {len(rows)} cells, config hash {', '.join(hashes)}, mamrl {', '.join(versions)}"
        + (f", git {sidecar['created']['git']['commit'][:10]}" if sidecar and (sidecar.get('created') or {}).get('git') else "")
        + "."
    )
    out.append(f"Setup: {describe_setup(rows)}. Seeds {', '.join(map(str, sorted({int(r['seed']) for r in rows})))}; "
               "training traffic from seed s, evaluation traffic from seed s + 1,000,003, identical for every algorithm "
               "(common random numbers). Each value is the mean ± 95% CI over all evaluation episodes of all seeds.")
    if figures:
        out.append("")
        out.append("Figures: " + ", ".join(f"[{f}]({f})" for f in figures) + ".")
    out += [
        "",
        "**Read the paper's metric with care.** Mean delivery time averages over *delivered* packets only, so a policy "
        "that delivers few packets looks fast. The sojourn time averages over every packet created (one still in the "
        "network at the horizon, or lost, counts with its age at the horizon, so dropping a packet never helps) and is the "
        "figure to judge by, together with the delivered fraction.",
        "",
        "## Saturation",
        "",
        RULE_TEXT,
        "",
        "λ* is the capacity limit (`mamrl capacity`): the largest load *any* routing can carry, from a "
        "max-concurrent-flow linear programme of the model (a router forwards at most one packet per tick). "
        "An algorithm's saturation load is at most λ*; read each one as a share of it.",
        "",
        "| topology | λ* | algorithm | queues bounded up to λ (% of λ*) | growing from λ (% of λ*) | undetermined at λ |",
        "|---|---|---|---|---|---|",
    ]
    for s in saturation:
        limit = _capacity(points, s.topology)
        out.append(
            f"| {s.topology} | {_fmt_limit(limit)} | {algorithm_label(s.algorithm)} "
            f"| {'none' if s.bounded_up_to is None else _load_and_share(s.bounded_up_to, limit)} "
            f"| {'none' if s.growing_from is None else _load_and_share(s.growing_from, limit)} "
            f"| {', '.join(f'{x:g}' for x in s.undetermined) or '—'} |"
        )

    # The paper's comparison at λ = 0.5 (or the highest swept load).
    top_loads: dict[str, float] = {}
    for topo in topologies:
        loads = sorted({p.load for p in points if p.topology == topo})
        top_loads[topo] = next((x for x in loads if math.isclose(x, PAPER_LOAD)), loads[-1])
    shown = sorted(set(top_loads.values()))
    at_paper = all(math.isclose(x, PAPER_LOAD) for x in shown)
    out += ["", f"## The paper's comparison at λ = {PAPER_LOAD:g}", ""]
    if not at_paper:
        out.append(f"λ = {PAPER_LOAD:g} is not in this sweep; shown at the highest swept load "
                   f"({', '.join(f'{x:g}' for x in shown)}).")
        out.append("")
    out += [
        "% reduction of mean delivery time of X vs Y: 100·(T_Y − T_X)/T_Y, positive = X faster. CI: delta method, X and Y "
        "treated as independent (conservative: common random numbers correlate them). The paper (§4.2) reports only "
        "MAMRL's reductions at λ = 0.5 — B4 25 / 24 / 14 %, GEANT 37 / 37 / 10 %, ATT 33 / 28 / 10 % vs SPA / Q-routing / PG "
        "— shown in the last column for the row's Y. Where the queues column says *growing*, the load is past that "
        "algorithm's saturation: its figures are transient ones over a finite horizon (they grow with the horizon), "
        "not steady-state delays. "
        + ("The paper's λ = 0.5 is "
           + ", ".join(f"{PAPER_LOAD / _capacity(points, t):.1f}× λ* on {t}" for t in topologies if _capacity(points, t) > 0)
           + ": past what any routing carries, so every algorithm's queues grow there."
           if any(_capacity(points, t) > 0 for t in topologies) else ""),
        "",
    ]
    if len(algorithms) < 2:
        out.append("(Only one algorithm in the results: nothing to compare.)")
    else:
        out += _comparison_table(points, sat, top_loads)

    # The same where every algorithm is stable.
    stable: dict[str, float] = {}
    for topo in topologies:
        ups = [sat[(topo, a)].bounded_up_to for a in algorithms if (topo, a) in sat]
        if ups and all(u is not None for u in ups):
            stable[topo] = min(ups)
    if len(algorithms) >= 2 and stable:
        out += [
            "",
            "## The same comparison where every algorithm's queues are bounded",
            "",
            "At the highest swept load at which every algorithm's queues are bounded (steady state, per topology):",
            "",
        ]
        out += _comparison_table(points, sat, stable)

    out += ["", "## All points", ""]
    for topo in topologies:
        out += [
            f"### {topo}" + (f" (λ* = {_fmt_limit(_capacity(points, topo))})" if _capacity(points, topo) > 0 else ""),
            "",
            "| λ | λ/λ* | algorithm | delivery time, paper's metric (ticks) | sojourn time, every packet (ticks) | delivered | lost "
            "| p95 / p99 delivery time | stretch | backlog growth (packets/tick) | queues |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for p in sorted((p for p in points if p.topology == topo), key=lambda p: (p.load, algorithms.index(p.algorithm))):
            status = sat[(topo, p.algorithm)].status.get(p.load, "?") if (topo, p.algorithm) in sat else "?"
            m = p.metrics
            out.append(
                f"| {p.load:g} | {_fmt_share(p.load_share)} | {algorithm_label(p.algorithm)} | {format_estimate(m['mean_delivery_time'])} | {format_estimate(m['mean_sojourn_time'])} "
                f"| {format_percent(m['delivered_fraction'])} | {format_percent(m['loss_fraction'], 3)} "
                f"| {format_estimate(m['p95_delivery_time'])} / {format_estimate(m['p99_delivery_time'])} "
                f"| {format_estimate(m['mean_stretch'], 3)} | {_fmt_growth(m['backlog_growth'])} | {status} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# ------------------------------------------------------------------------------ everything at once
def write_sweep_report(
    results: str | os.PathLike[str], output_dir: str | os.PathLike[str], *, formats: Sequence[str] = ("png", "pdf"),
    relative_load: bool = False,
) -> list[Path]:
    """Read a sweep's results CSV; write the three figures (each format) and `results.md` into
    `output_dir`. Returns the files written. `relative_load`: the figures' x axis is λ/λ*."""
    results = Path(results)
    output_dir = Path(output_dir)
    for fmt in formats:
        if f".{fmt}" not in (".png", ".pdf", ".svg"):
            raise MamrlError(f"unknown figure format {fmt!r} (choose from png, pdf, svg)")
    if output_dir.exists() and not output_dir.is_dir():
        raise MamrlError(f"--output {str(output_dir)!r} exists and is not a directory")
    rows = read_results(results)
    if not rows:
        raise MamrlError(f"results file {str(results)!r} has no finished cells yet")
    sidecar = None
    side = sidecar_path(results)
    if side.is_file():
        try:
            sidecar = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            sidecar = None
    remedy = "plot only the cells of one sweep config (remove the row)"
    check_rows_in_sidecar(rows, sidecar, results, remedy)
    points = aggregate(rows)
    if relative_load and not all(math.isfinite(p.max_load) and p.max_load > 0 for p in points):
        raise MamrlError(f"{results}: the rows do not record λ* (written by an older mamrl): plot without --relative-load")
    saturation = summarise_saturation(points)
    setup = describe_setup(rows)
    figures = {
        "delivery_time": plot_time_metric(
            points, saturation, "mean_delivery_time",
            title="Mean delivery time of delivered packets vs load (the paper's metric, cf. Fig. 4)",
            subtitle=setup + "\naverages over delivered packets only: read it with the sojourn time and the delivered fraction",
            ylabel="delivery time (ticks)", relative=relative_load,
        ),
        "sojourn_time": plot_time_metric(
            points, saturation, "mean_sojourn_time",
            title="Mean sojourn time of every packet created vs load (lost ones included)",
            subtitle=setup + "\nevery packet created counts; one still in the network at the horizon, or lost, with its age at the horizon",
            ylabel="sojourn time (ticks)", relative=relative_load,
        ),
        "loss_delivered": plot_fractions(points, saturation, subtitle=setup, relative=relative_load),
    }
    written: list[Path] = []
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MamrlError(f"cannot create directory {str(output_dir)!r}: {exc.strerror or exc}") from None
    names = []
    for stem, fig in figures.items():
        for fmt in formats:
            written.append(save_figure(fig, output_dir / f"{stem}.{fmt}"))
        names.append(f"{stem}.{formats[0]}")
    source = os.path.relpath(results, output_dir) if results.is_absolute() == output_dir.is_absolute() else str(results)
    report = markdown_report(rows, source=source, figures=names, sidecar=sidecar)
    written.append(runs.write_text(output_dir / REPORT_NAME, report))
    return written


__all__ = [
    "FIGURES",
    "PAPER_LOAD",
    "PAPER_REDUCTIONS",
    "REPORT_NAME",
    "algorithm_label",
    "describe_setup",
    "markdown_report",
    "plot_fractions",
    "plot_time_metric",
    "reduction",
    "write_sweep_report",
]
