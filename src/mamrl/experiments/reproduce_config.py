"""The configuration of `mamrl reproduce`: presets, `ReproduceConfig`, its validation and the
run's `manifest.json` (the driver that runs the stages is `mamrl.report.reproduce`).

Configuration
-------------
A preset (`quick`, `paper`) gives every value; `--topology` and dotted `--set KEY=VALUE` overrides
(for example `--set sweep.train_episodes=100`, `--set failures.maml.episodes_per_task=2`) change
it, and every value is validated by the experiment it belongs to (`SweepConfig`,
`FailureExperimentConfig`, `SaturationSettings`), with one-line errors naming the field.

Resuming
--------
`manifest.json` in the output directory holds the resolved configuration (`ReproduceConfig.resolved`)
and the stages finished, with their wall times. A different configuration in the same directory is
refused with one line.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import datetime as _dt
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mamrl import runs
from mamrl.algorithms import canonical_name, make_agent
from mamrl.errors import MamrlError
from mamrl.executors import check_backend
from mamrl.experiments import config as sweep_config_module
from mamrl.experiments import failures as failures_module
from mamrl.experiments.config import (
    SweepConfig,
    check_int,
    check_seeds,
    check_topologies,
)
from mamrl.runs import config_differences, config_hash, jsonable, summarise_differences
from mamrl.topologies import builtin_names
from mamrl.validate import Number

FORMAT = "mamrl-reproduce/1"
"""Format tag of `manifest.json`."""
MANIFEST = "manifest.json"
REPORT = "REPORT.md"

STAGES: tuple[tuple[str, str], ...] = (
    ("e1", "E1 load sweep"),
    ("saturation", "saturation search"),
    ("meta", "meta-training"),
    ("e2", "E2 link failures"),
    ("report", "report"),
)
"""(name, title) of every stage, in the order they run."""
STAGE_NAMES: tuple[str, ...] = tuple(name for name, _ in STAGES)


def check_stage_name(name: str | None) -> None:
    """A one-line error unless `name` is None or a stage's name."""
    if name is not None and name not in STAGE_NAMES:
        raise MamrlError(f"unknown stage {name!r} (stages: {', '.join(STAGE_NAMES)})")

# Fields of the sub-configs that `reproduce` sets itself (per topology, or from its own flags).
_SWEEP_OWN = ("topologies", "workers", "results")
_FAILURES_OWN = ("topology", "workers", "output", "meta_init")


# ------------------------------------------------------------------------------ saturation settings
@dataclass(frozen=True)
class SaturationSettings:
    """The saturation searches of the `saturation` stage (see `mamrl saturation`)."""

    algorithms: tuple[str, ...] = ("spa",)
    """Algorithms bisected on every topology; learning ones are trained at every probed load."""
    low: float = 0.01
    """Lower end of the search (λ; must be bounded)."""
    high: float = 0.5
    """Upper end of the search (λ)."""
    tolerance: float = 0.005
    """Stop when the bracket is narrower than this (λ)."""
    horizon_ticks: int = 2000
    """Evaluation episode length; longer than the sweep's 500 ticks to see past the fill-up transient."""
    episodes: int = 10
    """Evaluation episodes per seed and probe."""
    max_episodes: int = 80
    """An undetermined probe is re-evaluated with twice the episodes, up to this many."""
    seeds: tuple[int, ...] = (0,)
    """Seeds pooled in every probe."""
    train_episodes: int = 2000
    """Training episodes per probe for learning algorithms (tabular PG plateaus after ~500 on b4)."""
    train_horizon_ticks: int = 500
    """Training episode length for learning algorithms."""


_positive_float = Number(above=0)


def _algorithms(value: Any, label: str) -> tuple[str, ...]:
    return sweep_config_module.check_fields({"algorithms": value}, lambda _key: label)["algorithms"]


_SATURATION_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "algorithms": _algorithms,
    "low": _positive_float,
    "high": _positive_float,
    "tolerance": _positive_float,
    "horizon_ticks": lambda v, label: check_int(v, label, 4),
    "episodes": lambda v, label: check_int(v, label, 2),
    "max_episodes": lambda v, label: check_int(v, label, 2),
    "seeds": check_seeds,
    "train_episodes": lambda v, label: check_int(v, label, 1),
    "train_horizon_ticks": lambda v, label: check_int(v, label, 1),
}


