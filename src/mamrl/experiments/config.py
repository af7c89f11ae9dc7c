"""The configuration of a load sweep (docs/sweep.md, E1): typed, validated, hashable, with presets.

A sweep config comes from three layers, each overriding the one before:

1. the field defaults below, or a preset (`quick`, `paper`) — `mamrl sweep` with neither a preset
   nor a config file uses `quick`;
2. a config file (JSON or TOML; a `preset = "..."` key in it picks the base preset);
3. command-line flags.

Every bad value gives a one-line `MamrlError` naming the field (and the file or flag it came from).

`SweepConfig.resolved()` is the part of the config that determines the results — everything but
`workers` and `results` — with every algorithm's full hyper-parameters (defaults filled in). Its
hash tags every results row, and a results file's JSON sidecar holds it, so that a re-run with a
different config against the same results file is refused (`config_differences`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from mamrl.algorithms import canonical_name, make_agent
from mamrl.errors import MamrlError
from mamrl.executors import available_cores
from mamrl.experiments.memory_checks import check_sweep_memory
from mamrl.runs import config_hash, jsonable
from mamrl.topologies import builtin_names, load_topology
from mamrl.sim.params import MAX_HORIZON_TICKS
from mamrl.validate import SEED, Items, integer

CONFIG_FORMAT = "mamrl-sweep-config/1"
"""Format tag of the resolved config (in the results sidecar)."""


@dataclass(frozen=True)
class SweepConfig:
    """A load sweep: topologies × algorithms × loads × seeds, each cell trained then evaluated."""

    topologies: tuple[str, ...] = ("b4",)
    """Topologies: built-in names (`b4`, `geant`, `att`) or topology files/directories."""
    algorithms: tuple[str, ...] = ("spa", "q-routing", "pg")
    """Routing algorithms by registry name (`mamrl.algorithms.ALGORITHM_NAMES`: `spa`, `ecmp`, `max-throughput`,
    `min-delay`, `random`, `q-routing`, `pg`, `mamrl`; aliases accepted)."""
    loads: tuple[float | str, ...] = (0.05, 0.1, 0.2, 0.3)
    """Loads λ: new packets per router per tick (> 0), or a share of each topology's capacity limit
    λ* written `"0.9x"` (`mamrl capacity`); absolute loads first, each kind ascending."""
    seeds: tuple[int, ...] = (0, 1)
    """Seeds (integers in [0, 2**32 - 1]). Seed s trains on traffic seed s and evaluates on seed s + 1,000,003."""
    train_episodes: int = 2000
    """Training episodes per cell for algorithms that learn (ignored for spa and random)."""
    eval_episodes: int = 20
    """Evaluation episodes per cell, learning frozen; means and 95% CIs are over these."""
    horizon_ticks: int = 500
    """Episode length H in ticks, for training, and for evaluation unless `eval_horizon_ticks` is set (paper: 500)."""
    eval_horizon_ticks: int | None = None
    """Evaluation episode length in ticks; None = `horizon_ticks`. Longer evaluation episodes see past
    the fill-up transient near the capacity limit (steady-state delays)."""
    algorithm_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per-algorithm hyper-parameters, e.g. `{"pg": {"step_size": 0.1}}`; unnamed fields keep their
    defaults. Naming an algorithm not in `algorithms` is an error (it would change nothing)."""
    workers: int | None = None
    """Worker processes running cells in parallel; None = one per available core; 1 = run in the
    calling process. Never changes the results."""
    results: str = "runs/sweep.csv"
    """Results CSV (rows appended cell by cell); its resolved config goes to `<results>.config.json`."""

    # ------------------------------------------------------------------ derived values
    def resolved(self) -> dict[str, Any]:
        """The result-determining config, JSON-ready, with full algorithm hyper-parameters."""
        resolved = {
            "format": CONFIG_FORMAT,
            "topologies": list(self.topologies),
            "algorithms": list(self.algorithms),
            "loads": list(self.loads),
            "seeds": list(self.seeds),
            "train_episodes": self.train_episodes,
            "eval_episodes": self.eval_episodes,
            "horizon_ticks": self.horizon_ticks,
            "eval_horizon_ticks": self.effective_eval_horizon,
            "algorithm_config": {
                name: make_agent(name, dict(self.algorithm_config.get(name, {}))).config() for name in self.algorithms
            },
        }
        # Through JSON and back: what the sidecar holds compares equal (tuples become lists).

        return json.loads(json.dumps(jsonable(resolved), allow_nan=False))

    def config_hash(self) -> str:
        """12 hex digits identifying `resolved()` (tags every results row)."""
        return config_hash(self.resolved())

    def effective_workers(self) -> int:
        return self.workers if self.workers is not None else available_cores()

    @property
    def effective_eval_horizon(self) -> int:
        """Evaluation episode length in ticks."""
        return self.horizon_ticks if self.eval_horizon_ticks is None else self.eval_horizon_ticks

    def as_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (for printing a config or writing a config file)."""
        out = dataclasses.asdict(self)
        out["algorithm_config"] = {k: dict(v) for k, v in self.algorithm_config.items()}
        for key in ("topologies", "algorithms", "loads", "seeds"):
            out[key] = list(out[key])
        return out


# ------------------------------------------------------------------------------ presets
PRESETS: dict[str, dict[str, Any]] = {
    # b4 only; 4 loads straddling SPA's saturation (≈0.18, 57% of λ* = 0.314); a training budget at
    # which PG has converged on b4 (it plateaus after ~500 episodes); the yardsticks that do not learn
    # (ECMP, the two flow oracles, backpressure) cost seconds. Measured: 13.5 s on 2 cores (64 cells).
    "quick": {
        "topologies": ["b4"],
        "algorithms": ["spa", "ecmp", "max-throughput", "min-delay", "backpressure", "sp-backpressure", "q-routing", "pg"],
        "loads": [0.05, 0.1, 0.2, 0.3],
        "seeds": [0, 1],
        "train_episodes": 2000,
        "eval_episodes": 20,
        "horizon_ticks": 500,
        "results": "runs/sweep-quick.csv",
    },
    # The paper's E1 (docs/sweep.md): its loads, topologies and training budget (10,000 episodes × 500 ticks).
    "paper": {
        "topologies": ["b4", "geant", "att"],
        "algorithms": ["spa", "ecmp", "max-throughput", "min-delay", "backpressure", "sp-backpressure", "q-routing", "pg"],
        "loads": [0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5],
        "seeds": [0, 1, 2],
        "train_episodes": 10_000,
        "eval_episodes": 30,
        "horizon_ticks": 500,
        "results": "runs/sweep-paper.csv",
    },
}
"""Named starting points; any field can be overridden by a config file or a flag."""

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SweepConfig))


# ------------------------------------------------------------------------------ reading files
def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw key/values of a JSON (`.json`) or TOML (`.toml`) sweep config file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise MamrlError(f"config file {str(path)!r}: use a .json or .toml file")
    if not path.is_file():
        raise MamrlError(f"config file {str(path)!r} does not exist")
    try:
        if suffix == ".toml":
            with open(path, "rb") as fh:
                values = tomllib.load(fh)
        else:
            values = json.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MamrlError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise MamrlError(f"config file {str(path)!r} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MamrlError(f"cannot read config file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    except RecursionError:
        raise MamrlError(f"config file {str(path)!r}: arrays or tables nested too deeply to read") from None
    if not isinstance(values, dict):
        raise MamrlError(f"config file {str(path)!r}: expected a table/object of fields at the top level")
    return values


# ------------------------------------------------------------------------------ validation
def _list(value: Any, label: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise MamrlError(f"{label}: must not be empty")
        return list(value)
    raise MamrlError(f"{label}: expected a list, got {value!r}")


def _no_duplicates(values: list[Any], label: str) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise MamrlError(f"{label}: {v!r} is listed twice")
        seen.add(v)


def check_topologies(value: Any, label: str) -> tuple[str, ...]:
    """A non-empty list of distinct built-in names or topology paths that load."""
    out = []
    for k, item in enumerate(_list(value, label)):
        if not isinstance(item, str) or not item.strip():
            raise MamrlError(f"{label}[{k}]: expected a topology name or path, got {item!r}")
        name = item.strip()
        if name.lower() in builtin_names():
            name = name.lower()
        else:
            try:
                load_topology(name)
            except MamrlError as exc:
                raise MamrlError(f"{label}[{k}]: {exc}") from None
        out.append(name)
    _no_duplicates(out, label)
    return tuple(out)


def _check_algorithms(value: Any, label: str) -> tuple[str, ...]:
    out = []
    for k, item in enumerate(_list(value, label)):
        if not isinstance(item, str):
            raise MamrlError(f"{label}[{k}]: expected an algorithm name, got {item!r}")
        try:
            out.append(canonical_name(item))
        except MamrlError as exc:
            raise MamrlError(f"{label}[{k}]: {exc}") from None
    _no_duplicates(out, label)
    return tuple(out)


RELATIVE_LOAD = re.compile(r"^\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*[xX]\s*$")
"""A load relative to the topology's capacity limit λ*: `0.5x` is half of λ*."""


