"""Up-front estimates of the memory a run needs, and a one-line refusal when it cannot fit.

A load, horizon, latency, batch or router count that is merely large makes the simulator allocate
arrays of that size; numpy then fails deep inside (or the operating system kills the process). So
every command estimates the largest arrays of a run from its parameters before allocating any,
and refuses with one line saying what the run would need, what drives it and which option
lowers it. The budget is 80% of this machine's physical memory; the environment variable
`MAMRL_MEMORY_LIMIT_BYTES` replaces it (tests, shared machines).

The estimates follow the allocations of `traffic.draw_traffic`, `kernel.make_state` and the
metrics (per packet and episode: the drawn traffic, the packet array `pk`, `finished` and the
metrics' temporaries). Measured against the peak resident memory of `mamrl simulate` on b4 (32
episodes of 20,000-30,000 ticks), the estimates are 1.2x (backpressure) to 1.4x (spa, random)
the real growth; docs/model.md, "Memory", says more.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mamrl.errors import SimulationError

if TYPE_CHECKING:
    from mamrl.sim.params import SimParams

MEMORY_LIMIT_ENV = "MAMRL_MEMORY_LIMIT_BYTES"
"""Environment variable replacing the memory budget (bytes, e.g. 2e9)."""

MEMORY_SHARE = 0.8
"""Share of the machine's physical memory a run may plan to use."""

BYTES_PER_PACKET = 120
"""Bytes per packet of every episode in flight: traffic (20), the packet state `pk` (56) and
`finished` (4), and the draw's and the metrics' per-packet temporaries (measured: 82 bytes at the
peak of `mamrl simulate` on b4, 32 episodes of 20,000 ticks at λ = 0.5)."""

PER_DESTINATION_FIXED_COLUMNS = 24
"""Columns of a router's per-destination state besides its 3 per destination and its bit mask:
`kernel.RT_FIELDS + kernel.DX_MASK` (not imported: the kernel's traffic draw imports this module;
tests/test_hostile_inputs.py checks the sum against `kernel.router_width`)."""

BYTES_PER_METRIC_EPISODE = 8 * 32
"""Bytes per episode of kept per-episode results (about 30 float64 metrics)."""


@dataclass(frozen=True)
class MemoryPart:
    """One large allocation of a run."""

    what: str
    """What is allocated ("packets", "arrival wheel"...)."""
    bytes: float
    """Estimated bytes."""
    why: str
    """The quantities that make it this large, e.g. `load 0.3 × 500 ticks × 12 routers × 32 episodes at once`."""
    drivers: tuple[str, ...]
    """Keys of the quantities the user can lower: load, horizon, episodes, batch, routers, latency, samples."""


def machine_memory_bytes() -> float:
    """Physical memory of this machine in bytes (0 when unknown)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 0.0


def memory_budget() -> tuple[float, str]:
    """(bytes a run may use, a description of where that limit comes from)."""
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if text:
        try:
            limit = float(text)
        except ValueError:
            raise SimulationError(f"{MEMORY_LIMIT_ENV} must be a number of bytes, got {text[:40]!r}") from None
        if not math.isfinite(limit) or limit <= 0:
            raise SimulationError(f"{MEMORY_LIMIT_ENV} must be a number of bytes > 0, got {text[:40]!r}")
        return limit, f"the limit {MEMORY_LIMIT_ENV}={text}"
    total = machine_memory_bytes()
    if total <= 0:
        return math.inf, "no limit: this machine's memory is unknown"
    return MEMORY_SHARE * total, f"{MEMORY_SHARE:.0%} of this machine's {format_bytes(total)}"


def format_bytes(value: float) -> str:
    """`37 GB`, `512 MB`, `1.2e+04 TB` (decimal units)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            number = value / size
            return f"{number:.3g} {unit}" if number < 1e4 else f"{number:.2g} {unit}"
    return f"{value:.0f} B"


def _n(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) and value < 10**7 else f"{value:.3g}"


def expected_packets(params: "SimParams") -> float:
    """Packets of the fullest episode to expect: the Poisson mean plus six standard deviations."""
    mean = params.load_per_router * params.topology.num_routers * float(params.horizon_ticks)
    return mean + 6.0 * math.sqrt(mean) + 1.0


