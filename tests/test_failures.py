"""The link-failure experiment E2: controllers, the episode schedule, curves.csv and its resume,
the adaptation rule, the report and the `mamrl failures` command."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli_helpers import assert_one_line_error
from mamrl.agents.q_routing import QRouting
from mamrl.agents.shortest_path import ShortestPathPolicy
from mamrl.cli import app
from mamrl.errors import MamrlError
from mamrl.experiments.failures import (
    PRESETS,
    CurvesFile,
    FailureExperimentConfig,
    QRoutingController,
    ReconvergingController,
    StaticRoutingController,
    build_failure_config,
    common_reward,
    analyse_run,
    episode_blocks,
    episodes_to_adapt,
    episodes_to_low_loss,
    gradient_steps_before,
    read_curves,
    run_failure_experiment,
    TableRow,
    run_schedule,
    table2,
)
from mamrl.sim.evaluate import evaluate_tables
from mamrl.sim.metrics import METRIC_INFO
from mamrl.sim.params import LinkFailure, SimParams
from mamrl.topologies import load_topology

runner = CliRunner()

HORIZON = 60
LOAD = 0.1


@pytest.fixture(scope="module")
def b4():
    return load_topology("b4")


@pytest.fixture(scope="module")
def intact(b4) -> SimParams:
    return SimParams(b4, LOAD, HORIZON)


def _schedule(controller, intact, link, **kw):
    kw = {"episodes": 14, "fail_episode": 4, "fail_tick": 0, "episodes_per_step": 3, **kw}
    return run_schedule(controller, intact, link, 0, **kw)


def _config(tmp_path: Path, **changes) -> FailureExperimentConfig:
    values = {
        "failures": ["D-E"], "episodes": 24, "fail_episode": 4, "horizon_ticks": HORIZON, "load": LOAD,
        "seeds": [0, 1], "workers": 1, "reconvergence_delay_ticks": 15, "output": str(tmp_path / "out"),
    }
    values.update(changes)
    if not any(c.endswith("-reconverge") for c in values.get("controllers", ["spa-reconverge"])):
        del values["reconvergence_delay_ticks"]  # a setting no controller would use is refused
    return build_failure_config(preset="quick", overrides=values)


# ------------------------------------------------------------------------------ schedule
def test_blocks_are_cut_at_the_failure_episode() -> None:
    blocks = episode_blocks(20, 7, 0, 5)
    assert [(b.first, b.count) for b in blocks] == [(0, 5), (5, 2), (7, 5), (12, 5), (17, 3)]
    assert [b.phase for b in blocks] == ["intact", "intact", "failure", "failed", "failed"]
    # A failure later in the episode: the failure episode has parameters of its own.
    blocks = episode_blocks(20, 7, 30, 5)
    assert [(b.first, b.count, b.phase) for b in blocks][1:4] == [(5, 2, "intact"), (7, 1, "failure"), (8, 5, "failed")]
    for fail_tick in (0, 30):
        covered = [e for b in episode_blocks(20, 7, fail_tick, 5) for e in range(b.first, b.first + b.count)]
        assert covered == list(range(20))


class _Recorder:
    """A fake controller: SPA's metrics, a reset in the failure episode, every call recorded."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, tuple[LinkFailure, ...]]] = []

    def run_episodes(self, params, seed, first_episode, num_episodes):
        self.calls.append((first_episode, num_episodes, params.failures))
        metrics = StaticRoutingController("spa").run_episodes(params, seed, first_episode, num_episodes)
        metrics["reset"] = np.array([any(f.tick > 0 for f in params.failures)] * num_episodes)
        return metrics


def test_driver_gives_each_block_its_parameters(intact, b4) -> None:
    link = b4.link_id("D-E")
    recorder = _Recorder()
    out = _schedule(recorder, intact, link, fail_tick=20)
    assert [(first, count) for first, count, _ in recorder.calls] == [(0, 3), (3, 1), (4, 1), (5, 3), (8, 3), (11, 3)]
    assert [failures for _, _, failures in recorder.calls] == [(), (), ((LinkFailure(link, 20)),)] + [(LinkFailure(link, 0),)] * 3
    assert out["reset"].tolist() == [False] * 4 + [True] + [False] * 9
    assert set(METRIC_INFO) <= set(out)


def test_controller_returning_bad_shapes_is_an_error(intact, b4) -> None:
    class Short:
        name = "short"

        def run_episodes(self, params, seed, first_episode, num_episodes):
            return {k: np.zeros(1) for k in METRIC_INFO}

    with pytest.raises(MamrlError, match="short"):
        _schedule(Short(), intact, b4.link_id("D-E"))


