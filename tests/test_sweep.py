"""The load sweep, its results file, saturation analysis, plots and CLI commands (issue #3, parts 4–6)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mamrl.cli import app
from mamrl.errors import MamrlError
from mamrl.experiments.config import SweepConfig, build_sweep_config
from mamrl.runs import config_differences
from mamrl.experiments.saturation import (
    BOUNDED,
    GROWING,
    classify,
    growth_threshold,
    saturation_search,
    summarise_saturation,
    trained_agent_factory,
)
from mamrl.executors import CellExecutor
from mamrl.experiments.sweep import (
    COLUMNS,
    EVAL_SEED_OFFSET,
    aggregate,
    cell_cost,
    cell_params,
    eval_seed,
    make_cell_executor,
    make_tasks,
    pooled_estimate,
    read_results,
    run_sweep,
    sidecar_path,
    sweep_cells,
    sweep_work,
    train_and_evaluate,
)
from mamrl.sim.metrics import estimate
from mamrl.sim.traffic import draw_traffic
from mamrl.topologies import load_topology
from cli_helpers import assert_one_line_error
from sweep_helpers import without_timings

runner = CliRunner()

# Tiny budgets: the harness, not the learning, is under test.
TINY = {
    "topologies": ["b4"],
    "algorithms": ["spa", "q-routing", "pg"],
    "loads": [0.1, 0.3],
    "seeds": [0, 1],
    "train_episodes": 4,
    "eval_episodes": 3,
    "horizon_ticks": 60,
    "workers": 1,
}


def tiny_config(results: Path, **changes) -> SweepConfig:
    return build_sweep_config(overrides={**TINY, **changes, "results": str(results)})


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted tiny sweep, run serially."""
    path = tmp_path_factory.mktemp("reference") / "results.csv"
    outcome = run_sweep(tiny_config(path))
    assert outcome.complete and outcome.ran == outcome.total_cells == 12
    return path


# ------------------------------------------------------------------------------ config
def test_presets_and_overrides() -> None:
    quick = build_sweep_config(preset="quick")
    assert quick.topologies == ("b4",)
    assert quick.algorithms == ("spa", "ecmp", "max-throughput", "min-delay", "backpressure", "sp-backpressure", "q-routing", "pg")
    assert quick.loads == (0.05, 0.1, 0.2, 0.3) and len(quick.seeds) == 2
    paper = build_sweep_config(preset="paper", overrides={"workers": 3})
    assert paper.topologies == ("b4", "geant", "att")
    assert paper.loads == (0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
    assert paper.train_episodes == 10_000 and paper.horizon_ticks == 500 and 20 <= paper.eval_episodes <= 30
    assert len(paper.seeds) == 3 and paper.workers == 3
    assert build_sweep_config() == quick  # no preset, no file: quick
    # Aliases and load order are normalised; the hash ignores workers and the results path.
    a = build_sweep_config(preset="quick", overrides={"algorithms": ["shortest-path", "q"], "loads": [0.2, 0.1]})
    b = build_sweep_config(preset="quick", overrides={"algorithms": ["spa", "q-routing"], "loads": [0.1, 0.2], "workers": 1,
                                                       "results": "elsewhere.csv"})
    assert a.algorithms == ("spa", "q-routing") and a.loads == (0.1, 0.2)
    assert a.config_hash() == b.config_hash()
    assert a.resolved()["algorithm_config"].keys() == {"spa", "q-routing"}
    assert a.resolved()["algorithm_config"]["q-routing"]["learning_rate"] == 0.7  # defaults filled in


def test_config_file_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "sweep.toml"
    toml.write_text(
        'preset = "paper"\ntopologies = ["b4"]\nloads = [0.1, 0.2]\nresults = "x.csv"\n\n'
        "[algorithm_config.pg]\nstep_size = 0.1\n"
    )
    cfg = build_sweep_config(file=toml, overrides={"seeds": [5]})
    assert cfg.topologies == ("b4",) and cfg.loads == (0.1, 0.2) and cfg.seeds == (5,)
    assert cfg.train_episodes == 10_000  # from the file's preset
    assert cfg.resolved()["algorithm_config"]["pg"]["step_size"] == 0.1
    js = tmp_path / "sweep.json"
    js.write_text(json.dumps({"algorithms": ["spa"], "eval_episodes": 4}))
    cfg = build_sweep_config(file=js)
    assert cfg.algorithms == ("spa",) and cfg.eval_episodes == 4


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"algorithms": ["spa", "nope"]}, "algorithms"),
        ({"topologies": ["atlantis"]}, "topologies"),
        ({"loads": []}, "loads"),
        ({"loads": [0.1, -0.2]}, "loads"),
        ({"loads": [0.1, "high"]}, "loads"),
        ({"seeds": [-1]}, "seeds"),
        ({"train_episodes": 0}, "train_episodes"),
        ({"eval_episodes": -3}, "eval_episodes"),
        ({"horizon_ticks": 2.5}, "horizon_ticks"),
        ({"workers": 0}, "workers"),
        ({"algorithm_config": {"pg": {"step_sise": 0.1}}}, "algorithm_config"),
        ({"algorithm_config": {"pg": {"step_size": "big"}}}, "algorithm_config"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_config_errors_name_the_field(overrides, field) -> None:
    with pytest.raises(MamrlError) as info:
        build_sweep_config(preset="quick", overrides=overrides)
    message = str(info.value)
    assert field in message and "\n" not in message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('loads = [0.1]\nbogus = 3\n', "bogus"),
        ('loads = "0.1"\n', "loads"),
        ('train_episodes = "many"\n', "train_episodes"),
        ('algorithms = ["spa", "ospf"]\n', "algorithms"),
        ('preset = "huge"\n', "preset"),
        ("loads = [0.1\n", "TOML"),
    ],
)
def test_config_file_errors_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(MamrlError) as info:
        build_sweep_config(file=path)
    assert field in str(info.value) and "\n" not in str(info.value)


