"""Hostile input through every command: numbers beyond 64 bits, sizes that would exhaust memory,
deeply nested files. Each must end with exit code 2 and one `error: ...` line naming the problem,
no traceback, and no file written (scripts/probe_hostile.py runs the same kind of cases in real
processes under a memory limit)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error
from typer.testing import CliRunner

from mamrl.cli import app
from mamrl.errors import MamrlError
from mamrl.sim import kernel
from mamrl.sim.memory import MEMORY_LIMIT_ENV, check_run_memory, memory_budget, simulation_parts
from mamrl.sim.params import LinkFailure, SimParams
from mamrl.topologies import load_topology

runner = CliRunner()
BIG = str(10**30)  # beyond 64 bits
HUGE = str(10**12)  # fits 64 bits; far too much memory
LIMIT = "2e9"  # the memory budget the cases run under, as on a machine of 2.5 GB


def _own(links: list[dict], routers: list | None = None, **top: object) -> str:
    return json.dumps({"format": "mamrl-topology/1", "name": "t", "routers": routers or ["p", "q", "r"], "links": links, **top})


def _own_link(**changes: object) -> str:
    return _own([{"a": "p", "b": "q", "capacity": 5, "latency_ticks": 1, **changes},
                 {"a": "q", "b": "r", "capacity": 5, "latency_ticks": 1}])


def _line(n: int) -> str:
    routers = [f"r{i}" for i in range(n)]
    return _own([{"a": routers[i], "b": routers[i + 1]} for i in range(n - 1)], routers,
                defaults={"capacity": 1000, "latency_ticks": 1})


NESTED = "[" * 30000 + "]" * 30000
GRAPHML_DELAY = ('<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
                 '<key id="d" for="edge" attr.name="delay" attr.type="double"/>'
                 '<key id="c" for="edge" attr.name="capacity" attr.type="double"/>'
                 '<graph edgedefault="undirected"><node id="a"/><node id="b"/>'
                 '<edge source="a" target="b"><data key="d">1e15</data><data key="c">10</data></edge></graph></graphml>')
SIM = ["simulate", "-n", "1", "--horizon", "10"]

# (id, {file: text}, argv, a fragment of the error line, memory limit in bytes)
CASES = [
    # topology files
    ("latency-2**62-ticks", {"t.json": _own_link(latency_ticks=2**62)}, [*SIM, "-t", "t.json"], "arrival wheel", LIMIT),
    ("latency-1e9-ticks", {"t.json": _own_link(latency_ticks=10**9)}, [*SIM, "-t", "t.json"],
     "the largest link latency is 1e+09 ticks", LIMIT),
    ("paper-latency-2**40", {"t.json": json.dumps({"data": {"mapTopology": {
        "nodes": [{"name": "A"}, {"name": "B"}], "edges": [{"from": "A", "to": "B", "BW": 5, "Lat": 2**40}]}}})},
     [*SIM, "-t", "t.json"], "arrival wheel", LIMIT),
    ("graphml-delay-1e15-ms", {"t.graphml": GRAPHML_DELAY}, [*SIM, "-t", "t.graphml"], "arrival wheel", LIMIT),
    ("nested-json-array", {"t.json": NESTED}, ["capacity", "-t", "t.json"], "nested too deeply", LIMIT),
    ("nested-json-object", {"t.json": '{"a":' * 30000 + "1" + "}" * 30000}, ["capacity", "-t", "t.json"], "nested too deeply", LIMIT),
    ("nested-gml", {"t.gml": "graph [ " + "a [ " * 30000 + "] " * 30000 + "]"}, ["capacity", "-t", "t.gml"],
     "nested too deeply", LIMIT),
    ("nested-sweep-config", {"c.json": NESTED}, ["sweep", "--config", "c.json", "--results", "r.csv"], "nested too deeply", LIMIT),
    ("nested-sweep-toml", {"c.toml": "a = " + NESTED}, ["sweep", "--config", "c.toml", "--results", "r.csv"], "nested too deeply", LIMIT),
    ("nested-train-set", {}, ["train", "--set", "reward=" + NESTED, "--out", "run"], "--set reward", LIMIT),
    ("nested-algorithm-config", {}, ["saturation", "-a", "pg", "--algorithm-config", NESTED], "--algorithm-config", LIMIT),
    ("capacity-lp-too-large", {"big.json": _line(300)}, ["capacity", "-t", "big.json"], "linear programme", "1e8"),
    ("per-destination-queues", {"big.json": _line(300)}, [*SIM, "-t", "big.json", "--queues", "per-destination", "-n", "32"],
     "per-destination queues", "5e7"),
    ("routing-tables", {"big.json": _line(300)}, [*SIM, "-t", "big.json"], "routing tables", "5e6"),
    # command-line numbers
    ("simulate-horizon-beyond-64-bits", {}, [*SIM, "--horizon", BIG], "--horizon must be an integer from 1 to 2**31 - 1 ticks", LIMIT),
    ("simulate-horizon-beyond-int32", {}, [*SIM, "--horizon", HUGE], "--horizon must be", LIMIT),
    ("simulate-load-1e6", {}, [*SIM, "--load", "1e6"], "lower --load, --horizon or --batch-size", LIMIT),
    ("simulate-load-1e300", {}, [*SIM, "--load", "1e300"], "packets", LIMIT),
    ("simulate-episodes", {}, ["simulate", "-n", HUGE, "--horizon", "10"], "lower --episodes", LIMIT),
    ("simulate-batch", {}, ["simulate", "-n", BIG, "--batch-size", BIG], "--batch-size", LIMIT),
    ("simulate-fail-tick", {}, [*SIM, "--fail", f"0@{BIG}"], "tick must be an integer from 0 to 2**63 - 1", LIMIT),
    ("simulate-buffer-limit", {}, [*SIM, "--buffer-limit", BIG], "buffer_limit must be an integer from 1 to 2**63 - 1", LIMIT),
    ("simulate-reconvergence-delay", {}, [*SIM, "--fail", "0", "--reconvergence-delay", BIG], "reconvergence_delay_ticks", LIMIT),
    ("train-horizon", {}, ["train", "--horizon", HUGE, "-n", "1", "--out", "run"], "--horizon must be", LIMIT),
    ("train-load", {}, ["train", "--load", "1e6", "-n", "1", "--out", "run"], "lower --load", LIMIT),
    ("train-fail-tick", {}, ["train", "--fail", f"0@{BIG}", "-n", "1", "--out", "run"], "tick must be an integer", LIMIT),
    ("train-fail-after-horizon", {}, ["train", "--fail", "0@500", "--horizon", "500", "-n", "1", "--out", "run"],
     "tick 500 is at or after the horizon (500 ticks)", LIMIT),
    ("train-maml-fail-after-horizon", {}, ["train", "-a", "maml", "--set", "fail_tick=20", "--horizon", "20", "-n", "1", "--out", "run"],
     "fail_tick=20 is at or after the horizon (20 ticks)", LIMIT),
    ("failures-maml-fail-after-horizon", {"f.json": json.dumps({"maml": {"fail_tick": 20}})}, ["failures", "-c", "f.json", "-a", "mamrl-init", "--horizon", "20", "-o", "out"],
     "fail_tick 20 is at or after the horizon (20 ticks)", LIMIT),
    ("train-episodes", {}, ["train", "-n", HUGE, "--out", "run"], "learning-curve rows", LIMIT),
    ("train-eval-episodes", {}, ["train", "-a", "pg", "-n", "1", "--eval-episodes", HUGE, "--out", "run"], "--eval-episodes", LIMIT),
    ("sweep-horizon", {}, ["sweep", "--horizon", HUGE, "--results", "r.csv"], "--horizon: expected an integer in [1, 2,147,483,647]", LIMIT),
    ("sweep-loads", {}, ["sweep", "--loads", "1e6", "--algorithms", "spa", "--results", "r.csv"], "a cell of this sweep", LIMIT),
    ("sweep-eval-episodes", {}, ["sweep", "--eval-episodes", HUGE, "--results", "r.csv"], "per-episode results", LIMIT),
    ("saturation-horizon", {}, ["saturation", "--horizon", BIG], "--horizon must be", LIMIT),
    ("saturation-high", {}, ["saturation", "--low", "1e5", "--high", "1e6"], "the probe at --high", LIMIT),
    ("failures-fail-tick", {}, ["failures", "--fail-tick", BIG, "-o", "out"], "--fail-tick", LIMIT),
    ("failures-horizon", {}, ["failures", "--horizon", HUGE, "-o", "out", "-a", "spa"], "--horizon: expected an integer in [1, 2,147,483,647]", LIMIT),
    ("failures-episodes", {}, ["failures", "--episodes", HUGE, "-o", "out", "-a", "spa"], "a run of this experiment", LIMIT),
    ("reproduce-horizon", {}, ["reproduce", "--set", f"sweep.horizon_ticks={HUGE}", "-o", "out"], "sweep.horizon_ticks", LIMIT),
]


@pytest.mark.parametrize(("files", "argv", "fragment", "limit"), [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_hostile_input_is_one_line_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str],
                                                      argv: list[str], fragment: str, limit: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, limit)
    before = sorted(os.listdir(tmp_path))
    result = runner.invoke(app, argv)
    assert_one_line_error(result)
    assert result.exit_code == 2
    assert fragment in result.stderr, result.stderr
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, not even an empty output folder


# ---------------------------------------------------------------------------- the estimate itself
def test_per_destination_estimate_follows_the_kernels_layout() -> None:
    params = SimParams(load_topology("b4"), 0.3, horizon_ticks=50, queue_discipline="per-destination")
    part = next(p for p in simulation_parts(params, 3) if p.what == "per-destination queues")
    n = params.topology.num_routers
    assert part.bytes == 8 * 3 * n * kernel.router_width(n, True)


def test_packets_estimate_bounds_a_drawn_batch() -> None:
    """The packets of a real batch stay within the estimate's packet count (mean + 6 sd)."""
    from mamrl.sim.memory import expected_packets
    from mamrl.sim.traffic import draw_traffic

    params = SimParams(load_topology("b4"), 0.5, horizon_ticks=200)
    traffic = draw_traffic(params, 0, 8)
    assert traffic.created_tick.shape[1] <= expected_packets(params)
    assert traffic.created_tick.shape[1] > 0.8 * 0.5 * 12 * 200  # not a wild over-estimate either


