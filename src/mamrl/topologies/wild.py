"""Topologies from the wild: Topology Zoo GraphML/GML, networkx node-link JSON, topohub; gravity traffic.

Real topology files describe routers and links, not the simulator's parameters, so this module
derives them and says (with a `TopologyWarning`) whenever it has to fall back to a default:

- **Routers** are the graph's nodes in file order, named by their `label` attribute (Topology Zoo),
  else their `name` attribute (networkx node-link, topohub), when it is present on every node and
  unique; otherwise by node id.
- **Links** are undirected. Parallel edges are merged into one link (capacities added, the
  smallest latency kept) and self-loops dropped, each with a warning. In a directed graph the two
  directions of a pair are one link (the larger capacity, the smaller latency), with a warning.
- **Capacity** (in the simulator's capacity units) from the first edge attribute present of
  `capacity`, `bandwidth` (both already in capacity units), `LinkSpeedRaw` (bit/s) and
  `LinkSpeed` + `LinkSpeedUnits` (`"10"` + `"G"` = 10 Gbit/s), and Topology Zoo's free-text
  `LinkLabel` (`"OC-192"`, `"STM-4"`, `"10GE"`, `"2 x 10 Gbps"`, `"T3"`, ...: `label_bps`); bit/s are divided by
  `ImportSettings.capacity_unit_bps` (default 1: one capacity unit per bit/s). A link without one
  gets `default_capacity`, else the median capacity of the file's other links, else 1 Gbit/s.
- **Latency** in whole ticks from `latency_ticks` (ticks), `latency` or `delay` (milliseconds),
  else from the link's length: `dist` (km, as topohub stores it) or the great-circle distance
  between the ends' `Latitude`/`Longitude` (degrees, Topology Zoo), at `propagation_km_per_ms`
  (default 200 km/ms, light in fibre) with one tick = `tick_ms` (default 1 ms), rounded up, at
  least 1 tick. A link with none of these gets `default_latency_ticks` (default 3, the paper's
  value).
- **Failure probability** from `failure_prob`, else `ImportSettings.failure_prob` (default 0).
- **Coordinates** (x, y) = (longitude, latitude) when every node has `Latitude`/`Longitude`,
  else `pos` when every node has one (topohub: (longitude, latitude)), else none. They are
  marked geographic (`Topology.geographic`, so plots draw a map) when they come from
  `Latitude`/`Longitude`, or from `pos` in a graph whose attribute `geographic` is true (as
  `Topology.to_networkx()` writes it, and as `load_topohub` sets it for every group but the
  synthetic `gabriel` graphs).

No packet sizes are read (the simulator's default then applies: every packet has size 1), and no
traffic matrix: `gravity_demand_weights` gives a documented default, and
`mamrl.topologies.traffic_models` states a whole traffic model (destinations and a packet size). The formats are described
in docs/topologies.md, section "Topologies from the wild".
"""

from __future__ import annotations

import difflib
import json
import math
import re
import statistics
import sys
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Sequence

import networkx as nx
import numpy as np

from mamrl.errors import TopologyError
from mamrl.topologies._parsing import PathLike, _fail, _loads, _number, _one_line, _read_text, _warn
from mamrl.topologies._parsing import TopologyWarning as TopologyWarning  # public here; defined there as demand files warn too
from mamrl.topologies.core import INT64_MAX, Link, Topology

TOPOHUB_PREFIX = "topohub:"
"""`load_topology("topohub:GROUP/NAME")` loads a topology of the optional `topohub` package."""

EARTH_RADIUS_KM = 6371.0
"""Mean Earth radius used for great-circle link lengths."""

DEFAULT_PROPAGATION_KM_PER_MS = 200.0
"""Signal speed in optical fibre, about c / 1.5."""

DEFAULT_TICK_MS = 1.0
"""Real time of one simulator tick when latencies are derived from milliseconds or lengths."""

DEFAULT_LATENCY_TICKS = 3
"""Latency of a link with neither a latency attribute nor a length (the paper's usual value)."""

DEFAULT_CAPACITY_BPS = 1e9
"""Capacity of a link without a capacity attribute when no other link of the file has one."""

_SPEED_MULTIPLIERS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_TOPOHUB_KEY = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+")
_NODE_LINK_KEYS = {"directed", "multigraph", "graph", "nodes", "links", "edges"}