# ------------------------------------------------------------------------------ controllers
def test_spa_loses_packets_after_the_failure_and_not_before(intact, b4) -> None:
    loss = _schedule(StaticRoutingController("spa"), intact, b4.link_id("D-E"))["loss_fraction"]
    assert np.all(loss[:4] == 0)
    assert np.all(loss[4:] > 0.05)


def test_spa_reconverge_stops_losing_after_the_delay(intact, b4) -> None:
    link = b4.link_id("D-E")
    spa = _schedule(StaticRoutingController("spa"), intact, link)["loss_fraction"]
    reconverge = _schedule(ReconvergingController("spa", 15), intact, link)
    loss = reconverge["loss_fraction"]
    assert np.all(loss[:4] == 0)
    assert 0 < loss[4] < spa[4]  # loses only until it re-converges, 15 ticks in
    assert np.all(loss[5:] == 0)
    # Episodes after the failure episode (in the same block) use the failed topology from tick 0.
    failed = intact.replace(failures=(LinkFailure(link, 0),))
    direct, _ = evaluate_tables(failed, ShortestPathPolicy(0).routing_tables(failed), 0, 2, first_episode=5)
    np.testing.assert_array_equal(reconverge["mean_sojourn_time"][5:7], direct["mean_sojourn_time"])


@pytest.mark.parametrize("policy", ["ecmp", "max-throughput", "min-delay"])
def test_static_routings_never_react_or_reconverge(intact, b4, policy) -> None:
    link = b4.link_id("D-E")
    never = _schedule(StaticRoutingController(policy), intact, link)["loss_fraction"]
    reconverge = _schedule(ReconvergingController(policy, 15), intact, link)["loss_fraction"]
    assert np.all(never[:4] == 0) and np.all(reconverge[:4] == 0)
    assert np.all(never[4:] > 0.01)  # routing into the failed link for ever
    assert 0 < reconverge[4] < never[4] and np.all(reconverge[5:] == 0)


@pytest.mark.parametrize("name", ["backpressure", "sp-backpressure"])
def test_backpressure_routes_around_a_failed_link(intact, b4, name) -> None:
    from mamrl.experiments.failures import BackpressureController

    metrics = _schedule(BackpressureController(name), intact, b4.link_id("D-E"))
    spa = _schedule(StaticRoutingController("spa"), intact, b4.link_id("D-E"))
    assert np.all(metrics["loss_fraction"][:4] == 0)
    assert metrics["loss_fraction"][4:].max() < 0.01 < spa["loss_fraction"][4:].min()


def test_q_routing_loss_falls_after_the_failure(intact, b4) -> None:
    loss = _schedule(QRoutingController(), intact, b4.link_id("D-E"))["loss_fraction"]
    assert loss[4] > 0
    assert loss[-5:].mean() < loss[4] / 2


def test_q_routing_runs_the_drivers_episodes(intact, b4) -> None:
    """Block by block through the driver = one agent trained straight through on the same episodes."""
    link = b4.link_id("D-E")
    ours = _schedule(QRoutingController(), intact, link)
    agent = QRouting()
    first = agent.train(intact, 0, 4)
    rest = agent.train(intact.replace(failures=(LinkFailure(link, 0),)), 0, 10)
    for key in ("generated", "loss_fraction", "mean_sojourn_time"):
        np.testing.assert_array_equal(ours[key], np.concatenate([first[key], rest[key]]))


def test_common_reward() -> None:
    # The sojourn time already counts lost packets (at their age at the horizon); the extra
    # penalty is charged per lost packet on top.
    metrics = {"loss_fraction": np.array([0.0, 0.5, 1.0, np.nan]), "mean_sojourn_time": np.array([10.0, 20.0, 250.0, np.nan])}
    np.testing.assert_allclose(common_reward(metrics), [-10.0, -20.0, -250.0, np.nan])
    np.testing.assert_allclose(common_reward(metrics, 100.0), [-10.0, -70.0, -350.0, np.nan])


# ------------------------------------------------------------------------------ the rule
def test_step_curve_adapts_at_the_step() -> None:
    reward = np.full(100, -10.0)
    reward[20:37] = -100.0  # failure at 20, recovered at 37
    adapt, plateau, budget = episodes_to_adapt(reward, 20)
    assert (adapt, plateau, budget) == (17, -10.0, 70)
    loss = np.where(np.arange(100) < 31, 0.2, 0.0)
    assert episodes_to_low_loss(loss, 20) == 11
    # Unaffected by the failure: adapted at once.
    assert episodes_to_adapt(np.full(100, -10.0), 20)[0] == 0


