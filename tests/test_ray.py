"""The Ray backend (issue 6, item 2): `--backend ray` gives the local backend's results, resumes the
same results files, and reports a missing Ray or an unreachable cluster in one line.

Tests that run cells use the session's one local Ray instance (`ray_session` in conftest.py) and
are skipped when Ray is not installed; the error tests need no Ray instance.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mamrl.algorithms import make_agent
from mamrl.cli import app
from mamrl.errors import MamrlError
from mamrl.experiments.config import SweepConfig, build_sweep_config
from mamrl.experiments.failures import build_failure_config, make_run_executor, run_failure_experiment
from mamrl.executors import CellFailed, ProcessPoolCellExecutor
from mamrl.executors.ray_cluster import MISSING_RAY, RayCellExecutor, is_loopback, parse_address
from mamrl.experiments.sweep import (
    TIMING_COLUMNS,
    Cell,
    CellTask,
    make_cell_executor,
    run_cell,
    run_sweep,
)
from mamrl.meta.maml import MamlConfig, MetaLearner, maml_task_executor
from mamrl.sim import SimParams
from mamrl.topologies import load_topology
from cli_helpers import assert_one_line_error
from sweep_helpers import without_timings

runner = CliRunner()

# Tiny budgets: the backend, not the learning, is under test.
TINY = {
    "topologies": ["b4"],
    "algorithms": ["spa", "q-routing"],
    "loads": [0.1, 0.3],
    "seeds": [0, 1],
    "train_episodes": 4,
    "eval_episodes": 3,
    "horizon_ticks": 60,
    "workers": 1,
}

UNREACHABLE = "127.0.0.1:1"  # a loopback port nothing listens on: refused at once


def tiny_config(results: Path, **changes) -> SweepConfig:
    return build_sweep_config(overrides={**TINY, **changes, "results": str(results)})


# ------------------------------------------------------------------------------ same results
@pytest.mark.slow
def test_ray_sweep_matches_local_and_resumes(ray_session, tmp_path: Path) -> None:
    local = tmp_path / "local.csv"
    reference = run_sweep(tiny_config(local))  # one worker: in process
    assert reference.complete and reference.ran == 8

    path = tmp_path / "ray.csv"
    seen: list[tuple[int, int]] = []
    with make_cell_executor("ray", 2) as executor:
        assert isinstance(executor, RayCellExecutor) and "Ray" in executor.label
        # Interrupted after 3 cells, then resumed on Ray: the same file as one local run.
        first = run_sweep(tiny_config(path, workers=2), executor=executor, stop_after=3)
        assert first.ran == 3 and not first.complete
        second = run_sweep(tiny_config(path, workers=2), executor=executor,
                           on_row=lambda row, done, total: seen.append((done, total)))
    assert second.skipped == 3 and second.ran == 5 and second.complete
    assert seen == [(k, 8) for k in range(4, 9)]  # progress as each cell arrives
    rows = without_timings(path)
    assert len(rows) == 8 and rows == without_timings(local)  # every column of every row, same order
    assert [r[c] for r in second.rows for c in TIMING_COLUMNS]  # the wall times are there, just not compared


@pytest.mark.slow
def test_ray_failure_experiment_matches_local(ray_session, tmp_path: Path) -> None:
    values = {
        "failures": ["D-E"], "controllers": ["spa", "q-routing"], "episodes": 16, "fail_episode": 4,
        "horizon_ticks": 60, "load": 0.1, "seeds": [0], "workers": 1, "reconvergence_delay_ticks": 15,
    }
    local = build_failure_config(preset="quick", overrides={**values, "output": str(tmp_path / "local")})
    assert run_failure_experiment(local).ran == 2
    remote = build_failure_config(preset="quick", overrides={**values, "output": str(tmp_path / "ray")})
    with make_run_executor(2, backend="ray") as executor:
        outcome = run_failure_experiment(remote, executor=executor)
    assert outcome.complete and outcome.ran == 2
    assert (tmp_path / "ray" / "curves.csv").read_text() == (tmp_path / "local" / "curves.csv").read_text()


def _meta_iterations(executor) -> tuple[dict, list]:
    """Two tiny meta-iterations with the tasks run by `executor`: the meta-initialisation and
    the logs without their wall times."""
    params = SimParams(load_topology("b4"), 0.3, 40)
    learner = MetaLearner(MamlConfig(hidden_sizes=(8,), episodes_per_task=2, tasks_per_iteration=3, nominal_probability=0.0))
    learner.task_executor = executor
    for _ in range(2):
        learner.meta_iteration(params, seed=5)
    logs = [{k: v for k, v in vars(entry).items() if k != "seconds"} for entry in learner.log]
    return learner.initial_params(), logs


@pytest.mark.slow
def test_maml_tasks_on_ray_and_on_a_local_pool_give_the_in_process_result(ray_session) -> None:
    theta, logs = _meta_iterations(None)
    assert maml_task_executor("local", 1) is None  # one worker: in process
    for backend in ("local", "ray"):
        executor = maml_task_executor(backend, 2)
        assert isinstance(executor, RayCellExecutor if backend == "ray" else ProcessPoolCellExecutor)
        with executor:
            spread_theta, spread_logs = _meta_iterations(executor)
        assert spread_logs == logs, backend
        for key in theta:
            torch.testing.assert_close(spread_theta[key], theta[key], rtol=0, atol=0, msg=f"{backend}: {key}")
    assert logs[0]["tasks"] != logs[1]["tasks"] or logs[0]["reward"] != logs[1]["reward"]  # two real iterations


@pytest.mark.slow
def test_cli_train_maml_on_ray(ray_session, tmp_path: Path) -> None:
    common = ["train", "-a", "maml", "-t", "b4", "-l", "0.3", "--horizon", "40", "--eval-episodes", "0",
              "--set", "hidden_sizes=[8]", "--set", "episodes_per_task=2", "--set", "tasks_per_iteration=2"]
    local = runner.invoke(app, [*common, "-n", "16", "-o", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    remote = runner.invoke(app, [*common, "-n", "16", "-o", str(tmp_path / "ray"), "--backend", "ray", "-j", "2"])
    assert remote.exit_code == 0, remote.output
    assert ray_session.is_initialized()  # the test's session is left open

    def curves(name: str) -> list[dict[str, str]]:
        rows = list(csv.DictReader(io.StringIO((tmp_path / name / "curves.csv").read_text())))
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert len(curves("ray")) == 2 and curves("ray") == curves("local")
    other = runner.invoke(app, ["train", "-a", "q-routing", "-n", "2", "-o", str(tmp_path / "q"), "--backend", "ray"])
    assert_one_line_error(other)
    assert "maml's meta-training tasks; q-routing trains in one process" in other.stderr
    assert not (tmp_path / "q").exists()


@pytest.mark.slow
def test_a_failing_cell_is_the_local_pools_one_line_error(ray_session) -> None:
    task = CellTask(Cell("b4", "nope", 0.1, 0), {}, 1, 1, 60, "0" * 12)
    executor = RayCellExecutor(1, run=run_cell, describe=lambda task: f"cell {task.cell}")
    with pytest.raises(CellFailed) as info:
        with executor:
            list(executor.map_cells([task]))
    # Word for word the local pool's message (ProcessPoolCellExecutor): the cell, then what it raised.
    with pytest.raises(MamrlError) as raised:
        make_agent("nope", {})
    assert str(info.value) == f"cell b4 nope λ=0.1 seed 0 failed: {raised.value}"
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_cli_sweep_on_ray(ray_session, tmp_path: Path) -> None:
    path = tmp_path / "cli.csv"
    args = ["sweep", "-t", "b4", "-a", "spa", "-l", "0.1,0.3", "-s", "0", "--train-episodes", "2", "--eval-episodes", "2",
            "--horizon", "40", "-o", str(path), "-j", "2", "--backend", "ray"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "on the current Ray session" in result.stderr and "2 cells (2 run, 0 already done)" in result.stdout
    assert len(without_timings(path)) == 2
    assert ray_session.is_initialized()  # a session the command did not start is left open
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "(0 run, 2 already done)" in again.stdout


# ------------------------------------------------------------------------------ errors
def test_missing_ray_is_a_one_line_hint(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(MamrlError) as info:
        make_cell_executor("ray", 1)
    assert str(info.value) == MISSING_RAY == "--backend ray needs Ray: pip install 'mamrl[ray]'"
    for args in (["sweep", "-o", str(tmp_path / "r.csv")], ["failures", "-o", str(tmp_path / "f")],
                 ["train", "-a", "maml", "-o", str(tmp_path / "t")]):
        result = runner.invoke(app, [*args, "--backend", "ray"])
        assert_one_line_error(result)
        assert MISSING_RAY in result.stderr
    assert not any((tmp_path / name).exists() for name in ("r.csv", "f", "t"))  # reported before any work


def test_unreachable_address_is_a_quick_one_line_error(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'mamrl[ray]')")
    start = time.perf_counter()
    with pytest.raises(MamrlError) as info:
        make_cell_executor("ray", None, UNREACHABLE)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert message.startswith(f"cannot reach a Ray cluster at {UNREACHABLE}") and "ray start --head" in message
    assert "\n" not in message
    for args in (["sweep", "-o", str(tmp_path / "r.csv")], ["failures", "-o", str(tmp_path / "f")],
                 ["train", "-a", "maml", "-o", str(tmp_path / "t")]):
        result = runner.invoke(app, [*args, "--backend", "ray", "--address", UNREACHABLE])
        assert_one_line_error(result)
        assert f"cannot reach a Ray cluster at {UNREACHABLE}" in result.stderr
    assert not any((tmp_path / name).exists() for name in ("r.csv", "f", "t"))


@pytest.mark.parametrize(
    "args, match",
    [
        (["--backend", "dask"], "unknown backend 'dask'"),
        (["--address", "10.0.0.1:6379"], "use it with --backend ray"),
        (["--backend", "ray", "--address", "10.0.0.1:x"], "not a number"),
        (["--backend", "ray", "--address", "10.0.0.1:70000"], "out of range"),
    ],
)
def test_bad_backend_options_are_one_line_errors(args: list[str], match: str, tmp_path: Path) -> None:
    for command in (["sweep", "-o", str(tmp_path / "r.csv")], ["failures", "-o", str(tmp_path / "f")],
                    ["train", "-a", "maml", "-o", str(tmp_path / "t")]):
        result = runner.invoke(app, [*command, *args])
        assert_one_line_error(result)
        assert match in result.stderr


def test_addresses() -> None:
    assert parse_address("10.0.0.1:6380") == ("10.0.0.1", 6380)
    assert parse_address("head") == ("head", 6379)
    assert parse_address("ray://head") == ("head", 10001)
    assert parse_address("[::1]:6379") == ("::1", 6379)
    assert is_loopback("localhost:6379") and is_loopback("127.0.0.1") and is_loopback("[::1]:1")
    assert not is_loopback("10.0.0.1:6379") and not is_loopback("head")
    with pytest.raises(MamrlError, match="expected HOST:PORT"):
        parse_address(":6379")