@dataclass(frozen=True)
class ImportSettings:
    """How attributes of a topology file become simulator parameters (module docstring)."""

    capacity_unit_bps: float = 1.0
    """Bit/s per capacity unit: `LinkSpeedRaw` (bit/s) / this = capacity. Packet sizes (a demand
    file) are in the same unit, so e.g. 8 makes capacities bytes-per-second and sizes bytes."""
    default_capacity: int | None = None
    """Capacity of links without one; None = the median of the file's other links, else 1 Gbit/s."""
    default_latency_ticks: int = DEFAULT_LATENCY_TICKS
    """Latency of links with neither a latency attribute nor a length."""
    tick_ms: float = DEFAULT_TICK_MS
    """Milliseconds per tick, to convert `latency`/`delay` (ms) and lengths to ticks."""
    propagation_km_per_ms: float = DEFAULT_PROPAGATION_KM_PER_MS
    """Propagation speed turning a link length into a delay."""
    failure_prob: float = 0.0
    """Failure probability of links without a `failure_prob` attribute."""

    def __post_init__(self) -> None:
        for key in ("capacity_unit_bps", "tick_ms", "propagation_km_per_ms"):
            value = getattr(self, key)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not 0 < value <= sys.float_info.max:  # false for nan, inf and ints beyond float range
                raise TopologyError(f"ImportSettings.{key} must be a finite number > 0, got {str(value)[:40]}")
        if self.default_capacity is not None and (
            isinstance(self.default_capacity, bool) or not isinstance(self.default_capacity, int)
            or not 0 <= self.default_capacity <= INT64_MAX
        ):
            raise TopologyError(
                f"ImportSettings.default_capacity must be an integer >= 0 and < 2**63, or None, got {self.default_capacity!r}"
            )
        lat = self.default_latency_ticks
        if isinstance(lat, bool) or not isinstance(lat, int) or lat < 1:
            raise TopologyError(f"ImportSettings.default_latency_ticks must be an integer >= 1, got {lat!r}")
        prob = self.failure_prob
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
            raise TopologyError(f"ImportSettings.failure_prob must be in [0, 1], got {prob!r}")