def saturation_settings(values: Mapping[str, Any], prefix: str = "saturation") -> SaturationSettings:
    """Validated `SaturationSettings` from a mapping of its fields (unnamed ones keep their
    defaults); errors name the field as `<prefix>.<field>`."""
    if not isinstance(values, Mapping):
        raise MamrlError(f"{prefix}: expected a table of settings, got {values!r}")

    def label(key: str) -> str:
        return f"{prefix}.{key}"

    checked = sweep_config_module.check_fields(values, label, _SATURATION_CHECKS)
    settings = SaturationSettings(**checked)
    if settings.high <= settings.low:
        raise MamrlError(f"{label('high')}: must be above low ({settings.low:g}), got {settings.high:g}")
    if settings.max_episodes < settings.episodes:
        raise MamrlError(f"{label('max_episodes')}: must be >= episodes ({settings.episodes}), got {settings.max_episodes}")
    return settings


# ------------------------------------------------------------------------------ the config
@dataclass(frozen=True)
class ReproduceConfig:
    """What `mamrl reproduce` runs: E1 and E2 on the chosen topologies, with the preset's budgets."""

    preset: str = "quick"
    """The preset the values came from (`quick` or `paper`); a reduced preset is labelled as such in REPORT.md."""
    topologies: tuple[str, ...] = ("b4",)
    """Topologies, built-in names or topology files/directories; E1 plots them side by side, E2 runs once per topology."""
    sweep: Mapping[str, Any] = field(default_factory=dict)
    """E1: `SweepConfig` fields other than topologies, workers and results (algorithms, loads, seeds,
    train_episodes, eval_episodes, horizon_ticks, algorithm_config)."""
    algorithm_train_episodes: Mapping[str, int] = field(default_factory=dict)
    """E1: training episodes of particular algorithms instead of `sweep.train_episodes` (the deep
    learner costs ~0.35 s per training episode on one b4 core, tabular PG ~1 ms). Algorithms with
    the same budget form one sweep (its own results file); entries for algorithms not swept are ignored."""
    saturation: SaturationSettings = field(default_factory=SaturationSettings)
    """The saturation searches."""
    failures: Mapping[str, Any] = field(default_factory=dict)
    """E2 and meta-training: `FailureExperimentConfig` fields other than topology, workers, output
    and meta_init (load, seeds, episodes, fail_episode, controllers, maml, meta_iterations, ...)."""
    overrides: tuple[str, ...] = ()
    """Dotted keys changed from the preset by `--set` (only for the REPORT.md label; the values are above)."""
    workers: int = 2
    """Worker processes of the sweep, saturation and failure executors (with the Ray backend: CPUs
    of a local instance, or tasks at once on a cluster); never changes the results."""
    backend: str = "local"
    """Where the stages' tasks run: `local` (this machine's cores) or `ray` (`mamrl.executors.make_backend_executor`)."""
    address: str | None = None
    """With the Ray backend: the head node of a running cluster (None: start a local instance)."""
    output: str = "runs/reproduce-quick"
    """Output directory (manifest.json, REPORT.md, stage subfolders)."""

    # ------------------------------------------------------------------ derived configs
    @property
    def out(self) -> Path:
        return Path(self.output)

    @property
    def reduced(self) -> bool:
        """Whether the budgets are not the paper's (quick preset, or the paper preset changed by --set)."""
        return self.preset != "paper" or bool(self.overrides)

    def topology_slugs(self) -> dict[str, str]:
        """A file-name-safe, distinct name per topology (`b4`, or a path's stem)."""
        out: dict[str, str] = {}
        for spec in self.topologies:
            base = spec if spec in builtin_names() else (Path(spec).stem or "topology")
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "topology"
            candidate, k = slug, 2
            while candidate in out.values():
                candidate, k = f"{slug}-{k}", k + 1
            out[spec] = candidate
        return out

    def sweep_groups(self) -> list[SweepConfig]:
        """The E1 sweeps: one per training budget, algorithms in the configured order, each with its
        own results file under `e1/`."""
        base = dict(self.sweep)
        budgets: dict[int, list[str]] = {}
        for name in base["algorithms"]:
            budget = int(self.algorithm_train_episodes.get(name, base["train_episodes"]))
            if not make_agent(name, dict(base.get("algorithm_config", {}).get(name, {}))).learns:
                budget = int(base["train_episodes"])  # never trained: keep it with the main group
            budgets.setdefault(budget, []).append(name)
        groups = []
        settings = dict(base.get("algorithm_config", {}))
        for budget, names in budgets.items():
            values = {**base, "algorithms": names, "algorithm_config": {k: v for k, v in settings.items() if k in names}, "train_episodes": budget, "topologies": list(self.topologies),
                      "workers": self.workers, "results": str(self.out / "e1" / f"sweep_{'_'.join(names)}.csv")}
            groups.append(sweep_config_module.validate(SweepConfig(**values)))
        return groups

    def failure_config(self, topology: str) -> failures_module.FailureExperimentConfig:
        """E2 (and its meta-training) on one topology, into `e2/<topology>/` (meta-training in its `meta/`)."""
        values = {**dict(self.failures), "topology": topology, "workers": self.workers, "meta_init": None,
                  "output": str(self.out / "e2" / self.topology_slugs()[topology])}
        # Settings no controller uses are refused when `--set` gave them (a preset's are left alone).
        parts = [key.split(".") for key in self.overrides if key.split(".")[0] == "failures"]
        given = set(self.failures) if any(len(p) == 1 for p in parts) else {p[1] for p in parts}
        return failures_module.validate(failures_module.FailureExperimentConfig(**values), lambda key: f"failures.{key}", given)

    def resolved(self) -> dict[str, Any]:
        """The result-determining configuration (no workers, output or override list), JSON-ready;
        `manifest.json` holds it and a resume must match it."""
        # Keyed by results file, so that a difference is named down to the field.
        sweeps = {Path(g.results).stem: {k: v for k, v in g.resolved().items() if k != "topologies"}
                  for g in self.sweep_groups()}
        resolved = {
            "format": FORMAT,
            "preset": self.preset,
            "topologies": list(self.topologies),
            "e1": sweeps,
            "saturation": dataclasses.asdict(self.saturation),
            "e2": {topo: self.failure_config(topo).resolved() for topo in self.topologies},
        }
        return json.loads(json.dumps(jsonable(resolved), allow_nan=False))

    def describe_start(self, stages_done: Sequence[str]) -> str:
        """The line a run starts with: preset, topologies, output, where the work runs, what is done."""
        where = f"{self.workers} worker(s)" if self.backend == "local" else f"backend ray at {self.address or 'a local instance'}"
        return (f"reproduce: preset {self.preset} on {', '.join(self.topologies)} into {self.output}, {where}"
                + (" (reduced budgets: not the paper's numbers)" if self.reduced else "")
                + (f"; resuming, done: {', '.join(stages_done)}" if stages_done else ""))

    def stage_label(self, name: str, title: str) -> str:
        """`[k/n] title` of a stage."""
        return f"[{STAGE_NAMES.index(name) + 1}/{len(STAGE_NAMES)}] {title}"

    def config_hash(self) -> str:
        return config_hash(self.resolved())

    def as_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (for `--dry-run`)."""
        return jsonable({
            "preset": self.preset, "topologies": list(self.topologies), "sweep": dict(self.sweep),
            "algorithm_train_episodes": dict(self.algorithm_train_episodes),
            "saturation": dataclasses.asdict(self.saturation), "failures": dict(self.failures),
            "overrides": list(self.overrides), "workers": self.workers, "backend": self.backend,
            "address": self.address, "output": self.output,
        })


# ------------------------------------------------------------------------------ presets
def _without(values: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in values.items() if k not in keys}


PRESETS: dict[str, dict[str, Any]] = {
    # b4 only, under 20 minutes on 2 cores. Estimated from the measured costs below (wall times
    # on this project's 2-core machine): E1 ≈ 40 + 280 s, saturation ≈ 10 s, meta-training
    # ≈ 150-300 s, E2 ≈ 140 s, report ≈ 20 s, plus numba compiling on a fresh clone (~1 min):
    # about 11-14 minutes.
    "quick": {
        "topologies": ["b4"],
        # The quick sweep (SPA, Q-routing, PG; 2000 training episodes; 2 seeds) plus λ = 0.5 for the
        # paper's comparison point and the deep learner. SPA / Q-routing / PG: 30 s for 4 loads, so
        # ~40 s for 5. The deep learner: ~0.35 s per training episode on one core, so 10 cells ×
        # 160 episodes ≈ 560 core-s ≈ 280 s on 2 workers (`algorithm_train_episodes`). Per-packet
        # credit: trained on the paper's reward the learner stops delivering (RESULTS.md §2).
        "sweep": {
            **_without(sweep_config_module.PRESETS["quick"], _SWEEP_OWN),
            "algorithms": ["spa", "ecmp", "max-throughput", "min-delay", "backpressure", "sp-backpressure", "q-routing", "pg",
                           "mamrl"],
            "loads": [0.05, 0.1, 0.2, 0.3, 0.5],
            "algorithm_config": {"mamrl": {"reward": "packet"}},
        },
        # 160 episodes = 10 TRPO iterations of 16: far from trained (the paper: 10,000), labelled so.
        "algorithm_train_episodes": {"mamrl": 160},
        # The static routings' bisections on 2,000-tick episodes: about 10 s each.
        "saturation": {"algorithms": ["spa", "ecmp", "max-throughput", "min-delay", "sp-backpressure"]},
        # The paper's three b4 failures, every controller, 2 seeds, 100 episodes after the failure:
        # 320 episodes × 4 links took 490 s on 2 workers (~0.13 core-s per deep episode), so
        # 18 deep runs × 120 episodes ≈ 280 core-s ≈ 140 s. Meta-training: 10 MAML-TRPO
        # iterations with MamlConfig's defaults (15-30 s each on b4): 150-300 s — a start, not a
        # meta-initialisation (RESULTS.md §3.1 needed ~40 iterations to route well).
        "failures": {
            **_without(failures_module.PRESETS["quick"], _FAILURES_OWN),
            "controllers": list(failures_module.DEFAULT_CONTROLLERS),
            "episodes": 120,
            "meta_iterations": 10,
        },
    },
    # The paper's budgets (docs/sweep.md): all three topologies, its eight loads, 10,000 training
    # episodes for every learner (the deep one included: 0.2-0.8 h per cell on one core with
    # bfloat16 updates), 3 seeds; 300 meta-iterations; 1,000 episodes after the failure. The deep
    # learners' updates run in bfloat16 (`update_precision`): 1.6-2.1x faster on this project's
    # CPUs, learning as float32 does within seed noise (BENCHMARKS.md, "Deep per-router policies").
    "paper": {
        "topologies": ["b4", "geant", "att"],
        "sweep": {
            **_without(sweep_config_module.PRESETS["paper"], _SWEEP_OWN),
            "algorithms": ["spa", "ecmp", "max-throughput", "min-delay", "backpressure", "sp-backpressure", "q-routing", "pg",
                           "mamrl"],
            "algorithm_config": {"mamrl": {"reward": "packet", "update_precision": "bfloat16"}},
        },
        "algorithm_train_episodes": {},
        "saturation": {"algorithms": ["spa", "ecmp", "max-throughput", "min-delay", "backpressure", "sp-backpressure",
                                      "q-routing", "pg"],
                       "train_episodes": 10_000},
        "failures": {
            **_without(failures_module.PRESETS["paper"], _FAILURES_OWN),
            "meta_iterations": 300,
            "maml": {"update_precision": "bfloat16"},
        },
    },
}
"""Named configurations; `--topology` and `--set` change them."""

_SETTABLE = ("topologies", "sweep", "algorithm_train_episodes", "saturation", "failures")
"""Top-level fields `--set` may change (workers and output have their own flags)."""


def default_output(preset: str) -> str:
    return f"runs/reproduce-{preset}"


def _set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    parts = [p.strip() for p in key.split(".")]
    if not key.strip() or any(not p for p in parts):
        raise MamrlError(f"--set: bad key {key!r} (use dotted field names, e.g. sweep.train_episodes)")
    if parts[0] not in _SETTABLE:
        raise MamrlError(f"--set {key}: unknown field {parts[0]!r} (settable: {', '.join(_SETTABLE)})")
    target: Any = values
    for k, part in enumerate(parts[:-1]):
        nxt = target.get(part)
        if nxt is None:
            nxt = target[part] = {}
        if not isinstance(nxt, dict):
            raise MamrlError(f"--set {key}: {'.'.join(parts[:k + 1])} is not a table of settings")
        target = nxt
    target[parts[-1]] = value


def _check_section(value: Any, label: str, own: Sequence[str], known: Sequence[str]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise MamrlError(f"{label}: expected a table of settings, got {value!r}")
    for key in value:
        if key in own:
            raise MamrlError(f"{label}.{key}: set by `mamrl reproduce` itself, not by the configuration")
        if key not in known:
            raise MamrlError(f"{label}.{key}: unknown field (known: {', '.join(k for k in known if k not in own)})")
    return dict(value)


def _check_train_episodes(value: Any, label: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise MamrlError(f"{label}: expected a table of algorithm -> episodes, got {value!r}")
    out: dict[str, int] = {}
    for name, episodes in value.items():
        try:
            key = canonical_name(str(name))
        except MamrlError as exc:
            raise MamrlError(f"{label}: {exc}") from None
        out[key] = check_int(episodes, f"{label}.{name}", 1)
    return out


def _only_swept(sweep: dict[str, Any], train: dict[str, int], overrides: Mapping[str, Any],
                ) -> tuple[dict[str, Any], dict[str, int]]:
    """`sweep` and the training budgets without a preset's settings of algorithms that `--set`
    took out of the sweep; a setting that `--set` itself gives an algorithm not swept, or a budget
    for one that does not learn, is an error (it would change nothing)."""

    def named_by_set(prefix: tuple[str, ...]) -> set[str]:
        names: set[str] = set()
        for key, value in overrides.items():
            parts = tuple(p.strip() for p in key.split("."))
            if parts[:len(prefix)] == prefix:
                rest = parts[len(prefix):]
                for name in ([rest[0]] if rest else list(value) if isinstance(value, Mapping) else []):
                    try:
                        names.add(canonical_name(name))
                    except MamrlError:
                        names.add(name)
        return names

    swept = sweep["algorithms"]
    settings = dict(sweep.get("algorithm_config", {}))
    for label, table, prefix in (("sweep.algorithm_config", settings, ("sweep", "algorithm_config")),
                                 ("algorithm_train_episodes", train, ("algorithm_train_episodes",))):
        user = named_by_set(prefix)
        for name in list(table):
            if name in swept:
                continue
            if name in user:
                raise MamrlError(f"{label}.{name}: {name} is not in the sweep (sweep.algorithms: {', '.join(swept)})")
            del table[name]  # the preset's, for an algorithm `--set` took out of the sweep
    for name in train:
        if not make_agent(name).learns:
            raise MamrlError(f"algorithm_train_episodes.{name}: {name} does not learn; a training budget changes nothing")
    return {**sweep, "algorithm_config": settings}, {k: v for k, v in train.items() if k in swept}


def build_reproduce_config(
    *,
    preset: str = "quick",
    topologies: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    workers: int = 2,
    backend: str = "local",
    address: str | None = None,
    output: str | os.PathLike[str] | None = None,
) -> ReproduceConfig:
    """The preset ← `topologies` ← dotted `overrides` (`{"sweep.train_episodes": 100}`), validated
    (one-line `MamrlError`s naming the field). `output` defaults to `runs/reproduce-<preset>`."""
    if preset not in PRESETS:
        raise MamrlError(f"--preset: unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    values = copy.deepcopy(PRESETS[preset])
    topo_label = "topologies"
    if topologies:
        values["topologies"] = list(topologies)
        topo_label = "--topology"
    for key, value in (overrides or {}).items():
        _set_dotted(values, key, value)
        if key.split(".")[0].strip() == "topologies":
            topo_label = "--set topologies"
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise MamrlError(f"--workers: must be an integer >= 1, got {workers!r}")

    backend = check_backend(backend, address)
    out = str(output) if output is not None else default_output(preset)
    if not out.strip():
        raise MamrlError("--output: expected a directory name")
    sweep = _check_section(values["sweep"], "sweep", _SWEEP_OWN, sweep_config_module.FIELD_NAMES)
    sweep = sweep_config_module.check_fields(sweep, lambda key: f"sweep.{key}")
    missing = [k for k in ("algorithms", "loads", "seeds", "train_episodes") if k not in sweep]
    if missing:  # a preset always has them; guards hand-built presets
        raise MamrlError(f"sweep: missing {', '.join(missing)}")
    failures = _check_section(values["failures"], "failures", _FAILURES_OWN, failures_module.FIELD_NAMES)
    failures = failures_module.check_fields(failures, lambda key: f"failures.{key}")
    train = _check_train_episodes(values.get("algorithm_train_episodes", {}), "algorithm_train_episodes")
    sweep, train = _only_swept(sweep, train, overrides or {})
    config = ReproduceConfig(
        preset=preset,
        topologies=check_topologies(values["topologies"], topo_label),
        sweep=sweep,
        algorithm_train_episodes=train,
        saturation=saturation_settings(values.get("saturation", {})),
        failures=failures,
        overrides=tuple(sorted(k.strip() for k in (overrides or {}))),
        workers=workers,
        backend=backend,
        address=address,
        output=out,
    )
    # The whole E1 sweep once, as one sweep: settings are checked, and named as `sweep.<field>`.
    sweep_config_module.validate(SweepConfig(**{**sweep, "topologies": list(config.topologies), "workers": workers,
                                                 "results": str(config.out / "e1" / "sweep.csv")}), lambda key: f"sweep.{key}")
    config.sweep_groups()
    for topo in config.topologies:
        config.failure_config(topo)  # errors name `failures.<field>`
    return config


# ------------------------------------------------------------------------------ manifest
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


class Manifest:
    """`manifest.json`: the resolved config, provenance and the state and wall time of every stage."""

    def __init__(self, config: ReproduceConfig):
        self.config = config
        self.path = config.out / MANIFEST
        self.resolved = config.resolved()
        self.doc: dict[str, Any] = {}
        self._attempt_start = 0.0

    def existing(self) -> dict[str, Any] | None:
        """The output directory's manifest if it was made with this configuration, None if there is
        none yet; a one-line error if it holds another configuration or something else."""
        out = self.config.out
        if out.exists() and not out.is_dir():
            raise MamrlError(f"output {str(out)!r} exists and is not a directory")
        if not self.path.is_file():
            if out.is_dir() and any(not runs.is_lock_file(p) for p in out.iterdir()):
                raise MamrlError(f"output {str(out)!r} is not empty and holds no {MANIFEST}; use a new --output")
            return None
        recover = "use a new --output (or delete the folder to start over)"
        doc = runs.read_json(self.path, "reproduce manifest", recover)
        stages = doc.get("stages", {}) if isinstance(doc, dict) else None
        if (not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("config"), dict)
                or not isinstance(stages, dict) or not all(isinstance(v, dict) for v in stages.values())):
            raise MamrlError(f"{self.path} is not a `mamrl reproduce` manifest (wrong shape); {recover}")
        diff = config_differences(doc["config"], self.resolved)
        if diff:
            shown = summarise_differences(diff, 6)
            raise MamrlError(f"output {str(out)!r} was made with a different configuration (differs in: {shown}); "
                             "use another --output, or delete it to start over")
        doc["stages"] = stages
        return doc

    def open(self) -> None:
        """Check an existing manifest matches this configuration, or create the output directory and the manifest."""

        doc = self.existing()
        if doc is not None:
            self.doc = doc
            return
        try:
            self.config.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MamrlError(f"cannot create output directory {str(self.config.out)!r}: {exc.strerror or exc}") from None
        self.doc = {"format": FORMAT, "config_hash": config_hash(self.resolved), "config": self.resolved,
                    "preset": self.config.preset, "overrides": list(self.config.overrides),
                    "created": runs.provenance(), "stages": {}}
        self.save()

    def save(self) -> None:
        runs.write_json(self.path, self.doc)

    def stage(self, name: str) -> dict[str, Any]:
        return self.doc["stages"].get(name, {})

    def done(self, name: str) -> bool:
        return self.stage(name).get("status") == "done"

    def start_attempt(self, name: str) -> None:
        """A stage (re)starts: count the attempt, mark the stage not done until it finishes."""
        entry = dict(self.stage(name))
        walls = entry.get("attempt_walls_s")
        if not isinstance(walls, list):  # a manifest from before per-attempt times: its total is one entry
            walls = [float(entry["wall_s"])] if isinstance(entry.get("wall_s"), (int, float)) else []
        entry["attempt_walls_s"] = [*walls, 0.0]
        entry["attempts"] = len(entry["attempt_walls_s"])
        # Which machine ran each attempt (None: recorded before this field existed): a resumed
        # run may continue on another machine, and wall times are read against it.
        cpus = entry.get("attempt_cpus") if isinstance(entry.get("attempt_cpus"), list) else []
        cpus = [*cpus, *[None] * (len(walls) - len(cpus))][:len(walls)]
        entry["attempt_cpus"] = [*cpus, runs.machine_label()]
        entry["status"] = "incomplete"
        entry.pop("files", None)
        entry.pop("finished_utc", None)
        self.doc["stages"][name] = entry
        self._attempt_start = time.perf_counter()
        self.tick(name)

    def tick(self, name: str, *, finished: bool = False, files: Mapping[str, Any] | None = None) -> None:
        """Store the current attempt's wall time so far (a kill loses only the time since the last
        tick); with `finished`, mark the stage done with its output `files` records."""
        entry = self.doc["stages"][name]
        entry["attempt_walls_s"][-1] = round(time.perf_counter() - self._attempt_start, 3)
        entry["wall_s"] = round(sum(entry["attempt_walls_s"]), 3)
        if finished:
            entry["status"] = "done"
            entry["finished_utc"] = _now()
            entry["files"] = dict(files or {})
        self.save()

    def check_files(self, name: str) -> str | None:
        """Whether a done stage's outputs are as it left them: None if so, "rerun" if the stage
        must run again (files deleted, or recorded by an older mamrl without file records);
        a one-line error naming a truncated or changed file and how to recover."""
        files = self.stage(name).get("files")
        if not isinstance(files, dict):
            return "rerun"
        problems = runs.changed_files(self.config.out, files)
        damaged = [(file, what) for file, what in problems if what != "missing"]
        if damaged:
            file, what = damaged[0]
            more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
            raise MamrlError(f"{self.config.out / file}: {what}{more} since stage {name} finished; delete it and re-run "
                             f"the same command to recompute it (or use a new --output)")
        return "rerun" if problems else None

    def wall_times(self) -> dict[str, float]:
        return {name: float(self.stage(name).get("wall_s", 0.0)) for name in STAGE_NAMES if self.stage(name)}


def curve_seconds(rows: Sequence[Mapping[str, Any]]) -> float:
    """Training seconds in curves.csv rows: the sum of their finite `seconds` cells (blank or
    unreadable cells count 0)."""
    total = 0.0
    for row in rows:
        try:
            value = float(row.get("seconds") or "nan")
        except (TypeError, ValueError):
            continue
        total += value if math.isfinite(value) else 0.0
    return total


def meta_curves(meta_dir: Path) -> tuple[int, float]:
    """Meta-iterations in a meta-training directory's curves.csv and their seconds (0, 0 if it is
    unreadable). The seconds count training done before this folder's manifest existed too."""
    try:
        with open(meta_dir / "curves.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError):
        return 0, 0.0
    return len(rows), curve_seconds(rows)


def stages_done(config: ReproduceConfig) -> list[str]:
    """The stages already done in the config's output folder (none if it holds no run yet)."""
    existing = Manifest(config).existing()
    return [name for name in STAGE_NAMES if existing and existing["stages"].get(name, {}).get("status") == "done"]


__all__ = [
    "stages_done",
    "FORMAT",
    "MANIFEST",
    "PRESETS",
    "REPORT",
    "STAGES",
    "STAGE_NAMES",
    "Manifest",
    "ReproduceConfig",
    "SaturationSettings",
    "build_reproduce_config",
    "curve_seconds",
    "meta_curves",
    "default_output",
    "saturation_settings",
]
