"""The link-failure experiment's config: `FailureExperimentConfig`, its presets, validation and
`build_failure_config` (defaults ← preset ← config file ← overrides), and the runs it asks for."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mamrl.agents.q_routing import QRoutingConfig
from mamrl.errors import MamrlError
from mamrl.executors import available_cores
from mamrl.experiments.config import check_fields as _check_fields
from mamrl.experiments.config import check_int, check_seeds, layered_values
from mamrl.experiments.failures.adaptation_rule import plateau_window
from mamrl.experiments.failures.feasibility import LoadPlan, check_load_spec, infeasible_links, plan_load
from mamrl.experiments.memory_checks import check_failure_memory
from mamrl.experiments.failures.controllers import (
    BENCHMARK_CONTROLLERS,
    CLASSICAL_CONTROLLERS,
    CONTROLLER_NAMES,
    DEEP_CONTROLLERS,
    DEFAULT_CONTROLLERS,
    PRETRAINED_CONTROLLERS,
    PRETRAINED_POLICY,
    SCRATCH_CONTROLLERS,
)
from mamrl.meta.tasks import link_label
from mamrl.runs import config_hash, jsonable
from mamrl.topologies import builtin_names, extended_failure_links, load_topology, paper_failure_links
from mamrl.sim.params import MAX_HORIZON_TICKS
from mamrl.validate import SEED, Flag, Number, config_from_dict, integer

CONFIG_FORMAT = "mamrl-failures-config/1"
"""Format tag of the resolved config (in `config.json`)."""


@dataclass(frozen=True)
class FailureExperimentConfig:
    """The link-failure experiment: one topology, test links × controllers × seeds, each an online run."""

    topology: str = "b4"
    """A built-in name (`b4`, `geant`, `att`) or a topology file/directory."""
    load: float | str = "auto"
    """λ, new packets per router per tick: a number, a share of the smallest λ* after a tested
    failure (`0.8x`), or `auto`: the paper's 0.3 where every tested failure leaves λ* above it, else 0.8x."""
    horizon_ticks: int = 500
    """Episode length H in ticks (paper: 500)."""
    seeds: tuple[int, ...] = (0, 1)
    """Traffic seeds (integers in [0, 2**32 - 1]); a run plays episodes 0 .. episodes-1 of its seed. Curves show seed bands."""
    failures: tuple[str, ...] = ()
    """Test links (`A-B` by router names, link names or ids); empty = the paper's three for a built-in."""
    held_out: tuple[str, ...] = ()
    """More test links, also never failed in meta-training (generalisation to unseen failures)."""
    extended_tests: bool = False
    """For a built-in topology, where `failures` / `held_out` are not named: also test one
    double-link failure (the paper's first two links together) and two held-out links
    (`topologies.builtin.HELD_OUT_FAILURES`)."""
    fail_episode: int = 20
    """First episode with the link down (episodes before it run on the intact network)."""
    fail_tick: int = 0
    """Tick the link goes down in the failure episode (in later episodes it is down from tick 0)."""
    episodes: int = 200
    """Episodes per run in total (before and after the failure)."""
    episodes_per_step: int = 5
    """Episodes per controller call (one learning step of the deep controllers)."""
    controllers: tuple[str, ...] = DEFAULT_CONTROLLERS
    """Controllers: spa, spa-reconverge, q-routing, mamrl-init, continued, random-init (the paper's);
    also ecmp, max-throughput, min-delay (each optionally -reconverge), backpressure, sp-backpressure."""
    loss_penalty_ticks: float = 0.0
    """Extra cost of a lost packet in the common reward, in ticks, on top of its age at the horizon
    (`common_reward`); 0 = the reward is minus the sojourn time of every packet."""
    reconvergence_delay_ticks: int = 50
    """spa-reconverge: ticks after the failure until the paths avoid the failed link."""
    q_routing: Mapping[str, Any] = field(default_factory=dict)
    """Q-routing hyper-parameters (`QRoutingConfig` fields); unnamed ones keep their defaults."""
    adaptation: Mapping[str, Any] = field(default_factory=dict)
    """Deep controllers' online adaptation settings (`AdaptationConfig` fields)."""
    maml: Mapping[str, Any] = field(default_factory=dict)
    """Meta-training settings (`MamlConfig` fields, including the policy's), used when no finished meta-training is found."""
    meta_iterations: int = 300
    """MAML-TRPO meta-iterations of the meta-training (the paper authors configured 300)."""
    meta_seed: int = 0
    """Seed of the meta-training's traffic and task draws (and of the pre-trained comparators' training)."""
    pretrain_episodes: int | None = None
    """Training episodes of the pre-trained deep comparators' policies (`fine-tune` and `masked`: on
    the intact network; `zero-shot`: across η(M)); None = as many as meta-training uses."""
    meta_init: str | None = None
    """Meta-training directory to reuse (resumed if unfinished), or a maml `checkpoint.pt` used as
    it is; None = `<output>/meta`."""
    allow_infeasible: bool = False
    """Run even where a tested failure disconnects the network or leaves λ* at or below an explicit
    load (such a run measures an overloaded network, not an algorithm)."""
    workers: int | None = None
    """Worker processes running (failure, controller, seed) runs in parallel; None = one per core. Never changes the results."""
    output: str = "runs/failures"
    """Output directory (curves.csv, table2.md/.csv, figures, config.json, run.json)."""

    # ------------------------------------------------------------------ derived values
    def topology_value(self):
        return cached_topology(self.topology)

    def test_links(self) -> list[tuple[str, tuple[int, ...], bool]]:
        """(label `A-B` or `A-B+C-D`, failed link ids, held out) of every tested failure, failures
        first, then held-out ones."""
        topo = self.topology_value()
        out = []
        for specs, held in zip(self.failure_specs(), (False, True)):
            for spec in specs:
                links = failure_links(topo, spec)
                out.append((failure_label(topo, links), links, held))
        return out

    def failure_specs(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(tested failures, held-out ones) as given, or the built-in's defaults where not given."""
        failures, held_out = self.failures, self.held_out
        if self.extended_tests and (not failures or not held_out):
            extended, extended_held = _builtin_links(self.topology, extended=True)
            failures, held_out = failures or tuple(extended), held_out or tuple(extended_held)
        return failures or tuple(_builtin_links(self.topology, extended=False)[0]), held_out

    @functools.cached_property
    def load_plan(self) -> LoadPlan:
        """The load used and λ* after each tested failure (`feasibility.plan_load`)."""
        return plan_load(self.load, self.topology_value(), [(label, links) for label, links, _ in self.test_links()],
                         allow_infeasible=self.allow_infeasible)

    def load_value(self) -> float:
        """The load used, packets per router per tick."""
        return self.load_plan.load

    def meta_held_out(self) -> list[str]:
        """Links never failed in meta-training: the held-out test links, and the links whose failure
        leaves λ* at or below the load (an infeasible task teaches nothing about routing)."""
        topo = self.topology_value()
        held = [link_label(topo, link) for _, links, held in self.test_links() if held for link in links]
        return list(dict.fromkeys([*held, *infeasible_links(topo, self.load_value())]))

    @property
    def deep(self) -> bool:
        """Whether any controller needs the meta-initialisation."""
        return any(c in DEEP_CONTROLLERS for c in self.controllers)

    @property
    def pretrained(self) -> tuple[str, ...]:
        """The pre-trained policies the controllers need (`intact`, `multitask`)."""
        return tuple(dict.fromkeys(PRETRAINED_POLICY[c] for c in self.controllers if c in PRETRAINED_CONTROLLERS))

    @property
    def deep_policies(self) -> bool:
        """Whether any controller is a deep policy (it needs the policy and adaptation settings)."""
        return self.deep or any(c in SCRATCH_CONTROLLERS + PRETRAINED_CONTROLLERS for c in self.controllers)

    def pretrain_budget(self) -> int:
        """Training episodes of each pre-trained comparator policy: `pretrain_episodes`, or as many
        episodes as meta-training uses (the same experience, for a fair comparison)."""
        if self.pretrain_episodes is not None:
            return self.pretrain_episodes
        maml = maml_config(self.maml, self.meta_held_out())
        return self.meta_iterations * maml.tasks_per_iteration * maml.episodes_per_task * (maml.inner_steps + 1)

    def plateau_window(self) -> int:
        return plateau_window(self.episodes)

    def resolved(self) -> dict[str, Any]:
        """The result-determining config, JSON-ready: everything but `workers` and `output`, test
        links as `A-B`, and every used controller's full settings (defaults filled in)."""
        topo = self.topology_value()
        links = self.test_links()
        resolved: dict[str, Any] = {
            "format": CONFIG_FORMAT,
            "topology": self.topology,
            "routers": topo.num_routers,
            "links": topo.num_links,
            "load": self.load_value(),
            "load_spec": self.load,
            "capacity_after_failure": {label: round(bound, 6) for label, bound in self.load_plan.capacity.items()},
            "horizon_ticks": self.horizon_ticks,
            "seeds": list(self.seeds),
            "failures": [label for label, _, held in links if not held],
            "held_out": [label for label, _, held in links if held],
            "fail_episode": self.fail_episode,
            "fail_tick": self.fail_tick,
            "episodes": self.episodes,
            "episodes_per_step": self.episodes_per_step,
            "controllers": list(self.controllers),
            "loss_penalty_ticks": self.loss_penalty_ticks,
        }
        if self.allow_infeasible:
            resolved["allow_infeasible"] = True
        if any(c.endswith("-reconverge") for c in self.controllers):
            resolved["reconvergence_delay_ticks"] = self.reconvergence_delay_ticks
        if "q-routing" in self.controllers:
            resolved["q_routing"] = dataclasses.asdict(QRoutingConfig(**dict(self.q_routing)))
        if self.deep_policies:
            resolved["adaptation"] = _dataclass_values(adaptation_config(self.adaptation, self.episodes_per_step))
            resolved["meta_excluded_infeasible"] = [link for link in self.meta_held_out() if link not in resolved["held_out"]]
            resolved["maml"] = _dataclass_values(maml_config(self.maml, self.meta_held_out()))
        if self.pretrained:
            resolved["pretrain_episodes"] = self.pretrain_budget()
            resolved["pretrain_seed"] = self.meta_seed
        if self.deep:
            resolved["meta_iterations"] = self.meta_iterations
            resolved["meta_seed"] = self.meta_seed
            resolved["meta_init"] = self.meta_init
        return json.loads(json.dumps(jsonable(resolved), allow_nan=False))

    def config_hash(self) -> str:
        return config_hash(self.resolved())

    def effective_workers(self) -> int:
        return self.workers if self.workers is not None else available_cores()

    def runs(self) -> list["Run"]:
        """Every run in canonical order: test links, controllers, seeds."""
        return [
            Run(self.topology, label, controller, int(seed))
            for label, _, _ in self.test_links()
            for controller in self.controllers
            for seed in self.seeds
        ]

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("q_routing", "adaptation", "maml"):
            out[key] = dict(getattr(self, key))
        for key in ("seeds", "failures", "held_out", "controllers"):
            out[key] = list(out[key])
        return out


def _dataclass_values(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def adaptation_config(settings: Mapping[str, Any], episodes_per_step: int, label: str = "adaptation"):
    """`AdaptationConfig` of the deep controllers from `settings` (lazy import). A deep controller
    takes one adaptation step per call, so its `episodes_per_step` is the driver's."""
    # lazy: imports torch (~1 s); only the deep controllers need it
    from mamrl.meta.adaptation import AdaptationConfig

    values = dict(settings)
    if values.get("episodes_per_step", episodes_per_step) != episodes_per_step:
        raise MamrlError(f"{label}.episodes_per_step: set by the experiment's episodes_per_step ({episodes_per_step}), "
                         f"got {values['episodes_per_step']!r}")
    if "episodes_per_step" in {f.name for f in dataclasses.fields(AdaptationConfig)}:
        values["episodes_per_step"] = episodes_per_step
    return config_from_dict(AdaptationConfig, values, label)


def maml_config(settings: Mapping[str, Any], held_out: Sequence[str] = (), label: str = "maml"):
    """`MamlConfig` from `settings`, with the held-out test links added to its held-out links."""
    # lazy: imports torch (~1 s); only meta-training needs it
    from mamrl.meta.maml import MamlConfig

    values = dict(settings)
    own = values.get("held_out", ())
    if isinstance(own, (list, tuple)):  # anything else: MamlConfig's rule names it
        values["held_out"] = tuple(dict.fromkeys([*own, *held_out]))
    return config_from_dict(MamlConfig, values, label)


def failure_links(topology: Any, spec: str) -> tuple[int, ...]:
    """The link ids of a tested failure: one link (`A-B`, a link name or id) or several failing
    together, joined by `+` (`A-B+C-D`)."""
    parts = [part.strip() for part in str(spec).split("+")]
    links = tuple(topology.link_id(part) for part in parts)
    if len(set(links)) != len(links):
        raise MamrlError(f"failure {spec!r} names a link twice")
    return tuple(sorted(links))


def failure_label(topology: Any, links: tuple[int, ...]) -> str:
    """`A-B`, or `A-B+C-D` for links failing together (link id order)."""
    return "+".join(link_label(topology, link) for link in links)


@functools.lru_cache(maxsize=16)
def cached_topology(spec: str):
    return load_topology(spec)


def _builtin_links(spec: str, *, extended: bool) -> tuple[list[str], list[str]]:
    if spec.lower() not in builtin_names():
        raise MamrlError(f"failures: topology {spec!r} is not a built-in, so it has no paper failures: name the test links")
    return extended_failure_links(spec.lower()) if extended else (paper_failure_links(spec.lower()), [])


# ------------------------------------------------------------------------------ presets and validation
PRESETS: dict[str, dict[str, Any]] = {
    # The classical controllers on b4's three paper failures: seconds. (Add the deep controllers
    # with a small `maml` budget once meta-training is cheap enough to be quick.)
    "quick": {
        "topology": "b4",
        "load": "auto",
        "horizon_ticks": 500,
        "seeds": [0, 1],
        "fail_episode": 20,
        "episodes": 200,
        "episodes_per_step": 5,
        "controllers": list(CLASSICAL_CONTROLLERS),
        "output": "runs/failures-quick",
    },
    # The paper's E2 (§4.3): λ = 0.3 where feasible, H = 500, every controller, 1000 episodes after
    # the failure so that random-init's slow adaptation (paper: 800-1000 episodes) is visible, 3
    # seeds; beside the paper's three failures, a double-link failure and two held-out links.
    "paper": {
        "topology": "b4",
        "load": "auto",
        "horizon_ticks": 500,
        "seeds": [0, 1, 2],
        "fail_episode": 20,
        "episodes": 1020,
        "episodes_per_step": 5,
        "extended_tests": True,
        "controllers": list(BENCHMARK_CONTROLLERS),
        "output": "runs/failures-paper",
    },
}
"""Named starting points; any field can be overridden by a config file or a flag."""

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FailureExperimentConfig))




