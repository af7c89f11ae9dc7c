"""Drawing a topology, optionally with what a run did on it.

Routers sit at the topology's coordinates when it has them (the built-ins carry drawing
coordinates in [0, 1], y up), else at a networkx spring layout with a fixed seed. Links are
coloured by their mean utilisation (time-average share of capacity reserved) with a colour bar from
0 to the largest value; failed links are drawn dashed red; routers are sized and coloured by the
packets lost there per episode. Labels are the router names.

Uses `matplotlib.figure.Figure` with the Agg canvas directly (no pyplot, no backend switch).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import matplotlib.colors as mcolors
import networkx as nx
import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mamrl.errors import MamrlError
from mamrl.topologies.core import Topology

LAYOUT_SEED = 0
"""Seed of the spring layout used for topologies without coordinates."""

FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
"""Output formats by file suffix."""

_LINK_CMAP = mcolors.LinearSegmentedColormap.from_list(
    "mamrl_links", colormaps["viridis"](np.linspace(0.0, 0.88, 256))
)  # viridis without its pale yellow end, which vanishes on white
_NODE_CMAP = mcolors.LinearSegmentedColormap.from_list(
    "mamrl_loss", colormaps["Oranges"](np.linspace(0.15, 0.95, 256))
)
_NODE_SIZE = 520.0  # points^2 of a router without losses
_NODE_SIZE_MAX = 1500.0  # points^2 of the router with the most losses


def coordinates_usable(topology: Topology) -> bool:
    """Whether the topology's coordinates can place its routers: present, and no two routers at
    (almost) the same point. (The paper's GEANT and ATT files stack many routers on one point.)"""
    if topology.coordinates is None:
        return False
    pos = np.asarray(topology.coordinates, dtype=np.float64)
    span = float(np.ptp(pos, axis=0).max())
    if not np.all(np.isfinite(pos)) or span <= 0:
        return False
    gaps = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    np.fill_diagonal(gaps, np.inf)
    return bool(gaps.min() > 1e-3 * span)


def router_positions(topology: Topology, seed: int = LAYOUT_SEED) -> np.ndarray:
    """float64 [N, 2]: the topology's coordinates when usable (see `coordinates_usable`), else a
    spring layout with a fixed seed (deterministic)."""
    if coordinates_usable(topology):
        return np.asarray(topology.coordinates, dtype=np.float64)
    graph = nx.Graph()
    graph.add_nodes_from(range(topology.num_routers))
    graph.add_edges_from((link.a, link.b) for link in topology.links)
    pos = nx.spring_layout(graph, seed=seed, iterations=200)
    return np.array([pos[i] for i in range(topology.num_routers)], dtype=np.float64)


def layout_note(topology: Topology) -> str:
    """How the routers are placed, for a caption."""
    if coordinates_usable(topology):
        return "routers at the topology's coordinates"
    if topology.coordinates is None:
        return f"spring layout (seed {LAYOUT_SEED}): no coordinates"
    return f"spring layout (seed {LAYOUT_SEED}): the topology's coordinates put several routers on one point"


def link_label(topology: Topology, link: int) -> str:
    """`A-B` by router names, with the link's own name in brackets when it has a different one."""
    ends = f"{topology.router_names[topology.links[link].a]}-{topology.router_names[topology.links[link].b]}"
    name = topology.link_name(link)
    return ends if name == ends else f"{ends} ({name})"


def _link_paths(topology: Topology, pos: np.ndarray) -> list[np.ndarray]:
    """One polyline per link: straight, or a gentle arc when the straight line would pass
    through another router (so that it cannot be mistaken for two links meeting there)."""
    span = max(float(np.ptp(pos, axis=0).max()), 1e-9)
    paths = []
    for link in topology.links:
        a, b = pos[link.a], pos[link.b]
        d = b - a
        length = float(np.hypot(*d))
        blocked = False
        if length > 0:
            for k in range(topology.num_routers):
                if k in (link.a, link.b):
                    continue
                t = float(np.dot(pos[k] - a, d) / length**2)
                if 0.0 < t < 1.0 and np.hypot(*(a + t * d - pos[k])) < 0.04 * span:
                    blocked = True
                    break
        if not blocked:
            paths.append(np.array([a, b]))
            continue
        normal = np.array([-d[1], d[0]]) / length
        control = (a + b) / 2 + normal * 0.12 * length
        t = np.linspace(0.0, 1.0, 32)[:, None]
        paths.append((1 - t) ** 2 * a + 2 * (1 - t) * t * control + t**2 * b)
    return paths


def _check_vector(values: np.ndarray | Sequence[float] | None, size: int, what: str) -> np.ndarray | None:
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (size,):
        raise MamrlError(f"{what} must have shape ({size},), got {arr.shape}")
    return arr


def draw_topology(
    ax: Axes,
    topology: Topology,
    *,
    link_utilisation: np.ndarray | Sequence[float] | None = None,
    lost_per_router: np.ndarray | Sequence[float] | None = None,
    failed_links: Sequence[int] = (),
    positions: np.ndarray | None = None,
) -> dict[str, ScalarMappable]:
    """Draw `topology` on `ax`; returns the colour mappables (`"links"`, `"routers"`) to add colour
    bars for (only those that carry data)."""
    util = _check_vector(link_utilisation, topology.num_links, "link_utilisation")
    lost = _check_vector(lost_per_router, topology.num_routers, "lost_per_router")
    pos = router_positions(topology) if positions is None else np.asarray(positions, dtype=np.float64)
    failed = {int(e) for e in failed_links}
    mappables: dict[str, ScalarMappable] = {}

    segments = _link_paths(topology, pos)
    working = [e for e in range(topology.num_links) if e not in failed]
    if util is not None:
        finite = util[np.isfinite(util)]
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        norm = mcolors.Normalize(vmin=0.0, vmax=vmax)
        colours = [_LINK_CMAP(norm(u)) if np.isfinite(u) else (0.7, 0.7, 0.7, 1.0) for u in util[working]]
        mappables["links"] = ScalarMappable(norm=norm, cmap=_LINK_CMAP)
    else:
        colours = [(0.45, 0.45, 0.45, 1.0)] * len(working)
    ax.add_collection(LineCollection([segments[e] for e in working], colors=colours, linewidths=3.0, zorder=1, capstyle="round"))
    if failed:
        ax.add_collection(
            LineCollection(
                [segments[e] for e in sorted(failed)], colors="red", linewidths=3.0, linestyles=(0, (3, 2)), zorder=2
            )
        )

    if lost is not None and np.nanmax(lost, initial=0.0) > 0:
        lmax = float(np.nanmax(lost))
        lnorm = mcolors.Normalize(vmin=0.0, vmax=lmax)
        face = [_NODE_CMAP(lnorm(x)) if x > 0 else (1.0, 1.0, 1.0, 1.0) for x in lost]
        sizes = _NODE_SIZE + (_NODE_SIZE_MAX - _NODE_SIZE) * np.sqrt(np.clip(lost, 0, None) / lmax)
        mappables["routers"] = ScalarMappable(norm=lnorm, cmap=_NODE_CMAP)
    else:
        face = [(1.0, 1.0, 1.0, 1.0)] * topology.num_routers
        sizes = np.full(topology.num_routers, _NODE_SIZE)
    ax.scatter(pos[:, 0], pos[:, 1], s=sizes, c=face, edgecolors="black", linewidths=1.2, zorder=3)
    for i, name in enumerate(topology.router_names):
        r, g, b, _ = face[i]
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
        ax.text(
            pos[i, 0], pos[i, 1], name, ha="center", va="center", fontsize=9 if len(name) <= 3 else 7,
            color="white" if dark else "black", fontweight="bold", zorder=4,
        )

    span = np.ptp(pos, axis=0)
    pad = 0.08 * max(float(span.max()), 1e-9)
    ax.set_xlim(pos[:, 0].min() - pad, pos[:, 0].max() + pad)
    ax.set_ylim(pos[:, 1].min() - pad, pos[:, 1].max() + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return mappables


def plot_topology(
    topology: Topology,
    *,
    link_utilisation: np.ndarray | Sequence[float] | None = None,
    lost_per_router: np.ndarray | Sequence[float] | None = None,
    failed_links: Sequence[int] = (),
    failure_labels: Sequence[str] = (),
    title: str | None = None,
    subtitle: str | None = None,
) -> Figure:
    """A figure of `topology` with colour bars for link utilisation and router losses.

    `failure_labels` (e.g. `"D-E @ tick 0"`) go into the legend entry of the failed links.
    """
    pos = router_positions(topology)
    span = np.ptp(pos, axis=0)
    aspect = float(span[1] / span[0]) if span[0] > 0 else 1.0
    width = 9.0
    height = min(max(6.5 * aspect, 4.5), 10.0) + 2.5  # drawing + titles, legend and colour bar
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    mappables = draw_topology(
        ax,
        topology,
        link_utilisation=link_utilisation,
        lost_per_router=lost_per_router,
        failed_links=failed_links,
        positions=pos,
    )
    if "links" in mappables:
        bar = fig.colorbar(mappables["links"], ax=ax, location="bottom", shrink=0.6, pad=0.02, aspect=35)
        bar.set_label("mean link utilisation (time-average share of capacity in use)")
    if "routers" in mappables:
        bar = fig.colorbar(mappables["routers"], ax=ax, location="right", shrink=0.6, pad=0.02, aspect=25)
        bar.set_label("packets lost at router, per episode (also marker size)")
    handles = []
    if failed_links:
        label = "failed link" + ("s" if len(failed_links) > 1 else "")
        if failure_labels:
            label += ": " + ", ".join(failure_labels)
        handles.append(Line2D([], [], color="red", linewidth=3.0, linestyle=(0, (3, 2)), label=label))
    if lost_per_router is not None and "routers" not in mappables:
        handles.append(
            Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="black",
                   markersize=10, label="no packets lost at any router")
        )
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=len(handles),
                  frameon=False, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=13)
    if subtitle:
        ax.set_title(subtitle, fontsize=10)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
    """Write `fig` in the format given by the suffix of `path` (.png, .pdf or .svg)."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise MamrlError(f"cannot write figure {str(path)!r}: use a .png, .pdf or .svg file name")
    if path.is_dir():
        raise MamrlError(f"cannot write figure {str(path)!r}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format=fmt, dpi=dpi)
    except OSError as exc:
        raise MamrlError(f"cannot write figure {str(path)!r}: {exc.strerror or exc}") from None
    return path


def format_title(topology: Topology, load: float, policy: str, delivered_fraction: float) -> str:
    delivered = "n/a" if not math.isfinite(delivered_fraction) else f"{100 * delivered_fraction:.1f}%"
    return f"{topology.name}: λ = {load:g} packets/router/tick, {policy}, delivered {delivered}"


__all__ = [
    "FORMATS",
    "LAYOUT_SEED",
    "coordinates_usable",
    "draw_topology",
    "format_title",
    "layout_note",
    "link_label",
    "plot_topology",
    "router_positions",
    "save_figure",
]
