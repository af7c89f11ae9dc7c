"""Hostile input for every command's options and config values (NaN, inf, negative, zero, huge,
mistyped, unknown, empty, unused): each must be refused with one line on stderr naming the
option or field, exit code 2, no traceback and no file or folder written. Bounds of topology files
and memory estimates of huge runs are tested with the topology loaders (test_topologies_strict.py)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_helpers import assert_one_line_error
from mamrl.cli import app


@dataclass(frozen=True)
class Case:
    """One hostile command line: `argv` run in an empty folder holding `files`."""

    name: str
    argv: tuple[str, ...]
    mentions: str
    """Text the error line must contain (the option or field it names)."""
    files: dict[str, str] = field(default_factory=dict)


def toml_text(base: dict[str, str], lines: str) -> str:
    """A TOML file of `base`'s keys and raw values, with the `key = value` lines of `lines`
    replacing or adding keys (TOML refuses a key given twice)."""
    values = dict(base)
    for line in lines.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            values[key] = value
        else:
            return "".join(f"{k} = {v}\n" for k, v in base.items()) + line + "\n"
    return "".join(f"{k} = {v}\n" for k, v in values.items())


def _cases() -> list[Case]:
    cases: list[Case] = []

    def add(name: str, argv: list[str], mentions: str, files: dict[str, str] | None = None) -> None:
        cases.append(Case(name, tuple(argv), mentions, files or {}))

    # ---------------------------------------------------------------- train: options
    train = ["train", "-n", "2", "--horizon", "20", "--eval-episodes", "0", "-o", "out"]
    for value in ("-1", str(2**32), str(10**30)):
        add(f"train-seed-{value[:6]}", [*train, "--seed", value], "--seed")
    for value in ("nan", "inf", "-1", "1e400", "abc", ""):
        add(f"train-load-{value or 'empty'}", [*train, "--load", value], "--load")
    for option, value in (("-n", "0"), ("-n", "-5"), ("--horizon", "0"), ("--horizon", "-1"), ("--chunk", "-1"),
                          ("--eval-episodes", "-1"), ("--workers", "0")):
        add(f"train-{option.strip('-')}-{value}", [*train, option, value], option if option != "-n" else "episodes")
    add("train-table-policy", [*train, "-a", "spa"], "spa")
    add("train-random-config", [*train, "-a", "random", "--set", "x=1"], "random")
    add("train-set-not-assignment", [*train, "--set", "learning_rate"], "--set")

    # ---------------------------------------------------------------- train: algorithm settings (--set)
    bad_settings = {
        "q-routing": [("learning_rate", '"fast"'), ("learning_rate", "NaN"), ("learning_rate", "1e400"),
                      ("learning_rate", "-0.1"), ("learning_rate", "2"), ("learning_rate", "true"), ("learning_rate", "[0.5]"),
                      ("exploration", "1"), ("exploration", "NaN"), ("loss_penalty_ticks", "NaN"), ("loss_penalty_ticks", "-Infinity"),
                      ("episodes_per_call", "0"), ("episodes_per_call", "2.5"), ("loss_honest", "1"), ("bogus", "1")],
        "pg": [("step_size", "NaN"), ("step_size", "-1"), ("step_size", "0"), ("step_size", "Infinity"), ("baseline_rate", "0"),
               ("baseline_rate", "NaN"), ("baseline_rate", "1.5"), ("loss_penalty", "-1"), ("loss_penalty", "NaN"),
               ("loss_penalty", "Infinity"), ("episodes_per_call", "-3"), ("step_size", '"0.1"')],
        "mamrl": [("hidden_sizes", "[]"), ("hidden_sizes", "[0]"), ("hidden_sizes", "[-1]"), ("hidden_sizes", "[1.5]"),
                  ("hidden_sizes", "64"), ("hidden_sizes", "[true]"), ("hidden_sizes", f"[{10**30}]"), ("discount", "NaN"),
                  ("discount", "1.5"), ("discount", "-0.1"), ("gae_lambda", "2"), ("gae_lambda", "NaN"), ("max_kl", "0"),
                  ("max_kl", "NaN"), ("max_kl", "-1"), ("cg_iterations", "0"), ("cg_damping", "-1"), ("cg_damping", "NaN"),
                  ("fvp_fraction", "0"), ("fvp_fraction", "2"), ("consensus_gain", "-1"), ("consensus_gain", "NaN"),
                  ("consensus_mode", '"x"'), ("reward", '"x"'), ("episodes_per_iteration", "0"), ("seed", "-1"),
                  ("loss_penalty", "NaN"), ("mask_down_links", "1"), ("seed", "1.5")],
        "maml": [("inner_step_size", "NaN"), ("inner_step_size", "-1"), ("nominal_probability", "NaN"),
                 ("nominal_probability", "1.5"), ("tasks_per_iteration", "0"), ("inner_kl_target", "NaN"),
                 ("inner_kl_penalty", "0"), ("inner_kl_penalty", "NaN"), ("chunk_rows", "0"), ("task_weighting", '"x"'),
                 ("max_kl", "NaN"), ("hidden_sizes", "[]"), ("fail_tick", "-1"), ("held_out", '"H-J"'), ("first_order", "0")],
    }
    for algorithm, settings in bad_settings.items():
        for key, value in settings:
            add(f"train-{algorithm}-{key}-{value}", [*train, "-a", algorithm, "--set", f"{key}={value}"], key)

    # ---------------------------------------------------------------- simulate, plot-topology
    simulate = ["simulate", "-n", "2", "--horizon", "20", "--json", "out.json"]
    for option, value in (("--seed", "-1"), ("--seed", str(2**32)), ("--load", "nan"), ("--load", "inf"), ("--load", "-0.1"),
                          ("--load", "1e400"), ("--load", "x"), ("-n", "0"), ("--horizon", "0"), ("--batch-size", "0"),
                          ("--buffer-limit", "0"), ("--policy", "bogus"), ("--queues", "bogus")):
        add(f"simulate-{option.strip('-')}-{value}", [*simulate, option, value], option if option != "-n" else "--episodes")
    add("simulate-reconverge-negative", [*simulate, "--reconvergence-delay", "-1"], "--reconvergence-delay")
    add("simulate-reconverge-random", [*simulate, "-p", "random", "--reconvergence-delay", "5"], "--reconvergence-delay")
    add("plot-topology-seed", ["plot-topology", "-o", "fig.png", "-n", "1", "--horizon", "20", "--seed", "-1"], "--seed")
    add("plot-topology-load", ["plot-topology", "-o", "fig.png", "-n", "1", "--horizon", "20", "--load", "nan"], "--load")

    # ---------------------------------------------------------------- sweep: flags, with and without --dry-run
    sweep = ["sweep", "-a", "spa", "--train-episodes", "2", "--eval-episodes", "2", "--horizon", "20", "-j", "1",
             "--results", "out.csv"]
    sweep_flags = (("--seeds", "-1"), ("--seeds", "1.5"), ("--seeds", str(2**32)), ("--seeds", "0,0"), ("--loads", "nan"),
                   ("--loads", "-1"), ("--loads", "0"), ("--loads", "inf"), ("--loads", "0.1,,0.2"), ("--loads", "nanx"),
                   ("--train-episodes", "0"), ("--eval-episodes", "0"), ("--horizon", "0"), ("--eval-horizon", "0"),
                   ("--workers", "0"), ("--algorithms", "bogus"), ("--algorithms", ""), ("--preset", "bogus"))
    for dry in ((), ("--dry-run",)):
        tag = "-dry" if dry else ""
        for option, value in sweep_flags:
            add(f"sweep{tag}-{option.strip('-')}-{value}", [*sweep, option, value, *dry], option.strip("-"))

    # ---------------------------------------------------------------- sweep: config files
    base = {"algorithms": '["spa"]', "train_episodes": "2", "eval_episodes": "2", "horizon_ticks": "20", "results": '"out.csv"'}
    sweep_files = {
        "unused-algorithm-config": ('algorithm_config = { pg = { step_size = 0.1 } }\n', "algorithm_config"),
        "q-string": ('algorithms = ["q-routing"]\nalgorithm_config = { q-routing = { learning_rate = "fast" } }\n',
                     "learning_rate"),
        "q-nan": ('algorithms = ["q-routing"]\nalgorithm_config = { q-routing = { learning_rate = nan } }\n', "learning_rate"),
        "pg-inf": ('algorithms = ["pg"]\nalgorithm_config = { pg = { step_size = inf } }\n', "step_size"),
        "pg-unknown": ('algorithms = ["pg"]\nalgorithm_config = { pg = { stepsize = 0.1 } }\n', "stepsize"),
        "unknown-field": ("bogus = 1\n", "bogus"),
        "episodes-float": ("train_episodes = 1.5\n", "train_episodes"),
        "episodes-bool": ("eval_episodes = true\n", "eval_episodes"),
        "loads-string": ('loads = "0.1"\n', "loads"),
        "loads-nan": ("loads = [nan]\n", "loads"),
        "loads-empty": ("loads = []\n", "loads"),
        "seeds-bool": ("seeds = [true]\n", "seeds"),
        "seeds-huge": ("seeds = [9223372036854775807]\n", "seeds"),
        "horizon-inf": ("horizon_ticks = inf\n", "horizon_ticks"),
        "workers-zero": ("workers = 0\n", "workers"),
        "results-empty": ('results = ""\n', "results"),
        "topologies-empty": ("topologies = []\n", "topologies"),
        "preset-bogus": ('preset = "bogus"\n', "preset"),
        "algorithm-config-list": ("algorithm_config = [1]\n", "algorithm_config"),
        "not-toml": ("= = =\n", "TOML"),
    }
    for name, (text, mentions) in sweep_files.items():
        for dry in ((), ("--dry-run",)):
            argv = ["sweep", "--config", "sweep.toml", "-j", "1", *dry]
            add(f"sweep-file{'-dry' if dry else ''}-{name}", argv, mentions, {"sweep.toml": toml_text(base, text)})
    add("sweep-json-nan", ["sweep", "--config", "sweep.json", "-j", "1"], "loads",
        {"sweep.json": json.dumps({"algorithms": ["spa"], "results": "out.csv"})[:-1] + ', "loads": [NaN]}'})
    add("sweep-json-infinity", ["sweep", "--config", "sweep.json", "-j", "1"], "eval_episodes",
        {"sweep.json": '{"algorithms": ["spa"], "results": "out.csv", "eval_episodes": Infinity}'})
    add("sweep-json-huge-number", ["sweep", "--config", "sweep.json", "-j", "1"], "train_episodes",
        {"sweep.json": '{"algorithms": ["spa"], "results": "out.csv", "train_episodes": 1e400}'})

    # ---------------------------------------------------------------- failures: flags and files
    failures = ["failures", "-a", "spa", "-n", "40", "--fail-episode", "5", "--horizon", "20", "-j", "1", "-o", "out"]
    for option, value in (("--seeds", "-1"), ("--seeds", str(2**32)), ("--load", "nan"), ("--load", "-1"), ("-n", "0"),
                          ("--fail-episode", "-1"), ("--fail-tick", "-1"), ("--episodes-per-step", "0"),
                          ("--meta-iterations", "0"), ("--workers", "0"), ("--controllers", "bogus"), ("--horizon", "0"),
                          ("--preset", "bogus"), ("--format", "gif")):
        add(f"failures-{option.strip('-')}-{value}", [*failures, option, value],
            {"-n": "--episodes", "--load": "load", "--preset": "preset"}.get(option, option))
    add("failures-meta-init-missing", [*failures, "-a", "mamrl-init", "--meta-init", "no-such-meta"], "meta-init")
    add("failures-meta-init-unused", [*failures, "--meta-init", "no-such-meta"], "meta-init")
    base = {"controllers": '["spa"]', "episodes": "40", "fail_episode": "5", "horizon_ticks": "20", "workers": "1",
            "output": '"out"'}
    failure_files = {
        "q-string": ('controllers = ["q-routing"]\nq_routing = { learning_rate = "fast" }\n', "learning_rate"),
        "q-nan": ('controllers = ["q-routing"]\nq_routing = { learning_rate = nan }\n', "learning_rate"),
        "q-unknown": ('controllers = ["q-routing"]\nq_routing = { bogus = 1 }\n', "bogus"),
        "q-unused": ("q_routing = { learning_rate = 0.5 }\n", "q_routing"),
        "adaptation-unused": ("adaptation = { step_size = 0.5 }\n", "adaptation"),
        "maml-unused": ("maml = { max_kl = 0.5 }\n", "maml"),
        "meta-iterations-unused": ("meta_iterations = 5\n", "meta_iterations"),
        "adaptation-nan": ('controllers = ["mamrl-init"]\nadaptation = { step_size = nan }\n', "step_size"),
        "adaptation-negative": ('controllers = ["mamrl-init"]\nadaptation = { step_size = -1.0 }\n', "step_size"),
        "adaptation-update": ('controllers = ["mamrl-init"]\nadaptation = { update = "x" }\n', "update"),
        "adaptation-string": ('controllers = ["mamrl-init"]\nadaptation = { detect_consecutive_losses = "5" }\n',
                              "detect_consecutive_losses"),
        "maml-nan": ('controllers = ["mamrl-init"]\nmaml = { inner_step_size = nan }\n', "inner_step_size"),
        "maml-hidden-empty": ('controllers = ["mamrl-init"]\nmaml = { hidden_sizes = [] }\n', "hidden_sizes"),
        "maml-hidden-zero": ('controllers = ["mamrl-init"]\nmaml = { hidden_sizes = [0] }\n', "hidden_sizes"),
        "maml-max-kl": ('controllers = ["mamrl-init"]\nmaml = { max_kl = -1.0 }\n', "max_kl"),
        "maml-string": ('controllers = ["mamrl-init"]\nmaml = { tasks_per_iteration = "3" }\n', "tasks_per_iteration"),
        "meta-init-missing": ('controllers = ["mamrl-init"]\nmeta_init = "no-such-meta/meta-init.pt"\n', "meta_init"),
        "loss-penalty-nan": ("loss_penalty_ticks = nan\n", "loss_penalty_ticks"),
        "load-inf": ("load = inf\n", "load"),
        "load-string": ('load = "fast"\n', "load"),
        "seeds-negative": ("seeds = [-1]\n", "seeds"),
        "episodes-float": ("episodes = 40.5\n", "episodes"),
        "unknown-field": ("bogus = 1\n", "bogus"),
        "controllers-empty": ("controllers = []\n", "controllers"),
        "reconvergence-negative": ('controllers = ["spa-reconverge"]\nreconvergence_delay_ticks = -1\n', "reconvergence_delay_ticks"),
        "q-routing-not-table": ('controllers = ["q-routing"]\nq_routing = 0.5\n', "q_routing"),
    }
    for name, (text, mentions) in failure_files.items():
        add(f"failures-file-{name}", ["failures", "--config", "e2.toml"], mentions, {"e2.toml": toml_text(base, text)})

    # ---------------------------------------------------------------- reproduce --set, with and without --dry-run
    reproduce_sets = (("sweep.train_episodes=0", "train_episodes"), ("sweep.loads=[NaN]", "loads"),
                      ("sweep.seeds=[-1]", "seeds"), ("sweep.bogus=1", "bogus"), ("bogus=1", "bogus"),
                      ("sweep.algorithm_config.pg.step_size=NaN", "step_size"),
                      ('sweep.algorithm_config.q-routing.learning_rate="fast"', "learning_rate"),
                      ("sweep.algorithm_config.ecmp.reconvergence_delay_ticks=5", "reconvergence_delay_ticks"),
                      ('failures.q_routing.learning_rate="fast"', "learning_rate"), ("failures.maml.max_kl=NaN", "max_kl"),
                      ("failures.maml.hidden_sizes=[]", "hidden_sizes"), ("failures.adaptation.step_size=-1", "step_size"),
                      ("failures.load=Infinity", "load"), ("failures.meta_init=\"x\"", "meta_init"),
                      ("saturation.low=-1", "low"), ("saturation.tolerance=NaN", "tolerance"), ("saturation.high=1e400", "high"),
                      ("algorithm_train_episodes.mamrl=0", "algorithm_train_episodes"),
                      ("algorithm_train_episodes.bogus=5", "bogus"), ("algorithm_train_episodes.random=5", "random"),
                      ("sweep.horizon_ticks=true", "horizon_ticks"), ("failures.episodes=1.5", "episodes"),
                      ("sweep", "--set"), ("=1", "--set"))
    for dry in ((), ("--dry-run",)):
        for setting, mentions in reproduce_sets:
            add(f"reproduce{'-dry' if dry else ''}-{setting}", ["reproduce", "-o", "out", "--set", setting, *dry], mentions)
    add("reproduce-settings-for-unswept", ["reproduce", "-o", "out", "--set", 'sweep.algorithms=["spa"]', "--set",
                                            "sweep.algorithm_config.pg.step_size=0.1", "--dry-run"], "sweep.algorithm_config.pg")
    add("reproduce-budget-for-unswept", ["reproduce", "-o", "out", "--set", 'sweep.algorithms=["spa", "pg"]', "--set",
                                         "algorithm_train_episodes.q-routing=10", "--dry-run"], "algorithm_train_episodes")
    add("reproduce-budget-for-static", ["reproduce", "-o", "out", "--set", "algorithm_train_episodes.spa=10", "--dry-run"],
        "does not learn")
    add("reproduce-failures-q-unused", ["reproduce", "-o", "out", "--set", 'failures.controllers=["spa"]', "--set",
                                        "failures.q_routing.learning_rate=0.5", "--dry-run"], "failures.q_routing")
    add("reproduce-workers", ["reproduce", "-o", "out", "--workers", "0", "--dry-run"], "--workers")
    add("reproduce-preset", ["reproduce", "-o", "out", "--preset", "bogus", "--dry-run"], "preset")

    # ---------------------------------------------------------------- saturation
    saturation = ["saturation", "--horizon", "20", "-n", "2", "--max-episodes", "4", "--json", "out.json"]
    for option, value in (("--low", "nan"), ("--low", "-1"), ("--high", "0"), ("--high", "inf"), ("--tolerance", "0"),
                          ("--tolerance", "nan"), ("--horizon", "0"), ("-n", "0"), ("--max-episodes", "0"), ("--seeds", "-1"),
                          ("--seeds", str(2**32)), ("--train-episodes", "0"), ("--train-horizon", "0"), ("-a", "bogus")):
        add(f"saturation-{option.strip('-')}-{value}", [*saturation, option, value], option if option != "-n" else "episodes")
    for text, mentions in (('{"step_size": NaN}', "step_size"), ('{"step_size": "fast"}', "step_size"),
                           ("not json", "--algorithm-config"), ("[1]", "--algorithm-config"), ('{"bogus": 1}', "bogus")):
        add(f"saturation-config-{text}", [*saturation, "-a", "pg", "--algorithm-config", text], mentions)
    add("saturation-config-unused", [*saturation, "-a", "spa", "--algorithm-config", '{"step_size": 0.1}'], "step_size")

    # ---------------------------------------------------------------- benchmarks
    add("bench-repeats-zero", ["bench", "--quick", "--repeats", "0", "-o", "out.md"], "--repeats")
    add("bench-repeats-negative", ["bench", "--quick", "--repeats", "-1", "-o", "out.md"], "--repeats")
    add("bench-meta-iterations", ["bench-meta", "--quick", "-n", "0", "-o", "out.md"], "--iterations")
    add("bench-meta-checkpoint", ["bench-meta", "--quick", "--from-checkpoint", "missing.pt", "-o", "out.md"], "missing.pt")
    add("bench-scaling-iterations", ["bench-scaling", "--quick", "--learn-iterations", "0", "-o", "out.md"], "--learn-iterations")
    add("bench-scaling-iterations-negative", ["bench-scaling", "--quick", "--learn-iterations", "-2", "-o", "out.md"],
        "--learn-iterations")
    return cases


CASES = _cases()
runner = CliRunner()


def run_case(case: Case, folder: Path):
    """Run `case` in `folder` (which it fills with its files); returns (result, files after)."""
    for name, text in case.files.items():
        (folder / name).write_text(text, encoding="utf-8")
    previous = Path.cwd()
    os.chdir(folder)
    try:
        result = runner.invoke(app, list(case.argv))
    finally:
        os.chdir(previous)
    return result, sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.name.endswith(".lock"))  # locks: runs.lock_output


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_one_line_and_writes_nothing(case: Case, tmp_path: Path) -> None:
    result, files = run_case(case, tmp_path)
    assert_one_line_error(result)
    assert result.exit_code == 2, result.output
    assert case.mentions.lower() in result.stderr.lower(), result.stderr
    assert files == sorted(case.files), f"files written: {sorted(set(files) - set(case.files))}"


def test_the_suite_is_broad() -> None:
    commands = {c.argv[0] for c in CASES}
    assert {"train", "simulate", "sweep", "failures", "reproduce", "saturation", "bench"} <= commands
    assert len(CASES) >= 200
    assert len({c.name for c in CASES}) == len(CASES)


# ------------------------------------------------------------------------------ beyond one option
def test_a_preset_setting_of_an_algorithm_taken_out_is_dropped_not_refused(tmp_path: Path) -> None:
    """`--set sweep.algorithms=[...]` without mamrl: the preset's mamrl settings and budget go with it
    (a user-given setting for an algorithm not swept is refused, above)."""
    result, _ = run_case(Case("narrowed", ("reproduce", "-o", "out", "--set", 'sweep.algorithms=["spa"]', "--set",
                                           'failures.controllers=["spa"]',
                                           "--dry-run"), ""), tmp_path)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout[:result.stdout.rindex("}") + 1])
    assert shown["sweep"]["algorithm_config"] == {} and shown["algorithm_train_episodes"] == {}
    # The progress lines too: no deep controller, so no meta-training and no pre-training to count.
    assert "iterations: none to run" in result.stdout and "e2: not started; b4 0 of" in result.stdout
    assert "pre-training" not in result.stdout


def test_diverged_training_is_refused_not_saved(tmp_path: Path) -> None:
    case = Case("diverged", ("train", "-a", "pg", "--set", "step_size=1e308", "-n", "32", "--horizon", "30",
                             "--eval-episodes", "0", "-o", "out"), "training diverged")
    result, files = run_case(case, tmp_path)
    assert_one_line_error(result)
    assert "non-finite theta after episode 32" in result.stderr
    assert files == ["out", "out/attempts.json", "out/config.json"]  # the run's record and attempt; no checkpoint, curves or figure


def _results_with_a_foreign_row(folder: Path) -> None:
    """A sweep results file (and sidecar) of `spa` on b4 holding one row of geant."""
    import math

    from mamrl.experiments.config import build_sweep_config
    from mamrl.experiments.sweep import COLUMNS, SCHEMA, ResultsFile

    config = build_sweep_config(overrides={"algorithms": ["spa"], "loads": [0.1], "seeds": [0], "horizon_ticks": 20,
                                           "eval_episodes": 2, "results": str(folder / "r.csv")})
    results = ResultsFile(config.results, config)
    results.open()
    row = {c: 0 if c in SCHEMA.int_columns else math.nan for c in COLUMNS}
    row.update(config_hash=config.config_hash(), topology="geant", algorithm="spa", load=0.1, seed=0, mamrl_version="x")
    results.append(row)


@pytest.mark.parametrize("argv", [
    ("plot", "r.csv", "-o", "figures"),
    ("sweep", "-a", "spa", "--loads", "0.1", "--seeds", "0", "--horizon", "20", "--eval-episodes", "2", "--results", "r.csv",
     "--dry-run"),
    ("sweep", "-a", "spa", "--loads", "0.1", "--seeds", "0", "--horizon", "20", "--eval-episodes", "2", "--results", "r.csv"),
], ids=["plot", "sweep-dry-run", "sweep"])
def test_rows_outside_the_sweep_config_are_refused(argv: tuple[str, ...], tmp_path: Path) -> None:
    _results_with_a_foreign_row(tmp_path)
    before = (tmp_path / "r.csv").read_text()
    result, files = run_case(Case("foreign", argv, ""), tmp_path)
    assert_one_line_error(result)
    assert "row 1 (geant spa" in result.stderr and "is not a cell of its config" in result.stderr
    assert files == ["r.csv", "r.csv.config.json"] and (tmp_path / "r.csv").read_text() == before


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml")),
                         ids=lambda p: p.name)
def test_committed_experiment_configs_are_valid_on_a_fresh_checkout(path: Path) -> None:
    """Every committed config validates as its command would (the failure experiments without
    --meta-init: they meta-train into their output folder)."""
    from mamrl.experiments.config import build_sweep_config
    from mamrl.experiments.failures import build_failure_config

    if path.name.startswith("failures"):
        config = build_failure_config(file=path)
        assert config.meta_init is None
    else:
        build_sweep_config(file=path)


def test_every_config_field_declares_its_rule() -> None:
    """A field without a rule would take any value: each typed config declares one per field
    (tables of other configs' settings are checked by those configs)."""
    from mamrl.agents.backpressure import BackpressureConfig
    from mamrl.agents.deep_consensus import DeepConsensusConfig
    from mamrl.agents.ecmp import EcmpPolicy
    from mamrl.agents.max_throughput import MaxThroughputPolicy
    from mamrl.agents.min_delay import MinDelayPolicy
    from mamrl.agents.policy_gradient import PolicyGradientConfig
    from mamrl.agents.q_routing import QRoutingConfig
    from mamrl.agents.shortest_path import ShortestPathPolicy
    from mamrl.meta.adaptation import AdaptationConfig
    from mamrl.meta.maml import MamlConfig
    from mamrl.meta.multitask import MultiTaskConfig
    from mamrl.training import TrainConfig
    from mamrl.validate import field_rules

    import dataclasses

    for cls in (BackpressureConfig, DeepConsensusConfig, EcmpPolicy, MaxThroughputPolicy, MinDelayPolicy, PolicyGradientConfig,
                QRoutingConfig, ShortestPathPolicy, AdaptationConfig, MamlConfig, MultiTaskConfig, TrainConfig):
        without = {f.name for f in dataclasses.fields(cls)} - set(field_rules(cls)) - {"algorithm_config"}
        assert not without, f"{cls.__name__}: {sorted(without)}"
        cls()  # the defaults pass their own rules


@pytest.mark.parametrize("value, rule, message", [
    (float("nan"), "Number(above=0, at_most=1)", "expected a finite number in (0, 1], got nan"),
    (True, "integer(1)", "expected an integer >= 1, got True"),
    (2.5, "integer(1)", "expected an integer >= 1, got 2.5"),
    (10**400, "Number(at_least=0)", "expected a finite number >= 0, got 1000"),
    ("0.1", "Number(above=0)", "expected a finite number > 0, got '0.1'"),
    (-1, "SEED", "expected an integer in [0, 4,294,967,295], got -1"),
    ([1, 1], "Items(integer(0), distinct=True)", "1 is listed twice"),
    ("x", "Choice(('a', 'b'))", "expected one of a, b, got 'x'"),
    (1, "Flag()", "expected true or false, got 1"),
])
def test_rules_name_the_value_and_what_is_allowed(value, rule, message) -> None:
    from mamrl import validate
    from mamrl.errors import MamrlError

    check = eval(rule, vars(validate))  # noqa: S307 - test-local expressions
    with pytest.raises(MamrlError) as caught:
        check(value, "file.toml: field")
    assert str(caught.value).startswith("file.toml: field") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_integral_floats_become_ints_and_ints_become_floats() -> None:
    from mamrl.validate import Number, integer

    assert integer(1)(16.0, "x") == 16 and isinstance(integer(1)(16.0, "x"), int)
    assert isinstance(Number(above=0)(3, "x"), float)
