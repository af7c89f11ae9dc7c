"""The deep comparators of the failure experiment: the multi-task learner (TRPO across η(M)),
and the controllers built from it, from an intact-network policy and from random weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mamrl.algorithms import make_agent
from mamrl.experiments.failures import build_failure_config, run_failure_experiment
from mamrl.meta.adaptation import AdaptationConfig, make_comparator, random_params
from mamrl.meta.multitask import MultiTaskLearner
from mamrl.sim.params import SimParams
from mamrl.topologies import load_topology

B4 = load_topology("b4")
SMALL = {"hidden_sizes": [8], "episodes_per_iteration": 2}


def test_multitask_draws_its_tasks_from_eta_reproducibly() -> None:
    learner = make_agent("multitask", {**SMALL, "held_out": ["D-E"], "nominal_probability": 0.0})
    assert isinstance(learner, MultiTaskLearner)
    params = SimParams(B4, 0.1, horizon_ticks=30)
    draws = [learner.task_of(params, seed=3, first_episode=e).name(B4) for e in range(0, 400, 2)]
    assert "D-E" not in draws and "M0" not in draws  # held out; no intact tasks at probability 0
    assert len(set(draws)) > 5  # several different failures
    again = make_agent("multitask", {**SMALL, "held_out": ["D-E"], "nominal_probability": 0.0})
    assert draws == [again.task_of(params, seed=3, first_episode=e).name(B4) for e in range(0, 400, 2)]
    learner.train(params, 3, 6)
    assert learner.tasks == draws[:3] and learner.episodes_trained == 6


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(("name", "adapts"), [("fine-tune", True), ("zero-shot", False), ("masked", False)])
def test_pretrained_comparators_adapt_or_stay_frozen(name: str, adapts: bool) -> None:
    from mamrl.agents.deep_consensus import DeepConsensusConfig

    policy = DeepConsensusConfig(hidden_sizes=(8,), reward="packet")
    initial = random_params(B4, (8,), seed=1)
    controller = make_comparator(name, initial, B4, policy, AdaptationConfig(step_size=0.05, episodes_per_step=2), seed=0)
    assert controller.learner.cfg.mask_down_links == (name == "masked")
    params = SimParams(B4, 0.2, horizon_ticks=40)
    controller.train(params, 0, 4)
    assert _changed(initial, controller.params) == adapts
    assert controller.reset_to is None


def test_random_init_trpo_adapts_by_trpo_and_resets() -> None:
    from mamrl.agents.deep_consensus import DeepConsensusConfig

    controller = make_comparator("random-init-trpo", None, B4, DeepConsensusConfig(hidden_sizes=(8,)), AdaptationConfig(), seed=0)
    assert controller.adaptation.update == "trpo" and controller.reset_to is not None
    with pytest.raises(Exception, match="pre-trained policy"):
        make_comparator("fine-tune", None, B4, DeepConsensusConfig(hidden_sizes=(8,)), AdaptationConfig(), seed=0)


def test_pretrain_budget_defaults_to_meta_trainings_episodes() -> None:
    config = build_failure_config(preset="quick", overrides={"controllers": ["spa", "fine-tune", "zero-shot"],
                                                             "meta_iterations": 4})
    assert config.pretrained == ("intact", "multitask")
    # 4 iterations × 3 tasks × 15 episodes × (1 inner step + 1): the meta-training's experience.
    assert config.resolved()["pretrain_episodes"] == 4 * 3 * 15 * 2


def test_failure_experiment_runs_every_deep_comparator(tmp_path: Path) -> None:
    config = build_failure_config(preset="quick", overrides={
        "failures": ["D-E"], "controllers": ["random-init-trpo", "fine-tune", "zero-shot", "masked"], "episodes": 24,
        "fail_episode": 8, "seeds": [0], "horizon_ticks": 60, "pretrain_episodes": 8, "maml": SMALL,
        "output": str(tmp_path / "out"), "workers": 1})
    outcome = run_failure_experiment(config)
    assert outcome.complete and {row["controller"] for row in outcome.rows} == set(config.controllers)
    for kind in ("intact", "multitask"):
        assert (tmp_path / "out" / f"{kind}_policy.pt").is_file()
        assert json.loads((tmp_path / "out" / "pretrain" / kind / "config.json").read_text())["config"]["episodes"] == 8
    # Resuming finds everything done and changes nothing.
    again = run_failure_experiment(config)
    assert again.ran == 0 and _nan_free(again.rows) == _nan_free(outcome.rows)


def _nan_free(rows: list[dict]) -> list[dict]:
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


def test_pretraining_side_by_side_gives_the_same_policies(tmp_path: Path, monkeypatch) -> None:
    """With 2 workers the two pre-trained policies train in worker processes, one thread each, as
    they do in process with 1 worker: the same weights either way."""
    from mamrl.experiments.failures import experiment
    from mamrl.experiments.failures.experiment import load_meta_init, prepare_pretrained

    pools: list[tuple] = []
    make_executor = experiment.make_backend_executor
    monkeypatch.setattr(experiment, "make_backend_executor", lambda *a, **k: (pools.append(a), make_executor(*a, **k))[1])

    base = {"failures": ["D-E"], "controllers": ["fine-tune", "zero-shot"], "episodes": 24, "fail_episode": 8,
            "seeds": [0], "horizon_ticks": 60, "pretrain_episodes": 8, "maml": SMALL}
    files = {}
    rows: list[dict] = []
    for workers in (1, 2):
        config = build_failure_config(preset="quick", overrides={**base, "output": str(tmp_path / f"j{workers}"), "workers": workers})
        files[workers] = prepare_pretrained(config, tmp_path / f"j{workers}", on_chunk=rows.append if workers == 1 else None,
                                            workers=workers)
        assert [pool[:2] for pool in pools] == ([] if workers == 1 else [("local", 2)])  # in process, then a pool of 2
    assert set(files[1]) == set(files[2]) == {"intact", "multitask"}
    for kind in files[1]:
        serial, _ = load_meta_init(files[1][kind])
        parallel, _ = load_meta_init(files[2][kind])
        assert serial.keys() == parallel.keys() and all(torch.equal(serial[k], parallel[k]) for k in serial)
    assert {row["stage"].split()[2] for row in rows} == {"intact", "multitask"} and rows[-1]["episodes"] == 8


def test_progress_of_a_training_in_another_process_is_read_from_its_curves(tmp_path: Path) -> None:
    import time

    from mamrl.experiments.failures.experiment import PretrainTask, _CurveWatcher
    from mamrl.training import TrainConfig

    run_dir = tmp_path / "intact"
    task = PretrainTask("intact", TrainConfig(episodes=32), str(run_dir), str(tmp_path / "p.pt"), {})
    seen: list[dict] = []
    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 5
        while len(seen) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    with _CurveWatcher([task], seen.append, interval_s=0.01):
        time.sleep(0.05)
        assert seen == []  # no curves.csv yet: nothing reported
        run_dir.mkdir()
        (run_dir / "curves.csv").write_text("episodes,seconds,delivered_fraction\n16,1.5,0.9\n")
        wait_for(1)
        time.sleep(0.2)  # some 20 more polls of the same last row
        assert len(seen) == 1  # reported once, not on every poll
        with open(run_dir / "curves.csv", "a") as fh:
            fh.write("32,3.0,0.95\n")
        wait_for(2)
        time.sleep(0.2)
    assert [row["episodes"] for row in seen] == [16, 32]  # each new row once
    assert seen[0]["delivered_fraction"] == 0.9 and "32 episodes" in seen[0]["stage"]