# ---------------------------------------------------------------------------- distances and units
def great_circle_km(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle (haversine) distance in km on a sphere of radius `EARTH_RADIUS_KM`."""
    phi1, phi2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dphi, dlmb = phi2 - phi1, math.radians(lon2_deg - lon1_deg)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def ms_to_ticks(delay_ms: float, tick_ms: float = DEFAULT_TICK_MS) -> int:
    """A delay in ms as whole ticks: rounded up, at least 1 (a relative 1e-9 slack absorbs float noise)."""
    ticks = delay_ms / tick_ms * (1.0 - 1e-9)
    if not ticks <= INT64_MAX:  # also false for inf and nan
        raise TopologyError(f"a delay of {delay_ms:g} ms is {ticks:.4g} ticks of {tick_ms:g} ms, more than 2**63 - 1")
    return max(1, math.ceil(ticks))


def length_to_ticks(
    length_km: float,
    *,
    tick_ms: float = DEFAULT_TICK_MS,
    propagation_km_per_ms: float = DEFAULT_PROPAGATION_KM_PER_MS,
) -> int:
    """Propagation delay of a link of `length_km` in whole ticks (rounded up, at least 1)."""
    return ms_to_ticks(length_km / propagation_km_per_ms, tick_ms)


# ---------------------------------------------------------------------------- attribute parsing
def _value(value: Any, what: str, where: object) -> float:
    """A finite number from a graph attribute (GraphML gives floats, JSON numbers or strings)."""
    if isinstance(value, (np.integer, np.floating)):
        value = float(value)
    if isinstance(value, str):
        value = value.strip()
    return _number(value, what, where, text=True)


def _speed_bps(data: dict[str, Any], what: str, where: object) -> float | None:
    """Topology Zoo's `LinkSpeed` + `LinkSpeedUnits` in bit/s, or None if one of them is absent."""
    speed, units = data.get("LinkSpeed"), data.get("LinkSpeedUnits")
    if speed is None or units is None:
        return None
    prefix = str(units).strip().upper()[:1]
    if prefix == "B":  # "bps"
        prefix = ""
    value = _value(speed, f"{what}: LinkSpeed", where)
    if prefix not in _SPEED_MULTIPLIERS:
        _fail(where, f"{what}: LinkSpeedUnits {str(units)[:20]!r} is not one of bps, K, M, G, T")
    return value * _SPEED_MULTIPLIERS[prefix]


_NAMED_SPEEDS_BPS = {
    "T1": 1.544e6, "DS1": 1.544e6, "E1": 2.048e6, "T3": 44.736e6, "DS3": 44.736e6, "E3": 34.368e6,
    "FASTETHERNET": 1e8, "FE": 1e8, "GIGE": 1e9, "GBE": 1e9, "GIGABITETHERNET": 1e9, "10GIGE": 1e10,
}
_LABEL_COUNT = re.compile(r"^(\d+)\s*[X*×]\s*(.+)$")
_LABEL_SONET = re.compile(r"^(OC|STM)-?(\d+)[A-Z]*$")
_LABEL_RATE = re.compile(r"^(\d+(?:[.,]\d+)?)\s*([KMGT])?\s*(?:B(?:PS|IT/?S|ITS?|/S)?|E|GE|IGE|ETHERNET|BE)?$")


def label_bps(label: object) -> float | None:
    """The bit rate of a Topology Zoo `LinkLabel`, or None if it names none: SONET/SDH
    (`OC-n` = n × 51.84 Mbit/s, `STM-n` = n × 155.52 Mbit/s), Ethernet and plain rates (`10GE`,
    `1 Gbps`, `2.5G`, `155 Mb/s`, `GigE`, `Fast Ethernet`), T/E carriers (`T1`, `DS3`, `E3`),
    each optionally multiplied (`2 x 10G`)."""
    text = str(label).strip().upper()
    count = 1
    repeated = _LABEL_COUNT.match(text)
    if repeated:
        count, text = int(repeated.group(1)), repeated.group(2).strip()
    compact = re.sub(r"[\s_]+", "", text)
    if compact in _NAMED_SPEEDS_BPS:
        return count * _NAMED_SPEEDS_BPS[compact]
    sonet = _LABEL_SONET.match(compact)
    if sonet:
        return count * int(sonet.group(2)) * (51.84e6 if sonet.group(1) == "OC" else 155.52e6)
    rate = _LABEL_RATE.match(text.replace(" ", ""))
    if rate and rate.group(2):  # a bare number has no unit: not a rate
        return count * float(rate.group(1).replace(",", ".")) * _SPEED_MULTIPLIERS[rate.group(2)]
    return None


def _edge_capacity(data: dict[str, Any], settings: ImportSettings, what: str, where: object) -> int | None:
    """Capacity in units from an edge's attributes, or None when it has none."""
    for key in ("capacity", "bandwidth"):
        if key in data:
            units = _value(data[key], f"{what}: {key}", where)
            shown = units
            break
    else:
        if "LinkSpeedRaw" in data:
            key = "LinkSpeedRaw"
            bps = _value(data[key], f"{what}: {key}", where)
        else:
            key = "LinkSpeed"
            bps = _speed_bps(data, what, where)
            if bps is None and "LinkLabel" in data:
                key = "LinkLabel"
                bps = label_bps(data["LinkLabel"])
            if bps is None:
                return None
        units, shown = bps / settings.capacity_unit_bps, bps
    if units < 0:
        _fail(where, f"{what}: {key} must be >= 0, got {shown:g}; fix the file (0 means the link is always down)")
    if not units <= INT64_MAX:  # also false for inf, from a huge speed over a tiny capacity_unit_bps
        in_units = "" if units == shown else f" bit/s, {units:.4g} capacity units,"
        _fail(where, f"{what}: {key} {shown:g}{in_units} is more than 2**63 - 1")
    return max(1, round(units)) if units > 0 else 0


def _edge_latency(data: dict[str, Any], settings: ImportSettings, what: str, where: object) -> int | None:
    """Latency in ticks from an edge's latency attributes or `dist` (km), or None."""
    if "latency_ticks" in data:
        ticks = _value(data["latency_ticks"], f"{what}: latency_ticks", where)
        if ticks != int(ticks) or ticks < 1:
            _fail(where, f"{what}: latency_ticks must be an integer >= 1, got {data['latency_ticks']!r}")
        return int(ticks)
    for key in ("latency", "delay"):
        if key in data:
            delay_ms = _value(data[key], f"{what}: {key}", where)
            if delay_ms < 0:
                _fail(where, f"{what}: {key} must be >= 0 ms, got {data[key]!r}")
            return _ticks(delay_ms, settings, f"{what}: {key}", where)
    if "dist" in data:
        km = _value(data["dist"], f"{what}: dist", where)
        if km < 0:
            _fail(where, f"{what}: dist must be >= 0 km, got {data['dist']!r}")
        return _ticks(km / settings.propagation_km_per_ms, settings, f"{what}: dist", where)
    return None


def _ticks(delay_ms: float, settings: ImportSettings, what: str, where: object) -> int:
    """`ms_to_ticks`, its error for a delay beyond 64-bit ticks naming the file and the link."""
    try:
        return ms_to_ticks(delay_ms, settings.tick_ms)
    except TopologyError as exc:
        _fail(where, f"{what}: {exc}")


def _failure_prob(data: dict[str, Any], settings: ImportSettings, what: str, where: object) -> float:
    if "failure_prob" not in data:
        return settings.failure_prob
    prob = _value(data["failure_prob"], f"{what}: failure_prob", where)
    if not 0.0 <= prob <= 1.0:
        _fail(where, f"{what}: failure_prob must be in [0, 1], got {data['failure_prob']!r}")
    return prob


def _router_names(graph: nx.Graph, nodes: list[Any], where: object, notes: list[str]) -> tuple[str, ...]:
    for attr in ("label", "name"):
        values = [graph.nodes[node].get(attr) for node in nodes]
        if all(v is None for v in values):
            continue
        names = [str(v).strip() if v is not None else "" for v in values]
        if all(names) and len(set(names)) == len(names):
            return tuple(names)
        blank = next((str(node) for node, x in zip(nodes, names) if not x), None)
        if blank is not None:
            why = f"node {blank!r} has none"
        else:
            why = f"duplicate router name {next(x for i, x in enumerate(names) if x in names[:i])!r}"
        notes.append(f"{where}: node {attr}s are missing or not unique; routers are named by node id ({why})")
        break
    return tuple(str(node) for node in nodes)


def _geo(graph: nx.Graph, nodes: list[Any], names: tuple[str, ...], where: object) -> list[tuple[float, float] | None]:
    """(latitude, longitude) in degrees per node, None where a node has no `Latitude`/`Longitude`."""
    out: list[tuple[float, float] | None] = []
    for node, name in zip(nodes, names):
        data = graph.nodes[node]
        if "Latitude" not in data or "Longitude" not in data:
            out.append(None)
            continue
        lat = _value(data["Latitude"], f"router {name!r}: Latitude", where)
        lon = _value(data["Longitude"], f"router {name!r}: Longitude", where)
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 360.0):
            _fail(where, f"router {name!r}: Latitude {lat:g} / Longitude {lon:g} are not degrees on Earth")
        out.append((lat, lon))
    return out


