"""The link-failure experiment's load is read against λ* after each tested failure: `auto` keeps
the paper's λ only where every tested failure leaves λ* above it, an explicit load at or above a
post-failure λ* is refused, and meta-training leaves infeasible failures out of η(M)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_helpers import assert_one_line_error
from mamrl.cli import app
from mamrl.errors import MamrlError
from mamrl.experiments.failures import build_failure_config
from mamrl.experiments.failures.feasibility import PAPER_LOAD, capacity_after, infeasible_links, plan_load
from mamrl.meta.tasks import link_label
from mamrl.topologies import Link, Topology, load_topology

B4 = load_topology("b4")


def lambda_star(topology: Topology, *links: str) -> float:
    return capacity_after(topology, tuple(sorted(topology.link_id(link) for link in links)))


def test_auto_keeps_the_papers_load_where_every_failure_leaves_room() -> None:
    config = build_failure_config(preset="quick")  # b4's three paper failures
    assert config.load == "auto"
    assert all(PAPER_LOAD < lambda_star(B4, link) for link in ("D-E", "I-K", "C-F"))
    assert config.load_value() == PAPER_LOAD
    resolved = config.resolved()
    assert resolved["load"] == PAPER_LOAD and resolved["load_spec"] == "auto"
    assert set(resolved["capacity_after_failure"]) == {"D-E", "I-K", "C-F"}


def test_auto_takes_a_share_of_the_smallest_post_failure_capacity() -> None:
    config = build_failure_config(preset="quick", overrides={"failures": ["D-E"], "held_out": ["H-J"]})
    limit = lambda_star(B4, "H-J")
    assert limit < PAPER_LOAD < lambda_star(B4, "D-E")  # H-J makes the paper's load infeasible
    assert config.load_value() == pytest.approx(0.8 * limit, rel=1e-5)
    assert config.load_plan.limiting_failure == "H-J"
    assert "H-J" in config.load_plan.describe()


def test_a_share_of_lambda_star() -> None:
    config = build_failure_config(preset="quick", overrides={"failures": ["H-J"], "load": "0.5x"})
    assert config.load_value() == pytest.approx(0.5 * lambda_star(B4, "H-J"), rel=1e-5)


def test_an_explicit_load_above_a_post_failure_capacity_is_refused_unless_allowed() -> None:
    with pytest.raises(MamrlError, match=r"after H-J fails") as info:
        build_failure_config(preset="quick", overrides={"failures": ["H-J"], "load": 0.3})
    assert f"{lambda_star(B4, 'H-J'):.4g}" in str(info.value) and "--allow-infeasible" in str(info.value)
    config = build_failure_config(preset="quick", overrides={"failures": ["H-J"], "load": 0.3, "allow_infeasible": True})
    assert config.load_value() == 0.3 and config.resolved()["allow_infeasible"] is True


def test_a_disconnecting_failure_is_refused_unless_allowed() -> None:
    line = Topology("line", ("a", "b", "c"), (Link(0, 1, 10**9, 1), Link(1, 2, 10**9, 1)))
    with pytest.raises(MamrlError, match=r"b-c disconnects line"):
        plan_load("auto", line, [("b-c", (1,))], allow_infeasible=False)
    with pytest.raises(MamrlError, match="no load"):
        plan_load("auto", line, [("b-c", (1,))], allow_infeasible=True)  # a share of λ* = 0
    assert plan_load(0.1, line, [("b-c", (1,))], allow_infeasible=True).infeasible == ["b-c"]


def test_meta_training_leaves_infeasible_failures_out_of_eta() -> None:
    excluded = infeasible_links(B4, PAPER_LOAD)
    assert "H-J" in excluded and "D-E" not in excluded
    assert all(not PAPER_LOAD < lambda_star(B4, link) for link in excluded)
    kept = [e for e in range(B4.num_links) if link_label(B4, e) not in excluded]
    assert kept and all(PAPER_LOAD < capacity_after(B4, (e,)) for e in kept)
    config = build_failure_config(preset="quick")
    assert set(excluded) <= set(config.meta_held_out())


def test_cli_names_the_link_and_lambda_star(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["failures", "--failure", "H-J", "--load", "0.3", "-o", str(tmp_path / "out")])
    assert_one_line_error(result)
    assert "H-J" in result.stderr and "λ*" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_double_link_failure_fails_both_links_together() -> None:
    from mamrl.experiments.failures.experiment import Block, block_params, intact_params

    config = build_failure_config(preset="quick", overrides={"failures": ["I-K+D-E"], "controllers": ["spa"]})
    ((label, links, held),) = config.test_links()
    assert label == "D-E+I-K" and links == tuple(sorted((B4.link_id("D-E"), B4.link_id("I-K")))) and not held
    assert config.load_plan.capacity == {"D-E+I-K": pytest.approx(lambda_star(B4, "D-E", "I-K"))}
    params = block_params(intact_params(config.resolved()), links, Block(20, 5, "failed"), 20, 0)
    assert sorted(f.link for f in params.failures) == list(links)
    with pytest.raises(MamrlError, match="names a link twice"):
        build_failure_config(preset="quick", overrides={"failures": ["D-E+D-E"]})


def test_the_extended_test_set_of_each_builtin() -> None:
    """The paper preset adds one double failure and two held-out links per built-in; they keep
    the `auto` load of the paper's failures, and the held-out links are never failed in η(M)."""
    from mamrl.sim.capacity import demand_per_unit_load
    from mamrl.topologies.builtin import HELD_OUT_FAILURES, PAPER_FAILURES

    import networkx as nx
    import numpy as np

    for name in ("b4", "geant", "att"):
        topology = load_topology(name)
        config = build_failure_config(preset="quick", overrides={"topology": name, "extended_tests": True})
        labels = [label for label, _, _ in config.test_links()]
        assert labels[:3] == list(PAPER_FAILURES[name]) and "+" in labels[3] and len(labels) == 6
        assert [label for label, _, held in config.test_links() if held] == list(HELD_OUT_FAILURES[name])
        assert config.load_value() == build_failure_config(preset="quick", overrides={"topology": name}).load_value()
        assert set(HELD_OUT_FAILURES[name]) <= set(config.meta_held_out())
        # Re-derive the held-out choice: the most-used links (hop-count shortest paths, demand-weighted)
        # among the non-paper links whose failure leaves λ* at least the paper failures' smallest.
        paper = {topology.link_id(link) for link in PAPER_FAILURES[name]}
        floor = min(capacity_after(topology, (e,)) for e in paper)
        demand = demand_per_unit_load(topology)
        graph = nx.Graph()
        for e, link in enumerate(topology.links):
            graph.add_edge(link.a, link.b, id=e)
        use = np.zeros(topology.num_links)
        for source, paths in nx.all_pairs_shortest_path(graph):
            for target, path in paths.items():
                for u, v in zip(path, path[1:]):
                    use[graph[u][v]["id"]] += demand[source, target]
        ranked = [int(e) for e in np.argsort(-use, kind="stable")
                  if e not in paper and capacity_after(topology, (int(e),)) >= floor - 1e-9]
        assert [link_label(topology, e) for e in ranked[:2]] == list(HELD_OUT_FAILURES[name])
