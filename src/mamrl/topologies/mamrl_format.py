"""The project's own topology format (`mamrl-topology/1`): reading, writing and the built-ins' files.

The format is described in docs/topologies.md, section "The project's format".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mamrl.errors import MamrlError, TopologyError
from mamrl.runs import write_text
from mamrl.topologies._parsing import (
    PathLike,
    _build,
    _check_keys,
    _fail,
    _latency,
    _number,
    _one_line,
    _probability,
    _read_json,
)
from mamrl.topologies.core import INT64_MAX, PACKET_SIZE_LIMIT, Link, PacketSizeTable, Topology

FORMAT = "mamrl-topology/1"
"""Value of the `format` key of the project's own topology files."""

_TOP_KEYS = {"format", "name", "source", "notes", "defaults", "routers", "links", "packet_sizes", "geographic"}
_ROUTER_KEYS = {"name", "x", "y"}
_LINK_KEYS = {"a", "b", "capacity", "latency_ticks", "failure_prob", "name"}
_DEFAULT_KEYS = {"capacity", "latency_ticks", "failure_prob"}
_SIZES_KEYS = {"provenance", "sizes_per_pair", "pairs"}

# ---------------------------------------------------------------------------- our own format
def read_topology_file(path: PathLike) -> Topology:
    """A topology in the project's own JSON format (`"format": "mamrl-topology/1"`)."""
    path = Path(path)
    return topology_from_document(_read_json(path), path)


def topology_from_document(doc: Any, where: object) -> Topology:
    """Build a Topology from a parsed document of the project's format; `where` names its source."""
    doc = _check_keys(doc, _TOP_KEYS, {"format", "routers", "links"}, "top level", where)
    if doc["format"] != FORMAT:
        _fail(where, f"format {doc['format']!r} is not supported (expected {FORMAT!r})")
    name = doc.get("name", Path(str(where)).stem)
    if not isinstance(name, str) or not name:
        _fail(where, "'name' must be a non-empty string")
    if "source" in doc and not isinstance(doc["source"], str):
        _fail(where, f"'source' must be a string, got {json.dumps(doc['source'])[:40]}")
    notes = doc.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(x, str) for x in notes):
        _fail(where, "'notes' must be a list of strings")
    defaults = _check_keys(doc.get("defaults", {}), _DEFAULT_KEYS, set(), "defaults", where)
    # Checked here too, so that a bad default is an error even when every link gives its own value.
    if "capacity" in defaults:
        _link_capacity(defaults["capacity"], "defaults", where)
    if "latency_ticks" in defaults:
        _latency(defaults["latency_ticks"], "defaults: latency_ticks", where)
    if "failure_prob" in defaults:
        _probability(defaults["failure_prob"], "defaults: failure_prob", where)

    if not isinstance(doc["routers"], list):
        _fail(where, "'routers' must be a list")
    names: list[str] = []
    index: dict[str, int] = {}
    coords: list[tuple[float, float]] = []
    for k, router in enumerate(doc["routers"]):
        if isinstance(router, str):  # shorthand: a bare name
            router = {"name": router}
        router = _check_keys(router, _ROUTER_KEYS, {"name"}, f"router {k}", where)
        if not isinstance(router["name"], str) or not router["name"]:
            _fail(where, f"router {k}: 'name' must be a non-empty string")
        if router["name"] in index:
            _fail(where, f"router {k}: duplicate router name {router['name']!r} (also router {index[router['name']]})")
        index[router["name"]] = k
        names.append(router["name"])
        if ("x" in router) != ("y" in router):
            _fail(where, f"router {router['name']!r}: give both 'x' and 'y' or neither")
        if "x" in router:
            coords.append((_number(router["x"], f"router {router['name']!r}: x", where),
                           _number(router["y"], f"router {router['name']!r}: y", where)))
    if coords and len(coords) != len(names):
        _fail(where, "coordinates must be given for every router or for none")
    geographic = doc.get("geographic", False)
    if not isinstance(geographic, bool):
        _fail(where, f"'geographic' must be true or false, got {json.dumps(geographic)[:40]}")
    if geographic and not coords:
        _fail(where, "'geographic' is true but the routers have no x (longitude) and y (latitude)")

    if not isinstance(doc["links"], list):
        _fail(where, "'links' must be a list")
    links: list[Link] = []
    link_names: list[str | None] = []
    for k, link in enumerate(doc["links"]):
        link = _check_keys(link, _LINK_KEYS, {"a", "b"}, f"link {k}", where)
        label = f"link {k}" if "name" not in link else f"link {link['name']!r}"
        if "name" in link and (not isinstance(link["name"], str) or not link["name"]):
            _fail(where, f"link {k}: 'name' must be a non-empty string, got {json.dumps(link['name'])[:40]}")
        ends = []
        for key in ("a", "b"):
            router = link[key]
            if not isinstance(router, str) or router not in index:
                _fail(where, f"{label}: unknown router {router!r} in {key!r}")
            ends.append(index[router])
        values = {**defaults, **link}
        for key in ("capacity", "latency_ticks"):
            if key not in values:
                _fail(where, f"{label}: no {key!r} (and no default)")
        links.append(
            Link(
                ends[0],
                ends[1],
                _link_capacity(values["capacity"], label, where),
                _latency(values["latency_ticks"], f"{label}: latency_ticks", where),
                _probability(values.get("failure_prob", 0.0), f"{label}: failure_prob", where),
            )
        )
        link_names.append(link.get("name"))

    # Unnamed links keep the default `A-B` name; all-default means no explicit names at all.
    explicit = None
    if any(x is not None for x in link_names):
        explicit = tuple(x if x is not None else f"{names[l.a]}-{names[l.b]}" for x, l in zip(link_names, links))

    packet_sizes = None
    if "packet_sizes" in doc:
        packet_sizes = _sizes_from_document(doc["packet_sizes"], names, index, where)
    return _build(
        where,
        name=name,
        router_names=tuple(names),
        links=tuple(links),
        coordinates=tuple(coords) if coords else None,
        packet_sizes=packet_sizes,
        link_names=explicit,
        geographic=geographic,
    )


