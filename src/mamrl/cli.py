"""The `mamrl` command line. Every command parses its options, calls one library function and
prints the result (`mamrl.console`); errors are one line on stderr with exit code 2. Option help
comes from the config dataclasses' field docstrings where a command has one, so they cannot drift.

Every command imports the library inside its body (lazy imports), so `mamrl --help` and a typo'd
option answer at once instead of after loading numba, scipy and torch.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

import mamrl
from mamrl import console as ui
from mamrl.errors import MamrlError
from mamrl.runs import check_output_file, field_docs, is_stdout

app = typer.Typer(name="mamrl", help="Packet routing in WANs: a fast packet-level simulator, routing baselines and MAMRL.",
                  add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)


def _opt(default: Any, *flags: str, metavar: str | None = None, doc: tuple[str, str] | None = None, help: str = "") -> Any:
    """A typer option whose help is a config field's docstring plus `help`. `doc` = ("module.Class",
    field), read from the source (`runs.field_docs`): commands import the library only when they run."""
    text = " ".join(part for part in ((field_docs(*doc[0].rsplit(".", 1))[doc[1]] if doc else ""), help) if part)
    return typer.Option(default, *flags, metavar=metavar, help=text)


_SIM = "mamrl.experiments.simulate.SimulationRequest"
_TOPOLOGY = "A built-in topology (b4, geant, att) or a topology file/directory."
_BACKEND = "Where the work runs: local (processes on this machine's cores) or ray (a Ray cluster; pip install 'mamrl[ray]')."
_ADDRESS = "With --backend ray: the head node of a running cluster (default: start a local Ray instance)."
_WORKERS = ("Parallel worker processes (default: one per core; 1 = in process). With --backend ray: the local "
            "instance's CPUs, or at most N at once on a cluster.")
_DEMAND_LAYOUT = _opt("auto", "--demand-layout", metavar="LAYOUT", help=(
    "How --demand lines map to router pairs: auto (from the line length), teavar-matrix (n*n values), pair-list "
    "(n*(n-1)) or pair-list-trailing (the pairs, then ignored values: the paper's GEANT file)."))
_TRAFFIC = _opt("uniform", "--traffic", metavar="MODEL", doc=("mamrl.experiments.simulate.SimulationRequest", "traffic"))
_PACKET_SIZE = _opt(None, "--packet-size", metavar="UNITS|auto", doc=("mamrl.experiments.simulate.SimulationRequest", "packet_size"))
_FORMATS = typer.Option(["png", "pdf"], "--format", "-f", metavar="FMT", help="Figure format: png, pdf, svg. Repeatable.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mamrl {mamrl.__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """Packet routing in WANs: a fast packet-level simulator, routing baselines and MAMRL."""


# ------------------------------------------------------------------------------ topologies and the simulator
@app.command()
def topologies(
    topohub: bool = _opt(False, "--topohub", help="List the topohub topologies instead (pip install 'mamrl[topohub]'); load one as topohub:NAME."),
    pattern: Optional[str] = typer.Argument(None, metavar="[FILTER]", help="With --topohub: only names containing this (case-insensitive)."),
) -> None:
    """List the built-in topologies, or with --topohub those of the topohub package."""
    with ui.user_errors():
        if topohub:
            from mamrl.topologies.wild import topohub_catalogue

            rows = [(f"topohub:{name}", str(routers), str(links)) for name, routers, links in topohub_catalogue(pattern)]
            if not rows:
                raise MamrlError(f"no topohub topology name contains {pattern!r}")
            ui.stdout().print(ui.table(f"topohub topologies{f' matching {pattern!r}' if pattern else ''} ({len(rows)})",
                                       ("name", "routers", "links"), rows, left=1))
            return
        if pattern is not None:
            raise MamrlError("a FILTER applies to --topohub (the built-in topologies are b4, geant and att)")
        from mamrl.topologies import builtin_summary

        rows = [(r.name, str(r.routers), str(r.links), f"{r.capacity:,}",
                 "n/a" if np.isnan(r.mean_packet_size) else f"{r.mean_packet_size:,.0f}", r.source) for r in builtin_summary()]
        ui.stdout().print(ui.table("Built-in topologies", ("name", "routers", "links", "capacity", "mean packet size", "source"),
                                   rows, left=1))


def _report_console(json_out: Optional[Path]):
    """Where a command's tables go: stdout, or stderr when `--json -` gives stdout to the JSON."""
    return ui.stderr() if is_stdout(json_out) else ui.wide_stdout()


def _say_wrote(json_out: Optional[Path]) -> None:
    if json_out is not None and not is_stdout(json_out):
        ui.say(f"wrote {json_out}")


@app.command()
def capacity(
    topology: str = _opt("b4", "--topology", "-t", metavar="NAME|PATH", help=_TOPOLOGY),
    fail: list[str] = _opt([], "--fail", metavar="LINK", help="A failed link (A-B by router names, a link name or id). Repeatable."),
    all_failures: bool = _opt(False, "--all-failures", help="Also λ* after each single further link failure."),
    demand: Optional[Path] = _opt(None, "--demand", metavar="FILE", doc=(_SIM, "demand")),
    demand_layout: str = _DEMAND_LAYOUT, traffic: str = _TRAFFIC, packet_size: Optional[str] = _PACKET_SIZE,
    json_out: Optional[Path] = _opt(None, "--json", metavar="FILE", help="Write the results as JSON (`-`: to stdout, the tables then go to stderr)."),
) -> None:
    """λ*: the largest load (packets per router per tick) any routing can carry, and what limits it."""
    with ui.user_errors():
        from mamrl import runs
        from mamrl.experiments.capacity_report import LIMIT_NOTE, CapacityReport, capacity_report

        check_output_file(json_out, "--json")
        with ui.ProgressReport("link failures", "links", lines=False) as bar:
            report = capacity_report(topology, fail=fail, all_failures=all_failures, demand=demand, demand_layout=demand_layout,
                                     traffic=traffic, packet_size=packet_size,
                                     on_scan_start=bar.begin, on_link=lambda _: bar.advance())
        if json_out is not None:
            runs.write_json(json_out, report.document())
        console = _report_console(json_out)
        for line in report.summary_lines():
            console.print(line, soft_wrap=True)
        if report.scan:
            console.print(ui.table("λ* after one more link failure", CapacityReport.SCAN_COLUMNS, report.scan_rows(), left=1))
        console.print(LIMIT_NOTE, soft_wrap=True)
        _say_wrote(json_out)


