"""Simulate one routing policy on one configuration (`mamrl simulate`, `mamrl plot-topology`):
validate a `SimulationRequest`, build what it describes, run its episodes and write the results.

Table policies (`spa`, `ecmp`, the flow oracles, `random`) run in the compiled kernel from their
routing tables; backpressure runs in its own compiled driver with per-destination queues.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mamrl import runs
from mamrl.algorithms import ALIASES, POLICY_NAMES, STATIC_POLICY_NAMES, make_agent, make_policy
from mamrl.errors import MamrlError
from mamrl.executors.base import single_threaded
from mamrl.experiments.checkpoint import LoadedAgent, is_checkpoint_spec, load_agent, resolve_checkpoint
from mamrl.experiments.config import check_positive, parse_load
from mamrl.meta.tasks import link_label
from mamrl.sim import records
from mamrl.sim.evaluate import evaluate_tables
from mamrl.sim.metrics import Estimate
from mamrl.sim.memory import check_run_memory
from mamrl.sim.params import QUEUE_DISCIPLINES, LinkFailure, SimParams, check_horizon
from mamrl.topologies.traffic_models import TrafficModel, load_with_traffic, unit_size_note
from mamrl.validate import SEED

PAPER_METRIC_NOTE = (
    "Note: the paper's delivery time averages over delivered packets only, so a policy that delivers "
    "few packets looks fast; read it beside the delivered fraction and the sojourn time of every packet created "
    "(a packet lost or still in the network at the horizon counts with its age at the horizon)."
)

SIMULATE_OPTIONS = {"load": "--load", "horizon": "--horizon", "batch": "--batch-size", "episodes": "--episodes",
                    "routers": "the topology's routers", "latency": "the topology's link latencies"}
"""The options of `mamrl simulate` that set what `memory.check_run_memory` measures."""

QUEUE_ROUTERS = ("backpressure", "sp-backpressure")
"""Policies that route by per-destination queues in their own compiled driver (not tables)."""


def describe_link(topology: Any, link: int) -> str:
    """`A-B` by router names, with the link's own name in brackets when it differs."""
    ends = link_label(topology, link)
    name = topology.link_name(link)
    return ends if name == ends else f"{ends} ({name})"


@dataclass(frozen=True)
class SimulationRequest:
    """What to simulate, as a user states it (validated by `prepare_simulation`)."""

    topology: str = "b4"
    """A built-in topology (b4, geant, att) or a topology file/directory."""
    load: str = "0.3"
    """λ: new packets per router per tick (Poisson)."""
    policy: str = "spa"
    """Routing policy: spa, ecmp, max-throughput, min-delay, backpressure, sp-backpressure or random; or a
    trained agent: a checkpoint file, a `mamrl train` run directory, or pretrained:NAME."""
    episodes: int = 20
    """Number of episodes."""
    seed: int = 0
    """Seed; episode k's traffic depends only on (seed, k)."""
    horizon_ticks: int = 500
    """Episode length in ticks."""
    failures: tuple[str, ...] = ()
    """Failed links: A-B by router names, a link name or id, optionally @TICK (default 0)."""
    reconvergence_delay_ticks: int | None = None
    """spa, ecmp, max-throughput, min-delay: recompute the tables this many ticks after a failure."""
    buffer_limit: int | None = None
    """Max packets per router queue (drop-tail); None: unbounded."""
    demand: Path | None = None
    """Demand file replacing the packet-size table."""
    demand_layout: str = "auto"
    """How the demand file's lines map to router pairs (`mamrl.topologies.DEMAND_LAYOUTS`)."""
    batch_size: int = 32
    """Episodes simulated together."""
    queue_discipline: str | None = None
    """fifo or per-destination; None: per-destination for backpressure, fifo otherwise."""
    adapt: bool = False
    """A trained deep policy (mamrl, maml) keeps adapting online while it is evaluated (Algorithm 2,
    one step per block of the default `AdaptationConfig`), instead of running frozen."""
    traffic: str = "uniform"
    """Destinations: uniform (every other router equally likely) or gravity (pair weight deg(s)·deg(d))."""
    packet_size: int | str | None = None
    """Every packet's size in capacity units, or auto (median link capacity / 40, as the paper's b4 and
    att links hold ~40 packets); default: the topology's own sizes (a demand file's, else 1)."""