def test_the_budget_refuses_and_names_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    params = SimParams(load_topology("b4"), 0.3, horizon_ticks=500)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1e6")
    with pytest.raises(MamrlError, match=r"would need ~.* more than 1 MB .*lower --load, --horizon or --batch-size"):
        check_run_memory(params, 32, options={"load": "--load", "horizon": "--horizon", "batch": "--batch-size"})
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1e12")
    assert 0 < check_run_memory(params, 32) < 1e9
    for bad in ("lots", "nan", "-5"):
        monkeypatch.setenv(MEMORY_LIMIT_ENV, bad)
        with pytest.raises(MamrlError, match=MEMORY_LIMIT_ENV):
            memory_budget()
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    limit, source = memory_budget()
    assert 0 < limit < float("inf") and "this machine" in source


def test_a_huge_reconvergence_delay_is_the_same_as_none() -> None:
    """A table due at or after the horizon never applies: capping its start changes nothing."""
    from mamrl.agents.shortest_path import ShortestPathPolicy
    from mamrl.sim.evaluate import evaluate_tables

    topo = load_topology("b4")
    params = SimParams(topo, 0.3, horizon_ticks=60, failures=(LinkFailure.parse(topo, "0@5"),))
    never = ShortestPathPolicy(None).routing_tables(params)
    late = ShortestPathPolicy(2**63 - 10).routing_tables(params)
    assert list(late.start_ticks) == [0, 60]
    a, _ = evaluate_tables(params, never, 0, 2)
    b, _ = evaluate_tables(params, late, 0, 2)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"horizon_ticks": 2**31}, "horizon_ticks must be an integer from 1 to 2**31 - 1"),
    ({"horizon_ticks": True}, "horizon_ticks must be"),
    ({"buffer_limit": 2**63}, "buffer_limit must be an integer from 1 to 2**63 - 1"),
    ({"failures": (LinkFailure(0, 2**63),)}, "failure tick must be an integer from 0 to 2**63 - 1"),
])
def test_sim_params_bound_their_integers(kwargs: dict, fragment: str) -> None:
    with pytest.raises(MamrlError) as excinfo:
        SimParams(load_topology("b4"), 0.3, **kwargs)
    assert fragment in str(excinfo.value) and "\n" not in str(excinfo.value)