def _simulation(topology: str, load: str, policy: str, episodes: int, seed: int, horizon: int, fail: list[str],
                reconvergence_delay: Optional[int], buffer_limit: Optional[int], demand: Optional[Path], demand_layout: str,
                batch_size: int = 32, queues: Optional[str] = None, adapt: bool = False, traffic: str = "uniform",
                packet_size: Optional[str] = None) -> tuple[Any, dict[str, np.ndarray], float]:
    """Prepare and run a simulation with a progress bar; (simulation, per-episode metrics, wall seconds)."""
    from mamrl.experiments.simulate import SimulationRequest

    return _run_request(SimulationRequest(topology, load, policy, episodes, seed, horizon, tuple(fail), reconvergence_delay,
                                          buffer_limit, demand, demand_layout, batch_size, queues, adapt, traffic, packet_size))


def _run_request(request: Any) -> tuple[Any, dict[str, np.ndarray], float]:
    from mamrl.experiments.simulate import prepare_simulation, run_simulation

    sim = prepare_simulation(request)
    for note in sim.warnings:
        ui.say(f"warning: {note}")
    start = time.perf_counter()
    episodes = request.episodes
    with ui.ProgressReport("simulating", "episodes", enabled=episodes > request.batch_size or request.adapt, lines=False) as bar:
        bar.begin(episodes)
        per_episode = run_simulation(sim, on_episodes=bar.advance)
    return sim, per_episode, time.perf_counter() - start


def _report_simulation(sim: Any, per_episode: dict[str, np.ndarray], wall: float, json_out: Optional[Path],
                       csv_out: Optional[Path], out: Optional[Path]) -> None:
    """Write the requested files, then print the metrics table (simulate, evaluate)."""
    from mamrl.experiments.simulate import PAPER_METRIC_NOTE, write_outputs
    from mamrl.sim.metrics import summarise

    summary = summarise(per_episode)
    # Files first: a closed stdout (`| head`) must not cost the user their results.
    written = write_outputs(sim, per_episode, summary, wall, json_out=json_out, csv_out=csv_out, run_dir=out)
    console = _report_console(json_out)
    console.print(ui.metrics_table(summary, sim.title()))
    console.print(f"traffic: {sim.config['traffic']}", soft_wrap=True)
    if sim.failure_labels:
        console.print("failed links: " + ", ".join(sim.failure_labels))
    console.print(PAPER_METRIC_NOTE)
    ui.say(*written)


_POLICY = _opt("spa", "--policy", "-p", metavar="NAME", doc=(_SIM, "policy"))
_LOAD = _opt("0.3", "--load", "-l", metavar="LAMBDA", doc=(_SIM, "load"))
_SEED = _opt(0, "--seed", "-s", metavar="SEED", doc=(_SIM, "seed"))
_HORIZON = _opt(500, "--horizon", metavar="TICKS", doc=(_SIM, "horizon_ticks"))
_FAIL = _opt([], "--fail", metavar="LINK[@TICK]", doc=(_SIM, "failures"), help="Repeatable.")
_RECONVERGE = _opt(None, "--reconvergence-delay", metavar="TICKS", doc=(_SIM, "reconvergence_delay_ticks"))
_BUFFER = _opt(None, "--buffer-limit", metavar="N", doc=(_SIM, "buffer_limit"))
_DEMAND = _opt(None, "--demand", metavar="FILE", doc=(_SIM, "demand"))
_ADAPT = _opt(False, "--adapt", doc=(_SIM, "adapt"))
_NO_TITLE = _opt(False, "--no-title", help="Figures without their titles (panel titles naming a topology or link stay).")
_SIZE = _opt(None, "--size", metavar="WxH", help="Every figure this size, in inches (e.g. 7x3.5).")
_STYLE = _opt("default", "--style", metavar="NAME", help="default, or paper (serif, paper-sized fonts, no titles).")


def _figure_style(no_title: bool, size: Optional[str], style: str) -> Any:
    """The figure style context of the --no-title, --size and --style options."""
    from mamrl.plotting.style import figure_style, make_style

    return figure_style(make_style(no_title=no_title, size=size, style=style))


@app.command()
def simulate(
    topology: str = _opt("b4", "--topology", "-t", metavar="NAME|PATH", doc=(_SIM, "topology")),
    load: str = _LOAD, policy: str = _POLICY,
    episodes: int = _opt(20, "--episodes", "-n", metavar="N", doc=(_SIM, "episodes")),
    seed: int = _SEED, horizon: int = _HORIZON, fail: list[str] = _FAIL,
    reconvergence_delay: Optional[int] = _RECONVERGE, buffer_limit: Optional[int] = _BUFFER,
    demand: Optional[Path] = _DEMAND, demand_layout: str = _DEMAND_LAYOUT, traffic: str = _TRAFFIC,
    packet_size: Optional[str] = _PACKET_SIZE,
    queues: Optional[str] = _opt(None, "--queues", metavar="fifo|per-destination", doc=(_SIM, "queue_discipline"),
                                 help="A table policy serves the same packets either way."),
    batch_size: int = _opt(32, "--batch-size", metavar="B", doc=(_SIM, "batch_size")),
    json_out: Optional[Path] = _opt(None, "--json", metavar="FILE", help="Write config, per-episode metrics and summary as JSON (`-`: to stdout, the table then goes to stderr)."),
    csv_out: Optional[Path] = _opt(None, "--csv", metavar="FILE", help="Write one CSV row per episode."),
    out: Optional[Path] = _opt(None, "--out", metavar="DIR", help="Write a run directory (config.json, metrics.json, episodes.csv)."),
    adapt: bool = _ADAPT,
) -> None:
    """Simulate a routing policy (or a trained agent) and print every metric with a 95% confidence interval."""
    with ui.user_errors():
        from mamrl.experiments.simulate import check_outputs

        check_outputs(json_out, csv_out, out)
        sim, per_episode, wall = _simulation(topology, load, policy, episodes, seed, horizon, fail, reconvergence_delay,
                                             buffer_limit, demand, demand_layout, batch_size, queues, adapt, traffic,
                                             packet_size)
        _report_simulation(sim, per_episode, wall, json_out, csv_out, out)