@dataclass(frozen=True)
class Simulation:
    """A resolved simulation: parameters, the policy's tables (or its agent) and the config that describes them."""

    request: SimulationRequest
    params: Any  # SimParams
    tables: Any  # RoutingTables, or None for a policy run by its own driver (backpressure)
    policy: str
    config: dict[str, Any]
    failure_labels: tuple[str, ...]
    agent: Any = None
    """The RoutingAgent when `tables` is None."""
    warnings: tuple[str, ...] = field(default=())
    """Things the user should know that do not stop the run (a failure after the horizon)."""

    def title(self) -> str:
        p, r = self.params, self.request
        return (f"{p.topology.name}: λ = {p.load_per_router:g}, {self.policy}, "
                f"{r.episodes} episode{'s' if r.episodes != 1 else ''} × {p.horizon_ticks} ticks, seed {r.seed}")


ADAPTING_AGENTS = ("mamrl", "maml")
"""Checkpoints whose policy can keep adapting while evaluated (`SimulationRequest.adapt`)."""


def check_router_count(loaded: LoadedAgent, topology: Any) -> None:
    """One line if a trained agent's tables or networks are for another number of routers."""
    arrays = loaded.agent.state_arrays()
    shapes = [v.shape for k, v in arrays.items() if k in ("degree", "q_table", "theta") or k.startswith("policy.w0")]
    routers = shapes[0][0] if shapes and len(shapes[0]) else None
    if routers is not None and routers != topology.num_routers:
        raise MamrlError(f"{loaded.spec}: a {loaded.name} agent for {routers} routers cannot route {topology.name!r}, "
                         f"which has {topology.num_routers}")


def online_controller(agent: Any, topology: Any, seed: int) -> Any:
    """A trained deep agent (mamrl, or maml's meta-initialisation) as a controller that keeps
    adapting online from its weights (the failure experiment's `continued` controller)."""
    # lazy: imports torch and the meta-learning code; only --adapt needs them
    from mamrl.meta.adaptation import AdaptationConfig, DeepOnlineController

    learner = getattr(agent, "learner", agent)  # MetaLearner holds its policy in a DeepConsensus
    return DeepOnlineController("adapting", learner.policy.param_dict(), None, learner.cfg, AdaptationConfig(), topology)


def evaluation_request(spec: str, *, topology: str | None = None, load: str | None = None,
                       failures: tuple[str, ...] | None = None, horizon_ticks: int | None = None,
                       **options: Any) -> SimulationRequest:
    """The `SimulationRequest` of `mamrl evaluate SPEC`: the trained agent `spec` on `topology`,
    `load`, `failures` and `horizon_ticks`, each defaulting to its training run's (a run directory
    or a shipped policy records them) and otherwise to b4, 0.3, none and 500."""
    _, training = resolve_checkpoint(spec)
    training = training or {}
    trained_failures = tuple(str(f) for f in training.get("failures") or ())
    return SimulationRequest(
        topology=topology if topology is not None else str(training.get("topology", "b4")),
        load=load if load is not None else str(training.get("load", "0.3")),
        failures=failures if failures is not None else trained_failures,
        horizon_ticks=horizon_ticks if horizon_ticks is not None else int(training.get("horizon_ticks", 500)),
        policy=spec, **options)