def simulation_parts(
    params: "SimParams",
    episodes_at_once: int,
    *,
    table_count: int = 0,
    stochastic_tables: bool = False,
    learner_bytes_per_router_tick: float = 0.0,
    episodes_kept: int = 0,
) -> list[MemoryPart]:
    """The large allocations of running `episodes_at_once` episodes of `params` together.

    `table_count`: routing tables [N, N, K] held (table policies; 0 = none); `stochastic_tables`:
    they draw a uniform per router and tick; `learner_bytes_per_router_tick`: what a learner
    records per (tick, episode, router) of a rollout; `episodes_kept`: per-episode results held.
    """
    topo = params.topology
    n, h, b = topo.num_routers, int(params.horizon_ticks), int(episodes_at_once)
    at_once = f"{_n(b)} episode{'s' if b != 1 else ''} at once"
    packets = expected_packets(params)
    parts = [
        MemoryPart("packets", BYTES_PER_PACKET * packets * b,
                   f"load {params.load_per_router:g} packets/router/tick × {_n(h)} ticks × {_n(n)} routers × {at_once}",
                   ("load", "horizon", "batch")),
        MemoryPart("per-tick totals", 40.0 * h * b, f"{_n(h)} ticks × {at_once}", ("horizon", "batch")),
        # The metrics' stretch divides by `Topology.shortest_latency_ticks`, float64 [N, N].
        MemoryPart("all-pairs latencies", 8.0 * n * n, f"{_n(n)} routers × {_n(n)} routers", ("routers",)),
    ]
    max_latency = int(topo.latencies.max())
    wheel = 1 << max_latency.bit_length()
    parts.append(MemoryPart("arrival wheel", 8.0 * wheel * b,
                            f"{wheel:.3g} arrival slots (the largest link latency is {_n(max_latency)} ticks) × {at_once}",
                            ("latency", "batch")))
    if params.queue_discipline == "per-destination":
        width = PER_DESTINATION_FIXED_COLUMNS + 3 * n + (n + 63) // 64  # = kernel.router_width(n, True)
        parts.append(MemoryPart("per-destination queues", 8.0 * n * width * b,
                                f"{_n(n)} routers × {_n(n)} destinations × {at_once}", ("routers", "batch")))
    if table_count:
        k = topo.max_degree
        # Per table: the probabilities, their cumulative sums and normalised copy, a temporary
        # (float64 [N, N, K] each) and the policies' [N, N] distance and next-hop arrays.
        parts.append(MemoryPart("routing tables", 8.0 * table_count * n * n * (4 * k + 2),
                                f"{table_count} table(s) of {_n(n)} routers × {_n(n)} destinations × {k} neighbours", ("routers",)))
    if stochastic_tables:
        parts.append(MemoryPart("routing draws", 8.0 * b * h * n, f"{_n(h)} ticks × {_n(n)} routers × {at_once}",
                                ("horizon", "batch")))
    if learner_bytes_per_router_tick:
        parts.append(MemoryPart("rollout record", learner_bytes_per_router_tick * h * b * n,
                                f"{_n(h)} ticks × {_n(n)} routers × {at_once}", ("horizon", "batch")))
    if episodes_kept:
        parts.append(MemoryPart("per-episode results", float(BYTES_PER_METRIC_EPISODE) * episodes_kept,
                                f"{_n(episodes_kept)} episodes", ("episodes",)))
    return parts


def check_memory(parts: Sequence[MemoryPart], *, options: Mapping[str, str] | None = None, copies: int = 1,
                 what: str = "this run") -> float:
    """Refuse (`SimulationError`, one line) when `copies` × the parts exceed the budget; returns the bytes.

    `options` maps a driver key (`MemoryPart.drivers`) to the option that sets it, e.g.
    `{"load": "--load", "horizon": "--horizon", "batch": "--batch-size"}`; the message names them.
    """
    total = copies * sum(part.bytes for part in parts)
    limit, source = memory_budget()
    if total <= limit:
        return total
    largest = max(parts, key=lambda part: part.bytes)
    names = {"load": "the load", "horizon": "the horizon", "batch": "the episodes run at once", "episodes": "the episodes",
             "routers": "the number of routers", "latency": "the links' latencies", "samples": "the samples"}
    flags = [options[key] if options and key in options else names.get(key, key) for key in largest.drivers]
    flags = list(dict.fromkeys(flags))
    lower = flags[0] if len(flags) == 1 else ", ".join(flags[:-1]) + " or " + flags[-1]
    workers = f" ({copies} workers × {format_bytes(total / copies)})" if copies > 1 else ""
    raise SimulationError(
        f"{what} would need ~{format_bytes(total)} of memory{workers}, more than {format_bytes(limit)} ({source}); "
        f"most of it {largest.what}: {format_bytes(largest.bytes)} ({largest.why}); lower {lower}"
    )


def agent_parts(params: "SimParams", agent: object, *, train_episodes_at_once: int = 0, eval_params: "SimParams | None" = None,
                eval_episodes_at_once: int = 0, episodes_kept: int = 0) -> list[MemoryPart]:
    """The larger of an agent's training phase (its rollouts, `rollout_bytes_per_router_tick`) and
    its evaluation phase (routing tables, one random draw per router and tick), with the
    per-episode results kept; phases run one after the other, so they do not add up."""
    phases = []
    if train_episodes_at_once:
        phases.append(simulation_parts(params, train_episodes_at_once, table_count=1,
                                       learner_bytes_per_router_tick=float(getattr(agent, "rollout_bytes_per_router_tick", 0.0))))
    if eval_episodes_at_once:
        phases.append(simulation_parts(eval_params or params, eval_episodes_at_once, table_count=1, stochastic_tables=True))
    parts = max(phases, key=lambda phase: sum(part.bytes for part in phase)) if phases else []
    if episodes_kept:
        parts.append(MemoryPart("per-episode results", float(BYTES_PER_METRIC_EPISODE) * episodes_kept,
                                f"{_n(episodes_kept)} episodes", ("episodes",)))
    return parts


def check_run_memory(params: "SimParams", episodes_at_once: int, *, options: Mapping[str, str] | None = None,
                     copies: int = 1, what: str = "this run", **kwargs: object) -> float:
    """`check_memory(simulation_parts(params, episodes_at_once, **kwargs))`: the usual call."""
    return check_memory(simulation_parts(params, episodes_at_once, **kwargs), options=options, copies=copies, what=what)  # type: ignore[arg-type]


__all__ = [
    "BYTES_PER_PACKET",
    "MEMORY_LIMIT_ENV",
    "MEMORY_SHARE",
    "MemoryPart",
    "agent_parts",
    "check_memory",
    "check_run_memory",
    "expected_packets",
    "format_bytes",
    "machine_memory_bytes",
    "memory_budget",
    "simulation_parts",
]
