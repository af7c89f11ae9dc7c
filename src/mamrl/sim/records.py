"""Run records of simulator evaluations (`mamrl simulate --run-dir`): the metrics documents.

A run directory holds three files:

* `config.json`  — the resolved configuration, the seed, the mamrl version, the git commit of the
  source tree when it is a git checkout (else null), the wall time and the date;
* `metrics.json` — the summary (mean, 95% CI half-width and count of every scalar metric) and the
  per-episode values (scalars, plus `link_utilisation` [B, E], `lost_per_router` [B, N] and
  `lost_per_link` [B, E]);
* `episodes.csv` — one row per episode with the scalar metrics.

An existing non-empty run directory is never overwritten (`mamrl.runs.new_run_dir`). Files are
written atomically and JSON is strict: an undefined metric (NaN) is written as `null`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from mamrl.errors import MamrlError
from mamrl.runs import new_run_dir, provenance, write_json, write_text
from mamrl.sim.metrics import METRIC_INFO, Estimate

SCALAR_METRICS: tuple[str, ...] = tuple(METRIC_INFO)
"""Per-episode scalar metrics, in table order (the columns of `episodes.csv`)."""

VECTOR_METRICS: tuple[str, ...] = ("link_utilisation", "lost_per_router", "queue_per_router", "lost_per_link")
"""Per-episode vector metrics kept in `metrics.json` (not in the CSV)."""


def metrics_document(per_episode: dict[str, np.ndarray], summary: dict[str, Estimate]) -> dict[str, Any]:
    """The `metrics.json` content: the summary and the per-episode values."""
    return {
        "summary": {k: summary[k] for k in SCALAR_METRICS if k in summary},
        "per_episode": {k: per_episode[k] for k in (*SCALAR_METRICS, *VECTOR_METRICS) if k in per_episode},
    }


def episodes_csv_text(per_episode: dict[str, np.ndarray], *, first_episode: int = 0) -> str:
    """CSV text: a header `episode,<metrics...>` and one row per episode; NaN is an empty cell."""
    columns = [k for k in SCALAR_METRICS if k in per_episode]
    count = len(per_episode[columns[0]]) if columns else 0
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["episode", *columns])
    for b in range(count):
        row: list[Any] = [first_episode + b]
        for key in columns:
            value = float(per_episode[key][b])
            if not math.isfinite(value):
                row.append("")
            elif value.is_integer() and key in ("generated", "delivered", "lost", "in_network_at_end"):
                row.append(int(value))
            else:
                row.append(repr(value))
        writer.writerow(row)
    return out.getvalue()


def write_episodes_csv(path: str | os.PathLike[str], per_episode: dict[str, np.ndarray], *, first_episode: int = 0) -> Path:
    return write_text(path, episodes_csv_text(per_episode, first_episode=first_episode))


def write_run_dir(
    path: str | os.PathLike[str],
    *,
    config: dict[str, Any],
    per_episode: dict[str, np.ndarray],
    summary: dict[str, Estimate],
    wall_time_s: float,
    first_episode: int = 0,
) -> Path:
    """Write `config.json`, `metrics.json` and `episodes.csv` into a fresh run directory.

    Returns the directory actually used (see `new_run_dir`).
    """
    run_dir = new_run_dir(path)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MamrlError(f"cannot create run directory {str(run_dir)!r}: {exc.strerror or exc}") from None
    write_json(run_dir / "config.json", {**config, **provenance(), "wall_time_s": round(wall_time_s, 3)})
    write_json(run_dir / "metrics.json", metrics_document(per_episode, summary))
    write_episodes_csv(run_dir / "episodes.csv", per_episode, first_episode=first_episode)
    return run_dir


__all__ = [
    "SCALAR_METRICS",
    "VECTOR_METRICS",
    "episodes_csv_text",
    "metrics_document",
    "write_episodes_csv",
    "write_run_dir",
]
