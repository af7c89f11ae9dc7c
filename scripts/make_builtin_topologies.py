#!/usr/bin/env python
"""Generate the built-in topologies (src/mamrl/topologies/data/{b4,geant,att}.json).

Reads the third-party data in ../shared/data (TEAVAR's B4 and ATT, the paper's JSON files and
GEANT demand) by path, checks that the sources agree where they overlap, and writes facts in the
project's own format. Packet sizes are stored as 16 quantiles per ordered pair, not the raw data.

    python scripts/make_builtin_topologies.py [--data ../shared/data] [--out DIR] [--check]

`--check` writes nothing and exits 1 if the files in DIR differ from what would be generated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mamrl.topologies.builtin import PAPER_FAILURES
from mamrl.topologies.core import Link, PacketSizeTable, Topology
from mamrl.topologies.loaders import (
    dump_document,
    load_daphne_json,
    load_teavar_dir,
    read_demand_values,
    topology_to_document,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "src" / "mamrl" / "topologies" / "data"

QUANTILES = 16
PROBABILITIES = (np.arange(QUANTILES) + 0.5) / QUANTILES

SUMMARY_TEXT = (
    "16 quantiles per ordered pair at probabilities (k+0.5)/16, k=0..15 (numpy 'linear' method), "
    "rounded to integers >= 1: an equal-weight 16-point approximation of each pair's empirical "
    "distribution of the {count} values in {source}. For the full distribution, pass that file as "
    "the demand (--demand)."
)


def summarise(raw: np.ndarray, source: str) -> PacketSizeTable:
    """16-quantile summary [N, N, 16] of raw sizes [N, N, S]; the unused diagonal is 1."""
    n = raw.shape[0]
    q = np.quantile(raw, PROBABILITIES, axis=2).transpose(1, 2, 0)
    q = np.maximum(1, np.rint(q))
    q[np.eye(n, dtype=bool)] = 1
    return PacketSizeTable(q.astype(np.int64), SUMMARY_TEXT.format(count=raw.shape[2], source=source))


def edge_set(topology: Topology, rename: dict[str, str] | None = None) -> set[frozenset[str]]:
    """Links as unordered pairs of router names, optionally renamed."""
    rename = rename or {}
    names = [rename.get(x, x) for x in topology.router_names]
    return {frozenset((names[link.a], names[link.b])) for link in topology.links}


def uniform(values: np.ndarray, what: str) -> float:
    assert np.all(values == values[0]), f"{what} is not uniform: {sorted(set(values.tolist()))}"
    return values[0].item()


def from_daphne_and_teavar(
    daphne: Topology,
    teavar: Topology,
    to_teavar: dict[str, str],
    name: str,
    data: Path,
    demand_source: str,
) -> tuple[Topology, np.ndarray]:
    """(topology, raw sizes): routers ordered by TEAVAR id (so TEAVAR's demand.txt applies as
    is), daphne names, coordinates, edges and edge order; capacity and failure probability from
    TEAVAR; packet sizes summarised from the TEAVAR demand."""
    assert edge_set(daphne, to_teavar) == edge_set(teavar), f"{name}: daphne and TEAVAR edge sets differ"
    assert uniform(daphne.capacities, f"{name} daphne BW") == uniform(teavar.capacities, f"{name} TEAVAR capacity")
    teavar_index = {x: i for i, x in enumerate(teavar.router_names)}
    order = sorted(range(daphne.num_routers), key=lambda i: teavar_index[to_teavar[daphne.router_names[i]]])
    new_id = {old: new for new, old in enumerate(order)}
    teavar_link = {frozenset((teavar.router_names[l.a], teavar.router_names[l.b])): l for l in teavar.links}
    links = []
    for link in daphne.links:
        source = teavar_link[frozenset((to_teavar[daphne.router_names[link.a]], to_teavar[daphne.router_names[link.b]]))]
        links.append(Link(new_id[link.a], new_id[link.b], source.capacity, link.latency_ticks, source.failure_prob))
    assert daphne.coordinates is not None
    raw, layout = read_demand_values(data / demand_source, teavar.num_routers)
    assert layout == "teavar-matrix"
    topology = Topology(
        name=name,
        router_names=tuple(daphne.router_names[i] for i in order),
        links=tuple(links),
        coordinates=tuple(daphne.coordinates[i] for i in order),
        packet_sizes=summarise(raw, demand_source),
        link_names=daphne.link_names,
    )
    return topology, raw


def build_b4(data: Path) -> tuple[Topology, str, list[str]]:
    daphne = load_daphne_json(data / "daphne" / "b4.json")
    teavar = load_teavar_dir(data / "teavar" / "B4")
    assert (daphne.num_routers, daphne.num_links) == (12, 19)
    letters = "ABCDEFGHIJKL"
    # TEAVAR numbers D and E the other way round; every other letter k is s(k+1).
    to_teavar = {x: f"s{k + 1}" for k, x in enumerate(letters)} | {"D": "s5", "E": "s4"}
    plain = {x: f"s{k + 1}" for k, x in enumerate(letters)}
    assert edge_set(daphne, plain) != edge_set(teavar), "b4: expected the D/E swap, found identical numbering"
    topology, raw = from_daphne_and_teavar(daphne, teavar, to_teavar, "b4", data, "teavar/B4/demand.txt")
    assert topology.router_names == tuple("ABCEDFGHIJKL")
    assert set(topology.capacities.tolist()) == {5_000_000}
    assert set(topology.failure_probs.tolist()) == {0.004}
    source = "paper b4.json (routers, coordinates, edges, latency) + TEAVAR B4 (capacity, failure_prob, demand)"
    notes = [
        "TEAVAR B4 numbers the routers differently from the paper's letters: D is TEAVAR s5 and E is s4 "
        "(A=s1, B=s2, C=s3, F=s6 ... L=s12); the edge sets agree exactly under this map.",
        "Routers are listed in TEAVAR id order (A B C E D F ... L) so that router id k is TEAVAR s(k+1) and "
        "teavar/B4/demand.txt can be passed as the demand unchanged.",
        "Capacity 5,000,000 and failure_prob 0.004 on every link (TEAVAR topology.txt; the paper's BW agrees); "
        "latency 3 ticks (paper's Lat).",
        f"Packet sizes: 16-quantile summary of TEAVAR B4 demand.txt, whose largest entry ({raw.max():,.0f}) is "
        "below the capacity; the diagonal of demand.txt is unused.",
    ]
    return topology, source, notes


def build_att(data: Path) -> tuple[Topology, str, list[str]]:
    daphne = load_daphne_json(data / "daphne" / "att.json")
    teavar = load_teavar_dir(data / "teavar" / "ATT")
    assert (daphne.num_routers, daphne.num_links) == (25, 56)
    to_teavar = {str(k): f"s{k}" for k in range(1, 26)}
    assert daphne.router_names == tuple(str(k) for k in range(1, 26))
    topology, raw = from_daphne_and_teavar(daphne, teavar, to_teavar, "att", data, "teavar/ATT/demand.txt")
    assert topology.router_names == daphne.router_names
    assert set(topology.capacities.tolist()) == {1_200_000}
    assert set(topology.failure_probs.tolist()) == {0.001}
    odd = [f"{topology.link_name(e)} ({topology.router_names[l.a]}-{topology.router_names[l.b]}): {l.latency_ticks}"
           for e, l in enumerate(topology.links) if l.latency_ticks != 3]
    source = "paper att.json (routers, coordinates, edges, latency) + TEAVAR ATT (capacity, failure_prob, demand)"
    notes = [
        "Router names '1'..'25' are TEAVAR s1..s25; the edge sets are identical.",
        "Capacity 1,200,000 and failure_prob 0.001 on every link (TEAVAR topology.txt; the paper's BW agrees).",
        "Latency 3 ticks except " + ", ".join(odd) + " (paper's Lat).",
        f"Packet sizes: 16-quantile summary of TEAVAR ATT demand.txt, whose largest entry ({raw.max():,.0f}) is "
        "below the capacity; the diagonal of demand.txt is unused.",
    ]
    return topology, source, notes


def build_geant(data: Path) -> tuple[Topology, str, list[str]]:
    daphne = load_daphne_json(data / "daphne" / "geant.json", failure_prob=0.001)
    assert (daphne.num_routers, daphne.num_links) == (22, 32)
    assert set(daphne.capacities.tolist()) == {5_000_000} and set(daphne.latencies.tolist()) == {3}
    relative = "daphne/geant_demand.txt"
    raw, layout = read_demand_values(data / relative, daphne.num_routers)
    assert layout == "pair-list"
    topology = daphne.with_packet_sizes(summarise(raw, relative))
    names = sorted(daphne.router_names, key=int)
    off = ~np.eye(daphne.num_routers, dtype=bool)
    source = "paper geant.json (routers, coordinates, edges, capacity, latency) + paper geant_demand.txt"
    notes = [
        f"22 routers and 32 links as in the paper's geant.json; the paper's Table 1 says 21 routers. "
        f"Router names run {names[0]}..{names[-1]} without "
        + ", ".join(str(k) for k in range(1, 24) if str(k) not in names)
        + "; routers are in the JSON's (non-numeric) order.",
        "failure_prob 0.001 on every link is an ASSUMPTION: no source gives GEANT failure probabilities; "
        "only the relative weights matter when sampling single-link failures, so this is uniform sampling.",
        f"Packet sizes: our reading of geant_demand.txt: each of its {raw.shape[2]} non-blank lines (501-503 "
        "values) gives one sample per ordered pair, its first 462 values being the 22*21 pairs (s, d), s != d, "
        "row-major over the JSON's router order with the diagonal skipped; the remaining values are ignored. "
        f"The file documents no layout; {np.mean(raw[off] < 1):.1%} of the values used are below 1 and count as size 1.",
    ]
    return topology, source, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for build in (build_b4, build_geant, build_att):
        topology, source, notes = build(args.data)
        for spec in PAPER_FAILURES[topology.name]:
            topology.link_id(spec)
        check_paper_tasks(args.data, topology)
        text = dump_document(topology_to_document(topology, source=source, notes=notes))
        target = args.out / f"{topology.name}.json"
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(str(target))
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target} ({topology.num_routers} routers, {topology.num_links} links, "
                  f"mean packet size {topology.packet_sizes.mean_size:,.0f})")
    if stale:
        print("out of date (rerun scripts/make_builtin_topologies.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


def check_paper_tasks(data: Path, topology: Topology) -> None:
    """The paper's task files fail exactly the links listed in PAPER_FAILURES, in order."""
    for k, spec in enumerate(PAPER_FAILURES[topology.name], start=1):
        task = load_daphne_json(data / "daphne" / f"{topology.name}_task{k}.json")
        down = [e for e in range(task.num_links) if task.links[e].capacity == 0]
        assert len(down) == 1, f"{topology.name}_task{k}: expected one failed link, got {down}"
        link = task.links[down[0]]
        assert topology.link_id(spec) == topology.link_id(
            f"{task.router_names[link.a]}-{task.router_names[link.b]}"
        ), f"{topology.name}_task{k} fails {task.link_name(down[0])}, not {spec}"


if __name__ == "__main__":
    sys.exit(main())