def _positions(graph: nx.Graph, nodes: list[Any], names: tuple[str, ...], where: object) -> list[tuple[float, float]] | None:
    """`pos` (x, y) per node when every node has one, else None."""
    values = [graph.nodes[node].get("pos") for node in nodes]
    if any(v is None for v in values):
        return None
    out = []
    for value, name in zip(values, names):
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            _fail(where, f"router {name!r}: pos must be an (x, y) pair, got {str(value)[:40]!r}")
        out.append((_value(value[0], f"router {name!r}: pos", where), _value(value[1], f"router {name!r}: pos", where)))
    return out


# ---------------------------------------------------------------------------- graph -> Topology
@dataclass
class _Group:
    """The edges between one pair of routers, per direction (None for undirected)."""

    a: int
    b: int
    name: str | None
    capacities: dict[Any, list[int | None]]
    latencies: dict[Any, list[int | None]]
    failure_prob: float


def topology_from_graph(
    graph: nx.Graph,
    name: str,
    settings: ImportSettings | None = None,
    *,
    where: object | None = None,
) -> Topology:
    """A Topology from a networkx graph with Topology Zoo / node-link / topohub attributes.

    The rules are in the module docstring. `where` names the source in errors and warnings
    (default: `name`). Warnings are `TopologyWarning`s; errors `TopologyError`s of one line.
    """
    settings = settings or ImportSettings()
    where = name if where is None else where
    notes: list[str] = []  # warnings, given only once the topology is valid
    nodes = list(graph.nodes)
    if len(nodes) < 2:
        _fail(where, f"has {len(nodes)} router(s); a topology needs at least 2 routers joined by links")
    index = {node: i for i, node in enumerate(nodes)}
    names = _router_names(graph, nodes, where, notes)
    geo = _geo(graph, nodes, names, where)
    if all(g is not None for g in geo):
        coordinates: list[tuple[float, float]] | None = [(lon, lat) for lat, lon in geo]  # type: ignore[misc]
        geographic = True
    else:
        coordinates = _positions(graph, nodes, names, where)
        # GraphML keeps a bool, GML writes 1, JSON true: accept each spelling of "yes".
        geographic = coordinates is not None and str(graph.graph.get("geographic", "")).strip().lower() in ("true", "1")
        if geographic and not all(-90.0 <= lat <= 90.0 for _, lat in coordinates):  # type: ignore[union-attr]
            _fail(where, "graph attribute geographic is true but some pos latitudes are outside -90..90 degrees")

    directed = graph.is_directed()
    if graph.is_multigraph():
        edges = [(u, v, data) for u, v, _, data in graph.edges(keys=True, data=True)]
    else:
        edges = list(graph.edges(data=True))
    ids = [data.get("id") for _, _, data in edges]
    # The project's own to_networkx() numbers edges by link id: keep that order.
    if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids) and len(set(ids)) == len(ids):
        edges = [edge for _, edge in sorted(zip(ids, edges), key=lambda pair: pair[0])]

    groups: dict[frozenset[int], _Group] = {}
    self_loops = parallel = 0
    for u, v, data in edges:
        if u == v:
            self_loops += 1
            continue
        a, b = index[u], index[v]
        if "a" in data and str(data["a"]) == str(v) and str(data["a"]) != str(u):
            a, b = b, a  # to_networkx() records which end is listed first
        what = f"link {names[a]}-{names[b]}"
        capacity = _edge_capacity(data, settings, what, where)
        latency = _edge_latency(data, settings, what, where)
        if latency is None and geo[a] is not None and geo[b] is not None:
            km = great_circle_km(*geo[a], *geo[b])  # type: ignore[misc]
            latency = _ticks(km / settings.propagation_km_per_ms, settings, f"{what}: length", where)
        direction = (index[u], index[v]) if directed else None
        key = frozenset((a, b))
        group = groups.get(key)
        if group is None:
            label = data.get("name")
            group = groups[key] = _Group(
                a, b, None if label is None else str(label), {}, {}, _failure_prob(data, settings, what, where)
            )
        elif direction in group.capacities:
            parallel += 1
        group.capacities.setdefault(direction, []).append(capacity)
        group.latencies.setdefault(direction, []).append(latency)
    if self_loops:
        notes.append(f"{where}: dropped {self_loops} self-loop(s)")
    if parallel:
        notes.append(
            f"{where}: merged {parallel} parallel edge(s) into their links (capacities added, smallest latency kept)"
        )
    if directed:
        notes.append(
            f"{where}: directed graph read as undirected; the two directions of a pair are one link "
            "(larger capacity, smaller latency)"
        )
    if not groups:
        _fail(where, f"has no links between its {len(nodes)} routers")

    all_capacities = [c for g in groups.values() for cs in g.capacities.values() for c in cs]
    known = [c for c in all_capacities if c is not None]
    missing_capacity = len(all_capacities) - len(known)
    if settings.default_capacity is not None:
        default_capacity, why = settings.default_capacity, "the given default"
    elif known:
        default_capacity, why = int(round(statistics.median(known))), "the median of the other edges"
    else:
        default_capacity, why = max(1, round(DEFAULT_CAPACITY_BPS / settings.capacity_unit_bps)), "1 Gbit/s"
    if missing_capacity:
        notes.append(
            f"{where}: {missing_capacity} of {len(all_capacities)} edge(s) have no capacity attribute (capacity, "
            f"bandwidth, LinkSpeedRaw, LinkSpeed+LinkSpeedUnits or a LinkLabel naming a rate); they get {default_capacity} ({why})"
        )

    links: list[Link] = []
    link_names: list[str | None] = []
    missing_latency = 0
    for group in groups.values():
        capacity = max(sum(default_capacity if c is None else c for c in cs) for cs in group.capacities.values())
        latencies = [lat for ls in group.latencies.values() for lat in ls if lat is not None]
        if not latencies:
            missing_latency += 1
        latency = min(latencies) if latencies else settings.default_latency_ticks
        links.append(Link(group.a, group.b, capacity, latency, group.failure_prob))
        link_names.append(group.name)
    if missing_latency:
        notes.append(
            f"{where}: {missing_latency} of {len(links)} link(s) have no latency (latency_ticks, latency or delay "
            f"attribute, dist, or Latitude/Longitude on both ends); they get {settings.default_latency_ticks} tick(s)"
        )
    default_names = [f"{names[l.a]}-{names[l.b]}" for l in links]
    explicit = [x if x is not None else d for x, d in zip(link_names, default_names)]
    use_names = explicit != default_names and len(set(explicit)) == len(explicit)
    try:
        topology = Topology(
            name,
            names,
            tuple(links),
            tuple(coordinates) if coordinates is not None else None,
            None,
            tuple(explicit) if use_names else None,
            geographic,
        )
    except TopologyError as exc:
        message = str(exc)
        if "disconnected" in message:
            message += "; connect the parts or delete the routers that cannot reach the rest"
        _fail(where, message)
    for note in notes:
        _warn(note)
    return topology