def test_adaptation_steps_count_the_blocks_after_the_failure_except_resets() -> None:
    blocks = episode_blocks(60, 20, 0, 5)
    ends = [b.first + b.count - 1 for b in blocks]
    resets = np.zeros(60, dtype=bool)
    assert gradient_steps_before(33, 20, ends, resets) == 2  # steps after episodes 24 and 29
    assert gradient_steps_before(34, 20, ends, resets) == 2  # the block ending at 34 has not stepped yet
    assert gradient_steps_before(35, 20, ends, resets) == 3
    resets[24] = True  # the first block after the failure ended in a reset instead
    assert gradient_steps_before(33, 20, ends, resets) == 1
    assert gradient_steps_before(20, 20, ends, resets) == 0
    rows = [{"episode": e, "phase": "intact" if e < 20 else "failed", "reward": -20.0, "reset": int(resets[e]),
             "loss_fraction": 0.2 if 20 <= e < 33 else 0.0, "lost": 0.0, "mean_sojourn_time": 20.0,
             "mean_delivery_time": 20.0} for e in range(60)]
    assert analyse_run(rows, stepping=True, block_ends=ends).steps_until_low_loss == 1
    assert analyse_run(rows, stepping=False, block_ends=ends).steps_until_low_loss == 0  # a static routing
    assert math.isnan(analyse_run(rows, stepping=None, block_ends=ends).steps_until_low_loss)  # Q-routing
    assert math.isnan(analyse_run(rows, stepping=True).steps_until_low_loss)  # no schedule given
    # Low loss from episode 34, the last of a block: the step after it comes later, so still 1.
    rows_34 = [{**row, "loss_fraction": 0.2 if 20 <= row["episode"] < 34 else 0.0} for row in rows]
    at_34 = analyse_run(rows_34, stepping=True, block_ends=ends)
    assert (at_34.episodes_to_low_loss, at_34.steps_until_low_loss) == (14, 1)
    # Table 2 decides who steps from the controller's name: a deep learner, a static routing, Q-routing.
    keys = {"topology": "b4", "failure": "D-E", "held_out": 0, "seed": 0}
    table = table2([{**row, **keys, "controller": c} for c in ("mamrl-init", "spa", "q-routing") for row in rows_34],
                   episodes_per_step=5)
    steps = {t.controller: t.steps_until_low_loss.mean for t in table}
    assert steps["mamrl-init"] == 1 and steps["spa"] == 0 and math.isnan(steps["q-routing"])


def test_noisy_plateau_widens_the_band_so_chance_does_not_delay_adaptation() -> None:
    rng = np.random.default_rng(0)
    reward = -50.0 + rng.normal(0, 8.0, 300)  # SD/sqrt(10) = 2.5 > 5% of 50
    reward[20:40] = -150.0
    adapt, plateau, _ = episodes_to_adapt(reward, 20)
    assert 18 <= adapt <= 23 and plateau == pytest.approx(-50, abs=5)  # recovered at 40 = f + 20


def test_never_converging_ramp_is_over_budget() -> None:
    reward = -100.0 + np.arange(200) * 0.45  # still improving at the end
    adapt, _, budget = episodes_to_adapt(reward, 20)
    assert adapt is None and budget == 160
    assert episodes_to_low_loss(np.full(200, 0.5), 20) is None


def test_long_runs_are_drawn_as_the_windows_the_rule_reads() -> None:
    """Each point is the mean of its episode and the 9 after it: the loss curve crosses 1% at the
    episode Table 2 counts from. No window reaches across the failure."""
    from mamrl.plotting.failures import window_mean

    episodes = np.arange(30)
    values = np.where(episodes < 20, 0.0, 1.0)[None, :]  # intact 0, failed 1 from episode 20
    values[0, 25] = 11.0
    mean = window_mean(values, episodes, 20, window=10)
    assert np.all(mean[0, :20] == 0.0)  # no window reaches from the intact episodes into the failed ones
    assert mean[0, 20] == pytest.approx(20.0 / 10)  # episodes 20..29
    assert mean[0, 25] == pytest.approx(15.0 / 5) and mean[0, 29] == 1.0  # windows shorten at the end of the run
    assert np.allclose(window_mean(values, episodes, None, window=1), values)
    loss = np.where(np.arange(100) < 31, 0.2, 0.0)  # the step curve of the rule's test: loss < 1% from episode 31
    k = episodes_to_low_loss(loss, 20)
    drawn = window_mean(loss[None, :], np.arange(100), 20)[0]
    assert k == 11 and drawn[20 + k] < 0.01 <= drawn[20 + k - 1]