def parse_load_spec(item: Any, label: str) -> float | str:
    """A load: a finite number > 0 (packets per router per tick) or a share of λ* as `"<share>x"`
    (e.g. `"0.9x"`), returned in canonical form (`"0.9x"`)."""
    if isinstance(item, str):
        match = RELATIVE_LOAD.match(item)
        if match is None:
            try:
                item = float(item)
            except ValueError:
                raise MamrlError(
                    f"{label}: expected a load (packets per router per tick) or a share of the capacity limit λ* "
                    f"such as 0.9x, got {item!r}"
                ) from None
        else:
            share = float(match.group(1))
            if not math.isfinite(share) or share <= 0:
                raise MamrlError(f"{label}: a share of λ* must be a finite number > 0, got {item!r}")
            return f"{share:g}x"
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        raise MamrlError(f"{label}: expected a number (packets per router per tick) or a share of λ* such as 0.9x, got {item!r}")
    if not math.isfinite(item) or item <= 0:
        raise MamrlError(f"{label}: a load must be a finite number > 0 packets per router per tick, got {item!r}")
    return float(item)


def load_share(spec: float | str) -> float | None:
    """The share of λ* of a relative load spec (`"0.9x"` -> 0.9); None for an absolute load."""
    return float(spec[:-1]) if isinstance(spec, str) else None


