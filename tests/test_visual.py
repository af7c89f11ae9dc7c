"""Visual output: maps of geographic topologies, link colours by utilisation or loss, failed links,
per-link losses, and TensorBoard learning curves (issue 6, item 4).

Every topology file is written by the test into tmp_path; nothing is downloaded.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from typer.testing import CliRunner

from cli_helpers import assert_one_line_error
from mamrl.algorithms import make_policy
from mamrl.cli import app
from mamrl.errors import MamrlError, TopologyError
from mamrl.plotting.topology import LINK_METRIC_LABELS, draw_topology, is_map, map_scale, plot_topology, router_positions
from mamrl.sim import LinkFailure, SimParams, Simulator, kernel
from mamrl.sim.oracle import run_oracle_episode, table_decider
from mamrl.sim.traffic import draw_policy_uniforms
from mamrl.topologies import Link, Topology, load_topology, save_topology
from mamrl.training import TENSORBOARD_HINT, TrainConfig, train_run

runner = CliRunner()

# Four cities: (name, latitude, longitude). Mean latitude 37.28°.
CITIES = [("NYC", 40.71, -74.01), ("CHI", 41.88, -87.63), ("DAL", 32.78, -96.80), ("ATL", 33.75, -84.39)]
CITY_LINKS = [("NYC", "CHI"), ("CHI", "DAL"), ("DAL", "ATL"), ("ATL", "NYC"), ("CHI", "ATL")]


@pytest.fixture
def cities_graphml(tmp_path: Path) -> Path:
    """A tiny Topology Zoo-style GraphML file with Latitude/Longitude."""
    graph = nx.Graph(Network="Cities")
    for k, (name, lat, lon) in enumerate(CITIES):
        graph.add_node(str(k), label=name, Latitude=lat, Longitude=lon)
    index = {name: str(k) for k, (name, _, _) in enumerate(CITIES)}
    for a, b in CITY_LINKS:
        graph.add_edge(index[a], index[b], LinkSpeedRaw=1e9)
    path = tmp_path / "cities.graphml"
    nx.write_graphml(graph, path)
    return path


def _collection(ax, gid: str):
    found = [c for c in ax.collections if c.get_gid() == gid]
    assert len(found) == 1, [c.get_gid() for c in ax.collections]
    return found[0]


def _legend_texts(fig) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    return [text.get_text() for legend in legends for text in legend.get_texts()]


# ------------------------------------------------------------------------------ geographic flag
def test_geographic_flag_set_by_importer_and_kept(cities_graphml: Path, tmp_path: Path) -> None:
    topo = load_topology(str(cities_graphml))
    assert topo.geographic and topo.coordinates == tuple((lon, lat) for _, lat, lon in CITIES)
    # Survives networkx and the project's JSON format; the built-ins are drawings, not maps.
    assert Topology.from_networkx(topo.to_networkx()).geographic
    save_topology(topo, tmp_path / "cities.json")
    assert load_topology(str(tmp_path / "cities.json")).geographic
    assert json.loads((tmp_path / "cities.json").read_text())["geographic"] is True
    b4 = load_topology("b4")
    assert not b4.geographic and not is_map(b4)
    save_topology(b4, tmp_path / "b4.json")
    assert "geographic" not in (tmp_path / "b4.json").read_text()  # old readers still read it
    assert not load_topology(str(tmp_path / "b4.json")).geographic
    with pytest.raises(TopologyError, match="geographic needs coordinates"):
        Topology("x", ("a", "b"), (Link(0, 1, 1, 1),), geographic=True)


# ------------------------------------------------------------------------------ maps
def test_geographic_topology_is_drawn_as_a_map(cities_graphml: Path) -> None:
    topo = load_topology(str(cities_graphml))
    fig = plot_topology(topo, link_utilisation=np.linspace(0.1, 0.5, topo.num_links))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "longitude (°)" and ax.get_ylabel() == "latitude (°)"
    mean_lat = float(np.mean([lat for _, lat, _ in CITIES]))
    assert ax.get_aspect() == pytest.approx(1 / math.cos(math.radians(mean_lat)), rel=1e-9)
    assert map_scale(router_positions(topo)) == pytest.approx(math.cos(math.radians(mean_lat)))
    routers = _collection(ax, "routers")
    assert isinstance(routers, PathCollection)
    np.testing.assert_allclose(routers.get_offsets(), [(lon, lat) for _, lat, lon in CITIES])
    assert ax.axison and ax.xaxis.get_gridlines()[0].get_visible()  # degree axes and a graticule
    lons = [lon for _, _, lon in CITIES]
    assert ax.get_xlim()[0] < min(lons) and ax.get_xlim()[1] > max(lons)


def test_builtin_topology_keeps_its_drawing() -> None:
    b4 = load_topology("b4")
    fig = plot_topology(b4)
    ax = fig.axes[0]
    assert not ax.axison and ax.get_aspect() == 1.0
    np.testing.assert_allclose(_collection(ax, "routers").get_offsets(), b4.coordinates)


def test_routers_sharing_a_city_are_spread_around_it() -> None:
    links = tuple(Link(a, b, 10, 1) for a, b in ((0, 1), (1, 2), (2, 0)))
    topo = Topology("twins", ("A", "B", "C"), links, ((10.0, 50.0), (10.0, 50.0), (20.0, 45.0)), geographic=True)
    pos = router_positions(topo)
    assert np.linalg.norm(pos[0] - pos[1]) > 0.1  # apart, around their city
    np.testing.assert_allclose((pos[0] + pos[1]) / 2, (10.0, 50.0), atol=1e-9)
    np.testing.assert_allclose(pos[2], (20.0, 45.0))


def test_map_across_the_antimeridian_is_unwrapped() -> None:
    links = tuple(Link(a, b, 10, 1) for a, b in ((0, 1), (1, 2)))
    topo = Topology("pacific", ("FJ", "WS", "NZ"), links, ((178.0, -18.0), (-172.0, -14.0), (174.8, -41.3)),
                    geographic=True)
    pos = router_positions(topo)
    np.testing.assert_allclose(pos[:, 0], [178.0, 188.0, 174.8])  # 14° wide, not 350°
    ax = plot_topology(topo).axes[0]
    assert ax.xaxis.get_major_formatter()(188.0, 0) == "-172"


# ------------------------------------------------------------------------------ link colours, failures
def test_link_colours_follow_the_chosen_metric(cities_graphml: Path) -> None:
    from matplotlib.figure import Figure

    topo = load_topology(str(cities_graphml))
    util = np.array([0.1, 0.4, 0.2, 0.8, 0.3])
    loss = np.array([5.0, 0.0, 2.0, 9.0, 7.0])  # the failed link (3) loses most
    failed = [3]
    working = [e for e in range(topo.num_links) if e not in failed]
    colours = {}
    for metric, values in (("utilisation", util), ("loss", loss)):
        ax = Figure().add_subplot()
        mappables = draw_topology(ax, topo, link_utilisation=util, link_loss=loss, color_links=metric,
                                  failed_links=failed)
        links = _collection(ax, "links")
        assert isinstance(links, LineCollection) and mappables["links"] is links
        np.testing.assert_array_equal(np.ma.getdata(links.get_array()), values[working])
        assert links.norm.vmax == values[working].max()  # the failed link is not on the scale
        links.update_scalarmappable()  # colours from the array, as drawing would compute them
        colours[metric] = links.get_edgecolor().copy()
    assert not np.allclose(colours["utilisation"], colours["loss"])
    fig = plot_topology(topo, link_loss=loss, color_links="loss", failed_links=failed, failure_labels=["ATL-NYC @ tick 0"])
    assert any(LINK_METRIC_LABELS["loss"] in ax.get_xlabel() for ax in fig.axes)  # the colour bar
    assert "failed link: ATL-NYC @ tick 0 (9 lost/episode)" in _legend_texts(fig)
    with pytest.raises(MamrlError, match="color_links"):
        plot_topology(topo, link_utilisation=util, color_links="delay")
    with pytest.raises(MamrlError, match="needs link_loss"):
        plot_topology(topo, link_utilisation=util, color_links="loss")


@pytest.mark.parametrize("name", ["b4", "cities"])
def test_failed_link_is_dashed_red_marked_and_in_the_legend(name: str, cities_graphml: Path) -> None:
    topo = load_topology(str(cities_graphml) if name == "cities" else "b4")
    link = topo.link_id("NYC-CHI" if name == "cities" else "D-E")
    fig = plot_topology(topo, link_utilisation=np.full(topo.num_links, 0.2), failed_links=[link],
                        failure_labels=["X-Y @ tick 7"])
    ax = fig.axes[0]
    dashed = _collection(ax, "failed-links")
    offset, dashes = dashed.get_linestyle()[0]
    assert dashes is not None and len(dashes) >= 2  # dashed, not solid
    np.testing.assert_allclose(dashed.get_edgecolor()[0], (1.0, 0.0, 0.0, 1.0))
    pos = router_positions(topo)
    ends = pos[[topo.links[link].a, topo.links[link].b]]
    marks = _collection(ax, "failed-link-marks")
    middle = marks.get_offsets()[0]
    assert np.linalg.norm(middle - ends.mean(axis=0)) <= 0.2 * np.linalg.norm(ends[1] - ends[0])
    assert "failed link: X-Y @ tick 7" in _legend_texts(fig)
    assert len(_collection(ax, "links").get_array()) == topo.num_links - 1  # drawn once, as failed


# ------------------------------------------------------------------------------ per-link losses
def _oracle_link_losses(params: SimParams, traffic, b: int, tables, uniforms) -> tuple[np.ndarray, np.ndarray]:
    """Per-link losses of episode b attributed from the plain-Python oracle's decisions and packet
    fates, not from its own per-link counter: (lost when sent on the link, lost on it at its failure)."""
    base = table_decider(tables.cumulative, tables.start_ticks, uniforms, params.topology.degree)
    last: dict[int, tuple[int, int, int]] = {}

    def decide(router: int, packet, t: int) -> int:
        slot = base(router, packet, t)
        last[packet.id] = (router, slot, t)
        return slot

    k = int(traffic.count[b])
    res = run_oracle_episode(params, traffic.created_tick[b, :k], traffic.src[b, :k], traffic.dst[b, :k],
                             traffic.size[b, :k], decide)
    _, link_of_slot = params.topology.neighbor_table
    fails = {f.link: f.tick for f in params.failures}
    forwarding = np.zeros(params.topology.num_links)
    in_flight = np.zeros(params.topology.num_links)
    for p in res.packets:
        if p.fate != "lost":
            continue
        if p.id in last and last[p.id][2] == p.end_tick:  # lost when its router sent it
            forwarding[link_of_slot[last[p.id][0], last[p.id][1]]] += 1
        elif p.hops > 0 and fails.get(p.link) == p.end_tick and p.arrival_tick >= p.end_tick:  # in flight
            in_flight[p.link] += 1
    return forwarding, in_flight


@pytest.mark.parametrize("queues", ["fifo", "per-destination"])
@pytest.mark.parametrize("policy", ["spa", "random"])
def test_kernel_link_losses_agree_with_the_oracles_decisions(policy: str, queues: str) -> None:
    topo = load_topology("att")
    busiest = int(np.argmax(topo.degree))
    mid = [e for e, l in enumerate(topo.links) if busiest in (l.a, l.b)][-1]
    params = SimParams(topo, 0.5, horizon_ticks=150, failures=(LinkFailure(0, 0), LinkFailure(mid, 57)),
                       buffer_limit=25, queue_discipline=queues)
    tables = make_policy(policy).routing_tables(params)
    result = Simulator(params).run_tables(tables, seed=1, num_episodes=2, first_episode=3)
    lost_per_link = result.per_episode()["lost_per_link"]
    uniforms = draw_policy_uniforms(1, 2, params.horizon_ticks, topo.num_routers, 3) if tables.stochastic else None
    lost_when_sent = lost_in_flight_at_failure = 0.0
    for b in range(2):
        forwarding, in_flight = _oracle_link_losses(params, result.traffic, b, tables, None if uniforms is None else uniforms[b])
        np.testing.assert_array_equal(lost_per_link[b], forwarding + in_flight)
        lost_when_sent += forwarding.sum()
        lost_in_flight_at_failure += in_flight[mid]
    # Not vacuous: every kind of loss occurs here, buffer drops (on no link) included.
    assert lost_when_sent > 0 and lost_in_flight_at_failure > 0
    assert (lost_per_link.sum(axis=1) < result.state.episode[:, kernel.EP_LOST]).all()


# ------------------------------------------------------------------------------ CLI
def test_cli_plot_topology_map_with_failure_and_loss_colours(cities_graphml: Path, tmp_path: Path) -> None:
    for metric in ("loss", "utilization"):
        out = tmp_path / f"cities-{metric}.png"
        result = runner.invoke(app, ["plot-topology", "--topology", str(cities_graphml), "--fail", "NYC-CHI",
                                     "--episodes", "2", "--horizon", "60", "--color-links", metric, "--output", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and out.stat().st_size > 10_000
    assert_one_line_error(runner.invoke(app, ["plot-topology", "--color-links", "delay", "--output",
                                              str(tmp_path / "x.png")]))


# ------------------------------------------------------------------------------ TensorBoard
def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    out = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    out["config"] = [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors("config/text_summary")]
    return out


def _assert_curves_in_tensorboard(run: Path, log_dir: Path) -> None:
    rows = list(csv.DictReader((run / "curves.csv").open()))
    logged = _scalars(log_dir)
    for column in rows[0]:
        if column == "episodes":
            continue
        expected = [(int(r["episodes"]), float(r[column])) for r in rows if r[column] != ""]
        got = logged[f"curves/{column}"]
        assert [s for s, _ in got] == [s for s, _ in expected], column
        np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], rtol=1e-6, err_msg=column)


def test_cli_train_logs_curves_to_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    run, log_dir = tmp_path / "run", tmp_path / "tb"
    result = runner.invoke(app, ["train", "-a", "q-routing", "-t", "b4", "--episodes", "4", "--chunk", "2",
                                 "--horizon", "40", "--eval-episodes", "0", "--out", str(run), "--tensorboard", str(log_dir)])
    assert result.exit_code == 0, result.output
    assert len(list(csv.DictReader((run / "curves.csv").open()))) == 2
    _assert_curves_in_tensorboard(run, log_dir)
    (step, text), = _scalars(log_dir)["config"]
    assert step == 0 and '"algorithm": "q-routing"' in text


def test_tensorboard_resume_appends_and_backfills(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    cfg = TrainConfig("b4", 0.3, 40, (), "q-routing", {}, episodes=6, seed=0, chunk_episodes=2)
    run, log_dir = tmp_path / "run", tmp_path / "tb"
    train_run(cfg, run, stop_after_chunks=1)  # "killed" before --tensorboard was asked for
    train_run(cfg, run, stop_after_chunks=1, tensorboard_dir=log_dir)  # backfills episode 2, logs 4
    train_run(cfg, run, tensorboard_dir=log_dir)  # appends 6
    _assert_curves_in_tensorboard(run, log_dir)
    assert [s for s, _ in _scalars(log_dir)["curves/seconds"]] == [2, 4, 6]
    assert [s for s, _ in _scalars(log_dir)["config"]] == [2, 4]  # once per session, where it started
    with pytest.raises(MamrlError, match="is a file"):
        train_run(cfg, run, tensorboard_dir=run / "curves.csv")


def test_tensorboard_writer_closed_on_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tensorboard")
    import mamrl.training as training

    closed: list[bool] = []
    original = training.TensorBoardLogger.close
    monkeypatch.setattr(training.TensorBoardLogger, "close", lambda self: (closed.append(True), original(self)))

    def interrupt(row: dict) -> None:
        raise KeyboardInterrupt

    cfg = TrainConfig("b4", 0.3, 40, (), "q-routing", {}, episodes=4, seed=0, chunk_episodes=2)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "run", on_chunk=interrupt, tensorboard_dir=tmp_path / "tb")
    assert closed == [True]
    assert [s for s, _ in _scalars(tmp_path / "tb")["curves/seconds"]] == [2]  # the finished chunk is kept


def test_missing_tensorboard_is_a_one_line_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # `import` now raises ImportError
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "-a", "q-routing", "--episodes", "2", "--out", str(run),
                                 "--tensorboard", str(tmp_path / "tb")])
    assert_one_line_error(result)
    assert result.stderr.strip() == f"error: {TENSORBOARD_HINT}"
    assert not run.exists()  # before any training
    cfg = TrainConfig("b4", 0.3, 40, (), "q-routing", {}, episodes=2, seed=0, chunk_episodes=2)
    with pytest.raises(MamrlError) as info:
        train_run(cfg, tmp_path / "api", tensorboard_dir=tmp_path / "tb")
    assert str(info.value) == TENSORBOARD_HINT
    assert not (tmp_path / "api" / "checkpoint.pt").exists()
    assert json.loads((tmp_path / "api" / "config.json").read_text())["config"]["algorithm"] == "q-routing"


# ---------------------------------------------------------------------------- figure style
def test_figure_style_drops_titles_sets_the_size_and_the_paper_fonts() -> None:
    from mamrl.plotting.style import FigureStyle, figure_style, make_style

    topo = load_topology("b4")
    plain = plot_topology(topo, title="a title", subtitle="a subtitle")
    assert plain._suptitle is not None and plain._suptitle.get_text() == "a title"
    with figure_style(FigureStyle(titles=False, size_inches=(4.0, 3.0))):
        bare = plot_topology(topo, title="a title", subtitle="a subtitle")
    assert bare._suptitle is None and not bare.axes[0].get_title()
    assert tuple(bare.get_size_inches()) == (4.0, 3.0)
    with figure_style(make_style(style="paper")):
        paper = plot_topology(topo, title="a title")
        note = paper.text(0.5, 0.5, "a note")
    assert paper._suptitle is None  # the paper style has no titles unless asked for
    assert note.get_fontfamily() == ["serif"] and note.get_fontsize() == 8
    assert plain.text(0.5, 0.5, "a note").get_fontfamily() != ["serif"]
    assert plot_topology(topo, title="after").get_size_inches()[0] != 4.0  # the style ends with its block


@pytest.mark.parametrize("args, needle", [
    (["--size", "7"], "--size: expected WIDTHxHEIGHT"),
    (["--size", "0x3"], "between 0.5 and 100"),
    (["--style", "fancy"], "--style: unknown style 'fancy'"),
])
def test_bad_figure_options_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = CliRunner().invoke(app, ["plot-topology", "-o", str(tmp_path / "t.png"), "-n", "1", "--horizon", "20", *args])
    assert_one_line_error(result)
    assert needle in result.stderr
    assert not (tmp_path / "t.png").exists()


def test_failure_curves_that_coincide_keep_every_controllers_marks() -> None:
    from mamrl.plotting.failures import MARKS_PER_CURVE, _line_style

    controllers = ["spa", "spa-reconverge", "mamrl-init", "continued", "random-init-trpo"]
    styles = [_line_style(controllers, c, points=400) for c in controllers]
    assert len({s["marker"] for s in styles}) == len(controllers)
    assert len({(str(s["linestyle"]), s["marker"]) for s in styles}) == len(controllers)
    offsets = [s["markevery"][0] for s in styles]
    assert len(set(offsets)) == len(controllers)  # marks at different episodes: none hides another's
    assert all(s["markevery"][1] == 400 // MARKS_PER_CURVE for s in styles)
    assert max(s["zorder"] for s in styles if s["marker"]) == styles[2]["zorder"]  # learners drawn on top


# ------------------------------------------------------------------------------ routers by mean queue length
def test_queue_per_router_is_the_mean_queue_length_split_by_router() -> None:
    """The per-router sums add up to the network's queue length, tick by tick summed (both counted
    at the ends of ticks); the oracle agreement tests check each router's sum exactly."""
    params = SimParams(load_topology("b4"), 0.35, horizon_ticks=300)
    result = Simulator(params).run_tables(make_policy("spa").routing_tables(params), seed=0, num_episodes=3)
    metrics = result.per_episode()
    per_router = metrics["queue_per_router"]
    assert per_router.shape == (3, 12) and per_router.max() > 1.0  # not vacuous: queues build at λ = 0.35
    np.testing.assert_allclose(per_router.sum(axis=1), metrics["mean_queue_length"] * 12, rtol=1e-12)