# ------------------------------------------------------------------------------ the experiment
@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted experiment (one failure, SPA and Q-routing, two seeds)."""
    out = tmp_path_factory.mktemp("reference")
    config = _config(out, controllers=["spa", "q-routing"])
    outcome = run_failure_experiment(config)
    assert outcome.complete and outcome.ran == 4
    return Path(config.output)


def test_curves_layout_and_common_traffic(reference: Path) -> None:
    rows = read_curves(reference / "curves.csv")
    assert len(rows) == 4 * 24
    spa = [r for r in rows if r["controller"] == "spa" and r["seed"] == 0]
    q = [r for r in rows if r["controller"] == "q-routing" and r["seed"] == 0]
    assert [r["episode"] for r in spa] == list(range(24))
    assert [r["generated"] for r in spa] == [r["generated"] for r in q]  # common random numbers
    other_seed = [r["generated"] for r in rows if r["controller"] == "spa" and r["seed"] == 1]
    assert other_seed != [r["generated"] for r in spa]
    assert [r["phase"] for r in spa][3:6] == ["intact", "failure", "failed"]
    assert (reference / "config.json").is_file() and (reference / "run.json").is_file()


def test_interrupted_experiment_resumes_to_the_same_file(tmp_path: Path, reference: Path) -> None:
    config = _config(tmp_path, controllers=["spa", "q-routing"])
    first = run_failure_experiment(config, stop_after=1)
    assert first.ran == 1 and not first.complete
    # A write cut short: half a run's rows and a partial line.
    path = Path(config.output) / "curves.csv"
    text = (reference / "curves.csv").read_text().splitlines(keepends=True)
    with open(path, "a") as fh:
        fh.write("".join(text[1 + 24 * 3:1 + 24 * 3 + 10])[:-7])
    second = run_failure_experiment(config)
    assert second.complete and second.skipped == 1 and second.ran == 3
    assert path.read_text() == (reference / "curves.csv").read_text()
    third = run_failure_experiment(config)
    assert third.ran == 0 and third.skipped == 4
    assert path.read_text() == (reference / "curves.csv").read_text()


def test_an_interrupted_attempt_keeps_its_runs_wall_times(tmp_path: Path) -> None:
    """run.json is written as each run finishes, so a Ctrl-C or SIGTERM (or a kill) keeps the
    wall times of the runs it finished; the attempt that completes the experiment adds its own."""
    import json

    config = _config(tmp_path, controllers=["spa", "q-routing"])
    record = Path(config.output) / "run.json"

    def interrupt(result, done, total) -> None:
        raise KeyboardInterrupt  # after the first finished run

    with pytest.raises(KeyboardInterrupt):
        run_failure_experiment(config, on_run=interrupt)
    first = json.loads(record.read_text())
    assert len(first["run_wall_s"]) == 1 and not first["runs"]["complete"] and first["runs"]["ran"] == 1
    (name, seconds), = first["run_wall_s"].items()
    outcome = run_failure_experiment(config)
    assert outcome.complete and outcome.skipped == 1 and outcome.ran == 3
    final = json.loads(record.read_text())
    assert len(final["run_wall_s"]) == 4 and final["run_wall_s"][name] == seconds and final["runs"]["complete"]


def test_dry_run_counts_the_runs_left_and_changes_nothing(tmp_path: Path) -> None:
    from mamrl.experiments.failures.command import FailureCommand

    config = _config(tmp_path, controllers=["spa", "q-routing"])
    command = FailureCommand(config, ["png"], "local", None)
    output = Path(config.output)
    assert "4 runs" in command.plan() and "4 left to run" in command.plan()
    assert not output.exists()  # nothing written for a fresh output
    run_failure_experiment(config, stop_after=1)
    path = output / "curves.csv"
    # A cut-short write: the dry run counts complete runs only, and leaves the file as it is.
    with open(path, "a") as fh:
        fh.write("0,partial")
    before = path.read_bytes()
    assert "3 left to run" in command.plan()
    assert path.read_bytes() == before
    other = FailureCommand(_config(tmp_path, controllers=["spa", "q-routing"], loss_penalty_ticks=50.0), ["png"], "local", None)
    with pytest.raises(MamrlError, match="loss_penalty_ticks"):
        other.plan()


def test_rerun_with_a_different_config_is_refused(tmp_path: Path, reference: Path) -> None:
    config = _config(tmp_path, controllers=["spa", "q-routing"], output=str(reference), loss_penalty_ticks=50.0)
    with pytest.raises(MamrlError, match="loss_penalty_ticks"):
        CurvesFile(config.output, config).open()


@pytest.mark.slow
def test_two_workers_give_the_same_curves(tmp_path: Path, reference: Path) -> None:
    config = _config(tmp_path, controllers=["spa", "q-routing"], workers=2)
    run_failure_experiment(config)
    assert (Path(config.output) / "curves.csv").read_text() == (reference / "curves.csv").read_text()


def test_table2_and_report(reference: Path) -> None:
    from mamrl.plotting.failures import controller_label, format_estimate, write_failure_report

    table = table2(read_curves(reference / "curves.csv"))
    assert [(t.failure, t.controller) for t in table] == [("D-E", "spa"), ("D-E", "q-routing")]
    spa, q = table
    assert spa.plateau_loss_fraction.mean > 0.05 and q.plateau_loss_fraction.mean < 0.05
    assert spa.low_loss_seeds == 0 and q.paper == 23
    written = write_failure_report(reference, formats=["png"])
    names = {p.name for p in written}
    assert names == {"recovery.png", "loss.png", "loss_transient.png", "lost_cumulative.png", "delivery_time.png", "reward.png", "table2.md", "table2.csv"}
    text = (reference / "table2.md").read_text()
    assert "Episodes to adapt" in text and "| b4 | 23 | 25 | 800 |" in text
    assert "| adaptation steps until loss < 1% |" in text and "**Adaptation steps until loss < 1%.**" in text
    lines = text.splitlines()
    columns = [c.strip() for c in next(line for line in lines if line.startswith("| topology | failed link")).split("|")]
    cells = {row[3]: row for line in lines if line.startswith("| b4 | D-E |")
             for row in [[c.strip() for c in line.split("|")]] if len(row) == len(columns)}  # not the per-seed table
    steps, lost_until = columns.index("adaptation steps until loss < 1%"), columns.index("lost until loss < 1%")
    spa_cells, q_cells = cells[controller_label("spa")], cells[controller_label("q-routing")]
    assert spa_cells[steps] == "never" and q_cells[steps] == "—"  # never below 1%; no steps to count
    assert spa_cells[lost_until] == format_estimate(spa.lost_until_low_loss)
    assert q_cells[lost_until] == format_estimate(q.lost_until_low_loss)
    header = (reference / "table2.csv").read_text().splitlines()[0].split(",")
    assert {"steps_until_low_loss_mean", "lost_until_low_loss_mean"} <= set(header)
    # The summary by controller, in the same file: SPA never below 1%, Q-routing at its mean episode.
    assert f"| b4 | {controller_label('spa')} | > | {spa.lost_until_low_loss.mean:,.0f} |" in text
    assert f"| b4 | {controller_label('q-routing')} | {q.episodes_to_low_loss.mean:.0f} |" in text


def test_table2_summary_sets_failures_side_by_side() -> None:
    import dataclasses

    from mamrl.plotting.failures import controller_label, plot_recovery, table2_summary_markdown
    from mamrl.sim.metrics import Estimate

    def row(failure: str, controller: str, *, episodes: float, steps: float, reached: int, lost: float,
            loss: float, sojourn: float, held_out: bool = False) -> TableRow:
        nan = Estimate(math.nan, math.nan, 0)
        return TableRow("geant", failure, held_out, controller, (0, 1, 2), (), nan, 0, Estimate(episodes, 1.0, reached),
                        reached, Estimate(steps, 1.0, reached), 900, nan, Estimate(loss, 0.0, 3), Estimate(sojourn, 0.0, 3),
                        nan, nan, nan, 0, nan, Estimate(lost, 0.0, 3), nan, None)

    meta = row("7-19", "mamrl-init", episodes=76.4, steps=14.0, reached=3, lost=4326.0, loss=0.0004, sojourn=13.04)
    table = [
        meta,
        dataclasses.replace(meta, failure="2-7", held_out=True, episodes_to_low_loss=Estimate(43.0, 1.0, 2),
                            low_loss_seeds=2, lost_until_low_loss=Estimate(2298.0, 0.0, 3), plateau_sojourn_time=Estimate(11.6, 0.0, 3)),
        row("7-19", "spa", episodes=math.nan, steps=math.nan, reached=0, lost=244804.0, loss=0.1286, sojourn=57.6),
        row("7-19", "q-routing", episodes=0.0, steps=math.nan, reached=3, lost=7.0, loss=0.0, sojourn=25.3),
    ]
    lines = table2_summary_markdown(table)
    assert any("7-19 / 2-7 (held out) |" in line for line in lines)
    assert f"| geant | {controller_label('mamrl-init')} | 76 (14) / 43 (14) [2 of 3] | 2,298–4,326 | 0.04% | 11.6–13.0 |" in lines
    assert f"| geant | {controller_label('spa')} | > / · | 244,804 | 13% | 57.6 |" in lines  # never; not run on 2-7
    assert f"| geant | {controller_label('q-routing')} | 0 / · | 7 | 0% | 25.3 |" in lines  # no steps: Q-routing learns every hop
    # Routing first, then the learners, whatever order the runs finished in.
    assert [line.split(" | ")[1] for line in lines if line.startswith("| geant |")] == [
        controller_label(c) for c in ("spa", "q-routing", "mamrl-init")]

    fig = plot_recovery(table, "")
    left, right = fig.axes[:2]
    labels = [t.get_text() for t in left.get_yticklabels()]  # bottom to top
    assert labels == [controller_label(c) for c in ("mamrl-init", "q-routing", "spa")]

    def points(ax, y: int) -> list[tuple[float, bool]]:  # (x, hollow) of the markers in row y
        return [(float(line.get_xdata()[0]), line.get_markerfacecolor() == "none") for line in ax.lines
                if len(line.get_xdata()) == 1 and abs(float(line.get_ydata()[0]) - y) < 0.4]

    never = left.get_xticks()[-1]
    assert [t.get_text() for t in left.get_xticklabels()][-1] == "never"
    assert points(left, 2) == [(never, False)]  # SPA: no seed below 1%
    assert points(left, 1) == [(0.0, False)]
    assert points(left, 0) == [(76.4, False), (43.0, True)]  # on 2-7 only 2 of 3 seeds got there: hollow
    assert points(right, 0) == [(4326.0, False), (2298.0, False)]


# ------------------------------------------------------------------------------ config
def test_presets_and_config_file(tmp_path: Path) -> None:
    quick = build_failure_config(preset="quick")
    assert quick.controllers == tuple(PRESETS["quick"]["controllers"])
    assert [label for label, _, _ in quick.test_links()] == ["D-E", "I-K", "C-F"]
    path = tmp_path / "e2.toml"
    path.write_text('preset = "quick"\nfailures = ["E-D"]\nheld_out = ["C-F"]\nepisodes = 40\nseeds = [3]\n\n[q_routing]\nlearning_rate = 0.5\n')
    config = build_failure_config(file=path)
    assert config.test_links()[0][0] == "D-E" and config.test_links()[1][2] is True
    resolved = config.resolved()
    assert resolved["q_routing"]["learning_rate"] == 0.5 and resolved["held_out"] == ["C-F"]
    path.write_text("episodez = 40\n")
    with pytest.raises(MamrlError, match="episodez"):
        build_failure_config(file=path)
    path.write_text("[q_routing]\nlearning_rate = 2.0\n")
    with pytest.raises(MamrlError, match="q_routing"):
        build_failure_config(file=path)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"failures": ["A-L"]}, "failures"),
        ({"episodes": -5}, "episodes"),
        ({"fail_episode": 30, "episodes": 30}, "fail_episode"),
        ({"episodes": 25, "fail_episode": 15}, "plateau"),
        ({"failures": ["D-E", "E-D"]}, "twice"),
        ({"controllers": ["spa", "ospf"]}, "ospf"),
        ({"fail_tick": 500}, "horizon"),
    ],
)
def test_bad_config_is_one_line_error(overrides, match) -> None:
    with pytest.raises(MamrlError, match=match) as info:
        build_failure_config(preset="quick", overrides=overrides)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ CLI
def test_cli_failures_smoke_and_rerun(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["failures", "--failure", "D-E", "--controllers", "spa,spa-reconverge", "--episodes", "16", "--fail-episode", "4",
            "--horizon", str(HORIZON), "--load", str(LOAD), "--seeds", "0", "-o", str(out), "-j", "1", "--format", "png"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 runs (2 run, 0 already done)" in result.stdout
    for name in ("curves.csv", "table2.md", "table2.csv", "recovery.png", "loss.png", "loss_transient.png", "lost_cumulative.png", "delivery_time.png", "reward.png",
                 "config.json", "run.json"):
        assert (out / name).is_file(), name
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "(0 run, 2 already done)" in again.stdout
    # --redraw: table2 and the figures again from the folder's own files, its finished runs only.
    (out / "table2.md").unlink()
    lines = (out / "curves.csv").read_text().splitlines(keepends=True)
    (out / "curves.csv").write_text("".join(lines[:-1]))  # the last run loses its last episode
    redrawn = runner.invoke(app, ["failures", "--redraw", "-o", str(out), "--format", "png"])
    assert redrawn.exit_code == 0, redrawn.output
    assert "from its 1 finished runs (1 unfinished left out)" in redrawn.stdout and (out / "table2.md").is_file()
    assert "SPA (never reacts)" in redrawn.stdout and "never" in redrawn.stdout.split("SPA (never reacts)")[1]  # its steps
    assert "SPA, re-converging" not in (out / "table2.md").read_text()  # the unfinished run
    for bad, match in ((["--redraw"], "--redraw needs --output"), (["--redraw", "-o", str(out), "-t", "b4"], "got --topology"),
                       (["--redraw", "-o", str(tmp_path)], "holds no config.json")):
        refused = runner.invoke(app, ["failures", *bad])
        assert_one_line_error(refused)
        assert match in refused.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["failures", "--failure", "A-L"],
        ["failures", "--episodes", "-3"],
        ["failures", "--episodes", "20", "--fail-episode", "20"],
        ["failures", "--seeds", "0,x"],
        ["failures", "--preset", "huge"],
        ["failures", "--format", "gif"],
    ],
)
def test_cli_bad_input_is_one_line_error(args: list[str], tmp_path: Path) -> None:
    assert_one_line_error(runner.invoke(app, [*args, "-o", str(tmp_path / "x")]))


# ------------------------------------------------------------------------------ deep controllers (wiring, with fakes)
def test_deep_controllers_are_wired_through_the_meta_initialisation(tmp_path: Path, monkeypatch) -> None:
    """With stand-ins for mamrl.meta.maml / mamrl.meta.adaptation: meta-training runs once, its
    initialisation reaches make_deep_controllers in every run, resets reach curves.csv."""
    import dataclasses
    import sys
    import types

    import torch

    from mamrl.agents.deep_consensus import DeepConsensusConfig

    calls: dict[str, list] = {"meta_train": [], "make": []}

    @dataclasses.dataclass
    class MamlConfig:
        held_out: tuple[str, ...] = ()
        iterations: int = 1

    class Learner:
        policy_config = DeepConsensusConfig(hidden_sizes=(8,))

        def initial_params(self):
            return {"w": torch.arange(3.0)}

    def meta_train(topology, load, config, out_dir, *, seed=0, iterations=300, horizon_ticks=500, on_chunk=None, task_executor=None):
        calls["meta_train"].append((topology, load, config, Path(out_dir), seed, iterations, horizon_ticks))
        return Learner()

    @dataclasses.dataclass
    class AdaptationConfig:
        step_size: float = 0.01
        episodes_per_step: int = 5

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def train(self, params, seed, num_episodes, *, first_episode=None, on_progress=None):
            metrics = StaticRoutingController("spa").run_episodes(params, seed, first_episode, num_episodes)
            metrics["reset"] = np.array([self.name != "continued" and first_episode + k == 4 for k in range(num_episodes)])
            return metrics

    def make_deep_controllers(meta_init, topology, policy_config, adaptation, seed):
        calls["make"].append((meta_init["w"].tolist(), topology.name, policy_config.hidden_sizes, adaptation.step_size, seed))
        return [Fake(n) for n in ("mamrl-init", "continued", "random-init")]

    import mamrl.training

    monkeypatch.setitem(sys.modules, "mamrl.meta.maml", types.SimpleNamespace(MamlConfig=MamlConfig))
    monkeypatch.setattr(mamrl.training, "meta_train", meta_train)
    monkeypatch.setitem(sys.modules, "mamrl.meta.adaptation", types.SimpleNamespace(
        AdaptationConfig=AdaptationConfig, make_deep_controllers=make_deep_controllers))
    config = _config(tmp_path, controllers=["spa", "mamrl-init", "continued", "random-init"], held_out=["C-F"],
                     seeds=[0], adaptation={"step_size": 0.5}, episodes_per_step=3, meta_iterations=2)
    assert config.resolved()["maml"]["held_out"] == ["C-F"]
    outcome = run_failure_experiment(config)
    assert outcome.complete and outcome.ran == 8
    assert calls["meta_train"] == [("b4", LOAD, calls["meta_train"][0][2], Path(config.output) / "meta", 0, 2, HORIZON)]
    assert calls["meta_train"][0][2].held_out == ("C-F",)
    assert config.resolved()["adaptation"] == {"step_size": 0.5, "episodes_per_step": 3}
    with pytest.raises(MamrlError, match="episodes_per_step"):
        _config(tmp_path, controllers=["mamrl-init"], adaptation={"episodes_per_step": 4})
    assert calls["make"] == [([0.0, 1.0, 2.0], "b4", (8,), 0.5, 0)] * 6
    rows = read_curves(Path(config.output) / "curves.csv")
    resets: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        resets.setdefault((r["failure"], r["controller"]), []).extend([r["episode"]] if r["reset"] else [])
    assert resets[("D-E", "mamrl-init")] == [4] and resets[("C-F", "random-init")] == [4]
    assert resets[("D-E", "continued")] == [] and resets[("D-E", "spa")] == []
    assert {r["held_out"] for r in rows if r["failure"] == "C-F"} == {1}
    from mamrl.plotting.failures import write_failure_report

    write_failure_report(config.output, formats=["png"])  # reset markers, held-out panels
    assert "C-F (held out)" in (Path(config.output) / "table2.md").read_text()


def test_a_kill_during_meta_training_keeps_the_attempts_time(tmp_path: Path, monkeypatch) -> None:
    """attempts.json ticks at every (pre-)training chunk, not only at finished runs (a hard kill
    keeps the time up to the last chunk), and once more when the attempt is interrupted."""
    import json
    import time

    import mamrl.training

    config = _config(tmp_path, controllers=["mamrl-init"], seeds=[0])
    attempts_file = Path(config.output) / "attempts.json"
    seen: list[float] = []

    def meta_train(topology, load, config, out_dir, *, on_chunk=None, **kw):
        time.sleep(0.2)
        on_chunk({"iteration": 1})
        seen.append(json.loads(attempts_file.read_text())["attempts"][-1]["wall_s"])  # what a SIGKILL would leave
        time.sleep(0.2)
        raise KeyboardInterrupt  # Ctrl-C or SIGTERM, before the first run

    monkeypatch.setattr(mamrl.training, "meta_train", meta_train)
    with pytest.raises(KeyboardInterrupt):
        run_failure_experiment(config)
    attempts = json.loads(attempts_file.read_text())["attempts"]
    assert len(attempts) == 1 and not attempts[0]["finished"]
    assert 0.2 <= seen[0] < 0.4 <= attempts[0]["wall_s"]


def test_output_directory_of_another_command_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "train-run"
    out.mkdir()
    (out / "config.json").write_text('{"command": "train"}\n')
    config = _config(tmp_path, controllers=["spa"], output=str(out))
    with pytest.raises(MamrlError, match="not a failure-experiment config"):
        run_failure_experiment(config)
    assert (out / "config.json").read_text() == '{"command": "train"}\n'


def test_figure_subtitle_rounds_an_automatic_load() -> None:
    from types import SimpleNamespace

    from mamrl.plotting.failures import describe

    config = {"episodes": 1020, "horizon_ticks": 500, "fail_episode": 20, "fail_tick": 0}
    curves = SimpleNamespace(seeds=[0, 1, 2])
    assert describe(curves, {"config": {**config, "load": 0.173196}}).startswith("λ = 0.1732, 1020 episodes")  # 0.8 λ*
    assert describe(curves, {"config": {**config, "load": 0.3}}).startswith("λ = 0.3, ")


def test_failure_work_weighs_a_deep_run_as_a_hundred_classical_ones() -> None:
    """E2's progress share: the deep controllers' runs carry almost all of the estimated work, so
    the time left after the classical runs is not read from their pace."""
    from mamrl.experiments.failures.config import FailureExperimentConfig
    from mamrl.experiments.failures.experiment import failure_work

    config = FailureExperimentConfig(controllers=("spa", "mamrl-init"), seeds=(0,), episodes=20, fail_episode=4,
                                     horizon_ticks=50)
    runs = config.runs()
    work = failure_work([config])
    classical = work.finished([(0, r.key) for r in runs if r.controller == "spa"])
    assert 0.0 < classical < 0.02
    assert work.finished([(0, r.key) for r in runs]) == pytest.approx(1.0)