def test_config_differences_names_fields() -> None:
    a = tiny_config(Path("a.csv")).resolved()
    b = tiny_config(Path("a.csv"), loads=[0.1, 0.2], algorithm_config={"pg": {"step_size": 0.2}}).resolved()
    assert config_differences(a, b) == ["algorithm_config.pg.step_size", "loads"]


# ------------------------------------------------------------------------------ results file, resume
def test_results_file_layout(reference: Path) -> None:
    rows = read_results(reference)
    assert reference.read_text().splitlines()[0].split(",") == list(COLUMNS)
    assert [(r["algorithm"], r["load"], r["seed"]) for r in rows[:4]] == [("spa", 0.1, 0), ("spa", 0.1, 1), ("spa", 0.3, 0), ("spa", 0.3, 1)]
    for row in rows:
        assert row["eval_seed"] == row["seed"] + EVAL_SEED_OFFSET
        assert row["train_episodes"] == (0 if row["algorithm"] == "spa" else 4)
        assert row["eval_episodes"] == 3 and row["routers"] == 12 and row["mamrl_version"]
        assert row["delivered_fraction_n"] == 3 and math.isfinite(row["mean_sojourn_time_mean"])
    side = json.loads(sidecar_path(reference).read_text())
    assert side["config"]["loads"] == [0.1, 0.3] and side["config_hash"] == rows[0]["config_hash"]
    assert side["created"]["mamrl_version"]


def test_interrupted_sweep_resumes_to_the_same_file(tmp_path: Path, reference: Path) -> None:
    path = tmp_path / "results.csv"
    first = run_sweep(tiny_config(path), stop_after=5)
    assert first.ran == 5 and not first.complete
    # A crash in the middle of writing the next row leaves a partial last line.
    full = reference.read_text().splitlines(keepends=True)
    with open(path, "a") as fh:
        fh.write(full[7][:37])
    second = run_sweep(tiny_config(path))
    assert second.skipped == 5 and second.ran == 7 and second.complete
    assert without_timings(path) == without_timings(reference)


def test_truncated_results_file_resumes(tmp_path: Path, reference: Path) -> None:
    path = tmp_path / "results.csv"
    text = reference.read_text()
    lines = text.splitlines(keepends=True)
    path.write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
    sidecar_path(path).write_text(sidecar_path(reference).read_text())
    outcome = run_sweep(tiny_config(path))
    assert outcome.skipped == 3 and outcome.ran == 9
    assert without_timings(path) == without_timings(reference)


