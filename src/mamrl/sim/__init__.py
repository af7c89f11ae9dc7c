"""The packet-level simulator: parameters, traffic, the compiled core, metrics and the oracle."""

from mamrl.sim.params import QUEUE_DISCIPLINES, LinkFailure, SimParams, require_fifo
from mamrl.sim.simulator import BatchResult, Observation, RoutingTables, Simulator, StepEvents
from mamrl.sim.traffic import Traffic, draw_policy_uniforms, draw_traffic

__all__ = [
    "BatchResult",
    "LinkFailure",
    "QUEUE_DISCIPLINES",
    "Observation",
    "RoutingTables",
    "SimParams",
    "Simulator",
    "StepEvents",
    "Traffic",
    "draw_policy_uniforms",
    "draw_traffic",
    "require_fifo",
]