@app.command()
def evaluate(
    policy: str = typer.Argument(..., metavar="RUN_DIR|CHECKPOINT|pretrained:NAME",
                                 help="A trained agent: a `mamrl train` run directory, a checkpoint file, or a shipped policy."),
    topology: Optional[str] = _opt(None, "--topology", "-t", metavar="NAME|PATH", help="Default: the one it was trained on (else b4)."),
    load: Optional[str] = _opt(None, "--load", "-l", metavar="LAMBDA", help="λ. Default: the one it was trained at (else 0.3)."),
    fail: Optional[list[str]] = _opt(None, "--fail", metavar="LINK[@TICK]", help="Failed links; repeatable. Default: those it was trained with."),
    episodes: int = _opt(20, "--episodes", "-n", metavar="N", doc=(_SIM, "episodes")),
    seed: int = _SEED,
    horizon: Optional[int] = _opt(None, "--horizon", metavar="TICKS", help="Episode length. Default: its training episodes' (else 500)."),
    buffer_limit: Optional[int] = _BUFFER, traffic: str = _TRAFFIC, packet_size: Optional[str] = _PACKET_SIZE,
    batch_size: int = _opt(32, "--batch-size", metavar="B", doc=(_SIM, "batch_size")),
    json_out: Optional[Path] = _opt(None, "--json", metavar="FILE", help="Write config, per-episode metrics and summary as JSON (`-`: to stdout, the table then goes to stderr)."),
    csv_out: Optional[Path] = _opt(None, "--csv", metavar="FILE", help="Write one CSV row per episode."),
    out: Optional[Path] = _opt(None, "--out", metavar="DIR", help="Write a run directory (config.json, metrics.json, episodes.csv)."),
    adapt: bool = _ADAPT,
) -> None:
    """Evaluate a trained agent (Q-routing, PG, the deep learner, a meta-initialisation) on any
    topology with its router count, load and failure set: the metrics table of `simulate`."""
    with ui.user_errors():
        from mamrl.experiments.simulate import check_outputs, evaluation_request

        check_outputs(json_out, csv_out, out)
        request = evaluation_request(policy, topology=topology, load=load, failures=None if fail is None else tuple(fail),
                                     episodes=episodes, seed=seed, horizon_ticks=horizon, buffer_limit=buffer_limit,
                                     batch_size=batch_size, adapt=adapt, traffic=traffic, packet_size=packet_size)
        sim, per_episode, wall = _run_request(request)
        _report_simulation(sim, per_episode, wall, json_out, csv_out, out)


@app.command("plot-topology")
def plot_topology_command(
    topology: str = _opt("b4", "--topology", "-t", metavar="NAME|PATH", help=_TOPOLOGY),
    output: Path = _opt(..., "--output", "-o", metavar="FILE", help="Figure file: .png, .pdf or .svg."),
    load: str = _LOAD, episodes: int = _opt(5, "--episodes", "-n", metavar="N", help="Episodes to average utilisation and losses over."),
    seed: int = _SEED, policy: str = _POLICY, horizon: int = _HORIZON, fail: list[str] = _FAIL,
    reconvergence_delay: Optional[int] = _RECONVERGE, buffer_limit: Optional[int] = _BUFFER,
    demand: Optional[Path] = _DEMAND, demand_layout: str = _DEMAND_LAYOUT, traffic: str = _TRAFFIC,
    packet_size: Optional[str] = _PACKET_SIZE,
    color_links: str = _opt("utilisation", "--color-links", metavar="METRIC", help=(
        "Colour links by utilisation (share of capacity in use) or loss (packets lost on the link per episode).")),
    color_routers: str = _opt("loss", "--color-routers", metavar="METRIC", help=(
        "Colour and size routers by loss (packets lost at the router per episode) or queue (mean queue length).")),
    no_title: bool = _NO_TITLE, size: Optional[str] = _SIZE, style: str = _STYLE,
) -> None:
    """Draw a topology with link utilisation or loss and per-router losses or queue lengths from a simulation of a
    policy or a trained agent (--policy PATH); topologies with latitude/longitude are drawn as a map."""
    with ui.user_errors():
        from mamrl.plotting.topology import check_figure_request, check_router_metric, save_figure, simulation_figure

        metric = check_figure_request(output, color_links)
        router_metric = check_router_metric(color_routers)
        look = _figure_style(no_title, size, style)
        sim, per_episode, _ = _simulation(topology, load, policy, episodes, seed, horizon, fail, reconvergence_delay,
                                          buffer_limit, demand, demand_layout, traffic=traffic, packet_size=packet_size)
        with look:
            save_figure(simulation_figure(sim, per_episode, metric, router_metric), output)
        ui.say(f"wrote {output}")


# ------------------------------------------------------------------------------ benchmarks
_BENCH_OUTPUT = _opt(None, "--output", "-o", metavar="FILE", help="Write (or replace) this benchmark's section of a markdown file.")


@app.command()
def bench(
    quick: bool = _opt(False, "--quick", help="Small horizons and repeats (a smoke test, seconds)."),
    repeats: Optional[int] = _opt(None, "--repeats", metavar="N", help="Timed repeats per figure (median); default 5, 2 with --quick."),
    output: Optional[Path] = _BENCH_OUTPUT,
) -> None:
    """Benchmark the compiled simulator against the Python oracle (single process, one core)."""
    with ui.user_errors():
        from mamrl.benchmarks import simulator
        from mamrl.benchmarks.common import command_line
        from mamrl.experiments.config import check_positive

        if repeats is not None:
            check_positive(repeats, "--repeats")
        check_output_file(output, "--output")
        settings = simulator.BenchSettings.quick(repeats or 2) if quick else simulator.BenchSettings(repeats=repeats or 5)
        ui.say(f"benchmark: {simulator.describe_settings(settings)}")
        with ui.ProgressReport("benchmarking", "", lines=False) as bar:
            result = simulator.run_all(settings, quick=quick, on_total=bar.begin, on_step=bar.advance)
        if output is not None:
            result.write(output, command_line("mamrl bench", "--quick" if quick else None, f"--repeats {settings.repeats}",
                                              f"--output {output}"))
        ui.print_tables(*(ui.table(t, c, r, left=k, compact=True) for t, c, r, k in result.console_tables()))
        ui.stdout().print(simulator.CONSOLE_NOTE)
        ui.say(*result.solver_notes, *([f"wrote {output}"] if output is not None else []))


