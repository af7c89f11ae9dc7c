"""The `mamrl` command line: output, files written, reproducibility and one-line errors."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mamrl.cli import app
from cli_helpers import assert_one_line_error, console_command

runner = CliRunner()

# Small runs: the CLI's behaviour, not the model, is under test here.
FAST = ["--horizon", "60", "--episodes", "3"]


def invoke(*args: str):
    return runner.invoke(app, list(args))



# ------------------------------------------------------------------------------ simulate
@pytest.mark.parametrize("command", [["simulate", *FAST], ["capacity"]])
def test_json_dash_writes_the_json_to_stdout_and_the_tables_to_stderr(tmp_path: Path, command: list[str]) -> None:
    result = subprocess.run(console_command(*command, "--json", "-"), cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # stdout is the JSON document and nothing else
    assert doc["mamrl_version"]
    assert "λ" in result.stderr and "wrote" not in result.stderr
    assert not (tmp_path / "-").exists()


def test_simulate_prints_table_and_writes_json_and_csv(tmp_path: Path) -> None:
    json_path, csv_path = tmp_path / "run.json", tmp_path / "sub" / "run.csv"
    result = invoke("simulate", "--topology", "b4", "--load", "0.3", "--seed", "0", *FAST,
                    "--json", str(json_path), "--csv", str(csv_path))
    assert result.exit_code == 0, result.output
    out = result.stdout
    for label in ("delivery time (paper)", "delivered fraction", "sojourn time (every packet)", "loss fraction",
                  "delivery time p95", "delivery time p99", "stretch", "sojourn time, lost packets left out",
                  "queue length per router", "mean link utilisation", "max link utilisation", "±"):
        assert label in out
    # The paper's metric is shown with its two correctives right after it, and a warning line.
    paper, fraction, sojourn = (out.index(x) for x in ("delivery time (paper)", "delivered fraction", "sojourn time"))
    assert paper < fraction < sojourn
    assert "misleading" in out or "delivered packets only" in out

    doc = json.loads(json_path.read_text())
    assert doc["seed"] == 0
    assert doc["mamrl_version"]
    assert doc["config"]["simulation"]["topology"] == "b4"
    assert doc["config"]["simulation"]["load_per_router"] == 0.3
    assert doc["config"]["simulation"]["horizon_ticks"] == 60
    assert doc["config"]["policy"]["name"] == "spa"
    assert len(doc["per_episode"]["delivered_fraction"]) == 3
    assert len(doc["per_episode"]["link_utilisation"]) == 3
    assert len(doc["per_episode"]["link_utilisation"][0]) == 19
    assert set(doc["summary"]["mean_sojourn_time"]) == {"mean", "ci95", "n"}

    rows = list(csv.DictReader(csv_path.read_text().splitlines()))
    assert len(rows) == 3
    assert [int(r["episode"]) for r in rows] == [0, 1, 2]
    assert float(rows[0]["generated"]) > 0
    for row, fraction in zip(rows, doc["per_episode"]["delivered_fraction"]):
        assert float(row["delivered_fraction"]) == pytest.approx(fraction)


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    docs = []
    for k in range(2):
        path = tmp_path / f"r{k}.json"
        result = invoke("simulate", "--topology", "b4", "--load", "0.4", "--seed", "7", *FAST,
                        "--batch-size", str(k + 1), "--json", str(path))
        assert result.exit_code == 0, result.output
        docs.append(json.loads(path.read_text()))
    assert docs[0]["per_episode"] == docs[1]["per_episode"]
    assert docs[0]["summary"] == docs[1]["summary"]
    other = tmp_path / "other.json"
    assert invoke("simulate", "--topology", "b4", "--load", "0.4", "--seed", "8", *FAST, "--json", str(other)).exit_code == 0
    assert json.loads(other.read_text())["per_episode"] != docs[0]["per_episode"]


def test_failure_and_run_directory_never_overwritten(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "b4"
    args = ("simulate", "--topology", "b4", "--load", "0.3", *FAST, "--fail", "D-E@10", "--out", str(run))
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "D-E" in first.stdout
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 0
    assert config["mamrl_version"]
    assert "git" in config and config["wall_time_s"] >= 0
    assert config["simulation"]["failures"][0]["tick"] == 10
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["per_episode"]["lost"]) == 3
    assert len((run / "episodes.csv").read_text().splitlines()) == 4
    before = (run / "metrics.json").read_text()

    second = invoke(*args[:-1], str(run))
    assert second.exit_code == 0, second.output
    assert (run / "metrics.json").read_text() == before
    assert (tmp_path / "runs" / "b4-2" / "metrics.json").is_file()


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD_TOPOLOGY_FILES = {
    "malformed.json": '{"format": "mamrl-topology/1", "routers": ["a", "b"], "links": [{"a": "a"}]',
    "not-json.json": "routers: a b c\n",
    "disconnected.json": json.dumps({
        "format": "mamrl-topology/1",
        "routers": ["a", "b", "c", "d"],
        "defaults": {"capacity": 10, "latency_ticks": 1},
        "links": [{"a": "a", "b": "b"}, {"a": "c", "b": "d"}],
    }),
}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--topology", "nonexistent"], id="unknown-topology"),
        pytest.param(["--topology", "{tmp}/missing.json"], id="missing-file"),
        pytest.param(["--topology", "{tmp}/malformed.json"], id="malformed-topology"),
        pytest.param(["--topology", "{tmp}/not-json.json"], id="not-json-topology"),
        pytest.param(["--topology", "{tmp}/disconnected.json"], id="disconnected-topology"),
        pytest.param(["--load", "-0.3"], id="negative-load"),
        pytest.param(["--load", "abc"], id="non-numeric-load"),
        pytest.param(["--load", "nan"], id="nan-load"),
        pytest.param(["--episodes", "0"], id="zero-episodes"),
        pytest.param(["--episodes", "-2"], id="negative-episodes"),
        pytest.param(["--fail", "A-Z"], id="unknown-fail-link"),
        pytest.param(["--fail", "D-E@soon"], id="bad-fail-tick"),
        pytest.param(["--policy", "ospf"], id="unknown-policy"),
        pytest.param(["--demand", "{tmp}/missing-demand.txt"], id="missing-demand"),
        pytest.param(["--demand", "{tmp}/not-json.json"], id="malformed-demand"),
        pytest.param(["--horizon", "0"], id="zero-horizon"),
        pytest.param(["--buffer-limit", "0"], id="zero-buffer"),
        pytest.param(["--policy", "random", "--reconvergence-delay", "5"], id="delay-without-spa"),
        pytest.param(["--json", "{tmp}"], id="json-is-a-directory"),
        pytest.param(["--csv", "{tmp}/not-json.json/x.csv"], id="csv-under-a-file"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path: Path, args: list[str]) -> None:
    for name, text in BAD_TOPOLOGY_FILES.items():
        _write(tmp_path, name, text)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = invoke("simulate", "--horizon", "20", "--episodes", "1", *args)
    assert_one_line_error(result)


def test_error_message_names_the_problem(tmp_path: Path) -> None:
    result = invoke("simulate", "--fail", "A-Z", "--episodes", "1")
    assert "A-Z" in result.stderr
    result = invoke("simulate", "--load", "abc")
    assert "abc" in result.stderr and "--load" in result.stderr
    path = _write(tmp_path, "disconnected.json", BAD_TOPOLOGY_FILES["disconnected.json"])
    assert "disconnected" in invoke("simulate", "--topology", path).stderr


def test_console_script_errors_exit_2_without_traceback() -> None:
    proc = subprocess.run(
        console_command("simulate", "--topology", "nonexistent"),
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: unknown topology 'nonexistent'")


# ------------------------------------------------------------------------------ topologies
def test_topologies_lists_the_builtins() -> None:
    result = invoke("topologies")
    assert result.exit_code == 0, result.output
    for name, routers, links in (("b4", 12, 19), ("geant", 22, 32), ("att", 25, 56)):
        assert re.search(rf"\b{name}\b\W+{routers}\W+{links}\b", result.stdout), result.stdout


def test_topologies_lists_topohub_names_that_load() -> None:
    pytest.importorskip("topohub")
    result = invoke("topologies", "--topohub", "ATTM")
    assert result.exit_code == 0, result.output
    assert re.search(r"topohub:topozoo/AttMpls\W+25\W+56\b", result.stdout), result.stdout
    everything = invoke("topologies", "--topohub")
    assert everything.exit_code == 0 and everything.stdout.count("topohub:") > 500
    from mamrl.topologies import load_topology

    assert load_topology("topohub:topozoo/AttMpls").num_routers == 25  # the listed name loads as printed
    for args, needle in ((["--topohub", "zzzz"], "no topohub topology name contains 'zzzz'"),
                         (["b4"], "FILTER applies to --topohub")):
        bad = invoke("topologies", *args)
        assert_one_line_error(bad)
        assert needle in bad.stderr


# ------------------------------------------------------------------------------ plot-topology
def test_plot_topology_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "fig" / "b4.png"
    result = invoke("plot-topology", "--topology", "b4", "--load", "0.3", "--episodes", "2",
                    "--horizon", "60", "--fail", "D-E", "--output", str(out))
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_plot_topology_without_usable_coordinates(tmp_path: Path) -> None:
    # ATT's coordinates stack routers on one point, so it is drawn with a spring layout.
    out = tmp_path / "att.pdf"
    result = invoke("plot-topology", "--topology", "att", "--episodes", "1", "--horizon", "30", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")


def test_plot_topology_rejects_unknown_format(tmp_path: Path) -> None:
    assert_one_line_error(invoke("plot-topology", "--output", str(tmp_path / "b4.gif")))


@pytest.mark.parametrize(("command", "option", "config_class", "field"), [
    ("simulate", "--load", "mamrl.experiments.simulate.SimulationRequest", "load"),
    ("sweep", "--train-episodes", "mamrl.experiments.config.SweepConfig", "train_episodes"),
    ("train", "--chunk", "mamrl.training.TrainConfig", "chunk_episodes"),
    ("train", "--algorithm", "mamrl.training.TrainConfig", "algorithm"),
    ("failures", "--fail-tick", "mamrl.experiments.failures.config.FailureExperimentConfig", "fail_tick"),
    ("failures", "--controllers", "mamrl.experiments.failures.config.FailureExperimentConfig", "controllers"),
])
def test_option_help_is_the_config_field_docstring(command: str, option: str, config_class: str, field: str) -> None:
    """An option's help starts with its config field's docstring (read from the dataclass itself), so the two cannot drift."""
    import importlib
    import inspect
    import typer.main

    module_name, class_name = config_class.rsplit(".", 1)
    source = inspect.getsource(getattr(importlib.import_module(module_name), class_name))
    match = re.search(rf"^    {field}: [^\n]*\n    \"\"\"(.*?)\"\"\"", source, re.S | re.M)
    assert match, f"{config_class}.{field} has no docstring"
    docstring = " ".join(match.group(1).split())
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    (param,) = [p for p in click_command.params if option in p.opts]
    assert " ".join(param.help.split()).startswith(docstring)


# ------------------------------------------------------------------------------ evaluate (trained agents)
@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    for name, extra in (("q-routing", []), ("mamrl", ["--set", "hidden_sizes=[16]"])):
        result = invoke("train", "-a", name, "-n", "16", "--horizon", "60", "--load", "0.2", "--eval-episodes", "0",
                        "-o", str(root / name), *extra)
        assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("name", ["q-routing", "mamrl"])
def test_evaluate_a_trained_agent_with_its_training_settings_and_a_content_hash(trained_runs, tmp_path, name):
    import hashlib

    out = tmp_path / "eval.json"
    result = invoke("evaluate", str(trained_runs / name), "-n", "3", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert f"b4: λ = 0.2, {name}" in result.stdout
    doc = json.loads(out.read_text())
    policy = doc["config"]["policy"]
    simulation = doc["config"]["simulation"]  # the training load and horizon are the defaults
    assert policy["algorithm"] == name and simulation["horizon_ticks"] == 60 and simulation["load_per_router"] == 0.2
    assert policy["checkpoint_sha256"] == hashlib.sha256((trained_runs / name / "checkpoint.pt").read_bytes()).hexdigest()
    assert len(doc["per_episode"]["delivered_fraction"]) == 3
    # simulate --policy PATH evaluates the same agent on the same episodes.
    same = tmp_path / "sim.json"
    assert invoke("simulate", "--policy", str(trained_runs / name / "checkpoint.pt"), "--load", "0.2", "--horizon", "60",
                  "-n", "3", "--json", str(same)).exit_code == 0
    assert json.loads(same.read_text())["per_episode"]["delivered"] == doc["per_episode"]["delivered"]


def test_evaluate_adapts_a_deep_policy_online(trained_runs):
    result = invoke("evaluate", str(trained_runs / "mamrl"), "-n", "5", "--adapt")
    assert result.exit_code == 0, result.output
    assert "adapting" in result.stdout


@pytest.mark.parametrize("args, needle", [
    (["--topology", "geant"], "for 12 routers cannot route 'geant'"),
    (["--adapt"], "--adapt applies to mamrl, maml checkpoints, not q-routing"),
])
def test_evaluate_refuses_what_the_agent_cannot_do(trained_runs, args, needle):
    result = invoke("evaluate", str(trained_runs / "q-routing"), "-n", "2", *args)
    assert_one_line_error(result)
    assert needle in result.stderr


def test_evaluate_bad_checkpoints_are_one_line(tmp_path):
    corrupt = tmp_path / "bad.pt"
    corrupt.write_bytes(b"not a checkpoint")
    for spec, needle in ((str(corrupt), "corrupt"), ("pretrained:nope", "unknown pretrained policy 'nope'"),
                         (str(tmp_path), "without a checkpoint.pt"), (str(tmp_path / "missing.pt"), "does not exist")):
        result = invoke("evaluate", spec)
        assert_one_line_error(result)
        assert needle in result.stderr
    result = invoke("simulate", "--policy", "spa", "--adapt")
    assert_one_line_error(result)


def test_a_shipped_policy_loads_by_name_with_its_card_and_a_checked_hash(trained_runs, tmp_path, monkeypatch):
    import mamrl.experiments.checkpoint as checkpoint

    shelf = tmp_path / "pretrained"
    monkeypatch.setattr(checkpoint, "PRETRAINED_DIR", shelf)
    checkpoint.ship_pretrained(trained_runs / "mamrl", "tiny-deep", command="mamrl train -a mamrl -n 16",
                               evaluation={"delivered_fraction": 0.5}, destination=shelf)
    card = json.loads((shelf / "tiny-deep.json").read_text())
    assert card["algorithm"] == "mamrl" and card["training"]["load"] == 0.2 and card["command"].startswith("mamrl train")
    assert card["sha256"] == hashlib.sha256((shelf / "tiny-deep.pt").read_bytes()).hexdigest()
    out = tmp_path / "eval.json"
    result = invoke("evaluate", "pretrained:tiny-deep", "-n", "2", "--json", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["config"]["policy"]["checkpoint_sha256"] == card["sha256"]
    assert doc["config"]["policy"]["checkpoint_file"] == "mamrl/pretrained/tiny-deep.pt"  # not where it is installed
    assert doc["config"]["simulation"]["load_per_router"] == 0.2  # the training load, from the card
    # A damaged file, or a missing card, is refused in one line.
    (shelf / "tiny-deep.pt").write_bytes((shelf / "tiny-deep.pt").read_bytes() + b"x")
    result = invoke("evaluate", "pretrained:tiny-deep", "-n", "2")
    assert_one_line_error(result)
    assert "does not match the SHA-256 of its card" in result.stderr
    (shelf / "tiny-deep.json").unlink()
    result = invoke("evaluate", "pretrained:tiny-deep", "-n", "2")
    assert_one_line_error(result)
    assert "card tiny-deep.json is missing" in result.stderr


def test_messages_a_user_sees_cite_no_file_a_pip_install_lacks() -> None:
    """A pip user has no docs/, RESULTS.md or SPEC: what commands print and reports write explains itself."""
    from mamrl.experiments.capacity_report import LIMIT_NOTE
    from mamrl.experiments.simulate import PAPER_METRIC_NOTE
    from mamrl.report.markdown import COMPARISON_NOTE

    repo_files = re.compile(r"docs/\w+\.md|RESULTS\.md|BENCHMARKS\.md|SPEC")
    for text in (LIMIT_NOTE, PAPER_METRIC_NOTE, COMPARISON_NOTE):
        assert not repo_files.search(text), text
    for args in (["simulate", *FAST], ["capacity"]):
        result = invoke(*args)
        assert result.exit_code == 0 and not repo_files.search(result.output), result.output


@pytest.mark.parametrize("args, needle", [
    (["-a", "spa", "--train-episodes", "50"], "--train-episodes applies to learning algorithms (q-routing, pg, mamrl), not spa"),
    (["-a", "backpressure", "--train-episodes", "5", "--train-horizon", "40"], "--train-episodes and --train-horizon apply to"),
    (["--checkpoint", "agent.pt", "--train-horizon", "30"], "--train-horizon does not apply with --checkpoint"),
])
def test_saturation_refuses_training_options_that_would_be_ignored(args, needle):
    """Accept-and-ignore is a silent wrong result: training options for an agent that is not trained are refused."""
    result = invoke("saturation", *args)
    assert_one_line_error(result)
    assert needle in result.stderr


def test_every_shipped_policy_loads_and_achieves_what_its_card_says():
    """The shipped weights match their cards' hashes, and re-evaluating them on the card's episodes
    gives the card's figures (to a quarter of their confidence intervals: a forward pass may round
    differently on another CPU and flip a sampled decision)."""
    from mamrl.experiments.checkpoint import pretrained_names, read_card
    from mamrl.experiments.simulate import evaluation_request, prepare_simulation, run_simulation
    from mamrl.sim.metrics import summarise

    names = pretrained_names()
    assert "b4-deep" in names
    for name in names:
        card = read_card(name)
        ev = card["evaluation"]
        sim = prepare_simulation(evaluation_request(f"pretrained:{name}", seed=ev["seed"], episodes=ev["episodes"],
                                                    failures=tuple(ev["failures"]), adapt=ev["adapt"]))
        assert sim.params.describe()["load_per_router"] == ev["simulation"]["load_per_router"]
        summary = summarise(run_simulation(sim))
        for key, expected in ev["summary"].items():
            assert abs(summary[key].mean - expected["mean"]) <= 0.25 * expected["ci95"], (name, key)


def test_progress_eta_counts_only_this_attempts_work(monkeypatch, capsys) -> None:
    """A resumed run's already-done units are shown but do not speed up the estimate: after 234
    runs found done and none run, there is no eta; after one run in 10 s, 467 left means 4,670 s."""
    from mamrl import console

    clock = iter([0.0, 0.0, 5.0, 8.0, 10.0])  # __init__, begin, then one per line
    monkeypatch.setattr(console.time, "perf_counter", lambda: next(clock))
    report = console.ProgressReport("e2", "runs")
    report.begin(702, 0)
    report.skip(234, 702, "b4: 234 runs already done")
    report.update(234, 702, "geant: pre-training")
    report.update(235, 702, "geant: a run")
    lines = capsys.readouterr().err.splitlines()
    assert "eta" not in lines[0] and "eta" not in lines[1], lines
    assert lines[2].endswith("(elapsed 10 s, eta 4670 s)"), lines


def test_progress_eta_follows_the_share_of_work_when_steps_differ_in_cost(monkeypatch, capsys) -> None:
    """Steps given with their share of the work: the time left extrapolates the share, not the
    count. A resumed E1 with 88 of 600 cells (30% of the work) done: one more cell, 2% of the
    work, in 100 s leaves 68% of it, 3,400 s; counting cells would say 51,100 s."""
    from mamrl import console

    clock = iter([0.0, 0.0, 0.0, 100.0])  # __init__, begin, then one per line
    monkeypatch.setattr(console.time, "perf_counter", lambda: next(clock))
    report = console.ProgressReport("e1", "cells")
    report.begin(600, 0)
    report.skip(88, 600, "88 cells already done", share=0.30)
    report.update(89, 600, "att mamrl λ=0.1 seed 0", share=0.32)
    lines = capsys.readouterr().err.splitlines()
    assert "eta" not in lines[0], lines
    assert lines[1].endswith("(elapsed 100 s, eta 3400 s)"), lines
