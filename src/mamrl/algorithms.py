"""The registry of routing algorithms by name: `make_agent`, `make_policy` and the name lists.

It sits above `mamrl.agents` and `mamrl.meta` in the layer stack, since it names algorithms of
both (the deep learner's MAML meta-learner is `maml`). Each algorithm module is imported only when
its name is asked for: the deep ones import torch.
"""

from __future__ import annotations

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
from mamrl.validate import config_from_dict

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
    cfg = config_from_dict(_config_class(key), values, key)
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
    "canonical_name",
    "make_agent",
    "make_policy",
]
