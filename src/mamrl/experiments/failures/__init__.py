"""The link-failure experiment (E2; paper Figs. 5–7 and Table 2): `mamrl failures`.

Online learning over a sequence of episodes on one topology at load λ. Episodes
0 .. fail_episode-1 run on the intact network; from episode `fail_episode` on, one test link is
down — in the failure episode from tick `fail_tick`, in every later episode from tick 0 — and it
stays down. Every controller learns online throughout (its state carries over the failure) and
is measured on every episode.

Every controller (`controllers`) is driven through the same schedule of episodes and judged on
the same per-episode reward (`common_reward`). Common random numbers: run (failure, controller,
seed) plays episodes 0 .. episodes-1 of traffic seed `seed`, whatever the controller and the
failure, so every controller sees the same packets in the same episode. Episodes to adapt
(Table 2) follow `RULE_TEXT`, one rule for every controller.

Modules
-------
* `config`           — `FailureExperimentConfig`, the presets, validation, `build_failure_config`;
* `controllers`      — the `Controller` protocol, the controllers, `common_reward`;
* `experiment`       — the schedule, the runs (`run_failure_run`), `curves.csv`, the
  meta-initialisation and `run_failure_experiment`;
* `adaptation_rule`  — the adaptation rule (`RULE_TEXT`, `episodes_to_adapt`, `analyse_run`);
* `adaptation_table` — Table 2: episodes to adapt over seeds (`table2`).

Outputs
-------
In the output directory: `config.json` (the resolved config, its hash, provenance; written once, a
re-run with a different config is refused), `curves.csv` (one row per topology, failure,
controller, seed, episode; appended run by run, resumable: a re-run skips the runs already
complete), `run.json` (seeds, version, wall times), and — from `mamrl.plotting.failures` —
`table2.md`, `table2.csv` and the figures. With deep controllers, `meta_init.pt` holds the
meta-initialisation the runs started from.
"""

from mamrl.experiments.failures.adaptation_rule import (
    LOSS_TARGET,
    MA_WINDOW,
    RECOVERY_TEXT,
    RULE_TEXT,
    STEPS_TEXT,
    TOLERANCE,
    Adaptation,
    analyse_run,
    episodes_to_adapt,
    episodes_to_low_loss,
    gradient_steps_before,
    plateau_window,
    recovery_after_failure,
)
from mamrl.experiments.failures.config import (
    FIELD_NAMES,
    PRESETS,
    FailureExperimentConfig,
    Run,
    build_failure_config,
    check_fields,
    maml_config,
    validate,
)
from mamrl.experiments.failures.controllers import (
    CLASSICAL_CONTROLLERS,
    CONTROLLER_NAMES,
    DEEP_CONTROLLERS,
    DEFAULT_CONTROLLERS,
    QUEUE_CONTROLLERS,
    STATIC_CONTROLLERS,
    AgentController,
    BackpressureController,
    Controller,
    QRoutingController,
    ReconvergingController,
    StaticRoutingController,
    common_reward,
)
from mamrl.experiments.failures.experiment import (
    COLUMNS,
    Block,
    CurvesFile,
    FailureOutcome,
    RunResult,
    RunTask,
    block_params,
    episode_blocks,
    load_meta_init,
    make_run_executor,
    prepare_meta_init,
    read_curves,
    run_failure_experiment,
    run_failure_run,
    run_schedule,
)
from mamrl.experiments.failures.adaptation_table import PAPER_TABLE2, TableRow, table2
from mamrl.runs import Row

__all__ = [
    "CLASSICAL_CONTROLLERS",
    "COLUMNS",
    "CONTROLLER_NAMES",
    "DEEP_CONTROLLERS",
    "DEFAULT_CONTROLLERS",
    "FIELD_NAMES",
    "QUEUE_CONTROLLERS",
    "STATIC_CONTROLLERS",
    "LOSS_TARGET",
    "MA_WINDOW",
    "PAPER_TABLE2",
    "PRESETS",
    "RECOVERY_TEXT",
    "RULE_TEXT",
    "STEPS_TEXT",
    "gradient_steps_before",
    "TOLERANCE",
    "Adaptation",
    "AgentController",
    "Block",
    "Controller",
    "CurvesFile",
    "FailureExperimentConfig",
    "FailureOutcome",
    "BackpressureController",
    "QRoutingController",
    "ReconvergingController",
    "Row",
    "Run",
    "RunResult",
    "RunTask",
    "StaticRoutingController",
    "TableRow",
    "analyse_run",
    "block_params",
    "build_failure_config",
    "check_fields",
    "common_reward",
    "episode_blocks",
    "episodes_to_adapt",
    "episodes_to_low_loss",
    "load_meta_init",
    "make_run_executor",
    "maml_config",
    "plateau_window",
    "recovery_after_failure",
    "prepare_meta_init",
    "read_curves",
    "run_failure_experiment",
    "run_failure_run",
    "run_schedule",
    "table2",
    "validate",
]