def _link_capacity(capacity: Any, label: str, where: object) -> int:
    """A JSON integer >= 0 that fits in 64 bits (the format has no fractional capacities)."""
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        _fail(where, f"{label}: capacity must be an integer, got {json.dumps(capacity)[:40]}")
    if capacity < 0:
        _fail(where, f"{label}: capacity must be >= 0, got {capacity}")
    if capacity > INT64_MAX:
        _fail(where, f"{label}: capacity {str(capacity)[:30]} is too large (at most 2**63 - 1)")
    return capacity


def _pair_splits(key: str, index: dict[str, int]) -> list[tuple[int, int]]:
    """Every way `key` reads as 'SRC>DST' with known router names (names may themselves contain '>')."""
    return [
        (index[key[:pos]], index[key[pos + 1 :]])
        for pos, char in enumerate(key)
        if char == ">" and key[:pos] in index and key[pos + 1 :] in index
    ]


def _split_pair(key: str, index: dict[str, int]) -> tuple[int, int] | None:
    splits = _pair_splits(key, index)
    return splits[0] if splits else None


def _sizes_from_document(obj: Any, names: list[str], index: dict[str, int], where: object) -> PacketSizeTable:
    obj = _check_keys(obj, _SIZES_KEYS, {"sizes_per_pair", "pairs"}, "packet_sizes", where)
    per_pair = obj["sizes_per_pair"]
    if isinstance(per_pair, bool) or not isinstance(per_pair, int) or per_pair < 1:
        _fail(where, f"packet_sizes.sizes_per_pair must be an integer >= 1, got {json.dumps(per_pair)[:40]}")
    if not isinstance(obj["pairs"], dict):
        _fail(where, "packet_sizes.pairs must be an object {\"SRC>DST\": [sizes...]}")
    n = len(names)
    given: dict[tuple[int, int], list[int]] = {}
    for key, sizes in obj["pairs"].items():
        splits = _pair_splits(key, index)
        if not splits:
            _fail(where, f"packet_sizes pair {key!r} is not 'SRC>DST' with known router names")
        if len(splits) > 1:
            _fail(where, f"packet_sizes pair {key!r} splits into 'SRC>DST' in more than one way; rename the routers")
        pair = splits[0]
        if pair[0] == pair[1]:
            _fail(where, f"packet_sizes pair {key!r} is a router to itself; the diagonal is unused, leave it out")
        if (
            not isinstance(sizes, list)
            or len(sizes) != per_pair
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v < PACKET_SIZE_LIMIT for v in sizes)
        ):
            _fail(where, f"packet_sizes pair {key!r}: expected {per_pair} integers >= 1 and < {PACKET_SIZE_LIMIT}")
        given[pair] = sizes
    if len(given) < n * (n - 1):
        s, d = next((s, d) for s in range(n) for d in range(n) if s != d and (s, d) not in given)
        _fail(where, f"packet_sizes: pair '{names[s]}>{names[d]}' is missing ({n * (n - 1) - len(given)} pairs missing)")
    values = np.ones((n, n, per_pair), dtype=np.int64)  # the unused diagonal is 1
    for pair, sizes in given.items():
        values[pair] = sizes
    provenance = obj.get("provenance", str(where))
    if not isinstance(provenance, str):
        _fail(where, "packet_sizes.provenance must be a string")
    return PacketSizeTable(values, provenance)


