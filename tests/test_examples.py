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


def test_sb3_maskable_ppo_runs_on_the_flat_joint_env():
    out = run_example("sb3_maskable_ppo.py", "--timesteps", "256", "--n-steps", "128", "--horizon", "60",
                      "--eval-episodes", "2", "--fail", "D-E")
    assert "MaskablePPO after 256 steps: delivered" in out and "shortest paths on the same episodes" in out
