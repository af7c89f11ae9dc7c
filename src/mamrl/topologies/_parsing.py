"""Shared pieces of the topology readers: one-line errors naming the file, text and JSON reading,
and checked numbers (capacity, latency, failure probability).

Every reader of `mamrl.topologies` builds on these, so that no `KeyError`, `JSONDecodeError` or
`OverflowError` escapes a malformed file: each problem is a `TopologyError` of one line.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

from mamrl.errors import TopologyError
from mamrl.topologies.core import INT64_MAX, Topology

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


def _loads(text: str, path: object) -> Any:
    """`json.loads`, except that a key given twice in one object (json keeps the last) and the
    non-JSON constants NaN and Infinity are errors; a `JSONDecodeError` is the caller's to report."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                _fail(path, f"invalid JSON: key {key!r} appears twice in one object")
            obj[key] = value
        return obj

    def constant(name: str) -> NoReturn:
        _fail(path, f"invalid JSON: {name} is not a JSON number")

    try:
        return json.loads(text, object_pairs_hook=unique, parse_constant=constant)
    except RecursionError:
        _fail(path, "invalid JSON: arrays or objects nested too deeply to read (no topology nests more than a few levels)")


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return _loads(text, path)
    except json.JSONDecodeError as exc:
        _fail(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")


def _build(where: object, **kwargs: Any) -> Topology:
    """Construct a Topology, prefixing validation errors with the file they came from."""
    try:
        return Topology(**kwargs)
    except TopologyError as exc:
        _fail(where, str(exc))


def _shown(value: Any) -> str:
    """A value for an error message: strings quoted as Python does, others as JSON, at most 40 characters."""
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: Any, where: str, path: object, *, text: bool = False) -> float:
    """A finite number: a JSON number, or with `text` also a string holding one (a token of a text
    file, a GraphML attribute). Bools are rejected: JSON `true` is not a capacity."""
    if isinstance(value, str):
        if not text:
            _fail(path, f"{where}: {_shown(value)} is not a number (JSON numbers have no quotes)")
        try:
            number = float(value)
        except ValueError:
            _fail(path, f"{where}: {value!r} is not a number")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            _fail(path, f"{where}: {_shown(value)} is too large")
    else:
        _fail(path, f"{where}: expected a number, got {_shown(value)}")
    if not math.isfinite(number):
        _fail(path, f"{where}: {value!r} is not a finite number")
    return number


def _whole(value: Any, where: str, path: object, rule: str, *, text: bool = False) -> int:
    """A whole number (5, 5.0, or "5" with `text`) of at most 2**63 - 1 in size; integers stay exact.
    `rule` says what is expected, for the message when `value` has a fraction."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif text and isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        number = int(value)  # not via float, which would round integers beyond 2**53
    else:
        real = _number(value, where, path, text=text)
        if not real.is_integer():
            _fail(path, f"{where}: {rule}, got {_shown(value)}")
        number = int(real)
    if abs(number) > INT64_MAX:
        _fail(path, f"{where}: {_shown(value)} is too large (at most 2**63 - 1)")
    return number


def _capacity(value: Any, where: str, path: object, *, text: bool = False) -> int:
    """A capacity: a whole number >= 0 of units (packet sizes are whole units too)."""
    capacity = _whole(value, where, path, "capacity must be a whole number", text=text)
    if capacity < 0:
        _fail(path, f"{where}: capacity must be >= 0, got {_shown(value)}")
    return capacity


def _latency(value: Any, where: str, path: object, *, text: bool = False) -> int:
    ticks = _whole(value, where, path, "latency must be an integer >= 1 tick", text=text)
    if ticks < 1:
        _fail(path, f"{where}: latency must be an integer >= 1 tick, got {_shown(value)}")
    return ticks


def _probability(value: Any, where: str, path: object, *, text: bool = False) -> float:
    number = _number(value, where, path, text=text)
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
