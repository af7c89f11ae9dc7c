"""Drawing a topology, optionally with what a run did on it.

**Placement.** A topology with geographic coordinates (`Topology.geographic`: imported from
Topology Zoo `Latitude`/`Longitude`, or from topohub) is drawn as a map: longitude on x, latitude
on y, in the equirectangular projection corrected at the routers' mean latitude φ̄ — one degree of
longitude is drawn cos φ̄ times as long as one degree of latitude (the axes' aspect is 1 / cos φ̄),
so distances and angles look right around φ̄ — with axes in degrees and a light graticule. A
network across the antimeridian is unwrapped (longitudes taken in [0°, 360°), ticks still read in
[-180°, 180°]). Routers at one location (Topology Zoo often puts several routers in one city) are
spread on a small circle around it; the caption says how many. Other topologies keep their
look: routers at the topology's drawing coordinates when usable (the built-ins carry coordinates
in [0, 1], y up), else at a networkx spring layout with a fixed seed, without axes.

**Links** are coloured by one metric, `color_links` (CLI `--color-links`):

* `"utilisation"` (default): mean utilisation, the time-average share of the link's capacity
  reserved by packets in flight, from 0 to the largest value (viridis);
* `"loss"`: packets lost *on the link* per episode — sent when it lacked the capacity (saturated,
  or down) or in flight on it when it failed (the simulator's per-link count, `lost_per_link`) —
  from light grey (none) through orange to dark brown.

One metric per figure, each with its own colour bar, because the two answer different questions
(where is the bottleneck? where are packets lost?) and a second channel such as line width is
hard to read quantitatively; draw the run twice to see both. **Failed links** are not coloured by
the metric: they are dashed red with a red X at their middle and a legend entry (which link, from
which tick); they are left out of the colour scale so that a failed link's large loss does not
wash out the others, and with `"loss"` the legend gives their loss per episode (text beside a
short link would sit under its routers).

**Routers** are sized and coloured by one metric, `color_routers` (CLI `--color-routers`):

* `"loss"` (default): packets lost at them per episode (`lost_per_router`: every loss, counted
  at the sending router, plus buffer drops), in oranges;
* `"queue"`: mean queue length, the packets queued at the router at the end of each tick
  averaged over the horizon (`queue_per_router`), in purples: where packets wait.

Labels are the router names.

Uses `matplotlib.figure.Figure` with the Agg canvas directly (no pyplot, no backend switch).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import matplotlib.colors as mcolors
import networkx as nx
import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter
from PIL import Image

from mamrl.errors import MamrlError
from mamrl.runs import atomic_file
from mamrl.plotting.style import current_style, new_figure, set_suptitle
from mamrl.topologies.core import Topology

if TYPE_CHECKING:
    from mamrl.experiments.simulate import Simulation

LAYOUT_SEED = 0
"""Seed of the spring layout used for topologies without coordinates."""

FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
"""Output formats by file suffix."""

LINK_METRICS = ("utilisation", "loss")
"""What `color_links` may colour the links by (see the module docstring)."""

LINK_METRIC_LABELS = {
    "utilisation": "mean link utilisation (time-average share of capacity in use)",
    "loss": "packets lost on the link, per episode (no capacity left, or in flight when it failed)",
}
"""Colour-bar label of each link metric."""

ROUTER_METRICS = ("loss", "queue")
"""What `color_routers` may colour the routers by (see the module docstring)."""

ROUTER_METRIC_LABELS = {
    "loss": "packets lost at router, per episode (also marker size)",
    "queue": "mean queue length at router, packets (also marker size)",
}
"""Colour-bar label of each router metric."""

_ROUTER_EMPTY_LABELS = {"loss": "no packets lost at any router", "queue": "no packet queued at any router"}

_LINK_CMAP = mcolors.LinearSegmentedColormap.from_list(
    "mamrl_links", colormaps["viridis"](np.linspace(0.0, 0.88, 256))
)  # viridis without its pale yellow end, which vanishes on white
_LINK_LOSS_CMAP = mcolors.LinearSegmentedColormap.from_list(
    "mamrl_link_loss", [(0.72, 0.72, 0.72), colormaps["Oranges"](0.5), colormaps["Oranges"](0.8), (0.45, 0.15, 0.02)]
)  # grey for "nothing lost" (still visible on white), then the routers' orange for losses
_NODE_CMAP = mcolors.LinearSegmentedColormap.from_list(
    "mamrl_loss", colormaps["Oranges"](np.linspace(0.15, 0.95, 256))
)
_NODE_QUEUE_CMAP = mcolors.LinearSegmentedColormap.from_list(
    "mamrl_queue", colormaps["Purples"](np.linspace(0.15, 0.95, 256))
)
_NO_DATA = (0.7, 0.7, 0.7, 1.0)  # a link without a value (capacity 0: utilisation undefined)
_FAILED = "red"
_FAILED_STYLE = (0, (3, 2))
_NODE_SIZE = 520.0  # points^2 of a router without losses
_NODE_SIZE_MAX = 1500.0  # points^2 of the router with the most losses
_MIN_MAP_SCALE = 0.05  # cos(87°): keeps a map of routers near a pole finite
_SPREAD_RADIUS = 0.025  # routers sharing a location: circle radius, as a share of the map's span


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


def is_map(topology: Topology) -> bool:
    """Whether `topology` is drawn as a map: geographic coordinates, finite, not all at one point."""
    if not topology.geographic or topology.coordinates is None:
        return False
    pos = np.asarray(topology.coordinates, dtype=np.float64)
    return bool(np.all(np.isfinite(pos)) and float(np.ptp(pos, axis=0).max()) > 0)


def map_scale(lonlat: np.ndarray) -> float:
    """cos of the mean latitude of `lonlat` [N, 2]: the length of a degree of longitude relative to
    a degree of latitude there (at least cos 87°)."""
    return max(math.cos(math.radians(float(np.mean(lonlat[:, 1])))), _MIN_MAP_SCALE)


def _unwrap_longitudes(lon: np.ndarray) -> np.ndarray:
    """Longitudes in [0, 360) when that shrinks their span (a network across the antimeridian)."""
    shifted = np.mod(lon, 360.0)
    return shifted if float(np.ptp(shifted)) < float(np.ptp(lon)) else lon


def _map_positions(topology: Topology) -> tuple[np.ndarray, int]:
    """(longitude, latitude) [N, 2] of a map topology, with routers that share a location spread
    on a small circle around it; and how many routers were moved."""
    pos = np.asarray(topology.coordinates, dtype=np.float64).copy()
    pos[:, 0] = _unwrap_longitudes(pos[:, 0])
    scale = map_scale(pos)
    xy = pos * np.array([scale, 1.0])  # the projection: equal lengths on the drawing
    span = float(np.ptp(xy, axis=0).max())
    gaps = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
    close = gaps <= 1e-3 * span
    group = list(range(len(xy)))  # union-find of the routers at one location
    for i, j in zip(*np.nonzero(np.triu(close, k=1))):
        ri, rj = group[i], group[j]
        while group[ri] != ri:
            ri = group[ri]
        while group[rj] != rj:
            rj = group[rj]
        group[max(ri, rj)] = min(ri, rj)
    roots = []
    for i in range(len(xy)):
        r = i
        while group[r] != r:
            r = group[r]
        roots.append(r)
    moved = 0
    for root in sorted(set(roots)):
        members = [i for i, r in enumerate(roots) if r == root]
        if len(members) < 2:
            continue
        centre = xy[members].mean(axis=0)
        radius = _SPREAD_RADIUS * span * max(1.0, len(members) / 6)  # more routers, wider circle
        for k, i in enumerate(members):
            angle = math.pi / 2 + 2 * math.pi * k / len(members)
            xy[i] = centre + radius * np.array([math.cos(angle), math.sin(angle)])
        moved += len(members)
    return xy / np.array([scale, 1.0]), moved


def router_positions(topology: Topology, seed: int = LAYOUT_SEED) -> np.ndarray:
    """float64 [N, 2]: (longitude, latitude) for a map (see `is_map`), else the topology's
    coordinates when usable (see `coordinates_usable`), else a spring layout with a fixed seed
    (deterministic)."""
    if is_map(topology):
        return _map_positions(topology)[0]
    if coordinates_usable(topology):
        return np.asarray(topology.coordinates, dtype=np.float64)
    graph = nx.Graph()
    graph.add_nodes_from(range(topology.num_routers))
    graph.add_edges_from((link.a, link.b) for link in topology.links)
    pos = nx.spring_layout(graph, seed=seed, iterations=200)
    return np.array([pos[i] for i in range(topology.num_routers)], dtype=np.float64)


def layout_note(topology: Topology) -> str:
    """How the routers are placed, for a caption."""
    if is_map(topology):
        pos, moved = _map_positions(topology)
        lat = float(np.mean(pos[:, 1]))
        note = f"map: equirectangular at the mean latitude {lat:.1f}° (1° of longitude drawn cos {lat:.1f}° = {map_scale(pos):.2f} × 1° of latitude)"
        if moved:
            note += f"; {moved} routers sharing a location spread around it"
        return note
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


def _link_paths(topology: Topology, pos: np.ndarray, xscale: float = 1.0) -> list[np.ndarray]:
    """One polyline per link: straight, or a gentle arc when the straight line would pass
    through another router (so that it cannot be mistaken for two links meeting there).
    `xscale` stretches x to drawing proportions first (a map's cos of the mean latitude)."""
    stretch = np.array([xscale, 1.0])
    pos = pos * stretch
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
            paths.append(np.array([a, b]) / stretch)
            continue
        normal = np.array([-d[1], d[0]]) / length
        control = (a + b) / 2 + normal * 0.12 * length
        t = np.linspace(0.0, 1.0, 32)[:, None]
        paths.append(((1 - t) ** 2 * a + 2 * (1 - t) * t * control + t**2 * b) / stretch)
    return paths


def _midpoint(path: np.ndarray) -> np.ndarray:
    """The middle of a polyline (of an arc: its middle sample)."""
    return (path[0] + path[-1]) / 2 if len(path) == 2 else path[len(path) // 2]


def _check_vector(values: np.ndarray | Sequence[float] | None, size: int, what: str) -> np.ndarray | None:
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (size,):
        raise MamrlError(f"{what} must have shape ({size},), got {arr.shape}")
    return arr


def _check_metric(color_links: str) -> str:
    if color_links not in LINK_METRICS:
        raise MamrlError(f"color_links must be one of {', '.join(LINK_METRICS)}, got {color_links!r}")
    return color_links


def check_router_metric(color_routers: str) -> str:
    """The canonical router metric of `color_routers` / `--color-routers` (one line if unknown)."""
    metric = color_routers.strip().lower()
    if metric not in ROUTER_METRICS:
        raise MamrlError(f"--color-routers must be loss or queue, got {color_routers!r}")
    return metric


def _style_map(ax: Axes, pos: np.ndarray) -> None:
    """Degree axes, the projection's aspect and a light graticule."""
    ax.set_aspect(1.0 / map_scale(pos))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    # Unwrapped longitudes beyond 180° still read as the usual -180..180.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v - 360 if v > 180 else v:g}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.grid(True, color="0.88", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(colors="0.35", labelsize=8)
    for spine in ax.spines.values():
        spine.set_color("0.7")


def draw_topology(
    ax: Axes,
    topology: Topology,
    *,
    link_utilisation: np.ndarray | Sequence[float] | None = None,
    link_loss: np.ndarray | Sequence[float] | None = None,
    color_links: str = "utilisation",
    lost_per_router: np.ndarray | Sequence[float] | None = None,
    failed_links: Sequence[int] = (),
    positions: np.ndarray | None = None,
    queue_per_router: np.ndarray | Sequence[float] | None = None,
    color_routers: str = "loss",
) -> dict[str, ScalarMappable]:
    """Draw `topology` on `ax`; returns the colour mappables (`"links"`, `"routers"`) to add colour
    bars for (only those that carry data).

    Links are coloured by `link_utilisation` or `link_loss` as `color_links` says (each [E]),
    routers by `lost_per_router` or `queue_per_router` as `color_routers` says (each [N]);
    the working links are one `LineCollection` (gid `"links"`, its array the chosen metric of
    the working links in link order), the failed ones another (gid `"failed-links"`).
    """
    metric = _check_metric(color_links)
    util = _check_vector(link_utilisation, topology.num_links, "link_utilisation")
    loss = _check_vector(link_loss, topology.num_links, "link_loss")
    router_metric = check_router_metric(color_routers)
    lost = _check_vector(lost_per_router, topology.num_routers, "lost_per_router")
    queued = _check_vector(queue_per_router, topology.num_routers, "queue_per_router")
    if router_metric == "queue" and queued is None:
        raise MamrlError("color_routers='queue' needs queue_per_router (mean queue length per router)")
    router_values = lost if router_metric == "loss" else queued
    values = util if metric == "utilisation" else loss
    if metric == "loss" and loss is None:
        raise MamrlError("color_links='loss' needs link_loss (packets lost per link)")
    geographic = is_map(topology)
    pos = router_positions(topology) if positions is None else np.asarray(positions, dtype=np.float64)
    xscale = map_scale(pos) if geographic else 1.0
    failed = sorted({int(e) for e in failed_links})
    mappables: dict[str, ScalarMappable] = {}

    segments = _link_paths(topology, pos, xscale)
    working = [e for e in range(topology.num_links) if e not in failed]
    collection = LineCollection([segments[e] for e in working], linewidths=3.0, zorder=1, capstyle="round")
    collection.set_gid("links")
    if values is not None:
        shown = values[working]
        finite = shown[np.isfinite(shown)]
        # Failed links stay out of the scale: their loss would wash out every other link's.
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        cmap = (_LINK_CMAP if metric == "utilisation" else _LINK_LOSS_CMAP).with_extremes(bad=_NO_DATA)
        collection.set_array(shown)
        collection.set_cmap(cmap)
        collection.set_norm(mcolors.Normalize(vmin=0.0, vmax=vmax))
        mappables["links"] = collection
    else:
        collection.set_color([(0.45, 0.45, 0.45, 1.0)] * len(working))
    ax.add_collection(collection)
    if failed:
        dashed = LineCollection([segments[e] for e in failed], colors=_FAILED, linewidths=3.0,
                                linestyles=_FAILED_STYLE, zorder=2)
        dashed.set_gid("failed-links")
        ax.add_collection(dashed)
        middles = np.array([_midpoint(segments[e]) for e in failed])
        marks = ax.scatter(middles[:, 0], middles[:, 1], marker="X", s=130, c=_FAILED, edgecolors="white",
                           linewidths=1.0, zorder=2.5)
        marks.set_gid("failed-link-marks")

    if router_values is not None and np.nanmax(router_values, initial=0.0) > 0:
        lmax = float(np.nanmax(router_values))
        lnorm = mcolors.Normalize(vmin=0.0, vmax=lmax)
        node_cmap = _NODE_CMAP if router_metric == "loss" else _NODE_QUEUE_CMAP
        face = [node_cmap(lnorm(x)) if x > 0 else (1.0, 1.0, 1.0, 1.0) for x in router_values]
        sizes = _NODE_SIZE + (_NODE_SIZE_MAX - _NODE_SIZE) * np.sqrt(np.clip(router_values, 0, None) / lmax)
        mappables["routers"] = ScalarMappable(norm=lnorm, cmap=node_cmap)
    else:
        face = [(1.0, 1.0, 1.0, 1.0)] * topology.num_routers
        sizes = np.full(topology.num_routers, _NODE_SIZE)
    routers = ax.scatter(pos[:, 0], pos[:, 1], s=sizes, c=face, edgecolors="black", linewidths=1.2, zorder=3)
    routers.set_gid("routers")
    for i, name in enumerate(topology.router_names):
        r, g, b, _ = face[i]
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
        ax.text(
            pos[i, 0], pos[i, 1], name, ha="center", va="center", fontsize=9 if len(name) <= 3 else 7,
            color="white" if dark else "black", fontweight="bold", zorder=4,
        )

    span = np.ptp(pos * np.array([xscale, 1.0]), axis=0)
    pad = 0.08 * max(float(span.max()), 1e-9)  # the same margin on the drawing in both directions
    ax.set_xlim(pos[:, 0].min() - pad / xscale, pos[:, 0].max() + pad / xscale)
    ax.set_ylim(pos[:, 1].min() - pad, pos[:, 1].max() + pad)
    if geographic:
        _style_map(ax, pos)
    else:
        ax.set_aspect("equal")
        ax.set_axis_off()
    return mappables


def plot_topology(
    topology: Topology,
    *,
    link_utilisation: np.ndarray | Sequence[float] | None = None,
    link_loss: np.ndarray | Sequence[float] | None = None,
    color_links: str = "utilisation",
    lost_per_router: np.ndarray | Sequence[float] | None = None,
    failed_links: Sequence[int] = (),
    failure_labels: Sequence[str] = (),
    title: str | None = None,
    subtitle: str | None = None,
    queue_per_router: np.ndarray | Sequence[float] | None = None,
    color_routers: str = "loss",
) -> Figure:
    """A figure of `topology` with colour bars for the link metric (`color_links`) and the router
    metric (`color_routers`: losses or mean queue length).

    `failure_labels` (e.g. `"D-E @ tick 0"`, one per entry of `failed_links`) go into the legend
    entry of the failed links, with the packets lost on each per episode when colouring by loss.
    """
    metric = _check_metric(color_links)
    router_metric = check_router_metric(color_routers)
    geographic = is_map(topology)
    pos = router_positions(topology)
    span = np.ptp(pos * np.array([map_scale(pos) if geographic else 1.0, 1.0]), axis=0)
    aspect = float(span[1] / span[0]) if span[0] > 0 else 1.0
    width = 9.0
    height = min(max(6.5 * aspect, 4.5), 10.0) + 2.5  # drawing + titles, legend and colour bar
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    mappables = draw_topology(
        ax,
        topology,
        link_utilisation=link_utilisation,
        link_loss=link_loss,
        color_links=metric,
        lost_per_router=lost_per_router,
        failed_links=failed_links,
        positions=pos,
        queue_per_router=queue_per_router,
        color_routers=color_routers,
    )
    if "links" in mappables:
        bar = fig.colorbar(mappables["links"], ax=ax, location="bottom", shrink=0.6, pad=0.02, aspect=35)
        label = LINK_METRIC_LABELS[metric]
        if metric == "loss" and not np.nanmax(np.asarray(mappables["links"].get_array(), dtype=np.float64), initial=0.0) > 0:
            label += " — none on the working links"
        bar.set_label(label)
    if "routers" in mappables:
        bar = fig.colorbar(mappables["routers"], ax=ax, location="right", shrink=0.6, pad=0.02, aspect=25)
        bar.set_label(ROUTER_METRIC_LABELS[router_metric])
    handles = []
    if failed_links:
        label = "failed link" + ("s" if len(set(failed_links)) > 1 else "")
        labels = list(failure_labels)
        if metric == "loss" and link_loss is not None and len(labels) == len(failed_links):
            lost_on = np.asarray(link_loss, dtype=np.float64)
            labels = [f"{text} ({lost_on[int(e)]:.3g} lost/episode)" for text, e in zip(labels, failed_links)]
        if labels:
            label += ": " + ", ".join(labels)
        handles.append(Line2D([], [], color=_FAILED, linewidth=3.0, linestyle=_FAILED_STYLE, marker="X",
                              markersize=10, markeredgecolor="white", label=label))
    shown_routers = lost_per_router if router_metric == "loss" else queue_per_router
    if shown_routers is not None and "routers" not in mappables:
        handles.append(
            Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="black",
                   markersize=10, label=_ROUTER_EMPTY_LABELS[router_metric])
        )
    if handles:
        if geographic:  # below the degree axis and the colour bar, not over the map
            fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=9)
        else:
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=len(handles),
                      frameon=False, fontsize=9)
    if title:
        set_suptitle(fig, title, fontsize=13)
    if subtitle and current_style().titles:
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

    with atomic_file(path, "wb") as handle:
        if fmt == "png":
            handle.write(_png_bytes(fig, dpi))
        else:
            fig.savefig(handle, format=fmt, dpi=dpi)
    return path


