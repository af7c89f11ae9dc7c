"""The packet-level simulator: parameters, traffic, the compiled core, metrics and the oracle."""

from mamrl.sim.params import LinkFailure, SimParams
from mamrl.sim.simulator import BatchResult, Observation, RoutingTables, Simulator, StepEvents
from mamrl.sim.traffic import Traffic, draw_policy_uniforms, draw_traffic

__all__ = [
    "BatchResult",
    "LinkFailure",
    "Observation",
    "RoutingTables",
    "SimParams",
    "Simulator",
    "StepEvents",
    "Traffic",
    "draw_policy_uniforms",
    "draw_traffic",
]
