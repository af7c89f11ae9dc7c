"""Figures and tables of the link-failure experiment (docs/sweep.md E2; the paper's Figs. 5–7 and Table 2).

Five figures, one panel per (topology, failure), one line per controller: the mean over seeds
per episode, a band from the lowest to the highest seed, a dashed vertical line at the failure
episode and ▼ markers at the episodes in which a controller reset (in any seed), except in
`lost_cumulative`. Runs longer than SMOOTH_ABOVE_EPISODES are drawn as 10-episode means:

* `loss`            — loss fraction vs episode (Fig. 5);
* `loss_transient`  — the same, every episode of the first TRANSIENT_EPISODES from the failure on;
* `lost_cumulative` — packets lost since the failure, in total, vs episodes since it (log-log);
* `delivery_time`   — the paper's mean delivery time of delivered packets (top row) and the
  sojourn time of every packet, lost ones included (bottom row) vs episode (Fig. 6);
* `reward`          — the common reward vs episode (Fig. 7).

`table2.md` holds Table 2 (episodes to adapt, `mamrl.experiments.failures.RULE_TEXT`) with the
plateau figures beside it and the paper's numbers; `table2.csv` the same, machine-readable, with
per-seed values.

Uses `matplotlib.figure.Figure` with the Agg canvas directly (no pyplot, no backend switch).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import textwrap
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mamrl import runs
from mamrl.errors import MamrlError
from mamrl.experiments.failures import (
    LOSS_TARGET,
    MA_WINDOW,
    PAPER_TABLE2,
    RECOVERY_TEXT,
    RULE_TEXT,
    STEPS_TEXT,
    Row,
    TableRow,
    read_curves,
    table2,
)
from mamrl.experiments.failures.experiment import complete_runs, run_key
from mamrl.plotting.sweep import format_estimate, format_percent
from mamrl.plotting.style import new_figure, set_suptitle
from mamrl.plotting.topology import save_figure
from mamrl.sim.metrics import Estimate

FIGURES = ("recovery", "loss", "loss_transient", "lost_cumulative", "delivery_time", "reward")
"""Figure file stems written by `write_failure_report`."""
TABLE_MD = "table2.md"
TABLE_CSV = "table2.csv"

_COLOURS = {
    "spa": "#1f77b4",
    "spa-reconverge": "#17becf",
    "q-routing": "#ff7f0e",
    "mamrl-init": "#d62728",
    "continued": "#9467bd",
    "random-init": "#7f7f7f",
}
_LABELS = {
    "spa": "SPA (never reacts)",
    "spa-reconverge": "SPA, re-converging",
    "q-routing": "Q-routing",
    "mamrl-init": "MAMRL (meta-init, reset)",
    "continued": "meta-init, no reset",
    "random-init": "random init (reset)",
    "random-init-trpo": "random init, TRPO (reset)",
    "ecmp": "ECMP (never reacts)",
    "ecmp-reconverge": "ECMP, re-converging",
    "min-delay": "min-delay (never reacts)",
    "min-delay-reconverge": "min-delay, recomputed after the failure",
    "max-throughput": "max-throughput (never reacts)",
    "max-throughput-reconverge": "max-throughput, recomputed after the failure",
    "backpressure": "backpressure",
    "sp-backpressure": "shortest-path-biased backpressure",
    "fine-tune": "intact policy, fine-tuned",
    "zero-shot": "multi-task policy, frozen",
    "masked": "intact policy, failed link masked",
}
SUMMARY_ORDER = (
    "spa", "ecmp", "min-delay", "max-throughput", "spa-reconverge", "ecmp-reconverge", "min-delay-reconverge",
    "max-throughput-reconverge", "backpressure", "sp-backpressure", "q-routing", "mamrl-init", "continued",
    "random-init", "random-init-trpo", "fine-tune", "zero-shot", "masked",
)
"""Controllers' order in the summaries: routing that never reacts, re-converging routing, backpressure,
then the learners (unknown names last, in the order first seen)."""


def _summary_order(controllers: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(controllers))
    return sorted(unique, key=lambda c: (SUMMARY_ORDER.index(c) if c in SUMMARY_ORDER else len(SUMMARY_ORDER), unique.index(c)))


_EXTRA = ["#2ca02c", "#8c564b", "#e377c2", "#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5"]


def controller_label(name: str) -> str:
    return _LABELS.get(name, name)


_DASHES = ["-", (0, (5, 2)), (0, (1, 1.2)), (0, (6, 2, 1.5, 2)), (0, (3, 1, 1, 1, 1, 1))]
"""Line styles cycled over the controllers, so that curves lying on top of one another stay visible."""
_LEARNERS = ("q-routing", "mamrl-init", "continued", "random-init", "random-init-trpo", "fine-tune")


_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p", "d"]
"""Markers cycled over the controllers: with `MARKS_PER_CURVE` marks each, placed at different
episodes per controller, two curves that coincide still show both controllers' marks."""
MARKS_PER_CURVE = 8