def topology_to_document(
    topology: Topology, *, source: str | None = None, notes: list[str] | None = None
) -> dict[str, Any]:
    """The project-format document of a topology (what `save_topology` writes)."""
    doc: dict[str, Any] = {"format": FORMAT, "name": topology.name}
    if source is not None:
        doc["source"] = source
    if notes:
        doc["notes"] = list(notes)
    routers: list[dict[str, Any]] = []
    for i, router in enumerate(topology.router_names):
        entry: dict[str, Any] = {"name": router}
        if topology.coordinates is not None:
            entry["x"], entry["y"] = topology.coordinates[i]
        routers.append(entry)
    doc["routers"] = routers
    if topology.geographic:
        doc["geographic"] = True  # x, y are longitude, latitude in degrees
    links: list[dict[str, Any]] = []
    for e, link in enumerate(topology.links):
        entry = {
            "a": topology.router_names[link.a],
            "b": topology.router_names[link.b],
            "capacity": int(link.capacity),
            "latency_ticks": int(link.latency_ticks),
            "failure_prob": float(link.failure_prob),
        }
        if topology.link_names is not None:
            entry["name"] = topology.link_names[e]
        links.append(entry)
    doc["links"] = links
    if topology.packet_sizes is not None:
        values = topology.packet_sizes.values
        names = topology.router_names
        if any(">" in x for x in names):
            # Keys stay decodable by trying split points, unless a split is ambiguous.
            index = {x: i for i, x in enumerate(names)}
            for s in range(len(names)):
                for d in range(len(names)):
                    if s != d and _split_pair(f"{names[s]}>{names[d]}", index) != (s, d):
                        raise TopologyError(
                            f"topology {topology.name!r}: router names {names[s]!r}, {names[d]!r} make the "
                            "packet-size key 'SRC>DST' ambiguous; rename them"
                        )
        doc["packet_sizes"] = {
            "provenance": topology.packet_sizes.provenance,
            "sizes_per_pair": int(values.shape[2]),
            "pairs": {
                f"{names[s]}>{names[d]}": [int(v) for v in values[s, d]]
                for s in range(len(names))
                for d in range(len(names))
                if s != d
            },
        }
    return doc


def dump_document(doc: dict[str, Any]) -> str:
    """JSON text with one router, link or pair per line: compact yet diff-friendly."""
    lines = ["{"]
    items = list(doc.items())
    for k, (key, value) in enumerate(items):
        comma = "," if k < len(items) - 1 else ""
        if key in ("routers", "links", "notes") and isinstance(value, list):
            inner = ",\n".join(f"    {json.dumps(v)}" for v in value)
            lines.append(f"  {json.dumps(key)}: [\n{inner}\n  ]{comma}")
        elif key == "packet_sizes" and isinstance(value, dict):
            pairs = value["pairs"]
            head = {k2: v2 for k2, v2 in value.items() if k2 != "pairs"}
            body = ",\n".join(f"      {json.dumps(p)}: {json.dumps(v)}" for p, v in pairs.items())
            head_text = "".join(f"    {json.dumps(k2)}: {json.dumps(v2)},\n" for k2, v2 in head.items())
            lines.append(f"  {json.dumps(key)}: {{\n{head_text}    \"pairs\": {{\n{body}\n    }}\n  }}{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def save_topology(
    topology: Topology, path: PathLike, *, source: str | None = None, notes: list[str] | None = None
) -> Path:
    """Write `topology` in the project's JSON format; returns the path written.

    The unused diagonal of the packet-size table is not stored (it reads back as 1).
    """
    path = Path(path)
    text = dump_document(topology_to_document(topology, source=source, notes=notes))
    try:
        write_text(path, text)  # atomic: a kill leaves the old file or the new one
    except MamrlError as exc:
        _fail(path, f"cannot write ({_one_line(str(exc).rpartition(': ')[2])})")
    return path