def resolve_load(spec: float | str, max_load: float) -> float:
    """The absolute load of a spec on a topology whose capacity limit is `max_load` (λ*); a
    relative load is rounded to 6 significant digits so that results files key it stably."""
    share = load_share(spec)
    return float(spec) if share is None else float(f"{share * max_load:.6g}")


def _check_loads(value: Any, label: str) -> tuple[float | str, ...]:
    out = [parse_load_spec(item, f"{label}[{k}]") for k, item in enumerate(_list(value, label))]
    _no_duplicates(out, label)
    # Absolute loads ascending, then shares of λ* ascending.
    return tuple(sorted(out, key=lambda v: (isinstance(v, str), load_share(v) if isinstance(v, str) else v)))


_SEEDS = Items(SEED, non_empty=True, distinct=True)


def check_seeds(value: Any, label: str) -> tuple[int, ...]:
    """A non-empty list of distinct seeds (integers in [0, `mamrl.validate.SEED_MAX`])."""
    return _SEEDS(value, label)


def check_int(value: Any, label: str, minimum: int) -> int:
    """An integer >= `minimum` (and at most `mamrl.validate.INT64_MAX`)."""
    return integer(minimum)(value, label)


def _check_positive_int(value: Any, label: str) -> int:
    return check_int(value, label, 1)


def _check_workers(value: Any, label: str) -> int | None:
    if value is None:
        return None
    return _check_positive_int(value, label)