def _line_style(controllers: Sequence[str], controller: str, points: int | None = None, *,
                log_x: bool = False) -> dict[str, Any]:
    """Dash pattern and marker by position (marks staggered along the curve by position, when
    the curve's length `points` is given; `log_x`: spaced evenly on the drawn axes instead of by
    index); learning controllers drawn above the static ones and thicker."""
    learner = controller in _LEARNERS
    k = list(controllers).index(controller)
    style: dict[str, Any] = {"linestyle": _DASHES[k % len(_DASHES)], "linewidth": 1.7 if learner else 1.2,
                             "zorder": 5 if learner else 3, "marker": _MARKERS[k % len(_MARKERS)], "markersize": 4.5,
                             "markeredgewidth": 0.6}
    if points is not None and log_x:
        step_fraction = 1.0 / MARKS_PER_CURVE
        style["markevery"] = (step_fraction * k / max(len(controllers), 1), step_fraction)
    elif points is not None:
        step = max(1, points // MARKS_PER_CURVE)
        style["markevery"] = (min(points - 1, (k * step) // max(len(controllers), 1)), step)
    return style


def _colours(controllers: Sequence[str]) -> dict[str, str]:
    out, k = {}, 0
    for name in controllers:
        if name in _COLOURS:
            out[name] = _COLOURS[name]
        else:
            out[name] = _EXTRA[k % len(_EXTRA)]
            k += 1
    return out


# ------------------------------------------------------------------------------ series
class _Curves:
    """Rows indexed by (topology, failure, controller): episodes and a [seeds, episodes] array per metric."""

    def __init__(self, rows: Sequence[Row]):
        if not rows:
            raise MamrlError("no curves to plot")
        self.topologies = list(dict.fromkeys(r["topology"] for r in rows))
        self.failures = {t: list(dict.fromkeys(r["failure"] for r in rows if r["topology"] == t)) for t in self.topologies}
        self.controllers = list(dict.fromkeys(r["controller"] for r in rows))
        self.held_out = {(r["topology"], r["failure"]): bool(r["held_out"]) for r in rows}
        groups: dict[tuple[str, str, str], dict[int, dict[int, Row]]] = {}
        for r in rows:
            groups.setdefault((r["topology"], r["failure"], r["controller"]), {}).setdefault(int(r["seed"]), {})[int(r["episode"])] = r
        self.groups = groups
        self.fail_episode: dict[tuple[str, str], int] = {}
        for r in rows:
            if r["phase"] != "intact":
                key = (r["topology"], r["failure"])
                self.fail_episode[key] = min(self.fail_episode.get(key, int(r["episode"])), int(r["episode"]))
        self.seeds = sorted({int(r["seed"]) for r in rows})
        self.episodes = max(int(r["episode"]) for r in rows) + 1

    def series(self, topology: str, failure: str, controller: str, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(episodes [E], values [S, E]) or None."""
        by_seed = self.groups.get((topology, failure, controller))
        if not by_seed:
            return None
        episodes = np.array(sorted({e for rows in by_seed.values() for e in rows}))
        values = np.full((len(by_seed), len(episodes)), np.nan)
        index = {e: k for k, e in enumerate(episodes)}
        for s, rows in enumerate(by_seed.values()):
            for e, row in rows.items():
                values[s, index[e]] = float(row[metric])
        return episodes, values

    def resets(self, topology: str, failure: str, controller: str) -> np.ndarray:
        by_seed = self.groups.get((topology, failure, controller)) or {}
        return np.array(sorted({e for rows in by_seed.values() for e, r in rows.items() if int(r["reset"])}), dtype=np.int64)


SMOOTH_ABOVE_EPISODES = 200
"""Runs longer than this are drawn as MA_WINDOW-episode means (per seed, before the seed band): a
thousand raw episodes per curve, a dozen curves per panel, hide every trend."""
TRANSIENT_EPISODES = 100
"""The transient figure shows the episodes from MA_WINDOW before the failure to this many from it on."""


def window_mean(values: np.ndarray, episodes: np.ndarray, fail_episode: int | None, window: int = MA_WINDOW) -> np.ndarray:
    """Per row of `values` [S, E], the mean of each episode and the `window` − 1 after it: the
    window the adaptation rule reads from that episode, so a curve crosses 1% where Table 2 counts.
    Windows stop at the failure episode (no mean mixes the intact network with the failed one) and
    shorten at the end of the run."""
    out = np.full(values.shape, np.nan)
    cuts = [0, len(episodes)]
    if fail_episode is not None:
        cuts.insert(1, int(np.searchsorted(episodes, fail_episode)))
    for start, stop in zip(cuts[:-1], cuts[1:]):
        if stop <= start:
            continue
        segment = values[:, start:stop]
        # Window sums and counts of the finite values from prefix sums (NaN = no value that episode).
        sums = np.concatenate([np.zeros((len(values), 1)), np.cumsum(np.nan_to_num(segment), axis=1)], axis=1)
        counts = np.concatenate([np.zeros((len(values), 1)), np.cumsum(np.isfinite(segment), axis=1)], axis=1)
        first = np.arange(stop - start)
        last = np.minimum(first + window, stop - start)
        n = counts[:, last] - counts[:, first]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, start:stop] = np.where(n > 0, (sums[:, last] - sums[:, first]) / n, np.nan)
    return out


def _reduce(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over seeds (NaN where no seed has a value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        return np.nanmean(values, axis=0), np.nanmin(values, axis=0), np.nanmax(values, axis=0)


# ------------------------------------------------------------------------------ figures
MAX_COLUMNS = 3
"""Panels per row of a figure (more failures wrap onto further rows)."""


def _new_figure(rows: int, cols: int) -> Figure:
    return new_figure(max(5.0 * cols, 9.0), 3.6 * rows + 2.0)


def _draw_panel(ax: Axes, curves: _Curves, topology: str, failure: str, metric: str, colours: dict[str, str],
                scale: float = 1.0, *, smooth: bool = False, window: tuple[int, int] | None = None,
                cumulative: bool = False) -> None:
    """One failure's curves; `smooth`: window means (`window_mean`); `window`: only the
    episodes first..last; `cumulative`: each seed's running total from the failure episode on,
    against episodes since the failure (the failure episode is 1)."""
    f = curves.fail_episode.get((topology, failure))
    for controller in curves.controllers:
        got = curves.series(topology, failure, controller, metric)
        if got is None:
            continue
        episodes, values = got
        if cumulative:
            origin = f if f is not None else 0
            after = episodes >= origin
            episodes = episodes[after] - origin + 1
            values = np.cumsum(np.nan_to_num(values[:, after]), axis=1)
        if smooth:
            values = window_mean(values, episodes, f)
        if window is not None:
            keep = (episodes >= window[0]) & (episodes <= window[1])
            episodes, values = episodes[keep], values[:, keep]
            if not episodes.size:
                continue
        mean, lo, hi = (v * scale for v in _reduce(values))
        colour = colours[controller]
        if values.shape[0] > 1:
            ax.fill_between(episodes, lo, hi, color=colour, alpha=0.18, linewidth=0, zorder=2)
        ax.plot(episodes, mean, color=colour, **_line_style(curves.controllers, controller, len(episodes), log_x=cumulative))
        resets = np.array([], dtype=np.int64) if cumulative else curves.resets(topology, failure, controller)
        resets = resets[np.isin(resets, episodes)]
        if resets.size:
            where = np.searchsorted(episodes, resets)
            ax.plot(resets, mean[where], linestyle="", marker="v", markersize=7, color=colour,
                    markeredgecolor="black", markeredgewidth=0.6, zorder=4)
    if f is not None and not cumulative:
        ax.axvline(f, color="black", linestyle="--", linewidth=1.0, zorder=1)
    ax.set_xlabel("episodes since the failure (the failure episode is 1)" if cumulative else "episode")
    ax.grid(True, alpha=0.3)
    held = " (held out of meta-training)" if curves.held_out.get((topology, failure)) else ""
    ax.set_title(f"{topology}: link {failure} fails{held}", fontsize=10.5, fontweight="bold")


def _legend(fig: Figure, curves: _Curves, colours: dict[str, str], title: str, subtitle: str, *, events: bool = True) -> None:
    """The controllers' styles, and with `events` the failure line and reset marks."""
    handles = [Line2D([], [], color=colours[c], label=controller_label(c),
                      **{k: v for k, v in _line_style(curves.controllers, c).items() if k != "zorder"})
               for c in curves.controllers]
    if events:
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.0, label="link fails"))
    if events and any(curves.resets(t, f, c).size for t in curves.topologies for f in curves.failures[t] for c in curves.controllers):
        handles.append(Line2D([], [], linestyle="", marker="v", color="#555555", markeredgecolor="black",
                              markersize=7, label="reset (in some seed)"))
    if len(curves.seeds) > 1:
        handles.append(Line2D([], [], color="#555555", alpha=0.25, linewidth=8, label="lowest–highest seed"))
    width = int(fig.get_figwidth() * 11)
    lines = [line for part in subtitle.split("\n") for line in textwrap.wrap(part, width)]
    set_suptitle(fig, title + ("\n" + "\n".join(lines) if lines else ""), fontsize=10.5)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False, fontsize=9)


def _plot(curves: _Curves, metrics: Sequence[tuple[str, str, float, bool]], title: str, subtitle: str, *,
          transient: bool = False, cumulative: bool = False) -> Figure:
    """Rows of panels per (topology, metric), one panel per failure, at most MAX_COLUMNS a row. The
    loss is drawn on a symmetric-log scale, so that a controller losing 0.1% stays visible beside
    one losing 20%. A long run is drawn smoothed (`SMOOTH_ABOVE_EPISODES`); `transient`: every
    episode from MA_WINDOW before the failure to TRANSIENT_EPISODES after it, unsmoothed;
    `cumulative`: running totals since the failure on log-log axes (`_draw_panel`)."""
    smooth = not transient and not cumulative and curves.episodes > SMOOTH_ABOVE_EPISODES
    if smooth:
        subtitle += (f"\neach point is a seed's mean over that episode and the {MA_WINDOW - 1} after it (not across the "
                     "failure), the window the adaptation rule reads from it")
    cols = min(MAX_COLUMNS, max(len(f) for f in curves.failures.values()))
    rows_per = {t: -(-len(curves.failures[t]) // cols) for t in curves.topologies}
    nrows = sum(rows_per.values()) * len(metrics)
    fig = _new_figure(nrows, cols)
    axes = fig.subplots(nrows, cols, squeeze=False)
    colours = _colours(curves.controllers)
    row = 0
    for topology in curves.topologies:
        for metric, ylabel, scale, zero in metrics:
            for k in range(rows_per[topology] * cols):
                ax = axes[row + k // cols][k % cols]
                if k >= len(curves.failures[topology]):
                    ax.set_visible(False)
                    continue
                failure = curves.failures[topology][k]
                f = curves.fail_episode.get((topology, failure), 0)
                span = (f - MA_WINDOW, f + TRANSIENT_EPISODES - 1) if transient else None
                _draw_panel(ax, curves, topology, failure, metric, colours, scale, smooth=smooth, window=span,
                            cumulative=cumulative)
                ax.set_ylabel(ylabel)
                if cumulative:
                    ax.set_xscale("log")
                    ax.set_yscale("symlog", linthresh=1.0)
                    ax.set_ylim(bottom=0)
                elif metric == "loss_fraction":
                    ax.set_yscale("symlog", linthresh=0.1)
                    ax.set_ylim(bottom=0)
                elif zero:
                    ax.set_ylim(bottom=0)
            row += rows_per[topology]
    _legend(fig, curves, colours, title, subtitle, events=not cumulative)
    return fig


def describe(curves: _Curves, sidecar: dict[str, Any] | None = None) -> str:
    cfg = (sidecar or {}).get("config") or {}
    parts = []
    if cfg:
        load = cfg.get("load")
        parts.append(f"λ = {f'{load:.4g}' if isinstance(load, float) else load}, {cfg.get('episodes')} episodes × {cfg.get('horizon_ticks')} ticks, "
                     f"link down from episode {cfg.get('fail_episode')} (tick {cfg.get('fail_tick')} of it)")
    parts.append(f"mean over {len(curves.seeds)} seed{'s' if len(curves.seeds) != 1 else ''} ({', '.join(map(str, curves.seeds))})")
    return "; ".join(parts)


def plot_loss(curves: _Curves, subtitle: str) -> Figure:
    return _plot(curves, [("loss_fraction", "lost (% of packets created; log above 0.1%)", 100.0, True)],
                 "Packet loss vs episode around a link failure (cf. Fig. 5)", subtitle)


def plot_loss_transient(curves: _Curves, subtitle: str) -> Figure:
    return _plot(curves, [("loss_fraction", "lost (% of packets created; log above 0.1%)", 100.0, True)],
                 f"Packet loss in the first {TRANSIENT_EPISODES} episodes from a link failure on, every episode (cf. Fig. 5)",
                 subtitle, transient=True)


def plot_lost_cumulative(curves: _Curves, subtitle: str) -> Figure:
    return _plot(curves, [("lost", "packets lost since the failure (log above 1)", 1.0, True)],
                 "Packets lost since a link failure, in total (what each controller's recovery costs)",
                 subtitle + "\nrunning total of each seed's lost packets from the failure episode on; on these axes a "
                 "constant loss rate rises with slope 1, and a transient is a steeper rise that bends over",
                 cumulative=True)


def plot_delivery(curves: _Curves, subtitle: str) -> Figure:
    return _plot(
        curves,
        [("mean_delivery_time", "delivery time, paper's metric (ticks)", 1.0, True),
         ("mean_sojourn_time", "sojourn time, every packet (ticks)", 1.0, True)],
        "Delivery time vs episode around a link failure (cf. Fig. 6)",
        subtitle + "\ntop: mean delivery time of delivered packets only (the paper's metric); bottom: sojourn time "
        "of every packet created (one still in the network or lost counts with its age at the horizon)",
    )


def reward_formula(loss_penalty: Any = None) -> str:
    """The common reward as text, with the run's extra loss penalty (`common_reward`)."""
    if loss_penalty is None:
        return "−[sojourn time + loss · loss_penalty_ticks]"
    if isinstance(loss_penalty, (int, float)) and loss_penalty == 0:
        return "−(sojourn time of every packet created)"
    penalty = f"{loss_penalty:g}" if isinstance(loss_penalty, (int, float)) else str(loss_penalty)
    return f"−[sojourn time + loss · {penalty}]"


def plot_reward(curves: _Curves, subtitle: str, loss_penalty: float | None = None) -> Figure:
    return _plot(curves, [("reward", "reward (−ticks per packet created)", 1.0, False)],
                 "Common reward vs episode around a link failure (cf. Fig. 7)",
                 subtitle + f"\nreward = {reward_formula(loss_penalty)}, the same for every controller")


_FAILURE_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_FAILURE_COLOURS = ["#2ca02c", "#1f77b4", "#17becf", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
"""Failures are told apart by marker and colour (cycled with different periods, so pairs repeat late)."""


def plot_recovery(table: Sequence[TableRow], subtitle: str) -> Figure:
    """Table 2 at a glance, one row of two panels per topology: for every controller (a line) and
    failure (a marker), the episodes until loss < 1% and the packets lost until then, both on
    symmetric-log axes so that 0 (re-converging routing) and 10^5 (never) fit one axis. Means over
    the seeds; a hollow marker: only some seeds got below 1%; at the "never" column: none did."""
    topologies = list(dict.fromkeys(t.topology for t in table))
    fig = new_figure(13.0, 0.4 * sum(len({t.controller for t in table if t.topology == topo}) for topo in topologies)
                     + 2.4 * len(topologies) + 1.5)
    axes = fig.subplots(len(topologies), 2, squeeze=False, sharey="row")
    handles: dict[str, Line2D] = {}
    for (left, right), topology in zip(axes, topologies):
        rows = [t for t in table if t.topology == topology]
        controllers = _summary_order([t.controller for t in rows])
        failures = list(dict.fromkeys(t.failure for t in rows))
        budget = max(t.budget for t in rows)
        never = 10 ** math.ceil(math.log10(max(budget, 10)) + 0.5)  # a column right of every count
        y_of = {c: len(controllers) - 1 - i for i, c in enumerate(controllers)}
        offsets = np.linspace(-0.25, 0.25, len(failures)) if len(failures) > 1 else np.zeros(1)
        for k, failure in enumerate(failures):
            held = any(t.held_out for t in rows if t.failure == failure)
            style = {"marker": _FAILURE_MARKERS[k % len(_FAILURE_MARKERS)], "linestyle": "", "markersize": 7,
                     "color": _FAILURE_COLOURS[k % len(_FAILURE_COLOURS)]}
            label = f"{failure} fails" + (" (held out of meta-training)" if held else "")
            handles.setdefault(label, Line2D([], [], label=label, **style))
            for t in (t for t in rows if t.failure == failure):
                y = y_of[t.controller] + offsets[k]
                x = t.episodes_to_low_loss.mean if t.low_loss_seeds else never
                hollow = 0 < t.low_loss_seeds < len(t.seeds)
                left.plot([x], [y], **style, markerfacecolor="none" if hollow else style["color"])
                right.plot([t.lost_until_low_loss.mean], [y], **style)
        paper = PAPER_TABLE2.get(topology.lower(), {}).get("mamrl-init")
        if paper is not None:
            left.axvline(paper, color="#d62728", linestyle=":", linewidth=1.2)
            left.annotate(f" paper's MAMRL: {paper:g}", (paper, -0.55), fontsize=8, color="#d62728", ha="left",
                          va="bottom")
        left.axvline(never / 3, color="grey", linewidth=0.8)
        left.set_xscale("symlog", linthresh=1.0)
        left.set_xlim(-0.3, never * 2)
        ticks = [t for t in (0, 1, 10, 100, 1000, 10000) if t < never / 3] + [never]
        left.set_xticks(ticks, [f"{t:g}" for t in ticks[:-1]] + ["never"])
        left.set_xlabel(f"episodes after the failure until loss < {LOSS_TARGET:.0%}")
        right.set_xscale("symlog", linthresh=1.0)
        most = max((t.lost_until_low_loss.mean for t in rows if math.isfinite(t.lost_until_low_loss.mean)), default=1.0)
        right.set_xlim(-0.3, max(most, 1.0) * 3)
        right.set_xlabel(f"packets lost from the failure until loss < {LOSS_TARGET:.0%} (all lost, if never)")
        left.set_yticks(range(len(controllers)), [controller_label(c) for c in reversed(controllers)])
        left.set_ylim(-0.6, len(controllers) - 0.4)
        for ax in (left, right):
            ax.grid(True, axis="x", alpha=0.3)
            for y in range(len(controllers) - 1):
                ax.axhline(y + 0.5, color="#dddddd", linewidth=0.6)
        left.set_title(f"{topology}: how soon", fontsize=10.5, fontweight="bold")
        right.set_title(f"{topology}: at what cost in packets", fontsize=10.5, fontweight="bold")
    handles["hollow"] = Line2D([], [], marker="o", linestyle="", color="#555555", markerfacecolor="none",
                               label="hollow: only some seeds got there")
    set_suptitle(fig, "Recovery from a link failure, per controller (Table 2 at a glance)\n" + subtitle, fontsize=10.5)
    fig.legend(handles=list(handles.values()), loc="outside lower center", ncol=3, frameon=False, fontsize=9)
    return fig


# ------------------------------------------------------------------------------ tables
def _mean_pm(est: Estimate, digits: int) -> str:
    """`mean ± CI` (the mean to `digits` significant digits; no CI from fewer than two seeds)."""
    if est.n < 2 or not math.isfinite(est.ci95):
        return f"{est.mean:.{digits}g}"
    ci = f"{est.ci95:.2g}" if abs(est.ci95) >= 1000 else f"{est.ci95:.1f}"  # ticks: 3.8e+05 ± 2.4e+05
    return f"{est.mean:.{digits}g} ± {ci}"


def _fmt_count(est: Estimate, reached: int, seeds: int, budget: object) -> str:
    """Episodes over the seeds that reached the criterion; `> budget` for those that did not."""
    if reached == 0:
        return f"> {budget}"
    text = _mean_pm(est, 4)
    if reached < seeds:
        text += f" ({reached} of {seeds} seeds; others > {budget})"
    return text


EPISODES_PER_META_ITERATION = 30
"""The paper authors' meta-iteration: 15 episodes before and 15 after the inner step, the unit
the paper's Table 2 may count in."""


def _meta_iterations(est: Estimate, reached: int, budget: int) -> str:
    if reached == 0:
        return f"> {budget / EPISODES_PER_META_ITERATION:.3g}"
    return f"{est.mean / EPISODES_PER_META_ITERATION:.2g}"


def format_steps(t: TableRow, *, brief: bool = False) -> str:
    """Adaptation steps until loss < 1%, over the seeds that got there (STEPS_TEXT); `brief`: the
    mean alone (the console's summary)."""
    seeds = len(t.seeds)
    if t.low_loss_seeds == 0:
        return "never"
    est = t.steps_until_low_loss
    if not math.isfinite(est.mean):
        return "—"
    if brief:
        return f"{est.mean:.3g}"
    return _mean_pm(est, 3) + (f" ({t.low_loss_seeds} of {seeds} seeds)" if t.low_loss_seeds < seeds else "")


def table_schedule(sidecar: dict[str, Any] | None) -> dict[str, int]:
    """`table2`'s schedule arguments from a failure experiment's config.json (none if absent)."""
    cfg = (sidecar or {}).get("config") or {}
    if not isinstance(cfg.get("episodes_per_step"), int):
        return {}
    return {"episodes_per_step": cfg["episodes_per_step"], "fail_tick": int(cfg.get("fail_tick") or 0)}


def _per_seed(values: Sequence[int | None]) -> str:
    return "; ".join(">" if v is None else str(v) for v in values)


def _summary_cell(t: TableRow | None) -> str:
    """`episodes (steps)` until loss < 1%, as a mean over the seeds that got there."""
    if t is None:
        return "·"
    if t.low_loss_seeds == 0:
        return ">"
    text = f"{t.episodes_to_low_loss.mean:.0f}"
    if math.isfinite(t.steps_until_low_loss.mean):
        text += f" ({t.steps_until_low_loss.mean:.0f})"
    if t.low_loss_seeds < len(t.seeds):
        text += f" [{t.low_loss_seeds} of {len(t.seeds)}]"
    return text


def _span(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    """`lo–hi` of the finite values, in `fmt`; one value when both ends print alike."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "—"
    lo, hi = fmt(min(finite)), fmt(max(finite))
    return lo if lo == hi else f"{lo}–{hi}"


def table2_summary_markdown(table: Sequence[TableRow]) -> list[str]:
    """One line per controller and topology, the failures side by side: the compact Table 2 that
    RESULTS.md quotes (means over seeds; the full table gives CIs and per-seed counts)."""
    out = [
        f"**Summary by controller.** Episodes until loss < {LOSS_TARGET:.0%} after each failure, with the adaptation "
        "steps taken by then in parentheses (means over the seeds that got there; `[k of n]`: only k seeds did; `>`: "
        "no seed did within the budget; `·`: not run). The other columns give the range over failures of the mean over "
        "seeds. (held out) marks a link held out of meta-training.",
        "",
    ]
    for topology in dict.fromkeys(t.topology for t in table):
        rows = [t for t in table if t.topology == topology]
        failures = list(dict.fromkeys(t.failure for t in rows))
        held = {t.failure for t in rows if t.held_out}
        cell = {(t.failure, t.controller): t for t in rows}
        names = " / ".join(f + (" (held out)" if f in held else "") for f in failures)
        out += [f"| topology | controller | episodes (steps) until loss < {LOSS_TARGET:.0%}: {names} "
                f"| packets lost until loss < {LOSS_TARGET:.0%} | plateau loss | plateau sojourn time (ticks) |",
                "|---|---|---|---|---|---|"]
        for controller in _summary_order([t.controller for t in rows]):
            mine = [t for t in rows if t.controller == controller]
            out.append(
                f"| {topology} | {controller_label(controller)} "
                f"| {' / '.join(_summary_cell(cell.get((f, controller))) for f in failures)} "
                f"| {_span([t.lost_until_low_loss.mean for t in mine], lambda v: f'{v:,.0f}')} "
                f"| {_span([100 * t.plateau_loss_fraction.mean for t in mine], lambda v: f'{v:.2g}%')} "
                f"| {_span([t.plateau_sojourn_time.mean for t in mine], lambda v: f'{v:.1f}')} |")
        out.append("")
    return out


def table2_markdown(table: Sequence[TableRow], *, sidecar: dict[str, Any] | None = None, source: str = "curves.csv",
                    figures: Sequence[str] = ()) -> str:
    """Table 2 in markdown: our counts with the plateau they reach, and the paper's numbers."""
    cfg = (sidecar or {}).get("config") or {}
    created = (sidecar or {}).get("created") or {}
    out = ["# Link failures (E2): episodes to adapt (Table 2)", ""]
    if cfg:
        out.append(
            f"From `{source}` (config hash {(sidecar or {}).get('config_hash', '?')}, mamrl {created.get('mamrl_version', '?')}"
            + (f", git {created['git']['commit'][:10]}" if created.get("git") else "") + "): "
            f"topology {cfg.get('topology')}, λ = {cfg.get('load')}, {cfg.get('episodes')} episodes × {cfg.get('horizon_ticks')} "
            f"ticks, the link down from episode {cfg.get('fail_episode')} (from tick {cfg.get('fail_tick')} in that episode, "
            f"tick 0 after it), {cfg.get('episodes_per_step')} episodes per step, seeds {', '.join(map(str, cfg.get('seeds', [])))}; "
            "every controller sees the same traffic in the same episode (common random numbers)."
        )
        out.append("")
        capacity = cfg.get("capacity_after_failure") or {}
        if capacity:
            load = cfg.get("load")
            out += ["**Load against the capacity limit.** λ* (the largest load any routing carries; `mamrl capacity`) "
                    "after each failure: " + ", ".join(
                        f"{link} {bound:.4g}" + (f" (λ = {load / bound:.0%} of it)" if isinstance(load, (int, float)) and bound > 0 else "")
                        for link, bound in capacity.items())
                    + f". The load {load} was chosen as `{cfg.get('load_spec', load)}` (`auto`: the paper's λ where every tested "
                    "failure leaves it below λ*, else 0.8 of the smallest post-failure λ*; `Fx`: F times that λ*)."
                    + (" **Some failures leave λ* at or below the load: those runs measure an overloaded network.**"
                       if cfg.get("allow_infeasible") else ""), ""]
        if cfg.get("meta_excluded_infeasible"):
            out += ["Meta-training left out of η(M) the links whose failure leaves λ* at or below the load: "
                    + ", ".join(cfg["meta_excluded_infeasible"]) + ".", ""]
    if figures:
        out += ["Figures: " + ", ".join(f"[{f}]({f})" for f in figures) + ".", ""]
    out += table2_summary_markdown(table)
    penalty = cfg.get("loss_penalty_ticks")
    extra = (f", and a lost one {penalty:g} ticks more" if isinstance(penalty, (int, float)) and penalty
             else "" if isinstance(penalty, (int, float)) else ", and a lost one loss_penalty_ticks more")
    out += [
        f"**Reward**, the same for every controller: reward = {reward_formula(penalty)}, minus the cost per packet "
        "created in ticks: every packet costs its sojourn time (its delivery time if delivered, else its age at the "
        f"horizon, whether still in the network or lost){extra}.",
        "",
        RULE_TEXT,
        "",
        STEPS_TEXT,
        "",
        RECOVERY_TEXT,
        "",
        "Values are means over seeds ± 95% CI (Student t, when there are two seeds or more). *Plateau* columns are "
        "means over the plateau window (the last P episodes).",
        "",
        "| topology | failed link | controller | episodes to adapt | in meta-iterations of 15 + 15 episodes | episodes until loss < "
        f"{LOSS_TARGET:.0%} | adaptation steps until loss < {LOSS_TARGET:.0%} | recovery (ticks) | lost in transient | lost until loss < {LOSS_TARGET:.0%} | plateau reward | plateau loss | plateau sojourn time (ticks) "
        "| plateau delivery time, paper's metric (ticks) | reward before the failure | band/noise | paper: episodes to adapt |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in table:
        seeds = len(t.seeds)
        paper = f"{t.paper:g}" if t.paper is not None else "—"
        held = " (held out)" if t.held_out else ""
        out.append(
            f"| {t.topology} | {t.failure}{held} | {controller_label(t.controller)} "
            f"| {_fmt_count(t.episodes_to_adapt, t.adapted_seeds, seeds, t.budget)} "
            f"| {_meta_iterations(t.episodes_to_adapt, t.adapted_seeds, t.budget)} "
            f"| {_fmt_count(t.episodes_to_low_loss, t.low_loss_seeds, seeds, t.budget)} | {format_steps(t)} "
            f"| {_fmt_count(t.recovery_ticks, t.recovered_seeds, seeds, 'run')} | {format_estimate(t.transient_lost)} "
            f"| {format_estimate(t.lost_until_low_loss)} | {format_estimate(t.plateau_reward)} | {format_percent(t.plateau_loss_fraction, 2)} | {format_estimate(t.plateau_sojourn_time)} "
            f"| {format_estimate(t.plateau_delivery_time)} | {format_estimate(t.pre_failure_reward)} | {format_estimate(t.band_to_noise, 2)} | {paper} |"
        )
    out += [
        "",
        "Per seed (episodes to adapt / until low loss; `>` = not within the budget):",
        "",
        "| topology | failed link | controller | seeds | to adapt | until loss < " f"{LOSS_TARGET:.0%} |",
        "|---|---|---|---|---|---|",
    ]
    for t in table:
        out.append(
            f"| {t.topology} | {t.failure} | {controller_label(t.controller)} | {', '.join(map(str, t.seeds))} "
            f"| {_per_seed([a.episodes_to_adapt for a in t.per_seed])} "
            f"| {_per_seed([a.episodes_to_low_loss for a in t.per_seed])} |"
        )
    out += [
        "",
        "## The paper's Table 2",
        "",
        "Average number of episodes to adapt to a link failure (paper §4.3, Table 2; its text says about 30 / 35 / 800 "
        "for B4). The paper does not state its rule, its seeds or its spread; MAMRL there is our `mamrl-init`, "
        "random our `random-init`.",
        "",
        "| topology | Q-routing | MAMRL | random |",
        "|---|---|---|---|",
    ]
    for topo, values in PAPER_TABLE2.items():
        out.append(f"| {topo} | {values['q-routing']:g} | {values['mamrl-init']:g} | {values['random-init']:g} |")
    return "\n".join(out).rstrip() + "\n"


TABLE_COLUMNS: tuple[str, ...] = (
    "topology", "failure", "held_out", "controller", "seeds", "budget",
    "episodes_to_adapt_mean", "episodes_to_adapt_ci95", "adapted_seeds", "episodes_to_adapt_per_seed",
    "episodes_to_low_loss_mean", "episodes_to_low_loss_ci95", "low_loss_seeds", "episodes_to_low_loss_per_seed",
    "steps_until_low_loss_mean", "steps_until_low_loss_ci95",
    "plateau_reward_mean", "plateau_reward_ci95",
    "plateau_loss_fraction_mean", "plateau_loss_fraction_ci95",
    "plateau_sojourn_time_mean", "plateau_sojourn_time_ci95",
    "plateau_delivery_time_mean", "plateau_delivery_time_ci95",
    "pre_failure_reward_mean", "pre_failure_reward_ci95",
    "recovery_ticks_mean", "recovery_ticks_ci95", "recovered_seeds", "transient_lost_mean", "transient_lost_ci95",
    "lost_until_low_loss_mean", "lost_until_low_loss_ci95",
    "band_to_noise_mean", "band_to_noise_ci95",
    "paper_episodes_to_adapt",
)
"""Header of table2.csv; per-seed counts are `;`-separated, empty = not within the budget."""


TABLE2_COLUMNS = ("link", "controller", "to adapt", "loss < 1% after", "steps", "lost until then", "plateau loss",
                  "sojourn (ticks)")
"""The console summary of Table 2 (means over seeds; recovery in ticks, CIs and the rest: table2.md)."""


def table2_console_rows(rows: Sequence[Row], *, episodes_per_step: int | None = None, fail_tick: int = 0) -> list[tuple[str, ...]]:
    """Table 2 of a failure experiment's curve rows, as console table rows (`TABLE2_COLUMNS`)."""
    out = []
    for t in table2(rows, episodes_per_step=episodes_per_step, fail_tick=fail_tick):
        def count(est: Estimate, reached: int, budget: object = t.budget) -> str:
            if reached == 0:
                return f"> {budget}"
            return f"{est.mean:.4g}" + ("" if reached == len(t.seeds) else f" ({reached}/{len(t.seeds)})")

        steps = format_steps(t, brief=True)
        out.append((t.failure + (" (held out)" if t.held_out else ""), controller_label(t.controller),
                    count(t.episodes_to_adapt, t.adapted_seeds), count(t.episodes_to_low_loss, t.low_loss_seeds), steps,
                    f"{t.lost_until_low_loss.mean:,.0f}", f"{100 * t.plateau_loss_fraction.mean:.2f}%",
                    f"{t.plateau_sojourn_time.mean:.1f}"))
    return out


def table2_csv(table: Sequence[TableRow]) -> str:
    def num(x: float | None) -> str:
        return "" if x is None or not math.isfinite(float(x)) else repr(float(x))

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for t in table:
        per_adapt = ";".join("" if a.episodes_to_adapt is None else str(a.episodes_to_adapt) for a in t.per_seed)
        per_low = ";".join("" if a.episodes_to_low_loss is None else str(a.episodes_to_low_loss) for a in t.per_seed)
        writer.writerow([
            t.topology, t.failure, int(t.held_out), t.controller, ";".join(map(str, t.seeds)), t.budget,
            num(t.episodes_to_adapt.mean), num(t.episodes_to_adapt.ci95), t.adapted_seeds, per_adapt,
            num(t.episodes_to_low_loss.mean), num(t.episodes_to_low_loss.ci95), t.low_loss_seeds, per_low,
            num(t.steps_until_low_loss.mean), num(t.steps_until_low_loss.ci95),
            num(t.plateau_reward.mean), num(t.plateau_reward.ci95),
            num(t.plateau_loss_fraction.mean), num(t.plateau_loss_fraction.ci95),
            num(t.plateau_sojourn_time.mean), num(t.plateau_sojourn_time.ci95),
            num(t.plateau_delivery_time.mean), num(t.plateau_delivery_time.ci95),
            num(t.pre_failure_reward.mean), num(t.pre_failure_reward.ci95),
            num(t.recovery_ticks.mean), num(t.recovery_ticks.ci95), t.recovered_seeds,
            num(t.transient_lost.mean), num(t.transient_lost.ci95),
            num(t.lost_until_low_loss.mean), num(t.lost_until_low_loss.ci95),
            num(t.band_to_noise.mean), num(t.band_to_noise.ci95),
            "" if t.paper is None else num(t.paper),
        ])
    return out.getvalue()


# ------------------------------------------------------------------------------ everything at once
def write_failure_report(output_dir: str | os.PathLike[str], *, formats: Sequence[str] = ("png", "pdf"),
                         rows: Sequence[Row] | None = None, sidecar: dict[str, Any] | None = None) -> list[Path]:
    """Read `output_dir/curves.csv` (or take `rows`) and its `config.json` (or take `sidecar`); write
    the figures (`FIGURES`, each format), `table2.md` and `table2.csv` into `output_dir`. Returns the
    files written."""
    output_dir = Path(output_dir)
    for fmt in formats:
        if fmt not in ("png", "pdf", "svg"):
            raise MamrlError(f"unknown figure format {fmt!r} (choose from png, pdf, svg)")
    if rows is None:
        rows = read_curves(output_dir / "curves.csv")
    if not rows:
        raise MamrlError(f"{output_dir / 'curves.csv'} has no finished runs yet")
    if sidecar is None and (output_dir / "config.json").is_file():
        try:
            sidecar = json.loads((output_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            sidecar = None
    curves = _Curves(rows)
    subtitle = describe(curves, sidecar)
    penalty = ((sidecar or {}).get("config") or {}).get("loss_penalty_ticks")
    table = table2(rows, **table_schedule(sidecar))
    figures = {
        "recovery": plot_recovery(table, subtitle),
        "loss": plot_loss(curves, subtitle),
        "loss_transient": plot_loss_transient(curves, subtitle),
        "lost_cumulative": plot_lost_cumulative(curves, subtitle),
        "delivery_time": plot_delivery(curves, subtitle),
        "reward": plot_reward(curves, subtitle, penalty),
    }
    written: list[Path] = []
    names = []
    for stem, fig in figures.items():
        for fmt in formats:
            written.append(save_figure(fig, output_dir / f"{stem}.{fmt}"))
        names.append(f"{stem}.{formats[0]}")
    written.append(runs.write_text(output_dir / TABLE_MD, table2_markdown(table, sidecar=sidecar, figures=names)))
    written.append(runs.write_text(output_dir / TABLE_CSV, table2_csv(table)))
    return written


def redraw_failure_report(output_dir: str | os.PathLike[str], *, formats: Sequence[str] = ("png", "pdf")
                          ) -> tuple[list[Path], list[Row], dict[str, int], int]:
    """Draw table2 and the figures again from a failure experiment's folder, finished or not, with
    no run (`mamrl failures --redraw`): its complete runs only, checked against its config.json.
    Returns (files written, the rows drawn, `table2`'s schedule, partial runs left out)."""
    output_dir = Path(output_dir)
    sidecar_file = output_dir / "config.json"
    if not sidecar_file.is_file():
        raise MamrlError(f"{output_dir} holds no config.json: not a failure experiment's output folder")
    sidecar = runs.read_json(sidecar_file, "failure experiment config", "point --output at a `mamrl failures` output folder")
    cfg = sidecar.get("config") if isinstance(sidecar, dict) else None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("episodes"), int):
        raise MamrlError(f"{sidecar_file} is not a failure experiment's config.json (no config.episodes)")
    if not (output_dir / "curves.csv").is_file():
        raise MamrlError(f"{output_dir} holds no curves.csv: no run has finished there")
    rows = read_curves(output_dir / "curves.csv")
    foreign = sorted({str(r["config_hash"]) for r in rows} - {str(sidecar.get("config_hash"))})
    if foreign:
        raise MamrlError(f"{output_dir / 'curves.csv'} has rows of config {foreign[0]}, not its config.json's "
                         f"{sidecar.get('config_hash')}")
    complete = complete_runs(rows, cfg["episodes"])
    partial = len({run_key(r) for r in rows}) - len(complete)
    kept = [row for run_rows in complete.values() for row in run_rows]
    written = write_failure_report(output_dir, formats=formats, rows=kept, sidecar=sidecar)
    return written, kept, table_schedule(sidecar), partial


__all__ = [
    "TABLE2_COLUMNS",
    "table2_console_rows",
    "FIGURES",
    "TABLE_COLUMNS",
    "TABLE_CSV",
    "TABLE_MD",
    "controller_label",
    "plot_delivery",
    "plot_loss",
    "plot_loss_transient",
    "plot_lost_cumulative",
    "plot_reward",
    "redraw_failure_report",
    "table2_csv",
    "table2_markdown",
    "table2_summary_markdown",
    "table_schedule",
    "format_steps",
    "write_failure_report",
]
