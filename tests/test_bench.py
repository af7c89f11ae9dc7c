"""`mamrl bench`: runs and reports positive figures. Performance itself is never asserted here."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mamrl.bench import BenchSettings, run_bench
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


def test_bench_quick_command(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    result = CliRunner().invoke(app, ["bench", "--quick", "--repeats", "1", "--output", str(output)])
    assert result.exit_code == 0, result.output
    for name in ("b4", "geant", "att"):
        assert name in result.stdout
    text = output.read_text()
    assert "| topology |" in text and "oracle router-ticks/s" in text
    assert "mamrl bench --quick" in text
    assert "numba" in text and "cpu" in text
    rows = [line for line in text.splitlines() if line.startswith(("| b4", "| geant", "| att"))]
    assert len(rows) == 9
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert all(cell and not cell.startswith(("0 ", "-")) for cell in cells[2:])


def test_bench_rejects_bad_repeats() -> None:
    result = CliRunner().invoke(app, ["bench", "--quick", "--repeats", "0"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