def prepare_simulation(request: SimulationRequest) -> Simulation:
    """Validate the request and build the simulation it describes (raises MamrlError)."""
    r = request
    check_positive(r.episodes, "--episodes")
    check_positive(r.batch_size, "--batch-size")
    check_positive(r.horizon_ticks, "--horizon")
    check_horizon(r.horizon_ticks, "--horizon")
    if r.buffer_limit is not None:
        check_positive(r.buffer_limit, "--buffer-limit")
    SEED(r.seed, "--seed")
    load = parse_load(r.load)
    policy_key = ALIASES.get(r.policy.strip().lower(), r.policy.strip().lower())
    loaded = None
    if policy_key not in POLICY_NAMES + QUEUE_ROUTERS and is_checkpoint_spec(r.policy):
        loaded = load_agent(r.policy)
    elif r.adapt:
        raise MamrlError(f"--adapt applies to a trained deep policy (a checkpoint), not {r.policy!r}")
    if loaded is not None:
        if r.reconvergence_delay_ticks is not None:
            raise MamrlError(f"--reconvergence-delay applies to {', '.join(STATIC_POLICY_NAMES)}, not a trained agent")
        if r.adapt and loaded.name not in ADAPTING_AGENTS:
            raise MamrlError(f"--adapt applies to {', '.join(ADAPTING_AGENTS)} checkpoints, not {loaded.name}")
    elif policy_key not in POLICY_NAMES + QUEUE_ROUTERS:
        raise MamrlError(f"--policy: unknown policy {r.policy!r} (choose from {', '.join(POLICY_NAMES + QUEUE_ROUTERS)})")
    if r.queue_discipline is not None and r.queue_discipline not in QUEUE_DISCIPLINES:
        raise MamrlError(f"--queues: expected one of {', '.join(QUEUE_DISCIPLINES)}, got {r.queue_discipline!r}")
    if r.reconvergence_delay_ticks is not None:
        if policy_key not in STATIC_POLICY_NAMES:
            raise MamrlError(f"--reconvergence-delay applies to {', '.join(STATIC_POLICY_NAMES)}, not {r.policy!r}")
        if r.reconvergence_delay_ticks < 0:
            raise MamrlError(f"--reconvergence-delay must be >= 0 ticks, got {r.reconvergence_delay_ticks}")
    agent = None
    queue_discipline = r.queue_discipline
    if loaded is not None:
        if queue_discipline == "per-destination":
            raise MamrlError("--queues: trained agents route FIFO queues")
        routing = agent = loaded.agent
    elif policy_key in QUEUE_ROUTERS:
        if queue_discipline == "fifo":
            raise MamrlError(f"{policy_key} routes by per-destination queues: use --queues per-destination (or leave it out)")
        queue_discipline = "per-destination"
        routing = agent = make_agent(policy_key)
    else:
        routing = make_policy(policy_key, reconvergence_delay_ticks=r.reconvergence_delay_ticks)
    topo, demand_weights, traffic = load_with_traffic(r.topology, demand=r.demand, demand_layout=r.demand_layout,
                                                      model=TrafficModel(r.traffic, r.packet_size))
    failures = tuple(LinkFailure.parse(topo, spec) for spec in r.failures)
    seen: set[int] = set()
    for failure in failures:
        if failure.link in seen:
            raise MamrlError(f"--fail names link {topo.link_name(failure.link)!r} more than once")
        seen.add(failure.link)
    params = SimParams(topo, load, horizon_ticks=r.horizon_ticks, failures=failures, buffer_limit=r.buffer_limit,
                       demand_weights=demand_weights, queue_discipline=queue_discipline or "fifo")
    notes = tuple(f"failure of {describe_link(topo, f.link)} at tick {f.tick} is at or after the horizon "
                  f"({r.horizon_ticks} ticks) and has no effect" for f in failures if f.tick >= r.horizon_ticks)
    notes += tuple(note for note in (unit_size_note(topo),) if note)
    check_run_memory(params, min(r.batch_size, r.episodes), options=SIMULATE_OPTIONS, episodes_kept=r.episodes,
                     table_count=0 if agent is not None else 1 + len(failures), stochastic_tables=agent is None)
    tables = None if agent is not None else routing.routing_tables(params)
    config = {
        "command": "simulate",
        "topology_spec": r.topology,
        "demand_file": None if r.demand is None else str(r.demand),
        "demand_layout": r.demand_layout,
        "traffic": traffic,
        "simulation": params.describe(),
        "failures": list(r.failures),
        "policy": ({"name": routing.name, "reconvergence_delay_ticks": r.reconvergence_delay_ticks} if agent is None
                   else {"name": loaded.name, **loaded.describe(), "adapt": r.adapt} if loaded is not None
                   else {"name": routing.name, **agent.config()}),
        "episodes": r.episodes,
        "batch_size": r.batch_size,
        "seed": r.seed,
    }
    labels = tuple(f"{describe_link(topo, f.link)} @ tick {f.tick}" for f in failures)
    if loaded is not None:
        check_router_count(loaded, topo)
        policy_label = f"{loaded.name} ({loaded.spec}{', adapting' if r.adapt else ''})"
    else:
        policy_label = routing.name
    return Simulation(r, params, tables, policy_label, config, labels, agent, notes)