PNG_COLOURS = 256
"""Palette size of written PNGs: our line plots hold far fewer distinct colours than pixels, and
median-cut quantisation keeps even the faint seed-range bands while making the file 3-4× smaller."""


def _png_bytes(fig: Figure, dpi: int) -> bytes:
    """`fig` as a palette PNG (full colour when it has transparent pixels, which a palette would blur)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(buffer)
    if image.mode == "RGBA" and image.getchannel("A").getextrema()[0] < 255:
        return buffer.getvalue()
    out = io.BytesIO()
    image.convert("RGB").quantize(PNG_COLOURS, method=Image.Quantize.MEDIANCUT).save(out, format="png", optimize=True)
    return out.getvalue()


def format_title(topology: Topology, load: float, policy: str, delivered_fraction: float) -> str:
    delivered = "n/a" if not math.isfinite(delivered_fraction) else f"{100 * delivered_fraction:.1f}%"
    return f"{topology.name}: λ = {load:g} packets/router/tick, {policy}, delivered {delivered}"


def check_figure_request(output: str | os.PathLike[str], color_links: str) -> str:
    """The canonical link metric of `--color-links`, after checking the figure's file name."""
    if Path(output).suffix.lower() not in FORMATS:
        raise MamrlError(f"--output {str(output)!r}: use a .png, .pdf or .svg file name")
    metric = {"utilization": "utilisation"}.get(color_links.strip().lower(), color_links.strip().lower())
    if metric not in LINK_METRICS:
        raise MamrlError(f"--color-links must be utilisation or loss, got {color_links!r}")
    return metric