# ---------------------------------------------------------------------------- file formats
def _check_file(path: Path) -> None:
    if not path.exists():
        _fail(path, "no such file")
    if path.is_dir():
        _fail(path, "is a directory, expected a file")


def load_graphml(path: PathLike, settings: ImportSettings | None = None, *, name: str | None = None) -> Topology:
    """A GraphML file (e.g. from the Internet Topology Zoo), read with networkx `read_graphml`."""
    return _load_graph_file(Path(path), _read_graphml_strict, "GraphML", settings, name)


def _read_graphml_strict(path: Path) -> nx.Graph:
    """`nx.read_graphml`, but a node declared twice (networkx merges them, the last attributes win)
    and an edge to an undeclared node (networkx invents the node) are errors."""
    graph = nx.read_graphml(path)
    namespace = "{http://graphml.graphdrawing.org/xmlns}"
    for graph_xml in ET.parse(path).getroot().iter(f"{namespace}graph"):
        declared: set[str | None] = set()
        for node in graph_xml.findall(f"{namespace}node"):
            if node.get("id") in declared:
                _fail(path, f"node id {node.get('id')!r} is declared twice (duplicate router)")
            declared.add(node.get("id"))
        for edge in graph_xml.findall(f"{namespace}edge"):
            for end in ("source", "target"):
                if edge.get(end) not in declared:
                    _fail(path, f"edge {edge.get('source')!r}-{edge.get('target')!r}: {end} {edge.get(end)!r} is no declared node")
    return graph