@app.command("bench-deep")
def bench_deep(
    quick: bool = _opt(False, "--quick", help="Only b4, 4 and 8 episodes, one repeat (a smoke test)."),
    output: Optional[Path] = _BENCH_OUTPUT,
) -> None:
    """Benchmark the deep per-router learner: rollout decisions/s, TRPO iteration time, and the
    batched policy path against a loop over per-router modules."""
    with ui.user_errors():
        from mamrl.benchmarks import deep
        from mamrl.benchmarks.common import command_line, machine_info

        check_output_file(output, "--output")
        kwargs = {"topologies": ("b4",), "episodes": (4, 8), "repeats": 1} if quick else {}
        rows = deep.run_deep_bench(**kwargs, on_row=lambda r: ui.say(f"{r.topology} × {r.episodes} episodes done"))
        ui.print_tables(ui.table("Deep per-router policies (5×128)", deep.COLUMNS, [deep.row_cells(r) for r in rows]))
        if output is not None:
            command = command_line("mamrl bench-deep", "--quick" if quick else None, f"--output {output}")
            deep.write_section(output, deep.markdown_section(rows, command, machine_info(single_core=False)))
            ui.say(f"wrote {output}")


@app.command("bench-envs")
def bench_envs(
    quick: bool = _opt(False, "--quick", help="Only b4, 8 environments (a smoke test)."),
    checkpoint: Optional[str] = _opt(None, "--checkpoint", metavar="SPEC", help=(
        "The deep checkpoint `mamrl evaluate` is timed with (default: pretrained:b4-deep if shipped, else a fresh "
        "deep learner).")),
    output: Optional[Path] = _BENCH_OUTPUT,
) -> None:
    """Benchmark the RL environments: the native vector env against the raw simulator step on the
    same batch, the PettingZoo and Gymnasium envs' steps per second, and `mamrl evaluate` of a deep
    checkpoint against `mamrl simulate` with SPA."""
    with ui.user_errors():
        from mamrl.benchmarks import envs
        from mamrl.benchmarks.common import command_line, machine_info

        check_output_file(output, "--output")
        kwargs = {"topologies": ("b4",), "num_envs": (8,)} if quick else {}
        vector_rows, single_rows = envs.run_envs_bench(**kwargs, on_row=ui.say)
        evaluate_rows = [envs.bench_evaluate(envs.default_checkpoint() if checkpoint is None else checkpoint,
                                             episodes=4 if quick else 20)]
        ui.print_tables(ui.table("Vector environment", envs.VECTOR_COLUMNS, [envs.vector_cells(r) for r in vector_rows]),
                        ui.table("Single-episode environments", envs.SINGLE_COLUMNS, [envs.single_cells(r) for r in single_rows]),
                        ui.table("mamrl evaluate against mamrl simulate", envs.EVALUATE_COLUMNS,
                                 [envs.evaluate_cells(r) for r in evaluate_rows]))
        if output is not None:
            command = command_line("mamrl bench-envs", "--quick" if quick else None,
                                   None if checkpoint is None else f"--checkpoint {checkpoint}", f"--output {output}")
            envs.write_section(output, envs.markdown_section(vector_rows, single_rows, command, machine_info(), evaluate_rows))
            ui.say(f"wrote {output}")


@app.command("bench-meta")
def bench_meta_command(
    quick: bool = _opt(False, "--quick", help="Short episodes, 3 per task, one timed iteration (a smoke test)."),
    iterations: int = _opt(3, "--iterations", "-n", metavar="N", help="Timed meta-iterations (after one warm-up)."),
    first_order: bool = typer.Option(True, "--first-order/--no-first-order", help="Also time the first-order variant."),
    output: Optional[Path] = _BENCH_OUTPUT,
    from_checkpoint: Optional[Path] = _opt(None, "--from-checkpoint", metavar="PATH", help=(
        "Also time iterations from this trained b4 meta-initialisation (a `mamrl train -a maml` checkpoint.pt).")),
) -> None:
    """Benchmark one MAML-TRPO meta-iteration on b4 in the paper authors' configuration: wall
    time by phase and peak memory."""
    with ui.user_errors():
        from mamrl.benchmarks import meta
        from mamrl.benchmarks.common import command_line, machine_info
        from mamrl.experiments.config import check_positive

        check_positive(iterations, "--iterations")
        check_output_file(output, "--output")
        results = meta.run_variants(iterations, quick=quick, first_order=first_order, from_checkpoint=from_checkpoint,
                                    on_iteration=lambda label, k, s: ui.say(f"{label} {k}: {s:.2f} s"))
        ui.print_tables(ui.table("MAML-TRPO meta-iteration (b4, λ = 0.3)", meta.COLUMNS, [meta.row_cells(r) for r in results], left=2))
        if output is not None:
            command = command_line("mamrl bench-meta", "--quick" if quick else f"-n {iterations}",
                                   f"--from-checkpoint {from_checkpoint}" if from_checkpoint is not None else None, f"--output {output}")
            meta.write_section(output, meta.markdown_section(results, command, machine_info(single_core=False)))
            ui.say(f"wrote {output}")


@app.command("bench-scaling")
def bench_scaling_command(
    quick: bool = _opt(False, "--quick", help="Tiny sizes on b4 and a small topohub network (a smoke test)."),
    output: Optional[Path] = _opt(None, "--output", "-o", metavar="FILE", help=(
        "Write (or replace) the scaling section of this markdown file, and its figure under docs/results/scaling/ beside it.")),
    skip_ray: bool = _opt(False, "--skip-ray", help="Do not time the sweep on a local Ray instance."),
    learn_iterations: Optional[int] = _opt(None, "--learn-iterations", metavar="N", help=(
        "TRPO iterations of the deep learner on the 143-router network (default 10; 2 with --quick).")),
) -> None:
    """Benchmark scaling: simulator throughput and training time versus routers (up to a
    143-router Topology Zoo network), learning on it, and a sweep's wall time on 1 and 2 local
    workers and on Ray."""
    with ui.user_errors():
        from mamrl.benchmarks import scaling
        from mamrl.benchmarks.common import command_line

        check_output_file(output, "--output")
        settings = scaling.settings_for(quick=quick, learn_iterations=learn_iterations)
        result = scaling.run_scaling(settings, skip_ray=skip_ray, progress=ui.stderr().print)
        ui.print_tables(*(ui.table(t, c, r) for t, c, r in scaling.console_tables(result, settings)))
        console = ui.wide_stdout()
        for line in result.learning.lines():
            console.print(f"deep learner on {result.learning.topology}, {line}")
        console.print(scaling.identical_line(result.sweeps))
        if output is not None:
            command = command_line("mamrl bench-scaling", "--quick" if quick else None, "--skip-ray" if skip_ray else None,
                                   f"--learn-iterations {learn_iterations}" if learn_iterations is not None else None,
                                   f"--output {output}")
            ui.say(*(f"wrote {path}" for path in scaling.write_report(result, output, command)))


