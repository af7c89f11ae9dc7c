"""The `Topology` value type: routers, undirected links and per-pair packet sizes.

A topology is a parameter of the simulator, never mutated. Router ids are `0..n-1` in the order
of `router_names`; link ids are `0..m-1` in the order of `links`. Capacity is shared by both
directions of a link (docs/model.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx
import numpy as np

from mamrl.errors import TopologyError

INT64_MAX = 2**63 - 1
"""Largest capacity or latency in ticks: the simulator keeps them in int64 arrays."""

PACKET_SIZE_LIMIT = 2**31 - 1
"""Packet sizes must be below this many capacity units: the simulator keeps them in int32 arrays."""


def _is_int(value: object) -> bool:
    """An integer, numpy's included, but not a bool (True is no capacity)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _whole_number(value: object) -> int | None:
    """`value` as an int when it is a whole number (5 or 5.0); None for 2.5, "5", True or nan."""
    if _is_int(value):
        return int(value)  # type: ignore[arg-type]
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


@dataclass(frozen=True)
class Link:
    """An undirected link between routers `a` and `b` (router ids, `a != b`)."""

    a: int
    """Router id of one end."""
    b: int
    """Router id of the other end."""
    capacity: int
    """Capacity shared by both directions, in the unit of packet sizes; 0 means always down."""
    latency_ticks: int
    """Ticks a packet spends in flight on this link (integer >= 1)."""
    failure_prob: float = 0.0
    """Probability of this link failing (weights the failure-task distribution), in [0, 1]."""


