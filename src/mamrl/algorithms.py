"""The registry of routing algorithms by name: `make_agent`, `make_policy` and the name lists.

It sits above `mamrl.agents` and `mamrl.meta` in the layer stack, since it names algorithms of
both (the deep learner's MAML meta-learner is `maml`). Each algorithm module is imported only when
its name is asked for: the deep ones import torch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mamrl.agents import RoutingAgent, TableAgent, TablePolicy
from mamrl.agents.backpressure import SP_BACKPRESSURE_BIAS, Backpressure, BackpressureConfig
from mamrl.agents.ecmp import EcmpPolicy
from mamrl.agents.max_throughput import MaxThroughputPolicy
from mamrl.agents.min_delay import MinDelayPolicy
from mamrl.agents.policy_gradient import PolicyGradient, PolicyGradientConfig
from mamrl.agents.q_routing import QRouting, QRoutingConfig
from mamrl.agents.random_policy import UniformRandomPolicy
from mamrl.agents.shortest_path import ShortestPathPolicy
from mamrl.errors import MamrlError

POLICY_NAMES = ("spa", "ecmp", "max-throughput", "min-delay", "random")
"""Table-driven policies (`make_policy`)."""
STATIC_POLICY_NAMES = ("spa", "ecmp", "max-throughput", "min-delay")
"""Table policies that can re-converge after a failure (`reconvergence_delay_ticks`)."""
BELOW_CAPACITY_ONLY = ("max-throughput", "min-delay")
"""Oracles computed for a load below the capacity limit λ*; at or above it they do not exist."""
ALGORITHM_NAMES = (
    "spa", "ecmp", "max-throughput", "min-delay", "random", "backpressure", "sp-backpressure", "q-routing", "pg", "mamrl",
    "maml", "multitask",
)
ALIASES = {
    "shortest-path": "spa",
    "bp": "backpressure",
    "sp-bp": "sp-backpressure",
    "q": "q-routing",
    "qrouting": "q-routing",
    "policy-gradient": "pg",
    "deep-consensus": "mamrl",
}


def make_policy(name: str, *, reconvergence_delay_ticks: int | None = None) -> TablePolicy:
    """A table-driven routing policy by name (`POLICY_NAMES`), with its default settings.

    `reconvergence_delay_ticks` (spa, ecmp, max-throughput, min-delay): recompute the tables on
    the failed network that many ticks after a failure; None = never react."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in POLICY_NAMES:
        raise MamrlError(f"unknown policy {name!r} (choose from {', '.join(POLICY_NAMES)})")
    if key == "random":
        if reconvergence_delay_ticks is not None:
            raise MamrlError("the random policy does not re-converge (reconvergence delay given)")
        return UniformRandomPolicy()
    return _config_class(key)(reconvergence_delay_ticks=reconvergence_delay_ticks)


def _config_class(key: str):
    if key in ("backpressure", "sp-backpressure"):
        return BackpressureConfig
    if key == "mamrl":
        # lazy: imports torch (~1 s); only the deep learner needs it
        from mamrl.agents.deep_consensus import DeepConsensusConfig

        return DeepConsensusConfig
    if key == "maml":
        # lazy: imports torch (~1 s); only meta-training needs it
        from mamrl.meta.maml import MamlConfig

        return MamlConfig
    if key == "multitask":
        # lazy: imports torch (~1 s); only the multi-task learner needs it
        from mamrl.meta.multitask import MultiTaskConfig

        return MultiTaskConfig
    return {
        "spa": ShortestPathPolicy,
        "ecmp": EcmpPolicy,
        "max-throughput": MaxThroughputPolicy,
        "min-delay": MinDelayPolicy,
        "q-routing": QRoutingConfig,
        "pg": PolicyGradientConfig,
    }.get(key)


def build_config(cls, values: dict[str, Any], where: str):
    """A config dataclass from a dict, with one-line errors naming unknown or mistyped fields."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    coerced: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise MamrlError(f"{where}: unknown field {key!r} (known: {', '.join(fields)})")
        coerced[key] = _coerce(fields[key].default, value, f"{where}.{key}")
    return cls(**coerced)


def _coerce(default: Any, value: Any, where: str) -> Any:
    """`value` checked against the type of the field's default (bool, int, float, str, tuple)."""
    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise MamrlError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MamrlError(f"{where}: expected a number, got {value!r}")
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise MamrlError(f"{where}: expected an integer, got {value!r}")
            return int(value)
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise MamrlError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise MamrlError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(default[0], v, where) for v in value) if default else tuple(value)
    return value


def canonical_name(name: str) -> str:
    key = ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in ALGORITHM_NAMES:
        raise MamrlError(f"unknown algorithm {name!r} (choose from {', '.join(ALGORITHM_NAMES)})")
    return key


def make_agent(name: str, config: dict[str, Any] | None = None) -> RoutingAgent:
    """A routing algorithm by name (`ALGORITHM_NAMES`) with optional config values."""
    key = canonical_name(name)
    values = dict(config or {})
    if key == "random":
        if values:
            raise MamrlError(f"algorithm 'random' takes no configuration, got {sorted(values)}")
        return TableAgent(UniformRandomPolicy())
    if key == "sp-backpressure":
        values.setdefault("bias_packets_per_hop", SP_BACKPRESSURE_BIAS)
    cfg = build_config(_config_class(key), values, key)
    if key in ("backpressure", "sp-backpressure"):
        return Backpressure(cfg, name=key)
    if key in STATIC_POLICY_NAMES:
        return TableAgent(cfg)
    if key == "mamrl":
        # lazy: imports torch (~1 s); only the deep learner needs it
        from mamrl.agents.deep_consensus import DeepConsensus

        return DeepConsensus(cfg)
    if key == "maml":
        # lazy: imports torch (~1 s); only meta-training needs it
        from mamrl.meta.maml import MetaLearner

        return MetaLearner(cfg)
    if key == "multitask":
        # lazy: imports torch (~1 s); only the multi-task learner needs it
        from mamrl.meta.multitask import MultiTaskLearner

        return MultiTaskLearner(cfg)
    return QRouting(cfg) if key == "q-routing" else PolicyGradient(cfg)


__all__ = [
    "ALGORITHM_NAMES",
    "ALIASES",
    "BELOW_CAPACITY_ONLY",
    "POLICY_NAMES",
    "STATIC_POLICY_NAMES",
    "build_config",
    "canonical_name",
    "make_agent",
    "make_policy",
]