def load_gml(path: PathLike, settings: ImportSettings | None = None, *, name: str | None = None) -> Topology:
    """A GML file (the Topology Zoo's other format), read with networkx `read_gml` keyed by node id."""
    return _load_graph_file(Path(path), lambda p: nx.read_gml(p, label="id"), "GML", settings, name)


def _load_graph_file(path: Path, read, kind: str, settings: ImportSettings | None, name: str | None) -> Topology:
    """Read a graph file with networkx's `read(path)`; one-line errors for unreadable files."""
    _check_file(path)
    try:
        graph = read(path)
    except TopologyError:
        raise
    except ET.ParseError as exc:
        _fail(path, f"not a {kind} file: XML error ({_one_line(str(exc))}); export the topology as {kind}")
    except RecursionError:
        _fail(path, f"not a valid {kind} file: lists nested too deeply to read (no topology nests more than a few levels)")
    except (nx.NetworkXError, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        detail = _one_line(str(exc)) or type(exc).__name__
        suffix = f"; export the topology as {kind}" if kind == "GraphML" else ""
        _fail(path, f"not a valid {kind} file ({detail}){suffix}")
    except OSError as exc:
        _fail(path, f"cannot read ({_one_line(exc.strerror or str(exc))})")
    return topology_from_graph(graph, name or path.stem, settings, where=path)


def is_node_link(doc: Any) -> bool:
    """Whether a parsed JSON document looks like networkx node-link data (`nodes` + `links`/`edges`)."""
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("nodes"), list)
        and any(isinstance(doc.get(key), list) for key in ("links", "edges"))
    )


