"""Run records: what a run was (config, seed, version, commit, wall time) and what it measured.

A run directory holds three files:

* `config.json`  — the resolved configuration, the seed, the mamrl version, the git commit of the
  source tree when it is a git checkout (else null), the wall time and the date;
* `metrics.json` — the summary (mean, 95% CI half-width and count of every scalar metric) and the
  per-episode values (scalars, plus `link_utilisation` [B, E] and `lost_per_router` [B, N]);
* `episodes.csv` — one row per episode with the scalar metrics.

An existing non-empty run directory is never overwritten: `new_run_dir` picks `DIR-2`, `DIR-3`...
instead. JSON files are strict JSON: an undefined metric (NaN) is written as `null`.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

import mamrl
from mamrl.errors import MamrlError
from mamrl.sim.metrics import METRIC_INFO, Estimate

SCALAR_METRICS: tuple[str, ...] = tuple(METRIC_INFO)
"""Per-episode scalar metrics, in table order (the columns of `episodes.csv`)."""

VECTOR_METRICS: tuple[str, ...] = ("link_utilisation", "lost_per_router")
"""Per-episode vector metrics kept in `metrics.json` (not in the CSV)."""


# ------------------------------------------------------------------------------ provenance
def git_commit() -> dict[str, Any] | None:
    """`{"commit": sha, "dirty": bool}` of the checkout mamrl runs from, or None if it is not one.
    `dirty` means tracked files differ from HEAD (untracked files are ignored).

    Read-only: `rev-parse` and `diff-index` with optional locks disabled, so it never touches the
    index of a repository someone else is working in.
    """
    package_dir = Path(mamrl.__file__).resolve().parent
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=package_dir, env=env, capture_output=True, text=True, timeout=10, check=False
        )

    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0:
            return None
        # Only trust the repository if it is mamrl's own (src layout), not some enclosing one.
        if (Path(top.stdout.strip()) / "src" / "mamrl").resolve() != package_dir:
            return None
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("diff-index", "--quiet", "HEAD", "--").returncode != 0
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict[str, Any]:
    """Version, commit and date of a run (the date in UTC, ISO 8601)."""
    return {
        "mamrl_version": mamrl.__version__,
        "git": git_commit(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }


# ------------------------------------------------------------------------------ JSON helpers
def jsonable(value: Any) -> Any:
    """`value` with numpy scalars/arrays turned into Python values and NaN/inf into None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, Estimate):
        return {"mean": jsonable(value.mean), "ci95": jsonable(value.ci95), "n": value.n}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Path):
        return str(value)
    return value


def metrics_document(per_episode: dict[str, np.ndarray], summary: dict[str, Estimate]) -> dict[str, Any]:
    """The `metrics.json` content: the summary and the per-episode values."""
    return {
        "summary": {k: summary[k] for k in SCALAR_METRICS if k in summary},
        "per_episode": {k: per_episode[k] for k in (*SCALAR_METRICS, *VECTOR_METRICS) if k in per_episode},
    }


def dumps(doc: Any) -> str:
    """Strict JSON text (no NaN) of `doc`, indented, ending with a newline."""
    return json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n"


# ------------------------------------------------------------------------------ writers
def _prepare_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MamrlError(f"cannot create directory {str(path.parent)!r}: {exc.strerror or exc}") from None


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a text file (creating parent directories); OSError becomes a one-line MamrlError."""
    path = Path(path)
    if path.is_dir():
        raise MamrlError(f"cannot write {str(path)!r}: it is a directory")
    _prepare_parent(path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MamrlError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    return path


def write_json(path: str | os.PathLike[str], doc: Any) -> Path:
    return write_text(path, dumps(doc))


def episodes_csv_text(per_episode: dict[str, np.ndarray], *, first_episode: int = 0) -> str:
    """CSV text: a header `episode,<metrics...>` and one row per episode; NaN is an empty cell."""
    import io

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


# ------------------------------------------------------------------------------ run directories
def new_run_dir(path: str | os.PathLike[str]) -> Path:
    """The directory a run asked to go to `path` will be written to.

    `path` itself if it does not exist or is an empty directory; otherwise the first free
    `path-2`, `path-3`, ... (never overwrite an earlier run). A file at `path` is an error.
    """
    base = Path(path)
    if base.exists() and not base.is_dir():
        raise MamrlError(f"run directory {str(base)!r} exists and is not a directory")
    candidate = base
    k = 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


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
    "dumps",
    "episodes_csv_text",
    "git_commit",
    "jsonable",
    "metrics_document",
    "new_run_dir",
    "provenance",
    "write_episodes_csv",
    "write_json",
    "write_run_dir",
    "write_text",
]