def test_plot_topology_colours_routers_by_queue_length(tmp_path: Path) -> None:
    topo = load_topology("b4")
    queue = np.zeros(topo.num_routers)
    queue[[2, 5]] = (4.0, 10.0)
    fig = plot_topology(topo, queue_per_router=queue, lost_per_router=np.arange(topo.num_routers, dtype=float),
                        color_routers="queue")
    routers = _collection(fig.axes[0], "routers")
    sizes = routers.get_sizes()
    assert sizes[5] > sizes[2] > sizes[0] and sizes[0] == sizes[1]  # by queue, not by the losses passed too
    faces = routers.get_facecolors()
    assert tuple(faces[0]) == (1.0, 1.0, 1.0, 1.0) and faces[5][0] < faces[2][0] < 1.0  # darker = longer
    assert any("mean queue length" in ax.get_ylabel() for ax in fig.axes[1:])
    empty = plot_topology(topo, queue_per_router=np.zeros(topo.num_routers), color_routers="queue")
    assert "no packet queued at any router" in _legend_texts(empty)
    with pytest.raises(MamrlError, match="needs queue_per_router"):
        plot_topology(topo, color_routers="queue")
    with pytest.raises(MamrlError, match="--color-routers must be loss or queue"):
        plot_topology(topo, queue_per_router=queue, color_routers="delay")


