"""Shared pieces of the topology readers: one-line errors naming the file, text and JSON reading,
and checked numbers (capacity, latency, failure probability).

Every reader of `mamrl.topologies` builds on these, so that no `KeyError`, `JSONDecodeError` or
`OverflowError` escapes a malformed file: each problem is a `TopologyError` of one line.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

from mamrl.errors import TopologyError
from mamrl.topologies.core import Topology

PathLike = str | os.PathLike[str]


class TopologyWarning(UserWarning):
    """A topology or demand file lacked something, or held values that are not used, and a
    documented rule was applied; the message says which."""


# ---------------------------------------------------------------------------- small helpers
def _fail(where: object, message: str) -> NoReturn:
    raise TopologyError(f"{where}: {message}")


def _warn(message: str) -> None:
    """Warn, attributing the warning to the first caller outside `mamrl.topologies`."""
    frame, level = sys._getframe(0), 1
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("mamrl.topologies"):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, TopologyWarning, stacklevel=level)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read_text(path: Path, what: str = "file") -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(path, f"no such {what}")
    except IsADirectoryError:
        _fail(path, f"is a directory, expected a {what}")
    except UnicodeDecodeError:
        _fail(path, "is not a UTF-8 text file")
    except OSError as exc:
        _fail(path, f"cannot read ({_one_line(exc.strerror or str(exc))})")


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")


def _build(where: object, **kwargs: Any) -> Topology:
    """Construct a Topology, prefixing validation errors with the file they came from."""
    try:
        return Topology(**kwargs)
    except TopologyError as exc:
        _fail(where, str(exc))


def _number(value: Any, where: str, path: object) -> float:
    """A finite JSON/text number (bools rejected: JSON `true` is not a capacity)."""
    if isinstance(value, bool):
        _fail(path, f"{where}: expected a number, got {json.dumps(value)}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            _fail(path, f"{where}: {value!r} is not a number")
    else:
        _fail(path, f"{where}: expected a number, got {json.dumps(value)[:40]}")
    if not math.isfinite(number):
        _fail(path, f"{where}: {value!r} is not a finite number")
    return number


def _capacity(value: Any, where: str, path: object) -> int:
    """A capacity >= 0, rounded to whole units (packet sizes are whole units too)."""
    number = _number(value, where, path)
    if number < 0:
        _fail(path, f"{where}: capacity must be >= 0, got {value!r}")
    return int(round(number))


def _latency(value: Any, where: str, path: object) -> int:
    number = _number(value, where, path)
    if number != int(number) or number < 1:
        _fail(path, f"{where}: latency must be an integer >= 1 tick, got {value!r}")
    return int(number)


def _probability(value: Any, where: str, path: object) -> float:
    number = _number(value, where, path)
    if not 0.0 <= number <= 1.0:
        _fail(path, f"{where}: failure probability must be in [0, 1], got {value!r}")
    return number


def _check_keys(obj: Any, allowed: set[str], required: set[str], where: str, path: object) -> dict[str, Any]:
    if not isinstance(obj, dict):
        _fail(path, f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = sorted(required - obj.keys())
    if missing:
        _fail(path, f"{where}: missing key(s) {missing}")
    unknown = sorted(obj.keys() - allowed)
    if unknown:
        _fail(path, f"{where}: unknown key(s) {unknown} (allowed: {sorted(allowed)})")
    return obj
