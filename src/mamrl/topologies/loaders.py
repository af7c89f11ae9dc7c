"""Reading topologies: TEAVAR directories, the paper's JSON, demand files, and `load_topology`,
the one entry point that dispatches to every reader.

The project's own format lives in `mamrl.topologies.mamrl_format`, the readers of files from the
wild (GraphML, GML, networkx node-link JSON, topohub) in `mamrl.topologies.wild`; their public
names are importable from here too.

Every malformed input raises `TopologyError` with a one-line message that names the file and the
problem; no `KeyError`, `IndexError` or `JSONDecodeError` escapes. The formats are described in
docs/topologies.md.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from mamrl.errors import TopologyError
from mamrl.topologies import wild
from mamrl.topologies._parsing import (
    PathLike,
    _build,
    _capacity,
    _check_keys,
    _fail,
    _latency,
    _loads,
    _number,
    _probability,
    _read_json,
    _read_text,
    _shown,
    _warn,
)
from mamrl.topologies.builtin import builtin_names, load_builtin
from mamrl.topologies.core import PACKET_SIZE_LIMIT, Link, PacketSizeTable, Topology
from mamrl.topologies.mamrl_format import (
    FORMAT,
    dump_document,
    read_topology_file,
    save_topology,
    topology_from_document,
    topology_to_document,
)

__all__ = [
    "DEMAND_LAYOUTS",
    "FORMAT",
    "PathLike",
    "TEAVAR_DEFAULT_LATENCY_TICKS",
    "TEAVAR_TOPOLOGY_HEADER",
    "dump_document",
    "load_daphne_json",
    "load_teavar_dir",
    "load_topology",
    "read_demand_file",
    "read_demand_values",
    "read_topology_file",
    "save_topology",
    "topology_from_document",
    "topology_to_document",
]

TEAVAR_DEFAULT_LATENCY_TICKS = 3
"""TEAVAR files carry no latency; the paper uses 3 ticks on (almost) every link."""

TEAVAR_TOPOLOGY_HEADER = ("to_node", "from_node", "capacity", "prob_failure")


# ---------------------------------------------------------------------------- demand files
DEMAND_LAYOUTS: tuple[str, ...] = ("auto", "teavar-matrix", "pair-list", "pair-list-trailing")
"""Values of `demand_layout` (CLI `--demand-layout`), the ways a demand file's lines map to pairs:

- `teavar-matrix`: every line holds exactly `n*n` values, one traffic matrix in row-major order.
- `pair-list`: every line holds exactly `n*(n-1)` values, the ordered pairs (s, d), s != d, in
  row-major order with the diagonal skipped.
- `pair-list-trailing`: the paper's `geant_demand.txt`: every line starts with the `n*(n-1)`
  ordered pairs and goes on with values that are ignored; it must be shorter than `n*(n+1)`
  values (a line that long would hold the pairs of a bigger topology) and not `n*n` long.
- `auto` (the default): the layout the first line fits (`pair-list` when every line holds
  exactly the pairs), then applied to every line; a warning names the values it ignores.