def topology_from_node_link(doc: Any, name: str, settings: ImportSettings | None = None, *, where: object) -> Topology:
    """A Topology from parsed node-link data (`networkx.node_link_data` output, topohub's JSON)."""
    if not is_node_link(doc):
        _fail(where, 'not node-link data: expected {"nodes": [...], "links": [...]} (or "edges")')
    if "links" in doc and "edges" in doc:
        _fail(where, "node-link data has both 'links' and 'edges': give the edges once")
    unknown = sorted(set(doc) - _NODE_LINK_KEYS)
    if unknown:
        _fail(where, f"node-link data: unknown key(s) {unknown} (allowed: {sorted(_NODE_LINK_KEYS)})")
    for key in ("directed", "multigraph"):
        if not isinstance(doc.get(key, False), bool):
            _fail(where, f"node-link data: {key!r} must be true or false, got {json.dumps(doc[key])[:40]}")
    if not isinstance(doc.get("graph", {}), dict):
        _fail(where, "node-link data: 'graph' must be an object of graph attributes")
    edges_key = "links" if isinstance(doc.get("links"), list) else "edges"
    for k, node in enumerate(doc["nodes"]):
        if not isinstance(node, dict) or "id" not in node:
            _fail(where, f"node {k}: expected an object with an 'id'")
    for k, edge in enumerate(doc[edges_key]):
        if not isinstance(edge, dict) or "source" not in edge or "target" not in edge:
            _fail(where, f"{edges_key[:-1]} {k}: expected an object with 'source' and 'target'")
    known = {_hashable(node["id"]) for node in doc["nodes"]}
    if len(known) != len(doc["nodes"]):
        ids = [_hashable(node["id"]) for node in doc["nodes"]]
        dup = next(i for i in ids if ids.count(i) > 1)
        _fail(where, f"node id {dup!r} is used by more than one node")
    first: dict[Any, int] = {}
    for k, edge in enumerate(doc[edges_key]):
        for end in ("source", "target"):
            if _hashable(edge[end]) not in known:
                _fail(where, f"{edges_key[:-1]} {k}: {end} {edge[end]!r} is not a node id")
        if doc.get("multigraph"):
            continue  # parallel edges are merged into one link, with a warning
        ends = (_hashable(edge["source"]), _hashable(edge["target"]))
        pair = ends if doc.get("directed") else frozenset(ends)
        if pair in first:  # networkx would keep only the last edge's attributes
            _fail(
                where,
                f"{edges_key[:-1]} {k}: duplicate link {edge['source']!r}-{edge['target']!r} (also {edges_key[:-1]} "
                f"{first[pair]}); in a graph with \"multigraph\": false each pair of nodes has one edge",
            )
        first[pair] = k
    data = {**doc, "nodes": [{**n, "id": _hashable(n["id"])} for n in doc["nodes"]]}
    data[edges_key] = [{**e, "source": _hashable(e["source"]), "target": _hashable(e["target"])} for e in doc[edges_key]]
    data.setdefault("directed", False)
    data.setdefault("multigraph", False)
    try:
        graph = nx.node_link_graph(data, edges=edges_key)
    except (nx.NetworkXError, KeyError, ValueError, TypeError, AttributeError) as exc:
        _fail(where, f"not valid node-link data ({_one_line(str(exc)) or type(exc).__name__})")
    return topology_from_graph(graph, name, settings, where=where)


