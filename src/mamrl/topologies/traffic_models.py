"""Traffic models for topologies without a demand file: where packets go, and how big they are.

A topology from the wild (Topology Zoo, topohub, networkx) describes links in bit/s and carries no
traffic. Every packet then has size 1, a link of 10 Gbit/s holds 10^10 of them, and a link
utilisation of about 1e-9 means nothing. A traffic model states both halves of the traffic:

- **Destinations** (`destinations`): `uniform` (each router's packets go to the other N−1 routers
  with equal probability, the paper's model) or `gravity` (pair (s, d) in proportion to
  deg(s)·deg(d): `gravity_demand_weights`). The network-wide rate stays λ·N packets per tick.
- **Packet size** (`packet_size_units`, in the topology's capacity units): every packet this size,
  or `"auto"`: the median link capacity / `AUTO_PACKETS_PER_LINK` (40), so that a median link holds
  40 packets at once, as a link of the paper's b4 and att holds about 40 of their mean packet size
  (5,000,000 / 123,764 and 1,200,000 / 28,095). Link utilisation and losses then mean what they
  mean on the built-in topologies. None keeps the topology's own sizes (a demand file's, else 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mamrl.errors import TopologyError
from mamrl.topologies._parsing import PathLike
from mamrl.topologies.core import PACKET_SIZE_LIMIT, PacketSizeTable, Topology
from mamrl.topologies.loaders import load_topology
from mamrl.topologies.wild import gravity_demand_weights

DESTINATION_MODELS = ("uniform", "gravity")
"""Values of `TrafficModel.destinations` (CLI `--traffic`)."""

AUTO_PACKETS_PER_LINK = 40
"""`--packet-size auto`: packets of this size fill the median link (the paper's b4 and att: ~40)."""


@dataclass(frozen=True)
class TrafficModel:
    """Traffic for a topology: destinations and packet sizes."""

    destinations: str = "uniform"
    """uniform (every other router equally likely) or gravity (pair weight deg(s)·deg(d))."""
    packet_size_units: int | str | None = None
    """Every packet's size in capacity units, or "auto" (median link capacity / 40); None: the
    topology's own sizes (its demand file's, else 1)."""

    def __post_init__(self) -> None:
        if self.destinations not in DESTINATION_MODELS:
            raise TopologyError(f"unknown traffic model {self.destinations!r} (models: {', '.join(DESTINATION_MODELS)})")
        parse_packet_size(self.packet_size_units)


def parse_packet_size(value: int | str | None) -> int | str | None:
    """`value` as a packet size: None, "auto", or a whole number of capacity units >= 1 (a string
    of digits, as the CLI passes it, included); anything else is a one-line `TopologyError`."""
    if value is None or value == "auto":
        return value
    text = str(value).strip().replace("_", "").replace(",", "")
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) < PACKET_SIZE_LIMIT:
        raise TopologyError(f"packet size must be 'auto' or a whole number of capacity units from 1 to 2**31 - 2, got {value!r}")
    return int(text)


def auto_packet_size_units(topology: Topology) -> int:
    """The median capacity of the links that carry traffic / `AUTO_PACKETS_PER_LINK`, at least 1."""
    capacities = topology.capacities[topology.capacities > 0]
    if capacities.size == 0:
        raise TopologyError(f"topology {topology.name!r} has no link of capacity > 0: no packet size fits it")
    return int(min(max(1, np.median(capacities) // AUTO_PACKETS_PER_LINK), PACKET_SIZE_LIMIT - 1))


def apply_traffic_model(topology: Topology, model: TrafficModel) -> tuple[Topology, np.ndarray | None, str]:
    """(topology with the model's packet sizes, demand weights for `SimParams`, a one-line description)."""
    size = parse_packet_size(model.packet_size_units)
    if size is not None:
        units = auto_packet_size_units(topology) if size == "auto" else int(size)
        n = topology.num_routers
        how = f"median link capacity / {AUTO_PACKETS_PER_LINK}" if size == "auto" else "stated"
        sizes = PacketSizeTable(np.full((n, n, 1), units, dtype=np.int64), f"every packet {units:,} capacity units ({how})")
        topology = topology.with_packet_sizes(sizes)
    weights = gravity_demand_weights(topology) if model.destinations == "gravity" else None
    where = ("gravity destinations (pair weight deg(s)·deg(d))" if weights is not None
             else "uniform destinations")
    if size is not None:
        sizes_text = topology.packet_sizes.provenance
    elif topology.packet_sizes is not None:  # the full provenance is in the run record's simulation.packet_sizes
        sizes_text = f"the topology's packet sizes (mean {topology.packet_sizes.mean_size:,.0f} capacity units)"
    else:
        sizes_text = "every packet 1 capacity unit (no packet sizes)"
    return topology, weights, f"{where}; {sizes_text}"


def load_with_traffic(spec: str | PathLike, *, demand: PathLike | None = None, demand_layout: str = "auto",
                      model: TrafficModel | None = None) -> tuple[Topology, np.ndarray | None, str]:
    """`load_topology(spec, demand=...)` under `model`: (topology, demand weights, description).
    A demand file and a stated packet size both set the sizes, so giving both is an error."""
    model = model or TrafficModel()
    if demand is not None and model.packet_size_units is not None:
        raise TopologyError("give --demand (packet sizes from a file) or --packet-size, not both")
    return apply_traffic_model(load_topology(spec, demand=demand, demand_layout=demand_layout), model)


def unit_size_note(topology: Topology) -> str | None:
    """A warning when packets of size 1 make link utilisation meaningless (links far wider than a
    packet: a topology from the wild, in bit/s, without a demand file), else None."""
    capacities = topology.capacities[topology.capacities > 0]
    if topology.packet_sizes is not None or capacities.size == 0 or np.median(capacities) < 1000:
        return None
    return (f"{topology.name!r} has no packet sizes: every packet is 1 unit of links of median capacity "
            f"{int(np.median(capacities)):,} units, so link utilisation is near 0 and links never limit; state a size with "
            f"--packet-size (auto: median capacity / {AUTO_PACKETS_PER_LINK}) or give --demand")


__all__ = [
    "AUTO_PACKETS_PER_LINK",
    "DESTINATION_MODELS",
    "TrafficModel",
    "apply_traffic_model",
    "auto_packet_size_units",
    "load_with_traffic",
    "parse_packet_size",
    "unit_size_note",
]