def _check_results(value: Any, label: str) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise MamrlError(f"{label}: expected a file name, got {value!r}")
    return str(value)


def _check_algorithm_config(value: Any, label: str) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise MamrlError(f"{label}: expected a table of algorithm name -> settings, got {value!r}")
    out: dict[str, dict[str, Any]] = {}
    for name, settings in value.items():
        try:
            key = canonical_name(str(name))
        except MamrlError as exc:
            raise MamrlError(f"{label}: {exc}") from None
        if not isinstance(settings, Mapping):
            raise MamrlError(f"{label}.{name}: expected a table of settings, got {settings!r}")
        if key in out:
            raise MamrlError(f"{label}: algorithm {key!r} is configured twice")
        out[key] = dict(settings)
    return out


_CHECKS = {
    "topologies": check_topologies,
    "algorithms": _check_algorithms,
    "loads": _check_loads,
    "seeds": check_seeds,
    "train_episodes": _check_positive_int,
    "eval_episodes": _check_positive_int,
    "horizon_ticks": integer(1, MAX_HORIZON_TICKS),
    "eval_horizon_ticks": integer(1, MAX_HORIZON_TICKS, optional=True),
    "algorithm_config": _check_algorithm_config,
    "workers": _check_workers,
    "results": _check_results,
}


def check_fields(values: Mapping[str, Any], label: Any, checks: Mapping[str, Callable[[Any, str], Any]] | None = None,
                 ) -> dict[str, Any]:
    """Validated, normalised values of the given fields. `label(field)` names where a field came
    from in error messages (e.g. `"sweep.toml: loads"` or `"--loads"`). `checks` maps each known
    field to its validator (default: the sweep's fields)."""
    checks = _CHECKS if checks is None else checks
    out = {}
    for key, value in values.items():
        if key not in checks:
            raise MamrlError(f"{label(key)}: unknown field (known: {', '.join(checks)})")
        out[key] = checks[key](value, label(key))
    return out


def build_sweep_config(
    *,
    preset: str | None = None,
    file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_label: Any = None,
) -> SweepConfig:
    """Defaults ← preset ← config file ← overrides, validated (one-line `MamrlError`s).

    Without a preset and a file, the `quick` preset is the base. A file may name its base preset
    (`preset = "paper"`); an explicit `preset` argument wins over it.
    """
    values, source = layered_values(PRESETS, check_fields, preset=preset, file=file, overrides=overrides,
                                    override_label=override_label)
    return validate(SweepConfig(**values), source)


def validate(config: SweepConfig, label: Callable[[str], str] | None = None) -> SweepConfig:
    """Check a `SweepConfig` (however it was built), and build every algorithm once so that bad
    hyper-parameters fail here, naming the field, not in a worker process. `label(field)` says
    where a field came from. A sweep and its `--dry-run` both go through here."""
    label = label or (lambda key: key)
    checked = check_fields({f: getattr(config, f) for f in FIELD_NAMES}, label)
    unused = [name for name in checked["algorithm_config"] if name not in checked["algorithms"]]
    if unused:
        raise MamrlError(f"{label('algorithm_config')}: settings for {', '.join(unused)}, which the sweep does not run "
                         f"(algorithms: {', '.join(checked['algorithms'])})")
    for name in checked["algorithms"]:
        settings = checked["algorithm_config"].get(name, {})
        if settings.get("reconvergence_delay_ticks") is not None:
            raise MamrlError(f"{label('algorithm_config')}.{name}.reconvergence_delay_ticks: a sweep fails no links, "
                             "so a reconvergence delay changes nothing")
        try:
            make_agent(name, settings)
        except MamrlError as exc:
            message = str(exc)
            raise MamrlError(f"{label('algorithm_config')}.{message}" if message.startswith(name + ".")
                             else f"{label('algorithm_config')}.{name}: {message}") from None
    config = SweepConfig(**checked)
    # A load given as a share of λ* is at most that share of 1 packet per router and tick (a router
    # forwards one packet per tick): an upper bound without solving for λ* here.
    check_sweep_memory(config, max(share if (share := load_share(spec)) is not None else float(spec) for spec in config.loads))
    return config