def test_cli_plot_topology_color_routers(tmp_path: Path) -> None:
    out = tmp_path / "b4.png"
    result = runner.invoke(app, ["plot-topology", "-t", "b4", "-l", "0.35", "-n", "2", "--color-routers", "queue", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000
    bad = runner.invoke(app, ["plot-topology", "-t", "b4", "--color-routers", "depth", "-o", str(tmp_path / "x.png")])
    assert_one_line_error(bad)
    assert "--color-routers must be loss or queue, got 'depth'" in bad.stderr and not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------------------ files
def test_png_is_a_palette_faithful_to_the_full_colour_render(tmp_path: Path) -> None:
    import io

    import matplotlib.colors as mcolors
    from PIL import Image

    from mamrl.plotting.style import new_figure
    from mamrl.plotting.topology import save_figure

    fig = new_figure(6, 4)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 400)
    for i, colour in enumerate(mcolors.TABLEAU_COLORS.values()):  # busy curves and faint bands, as in the E2 figures
        ax.plot(x, i + rng.normal(size=x.size), color=colour, marker="o", markevery=40)
        ax.fill_between(x, i - 1 + rng.normal(size=x.size), i + 1 + rng.normal(size=x.size), color=colour, alpha=0.12)
    out = save_figure(fig, tmp_path / "f.png", dpi=100)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    full = Image.open(buffer)
    palette = Image.open(out)
    assert palette.mode == "P" and palette.size == full.size and out.stat().st_size < len(buffer.getvalue())
    error = np.abs(np.asarray(palette.convert("RGB"), float) - np.asarray(full.convert("RGB"), float)).max(axis=2) / 255
    assert (error > 0.05).mean() < 0.1  # 16 colours would leave some 40% of the pixels off
    fig.patch.set_alpha(0.0)  # a transparent figure keeps full colour: a palette would blur its edges
    assert Image.open(save_figure(fig, tmp_path / "transparent.png")).mode == "RGBA"
