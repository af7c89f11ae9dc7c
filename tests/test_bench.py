"""`mamrl bench`: runs and reports positive figures. Performance itself is never asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mamrl.algorithms import make_agent
from mamrl.benchmarks.simulator import BenchSettings, run_bench
from mamrl.cli import app


def test_bench_figures_are_positive_for_both_simulators() -> None:
    settings = BenchSettings(topologies=("b4",), loads=(0.3,), horizon_ticks=50, batch_size=2, oracle_episodes=1, repeats=1)
    (row,) = run_bench(settings)
    assert row.topology == "b4" and row.routers == 12 and row.load == 0.3
    for value in (
        row.fast_router_ticks_per_s,
        row.fast_packets_per_s,
        row.kernel_router_ticks_per_s,
        row.kernel_packets_per_s,
        row.oracle_router_ticks_per_s,
        row.oracle_packets_per_s,
        row.speedup,
    ):
        assert value > 0
    assert row.packets_forwarded_per_episode > 0


@pytest.mark.slow
def test_bench_quick_command(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    output.write_text("<!-- bench-deep:start -->\nother benchmark\n<!-- bench-deep:end -->\n")
    result = CliRunner().invoke(app, ["bench", "--quick", "--repeats", "1", "--output", str(output)])
    assert result.exit_code == 0, result.output
    for name in ("b4", "geant", "att"):
        assert name in result.stdout
    text = output.read_text()
    assert "| topology |" in text and "oracle router-ticks/s" in text
    assert "mamrl bench --quick" in text
    assert "numba" in text and "cpu" in text
    assert "other benchmark" in text  # the other sections are kept
    rows = [line for line in text.splitlines() if line.startswith(("| b4 (", "| geant (", "| att ("))]
    assert len(rows) == 9
    (solver,) = [line for line in text.splitlines() if line.startswith("| b4 | 12 | 19 | 0.3143 |")]
    assert all(float(cell) > 0 for cell in solver.strip("|").split("|")[4:])
    assert "## Queue disciplines and backpressure (att, λ = 0.2)" in text
    assert len([line for line in text.splitlines() if line.startswith(("| fifo + ", "| per-dest + "))]) == 7
    assert "sp-backpressure" in result.stdout
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert all(cell and not cell.startswith(("0 ", "-")) for cell in cells[2:])


def test_bench_rejects_bad_repeats() -> None:
    result = CliRunner().invoke(app, ["bench", "--quick", "--repeats", "0"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


@pytest.mark.slow
def test_deep_bench_reports_positive_figures(tmp_path):
    from mamrl.benchmarks import deep as bench_deep

    rows = bench_deep.run_deep_bench(topologies=("b4",), episodes=(2,), repeats=1)
    row = rows[0]
    for value in (row.decisions_per_s, row.router_ticks_per_s, row.iteration_s, row.rollout_s, row.update_s,
                  row.batched_forward_ms, row.looped_forward_ms, row.looped_each_ms, row.update_float32_s,
                  row.update_bfloat16_s, *row.update_phases_s.values()):
        assert value > 0
    # The phases are parts of the float32 update.
    assert sum(row.update_phases_s.values()) <= row.update_float32_s
    out = tmp_path / "B.md"
    out.write_text("# existing\n")
    section = bench_deep.markdown_section(rows, "mamrl bench-deep", {"cpu": "test"})
    bench_deep.write_section(out, section)
    bench_deep.write_section(out, section)  # replaced, not appended twice
    text = out.read_text()
    assert text.startswith("# existing") and text.count(bench_deep.SECTION_START) == 1


def test_steal_share_is_the_stolen_part_of_the_cpu_time_between_two_readings(tmp_path, monkeypatch) -> None:
    from mamrl.benchmarks import common

    assert common.steal_share((10, 1000), (40, 1200)) == pytest.approx(30 / 200)
    assert common.steal_share(None, (40, 1200)) is None and common.steal_share((10, 1000), (10, 1000)) is None
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 2 30 500 4 0 1 7 0 0\ncpu0 50 1 15 250 2 0 0 3 0 0\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(stat if path == "/proc/stat" else path, *a, **k))
    assert common.cpu_ticks() == (7, 100 + 2 + 30 + 500 + 4 + 0 + 1 + 7)
    stat.write_text("intr 1 2 3\n")
    assert common.cpu_ticks() is None


def test_queue_bench_times_every_variant_and_its_oracle() -> None:
    from mamrl.benchmarks.simulator import QUEUE_BENCH_TOPOLOGY, run_queue_bench

    settings = BenchSettings(topologies=("b4",), loads=(0.3,), horizon_ticks=40, batch_size=2, oracle_episodes=1, repeats=1)
    rows = run_queue_bench(settings)
    assert QUEUE_BENCH_TOPOLOGY == "att"
    kernels = [r for r in rows if r.simulator == "kernel"]
    oracles = [r for r in rows if r.simulator == "oracle"]
    assert [r.variant for r in kernels] == ["fifo + spa tables", "per-dest + spa tables", "per-dest + backpressure η=0",
                                            f"per-dest + sp-backpressure η={make_agent('sp-backpressure').config()['bias_packets_per_hop']:g}"]
    assert {r.variant for r in oracles} == {kernels[0].variant, kernels[2].variant, kernels[3].variant}
    assert kernels[0].vs_fifo_kernel == 1.0
    for row in rows:
        assert row.router_ticks_per_s > 0 and row.packets_per_s > 0 and row.vs_fifo_kernel > 0
    assert all(r.kernel_over_oracle is not None and r.kernel_over_oracle > 0 for r in kernels)


@pytest.mark.slow
def test_envs_bench_reports_the_vector_env_beside_the_raw_step(tmp_path):
    from mamrl.benchmarks import envs as bench_envs

    vector_rows, single_rows = bench_envs.run_envs_bench(topologies=("b4",), num_envs=(4,))
    row = vector_rows[0]
    assert row.num_envs == 4 and row.env_decisions_per_s > 0 and row.raw_decisions_per_s > 0
    assert {r.env for r in single_rows} == {"PettingZoo ParallelEnv", "Gymnasium Env (joint action)"}
    out = tmp_path / "B.md"
    evaluated = bench_envs.bench_evaluate(None, episodes=2)
    # The evaluation includes its forward passes, and a fresh deep policy decides for every queued packet.
    assert 0 < evaluated.forward_s < evaluated.evaluate_s and evaluated.decisions > 0 and evaluated.ratio > 0
    section = bench_envs.markdown_section(vector_rows, single_rows, "mamrl bench-envs", {"cpu": "test"}, [evaluated])
    bench_envs.write_section(out, section)
    text = out.read_text()
    assert text.count(bench_envs.SECTION_START) == 1 and "evaluate / (SPA + forward)" in text