# ------------------------------------------------------------------------------ experiments
_SW = "mamrl.experiments.config.SweepConfig"


@app.command()
def sweep(
    preset: Optional[str] = _opt(None, "--preset", metavar="NAME", help="Base config: quick (default without --config) or paper."),
    config_file: Optional[Path] = _opt(None, "--config", "-c", metavar="FILE", help="Sweep config file (.toml or .json); flags override it."),
    topologies_opt: Optional[str] = _opt(None, "--topologies", "-t", metavar="LIST", doc=(_SW, "topologies"), help="Comma-separated."),
    algorithms: Optional[str] = _opt(None, "--algorithms", "-a", metavar="LIST", doc=(_SW, "algorithms"), help="Comma-separated."),
    loads: Optional[str] = _opt(None, "--loads", "-l", metavar="LIST", doc=(_SW, "loads"), help="Comma-separated."),
    seeds: Optional[str] = _opt(None, "--seeds", "-s", metavar="LIST", doc=(_SW, "seeds"), help="Comma-separated."),
    train_episodes: Optional[int] = _opt(None, "--train-episodes", metavar="N", doc=(_SW, "train_episodes")),
    eval_episodes: Optional[int] = _opt(None, "--eval-episodes", metavar="N", doc=(_SW, "eval_episodes")),
    horizon: Optional[int] = _opt(None, "--horizon", metavar="TICKS", doc=(_SW, "horizon_ticks")),
    eval_horizon: Optional[int] = _opt(None, "--eval-horizon", metavar="TICKS", doc=(_SW, "eval_horizon_ticks")),
    workers: Optional[int] = _opt(None, "--workers", "-j", metavar="N", help=_WORKERS),
    backend: str = _opt("local", "--backend", metavar="NAME", help=_BACKEND),
    address: Optional[str] = _opt(None, "--address", metavar="HOST:PORT", help=_ADDRESS),
    results: Optional[Path] = _opt(None, "--results", "-o", metavar="FILE", doc=(_SW, "results"), help="Resumed when re-run."),
    dry_run: bool = _opt(False, "--dry-run", help="Print the resolved config and the cells left to run, then exit."),
) -> None:
    """Run the load sweep (E1): train and evaluate every topology × algorithm × load × seed cell.

    Cells run in parallel worker processes, or on a Ray cluster with --backend ray; every
    finished cell is appended to the results CSV at once, so an interrupted sweep resumes where it
    stopped and a finished one is not recomputed.
    """
    state = {"ran": 0, "results": ""}
    with ui.user_errors(interrupted=lambda: f"interrupted after {state['ran']} new cell(s); {state['results']} keeps every "
                                            "finished cell — re-run the same command to resume"):
        from mamrl.experiments.config import build_sweep_config, split_list
        from mamrl.experiments.saturation import RULE_TEXT as SATURATION_RULE
        from mamrl.experiments.saturation import SATURATION_COLUMNS, saturation_rows
        from mamrl.experiments.sweep import SweepRun, aggregate, row_key, row_summary, sweep_work

        overrides: dict[str, Any] = {name: split_list(value, f"--{name}", kind) for name, value, kind in (
            ("topologies", topologies_opt, "str"), ("algorithms", algorithms, "str"), ("loads", loads, "str"),
            ("seeds", seeds, "int")) if value is not None}
        overrides.update({name: value for name, value in (
            ("train_episodes", train_episodes), ("eval_episodes", eval_episodes), ("horizon_ticks", horizon),
            ("eval_horizon_ticks", eval_horizon), ("workers", workers), ("results", results and str(results))) if value is not None})
        flag = {"horizon_ticks": "--horizon", "eval_horizon_ticks": "--eval-horizon", "results": "--results"}
        config = build_sweep_config(preset=preset, file=config_file, overrides=overrides,
                                    override_label=lambda key: flag.get(key, "--" + key.replace("_", "-")))
        run = SweepRun(config, backend, address)
        state["results"] = config.results
        if dry_run:
            ui.stdout().print(json.dumps({**config.as_dict(), "config_hash": config.config_hash()}, indent=2))
            ui.stdout().print(run.plan(), soft_wrap=True)
            return
        work = sweep_work([config])
        with ui.ProgressReport("sweep", "cells") as bar:
            def on_start(done_keys: list[tuple], total: int) -> None:
                ui.say(run.start_message(len(done_keys), total))
                bar.begin(total, len(done_keys), work.finished((0, key) for key in done_keys) if done_keys else None)

            def on_row(row: dict[str, Any], done: int, total: int) -> None:
                state["ran"] += 1
                bar.update(done, total, row_summary(row), work.finished([(0, row_key(row))]))

            outcome = run.run(on_start=on_start, on_row=on_row)
        console = ui.wide_stdout()
        console.print(f"sweep finished: {outcome.total_cells} cells ({outcome.ran} run, {outcome.skipped} already done) "
                      f"in {outcome.wall_time_s:.1f} s → {outcome.results}", soft_wrap=True)
        console.print(ui.table("Saturation (queues bounded / growing)", SATURATION_COLUMNS,
                               saturation_rows(aggregate(outcome.rows)), left=5))
        console.print("Rule: " + SATURATION_RULE.replace("*", ""), soft_wrap=True)
        console.print(f"next: mamrl plot {outcome.results} --output DIR", soft_wrap=True)


@app.command()
def plot(
    results: Path = typer.Argument(..., metavar="RESULTS_CSV", help="Results CSV written by `mamrl sweep`."),
    output: Path = _opt(..., "--output", "-o", metavar="DIR", help="Directory for the figures and results.md."),
    formats: list[str] = _FORMATS,
    relative_load: bool = _opt(False, "--relative-load", help="Plot against λ/λ* (the share of the capacity limit) instead of λ."),
    no_title: bool = _NO_TITLE, size: Optional[str] = _SIZE, style: str = _STYLE,
) -> None:
    """Plot sweep results (delivery time, sojourn time, loss/delivered vs load) and write a markdown table."""
    with ui.user_errors():
        from mamrl.plotting.sweep import write_sweep_report

        with _figure_style(no_title, size, style):
            written = write_sweep_report(results, output, formats=formats, relative_load=relative_load)
        ui.say(*(f"wrote {path}" for path in written))


