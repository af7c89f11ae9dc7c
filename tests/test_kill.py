"""Crash safety: `mamrl` SIGKILL'ed at chosen points of `train`, `sweep`, `failures` and
`reproduce` leaves no process behind (pool workers, forkserver, resource tracker), and re-running
the same command resumes to the same numbers as an uninterrupted run. Also: a second run on a
busy output is one line, and damaged run metadata is one line, never a traceback."""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_helpers import assert_one_line_error, console_command
from mamrl import runs
from mamrl.cli import app
from mamrl.errors import MamrlError

runner = CliRunner()

TRAIN = ["train", "-a", "q-routing", "-n", "60", "--chunk", "10", "--horizon", "100", "--eval-episodes", "2"]
SWEEP = ["sweep", "-t", "b4", "-a", "q-routing,spa", "-l", "0.1,0.3", "-s", "0,1", "--train-episodes", "60",
         "--eval-episodes", "2", "--horizon", "100", "--eval-horizon", "100", "-j", "2"]
FAILURES = ["failures", "--controllers", "spa,q-routing", "--episodes", "16", "--fail-episode", "4", "--horizon", "100",
            "--seeds", "0", "-j", "2", "--format", "png"]


# ------------------------------------------------------------------------------ helpers
def session_processes(session: int) -> list[str]:
    """Processes of session `session` still running (zombies, already dead, excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # state, ppid, pgrp, session, ...
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(f"{entry} {cmdline[:120]}")
    return found


def run_and_kill(args: list[str], ready: Callable[[], bool], cwd: Path) -> None:
    """Start `mamrl ARGS` in its own session, SIGKILL its main process once `ready()`, and assert
    that none of its processes outlives it (the kernel's parent-death signal needs a moment)."""
    proc = subprocess.Popen(console_command(*args), cwd=cwd, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not ready():
            assert proc.poll() is None, f"finished before the kill point: {proc.communicate()[1].decode()[-2000:]}"
            assert time.monotonic() < deadline, "kill point not reached"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = session_processes(proc.pid)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever the test found left over: not on the machine after it
        except ProcessLookupError:
            pass
    assert left == [], f"processes left after SIGKILL: {left}"


def run_ok(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(console_command(*args), cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return done


def data_rows(path: Path) -> int:
    try:
        return max(0, path.read_text().count("\n") - 1)
    except OSError:
        return 0


def table(path: Path, drop: tuple[str, ...] = ()) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


# ------------------------------------------------------------------------------ SIGKILL, then resume
@pytest.mark.slow
@pytest.mark.parametrize("point", ["config", "checkpoint"])
def test_train_killed_resumes_to_the_same_run(tmp_path: Path, point: str) -> None:
    run_ok([*TRAIN, "-o", "ref"], tmp_path)
    run = tmp_path / "run"
    marker = run / ("config.json" if point == "config" else "checkpoint.pt")
    run_and_kill([*TRAIN, "-o", "run"], marker.is_file, tmp_path)
    run_ok([*TRAIN, "-o", "run"], tmp_path)
    assert table(run / "curves.csv", drop=("seconds",)) == table(tmp_path / "ref" / "curves.csv", drop=("seconds",))
    assert json.loads((run / "evaluation.json").read_text()) == json.loads((tmp_path / "ref" / "evaluation.json").read_text())
    from mamrl.agents.base import RoutingAgent

    _, ours = RoutingAgent.read_checkpoint(run / "checkpoint.pt")
    _, theirs = RoutingAgent.read_checkpoint(tmp_path / "ref" / "checkpoint.pt")
    assert ours.keys() == theirs.keys() and all((ours[k] == theirs[k]).all() for k in ours)
    attempts = json.loads((run / "attempts.json").read_text())["attempts"]
    assert len(attempts) == 2 and not attempts[0]["finished"] and attempts[1]["finished"]


@pytest.mark.slow
def test_sweep_killed_with_workers_resumes_and_leaves_no_process(tmp_path: Path) -> None:
    from sweep_helpers import without_timings

    run_ok([*SWEEP, "--results", "ref.csv"], tmp_path)
    results = tmp_path / "r.csv"
    run_and_kill([*SWEEP, "--results", "r.csv"], lambda: data_rows(results) >= 1, tmp_path)
    assert 1 <= data_rows(results) < 8
    run_ok([*SWEEP, "--results", "r.csv"], tmp_path)
    assert without_timings(results) == without_timings(tmp_path / "ref.csv")


@pytest.mark.slow
def test_failures_killed_with_workers_resumes_and_leaves_no_process(tmp_path: Path) -> None:
    run_ok([*FAILURES, "-o", "ref"], tmp_path)
    curves = tmp_path / "out" / "curves.csv"
    run_and_kill([*FAILURES, "-o", "out"], lambda: data_rows(curves) >= 1, tmp_path)
    run_ok([*FAILURES, "-o", "out"], tmp_path)
    assert table(curves) == table(tmp_path / "ref" / "curves.csv")
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    attempts = json.loads((tmp_path / "out" / "attempts.json").read_text())["attempts"]
    assert len(attempts) == 2 and record["total_wall_time_s"] >= record["wall_time_s"]


@pytest.mark.slow
def test_reproduce_killed_in_two_stages_resumes_to_the_same_numbers(tmp_path: Path) -> None:
    from test_reproduce import TINY, _set_args

    args = ["reproduce", "-j", "2", *_set_args(TINY)]
    run_ok([*args, "-o", "ref"], tmp_path)
    out = tmp_path / "out"
    run_and_kill([*args, "-o", "out"], lambda: any(data_rows(p) >= 1 for p in (out / "e1").glob("sweep_*.csv")), tmp_path)
    run_and_kill([*args, "-o", "out"], lambda: data_rows(out / "e2" / "b4" / "curves.csv") >= 1, tmp_path)
    run_ok([*args, "-o", "out"], tmp_path)
    from sweep_helpers import without_timings

    ref = tmp_path / "ref"
    assert without_timings(out / "e1" / "results.csv") == without_timings(ref / "e1" / "results.csv")
    assert table(out / "e2" / "b4" / "curves.csv") == table(ref / "e2" / "b4" / "curves.csv")
    assert (out / "table2.csv").read_text() == (ref / "table2.csv").read_text()
    for path in sorted((ref / "saturation").glob("*.json")):
        ours, theirs = (json.loads(p.read_text()) for p in (out / "saturation" / path.name, path))
        assert ours["probes"] == theirs["probes"], path.name
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    assert stages["e1"]["attempts"] == 2 and stages["e2"]["attempts"] == 2
    assert stages["e1"]["attempt_walls_s"][0] > 0  # the killed attempt's time is kept
    assert all(stage["status"] == "done" and stage["files"] for stage in stages.values())


# ------------------------------------------------------------------------------ a busy output
def hold_lock(lock_path: Path) -> int:
    """Take a lock the way another mamrl process would (a new open file description)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    os.pwrite(fd, b"4242\n", 0)
    return fd


@pytest.mark.parametrize("command", ["train", "sweep", "failures", "reproduce"])
def test_a_second_run_on_a_busy_output_is_one_line(tmp_path: Path, command: str) -> None:
    from test_reproduce import TINY, _set_args

    target = tmp_path / "out"
    argv = {"train": [*TRAIN, "-o", str(target)],
            "sweep": [*SWEEP, "--results", str(target / "r.csv")],
            "failures": [*FAILURES, "-o", str(target)],
            "reproduce": ["reproduce", "-o", str(target), *_set_args(TINY)]}[command]
    lock = runs.lock_path_of(target / "r.csv", directory=False) if command == "sweep" else runs.lock_path_of(target)
    fd = hold_lock(lock)
    try:
        result = runner.invoke(app, argv)
    finally:
        os.close(fd)
    assert_one_line_error(result)
    assert "is in use by another mamrl run (pid 4242)" in result.stderr
    assert [p.name for p in target.iterdir()] == [lock.name]  # nothing written


def test_lock_is_reentrant_in_a_process_and_released_after(tmp_path: Path) -> None:
    with runs.lock_output(tmp_path / "d"):
        with runs.lock_output(tmp_path / "d"):  # reproduce's stages lock folders it may hold already
            pass
        with pytest.raises(BlockingIOError):  # held against any other open of the lock file
            os.close(hold_lock(runs.lock_path_of(tmp_path / "d")))
    os.close(hold_lock(runs.lock_path_of(tmp_path / "d")))  # released


# ------------------------------------------------------------------------------ damaged metadata
@pytest.mark.parametrize("damage", ["empty", "truncated", "list"])
def test_damaged_train_config_is_one_line(tmp_path: Path, damage: str) -> None:
    out = tmp_path / "run"
    args = [*TRAIN[:4], "20", "--chunk", "10", "--horizon", "50", "--eval-episodes", "0", "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    config = out / "config.json"
    text = config.read_text()
    config.write_text({"empty": "", "truncated": text[: len(text) // 2], "list": "[1, 2]"}[damage])
    result = runner.invoke(app, args)
    assert_one_line_error(result)
    assert str(config) in result.stderr and "start the run over" in result.stderr


@pytest.mark.parametrize("key", ["q_table", "episodes_trained"])
def test_checkpoint_missing_a_key_is_one_line(tmp_path: Path, key: str) -> None:
    import torch

    out = tmp_path / "run"
    args = [*TRAIN[:4], "20", "--chunk", "10", "--horizon", "50", "--eval-episodes", "0", "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    payload = torch.load(out / "checkpoint.pt", weights_only=True)
    del payload["arrays"][key]
    torch.save(payload, out / "checkpoint.pt")
    result = runner.invoke(app, args)
    assert_one_line_error(result)
    assert "checkpoint.pt" in result.stderr and "retrain" in result.stderr


def test_full_disk_during_a_checkpoint_is_one_line_and_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    from mamrl.algorithms import make_agent

    agent = make_agent("q-routing", {})

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(MamrlError, match=r"could not write checkpoint .*checkpoint\.pt: No space left on device"):
        agent.save(tmp_path / "checkpoint.pt")
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_the_permissions_open_would_give(tmp_path: Path) -> None:
    opened = tmp_path / "opened"
    opened.write_text("x")
    with runs.atomic_file(tmp_path / "binary", "wb") as handle:
        handle.write(b"x")
    written = [runs.write_text(tmp_path / "text", "x"), tmp_path / "binary"]
    # Not mkstemp's private 0600 (under the usual umask 022, open gives 0644).
    assert [p.stat().st_mode & 0o777 for p in written] == [opened.stat().st_mode & 0o777] * 2


def test_read_json_names_each_kind_of_damage(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    with pytest.raises(MamrlError, match="does not exist; fix it"):
        runs.read_json(path, "record", "fix it")
    path.write_text(" ")
    with pytest.raises(MamrlError, match="is empty"):
        runs.read_json(path, "record", "fix it")
    path.write_text('{"a": ')
    with pytest.raises(MamrlError, match="damaged"):
        runs.read_json(path, "record", "fix it")


def test_attempt_clock_keeps_a_killed_attempt(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "attempts.json"
    this_cpu = runs.cpu_model()
    monkeypatch.setattr(runs, "git_commit", lambda: {"commit": "a" * 40, "dirty": False})
    first = runs.AttemptClock(path).start()
    first.tick()  # then "killed": no stop()
    monkeypatch.setattr(runs, "git_commit", lambda: {"commit": "b" * 40, "dirty": True})  # resumed with other code
    monkeypatch.setattr(runs, "cpu_model", lambda: "Other CPU")  # ... on another machine
    second = runs.AttemptClock(path).start()
    second.stop()
    doc = json.loads(path.read_text())
    assert [a["finished"] for a in doc["attempts"]] == [False, True]
    assert [a["git"] for a in doc["attempts"]] == [{"commit": "a" * 40, "dirty": False}, {"commit": "b" * 40, "dirty": True}]
    assert doc["attempts"][0]["cpu"].startswith(f"{this_cpu}, ") and doc["attempts"][1]["cpu"].startswith("Other CPU, ")
    assert doc["total_wall_s"] == pytest.approx(sum(a["wall_s"] for a in doc["attempts"]))
    path.write_text("{")  # damaged bookkeeping starts afresh rather than stopping a run
    assert len(runs.AttemptClock(path).start().attempts) == 1


def test_changed_files_names_missing_truncated_and_changed(tmp_path: Path) -> None:
    for name in ("a", "b", "c", "d"):
        (tmp_path / name).write_text("0123456789")
    records = {name: runs.file_record(tmp_path / name) for name in ("a", "b", "c", "d")}
    (tmp_path / "a").unlink()
    (tmp_path / "b").write_text("01234")
    (tmp_path / "c").write_text("0123456780")
    assert runs.changed_files(tmp_path, records) == [
        ("a", "missing"), ("b", "5 bytes, 10 when written (truncated or changed)"), ("c", "content changed since it was written")]


@pytest.mark.parametrize("name", ["config.json", "curves.csv"])
def test_damaged_failure_experiment_files_are_one_line(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    args = ["failures", "--failure", "D-E", "--controllers", "spa", "--episodes", "16", "--fail-episode", "4",
            "--horizon", "50", "--seeds", "0", "-j", "1", "--format", "png", "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    path = out / name
    text = path.read_text()
    # An empty sidecar; a results line whose fields are cut in the middle of the file.
    path.write_text("" if name == "config.json" else text.replace("\n", "\n,", 2))
    result = runner.invoke(app, args)
    assert_one_line_error(result)
    assert str(path) in result.stderr