def parse_number(text: str | float, option: str, *, allow_zero: bool = False, unit: str = "") -> float:
    """A command-line number: finite and > 0 (>= 0 with `allow_zero`); `unit` names it in errors."""
    note = f" ({unit})" if unit else ""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise MamrlError(f"{option} must be a number{note}, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise MamrlError(f"{option} must be a finite number {'>=' if allow_zero else '>'} 0{note}, got {text!r}")
    return value


def parse_load(text: str | float, option: str = "--load") -> float:
    """A load value: a finite number >= 0 (packets per router per tick)."""
    return parse_number(text, option, allow_zero=True, unit="packets per router per tick")


def check_positive(value: int, option: str) -> None:
    """A command-line count: an integer >= 1."""
    if value < 1:
        raise MamrlError(f"{option} must be an integer >= 1, got {value}")


def split_list(text: str, option: str, kind: str) -> list[Any]:
    """A comma-separated option value as a list of `kind` ("str", "int", "float")."""
    items = [part.strip() for part in str(text).split(",")]
    if not any(items):
        raise MamrlError(f"{option}: must not be empty")
    if any(not item for item in items):
        raise MamrlError(f"{option}: empty item in {text!r}")
    if kind == "str":
        return items
    out: list[Any] = []
    for item in items:
        try:
            out.append(int(item) if kind == "int" else float(item))
        except ValueError:
            what = "an integer" if kind == "int" else "a number"
            raise MamrlError(f"{option}: {item!r} is not {what}") from None
    return out


def parse_assignments(items: Sequence[str] | None, option: str = "--set") -> dict[str, Any]:
    """`KEY=VALUE` items as a dict; values are JSON where they parse, else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MamrlError(f"{option} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
        except RecursionError:
            raise MamrlError(f"{option} {key.strip()}: the value nests arrays or objects too deeply to read") from None
    return out


__all__ = [
    "check_positive",
    "parse_load",
    "parse_number",
    "parse_assignments",
    "split_list",
    "CONFIG_FORMAT",
    "RELATIVE_LOAD",
    "load_share",
    "parse_load_spec",
    "resolve_load",
    "FIELD_NAMES",
    "PRESETS",
    "SweepConfig",
    "build_sweep_config",
    "check_fields",
    "check_topologies",
    "config_hash",
    "read_config_file",
    "validate",
]


def layered_values(presets: dict[str, dict[str, Any]], check, *, preset: str | None, file, overrides, override_label,
                   ) -> tuple[dict[str, Any], Callable[[str], str]]:
    """Configuration values layered defaults <- preset <- config file <- overrides, each layer's
    fields checked by `check(values, label)`; also returns `source(key)`, where a field's value
    came from (for error messages). Without a preset and a file, `quick` is the base; a file may
    name its base preset (`preset = "paper"`), which an explicit `preset` overrides."""
    file_values: dict[str, Any] = {}
    file_preset = None
    if file is not None:
        raw = read_config_file(file)
        file_preset = raw.pop("preset", None)
        if file_preset is not None and not isinstance(file_preset, str):
            raise MamrlError(f"{file}: preset: expected a preset name, got {file_preset!r}")
        file_values = check(raw, lambda key: f"{file}: {key}")
    base = preset if preset is not None else file_preset
    if base is None and file is None:
        base = "quick"
    values: dict[str, Any] = {}
    if base is not None:
        if base not in presets:
            raise MamrlError(f"preset: unknown preset {base!r} (choose from {', '.join(presets)})")
        values.update(check(presets[base], lambda key: f"preset {base}: {key}"))
    values.update(file_values)
    if overrides:
        values.update(check(overrides, override_label or (lambda key: key)))

    def source(key: str) -> str:
        if overrides and key in overrides:
            return override_label(key) if override_label else key
        if key in file_values:
            return f"{file}: {key}"
        if base is not None and key in presets[base]:
            return f"preset {base}: {key}"
        return key

    return values, source
