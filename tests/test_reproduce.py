"""`mamrl reproduce`: E1 + saturation + meta-training + E2 + REPORT.md in one command, on a tiny
budget (the `--set` overrides below shrink every stage to seconds), its resume and its refusals."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_helpers import assert_one_line_error, console_command
from mamrl.cli import app
from mamrl.errors import MamrlError
from mamrl.experiments.reproduce_config import MANIFEST, PRESETS, STAGE_NAMES, build_reproduce_config
from mamrl.report.reproduce import run_reproduce
from mamrl.report.markdown import REDUCED_LABEL, Comparison, load_against_capacity, overloaded_topologies
from mamrl.experiments.sweep import sweep_cells
from mamrl.runs import is_lock_file
from mamrl.sim.metrics import Estimate

runner = CliRunner()

TINY: dict[str, object] = {
    "sweep.loads": [0.1, 0.5],
    "sweep.seeds": [0],
    "sweep.train_episodes": 20,
    "sweep.eval_episodes": 4,
    "sweep.horizon_ticks": 100,
    "sweep.algorithm_config.mamrl.hidden_sizes": [16],
    "sweep.algorithm_config.mamrl.episodes_per_iteration": 4,
    "algorithm_train_episodes.mamrl": 4,
    "saturation.horizon_ticks": 200,
    "saturation.episodes": 2,
    "saturation.max_episodes": 4,
    "saturation.tolerance": 0.1,
    "failures.episodes": 16,
    "failures.fail_episode": 4,
    "failures.seeds": [0],
    "failures.horizon_ticks": 100,
    "failures.meta_iterations": 1,
    "failures.maml.episodes_per_task": 2,
    "failures.maml.tasks_per_iteration": 1,
    "failures.maml.hidden_sizes": [16],
}
"""Every stage in seconds: 2 loads × 1 seed, 100-tick episodes, 1 meta-iteration, 16 failure episodes."""

FIGURES = [f"fig4-{s}" for s in ("delivery-time", "sojourn-time", "loss-delivered")] + [
    "fig5-loss-b4", "fig5-loss-transient-b4", "fig5-lost-cumulative-b4", "fig6-delivery-time-b4", "fig7-reward-b4", "table2-recovery-b4"]


def _set_args(overrides: dict[str, object]) -> list[str]:
    return [arg for key, value in overrides.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and not is_lock_file(p)}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> dict[str, object]:
    """A tiny reproduction, killed after E1 (the test hook) and then finished by the CLI."""
    out = tmp_path_factory.mktemp("reproduce") / "out"
    config = build_reproduce_config(preset="quick", overrides=TINY, workers=1, output=out)
    partial = run_reproduce(config, stop_after_stage="e1")
    e1_files = {name: (out / "e1" / name).stat().st_mtime_ns for name in ("results.csv", "sweep_mamrl.csv")}
    manifest = json.loads((out / MANIFEST).read_text())
    result = runner.invoke(app, ["reproduce", "-o", str(out), "-j", "1", *_set_args(TINY)])
    return {"out": out, "partial": partial, "e1_files": e1_files, "manifest_after_e1": manifest, "result": result}


@pytest.mark.slow
def test_interrupted_run_resumes_at_the_next_stage(reproduced) -> None:
    partial = reproduced["partial"]
    assert partial.stages == {"e1": "ran", **{name: "not run" for name in STAGE_NAMES[1:]}}
    assert partial.report is None
    stages = reproduced["manifest_after_e1"]["stages"]
    assert stages["e1"]["status"] == "done" and set(stages) == {"e1"}
    result = reproduced["result"]
    assert result.exit_code == 0, result.output
    assert "stages run: saturation, meta, e2, report; already done: e1" in result.stdout
    out = reproduced["out"]
    for name, mtime in reproduced["e1_files"].items():  # E1 was not recomputed
        assert (out / "e1" / name).stat().st_mtime_ns == mtime
    manifest = json.loads((out / MANIFEST).read_text())
    assert all(manifest["stages"][name]["status"] == "done" for name in STAGE_NAMES)
    assert manifest["stages"]["e1"]["attempts"] == 1


@pytest.mark.slow
def test_every_figure_and_table_is_written(reproduced) -> None:
    out = reproduced["out"]
    for stem in FIGURES:
        for fmt in ("png", "pdf"):
            path = out / "figures" / f"{stem}.{fmt}"
            assert path.is_file() and path.stat().st_size > 1000, path
    for name in ("REPORT.md", "lambda05.md", "lambda05.csv", "table2.md", "table2.csv", "e1/results.csv", "e1/results.md",
                 "saturation/b4-spa.json", "e2/b4/curves.csv", "e2/b4/meta_init.pt", "e2/b4/meta/checkpoint.pt"):
        assert (out / name).is_file(), name
    with open(out / "lambda05.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # max-throughput and min-delay do not exist at λ = 0.5 > λ* (0.314 on b4): no cell, no comparison.
    assert [(r["algorithm"], r["baseline"]) for r in rows] == [
        ("mamrl", "spa"), ("mamrl", "ecmp"), ("mamrl", "backpressure"), ("mamrl", "sp-backpressure"), ("mamrl", "q-routing"),
        ("mamrl", "pg")]
    assert {float(r["load"]) for r in rows} == {0.5}
    # The paper has no ECMP nor backpressure.
    assert [r["paper_delivery_time_reduction_pct"] for r in rows] == ["25.0", "", "", "", "24.0", "14.0"]
    for r in rows:
        for key in ("delivery_time_reduction_pct", "sojourn_time_reduction_pct", "delivered_difference_points"):
            assert math.isfinite(float(r[key])), key
    with open(out / "table2.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert {r["failure"] for r in table} == {"D-E", "I-K", "C-F"}
    assert {r["controller"] for r in table} == {"spa", "spa-reconverge", "q-routing", "mamrl-init", "continued", "random-init"}


@pytest.mark.slow
def test_report_has_the_papers_numbers_ours_and_the_label(reproduced) -> None:
    out = reproduced["out"]
    report = (out / "REPORT.md").read_text()
    assert f"**{REDUCED_LABEL}.**" in report
    assert "| b4 | 25% | 24% | 14% |" in report  # the paper's λ = 0.5 reductions
    assert "| b4 | 23 | 25 | 800 |" in report  # the paper's Table 2
    with open(out / "lambda05.csv", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert f"{float(first['delivery_time_x_mean']):.3g}" in report  # ours
    assert f"{float(first['delivery_time_reduction_pct']):+.1f}" in report
    for text in ("MAMRL vs SPA", "sojourn time", "delivered X − Y", "## Saturation loads", "Table 2", "Meta-training",
                 "| **total** |", "torch ", "numpy ", "python ", "Seeds: E1 training 0", '"format": "mamrl-reproduce/1"',
                 "| adaptation steps until loss < 1% | packets lost until loss < 1% | recovery (ticks of network time) |",
                 "**Adaptation steps until loss < 1%.**", "**Recovery in network time.**",
                 "of λ* = ", "* **Saturation.** The comparison load is past the capacity limit λ* of b4"):
        assert text in report, text
    for stem in FIGURES:
        assert f"figures/{stem}.png" in report, stem
    saturation = json.loads((out / "saturation" / "b4-spa.json").read_text())
    assert saturation["algorithm"] == "spa" and saturation["probes"]


def test_the_run_record_counts_meta_training_restored_from_another_folder() -> None:
    """The paper run's manifest holds only att's meta-training (5,376 s): b4's and geant's ran
    before it, in a folder since replaced. Their curves keep the time, and the run record counts it."""
    from mamrl.report.markdown import _meta_wall

    walls = {"e1": 100.0, "meta": 5376.0, "e2": 50.0}
    metas = [{"seconds": 2473.0}, {"seconds": 3305.0}, {"seconds": 5357.0}, None]
    counted, note = _meta_wall(walls, metas)
    assert counted == {"e1": 100.0, "meta": 11135.0, "e2": 50.0} and walls["meta"] == 5376.0
    assert "3.09 h" in note and "89.6 min" in note
    assert _meta_wall(walls, [{"seconds": 5357.0}]) == (walls, "")  # the manifest's, when its attempts hold it all


@pytest.mark.slow
def test_rerun_recomputes_nothing(reproduced) -> None:
    out = reproduced["out"]
    before = _mtimes(out)
    result = runner.invoke(app, ["reproduce", "-o", str(out), "-j", "1", *_set_args(TINY)])
    assert result.exit_code == 0, result.output
    assert "stages run: none" in result.stdout
    assert _mtimes(out) == before


@pytest.mark.slow
def test_a_missing_report_is_redrawn_alone(reproduced, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reproduced["out"], out)
    (out / "REPORT.md").unlink()
    # As if the meta-initialisation had been trained before this manifest (restored from another folder).
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["stages"]["meta"]["wall_s"] = 0.0
    (out / MANIFEST).write_text(json.dumps(manifest))
    curves = (out / "e2" / "b4" / "curves.csv").stat().st_mtime_ns
    outcome = run_reproduce(build_reproduce_config(preset="quick", overrides=TINY, workers=1, output=out))
    assert outcome.stages == {**{name: "skipped" for name in STAGE_NAMES[:-1]}, "report": "ran"}
    assert (out / "REPORT.md").is_file() and (out / "e2" / "b4" / "curves.csv").stat().st_mtime_ns == curves
    from mamrl.experiments.reproduce_config import STAGES
    from mamrl.report.markdown import _seconds

    with open(out / "e2" / "b4" / "meta" / "curves.csv", newline="") as fh:
        meta_s = sum(float(row["seconds"]) for row in csv.DictReader(fh))
    report = (out / "REPORT.md").read_text()
    assert meta_s >= 0.05 and f"| {dict(STAGES)['meta']} | {_seconds(meta_s)} |" in report  # the curves' time, not 0 s
    assert "Meta-training: its curves record" in report


@pytest.mark.slow
def test_a_different_configuration_is_refused_in_one_line(reproduced) -> None:
    out = reproduced["out"]
    before = _mtimes(out)
    result = runner.invoke(app, ["reproduce", "-o", str(out), "-j", "1", *_set_args({**TINY, "sweep.eval_episodes": 5})])
    assert_one_line_error(result)
    assert "different configuration" in result.stderr and "eval_episodes" in result.stderr
    assert _mtimes(out) == before


@pytest.mark.slow
def test_a_truncated_or_changed_stage_output_is_one_line(reproduced, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reproduced["out"], out)
    results = out / "e1" / "results.csv"
    text = results.read_text()
    args = ["reproduce", "-o", str(out), "-j", "1", *_set_args(TINY)]
    for damaged, what in ((text[: len(text) // 2], "truncated"), (text.replace("0.", "1.", 1), "content changed")):
        results.write_text(damaged)
        result = runner.invoke(app, args)
        assert_one_line_error(result)
        assert str(results) in result.stderr and what in result.stderr and "delete it" in result.stderr
    results.unlink()  # the recovery the message names: the stage recomputes it
    outcome = run_reproduce(build_reproduce_config(preset="quick", overrides=TINY, workers=1, output=out))
    assert outcome.stages == {"e1": "ran", "saturation": "skipped", "meta": "skipped", "e2": "skipped", "report": "ran"}
    assert results.read_text() == text


@pytest.mark.slow
def test_a_deleted_stage_output_reruns_that_stage(reproduced, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reproduced["out"], out)
    spa = out / "saturation" / "b4-spa.json"
    before = json.loads(spa.read_text())
    spa.unlink()
    outcome = run_reproduce(build_reproduce_config(preset="quick", overrides=TINY, workers=1, output=out))
    assert outcome.stages == {"e1": "skipped", "saturation": "ran", "meta": "skipped", "e2": "skipped", "report": "ran"}
    assert json.loads(spa.read_text())["probes"] == before["probes"]
    stage = json.loads((out / MANIFEST).read_text())["stages"]["saturation"]
    assert stage["attempts"] == 2 and "saturation/b4-spa.json" in stage["files"]


@pytest.mark.parametrize("text", ["", "{\"format\": \"mamrl-reproduce/1\"", "[]",
                                  "{\"format\": \"mamrl-reproduce/1\", \"config\": {}, \"stages\": []}"])
def test_a_damaged_manifest_is_one_line(tmp_path: Path, text: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text(text)
    result = runner.invoke(app, ["reproduce", "-o", str(out), *_set_args(TINY)])
    assert_one_line_error(result)
    assert str(out / MANIFEST) in result.stderr and "--output" in result.stderr


@pytest.mark.parametrize(
    "args, match",
    [
        (["--topology", "nowhere"], "--topology[0]: unknown topology"),
        (["--preset", "huge"], "unknown preset"),
        (["--set", "foo.bar=1"], "unknown field 'foo'"),
        (["--set", "sweep.bogus=1"], "sweep.bogus: unknown field"),
        (["--set", "sweep.results=x.csv"], "set by `mamrl reproduce` itself"),
        (["--set", "failures.controllers=[\"magic\"]"], "unknown controller"),
        (["--set", "saturation.low=0.9"], "saturation.high"),
        (["--set", "nonsense"], "KEY=VALUE"),
        (["-j", "0"], "--workers"),
        (["--stage", "e3"], "unknown stage 'e3'"),
    ],
)
def test_bad_input_is_one_line_error(args: list[str], match: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["reproduce", "-o", str(tmp_path / "x"), *args])
    assert_one_line_error(result)
    assert match in result.stderr
    assert not (tmp_path / "x").exists()


def test_unwritable_or_foreign_output_is_one_line_error(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    for output, match in ((afile, "not a directory"), (afile / "sub", "cannot create output directory")):
        result = runner.invoke(app, ["reproduce", "-o", str(output), *_set_args(TINY)])
        assert_one_line_error(result)
        assert match in result.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["reproduce", "-o", str(foreign), *_set_args(TINY)])
    assert_one_line_error(result)
    assert "holds no manifest.json" in result.stderr


def test_presets() -> None:
    quick = build_reproduce_config()
    assert quick.topologies == ("b4",) and quick.output == "runs/reproduce-quick" and quick.reduced
    groups = {g.algorithms: g.train_episodes for g in quick.sweep_groups()}
    assert groups == {("spa", "ecmp", "max-throughput", "min-delay", "backpressure", "sp-backpressure", "q-routing", "pg"): 2000,
                      ("mamrl",): PRESETS["quick"]["algorithm_train_episodes"]["mamrl"]}
    assert 0.5 in quick.sweep["loads"]  # the paper's comparison point
    assert quick.failure_config("b4").deep and quick.failure_config("b4").meta_init is None
    paper = build_reproduce_config(preset="paper")
    assert paper.topologies == ("b4", "geant", "att") and not paper.reduced
    (group,) = paper.sweep_groups()
    assert group.algorithms == ("spa", "ecmp", "max-throughput", "min-delay", "backpressure", "sp-backpressure", "q-routing",
                                "pg", "mamrl")
    assert group.train_episodes == 10_000
    assert len(group.seeds) == 3 and len(group.loads) == 8
    e2 = paper.failure_config("att")
    assert (e2.meta_iterations, e2.episodes - e2.fail_episode, len(e2.seeds)) == (300, 1000, 3)
    assert build_reproduce_config(preset="paper", overrides={"failures.meta_iterations": 5}).reduced
    assert build_reproduce_config(preset="paper", topologies=["GEANT"]).topologies == ("geant",)
    # The resolved config names a difference down to the field.
    assert quick.config_hash() != build_reproduce_config(overrides={"algorithm_train_episodes.mamrl": 32}).config_hash()
    with pytest.raises(MamrlError, match="listed twice"):
        build_reproduce_config(topologies=["b4", "B4"])


def test_comparison_arithmetic() -> None:
    c = Comparison("b4", 0.5, "mamrl", "spa", (Estimate(75.0, 3.0, 20), Estimate(100.0, 4.0, 20)),
                   (Estimate(50.0, 1.0, 20), Estimate(40.0, 1.0, 20)), (Estimate(0.6, 0.03, 20), Estimate(0.5, 0.04, 20)), 25.0)
    value, half = c.delivery_reduction()
    assert value == pytest.approx(25.0) and half == pytest.approx(100 * 0.75 * math.hypot(3 / 75, 4 / 100))
    assert c.paper_in_ci() == "yes"
    assert c.sojourn_reduction()[0] == pytest.approx(-25.0)
    diff, diff_half = c.delivered_difference()
    assert diff == pytest.approx(10.0) and diff_half == pytest.approx(5.0)


def test_the_comparison_load_is_read_against_the_capacity_limit() -> None:
    e = Estimate(1.0, 0.1, 5)

    def row(topology: str, load: float) -> Comparison:
        return Comparison(topology, load, "mamrl", "spa", (e, e), (e, e), (e, e), None)

    limits = {"b4": 0.3143, "geant": 0.2273, "att": 0.2727}
    rows = [row("b4", 0.5), row("geant", 0.5), row("att", 0.5)]
    assert overloaded_topologies(rows, limits) == ["b4", "geant", "att"]
    text = load_against_capacity(rows, limits)
    assert text.startswith("λ = 0.5 is 159% of λ* = 0.3143 on b4, 220% of λ* = 0.2273 on geant, 183% of λ* = 0.2727 on att.")
    assert "On every topology no routing can carry this load" in text
    # Below λ* on one topology: only the others are called overloaded.
    mixed = [row("b4", 0.2), row("geant", 0.3)]
    assert overloaded_topologies(mixed, limits) == ["geant"]
    text = load_against_capacity(mixed, limits)
    assert "λ = 0.2 is 64% of λ* = 0.3143 on b4, λ = 0.3 is 132% of λ* = 0.2273 on geant." in text
    assert "On geant no routing can carry this load" in text
    feasible = load_against_capacity([row("b4", 0.1)], limits)
    assert "32% of λ* = 0.3143 on b4" in feasible and "no routing can carry" not in feasible
    assert load_against_capacity(rows, {}) == ""  # no λ* known: no sentence rather than a wrong one


def test_one_stage_runs_alone_and_only_after_the_stages_it_reads(tmp_path: Path) -> None:
    """`--stage meta` meta-trains without E1 (the order a long run may want); E2 and the report refuse
    to run before the stages they read."""
    out = tmp_path / "out"
    for stage, match in (("e2", "reads the meta stage"), ("report", "reads the e1, saturation, meta, e2 stage")):
        result = runner.invoke(app, ["reproduce", "-o", str(out), "-j", "1", "--stage", stage, *_set_args(TINY)])
        assert_one_line_error(result)
        assert match in result.stderr and "--stage" in result.stderr
    assert not out.exists()
    result = runner.invoke(app, ["reproduce", "-o", str(out), "-j", "1", "--stage", "meta", *_set_args(TINY)])
    assert result.exit_code == 0, result.output
    assert "stages run: meta" in result.stdout and "no report yet" in result.stdout and "None" not in result.stdout
    stages = json.loads((out / MANIFEST).read_text())["stages"]
    assert set(stages) == {"meta"} and stages["meta"]["status"] == "done"
    assert (out / "e2" / "b4" / "meta_init.pt").is_file() and not (out / "e1").exists()
    result = runner.invoke(app, ["reproduce", "-o", str(out), "-j", "1", "--stage", "e2", *_set_args(TINY)])
    assert result.exit_code == 0 and "stages run: e2" in result.stdout, result.output
    result = runner.invoke(app, ["reproduce", "-o", str(out), "-j", "1", "--dry-run", *_set_args(TINY)])
    assert result.exit_code == 0, result.output
    config = build_reproduce_config(preset="quick", overrides=TINY, workers=1, output=out)
    runs_total = len(config.failure_config("b4").runs())
    cells = sum(len(sweep_cells(group)) for group in config.sweep_groups())
    with open(out / "e2" / "b4" / "meta" / "curves.csv", newline="") as fh:
        meta_s = sum(float(row["seconds"]) for row in csv.DictReader(fh))
    for line in (f"e1: not started; 0 of {cells} cells", "saturation: not started; 0 of",
                 f"iterations: b4 1 of 1 ({meta_s:,.0f} s in its curves)",
                 f"; b4 {runs_total} of {runs_total} runs", "report: not started; no REPORT.md yet"):
        assert line in result.stdout, line
    assert "meta: done, " in result.stdout and "e2: done, " in result.stdout


def test_dry_run_prints_the_config_and_writes_nothing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["reproduce", "--preset", "paper", "-o", str(tmp_path / "p"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert '"config_hash"' in result.stdout and "stages already done" in result.stdout
    assert "e1: not started; 0 of 600 cells" in result.stdout and "iterations: b4 0 of 300, geant 0 of 300" in result.stdout
    assert "geant 0 of 234 runs (pre-training episodes: intact 0 of 27,000, multitask 0 of 27,000)" in result.stdout
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_sigterm_records_the_interrupted_stage_and_says_how_to_resume(tmp_path) -> None:
    """`kill` (SIGTERM) during a stage acts like Ctrl-C: exit 130, a one-line hint to resume, and
    the attempt's wall time kept in the manifest (a killed run is otherwise missing from REPORT.md)."""
    import os
    import signal
    import subprocess
    import time

    out = tmp_path / "out"
    slow_e1 = {**TINY, "sweep.train_episodes": 100_000}  # E1 outlasts the test: SIGTERM lands inside it
    proc = subprocess.Popen(
        console_command("reproduce", "-o", str(out), "-j", "1", *_set_args(slow_e1)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 120
        while not (out / MANIFEST).is_file():  # written when the run opens, before E1 starts
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "interrupted during E1" in error_lines[0], stderr
    assert "re-run the same command to resume" in error_lines[0]
    assert "Traceback" not in stderr
    e1 = json.loads((out / MANIFEST).read_text())["stages"]["e1"]
    assert e1["status"] == "incomplete" and e1["attempts"] == 1 and e1["wall_s"] > 0


def test_the_merged_e1_file_plots_and_still_refuses_a_foreign_row(tmp_path: Path) -> None:
    """`e1/results.csv` merges one sweep per training budget (so rows of several config hashes); its
    sidecar names each sweep's config, so the report draws it, and a row none of them produced is refused."""
    from mamrl.plotting.sweep import write_sweep_report

    out = tmp_path / "out"
    overrides = {**TINY, "sweep.loads": [0.1], "sweep.algorithms": ["spa", "mamrl"]}
    config = build_reproduce_config(preset="quick", overrides=overrides, workers=1, output=out)
    run_reproduce(config, stop_after_stage="e1")
    merged = out / "e1" / "results.csv"
    lines = merged.read_text().splitlines(keepends=True)
    hash_column = lines[0].split(",").index("config_hash")
    assert len({line.split(",")[hash_column] for line in lines[1:]}) == 2  # spa's sweep and mamrl's
    written = write_sweep_report(merged, tmp_path / "plots", formats=("png",))
    assert (tmp_path / "plots" / "results.md") in written
    foreign = lines[1].split(",")
    foreign[hash_column] = "0123456789abcdef"
    merged.write_text("".join(lines) + ",".join(foreign))
    with pytest.raises(MamrlError, match="none of the 2 merged sweep configs"):
        write_sweep_report(merged, tmp_path / "plots2", formats=("png",))


def test_e1_progress_reports_the_share_of_work_weighted_by_cell_cost(tmp_path: Path) -> None:
    """E1's progress carries each finished cell's share of the estimated work, so the time left
    follows cost rather than cell count: the shares rise to 1, and a deep cell's step is larger
    than any tabular or classical cell's."""
    from mamrl.report.reproduce import StageListener

    steps: list[tuple[str, float]] = []

    class Recording(StageListener):
        def advanced(self, name: str, completed: int, total: int, detail: str, share: float | None = None) -> None:
            if name == "e1":
                steps.append((detail, share))

    overrides = {**TINY, "sweep.algorithms": ["spa", "q-routing", "mamrl"], "sweep.loads": [0.1]}
    config = build_reproduce_config(preset="quick", overrides=overrides, workers=1, output=tmp_path / "out")
    run_reproduce(config, listener=Recording(), only_stage="e1")
    shares = [share for _, share in steps]
    assert len(steps) == sum(len(sweep_cells(g)) for g in config.sweep_groups())
    assert all(b > a for a, b in zip([0.0, *shares], shares)) and shares[-1] == pytest.approx(1.0)
    jumps = {detail.split(":")[0]: b - a for (detail, b), a in zip(steps, [0.0, *shares])}
    deep = [v for k, v in jumps.items() if " mamrl " in k]
    others = [v for k, v in jumps.items() if " mamrl " not in k]
    assert deep and others and min(deep) > max(others)


def test_each_attempt_records_its_machine_and_older_attempts_stay_unknown(tmp_path: Path, monkeypatch) -> None:
    """A long run resumed across sessions may land on another VM: each attempt of a stage records
    its CPU beside its wall time; attempts from before the field existed stay None."""
    from mamrl import runs
    from mamrl.experiments.reproduce_config import Manifest

    manifest = Manifest(build_reproduce_config(preset="quick", overrides=TINY, workers=1, output=tmp_path / "out"))
    manifest.open()
    manifest.doc["stages"]["e1"] = {"attempt_walls_s": [5.0, 6.0], "attempts": 2, "wall_s": 11.0, "status": "incomplete"}
    monkeypatch.setattr(runs, "cpu_model", lambda: "CPU A")
    manifest.start_attempt("e1")
    monkeypatch.setattr(runs, "cpu_model", lambda: "CPU B")
    manifest.start_attempt("e1")
    entry = json.loads((tmp_path / "out" / MANIFEST).read_text())["stages"]["e1"]
    assert entry["attempts"] == 4 and len(entry["attempt_cpus"]) == 4
    assert entry["attempt_cpus"][:2] == [None, None]
    assert entry["attempt_cpus"][2].startswith("CPU A, ") and entry["attempt_cpus"][3].startswith("CPU B, ")


def test_the_run_record_names_the_cpus_of_a_stages_attempts() -> None:
    from mamrl.report.markdown import attempt_machines

    stage = {"attempts": 4, "attempt_cpus": [None, "AMD EPYC, 2 logical cores", "Intel Xeon, 2 logical cores",
                                            "AMD EPYC, 2 logical cores"]}
    assert attempt_machines(stage) == ("AMD EPYC, 2 logical cores (2); Intel Xeon, 2 logical cores (1); "
                                       "not recorded (1)")
    assert attempt_machines({"attempts": 2}) == "not recorded (2)"
    assert attempt_machines({}) == "—"