def run_simulation(sim: Simulation, on_episodes: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Per-episode metrics of episodes 0..episodes-1; `on_episodes(n)` after each batch of n.

    Batches are evaluated one at a time so that finished batches' states are not kept in memory.
    """
    r = sim.request
    # One torch thread: a rollout's forward passes are small batched products that threads slow
    # down (on a loaded machine by 10x and more), and results then match those of worker processes.
    if r.adapt:
        with single_threaded():
            return online_controller(sim.agent, sim.params.topology, r.seed).train(sim.params, r.seed, r.episodes,
                                                                                 on_progress=on_episodes)
    if sim.tables is None:
        with single_threaded():
            return sim.agent.evaluate(sim.params, r.seed, r.episodes, batch_size=r.batch_size, on_progress=on_episodes)
    parts: dict[str, list[np.ndarray]] = {}
    done = 0
    while done < r.episodes:
        size = min(r.batch_size, r.episodes - done)
        per_episode, _ = evaluate_tables(sim.params, sim.tables, r.seed, size, batch_size=size, first_episode=done)
        for key, values in per_episode.items():
            parts.setdefault(key, []).append(values)
        done += size
        if on_episodes is not None:
            on_episodes(size)
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def check_outputs(json_out: Path | None = None, csv_out: Path | None = None, run_dir: Path | None = None) -> None:
    """Refuse output paths that cannot be written, before any work."""
    runs.check_output_file(json_out, "--json")
    runs.check_output_file(csv_out, "--csv")
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        raise MamrlError(f"--out {str(run_dir)!r} exists and is not a directory")


def write_outputs(sim: Simulation, per_episode: dict[str, np.ndarray], summary: dict[str, Estimate], wall_time_s: float, *,
                  json_out: Path | None = None, csv_out: Path | None = None, run_dir: Path | None = None) -> list[str]:
    """Write the requested files; returns a `wrote ...` line per file."""
    written: list[str] = []
    if json_out is not None:
        runs.write_json(json_out, {"config": sim.config, "seed": sim.request.seed, **runs.provenance(),
                                   "wall_time_s": round(wall_time_s, 3), **records.metrics_document(per_episode, summary)})
        if not runs.is_stdout(json_out):
            written.append(f"wrote {json_out}")
    if csv_out is not None:
        records.write_episodes_csv(csv_out, per_episode)
        written.append(f"wrote {csv_out}")
    if run_dir is not None:
        used = records.write_run_dir(run_dir, config=sim.config, per_episode=per_episode, summary=summary,
                                     wall_time_s=wall_time_s)
        note = "" if used == run_dir else f" ({str(run_dir)!r} already holds a run)"
        written.append(f"wrote run directory {used}{note}")
    return written


__all__ = [
    "PAPER_METRIC_NOTE",
    "QUEUE_ROUTERS",
    "Simulation",
    "SimulationRequest",
    "check_outputs",
    "describe_link",
    "prepare_simulation",
    "run_simulation",
    "write_outputs",
]
