"""The runnable examples in examples/: each runs a few hundred environment steps (a smoke test)
and prints what it learned against shortest paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_ippo_cleanrl_style_runs_on_the_vector_env():
    out = run_example("ippo_cleanrl_style.py", "--iterations", "2", "--num-envs", "2", "--horizon", "50",
                      "--eval-episodes", "2")
    assert "iteration 2/2: delivered" in out
    assert "IPPO" in out and "SPA" in out
