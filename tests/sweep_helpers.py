"""Helpers shared by the sweep and Ray backend tests."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mamrl.experiments.sweep import TIMING_COLUMNS


def without_timings(path: Path) -> list[dict[str, str]]:
    """Every row of a results CSV in file order, every column but the wall times."""
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    for row in rows:
        for column in TIMING_COLUMNS:
            row.pop(column)
    return rows
