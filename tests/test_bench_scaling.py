"""`mamrl bench-scaling --quick`: the section's structure (not the figures, which are reported, never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mamrl.benchmarks import scaling
from mamrl.cli import app
from mamrl.errors import MamrlError
from mamrl.experiments.config import SweepConfig
from mamrl.executors import SerialExecutor
from mamrl.executors.ray_cluster import MISSING_RAY

pytest.importorskip("topohub", reason="the quick variant uses a topohub topology (pip install 'mamrl[topohub]')")


@pytest.mark.slow
def test_bench_scaling_quick_writes_the_section(tmp_path: Path) -> None:
    output = tmp_path / "BENCH.md"
    old = f"{scaling.SECTION_START}\n## Scaling\nold numbers\n{scaling.SECTION_END}\n"
    output.write_text(f"# Benchmarks\n\nkept before\n\n{old}\nkept after\n")

    result = CliRunner().invoke(app, ["bench-scaling", "--quick", "--skip-ray", "--learn-iterations", "1", "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "identical results: yes" in result.stdout

    text = output.read_text()
    assert text.count(scaling.SECTION_START) == 1 and text.count(scaling.SECTION_END) == 1
    assert "kept before" in text and "kept after" in text and "old numbers" not in text
    section = text.split(scaling.SECTION_START, 1)[1].split(scaling.SECTION_END, 1)[0]
    assert "--quick sizes" in section

    settings = scaling.ScalingSettings.quick_settings()
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    for spec in settings.topologies:
        name = spec.removeprefix("topohub:")
        matching = [r for r in rows if r.startswith(f"| {name} |")]
        assert len(matching) == 1, (name, rows)
        assert len(matching[0].split("|")) == len(scaling.TOPOLOGY_COLUMNS) + 2
    assert "| topozoo/Abilene | 11 | 14 | gravity |" in section
    assert sum(r.startswith("| initial policies |") for r in rows) == 1
    assert sum(r.startswith("| after 1 TRPO iteration |") for r in rows) == 1
    assert sum(r.startswith("| change |") for r in rows) == 1
    assert sum(r.startswith("| local (1 worker) |") for r in rows) == 1
    assert sum(r.startswith("| local (2 workers) |") for r in rows) == 1
    ray_rows = [r for r in rows if r.startswith("| Ray ")]
    assert len(ray_rows) == 1 and "not run: skipped (--skip-ray)" in ray_rows[0]
    identical = [line for line in section.splitlines() if line.startswith("identical results:")]
    assert len(identical) == 1 and identical[0].startswith("identical results: yes (")

    assert "](docs/results/scaling/scaling.png)" in section
    for suffix in (".png", ".pdf"):
        figure = tmp_path / "docs" / "results" / "scaling" / f"scaling{suffix}"
        assert figure.is_file() and figure.stat().st_size > 1000


def test_missing_ray_is_a_row_not_a_failure(tmp_path: Path, monkeypatch) -> None:
    import mamrl.experiments.sweep as sweep

    def no_ray(backend, workers=None, address=None, **kwargs):
        if backend == "ray":
            raise MamrlError(MISSING_RAY)
        return SerialExecutor(run=sweep.run_cell)

    monkeypatch.setattr(sweep, "make_cell_executor", no_ray)
    spec = SweepConfig(algorithms=("spa",), loads=(0.1,), seeds=(0,), train_episodes=1, eval_episodes=1,
                       horizon_ticks=20)
    timings = scaling.time_sweeps(spec, ray_cpus=2, workdir=tmp_path)
    assert [t.ran for t in timings] == [True, True, False]
    assert "pip install 'mamrl[ray]'" in timings[2].note
    assert scaling.identical_line(timings).startswith("identical results: yes (")
    assert "pip install" in scaling.sweep_cells(timings)[2][3]

    changed = scaling.SweepTiming(**{**timings[1].__dict__, "rows": ("different\n",)})
    assert scaling.identical([timings[0], changed]) is False
    assert scaling.identical_line([timings[0], changed]).startswith("identical results: no")