class _NoWork(CellExecutor):
    def map_cells(self, tasks):
        raise AssertionError(f"asked to run {len(tasks)} cells")


def test_rerun_with_same_config_does_no_work(tmp_path: Path, reference: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(reference.read_text())
    sidecar_path(path).write_text(sidecar_path(reference).read_text())
    before = path.read_text()
    outcome = run_sweep(tiny_config(path, workers=2), executor=_NoWork())  # workers does not count
    assert outcome.ran == 0 and outcome.skipped == 12 and outcome.complete
    assert path.read_text() == before


def test_rerun_with_different_config_is_refused(tmp_path: Path, reference: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(reference.read_text())
    sidecar_path(path).write_text(sidecar_path(reference).read_text())
    with pytest.raises(MamrlError) as info:
        run_sweep(tiny_config(path, loads=[0.1, 0.2], eval_episodes=4), executor=_NoWork())
    assert "eval_episodes" in str(info.value) and "loads" in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "foreign.csv").write_text("a,b\n1,2\n")
    with pytest.raises(MamrlError, match="sidecar"):
        run_sweep(tiny_config(tmp_path / "foreign.csv"), executor=_NoWork())


@pytest.mark.slow
def test_one_and_two_workers_give_identical_rows(tmp_path: Path, reference: Path) -> None:
    path = tmp_path / "results.csv"
    with make_cell_executor("local", 2) as executor:
        outcome = run_sweep(tiny_config(path, workers=2), executor=executor)
    assert outcome.complete and outcome.ran == 12
    assert without_timings(path) == without_timings(reference)


# ------------------------------------------------------------------------------ common random numbers
def test_algorithms_in_a_cell_see_identical_traffic(tmp_path: Path, reference: Path) -> None:
    config = tiny_config(tmp_path / "unused.csv")
    cells = [c for c in sweep_cells(config) if c.load == 0.3 and c.seed == 1]
    tasks = make_tasks(config, cells)
    generated = {}
    for task in tasks:
        _, _, per_episode, _, _ = train_and_evaluate(task)
        generated[task.cell.algorithm] = per_episode["generated"]
    assert len(generated) == 3
    assert np.array_equal(generated["spa"], generated["pg"]) and np.array_equal(generated["spa"], generated["q-routing"])
    # The packets themselves: drawn from the cell's evaluation seed, independent of the policy.
    params = cell_params(tasks[0])
    a, b = draw_traffic(params, eval_seed(1), 3), draw_traffic(cell_params(tasks[2]), eval_seed(1), 3)
    for field in ("created_tick", "src", "dst", "size", "count"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert np.array_equal(a.count, generated["spa"])
    # Training and evaluation traffic differ.
    assert not np.array_equal(draw_traffic(params, 1, 3).count, a.count)
    # And in the results file: equal packet counts across algorithms for every (load, seed).
    by_key: dict = {}
    for row in read_results(reference):
        by_key.setdefault((row["load"], row["seed"]), set()).add(row["generated_mean"])
    assert all(len(values) == 1 for values in by_key.values())


# ------------------------------------------------------------------------------ pooling and saturation
def test_pooled_estimate_equals_estimate_of_concatenation() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.normal(3.0 + k, 1.0 + k, size=n) for k, n in enumerate((5, 8, 1, 12))]
    pooled = pooled_estimate((estimate(p).mean, estimate(p).ci95, estimate(p).n) for p in parts)
    direct = estimate(np.concatenate(parts))
    assert pooled.n == direct.n and math.isclose(pooled.mean, direct.mean) and math.isclose(pooled.ci95, direct.ci95)


def test_classify_rule() -> None:
    from mamrl.sim.metrics import Estimate

    assert growth_threshold(0.1, 12, 500) == pytest.approx(0.012)
    assert growth_threshold(0.005, 12, 500) == pytest.approx(0.004)  # the 2/H floor
    assert classify(Estimate(0.0, 0.005, 20), 0.1, 12, 500) == BOUNDED
    assert classify(Estimate(0.1, 0.05, 20), 0.1, 12, 500) == GROWING
    assert classify(Estimate(0.01, 0.01, 20), 0.1, 12, 500) == "undetermined"


def test_saturation_search_finds_spa_saturation_on_b4() -> None:
    topo = load_topology("b4")
    result = saturation_search(
        topo, "spa", trained_agent_factory("spa", None, 1, 500),
        low=0.05, high=0.4, tolerance=0.01, horizon_ticks=2000, episodes=8, max_episodes=16,
    )
    assert result.bounded_load is not None and result.unbounded_load is not None
    assert 0.15 <= result.bounded_load < result.unbounded_load <= 0.25, result.describe()


def test_sweep_saturation_summary_brackets_spa(tmp_path: Path) -> None:
    config = build_sweep_config(overrides={
        "topologies": ["b4"], "algorithms": ["spa"], "loads": [0.05, 0.1, 0.15, 0.25, 0.3], "seeds": [0, 1],
        "eval_episodes": 10, "horizon_ticks": 1000, "workers": 1, "results": str(tmp_path / "r.csv"),
    })
    (summary,) = summarise_saturation(aggregate(run_sweep(config).rows))
    assert summary.bounded_up_to is not None and 0.15 <= summary.bounded_up_to < 0.25
    assert summary.growing_from is not None and 0.15 < summary.growing_from <= 0.25
    assert summary.status[0.05] == BOUNDED and summary.status[0.3] == GROWING


# ------------------------------------------------------------------------------ CLI
@pytest.mark.slow
def test_cli_sweep_plot_and_rerun(tmp_path: Path) -> None:
    results, out = tmp_path / "r.csv", tmp_path / "plots"
    args = ["sweep", "--preset", "quick", "--loads", "0.1,0.3", "--seeds", "0", "--train-episodes", "3",
            "--eval-episodes", "3", "--horizon", "60", "--workers", "1", "--results", str(results)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # 8 algorithms × 2 loads, all below b4's λ* = 0.314.
    assert "sweep finished: 16 cells (16 run, 0 already done)" in result.stdout
    assert "bounded up to" in result.stdout
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "(0 run, 16 already done)" in again.stdout

    result = runner.invoke(app, ["plot", str(results), "--output", str(out)])
    assert result.exit_code == 0, result.output
    for stem in ("delivery_time", "sojourn_time", "loss_delivered"):
        for suffix in ("png", "pdf"):
            assert (out / f"{stem}.{suffix}").stat().st_size > 1000
    report = (out / "results.md").read_text()
    for text in ("## Saturation", "bounded up to", "reduction (paper's metric)", "reduction (sojourn time)", "p95 / p99 delivery time",
                 "B4 25 / 24 / 14 %", "GEANT 37 / 37 / 10 %", "ATT 33 / 28 / 10 %", "| b4 | 0.3 | PG | SPA |",
                 "| b4 | 0.3 | SPA | Q-routing |", "## All points"):
        assert text in report, text


def test_report_shows_paper_figures_for_mamrl_at_half_load(tmp_path: Path, reference: Path) -> None:
    from mamrl.plotting.sweep import markdown_report

    rows = read_results(reference)
    fake = [dict(r, load=0.5) for r in rows if r["load"] == 0.3]
    fake += [dict(r, algorithm="mamrl") for r in fake if r["algorithm"] == "pg"]
    report = markdown_report(fake, source="x.csv")
    assert "| b4 | 0.5 | MAMRL | SPA |" in report
    line = next(l for l in report.splitlines() if l.startswith("| b4 | 0.5 | MAMRL | PG |"))
    assert line.rstrip().endswith("| 14 % |")
    assert "is not in this sweep" not in report


@pytest.mark.parametrize(
    "args",
    [
        ["sweep", "--algorithms", "spa,ospf", "--dry-run"],
        ["sweep", "--topologies", "atlantis", "--dry-run"],
        ["sweep", "--loads", "", "--dry-run"],
        ["sweep", "--loads", "0.1,-0.2", "--dry-run"],
        ["sweep", "--loads", "0.1,lots", "--dry-run"],
        ["sweep", "--train-episodes", "0", "--dry-run"],
        ["sweep", "--eval-episodes", "-1", "--dry-run"],
        ["sweep", "--preset", "huge", "--dry-run"],
        ["sweep", "--config", "does-not-exist.toml"],
        ["plot", "does-not-exist.csv", "--output", "out"],
        ["saturation", "--algorithm", "ospf"],
        ["saturation", "--low", "0.3", "--high", "0.1"],
        ["saturation", "--topology", "atlantis"],
        ["saturation", "--episodes", "1"],
    ],
)
def test_cli_bad_input_is_one_line_error(args: list[str], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(runner.invoke(app, args))


def test_cli_config_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('loads = [0.1]\nhorizon = 500\n')
    result = runner.invoke(app, ["sweep", "--config", str(path), "--dry-run"])
    assert_one_line_error(result)
    assert "horizon" in result.stderr and "unknown field" in result.stderr
    path.write_text('eval_episodes = 0\n')
    result = runner.invoke(app, ["sweep", "--config", str(path), "--dry-run"])
    assert_one_line_error(result)
    assert "eval_episodes" in result.stderr


def test_cli_sweep_refuses_a_different_config(tmp_path: Path, reference: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(reference.read_text())
    sidecar_path(path).write_text(sidecar_path(reference).read_text())
    result = runner.invoke(app, ["sweep", "--preset", "quick", "--results", str(path), "--workers", "1"])
    assert_one_line_error(result)
    assert "different sweep config" in result.stderr and "algorithms" in result.stderr


def test_cli_saturation_search(tmp_path: Path) -> None:
    out = tmp_path / "sat.json"
    result = runner.invoke(app, ["saturation", "--topology", "b4", "--algorithm", "spa", "--low", "0.05", "--high", "0.4",
                                 "--tolerance", "0.02", "--horizon", "1000", "--episodes", "6", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "saturation between" in result.stdout
    doc = json.loads(out.read_text())
    assert 0.12 <= doc["bounded_load"] < doc["unbounded_load"] <= 0.3
    assert doc["probes"] and doc["mamrl_version"]


def test_evaluation_can_run_longer_episodes_than_training(tmp_path: Path) -> None:
    base = {"topologies": ["b4"], "algorithms": ["spa", "pg"], "loads": [0.1], "seeds": [0], "train_episodes": 2,
            "eval_episodes": 3, "horizon_ticks": 50, "workers": 1}
    short = run_sweep(build_sweep_config(overrides={**base, "results": str(tmp_path / "a.csv")})).rows
    long = run_sweep(build_sweep_config(overrides={**base, "eval_horizon_ticks": 200, "results": str(tmp_path / "b.csv")})).rows
    for s, l in zip(short, long):
        assert (s["horizon_ticks"], s["eval_horizon_ticks"]) == (50, 50)
        assert (l["horizon_ticks"], l["eval_horizon_ticks"]) == (50, 200)
        assert l["generated_mean"] > 3.5 * s["generated_mean"]  # four times the ticks, same load
    assert {p.horizon_ticks for p in aggregate(long)} == {200}


def test_cell_cost_rates_a_deep_cell_above_many_tabular_ones(tmp_path: Path) -> None:
    """The deep learner's rollout calls every router's network every tick whatever the load, so
    its cell costs far more than a PG or Q-routing cell at any load, and its low-load cells are not
    near-free (the cost that orders cells, longest first, and weighs E1's time-left estimate)."""
    config = SweepConfig(topologies=("att",), algorithms=("spa", "pg", "mamrl"), loads=(0.005, 0.5), seeds=(0,),
                         train_episodes=100, eval_episodes=4, horizon_ticks=50, results=str(tmp_path / "r.csv"))
    cost = {(t.cell.algorithm, t.cell.load): cell_cost(t) for t in make_tasks(config, sweep_cells(config))}
    assert cost[("mamrl", 0.005)] > 20 * cost[("pg", 0.5)]
    assert cost[("mamrl", 0.005)] > 0.9 * cost[("mamrl", 0.5)]
    assert cost[("pg", 0.5)] > 10 * cost[("pg", 0.005)]
    assert cost[("pg", 0.5)] > 10 * cost[("spa", 0.5)]  # SPA only evaluates

    work = sweep_work([config])
    keys = [(0, ("att", a, load, 0)) for a, load in cost]
    assert work.share == 0.0
    tabular = work.finished([k for k in keys if k[1][1] != "mamrl"])
    assert 0.0 < tabular < 0.05
    assert work.finished(keys) == pytest.approx(1.0)  # each cell counts once