def _str_list(value: Any, label: str, *, allow_empty: bool) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise MamrlError(f"{label}: expected a list, got {value!r}")
    if not value and not allow_empty:
        raise MamrlError(f"{label}: must not be empty")
    out = []
    for k, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (str, int)) or not str(item).strip():
            raise MamrlError(f"{label}[{k}]: expected a name, got {item!r}")
        text = str(item).strip()
        if text in out:
            raise MamrlError(f"{label}: {text!r} is listed twice")
        out.append(text)
    return tuple(out)


def _check_topology(value: Any, label: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MamrlError(f"{label}: expected a topology name or path, got {value!r}")
    name = value.strip()
    if name.lower() in builtin_names():
        return name.lower()
    try:
        cached_topology(name)
    except MamrlError as exc:
        raise MamrlError(f"{label}: {exc}") from None
    return name


def _check_controllers(value: Any, label: str) -> tuple[str, ...]:
    names = tuple(n.lower() for n in _str_list(value, label, allow_empty=False))
    for k, name in enumerate(names):
        if name not in CONTROLLER_NAMES:
            raise MamrlError(f"{label}[{k}]: unknown controller {name!r} (choose from {', '.join(CONTROLLER_NAMES)})")
    if len(set(names)) != len(names):
        raise MamrlError(f"{label}: a controller is listed twice")
    return names


def _check_settings(value: Any, label: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise MamrlError(f"{label}: expected a table of settings, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _check_optional_path(value: Any, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise MamrlError(f"{label}: expected a path, got {value!r}")
    return str(value)


def _check_output(value: Any, label: str) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise MamrlError(f"{label}: expected a directory name, got {value!r}")
    return str(value)


_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "topology": _check_topology,
    "load": check_load_spec,
    "allow_infeasible": Flag(),
    "horizon_ticks": integer(1, MAX_HORIZON_TICKS),
    "seeds": check_seeds,
    "failures": lambda v, label: _str_list(v, label, allow_empty=True),
    "held_out": lambda v, label: _str_list(v, label, allow_empty=True),
    "extended_tests": Flag(),
    "fail_episode": lambda v, label: check_int(v, label, 0),
    "fail_tick": lambda v, label: check_int(v, label, 0),
    "episodes": lambda v, label: check_int(v, label, 1),
    "episodes_per_step": lambda v, label: check_int(v, label, 1),
    "controllers": _check_controllers,
    "loss_penalty_ticks": Number(at_least=0),
    "reconvergence_delay_ticks": lambda v, label: check_int(v, label, 0),
    "q_routing": _check_settings,
    "adaptation": _check_settings,
    "maml": _check_settings,
    "meta_iterations": lambda v, label: check_int(v, label, 1),
    "meta_seed": SEED,
    "pretrain_episodes": integer(1, optional=True),
    "meta_init": _check_optional_path,
    "workers": lambda v, label: None if v is None else check_int(v, label, 1),
    "output": _check_output,
}


def check_fields(values: Mapping[str, Any], label: Callable[[str], str]) -> dict[str, Any]:
    """Validated, normalised values of the given fields; `label(field)` says where each came from."""
    return _check_fields(values, label, _CHECKS)


_DEFAULTS = FailureExperimentConfig()


def validate(config: FailureExperimentConfig, label: Callable[[str], str] | None = None,
             given: Collection[str] | None = None) -> FailureExperimentConfig:
    """Check every field and the relations between them (one-line `MamrlError`s naming the field).
    Settings no controller of the experiment uses are errors when they are `given` (the fields a
    user set; None = every field that differs from its default)."""
    label = label or (lambda key: key)
    checked = check_fields({f: getattr(config, f) for f in FIELD_NAMES}, label)
    config = FailureExperimentConfig(**checked)
    topo = config.topology_value()
    if config.fail_episode >= config.episodes:
        raise MamrlError(
            f"{label('fail_episode')}: the failure episode ({config.fail_episode}) must come before the end of the run "
            f"({config.episodes} episodes)"
        )
    after = config.episodes - config.fail_episode
    if after <= config.plateau_window():
        raise MamrlError(
            f"{label('episodes')}: {after} episode(s) after the failure leave nothing before the plateau window of "
            f"{config.plateau_window()} episodes; raise the episodes or lower the failure episode"
        )
    if config.fail_tick >= config.horizon_ticks:
        raise MamrlError(f"{label('fail_tick')}: {config.fail_tick} is at or after the horizon ({config.horizon_ticks} ticks)")
    seen: dict[tuple[int, ...], str] = {}
    for field_name, specs in zip(("failures", "held_out"), config.failure_specs()):
        for spec in specs:
            try:
                links = failure_links(topo, spec)
            except MamrlError as exc:
                raise MamrlError(f"{label(field_name)}: {exc}") from None
            if links in seen:
                raise MamrlError(f"{label(field_name)}: failure {failure_label(topo, links)} is listed twice "
                                 f"(as {seen[links]!r} and {spec!r})")
            for link in links:
                if topo.links[link].capacity <= 0:
                    raise MamrlError(f"{label(field_name)}: link {link_label(topo, link)} has no capacity (already down)")
            seen[links] = spec
    try:
        config.load_plan  # noqa: B018 (computes λ* after each failure; refuses an infeasible load)
    except MamrlError as exc:
        raise MamrlError(str(exc).replace("load:", f"{label('load')}:", 1)) from None
    _check_used(config, label, given)
    if "q-routing" in config.controllers:
        config_from_dict(QRoutingConfig, config.q_routing, label("q_routing"))
    maml = None
    if config.deep_policies:
        try:
            adaptation_config(config.adaptation, config.episodes_per_step, label("adaptation"))
            maml = maml_config(config.maml, config.held_out, label("maml"))
        except ImportError as exc:
            raise MamrlError(f"controllers: the deep controllers need mamrl.meta ({exc})") from None
        if config.deep:
            _check_meta_init(config.meta_init, label("meta_init"))
    meta = maml if config.deep and config.meta_init is None else None  # the experiment meta-trains first
    if meta is not None and getattr(meta, "fail_tick", 0) >= config.horizon_ticks:  # the tasks' links would never fail
        raise MamrlError(f"{label('maml')}: fail_tick {meta.fail_tick} is at or after the horizon ({config.horizon_ticks} ticks)")
    check_failure_memory(config, getattr(meta, "episodes_per_meta_iteration", 0))
    return config


def _check_used(config: FailureExperimentConfig, label: Callable[[str], str], given: Collection[str] | None) -> None:
    """Refuse settings that no controller of the experiment would use (accepted, they would be ignored)."""
    def set_by_user(key: str) -> bool:
        return key in given if given is not None else getattr(config, key) != getattr(_DEFAULTS, key)

    unused = []
    if "q-routing" not in config.controllers and set_by_user("q_routing") and config.q_routing:
        unused.append(("q_routing", "q-routing"))
    if not any(c.endswith("-reconverge") for c in config.controllers) and set_by_user("reconvergence_delay_ticks"):
        unused.append(("reconvergence_delay_ticks", "a -reconverge controller"))
    used_by = {
        "adaptation": (config.deep_policies, "a deep controller"),
        "maml": (config.deep_policies, "a deep controller"),
        "meta_iterations": (config.deep or bool(config.pretrained), "mamrl-init, continued, random-init or a pre-trained comparator"),
        "meta_seed": (config.deep or bool(config.pretrained), "mamrl-init, continued, random-init or a pre-trained comparator"),
        "meta_init": (config.deep, "mamrl-init, continued or random-init"),
        "pretrain_episodes": (bool(config.pretrained), "fine-tune, zero-shot or masked"),
    }
    unused += [(key, needs) for key, (used, needs) in used_by.items()
               if not used and set_by_user(key) and getattr(config, key) not in (None, {})]
    if unused:
        key, needs = unused[0]
        raise MamrlError(f"{label(key)}: only used with {needs}, and the controllers are {', '.join(config.controllers)}")


def _check_meta_init(path: str | None, label: str) -> None:
    """`meta_init` must name what exists: a meta-training directory (`mamrl train -a maml -o DIR`)
    or a maml checkpoint file. None = meta-train into `<output>/meta`."""
    if path is None:
        return
    target = Path(path)
    if target.is_file():
        return
    if not target.is_dir():
        raise MamrlError(f"{label}: {path!r} does not exist (name a meta-training directory or a maml checkpoint.pt; "
                         "leave it out to meta-train into <output>/meta)")
    if not (target / "config.json").is_file():
        raise MamrlError(f"{label}: {path!r} is not a meta-training directory (no config.json; "
                         "make one with `mamrl train -a maml -o DIR`)")


def build_failure_config(
    *,
    preset: str | None = None,
    file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_label: Callable[[str], str] | None = None,
) -> FailureExperimentConfig:
    """Defaults ← preset ← config file (TOML/JSON; may name `preset`) ← overrides, validated.
    Without a preset and a file, `quick` is the base."""
    values, source = layered_values(PRESETS, check_fields, preset=preset, file=file, overrides=overrides,
                                    override_label=override_label)
    given = {key for key in values if not source(key).startswith("preset ")} | set(overrides or {})
    return validate(FailureExperimentConfig(**values), source, given)


# ------------------------------------------------------------------------------ runs
@dataclass(frozen=True, order=True)
class Run:
    """One online run: a controller through all episodes of one seed, one test link failing."""

    topology: str
    failure: str
    controller: str
    seed: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.topology, self.failure, self.controller, self.seed)

    def __str__(self) -> str:
        return f"{self.topology} {self.failure} {self.controller} seed {self.seed}"