def _hashable(value: Any) -> Any:
    """JSON node ids may be lists (not hashable): use their JSON text instead."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def load_node_link_json(path: PathLike, settings: ImportSettings | None = None, *, name: str | None = None) -> Topology:
    """A networkx node-link JSON file (`json.dump(networkx.node_link_data(graph), f)`)."""
    path = Path(path)
    text = _read_text(path)
    try:
        doc = _loads(text, path)
    except json.JSONDecodeError as exc:
        _fail(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    return topology_from_node_link(doc, name or path.stem, settings, where=path)


# ---------------------------------------------------------------------------- topohub
def _import_topohub() -> Any:
    try:
        # lazy: an optional dependency, and slow to import
        import topohub  # type: ignore[import-not-found]
    except ImportError:
        raise TopologyError("topohub is not installed: pip install mamrl[topohub]") from None
    return topohub


def topohub_names(group: str | None = None) -> list[str]:
    """The names `load_topohub` accepts (`topozoo/AttMpls`, `sndlib/polska`, `gabriel/25/0`...), sorted.

    `group` (`topozoo`, `sndlib`, `backbone`, `caida`, `gabriel`) restricts the list. Read from the
    data shipped inside the topohub package; nothing is downloaded.
    """
    root = resources.files(_import_topohub()) / "data"
    names: list[str] = []

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".json"):
                names.append(prefix + entry.name[: -len(".json")])

    start = root / group if group else root
    if group and not start.is_dir():
        groups = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
        raise TopologyError(f"topohub has no group {group!r} (groups: {', '.join(groups)})")
    walk(start, f"{group.strip('/')}/" if group else "")
    return sorted(names, key=lambda n: [int(p) if p.isdigit() else p.lower() for p in n.split("/")])


def topohub_catalogue(pattern: str | None = None) -> list[tuple[str, int, int]]:
    """(name, routers, links) of every topohub topology whose name contains `pattern`
    (case-insensitive; None: all), read from the package's files without building topologies."""
    root = resources.files(_import_topohub()) / "data"
    needle = (pattern or "").strip().lower()
    out = []
    for name in topohub_names():
        if needle and needle not in name.lower():
            continue
        try:
            data = json.loads((root / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # listed, not loaded: load_topohub reports a broken file when it is used
        edges = data.get("links", data.get("edges", []))
        out.append((name, len(data.get("nodes", [])), len(edges)))
    return out


def load_topohub(key: str, settings: ImportSettings | None = None) -> Topology:
    """A topology shipped with the optional `topohub` package (`pip install mamrl[topohub]`).

    `key` is `GROUP/NAME` as topohub names it, e.g. `topozoo/AttMpls`, `sndlib/polska`,
    `gabriel/25/0`; `topohub_names()` lists them. topohub stores nodes with `name` and `pos`
    (longitude, latitude) and edges with `dist` (km), so latencies come from the link lengths;
    it stores no capacities, so every link gets the default capacity (with a warning). Positions
    are marked geographic except in the `gabriel` group, whose graphs are synthetic planar ones.
    """
    key = key.strip().removeprefix(TOPOHUB_PREFIX).strip().strip("/")
    topohub = _import_topohub()
    where = f"{TOPOHUB_PREFIX}{key}"
    how = "names are GROUP/NAME, listed by mamrl.topologies.wild.topohub_names()"
    if not _TOPOHUB_KEY.fullmatch(key) or ".." in key.split("/"):
        raise TopologyError(f"{where}: not a topohub name ({how}, e.g. topozoo/AttMpls)")
    doc = _topohub_get(topohub, key)
    if doc is None:  # names are case-sensitive; accept another case when it is unambiguous
        names = topohub_names()
        same = [n for n in names if n.lower() == key.lower()]
        if len(same) == 1:
            key, where = same[0], f"{TOPOHUB_PREFIX}{same[0]}"
            doc = _topohub_get(topohub, key)
        if doc is None:
            hint = _did_you_mean(key, names)
            raise TopologyError(f"topohub has no topology {key!r} ({hint}{how})")
    if not key.startswith("gabriel/") and isinstance(doc, dict):
        # Copies, so that topohub's own (possibly cached) document is left as it was.
        doc = {**doc, "graph": {**(doc.get("graph") or {}), "geographic": True}}
    return topology_from_node_link(doc, key, settings, where=where)


def _did_you_mean(key: str, names: list[str]) -> str:
    """`did you mean 'GROUP/NAME'? ` for the closest name in the same group (else the closest group)."""
    group, _, rest = key.partition("/")
    in_group = {n.partition("/")[2]: n for n in names if n.partition("/")[0] == group}
    if in_group:
        close = difflib.get_close_matches(rest, list(in_group), n=1, cutoff=0.6)
        return f"did you mean {in_group[close[0]]!r}? " if close else ""
    groups = sorted({n.partition("/")[0] for n in names})
    close = difflib.get_close_matches(group, groups, n=1, cutoff=0.6)
    return f"did you mean group {close[0]!r}? " if close else f"groups: {', '.join(groups)}; "


def _topohub_get(topohub: Any, key: str) -> dict[str, Any] | None:
    """`topohub.get(key)`, None for an unknown key (topohub raises KeyError)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # topohub 1.5 leaves the data file open
            return topohub.get(key)
    except KeyError:
        return None
    except (OSError, ValueError) as exc:
        raise TopologyError(f"{TOPOHUB_PREFIX}{key}: topohub could not read it ({_one_line(str(exc))})") from None


# ---------------------------------------------------------------------------- traffic
def gravity_demand_weights(
    topology: Topology,
    masses: Sequence[float] | np.ndarray | None = None,
    *,
    by: Literal["degree", "capacity"] = "degree",
) -> np.ndarray:
    """A gravity-model traffic matrix: float64 [N, N], weight(s, d) = m_s * m_d, zero diagonal, sum 1.

    The mass m_i of router i is `masses[i]` when given (e.g. city populations), else its degree
    (`by="degree"`, the default: unit-free, so link speeds that span orders of magnitude do not
    make a few routers dominate) or the summed capacity of its links (`by="capacity"`). Pass the
    result as `SimParams(topology, load, demand_weights=...)`: the network-wide rate stays
    load * N packets per tick, shared among the pairs in proportion to the weights.
    """
    n = topology.num_routers
    if masses is not None:
        try:
            m = np.asarray(masses, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise TopologyError("gravity masses must be numbers, one per router") from None
        if m.shape != (n,):
            raise TopologyError(f"gravity masses must have one value per router ({n}), got shape {m.shape}")
    elif by == "degree":
        m = topology.degree.astype(np.float64)
    elif by == "capacity":
        m = np.zeros(n, dtype=np.float64)
        caps = topology.capacities.astype(np.float64)
        np.add.at(m, topology.link_endpoints[:, 0], caps)
        np.add.at(m, topology.link_endpoints[:, 1], caps)
    else:
        raise TopologyError(f"gravity model: by must be 'degree' or 'capacity', got {by!r}")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise TopologyError("gravity masses must be finite and >= 0")
    weights = np.outer(m, m)
    np.fill_diagonal(weights, 0.0)
    total = weights.sum()
    if total <= 0:
        raise TopologyError("gravity masses give no traffic: at least two routers need a mass > 0")
    return weights / total