@dataclass(frozen=True, eq=False)
class PacketSizeTable:
    """Per ordered (source, destination) pair, an empirical distribution of packet sizes.

    A packet from `s` to `d` takes one of `values[s, d, :]` uniformly at random. Sizes are whole
    units >= 1 (the simulator's capacity arithmetic is exact integer arithmetic).
    """

    values: np.ndarray
    """int64 array [N, N, S]: S equally likely sizes per ordered pair; the diagonal is unused."""
    provenance: str
    """Where the sizes come from (file path, or a description of a built-in summary)."""

    def __post_init__(self) -> None:
        try:
            v = np.asarray(self.values, dtype=np.float64)
        except (TypeError, ValueError):
            raise TopologyError("packet size table must hold numbers") from None
        if v.ndim != 3 or v.shape[0] != v.shape[1] or v.shape[2] < 1:
            raise TopologyError(f"packet size table must have shape [N, N, S], got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise TopologyError("packet size table contains non-finite values")
        if np.any(v < 0):
            raise TopologyError(f"packet sizes must be >= 0, smallest is {float(v.min()):.4g}")
        if np.any(v >= PACKET_SIZE_LIMIT):
            raise TopologyError(f"packet sizes must be below 2**31 - 1 units, largest is {float(v.max()):.4g}")
        v = np.maximum(1, np.rint(v)).astype(np.int64)
        object.__setattr__(self, "values", v)
        v.setflags(write=False)

    @property
    def mean_size(self) -> float:
        """Mean packet size over all off-diagonal pairs (uniform destinations)."""
        n = self.values.shape[0]
        off = ~np.eye(n, dtype=bool)
        return float(self.values[off].mean())


@dataclass(frozen=True, eq=False)
class Topology:
    """Routers and undirected links of a network, validated on construction."""

    name: str
    """Short name (`b4`, `att`, a file stem...)."""
    router_names: tuple[str, ...]
    """Router names; a router's id is its index here."""
    links: tuple[Link, ...]
    """Undirected links; a link's id is its index here."""
    coordinates: tuple[tuple[float, float], ...] | None = None
    """Optional drawing or geographic coordinates (x, y) per router."""
    packet_sizes: PacketSizeTable | None = None
    """Per-pair packet-size distribution; None means 'use the simulator's default'."""
    link_names: tuple[str, ...] | None = field(default=None)
    """Optional names of links (as in the source file); default `"<a>-<b>"` by router names."""
    geographic: bool = False
    """Whether `coordinates` are (longitude, latitude) in degrees (set by the importers of files
    from the wild) rather than drawing coordinates; plots then draw a map."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "router_names", tuple(str(r) for r in self.router_names))
        object.__setattr__(self, "links", tuple(self.links))
        n = len(self.router_names)
        if n < 2:
            raise TopologyError(f"topology {self.name!r} needs at least 2 routers, has {n}")
        if len(set(self.router_names)) != n:
            dup = next(r for r in self.router_names if self.router_names.count(r) > 1)
            raise TopologyError(f"topology {self.name!r}: duplicate router name {dup!r}")
        seen: dict[frozenset[int], int] = {}
        for k, link in enumerate(self.links):
            where = f"topology {self.name!r}, link {k}"
            for end in (link.a, link.b):
                if isinstance(end, bool) or not isinstance(end, (int, np.integer)) or not 0 <= end < n:
                    raise TopologyError(f"{where}: router id {end!r} is not in 0..{n - 1}")
            if link.a == link.b:
                raise TopologyError(f"{where}: self-loop at router {self.router_names[link.a]!r}")
            key = frozenset((int(link.a), int(link.b)))
            if key in seen:
                raise TopologyError(
                    f"{where}: duplicate link {self.router_names[link.a]}-{self.router_names[link.b]}"
                    f" (also link {seen[key]})"
                )
            seen[key] = k
            if not _is_int(link.latency_ticks) or not 1 <= link.latency_ticks <= INT64_MAX:
                raise TopologyError(f"{where}: latency_ticks must be an integer >= 1 and < 2**63, got {link.latency_ticks!r}")
            if not _is_int(link.capacity) or not 0 <= link.capacity <= INT64_MAX:
                raise TopologyError(f"{where}: capacity must be an integer >= 0 and < 2**63, got {link.capacity!r}")
            prob = link.failure_prob
            if isinstance(prob, bool) or not isinstance(prob, (int, float, np.integer, np.floating)) or not 0.0 <= prob <= 1.0:
                raise TopologyError(f"{where}: failure_prob must be in [0, 1], got {prob!r}")
        if self.coordinates is not None:
            if len(self.coordinates) != n:
                raise TopologyError(f"topology {self.name!r}: {len(self.coordinates)} coordinates for {n} routers")
            # Normalise lists (e.g. from JSON) to hashable, comparable tuples of floats.
            try:
                coords = tuple((float(x), float(y)) for x, y in self.coordinates)
            except (TypeError, ValueError, OverflowError):
                raise TopologyError(f"topology {self.name!r}: coordinates must be (x, y) number pairs") from None
            if not all(math.isfinite(v) for xy in coords for v in xy):
                raise TopologyError(f"topology {self.name!r}: coordinates must be finite numbers")
            object.__setattr__(self, "coordinates", coords)
        if self.link_names is not None:
            object.__setattr__(self, "link_names", tuple(str(x) for x in self.link_names))
            if len(self.link_names) != len(self.links):
                raise TopologyError(f"topology {self.name!r}: {len(self.link_names)} link names for {len(self.links)} links")
            if len(set(self.link_names)) != len(self.link_names):
                # link_id() looks links up by name, so a repeated name would be ambiguous.
                dup = sorted({x for x in self.link_names if self.link_names.count(x) > 1})
                raise TopologyError(f"topology {self.name!r}: duplicate link name(s) {dup[:5]}")
        if not isinstance(self.geographic, (bool, np.bool_)):
            raise TopologyError(f"topology {self.name!r}: geographic must be True or False, got {self.geographic!r}")
        object.__setattr__(self, "geographic", bool(self.geographic))
        if self.geographic and self.coordinates is None:
            raise TopologyError(f"topology {self.name!r}: geographic needs coordinates (longitude, latitude)")
        if self.packet_sizes is not None and self.packet_sizes.values.shape[0] != n:
            raise TopologyError(
                f"topology {self.name!r}: packet size table is for {self.packet_sizes.values.shape[0]} routers, topology has {n}"
            )
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        graph.add_edges_from((link.a, link.b) for link in self.links)
        if not nx.is_connected(graph):
            parts = sorted(nx.connected_components(graph), key=len)
            lonely = [self.router_names[i] for i in sorted(parts[0])][:5]
            raise TopologyError(
                f"topology {self.name!r} is disconnected ({len(parts)} components; e.g. {lonely} cannot reach the rest)"
            )

    # ------------------------------------------------------------------ sizes and lookups
    @property
    def num_routers(self) -> int:
        return len(self.router_names)

    @property
    def num_links(self) -> int:
        return len(self.links)

    def router_id(self, name: str | int) -> int:
        """Id of a router given by name (or by id); a one-line error for an unknown router."""
        if isinstance(name, (int, np.integer)) and 0 <= name < self.num_routers:
            return int(name)
        try:
            return self.router_names.index(str(name))
        except ValueError:
            raise TopologyError(f"topology {self.name!r} has no router {name!r}") from None

    def link_name(self, link_id: int) -> str:
        if self.link_names is not None:
            return self.link_names[link_id]
        link = self.links[link_id]
        return f"{self.router_names[link.a]}-{self.router_names[link.b]}"

    def link_id(self, spec: str | int) -> int:
        """Id of a link given as an id, a link name, or `A-B` / `A:B` by router names (either order)."""
        if isinstance(spec, (int, np.integer)):
            if 0 <= spec < self.num_links:
                return int(spec)
            raise TopologyError(f"topology {self.name!r} has no link {spec} (ids are 0..{self.num_links - 1})")
        text = str(spec).strip()
        if self.link_names is not None and text in self.link_names:
            return self.link_names.index(text)
        for sep in ("-", ":", "--"):
            parts = text.split(sep)
            if len(parts) == 2 and all(p in self.router_names for p in parts):
                a, b = (self.router_names.index(p) for p in parts)
                for k, link in enumerate(self.links):
                    if {link.a, link.b} == {a, b}:
                        return k
                raise TopologyError(f"topology {self.name!r} has no link between {parts[0]!r} and {parts[1]!r}")
        if text.isdigit() and int(text) < self.num_links:
            return int(text)
        raise TopologyError(
            f"topology {self.name!r} has no link {text!r} (use A-B with router names, a link name, or an id)"
        )

    # ------------------------------------------------------------------ derived arrays
    @cached_property
    def max_degree(self) -> int:
        return int(self.degree.max())

    @cached_property
    def degree(self) -> np.ndarray:
        """int64 [N]: number of neighbours of each router."""
        deg = np.zeros(self.num_routers, dtype=np.int64)
        for link in self.links:
            deg[link.a] += 1
            deg[link.b] += 1
        return deg

    @cached_property
    def neighbor_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(neighbors [N, K], link_of_slot [N, K]), int64, padded with -1.

        A router's action slots are its neighbours sorted by router id; slot k of router i sends
        to `neighbors[i, k]` over link `link_of_slot[i, k]`.
        """
        n, k = self.num_routers, self.max_degree
        neighbors = np.full((n, k), -1, dtype=np.int64)
        link_of_slot = np.full((n, k), -1, dtype=np.int64)
        adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for e, link in enumerate(self.links):
            adj[link.a].append((link.b, e))
            adj[link.b].append((link.a, e))
        for i in range(n):
            for slot, (j, e) in enumerate(sorted(adj[i])):
                neighbors[i, slot] = j
                link_of_slot[i, slot] = e
        neighbors.setflags(write=False)
        link_of_slot.setflags(write=False)
        return neighbors, link_of_slot

    @cached_property
    def link_endpoints(self) -> np.ndarray:
        """int64 [E, 2]: (a, b) per link."""
        out = np.array([(link.a, link.b) for link in self.links], dtype=np.int64).reshape(-1, 2)
        out.setflags(write=False)
        return out

    @cached_property
    def capacities(self) -> np.ndarray:
        """int64 [E]."""
        out = np.array([link.capacity for link in self.links], dtype=np.int64)
        out.setflags(write=False)
        return out

    @cached_property
    def latencies(self) -> np.ndarray:
        """int64 [E]: latency in ticks."""
        out = np.array([link.latency_ticks for link in self.links], dtype=np.int64)
        out.setflags(write=False)
        return out

    @cached_property
    def shortest_latency_ticks(self) -> np.ndarray:
        """float64 [N, N]: latency in ticks of the shortest-latency path between every two routers
        on the intact topology (what `mean_stretch` divides by); inf where unreachable, 0 on the
        diagonal. Links of capacity 0 are left out: they can carry no packet."""
        # lazy: scipy.sparse is slow to import; `import mamrl.topologies` stays free of it
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import dijkstra

        n = self.num_routers
        usable = [link for link in self.links if link.capacity > 0]
        rows = [link.a for link in usable] + [link.b for link in usable]
        cols = [link.b for link in usable] + [link.a for link in usable]
        weights = [float(link.latency_ticks) for link in usable] * 2
        out = dijkstra(csr_matrix((weights, (rows, cols)), shape=(n, n)), directed=True)
        out.setflags(write=False)
        return out

    @cached_property
    def failure_probs(self) -> np.ndarray:
        """float64 [E]."""
        out = np.array([link.failure_prob for link in self.links], dtype=np.float64)
        out.setflags(write=False)
        return out

    # ------------------------------------------------------------------ networkx interop
    def to_networkx(self) -> nx.Graph:
        """An undirected graph with router ids as nodes (attr `name`, `pos`) and link attrs.

        Edges carry `id` (link id) and `a` (the end listed first) so that `from_networkx` restores
        the link order and orientation; the packet
        sizes, if any, ride along as the graph attribute `packet_sizes`, and geographic
        coordinates set the graph attribute `geographic` to True.
        """
        g = nx.Graph(name=self.name)
        if self.geographic:
            g.graph["geographic"] = True
        if self.packet_sizes is not None:
            g.graph["packet_sizes"] = self.packet_sizes
        for i, name in enumerate(self.router_names):
            attrs = {"name": name}
            if self.coordinates is not None:
                attrs["pos"] = tuple(self.coordinates[i])
            g.add_node(i, **attrs)
        for e, link in enumerate(self.links):
            g.add_edge(
                link.a,
                link.b,
                id=e,
                a=link.a,
                name=self.link_name(e),
                capacity=link.capacity,
                latency_ticks=link.latency_ticks,
                failure_prob=link.failure_prob,
            )
        return g

    @classmethod
    def from_networkx(
        cls,
        graph: nx.Graph,
        name: str | None = None,
        *,
        default_capacity: int | None = None,
        default_latency_ticks: int | None = None,
        packet_sizes: PacketSizeTable | None = None,
    ) -> "Topology":
        """Build from an undirected networkx graph with `capacity` and `latency_ticks` edge attrs.

        Nodes keep their order; a node's `name` attr (else the node itself, as a string) names
        the router; `pos` gives coordinates, (longitude, latitude) when the graph attribute
        `geographic` is true. Edges are ordered by their `id` attr when every edge
        has a distinct one (as `to_networkx` writes), else in the graph's edge order; their `name`
        attrs become link names unless they are all the default `A-B` names. A missing edge
        attribute falls back to the given default, or is an error when no default is given.
        `packet_sizes` defaults to the graph attribute of that name.
        """
        if graph.is_directed() or graph.is_multigraph():
            raise TopologyError("from_networkx needs an undirected simple graph (nx.Graph)")
        nodes = list(graph.nodes)
        index = {node: i for i, node in enumerate(nodes)}
        names = tuple(str(graph.nodes[node].get("name", node)) for node in nodes)
        pos = [graph.nodes[node].get("pos") for node in nodes]
        coords = tuple((float(p[0]), float(p[1])) for p in pos) if all(p is not None for p in pos) else None
        edges = list(graph.edges(data=True))
        ids = [data.get("id") for _, _, data in edges]
        # nx.Graph iterates edges by adjacency, not insertion order: restore link ids from `id`.
        if all(isinstance(i, (int, np.integer)) for i in ids) and len(set(ids)) == len(ids):
            edges = [edge for _, edge in sorted(zip(ids, edges), key=lambda pair: pair[0])]
        links = []
        edge_names: list[str] = []
        for u, v, data in edges:
            if "a" in data and data["a"] == v and data["a"] != u:
                u, v = v, u
            cap = data.get("capacity", default_capacity)
            lat = data.get("latency_ticks", default_latency_ticks)
            if cap is None or lat is None:
                missing = "capacity" if cap is None else "latency_ticks"
                raise TopologyError(f"edge {u}-{v} has no {missing!r} attribute and no default was given")
            for key, value in (("capacity", cap), ("latency_ticks", lat)):
                if _whole_number(value) is None:  # int() would cut 2.5 to 2 without a word
                    raise TopologyError(f"edge {u}-{v}: {key} must be a whole number, got {value!r}")
            prob = data.get("failure_prob", 0.0)
            if isinstance(prob, (bool, np.bool_)) or not isinstance(prob, (int, float, np.integer, np.floating)):
                raise TopologyError(f"edge {u}-{v}: failure_prob must be a number, got {prob!r}")
            links.append(Link(index[u], index[v], _whole_number(cap), _whole_number(lat), float(prob)))
            edge_names.append(str(data.get("name", f"{names[index[u]]}-{names[index[v]]}")))
        default_names = [f"{names[link.a]}-{names[link.b]}" for link in links]
        link_names = None if edge_names == default_names else tuple(edge_names)
        if packet_sizes is None:
            packet_sizes = graph.graph.get("packet_sizes")
        geographic = bool(graph.graph.get("geographic", False)) and coords is not None
        return cls(name or str(graph.graph.get("name", "graph")), names, tuple(links), coords, packet_sizes, link_names,
                   geographic)

    def with_packet_sizes(self, packet_sizes: PacketSizeTable | None) -> "Topology":
        return Topology(self.name, self.router_names, self.links, self.coordinates, packet_sizes, self.link_names,
                        self.geographic)

    def __repr__(self) -> str:
        return f"Topology({self.name!r}, routers={self.num_routers}, links={self.num_links})"
