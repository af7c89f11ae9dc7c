"""The scripts BENCHMARKS.md cites run and refuse bad input in one line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_deep_cost_by_load_splits_an_iteration(capsys) -> None:
    script = _load("deep_cost_by_load")
    assert script.main(["--loads", "0.01,0.5", "--repeats", "1", "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| 0.")]
    assert [line.split(" | ")[0] for line in table] == ["| 0.01", "| 0.5"]
    low, high = ([float(cell.replace(",", "").rstrip("%")) for cell in line.strip("| ").split(" | ")] for line in table)
    assert low[2] < high[2] and low[3] < high[3]  # fewer decisions and busy router-ticks at the lower load
    assert high[8] == 1.0 and 0.0 < low[8]
    assert "λ* = 0.2727" in out


def test_deep_cost_by_load_refuses_bad_input_in_one_line(capsys) -> None:
    script = _load("deep_cost_by_load")
    assert script.main(["--loads", "0.1,x"]) == 2
    assert script.main(["--loads", "0.1", "--repeats", "0"]) == 2
    assert script.main(["--policy", "pretrained:att-meta", "--repeats", "1"]) == 2
    assert script.main(["--policy", "pretrained:nope"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err), err
    assert "comma-separated numbers" in err[0] and ">= 1" in err[1] and "not a deep learner's" in err[2] and "nope" in err[3]