@app.command()
def saturation(
    topology: str = _opt("b4", "--topology", "-t", metavar="NAME|PATH", help=_TOPOLOGY),
    algorithm: str = _opt("spa", "--algorithm", "-a", metavar="NAME", help=(
        "spa, ecmp, max-throughput, min-delay, backpressure, sp-backpressure, random, q-routing, pg or mamrl (trained at each probed load).")),
    checkpoint: Optional[Path] = _opt(None, "--checkpoint", metavar="FILE", help="Evaluate this saved agent at every load instead (no training)."),
    low: str = _opt("0.01", "--low", metavar="LAMBDA", help="Lower end of the search (must be bounded)."),
    high: str = _opt("0.5", "--high", metavar="LAMBDA", help="Upper end of the search."),
    tolerance: str = _opt("0.005", "--tolerance", metavar="LAMBDA", help="Stop when the bracket is this narrow."),
    horizon: int = _opt(2000, "--horizon", metavar="TICKS", help="Evaluation episode length (longer = sharper)."),
    episodes: int = _opt(10, "--episodes", "-n", metavar="N", help="Evaluation episodes per seed and probe."),
    max_episodes: int = _opt(80, "--max-episodes", metavar="N", help="Doubling limit for undetermined probes."),
    seeds: str = _opt("0", "--seeds", "-s", metavar="LIST", help="Comma-separated seeds, pooled."),
    train_episodes: Optional[int] = _opt(None, "--train-episodes", metavar="N", help="Training episodes per probe (learning algorithms; default 2000)."),
    train_horizon: Optional[int] = _opt(None, "--train-horizon", metavar="TICKS", help="Training episode length (learning algorithms; default 500)."),
    algorithm_config: Optional[str] = _opt(None, "--algorithm-config", metavar="JSON", help='Hyper-parameters, e.g. \'{"step_size": 0.1}\'.'),
    json_out: Optional[Path] = _opt(None, "--json", metavar="FILE", help="Write the probes and the bracket as JSON (`-`: to stdout, the tables then go to stderr)."),
) -> None:
    """Bisect the load for the saturation point of one algorithm on one topology."""
    with ui.user_errors():
        from mamrl.experiments.saturation import RULE_TEXT, PROBE_COLUMNS, SaturationRequest, run_saturation_request

        check_output_file(json_out, "--json")
        request = SaturationRequest(topology, algorithm, None if checkpoint is None else str(checkpoint), low, high, tolerance,
                                    horizon, episodes, max_episodes, seeds, train_episodes, train_horizon, algorithm_config)
        result = run_saturation_request(request, on_start=ui.say, on_probe=lambda line: ui.say(f"  {line}"), json_out=json_out)
        _say_wrote(json_out)
        console = _report_console(json_out)
        console.print(ui.table(f"Saturation search: {result.algorithm} on {result.topology}", PROBE_COLUMNS, result.probe_rows(), left=0))
        console.print(result.describe(), soft_wrap=True)
        console.print("Rule: " + RULE_TEXT.replace("*", ""), soft_wrap=True)


_TR = "mamrl.training.TrainConfig"
_FX = "mamrl.experiments.failures.config.FailureExperimentConfig"


@app.command()
def train(
    topology: str = _opt("b4", "--topology", "-t", metavar="NAME|PATH", help=_TOPOLOGY),
    load: str = _opt("0.3", "--load", "-l", metavar="LAMBDA", doc=(_TR, "load"), help="Or a multiple of λ*, e.g. 0.9x."),
    algorithm: str = _opt("mamrl", "--algorithm", "-a", metavar="NAME", doc=(_TR, "algorithm")),
    episodes: int = _opt(1000, "--episodes", "-n", metavar="N", doc=(_TR, "episodes")),
    seed: int = _opt(0, "--seed", metavar="SEED", doc=(_TR, "seed")),
    horizon: int = _opt(500, "--horizon", metavar="TICKS", doc=(_TR, "horizon_ticks")),
    fail: Optional[list[str]] = _opt(None, "--fail", metavar="LINK[@TICK]", doc=(_TR, "failures"), help="E.g. D-E@100; repeatable."),
    set_: Optional[list[str]] = _opt(None, "--set", metavar="KEY=VALUE", doc=(_TR, "algorithm_config"), help="E.g. reward=packet; repeatable; JSON values."),
    chunk: int = _opt(0, "--chunk", metavar="N", doc=(_TR, "chunk_episodes")),
    eval_episodes: int = _opt(20, "--eval-episodes", metavar="N", doc=(_TR, "eval_episodes"), help="0 = none."),
    out: Path = _opt(Path("runs/train"), "--out", "-o", metavar="DIR", help="Run directory (resumed if it holds this configuration; a larger -n extends it)."),
    tensorboard: Optional[Path] = _opt(None, "--tensorboard", metavar="DIR", help=(
        "Also log the learning curves (step = episodes) and the config to TensorBoard in DIR; a resumed run appends.")),
    workers: int = _opt(1, "--workers", "-j", metavar="N", help="maml: processes running each meta-iteration's tasks (1 = in this process). "
                        "With --backend ray: the local instance's CPUs, or at most N at once on a cluster."),
    backend: str = _opt("local", "--backend", metavar="NAME", help=_BACKEND + " maml only: its meta-iterations' tasks."),
    address: Optional[str] = _opt(None, "--address", metavar="HOST:PORT", help=_ADDRESS),
) -> None:
    """Train one algorithm on one configuration: live summary, learning curves (CSV and PNG, optionally
    TensorBoard), atomic checkpoints; re-running the same command after a kill resumes where it stopped."""
    with ui.user_errors():
        from mamrl.experiments.config import parse_assignments, parse_load
        from mamrl.training import TrainConfig, chunk_summary, train_command

        cfg = TrainConfig(topology, parse_load(load), horizon, tuple(fail or ()), algorithm, parse_assignments(set_, "--set"),
                          episodes, seed, chunk, eval_episodes)
        with ui.ProgressReport("train", "episodes", lines=False) as bar:
            def on_chunk(row: dict[str, Any]) -> None:
                bar.update(row["episodes"], episodes, chunk_summary(row))
                ui.stderr().print(f"[{row['episodes']}/{episodes}] {chunk_summary(row)}")

            lines = train_command(cfg, out, on_chunk=on_chunk, tensorboard_dir=tensorboard, workers=workers, backend=backend,
                                  address=address, on_ready=lambda total: bar.begin(total))
        for line in lines:
            ui.stdout().print(line)


