"""`mamrl train`: checkpoints, curves, and resuming after a kill."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mamrl.agents.base import RoutingAgent
from mamrl.errors import MamrlError
from mamrl.training import TrainConfig, train_run


def _curves(path):
    with open(path) as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


@pytest.mark.parametrize(
    "algorithm,config,chunk",
    [("mamrl", {"hidden_sizes": [16, 16], "episodes_per_iteration": 2}, 0), ("pg", {}, 3), ("q-routing", {}, 3),
     ("maml", {"hidden_sizes": [8], "episodes_per_task": 1, "tasks_per_iteration": 1}, 0)],
)
def test_resumed_run_equals_uninterrupted_run(tmp_path, algorithm, config, chunk):
    cfg = TrainConfig(topology="b4", load=0.3, horizon_ticks=60, algorithm=algorithm, algorithm_config=config,
                      episodes=8, seed=3, chunk_episodes=chunk, eval_episodes=2)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train_run(cfg, whole)
    train_run(cfg, parts, stop_after_chunks=2)  # "killed" after two chunks
    assert not (parts / "curves.png").exists()
    train_run(cfg, parts)  # resumed
    assert _curves(whole / "curves.csv") == _curves(parts / "curves.csv")
    _, a = RoutingAgent.read_checkpoint(whole / "checkpoint.pt")
    _, b = RoutingAgent.read_checkpoint(parts / "checkpoint.pt")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert (whole / "curves.png").stat().st_size > 0
    evaluation = json.loads((whole / "evaluation.json").read_text())
    assert evaluation["episodes"] == 2 and "delivered_fraction" in evaluation["metrics"]
    assert len(_curves(whole / "curves.csv")) >= 3


@pytest.mark.parametrize("algorithm,config", [("mamrl", {"hidden_sizes": [16, 16], "episodes_per_iteration": 2}),
                                              ("q-routing", {})])
def test_a_larger_target_extends_a_finished_run_as_if_it_had_been_the_target(tmp_path, algorithm, config):
    def cfg(episodes):
        return TrainConfig(topology="b4", load=0.3, horizon_ticks=50, algorithm=algorithm, algorithm_config=config,
                           episodes=episodes, seed=5, chunk_episodes=2, eval_episodes=1)
    train_run(cfg(8), tmp_path / "whole")
    train_run(cfg(4), tmp_path / "extended")
    assert json.loads((tmp_path / "extended" / "config.json").read_text())["config"]["episodes"] == 4
    assert train_run(cfg(8), tmp_path / "extended")["episodes"] == 8
    assert json.loads((tmp_path / "extended" / "config.json").read_text())["config"]["episodes"] == 8
    assert _curves(tmp_path / "whole" / "curves.csv") == _curves(tmp_path / "extended" / "curves.csv")
    _, a = RoutingAgent.read_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    _, b = RoutingAgent.read_checkpoint(tmp_path / "extended" / "checkpoint.pt")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert (json.loads((tmp_path / "whole" / "evaluation.json").read_text())
            == json.loads((tmp_path / "extended" / "evaluation.json").read_text()))
    # A run cannot be cut back to a smaller target than it has trained.
    with pytest.raises(MamrlError, match="already trained 8 episodes, more than the 6 asked"):
        train_run(cfg(6), tmp_path / "extended")
    assert json.loads((tmp_path / "extended" / "config.json").read_text())["config"]["episodes"] == 8


def test_resume_refuses_a_different_configuration(tmp_path):
    cfg = TrainConfig(topology="b4", load=0.3, horizon_ticks=40, algorithm="pg", episodes=2, chunk_episodes=1)
    train_run(cfg, tmp_path)
    with pytest.raises(MamrlError):
        train_run(TrainConfig(topology="b4", load=0.4, horizon_ticks=40, algorithm="pg", episodes=2, chunk_episodes=1), tmp_path)
    with pytest.raises(MamrlError):
        train_run(TrainConfig(episodes=0), tmp_path / "other")


def _edit_record(run, edit):
    path = run / "config.json"
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))


def test_resume_refuses_a_default_that_changed_since_the_run_started(tmp_path):
    # A newer mamrl with another default must not continue an old run under it without saying so.
    cfg = TrainConfig(topology="b4", load=0.3, horizon_ticks=40, algorithm="pg", episodes=3, chunk_episodes=1)
    train_run(cfg, tmp_path, stop_after_chunks=1)
    assert json.loads((tmp_path / "config.json").read_text())["algorithm_resolved"]["step_size"] == 0.05
    _edit_record(tmp_path, lambda r: r["algorithm_resolved"].update(step_size=0.02))  # "the old default"
    with pytest.raises(MamrlError, match=r"step_size is 0\.02 in the run but 0\.05 now .*--set step_size=0\.02"):
        train_run(cfg, tmp_path)
    pinned = TrainConfig(topology="b4", load=0.3, horizon_ticks=40, algorithm="pg", algorithm_config={"step_size": 0.02},
                         episodes=3, chunk_episodes=1)
    assert train_run(pinned, tmp_path)["episodes"] == 3


def test_resume_of_a_run_older_than_a_hyper_parameter_asks_for_its_value(tmp_path):
    cfg = TrainConfig(topology="b4", load=0.3, horizon_ticks=40, algorithm="pg", episodes=3, chunk_episodes=1)
    train_run(cfg, tmp_path, stop_after_chunks=1)
    _edit_record(tmp_path, lambda r: r["algorithm_resolved"].pop("baseline_rate"))
    with pytest.raises(MamrlError, match="baseline_rate did not exist when the run started"):
        train_run(cfg, tmp_path)
    # Runs recorded before `algorithm_resolved` existed are checked against their checkpoint's config.
    _edit_record(tmp_path, lambda r: r.pop("algorithm_resolved"))
    assert train_run(cfg, tmp_path)["episodes"] == 3


def _run_cli(args):
    from mamrl.cli import main

    try:
        return main(args)
    except SystemExit as exc:
        return exc.code


def test_cli_train_runs_and_rejects_bad_input(tmp_path, capsys):
    code = _run_cli(["train", "--topology", "b4", "--algorithm", "pg", "--episodes", "4", "--horizon", "40",
                 "--chunk", "2", "--eval-episodes", "1", "--out", str(tmp_path / "run")])
    assert code == 0
    assert (tmp_path / "run" / "curves.csv").exists() and (tmp_path / "run" / "checkpoint.pt").exists()
    assert "[4/4]" in capsys.readouterr().err  # the live summary
    for args in (["--algorithm", "spa"], ["--algorithm", "ospf"], ["--load", "-1"], ["--episodes", "0"],
                 ["--set", "reward=oops"], ["--set", "nonsense"], ["--fail", "A-Z"]):
        code = _run_cli(["train", "--horizon", "20", "--episodes", "2", "--out", str(tmp_path / "bad"), *args])
        err = capsys.readouterr().err
        assert code == 2
        assert err.startswith("error:") and "Traceback" not in err and err.count("\n") <= 2, (args, err)


def test_an_interrupted_chunk_counts_in_the_attempts_time(tmp_path, monkeypatch):
    import time

    from mamrl.agents import q_routing

    cfg = TrainConfig(topology="b4", load=0.3, horizon_ticks=60, algorithm="q-routing", algorithm_config={},
                      episodes=8, seed=3, chunk_episodes=4, eval_episodes=0)
    calls = []
    train = q_routing.QRouting.train

    def slow_second_chunk(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            time.sleep(0.3)
            raise KeyboardInterrupt  # Ctrl-C in the middle of the second chunk
        return train(self, *args, **kwargs)

    monkeypatch.setattr(q_routing.QRouting, "train", slow_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path)
    attempt = json.loads((tmp_path / "attempts.json").read_text())["attempts"][-1]
    assert attempt["wall_s"] >= 0.3 and not attempt["finished"]
