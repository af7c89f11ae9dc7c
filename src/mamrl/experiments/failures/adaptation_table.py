"""Table 2 of the link-failure experiment: episodes to adapt per (topology, failure, controller),
over seeds, beside the paper's figures."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mamrl.experiments.failures.adaptation_rule import Adaptation, analyse_run, failure_episode
from mamrl.experiments.failures.controllers import STEPPING_CONTROLLERS
from mamrl.experiments.failures.experiment import episode_blocks, run_key
from mamrl.runs import Row
from mamrl.sim.metrics import Estimate, estimate

PAPER_TABLE2: dict[str, dict[str, float]] = {
    "b4": {"q-routing": 23, "mamrl-init": 25, "random-init": 800},
    "geant": {"q-routing": 35, "mamrl-init": 35, "random-init": 100},
    "att": {"q-routing": 29, "mamrl-init": 30, "random-init": 1000},
}
"""The paper's Table 2: episodes to adapt to a link failure, Q-routing / MAMRL / random."""


@dataclass(frozen=True)
class TableRow:
    """Table 2 for one (topology, failure, controller), over seeds (mean ± 95% CI)."""

    topology: str
    failure: str
    held_out: bool
    controller: str
    seeds: tuple[int, ...]
    per_seed: tuple[Adaptation, ...]
    episodes_to_adapt: Estimate
    """Over the seeds that adapted within the budget."""
    adapted_seeds: int
    episodes_to_low_loss: Estimate
    low_loss_seeds: int
    steps_until_low_loss: Estimate
    """Adaptation steps until then, over the seeds that got there (NaN: Q-routing, or no schedule)."""
    budget: int
    plateau_reward: Estimate
    plateau_loss_fraction: Estimate
    plateau_sojourn_time: Estimate
    plateau_delivery_time: Estimate
    pre_failure_reward: Estimate
    recovery_ticks: Estimate
    """Over the seeds that recovered within the run (RECOVERY_TEXT)."""
    recovered_seeds: int
    transient_lost: Estimate
    """Over every seed (a seed that never recovered counts every packet it lost after the failure)."""
    lost_until_low_loss: Estimate
    """Over every seed, at the resolution of episodes (`Adaptation.lost_until_low_loss`)."""
    band_to_noise: Estimate
    paper: float | None
    """The paper's Table 2 figure for this topology and controller, if it has one."""


def table2(rows: Iterable[Row], *, episodes_per_step: int | None = None, fail_tick: int = 0) -> list[TableRow]:
    """Table 2 rows from curves rows, in first-seen order of failures and controllers. With the
    run's `episodes_per_step` and `fail_tick` (its blocks, `episode_blocks`), adaptation steps are
    counted too."""
    runs: dict[tuple, list[Row]] = {}
    for row in rows:
        runs.setdefault(run_key(row), []).append(row)
    groups: dict[tuple[str, str, str], list[tuple[int, Adaptation, bool]]] = {}
    for (topo, failure, controller, seed), members in runs.items():
        block_ends = None
        if episodes_per_step is not None:
            blocks = episode_blocks(len(members), failure_episode(members), fail_tick, episodes_per_step)
            block_ends = [b.first + b.count - 1 for b in blocks]
        stepping = None if controller == "q-routing" else controller in STEPPING_CONTROLLERS
        adaptation = analyse_run(members, stepping=stepping, block_ends=block_ends)
        groups.setdefault((topo, failure, controller), []).append((seed, adaptation, bool(members[0]["held_out"])))
    out = []
    for (topo, failure, controller), members in groups.items():
        members.sort(key=lambda m: m[0])
        per = [m[1] for m in members]

        def est(attr: str) -> Estimate:
            return estimate(np.array([getattr(a, attr) for a in per], dtype=np.float64))

        adapted = np.array([a.episodes_to_adapt for a in per if a.episodes_to_adapt is not None], dtype=np.float64)
        low = np.array([a.episodes_to_low_loss for a in per if a.episodes_to_low_loss is not None], dtype=np.float64)
        steps = np.array([a.steps_until_low_loss for a in per if a.episodes_to_low_loss is not None], dtype=np.float64)
        recovered = np.array([a.recovery_ticks for a in per if np.isfinite(a.recovery_ticks)], dtype=np.float64)
        out.append(TableRow(
            topo, failure, members[0][2], controller, tuple(m[0] for m in members), tuple(per),
            estimate(adapted), len(adapted), estimate(low), len(low), estimate(steps), min(a.budget for a in per),
            est("plateau_reward"), est("plateau_loss_fraction"), est("plateau_sojourn_time"),
            est("plateau_delivery_time"), est("pre_failure_reward"),
            estimate(recovered), len(recovered), est("transient_lost"), est("lost_until_low_loss"),
            est("band_to_noise"),
            PAPER_TABLE2.get(topo.lower(), {}).get(controller),
        ))
    return out