@app.command()
def failures(
    preset: Optional[str] = _opt(None, "--preset", metavar="NAME", help="Base config: quick (default without --config) or paper."),
    config_file: Optional[Path] = _opt(None, "--config", "-c", metavar="FILE", help="Experiment config file (.toml or .json); flags override it."),
    topology: Optional[str] = _opt(None, "--topology", "-t", metavar="NAME|PATH", doc=(_FX, "topology")),
    failure: Optional[list[str]] = _opt(None, "--failure", "-f", metavar="LINK", doc=(_FX, "failures"), help="Repeatable or comma-separated."),
    held_out: Optional[list[str]] = _opt(None, "--held-out", metavar="LINK", doc=(_FX, "held_out"), help="Repeatable or comma-separated."),
    controllers: Optional[str] = _opt(None, "--controllers", "-a", metavar="LIST", doc=(_FX, "controllers"), help="Comma-separated."),
    episodes: Optional[int] = _opt(None, "--episodes", "-n", metavar="N", doc=(_FX, "episodes")),
    fail_episode: Optional[int] = _opt(None, "--fail-episode", metavar="N", doc=(_FX, "fail_episode")),
    fail_tick: Optional[int] = _opt(None, "--fail-tick", metavar="TICK", doc=(_FX, "fail_tick")),
    episodes_per_step: Optional[int] = _opt(None, "--episodes-per-step", metavar="N", doc=(_FX, "episodes_per_step")),
    seeds: Optional[list[str]] = _opt(None, "--seeds", "-s", metavar="LIST", doc=(_FX, "seeds"), help="Comma-separated or repeated."),
    load: Optional[str] = _opt(None, "--load", "-l", metavar="LAMBDA", doc=(_FX, "load")),
    horizon: Optional[int] = _opt(None, "--horizon", metavar="TICKS", doc=(_FX, "horizon_ticks")),
    allow_infeasible: bool = _opt(False, "--allow-infeasible", doc=(_FX, "allow_infeasible")),
    extended_tests: bool = _opt(False, "--extended-tests", doc=(_FX, "extended_tests")),
    meta_init: Optional[Path] = _opt(None, "--meta-init", metavar="PATH", doc=(_FX, "meta_init")),
    meta_iterations: Optional[int] = _opt(None, "--meta-iterations", metavar="N", doc=(_FX, "meta_iterations")),
    output: Optional[Path] = _opt(None, "--output", "-o", metavar="DIR", doc=(_FX, "output"), help="Resumed when re-run."),
    workers: Optional[int] = _opt(None, "--workers", "-j", metavar="N", doc=(_FX, "workers")),
    backend: str = _opt("local", "--backend", metavar="NAME", help=_BACKEND),
    address: Optional[str] = _opt(None, "--address", metavar="HOST:PORT", help=_ADDRESS),
    formats: list[str] = typer.Option(["png", "pdf"], "--format", metavar="FMT", help="Figure format: png, pdf, svg. Repeatable."),
    dry_run: bool = _opt(False, "--dry-run", help="Print the resolved config and the runs left to run, then exit."),
    redraw: bool = _opt(False, "--redraw", help=(
        "Run nothing: draw table2 and the figures again from --output's curves.csv and config.json (its finished runs), "
        "e.g. from a committed results folder.")),
    no_title: bool = _NO_TITLE, size: Optional[str] = _SIZE, style: str = _STYLE,
) -> None:
    """Run the link-failure experiment (E2; Figs. 5-7, Table 2): every controller learns online
    through a link failure; curves, the episodes-to-adapt table and figures.

    Runs (failure × controller × seed) go in parallel, locally or on a Ray cluster (--backend ray);
    each finished run is appended to curves.csv at once, so an interrupted experiment resumes
    where it stopped.
    """
    state = {"ran": 0, "output": ""}
    with ui.user_errors(interrupted=lambda: f"interrupted after {state['ran']} new run(s); {state['output']}/curves.csv keeps "
                                            "every finished run — re-run the same command to resume"):
        from mamrl.experiments.failures.command import OPTION_FLAGS, FailureCommand, figure_formats
        from mamrl.experiments.failures.experiment import failure_work, run_key
        from mamrl.plotting.failures import TABLE2_COLUMNS, redraw_failure_report, table2_console_rows, write_failure_report

        values = {"failures": failure, "held_out": held_out, "controllers": controllers, "seeds": seeds, "load": load,
                  "topology": topology, "episodes": episodes, "fail_episode": fail_episode, "fail_tick": fail_tick,
                  "episodes_per_step": episodes_per_step, "horizon_ticks": horizon, "workers": workers,
                  "meta_iterations": meta_iterations, "meta_init": meta_init, "output": output,
                  "allow_infeasible": allow_infeasible or None, "extended_tests": extended_tests or None}
        look = _figure_style(no_title, size, style)  # bad figure options are refused before any work
        if redraw:
            run_options = {"--preset": preset, "--config": config_file, "--backend": None if backend == "local" else backend,
                           "--address": address, "--dry-run": dry_run or None,
                           **{OPTION_FLAGS.get(k, "--" + k.replace("_", "-")): v for k, v in values.items() if k != "output"}}
            given = [flag for flag, value in run_options.items() if value not in (None, [], False)]
            if output is None:
                raise MamrlError("--redraw needs --output DIR: the experiment folder to draw from")
            if given:
                raise MamrlError(f"--redraw draws from {output}'s own files and takes no run options (got {', '.join(given)})")
            with look:
                written, rows, schedule, partial = redraw_failure_report(output, formats=figure_formats(formats))
            console = ui.wide_stdout()
            console.print(f"redrew {output} from its {len({run_key(r) for r in rows})} finished runs"
                          + (f" ({partial} unfinished left out)" if partial else ""), soft_wrap=True)
            console.print(ui.table("Episodes to adapt after the failure (rules: table2.md in the output folder)", TABLE2_COLUMNS,
                                   table2_console_rows(rows, **schedule), left=2))
            ui.say(*(f"wrote {path}" for path in written))
            return
        command = FailureCommand.from_options(preset, config_file, values, formats, backend, address)
        state["output"] = command.config.output
        if dry_run:
            ui.stdout().print(json.dumps({**command.config.as_dict(), "config_hash": command.config.config_hash()}, indent=2))
            ui.stdout().print(command.plan(), soft_wrap=True)
            return
        work = failure_work([command.config])  # a deep run costs a hundred classical ones: the time left follows cost
        with ui.ProgressReport("failures", "runs") as bar:
            def on_start(done_keys: list[tuple], total: int) -> None:
                ui.say(command.start_message(len(done_keys), total))
                bar.begin(total, len(done_keys), work.finished((0, key) for key in done_keys) if done_keys else None)

            def on_run(result: Any, done: int, total: int) -> None:
                state["ran"] += 1
                bar.update(done, total, command.run_summary(result), work.finished([(0, result.run.key)]))

            outcome = command.run(on_start=on_start, on_run=on_run, on_meta_chunk=lambda row: ui.say(command.meta_message(row)))
        with look:
            written = write_failure_report(outcome.output, formats=command.formats, rows=outcome.rows)
        console = ui.wide_stdout()
        console.print(f"failure experiment finished: {outcome.total_runs} runs ({outcome.ran} run, {outcome.skipped} already done) "
                      f"in {outcome.wall_time_s:.1f} s → {outcome.output}", soft_wrap=True)
        console.print(ui.table("Episodes to adapt after the failure (rules: table2.md in the output folder)", TABLE2_COLUMNS,
                               table2_console_rows(outcome.rows, episodes_per_step=command.config.episodes_per_step,
                                                   fail_tick=command.config.fail_tick), left=2))
        ui.say(*(f"wrote {path}" for path in written))