"""


def _check_layout(demand_layout: str) -> str:
    if demand_layout not in DEMAND_LAYOUTS:
        raise TopologyError(f"unknown demand layout {demand_layout!r} (layouts: {', '.join(DEMAND_LAYOUTS)})")
    return demand_layout


def _misfit(count: int, n: int, layout: str) -> str | None:
    """Why a line of `count` values does not fit `layout` for `n` routers; None when it fits."""
    matrix, pairs, too_long = n * n, n * (n - 1), n * (n + 1)
    if layout == "teavar-matrix":
        return None if count == matrix else f"expected {matrix} (one {n}x{n} matrix per line)"
    if layout == "pair-list":
        return None if count == pairs else f"expected {pairs} (the {n}*{n - 1} ordered pairs per line)"
    if pairs <= count < too_long and count != matrix:
        return None
    return (
        f"expected at least {pairs} and fewer than {too_long}, other than {matrix} "
        f"(the {n}*{n - 1} ordered pairs, then trailing values)"
    )


def _size_hint(count: int, n: int, layout: str) -> str:
    """What a misfit line would fit: another stated layout, or a topology of another size."""
    fits = [other for other in DEMAND_LAYOUTS[1:] if other != layout and _misfit(count, n, other) is None]
    if fits:
        return f"; a line of {count} values fits layout {fits[0]}"
    m = math.isqrt(count)
    if m >= 2 and m * m == count:
        return f"; that is a {m}x{m} matrix, for a topology of {m} routers, not {n}"
    m = (1 + math.isqrt(1 + 4 * count)) // 2
    if m >= 2 and m * (m - 1) == count:
        return f"; that is the ordered pairs of {m} routers, not {n}"
    return ""


def _read_demand(path: Path, n: int, demand_layout: str) -> tuple[np.ndarray, str, tuple[int, int]]:
    """(float64 [n, n, S] sizes, layout used, (fewest, most) trailing values on a line)."""
    demand_layout = _check_layout(demand_layout)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        _fail(path, f"demand needs a topology of at least 2 routers, got {n}")
    rows: list[tuple[int, list[str]]] = []
    for lineno, line in enumerate(_read_text(path, "demand file").splitlines(), start=1):
        tokens = line.split()
        if tokens:
            rows.append((lineno, tokens))
    if not rows:
        _fail(path, "demand file has no data lines")
    matrix, pairs, too_long = n * n, n * (n - 1), n * (n + 1)
    layout = demand_layout
    if layout == "auto":
        first_line, first = rows[0][0], len(rows[0][1])
        if first == matrix:
            layout = "teavar-matrix"
        elif pairs <= first < too_long:
            layout = "pair-list" if all(len(tokens) == pairs for _, tokens in rows) else "pair-list-trailing"
        else:
            _fail(
                path,
                f"line {first_line} has {first} values; a demand file for {n} routers holds {matrix} per line "
                f"({n}x{n} matrix), {pairs} (ordered pairs without the diagonal) or at least {pairs} and fewer "
                f"than {too_long} (ordered pairs, then trailing values){_size_hint(first, n, 'auto')}",
            )
    chosen = f" (layout {layout}, chosen from line {rows[0][0]})" if demand_layout == "auto" else ""
    for lineno, tokens in rows:
        problem = _misfit(len(tokens), n, layout)
        if problem is not None:
            _fail(path, f"line {lineno} has {len(tokens)} values, {problem}{chosen}{_size_hint(len(tokens), n, layout)}")
    width = matrix if layout == "teavar-matrix" else pairs
    samples = np.empty((len(rows), width), dtype=np.float64)
    for k, (lineno, tokens) in enumerate(rows):
        try:
            samples[k] = np.array(tokens[:width], dtype=np.float64)
        except ValueError:
            col = next(j for j, t in enumerate(tokens[:width], start=1) if not _is_float(t))
            _fail(path, f"line {lineno}, value {col}: {_shown(tokens[col - 1])} is not a number")
        bad = ~np.isfinite(samples[k]) | (samples[k] < 0)
        if bad.any():
            col = int(np.argmax(bad)) + 1
            _fail(path, f"line {lineno}, value {col}: packet size {_shown(tokens[col - 1])} must be finite and >= 0")
        big = samples[k] >= PACKET_SIZE_LIMIT
        if big.any():
            col = int(np.argmax(big)) + 1
            _fail(path, f"line {lineno}, value {col}: packet size {_shown(tokens[col - 1])} must be below {PACKET_SIZE_LIMIT}")
    if layout == "teavar-matrix":
        values = samples.reshape(len(rows), n, n).transpose(1, 2, 0).copy()
    else:
        values = np.ones((n, n, len(rows)), dtype=np.float64)
        off = ~np.eye(n, dtype=bool)
        values[off] = samples.T  # boolean indexing walks (s, d) in row-major order: the file's order
    trailing = [len(tokens) - width for _, tokens in rows]
    if demand_layout == "auto" and max(trailing) > 0:
        _warn(
            f"{path}: lines hold {_span(trailing)} values after the {pairs} ordered pairs; they are ignored "
            "(layout pair-list-trailing, as in the paper's geant_demand.txt); state that layout to read the file "
            "without this warning"
        )
    return values, layout, (min(trailing), max(trailing))


def _span(counts: list[int]) -> str:
    return f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"


def read_demand_values(path: PathLike, n: int, demand_layout: str = "auto") -> tuple[np.ndarray, str]:
    """Raw packet sizes from a demand file: (float64 [n, n, S], how lines map to pairs).

    Every non-blank line is one sample of every ordered pair (s, d); S is the number of such lines.
    `demand_layout` is one of `DEMAND_LAYOUTS` (see there); every line must fit it exactly, or a
    `TopologyError` names the file, the line and the expected number of values. The second value
    returned is `teavar-matrix` or `pair-list` (also for `pair-list-trailing`, which maps the same
    way). In a pair list the diagonal of the result is 1.
    """
    values, layout, _ = _read_demand(Path(path), n, demand_layout)
    return values, "teavar-matrix" if layout == "teavar-matrix" else "pair-list"


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_demand_file(path: PathLike, n: int, demand_layout: str = "auto") -> PacketSizeTable:
    """Per-pair packet-size distributions [n, n, S] from a TEAVAR demand.txt or a pair list.

    See `read_demand_values` and `DEMAND_LAYOUTS` for the layouts. Sizes are rounded to whole
    units >= 1. The provenance names the file and the layout used.
    """
    values, layout, trailing = _read_demand(Path(path), n, demand_layout)
    ignored = "" if trailing[1] == 0 else f"; {_span(list(trailing))} trailing values per line ignored"
    provenance = f"{path} ({layout}, {values.shape[2]} samples per pair{ignored})"
    return PacketSizeTable(values, provenance)


def _no_layout_without_demand(demand_layout: str) -> None:
    if _check_layout(demand_layout) != "auto":
        raise TopologyError(f"demand layout {demand_layout!r} is given but there is no demand file to read")


# ---------------------------------------------------------------------------- TEAVAR
def load_teavar_dir(
    path: PathLike,
    *,
    latency_ticks: int = TEAVAR_DEFAULT_LATENCY_TICKS,
    demand: PathLike | None = None,
    name: str | None = None,
    demand_layout: str = "auto",
) -> Topology:
    """A TEAVAR topology directory: `topology.txt`, optional `nodes.txt` and `demand.txt`.

    `topology.txt` lists directed links (`to_node from_node capacity prob_failure`, 1-based ids);
    the two directions of a pair make one undirected link and must agree on capacity and
    failure probability (a pair listed in one direction only is also one link). TEAVAR has no
    latencies: every link gets `latency_ticks`. Router names come from `nodes.txt` (a header
    line, then one name per line in id order), else are the ids. Packet sizes come from
    `demand` if given, else `demand.txt` in the directory if present, read under `demand_layout`
    (see `DEMAND_LAYOUTS`).
    """
    _check_layout(demand_layout)
    if isinstance(latency_ticks, bool) or not isinstance(latency_ticks, int) or latency_ticks < 1:
        raise TopologyError(f"latency_ticks must be an integer >= 1, got {latency_ticks!r}")
    directory = Path(path)
    if not directory.is_dir():
        _fail(directory, "no such directory (expected a TEAVAR directory with topology.txt)")
    topo_path = directory / "topology.txt"
    lines = _read_text(topo_path).splitlines()
    rows = [(k, line.split()) for k, line in enumerate(lines, start=1) if line.strip()]
    if not rows:
        _fail(topo_path, "empty file")
    header_line, header = rows[0]
    if tuple(h.lower() for h in header) != TEAVAR_TOPOLOGY_HEADER:
        _fail(topo_path, f"line {header_line}: header must be {' '.join(TEAVAR_TOPOLOGY_HEADER)!r}, got {' '.join(header)!r}")

    directed: dict[tuple[int, int], tuple[int, int, float]] = {}  # (to, from) -> (line, capacity, prob)
    for lineno, fields in rows[1:]:
        where = f"line {lineno}"
        if len(fields) != 4:
            _fail(topo_path, f"{where}: expected 4 columns ({' '.join(TEAVAR_TOPOLOGY_HEADER)}), got {len(fields)}")
        ends = []
        for col, token in zip(("to_node", "from_node"), fields[:2]):
            if not (token.isascii() and token.isdigit()) or int(token) < 1:
                _fail(topo_path, f"{where}: {col} {token!r} is not a router id (integer >= 1)")
            ends.append(int(token))
        to_node, from_node = ends
        if to_node == from_node:
            _fail(topo_path, f"{where}: self-loop at router {to_node}")
        if (to_node, from_node) in directed:
            _fail(topo_path, f"{where}: duplicate link {to_node}->{from_node} (also line {directed[(to_node, from_node)][0]})")
        capacity = _capacity(fields[2], f"{where}: capacity", topo_path, text=True)
        prob = _probability(fields[3], f"{where}: prob_failure", topo_path, text=True)
        directed[(to_node, from_node)] = (lineno, capacity, prob)
    if not directed:
        _fail(topo_path, "no links")

    used = {end for pair in directed for end in pair}
    num_ids = max(used)
    nodes_path = directory / "nodes.txt"
    if nodes_path.exists():
        names: list[str] = []
        name_line: dict[str, int] = {}
        for lineno, line in enumerate(_read_text(nodes_path).splitlines()[1:], start=2):  # line 1: header
            router = line.strip()
            if not router:
                continue
            if router in name_line:
                _fail(nodes_path, f"line {lineno}: duplicate router name {router!r} (also line {name_line[router]})")
            name_line[router] = lineno
            names.append(router)
        if len(names) < num_ids:
            _fail(nodes_path, f"lists {len(names)} routers but {topo_path.name} uses router id {num_ids}")
    else:
        if len(used) < num_ids:  # checked here, before a huge id makes a huge list of names
            missing = next(i for i, end in enumerate(sorted(used), start=1) if i != end)
            _fail(topo_path, f"router ids go up to {num_ids} but router {missing} has no link: it would be disconnected")
        names = [str(i) for i in range(1, num_ids + 1)]

    links: list[Link] = []
    done: set[frozenset[int]] = set()
    for (to_node, from_node), (lineno, capacity, prob) in directed.items():
        key = frozenset((to_node, from_node))
        if key in done:
            continue
        done.add(key)
        back = directed.get((from_node, to_node))
        if back is not None:
            back_line, back_capacity, back_prob = back
            if back_capacity != capacity:
                _fail(
                    topo_path,
                    f"lines {lineno} and {back_line}: the two directions of link {to_node}-{from_node} "
                    f"disagree in capacity ({capacity} vs {back_capacity}); capacity is shared by both directions",
                )
            if back_prob != prob:
                _fail(
                    topo_path,
                    f"lines {lineno} and {back_line}: the two directions of link {to_node}-{from_node} "
                    f"disagree in prob_failure ({prob} vs {back_prob})",
                )
        links.append(Link(min(key) - 1, max(key) - 1, capacity, latency_ticks, prob))

    packet_sizes = None
    demand_path = Path(demand) if demand is not None else directory / "demand.txt"
    if demand is not None or demand_path.exists():
        packet_sizes = read_demand_file(demand_path, len(names), demand_layout)
    else:
        _no_layout_without_demand(demand_layout)
    return _build(
        topo_path,
        name=name or directory.resolve().name,
        router_names=tuple(names),
        links=tuple(links),
        packet_sizes=packet_sizes,
    )


# ---------------------------------------------------------------------------- the paper's JSON
def _daphne_map(doc: Any, path: Path) -> dict[str, Any]:
    try:
        topo = doc["data"]["mapTopology"]
    except (KeyError, TypeError):
        _fail(path, 'not a paper topology file: expected {"data": {"mapTopology": {"nodes": [...], "edges": [...]}}}')
    _check_keys(doc, {"data"}, set(), "top level", path)
    _check_keys(doc["data"], {"mapTopology"}, set(), "data", path)
    if not isinstance(topo, dict):
        _fail(path, "data.mapTopology must be an object")
    for key in ("nodes", "edges"):
        if not isinstance(topo.get(key), list):
            _fail(path, f"data.mapTopology.{key} must be a list")
    _check_keys(topo, {"nodes", "edges"}, set(), "data.mapTopology", path)
    return topo


def load_daphne_json(
    path: PathLike,
    demand: PathLike | None = None,
    *,
    failure_prob: float = 0.0,
    name: str | None = None,
    demand_layout: str = "auto",
) -> Topology:
    """The paper authors' topology JSON (`{"data": {"mapTopology": {"nodes", "edges"}}}`).

    Node `name`, `posx`, `posy` become router names and coordinates; edge `BW` the capacity,
    `Lat` the latency in ticks and `name` the link name. The file has no failure probabilities:
    every link gets `failure_prob`. Packet sizes come from `demand` (see `read_demand_file`), read
    under `demand_layout` and indexed by the file's node order.
    """
    path = Path(path)
    if demand is None:
        _no_layout_without_demand(demand_layout)
    doc = _read_json(path)
    return _daphne_from_doc(doc, path, demand=demand, failure_prob=failure_prob, name=name, demand_layout=demand_layout)


def _daphne_from_doc(
    doc: Any, path: Path, *, demand: PathLike | None, failure_prob: float, name: str | None, demand_layout: str = "auto"
) -> Topology:
    topo = _daphne_map(doc, path)
    failure_prob = _probability(failure_prob, "failure_prob argument", path)
    names: list[str] = []
    coords: list[tuple[float, float]] = []
    index: dict[str, int] = {}
    for k, node in enumerate(topo["nodes"]):
        where = f"node {k}"
        if not isinstance(node, dict) or "name" not in node:
            _fail(path, f"{where}: expected an object with a 'name'")
        _check_keys(node, {"name", "posx", "posy"}, {"name"}, where, path)
        router = node["name"]
        if not isinstance(router, str) or not router:
            _fail(path, f"{where}: 'name' must be a non-empty string, got {json.dumps(router)[:40]}")
        if router in index:
            _fail(path, f"{where}: duplicate router name {router!r} (also node {index[router]})")
        index[router] = k
        names.append(router)
        if ("posx" in node) != ("posy" in node):
            _fail(path, f"{where}: give both 'posx' and 'posy' or neither")
        if "posx" in node:
            coords.append((_number(node["posx"], f"{where}: posx", path), _number(node["posy"], f"{where}: posy", path)))
    if coords and len(coords) != len(names):
        _fail(path, "posx/posy must be given for every node or for none")
    links: list[Link] = []
    link_names: list[str] = []
    for k, edge in enumerate(topo["edges"]):
        label = edge.get("name") if isinstance(edge, dict) else None
        where = f"edge {label!r}" if label is not None else f"edge {k}"
        if not isinstance(edge, dict):
            _fail(path, f"{where}: expected an object")
        _check_keys(edge, {"name", "from", "to", "BW", "Lat"}, {"from", "to", "BW", "Lat"}, where, path)
        if label is not None and (not isinstance(label, str) or not label):
            _fail(path, f"{where}: 'name' must be a non-empty string")
        ends = []
        for key in ("from", "to"):
            router = edge[key]
            if not isinstance(router, str) or router not in index:
                _fail(path, f"{where}: unknown router {router!r} in {key!r}")
            ends.append(index[router])
        links.append(
            Link(
                ends[0],
                ends[1],
                _capacity(edge["BW"], f"{where}: BW", path),
                _latency(edge["Lat"], f"{where}: Lat", path),
                failure_prob,
            )
        )
        link_names.append(label if label is not None else f"{names[ends[0]]}-{names[ends[1]]}")
    packet_sizes = read_demand_file(demand, len(names), demand_layout) if demand is not None else None
    return _build(
        path,
        name=name or path.stem,
        router_names=tuple(names),
        links=tuple(links),
        coordinates=tuple(coords) if coords else None,
        packet_sizes=packet_sizes,
        link_names=tuple(link_names),
    )


# ---------------------------------------------------------------------------- one entry point
def load_topology(spec: str | PathLike, *, demand: PathLike | None = None, demand_layout: str = "auto") -> Topology:
    """A topology from a built-in name (`b4`, `att`, `geant`; any case) or a path.

    A path may be a project-format JSON file, a paper (daphne) JSON file, a networkx node-link
    JSON file, a GraphML (`.graphml`, or XML content) or GML (`.gml`) file, e.g. from the Internet
    Topology Zoo, or a TEAVAR directory (or its `topology.txt`); the kind is detected from the
    extension and content. `topohub:GROUP/NAME` (e.g. `topohub:topozoo/AttMpls`) loads a
    topology of the optional topohub package. Built-in names win over a file of the same name
    in the working directory (write `./b4` for the file). `demand`, a demand file (see
    `read_demand_file`) read under `demand_layout` (see `DEMAND_LAYOUTS`), replaces the packet
    sizes (of a TEAVAR directory, its `demand.txt` is then not read). Files from the wild are read
    with the default `ImportSettings` of `mamrl.topologies.wild` (use its loaders for other settings).
    """
    if demand is None:
        _no_layout_without_demand(demand_layout)
    else:
        _check_layout(demand_layout)
    text = os.fspath(spec).strip()
    if not text:
        raise TopologyError("empty topology name or path")
    if text.lower() in builtin_names() and isinstance(spec, str):
        topology = load_builtin(text.lower())
    elif isinstance(spec, str) and text.lower().startswith(wild.TOPOHUB_PREFIX):
        topology = wild.load_topohub(text[len(wild.TOPOHUB_PREFIX) :])
    else:
        path = Path(text)
        if path.is_dir():
            if not (path / "topology.txt").exists():
                _fail(path, "directory has no topology.txt (not a TEAVAR topology directory)")
            return load_teavar_dir(path, demand=demand, demand_layout=demand_layout)
        elif path.is_file():
            suffix = path.suffix.lower()
            if path.name == "topology.txt":
                return load_teavar_dir(path.parent, demand=demand, demand_layout=demand_layout)
            elif suffix == ".graphml" or (suffix not in (".json", ".gml") and _looks_like_xml(path)):
                topology = wild.load_graphml(path)
            elif suffix == ".gml":
                topology = wild.load_gml(path)
            else:
                topology = _load_json_any(path)
        else:
            raise TopologyError(
                f"unknown topology {text!r}: not a built-in ({', '.join(builtin_names())}), "
                f"not {wild.TOPOHUB_PREFIX}GROUP/NAME, and no such file or directory"
            )
    if demand is not None:
        topology = topology.with_packet_sizes(read_demand_file(demand, topology.num_routers, demand_layout))
    return topology


def _looks_like_xml(path: Path) -> bool:
    """Whether a file starts (after whitespace) with `<`: GraphML under another extension."""
    try:
        with path.open("rb") as handle:
            head = handle.read(256).lstrip()
    except OSError:
        return False
    return head.startswith((b"<", b"\xef\xbb\xbf<"))


def _load_json_any(path: Path) -> Topology:
    text = _read_text(path)
    try:
        doc = _loads(text, path)
    except json.JSONDecodeError as exc:
        _fail(
            path,
            f"not a topology file: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
            "expected a mamrl, paper or networkx node-link JSON file, a GraphML file, or a TEAVAR directory",
        )
    if isinstance(doc, dict) and "format" in doc:
        return topology_from_document(doc, path)
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict) and "mapTopology" in doc["data"]:
        return _daphne_from_doc(doc, path, demand=None, failure_prob=0.0, name=None)
    if wild.is_node_link(doc):
        return wild.topology_from_node_link(doc, path.stem, where=path)
    _fail(
        path,
        f"unrecognised JSON: neither {FORMAT!r} (a 'format' key), a paper file (data.mapTopology) "
        "nor networkx node-link data ('nodes' and 'links' or 'edges')",
    )