def simulation_figure(sim: Simulation, per_episode: dict[str, np.ndarray], color_links: str = "utilisation",
                      color_routers: str = "loss") -> Figure:
    """`mamrl plot-topology`'s figure of a simulation (`mamrl.experiments.simulate`): links by mean
    utilisation or loss per episode, routers by packets lost or mean queue length, failed links marked."""
    params, episodes, seed = sim.params, sim.request.episodes, sim.request.seed
    util = per_episode["link_utilisation"]  # [B, E]; NaN only for links of capacity 0
    mean_util = np.where(np.isnan(util).all(axis=0), np.nan, np.where(np.isnan(util), 0.0, util).mean(axis=0))
    fractions = per_episode["delivered_fraction"]
    delivered = float(fractions[np.isfinite(fractions)].mean()) if np.isfinite(fractions).any() else float("nan")
    return plot_topology(
        params.topology,
        link_utilisation=mean_util,
        link_loss=per_episode["lost_per_link"].mean(axis=0) if color_links == "loss" else None,
        color_links=color_links,
        lost_per_router=per_episode["lost_per_router"].mean(axis=0),
        queue_per_router=per_episode["queue_per_router"].mean(axis=0) if color_routers == "queue" else None,
        color_routers=color_routers,
        failed_links=[f.link for f in params.failures],
        failure_labels=sim.failure_labels,
        title=format_title(params.topology, params.load_per_router, sim.policy, delivered),
        subtitle=(f"mean over {episodes} episode{'s' if episodes != 1 else ''} × {params.horizon_ticks} ticks, seed {seed}; "
                  f"{params.topology.num_routers} routers, {params.topology.num_links} links\n{layout_note(params.topology)}"),
    )


__all__ = [
    "check_figure_request",
    "check_router_metric",
    "simulation_figure",
    "FORMATS",
    "LAYOUT_SEED",
    "LINK_METRICS",
    "LINK_METRIC_LABELS",
    "ROUTER_METRICS",
    "ROUTER_METRIC_LABELS",
    "coordinates_usable",
    "draw_topology",
    "format_title",
    "is_map",
    "layout_note",
    "link_label",
    "map_scale",
    "plot_topology",
    "router_positions",
    "save_figure",
]