@app.command()
def reproduce(
    topology: Optional[list[str]] = _opt(None, "--topology", "-t", metavar="NAME|PATH", help="Topology (repeatable). Default: b4 for quick; b4, geant and att for paper."),
    preset: str = _opt("quick", "--preset", metavar="NAME", help="quick (reduced budgets: b4 in under 20 minutes on 2 cores) or paper (the paper's budgets: days of CPU)."),
    output: Optional[Path] = _opt(None, "--output", "-o", metavar="DIR", help="Report folder (default: runs/reproduce-<preset>); re-running resumes into it."),
    workers: int = _opt(2, "--workers", "-j", metavar="N", help="Parallel worker processes of the sweep, saturation and failure stages (1 = in process)."),
    backend: str = _opt("local", "--backend", metavar="NAME", help=_BACKEND),
    address: Optional[str] = _opt(None, "--address", metavar="HOST:PORT", help=_ADDRESS),
    set_: Optional[list[str]] = _opt(None, "--set", metavar="KEY=VALUE", help=(
        "Change a preset value by dotted name, e.g. sweep.train_episodes=500 or failures.meta_iterations=20 (repeatable; JSON values).")),
    dry_run: bool = _opt(False, "--dry-run", help="Print the resolved configuration, the stages already done and each stage's finished work, then exit."),
    stage: Optional[str] = _opt(None, "--stage", metavar="NAME", help=(
        "Run (or resume) this stage alone: e1, saturation or meta (any order), e2 (after meta) or report (after all). "
        "Default: every stage in order.")),
    no_title: bool = _NO_TITLE, size: Optional[str] = _SIZE, style: str = _STYLE,
) -> None:
    """Reproduce the paper's evaluation in one command: E1 (load sweep, Fig. 4, the λ = 0.5
    comparison), saturation loads, meta-training, E2 (link failures, Figs. 5-7, Table 2) and
    REPORT.md with the paper's numbers beside ours.

    Every stage is resumable: re-running the same command after an interruption skips finished
    stages and finished cells and runs; a different configuration in the same folder is refused.
    """
    state = {"stage": "start-up", "output": ""}
    with ui.user_errors(interrupted=lambda: f"interrupted during {state['stage']}; {state['output']} keeps every finished stage, "
                                            "cell and run — re-run the same command to resume"):
        from mamrl.experiments.config import parse_assignments
        from mamrl.experiments.reproduce_config import build_reproduce_config, check_stage_name, stages_done
        from mamrl.report.reproduce import StageListener, run_reproduce, stage_progress

        check_stage_name(stage)
        _figure_style(no_title, size, style)  # bad figure options are refused before any work
        config = build_reproduce_config(preset=preset, topologies=topology or None, overrides=parse_assignments(set_, "--set"),
                                        workers=workers, backend=backend, address=address, output=output)
        state["output"] = str(config.output)
        if dry_run:
            ui.stdout().print(json.dumps({**config.as_dict(), "config_hash": config.config_hash()}, indent=2), soft_wrap=True)
            ui.stdout().print(f"stages already done in {config.output}: {', '.join(stages_done(config)) or 'none'}", soft_wrap=True)
            for line in stage_progress(config):
                ui.stdout().print(f"  {line}", soft_wrap=True)
            return

        class Listener(StageListener):
            """One progress bar per stage (a line per step when stderr is not a terminal)."""

            def opened(self, done: Any) -> None:
                ui.say(config.describe_start(done))

            def stage_started(self, name: str, title: str, total: int, completed: int, unit: str) -> None:
                state["stage"] = title
                self.bar = ui.ProgressReport(config.stage_label(name, title), unit).__enter__()
                self.bar.begin(total, completed)

            def advanced(self, name: str, completed: int, total: int, detail: str, share: float | None = None) -> None:
                self.bar.update(completed, total, detail, share)

            def skipped(self, name: str, completed: int, total: int, detail: str, share: float | None = None) -> None:
                self.bar.skip(completed, total, detail, share)

            def stage_finished(self, name: str, title: str, wall_s: float, skipped: bool) -> None:
                if getattr(self, "bar", None) is not None:
                    self.bar.__exit__()
                    self.bar = None
                ui.say(f"{config.stage_label(name, title)}: {'already done' if skipped else 'done'} ({wall_s:.0f} s)")

            def notice(self, message: str) -> None:
                ui.say(message)

        with _figure_style(no_title, size, style):
            outcome = run_reproduce(config, listener=Listener(), only_stage=stage)
        ui.wide_stdout().print(outcome.summary(), soft_wrap=True)


# ------------------------------------------------------------------------------ entry point
def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, turning stray user errors into one line and exit 2."""
    try:
        app(args=argv, prog_name="mamrl")
    except BrokenPipeError:
        ui.quiet_stdout()
        return 1
    except MamrlError as exc:
        ui.print_error(str(exc))
        return 2
    except OSError as exc:
        ui.print_error(ui.os_error_message(exc))
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
