"""The `mamrl` command line: list topologies, simulate a routing policy, benchmark, plot, run the load
sweep, plot its results and search for saturation loads.

Every user mistake (a `MamrlError`, or an output file that cannot be written) ends the command with
one line `error: <message>` on stderr and exit code 2, never a traceback. typer's own usage errors
(an unknown option, a non-integer `--episodes`) keep typer's format and also exit with 2.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.table import Table

import mamrl
from mamrl.errors import MamrlError

app = typer.Typer(
    name="mamrl",
    help="Packet routing in WANs: a fast packet-level simulator, routing baselines and MAMRL.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

PAPER_METRIC_NOTE = (
    "Note: the paper's delivery time averages over delivered packets only, so a policy that delivers "
    "few packets looks fast; read it beside the delivered fraction and the sojourn time of every packet (SPEC §1)."
)

# The paper's metric first, with the two figures that keep it honest right beside it.
_LEADING_METRICS = ("mean_delivery_time", "delivered_fraction", "mean_sojourn_time")


# ------------------------------------------------------------------------------ error handling
def _one_line(message: str) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip()) or "unknown error"


def _print_error(message: str) -> None:
    sys.stderr.write(f"error: {_one_line(message)}\n")
    sys.stderr.flush()


def _os_error_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _quiet_stdout() -> None:
    """After the reader of stdout went away (`| head`): send further output, including the
    interpreter's final flush, to /dev/null instead of raising BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


@contextmanager
def _termination_as_interrupt() -> Iterator[None]:
    """Make SIGTERM and SIGHUP (`kill`, a closed terminal, the end of a batch job) raise
    KeyboardInterrupt like Ctrl-C, so long commands record the interrupted attempt (a reproduction's
    stage wall time), keep what they finished and print how to resume instead of dying silently.
    A signal the caller chose to ignore (`nohup` ignores SIGHUP) stays ignored."""
    import signal
    import threading

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    replaced: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
                replaced[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in replaced.items():
            signal.signal(signum, handler)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn MamrlError / OSError into `error: ...` on stderr and exit code 2, mamrl's own
    warnings (defaults taken while importing a topology) into `warning: ...` lines, and SIGTERM /
    SIGHUP into KeyboardInterrupt (see `_termination_as_interrupt`)."""
    import warnings

    from mamrl.topologies.wild import TopologyWarning

    def show(message, category, *rest, **kwargs):
        if issubclass(category, TopologyWarning):
            _stderr().print(f"warning: {_one_line(str(message))}", markup=False)
        else:
            previous(message, category, *rest, **kwargs)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        with _termination_as_interrupt():
            yield
    except BrokenPipeError:
        _quiet_stdout()
        raise typer.Exit(1) from None
    except MamrlError as exc:
        _print_error(str(exc))
        raise typer.Exit(2) from None
    except OSError as exc:
        _print_error(_os_error_message(exc))
        raise typer.Exit(2) from None
    finally:
        warnings.showwarning = previous


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mamrl {mamrl.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Packet routing in WANs: a fast packet-level simulator, routing baselines and MAMRL."""


# ------------------------------------------------------------------------------ shared set-up
def parse_load(text: str) -> float:
    """The `--load` value: a finite number >= 0 (packets per router per tick)."""
    try:
        load = float(str(text).strip())
    except ValueError:
        raise MamrlError(f"--load must be a number (packets per router per tick), got {text!r}") from None
    if not math.isfinite(load) or load < 0:
        raise MamrlError(f"--load must be a finite number >= 0 (packets per router per tick), got {text!r}")
    return load


def _check_positive(value: int, option: str) -> None:
    if value < 1:
        raise MamrlError(f"{option} must be an integer >= 1, got {value}")


def _link_label(topology: Any, link: int) -> str:
    """`A-B` by router names, with the link's own name in brackets when it differs."""
    from mamrl.meta.tasks import link_label

    ends = link_label(topology, link)
    name = topology.link_name(link)
    return ends if name == ends else f"{ends} ({name})"


@dataclass(frozen=True)
class RunSetup:
    """A resolved simulation: parameters, policy tables and the config that describes them."""

    params: Any  # SimParams
    tables: Any  # RoutingTables, or None for a policy run by its own driver (backpressure)
    policy: str
    config: dict[str, Any]
    failure_labels: tuple[str, ...]
    agent: Any = None
    """The RoutingAgent when `tables` is None."""


QUEUE_ROUTERS = ("backpressure", "sp-backpressure")
"""Policies that route by per-destination queues in their own compiled driver (not tables)."""


def prepare_run(
    *,
    topology: str,
    load: str,
    policy: str,
    episodes: int,
    seed: int,
    horizon: int,
    fail: list[str],
    reconvergence_delay: Optional[int],
    buffer_limit: Optional[int],
    demand: Optional[Path],
    batch_size: int,
    queue_discipline: str | None = None,
    demand_layout: str = "auto",
) -> RunSetup:
    """Validate the options and build the simulation they describe (raises MamrlError).
    `queue_discipline` None: per-destination for backpressure, FIFO for every other policy."""
    from mamrl.algorithms import ALIASES, make_agent, make_policy
    from mamrl.sim.params import LinkFailure, SimParams
    from mamrl.topologies import load_topology

    _check_positive(episodes, "--episodes")
    _check_positive(batch_size, "--batch-size")
    _check_positive(horizon, "--horizon")
    if buffer_limit is not None:
        _check_positive(buffer_limit, "--buffer-limit")
    if seed < 0:
        raise MamrlError(f"--seed must be >= 0, got {seed}")
    load_value = parse_load(load)
    policy_key = ALIASES.get(policy.strip().lower(), policy.strip().lower())
    if reconvergence_delay is not None:
        from mamrl.algorithms import STATIC_POLICY_NAMES

        if policy_key not in STATIC_POLICY_NAMES:
            raise MamrlError(
                f"--reconvergence-delay applies to {', '.join(STATIC_POLICY_NAMES)}, not {policy!r}"
            )
        if reconvergence_delay < 0:
            raise MamrlError(f"--reconvergence-delay must be >= 0 ticks, got {reconvergence_delay}")
    agent = None
    if policy_key in QUEUE_ROUTERS:
        if queue_discipline == "fifo":
            raise MamrlError(f"{policy_key} routes by per-destination queues: use --queues per-destination (or leave it out)")
        queue_discipline = "per-destination"
        routing = agent = make_agent(policy_key)
    else:
        routing = make_policy(policy_key, reconvergence_delay_ticks=reconvergence_delay)
    topo = load_topology(topology, demand=demand, demand_layout=demand_layout)
    failures = tuple(LinkFailure.parse(topo, spec) for spec in fail)
    seen: set[int] = set()
    for failure in failures:
        if failure.link in seen:
            raise MamrlError(f"--fail names link {topo.link_name(failure.link)!r} more than once")
        seen.add(failure.link)
    params = SimParams(topo, load_value, horizon_ticks=horizon, failures=failures, buffer_limit=buffer_limit,
                       queue_discipline=queue_discipline or "fifo")
    for failure in failures:
        if failure.tick >= horizon:
            _stderr().print(
                f"warning: failure of {_link_label(topo, failure.link)} at tick {failure.tick} is at or after "
                f"the horizon ({horizon} ticks) and has no effect"
            )
    tables = None if agent is not None else routing.routing_tables(params)
    config = {
        "command": "simulate",
        "topology_spec": topology,
        "demand_file": None if demand is None else str(demand),
        "simulation": params.describe(),
        "policy": {"name": routing.name, "reconvergence_delay_ticks": reconvergence_delay}
        if agent is None else {"name": routing.name, **agent.config()},
        "episodes": episodes,
        "batch_size": batch_size,
        "seed": seed,
    }
    labels = tuple(f"{_link_label(topo, f.link)} @ tick {f.tick}" for f in failures)
    return RunSetup(params, tables, routing.name, config, labels, agent)


def run_episodes(setup: RunSetup, seed: int, episodes: int, batch_size: int) -> dict[str, np.ndarray]:
    """Per-episode metrics of episodes 0..episodes-1, with a progress bar when it takes several batches.

    Batches are evaluated one at a time so that finished batches' states are not kept in memory.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from mamrl.sim.evaluate import evaluate_tables

    console = _stderr()
    show = episodes > batch_size and console.is_terminal
    parts: dict[str, list[np.ndarray]] = {}
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("episodes"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not show,
    ) as progress:
        task = progress.add_task("episodes", total=episodes)
        if setup.tables is None:
            return setup.agent.evaluate(setup.params, seed, episodes, batch_size=batch_size,
                                        on_progress=lambda size: progress.advance(task, size))
        done = 0
        while done < episodes:
            size = min(batch_size, episodes - done)
            per_episode, _ = evaluate_tables(
                setup.params, setup.tables, seed, size, batch_size=size, first_episode=done
            )
            for key, values in per_episode.items():
                parts.setdefault(key, []).append(values)
            done += size
            progress.update(task, completed=done)
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def metrics_table(summary: dict[str, Any], title: str) -> Table:
    """A rich table of every metric as mean ± 95% CI, the paper's metric and its correctives first."""
    from mamrl.sim.metrics import METRIC_INFO

    table = Table(title=title, title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("mean ± 95% CI", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    order = [*_LEADING_METRICS, *(k for k in METRIC_INFO if k not in _LEADING_METRICS)]
    for k, key in enumerate(order):
        label, unit = METRIC_INFO[key]
        table.add_row(label, str(summary[key]), unit, end_section=k == len(_LEADING_METRICS) - 1)
    return table


# ------------------------------------------------------------------------------ commands
@app.command()
def topologies() -> None:
    """List the built-in topologies."""
    with _user_errors():
        from mamrl.topologies import builtin_summary

        table = Table(title="Built-in topologies", title_justify="left")
        table.add_column("name", no_wrap=True)
        table.add_column("routers", justify="right", no_wrap=True)
        table.add_column("links", justify="right", no_wrap=True)
        table.add_column("capacity", justify="right", no_wrap=True)
        table.add_column("mean packet size", justify="right", no_wrap=True)
        table.add_column("source", overflow="fold")
        for row in builtin_summary():
            mean_size = "n/a" if math.isnan(row.mean_packet_size) else f"{row.mean_packet_size:,.0f}"
            table.add_row(row.name, str(row.routers), str(row.links), f"{row.capacity:,}", mean_size, row.source)
        _stdout().print(table)


# One definition for every command that takes --demand; the names are mamrl.topologies.DEMAND_LAYOUTS.
_DEMAND_LAYOUT_OPTION = typer.Option(
    "auto", "--demand-layout", metavar="LAYOUT",
    help="How --demand lines map to router pairs: auto (from the line length), teavar-matrix (n*n values), "
         "pair-list (n*(n-1)) or pair-list-trailing (the pairs, then ignored values: the paper's GEANT file).",
)


@app.command()
def capacity(
    topology: str = typer.Option("b4", "--topology", "-t", metavar="NAME|PATH", help="A built-in topology (b4, geant, att) or a topology file/directory."),
    fail: list[str] = typer.Option([], "--fail", metavar="LINK", help="A failed link (A-B by router names, a link name or id). Repeatable."),
    all_failures: bool = typer.Option(False, "--all-failures", help="Also λ* after each single further link failure."),
    demand: Optional[Path] = typer.Option(None, "--demand", metavar="FILE", help="Demand file replacing the packet-size table."),
    demand_layout: str = _DEMAND_LAYOUT_OPTION,
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Write the results as JSON."),
) -> None:
    """λ*: the largest load (packets per router per tick) any routing can carry, and what limits it."""
    with _user_errors():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from mamrl import runs
        from mamrl.sim.capacity import capacity_bound, failure_scan
        from mamrl.sim.params import LinkFailure
        from mamrl.topologies import load_topology

        if json_out is not None and json_out.is_dir():
            raise MamrlError(f"--json {str(json_out)!r} is a directory, expected a file name")
        topo = load_topology(topology, demand=demand, demand_layout=demand_layout)
        failed = []
        for spec in fail:
            failure = LinkFailure.parse(topo, spec)
            if failure.tick != 0:
                raise MamrlError(f"--fail {spec!r}: capacity takes links without @TICK (λ* is a long-run limit)")
            if failure.link in failed:
                raise MamrlError(f"--fail names link {topo.link_name(failure.link)!r} more than once")
            failed.append(failure.link)
        bound = capacity_bound(topo, failed_links=failed)
        scan = []
        if all_failures:
            console = _stderr()
            with Progress(TextColumn("link failures"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True, disable=not console.is_terminal) as progress:
                task = progress.add_task("links", total=topo.num_links - len(failed))
                scan = failure_scan(topo, failed_links=failed, on_link=lambda _: progress.advance(task))
        names = topo.router_names

        def cut_text(b: Any) -> str:
            return ", ".join(names[i] for i in b.cut_off)

        if json_out is not None:
            doc = {
                "command": "capacity",
                "topology_spec": topology,
                "demand_file": None if demand is None else str(demand),
                **bound.describe(),
                "single_link_failures": [
                    {"link": topo.link_name(e), **b.describe(),
                     "share_of_base": (b.max_load / bound.max_load) if bound.max_load > 0 else None}
                    for e, b in scan
                ],
                **runs.provenance(),
            }
            runs.write_json(json_out, doc)
        console = _wide_stdout()
        where = topo.name + (" with " + ", ".join(_link_label(topo, e) for e in failed) + " failed" if failed else "")
        console.print(f"λ* = {bound.max_load:.4g} packets per router per tick on {where}", soft_wrap=True)
        if bound.disconnected:
            parts = "; ".join("{" + ", ".join(names[i] for i in part) + "}" for part in bound.components)
            console.print(f"disconnected: routers that exchange traffic are in different components: {parts}", soft_wrap=True)
        else:
            console.print("binding routers (forward one packet per tick in every routing that carries λ*): "
                          + ", ".join(names[i] for i in bound.binding_routers), soft_wrap=True)
            console.print("binding links: " + (", ".join(_link_label(topo, e) for e in bound.binding_links) or "none"),
                          soft_wrap=True)
        if scan:
            table = Table(title="λ* after one more link failure", title_justify="left", box=box.SIMPLE_HEAD)
            for column, justify in (("link", "left"), ("λ*", "right"), ("share", "right"), ("binding routers", "left"),
                                    ("cuts off", "left")):
                table.add_column(column, justify=justify, overflow="fold")
            for e, b in sorted(scan, key=lambda item: (item[1].max_load, item[0])):
                share = f"{100 * b.max_load / bound.max_load:.1f}%" if bound.max_load > 0 else "n/a"
                table.add_row(_link_label(topo, e), f"{b.max_load:.4g}", share,
                              ", ".join(names[i] for i in b.binding_routers), cut_text(b))
            console.print(table)
        console.print("The model's limit: routers forward at most one packet per tick and links reserve size × latency "
                      "per packet (docs/model.md); no routing keeps queues bounded at λ ≥ λ*.", soft_wrap=True)
        if json_out is not None:
            _stderr().print(f"wrote {json_out}")


_BACKEND_HELP = "Where the work runs: local (processes on this machine's cores) or ray (a Ray cluster; pip install 'mamrl[ray]')."
_ADDRESS_HELP = "With --backend ray: the head node of a running cluster (default: start a local Ray instance)."
_TOPOLOGY_HELP = "A built-in topology (b4, geant, att) or a topology file/directory."
_FAIL_HELP = "Fail a link: A-B by router names, a link name or id, optionally @TICK (default 0). Repeatable."


@app.command()
def simulate(
    topology: str = typer.Option("b4", "--topology", "-t", metavar="NAME|PATH", help=_TOPOLOGY_HELP),
    load: str = typer.Option("0.3", "--load", "-l", metavar="LAMBDA", help="λ: new packets per router per tick (Poisson)."),
    policy: str = typer.Option("spa", "--policy", "-p", metavar="NAME", help="Routing policy: spa, ecmp, max-throughput, min-delay, backpressure, sp-backpressure or random."),
    episodes: int = typer.Option(20, "--episodes", "-n", metavar="N", help="Number of episodes."),
    seed: int = typer.Option(0, "--seed", "-s", metavar="SEED", help="Seed; episode k's traffic depends only on (seed, k)."),
    horizon: int = typer.Option(500, "--horizon", metavar="TICKS", help="Episode length in ticks."),
    fail: list[str] = typer.Option([], "--fail", metavar="LINK[@TICK]", help=_FAIL_HELP),
    reconvergence_delay: Optional[int] = typer.Option(
        None, "--reconvergence-delay", metavar="TICKS", help="spa, ecmp, max-throughput, min-delay: recompute the tables this many ticks after a failure."
    ),
    buffer_limit: Optional[int] = typer.Option(None, "--buffer-limit", metavar="N", help="Max packets per router queue (drop-tail)."),
    demand: Optional[Path] = typer.Option(None, "--demand", metavar="FILE", help="Demand file replacing the packet-size table."),
    demand_layout: str = _DEMAND_LAYOUT_OPTION,
    queues: Optional[str] = typer.Option(
        None, "--queues", metavar="fifo|per-destination",
        help="One FIFO per router, or one per destination (a table policy serves the same packets either way). "
             "Default: per-destination for backpressure, fifo otherwise.",
    ),
    batch_size: int = typer.Option(32, "--batch-size", metavar="B", help="Episodes simulated together."),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Write config, per-episode metrics and summary as JSON."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", metavar="FILE", help="Write one CSV row per episode."),
    out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Write a run directory (config.json, metrics.json, episodes.csv)."),
) -> None:
    """Simulate a routing policy and print every metric with a 95% confidence interval."""
    with _user_errors():
        from mamrl import runs
        from mamrl.sim import records
        from mamrl.sim.metrics import summarise

        for path, what in ((json_out, "--json"), (csv_out, "--csv")):
            if path is not None and path.is_dir():
                raise MamrlError(f"{what} {str(path)!r} is a directory, expected a file name")
        if out is not None and out.exists() and not out.is_dir():
            raise MamrlError(f"--out {str(out)!r} exists and is not a directory")
        setup = prepare_run(
            topology=topology,
            load=load,
            policy=policy,
            episodes=episodes,
            seed=seed,
            horizon=horizon,
            fail=fail,
            reconvergence_delay=reconvergence_delay,
            buffer_limit=buffer_limit,
            demand=demand,
            demand_layout=demand_layout,
            batch_size=batch_size,
            queue_discipline=queues,
        )
        start = time.perf_counter()
        per_episode = run_episodes(setup, seed, episodes, batch_size)
        wall = time.perf_counter() - start
        summary = summarise(per_episode)

        # Files first: a closed stdout (`| head`) must not cost the user their results.
        written: list[str] = []
        if json_out is not None:
            doc = {
                "config": setup.config,
                "seed": seed,
                **runs.provenance(),
                "wall_time_s": round(wall, 3),
                **records.metrics_document(per_episode, summary),
            }
            runs.write_json(json_out, doc)
            written.append(f"wrote {json_out}")
        if csv_out is not None:
            records.write_episodes_csv(csv_out, per_episode)
            written.append(f"wrote {csv_out}")
        if out is not None:
            run_dir = records.write_run_dir(
                out, config=setup.config, per_episode=per_episode, summary=summary, wall_time_s=wall
            )
            note = "" if run_dir == out else f" ({str(out)!r} already holds a run)"
            written.append(f"wrote run directory {run_dir}{note}")

        params = setup.params
        title = (
            f"{params.topology.name}: λ = {params.load_per_router:g}, {setup.policy}, "
            f"{episodes} episode{'s' if episodes != 1 else ''} × {params.horizon_ticks} ticks, seed {seed}"
        )
        console = _stdout()
        console.print(metrics_table(summary, title))
        if setup.failure_labels:
            console.print("failed links: " + ", ".join(setup.failure_labels))
        console.print(PAPER_METRIC_NOTE)
        info = _stderr()
        for line in written:
            info.print(line)


@app.command()
def bench(
    quick: bool = typer.Option(False, "--quick", help="Small horizons and repeats (a smoke test, seconds)."),
    repeats: Optional[int] = typer.Option(None, "--repeats", metavar="N", help="Timed repeats per figure (median); default 5, 2 with --quick."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write the results as a markdown file."),
) -> None:
    """Benchmark the compiled simulator against the Python oracle (single process, one core)."""
    with _user_errors():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from mamrl.benchmarks import simulator as benchmark

        if repeats is not None:
            _check_positive(repeats, "--repeats")
        if output is not None and output.is_dir():
            raise MamrlError(f"--output {str(output)!r} is a directory, expected a file name")
        settings = benchmark.BenchSettings.quick(repeats or 2) if quick else benchmark.BenchSettings(repeats=repeats or 5)
        command = "mamrl bench" + (" --quick" if quick else "") + f" --repeats {settings.repeats}"
        if output is not None:
            command += f" --output {output}"

        err = _stderr()
        err.print(f"benchmark: {benchmark.describe_settings(settings)}")
        total = len(settings.topologies) * len(settings.loads)
        start = time.perf_counter()
        with Progress(
            TextColumn("benchmarking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True, disable=not err.is_terminal,
        ) as progress:
            solver_topologies = benchmark.SOLVER_TOPOLOGIES[:1] if quick else benchmark.SOLVER_TOPOLOGIES
            task = progress.add_task("bench", total=total + 1 + len(solver_topologies))
            rows = benchmark.run_bench(settings, on_row=lambda _row: progress.advance(task))
            queue_rows = benchmark.run_queue_bench(settings)
            progress.advance(task)
            solver = benchmark.run_solver_bench(solver_topologies, settings.repeats,
                                                on_row=lambda _row: progress.advance(task))
        elapsed = time.perf_counter() - start

        if output is not None:
            from mamrl.benchmarks.common import write_section

            write_section(output, benchmark.markdown_report(rows, settings, command, elapsed, queue_rows, solver),
                          benchmark.SECTION_START, benchmark.SECTION_END)
        table = Table(
            title="Simulator speed (SPA, single process, one core)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        for k, column in enumerate(benchmark.CONSOLE_COLUMNS):
            table.add_column(column, justify="left" if k == 0 else "right", no_wrap=True)
        for row in rows:
            table.add_row(*benchmark.console_cells(row))
        console = _stdout()
        console.print(table)
        console.print(
            "fast = Simulator.run_tables end to end (traffic drawing included); kernel-only = "
            "kernel.run_table_episodes on pre-drawn traffic; oracle = run_oracle_episode (pure Python)."
        )
        queue_table = Table(
            title=f"Queue disciplines and backpressure ({benchmark.QUEUE_BENCH_TOPOLOGY}, λ = {benchmark.QUEUE_BENCH_LOAD:g}, "
                  "timed side by side)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        for k, column in enumerate(benchmark.QUEUE_CONSOLE_COLUMNS):
            queue_table.add_column(column, justify="left" if k < 2 else "right", no_wrap=True)
        for queue_row in queue_rows:
            queue_table.add_row(*benchmark.queue_row_cells(queue_row))
        console.print(queue_table)
        solver_table = Table(title="The yardsticks' solvers (capacity LP; min-delay at 0.9 λ*)", title_justify="left",
                             box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for k, column in enumerate(benchmark.SOLVER_COLUMNS):
            solver_table.add_column(column, justify="left" if k == 0 else "right", no_wrap=True)
        for solver_row in solver[0]:
            solver_table.add_row(*benchmark.solver_row_cells(solver_row))
        console.print(solver_table)
        for note in solver[1]:
            err.print(note)
        if output is not None:
            err.print(f"wrote {output}")


@app.command("bench-deep")
def bench_deep(
    quick: bool = typer.Option(False, "--quick", help="Only b4, 4 and 8 episodes, one repeat (a smoke test)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write (or replace) the deep section of this markdown file."),
) -> None:
    """Benchmark the deep per-router learner: rollout decisions/s, TRPO iteration time, and the
    batched policy path against a loop over per-router modules."""
    with _user_errors():
        from mamrl.benchmarks import common as benchmark
        from mamrl.benchmarks import deep

        if output is not None and output.is_dir():
            raise MamrlError(f"--output {str(output)!r} is a directory, expected a file name")
        kwargs = {"topologies": ("b4",), "episodes": (4, 8), "repeats": 1} if quick else {}
        err = _stderr()
        rows = deep.run_deep_bench(**kwargs, on_row=lambda r: err.print(f"{r.topology} × {r.episodes} episodes done"))
        table = Table(title="Deep per-router policies (5×128)", box=box.SIMPLE_HEAD, title_justify="left")
        for k, column in enumerate(deep.COLUMNS):
            table.add_column(column, justify="left" if k == 0 else "right")
        for row in rows:
            table.add_row(*deep.row_cells(row))
        _wide_stdout().print(table)
        if output is not None:
            command = "mamrl bench-deep" + (" --quick" if quick else "") + f" --output {output}"
            deep.write_section(output, deep.markdown_section(rows, command, benchmark.machine_info(single_core=False)))
            err.print(f"wrote {output}")


@app.command("bench-meta")
def bench_meta_command(
    quick: bool = typer.Option(False, "--quick", help="Short episodes, 3 per task, one timed iteration (a smoke test)."),
    iterations: int = typer.Option(3, "--iterations", "-n", metavar="N", help="Timed meta-iterations (after one warm-up)."),
    first_order: bool = typer.Option(True, "--first-order/--no-first-order", help="Also time the first-order variant."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write (or replace) the meta section of this markdown file."),
    from_checkpoint: Optional[Path] = typer.Option(None, "--from-checkpoint", metavar="PATH", help="Also time iterations from this trained b4 meta-initialisation (a `mamrl train -a maml` checkpoint.pt)."),
) -> None:
    """Benchmark one MAML-TRPO meta-iteration on b4 in the paper authors' configuration: wall
    time by phase and peak memory."""
    with _user_errors():
        from mamrl.benchmarks import common as benchmark
        from mamrl.benchmarks import meta

        _check_positive(iterations, "--iterations")
        if output is not None and output.is_dir():
            raise MamrlError(f"--output {str(output)!r} is a directory, expected a file name")
        err = _stderr()
        kwargs = {"horizon": 100, "episodes_per_task": 3, "iterations": 1} if quick else {"iterations": iterations}
        if from_checkpoint is not None:
            meta.trained_learner(from_checkpoint)  # a wrong file is a one-line error before any timing
        results = []
        # The paper authors' configuration (no inner-KL penalty; TRPO's full-step line-search start,
        # then ours), then mamrl's default (with the penalty).
        variants = ((False, False, False), (False, False, True), *(((True, False, True),) if first_order else ()),
                    (False, True, True))
        for fo, penalised, corrected in variants:
            results.append(meta.bench_meta("b4", 0.3, first_order=fo, penalised=penalised, corrected_start=corrected,
                                           **kwargs, on_iteration=lambda k, s: err.print(f"meta-iteration {k}: {s:.2f} s")))
        if from_checkpoint is not None:
            # Where the full natural-gradient step overshoots the KL bound (a trained initialisation,
            # whose inner step is large), the two line-search starts differ most.
            for corrected in (False, True):
                results.append(meta.bench_meta("b4", 0.3, **kwargs, checkpoint=from_checkpoint, corrected_start=corrected,
                                               on_iteration=lambda k, s: err.print(f"trained, meta-iteration {k}: {s:.2f} s")))
        table = Table(title="MAML-TRPO meta-iteration (b4, λ = 0.3)", box=box.SIMPLE_HEAD, title_justify="left")
        for k, column in enumerate(meta.COLUMNS):
            table.add_column(column, justify="left" if k < 2 else "right")
        for result in results:
            table.add_row(*meta.row_cells(result))
        _wide_stdout().print(table)
        if output is not None:
            command = ("mamrl bench-meta" + (" --quick" if quick else f" -n {iterations}")
                       + (f" --from-checkpoint {from_checkpoint}" if from_checkpoint is not None else "") + f" --output {output}")
            meta.write_section(output, meta.markdown_section(results, command, benchmark.machine_info(single_core=False)))
            err.print(f"wrote {output}")


@app.command("bench-scaling")
def bench_scaling_command(
    quick: bool = typer.Option(False, "--quick", help="Tiny sizes on b4 and a small topohub network (a smoke test)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write (or replace) the scaling section of this markdown file, and its figure under docs/results/scaling/ beside it."),
    skip_ray: bool = typer.Option(False, "--skip-ray", help="Do not time the sweep on a local Ray instance."),
    learn_iterations: Optional[int] = typer.Option(None, "--learn-iterations", metavar="N", help="TRPO iterations of the deep learner on the 143-router network (default 10; 2 with --quick)."),
) -> None:
    """Benchmark scaling: simulator throughput and training time versus routers (up to a
    143-router Topology Zoo network), learning on it, and a sweep's wall time on 1 and 2 local
    workers and on Ray."""
    with _user_errors():
        import dataclasses

        from mamrl.benchmarks import scaling

        if output is not None and output.is_dir():
            raise MamrlError(f"--output {str(output)!r} is a directory, expected a file name")
        settings = scaling.ScalingSettings.quick_settings() if quick else scaling.ScalingSettings()
        if learn_iterations is not None:
            _check_positive(learn_iterations, "--learn-iterations")
            settings = dataclasses.replace(settings, learn_iterations=learn_iterations)
        err = _stderr()
        result = scaling.run_scaling(settings, skip_ray=skip_ray, progress=err.print)
        console = _wide_stdout()
        for title, columns, cells in (
            (f"Versus routers (λ = {settings.load:g})", scaling.CONSOLE_TOPOLOGY_COLUMNS,
             [scaling.console_topology_cells(r) for r in result.rows]),
            (f"Deep learner on {result.learning.topology}", scaling.LEARN_COLUMNS, scaling.learning_cells(result.learning)),
            ("Sweep wall time", scaling.SWEEP_COLUMNS, scaling.sweep_cells(result.sweeps)),
        ):
            table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
            for k, column in enumerate(columns):
                table.add_column(column, justify="left" if k == 0 else "right")
            for row in cells:
                table.add_row(*row)
            console.print(table)
        for line in result.learning.lines():
            console.print(f"deep learner on {result.learning.topology}, {line}")
        console.print(scaling.identical_line(result.sweeps))
        if output is not None:
            command = ("mamrl bench-scaling" + (" --quick" if quick else "") + (" --skip-ray" if skip_ray else "")
                       + (f" --learn-iterations {learn_iterations}" if learn_iterations is not None else "") + f" --output {output}")
            for path in scaling.write_report(result, output, command):
                err.print(f"wrote {path}")


@app.command("plot-topology")
def plot_topology_command(
    topology: str = typer.Option("b4", "--topology", "-t", metavar="NAME|PATH", help=_TOPOLOGY_HELP),
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="Figure file: .png, .pdf or .svg."),
    load: str = typer.Option("0.3", "--load", "-l", metavar="LAMBDA", help="λ: new packets per router per tick (Poisson)."),
    episodes: int = typer.Option(5, "--episodes", "-n", metavar="N", help="Episodes to average utilisation and losses over."),
    seed: int = typer.Option(0, "--seed", "-s", metavar="SEED", help="Seed of the simulated episodes."),
    policy: str = typer.Option("spa", "--policy", "-p", metavar="NAME", help="Routing policy: spa, ecmp, max-throughput, min-delay, backpressure, sp-backpressure or random."),
    horizon: int = typer.Option(500, "--horizon", metavar="TICKS", help="Episode length in ticks."),
    fail: list[str] = typer.Option([], "--fail", metavar="LINK[@TICK]", help=_FAIL_HELP),
    reconvergence_delay: Optional[int] = typer.Option(
        None, "--reconvergence-delay", metavar="TICKS", help="spa, ecmp, max-throughput, min-delay: recompute the tables this many ticks after a failure."
    ),
    buffer_limit: Optional[int] = typer.Option(None, "--buffer-limit", metavar="N", help="Max packets per router queue (drop-tail)."),
    demand: Optional[Path] = typer.Option(None, "--demand", metavar="FILE", help="Demand file replacing the packet-size table."),
    demand_layout: str = _DEMAND_LAYOUT_OPTION,
    color_links: str = typer.Option(
        "utilisation", "--color-links", metavar="METRIC",
        help="Colour links by utilisation (share of capacity in use) or loss (packets lost on the link per episode).",
    ),
) -> None:
    """Draw a topology with link utilisation or loss and per-router losses from a simulation; topologies
    with latitude/longitude are drawn as a map."""
    with _user_errors():
        from mamrl.plotting.topology import FORMATS, LINK_METRICS, format_title, layout_note, plot_topology, save_figure

        if output.suffix.lower() not in FORMATS:
            raise MamrlError(f"--output {str(output)!r}: use a .png, .pdf or .svg file name")
        metric = {"utilization": "utilisation"}.get(color_links.strip().lower(), color_links.strip().lower())
        if metric not in LINK_METRICS:
            raise MamrlError(f"--color-links must be utilisation or loss, got {color_links!r}")
        setup = prepare_run(
            topology=topology,
            load=load,
            policy=policy,
            episodes=episodes,
            seed=seed,
            horizon=horizon,
            fail=fail,
            reconvergence_delay=reconvergence_delay,
            buffer_limit=buffer_limit,
            demand=demand,
            demand_layout=demand_layout,
            batch_size=32,
        )
        per_episode = run_episodes(setup, seed, episodes, 32)
        params = setup.params
        util = per_episode["link_utilisation"]  # [B, E]; NaN only for links of capacity 0
        mean_util = np.where(np.isnan(util).all(axis=0), np.nan, np.where(np.isnan(util), 0.0, util).mean(axis=0))
        lost = per_episode["lost_per_router"].mean(axis=0)
        fractions = per_episode["delivered_fraction"]
        delivered = float(fractions[np.isfinite(fractions)].mean()) if np.isfinite(fractions).any() else float("nan")
        fig = plot_topology(
            params.topology,
            link_utilisation=mean_util,
            link_loss=per_episode["lost_per_link"].mean(axis=0) if metric == "loss" else None,
            color_links=metric,
            lost_per_router=lost,
            failed_links=[f.link for f in params.failures],
            failure_labels=setup.failure_labels,
            title=format_title(params.topology, params.load_per_router, setup.policy, delivered),
            subtitle=(
                f"mean over {episodes} episode{'s' if episodes != 1 else ''} × {params.horizon_ticks} ticks, seed {seed}; "
                f"{params.topology.num_routers} routers, {params.topology.num_links} links\n{layout_note(params.topology)}"
            ),
        )
        save_figure(fig, output)
        _stderr().print(f"wrote {output}")


# ------------------------------------------------------------------------------ experiments
def _split_list(text: str, option: str, kind: str) -> list[Any]:
    """A comma-separated option value as a list of `kind` ("str", "int", "float")."""
    items = [part.strip() for part in str(text).split(",")]
    if not any(items):
        raise MamrlError(f"{option}: must not be empty")
    if any(not item for item in items):
        raise MamrlError(f"{option}: empty item in {text!r}")
    if kind == "str":
        return items
    out: list[Any] = []
    for item in items:
        try:
            out.append(int(item) if kind == "int" else float(item))
        except ValueError:
            what = "an integer" if kind == "int" else "a number"
            raise MamrlError(f"{option}: {item!r} is not {what}") from None
    return out


def _sweep_progress(console: Console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cells"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    )


@app.command()
def sweep(
    preset: Optional[str] = typer.Option(None, "--preset", metavar="NAME", help="Base config: quick (default without --config) or paper."),
    config_file: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE", help="Sweep config file (.toml or .json); flags override it."),
    topologies_opt: Optional[str] = typer.Option(None, "--topologies", "-t", metavar="LIST", help="Comma-separated topologies, e.g. b4,geant,att."),
    algorithms: Optional[str] = typer.Option(None, "--algorithms", "-a", metavar="LIST", help="Comma-separated algorithms: spa, ecmp, max-throughput, min-delay, backpressure, sp-backpressure, random, q-routing, pg, mamrl."),
    loads: Optional[str] = typer.Option(None, "--loads", "-l", metavar="LIST", help="Comma-separated loads: λ > 0 (packets per router per tick) or a share of the capacity limit λ* such as 0.9x."),
    seeds: Optional[str] = typer.Option(None, "--seeds", "-s", metavar="LIST", help="Comma-separated seeds (integers >= 0)."),
    train_episodes: Optional[int] = typer.Option(None, "--train-episodes", metavar="N", help="Training episodes per learned cell."),
    eval_episodes: Optional[int] = typer.Option(None, "--eval-episodes", metavar="N", help="Evaluation episodes per cell."),
    horizon: Optional[int] = typer.Option(None, "--horizon", metavar="TICKS", help="Episode length in ticks (training, and evaluation unless --eval-horizon)."),
    eval_horizon: Optional[int] = typer.Option(None, "--eval-horizon", metavar="TICKS", help="Evaluation episode length in ticks (default: --horizon)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", metavar="N", help="Parallel worker processes (default: one per core; 1 = in process). With --backend ray: the local instance's CPUs, or at most N at once on a cluster."),
    backend: str = typer.Option("local", "--backend", metavar="NAME", help=_BACKEND_HELP),
    address: Optional[str] = typer.Option(None, "--address", metavar="HOST:PORT", help=_ADDRESS_HELP),
    results: Optional[Path] = typer.Option(None, "--results", "-o", metavar="FILE", help="Results CSV (appended; resumed when re-run)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and the cells left to run, then exit."),
) -> None:
    """Run the load sweep (E1): train and evaluate every topology × algorithm × load × seed cell.

    Cells run in parallel, on this machine's cores or on a Ray cluster (--backend ray); each
    finished cell is appended to the results CSV at once, so an interrupted sweep resumes where it
    stopped and a finished one is not recomputed.
    """
    with _user_errors():
        from mamrl.experiments.config import build_sweep_config
        from mamrl.experiments.saturation import summarise_saturation
        from mamrl.experiments.sweep import (
            ResultsFile, aggregate, make_cell_executor, run_sweep, skipped_cells, sweep_cells,
        )
        from mamrl.executors import check_backend

        overrides: dict[str, Any] = {}
        for name, value, kind in (("topologies", topologies_opt, "str"), ("algorithms", algorithms, "str"),
                                  ("loads", loads, "str"), ("seeds", seeds, "int")):
            if value is not None:
                overrides[name] = _split_list(value, f"--{name}", kind)
        for name, value in (("train_episodes", train_episodes), ("eval_episodes", eval_episodes),
                            ("horizon_ticks", horizon), ("eval_horizon_ticks", eval_horizon), ("workers", workers)):
            if value is not None:
                overrides[name] = value
        if results is not None:
            overrides["results"] = str(results)
        flag = {"horizon_ticks": "--horizon", "eval_horizon_ticks": "--eval-horizon", "results": "--results"}
        config = build_sweep_config(
            preset=preset, file=config_file, overrides=overrides,
            override_label=lambda key: flag.get(key, "--" + key.replace("_", "-")),
        )
        backend = check_backend(backend, address)
        err = _stderr()
        if dry_run:
            import json as _json

            done = ResultsFile(config.results, config).finished_keys()
            left = [c for c in sweep_cells(config) if c.key not in done]
            _stdout().print(_json.dumps({**config.as_dict(), "config_hash": config.config_hash()}, indent=2))
            where = (f"{config.effective_workers()} workers" if backend == "local"
                     else f"on the Ray cluster at {address}" if address else "on a local Ray instance")
            beyond = skipped_cells(config)
            _stdout().print(f"{len(sweep_cells(config))} cells, {len(left)} left to run, {where}"
                            + (f"; not run (λ ≥ λ*): {', '.join(map(str, beyond))}" if beyond else ""), soft_wrap=True)
            return

        # Local: run_sweep sizes its pool to the cells left, as always. Ray: connect now, so a
        # missing Ray or an unreachable cluster is reported before the results file is touched.
        executor = None if backend == "local" else make_cell_executor(backend, config.workers, address)
        show_bar = err.is_terminal
        state: dict[str, Any] = {"start": time.perf_counter(), "skipped": 0, "ran": 0}
        progress = _sweep_progress(err) if show_bar else None
        task_id = None

        def on_start(skipped: int, total: int) -> None:
            nonlocal task_id
            state["skipped"] = skipped
            beyond = skipped_cells(config)
            err.print(soft_wrap=True, *[
                f"sweep: {total} cells ({len(config.topologies)} topologies × {len(config.algorithms)} algorithms × "
                f"{len(config.loads)} loads × {len(config.seeds)} seeds"
                + (f", less {len(beyond)} of max-throughput/min-delay at λ ≥ λ*, where no routing carries the load"
                   if beyond else "")
                + f"), {skipped} already in {config.results}, "
                + (f"{min(config.effective_workers(), max(total - skipped, 1))} worker(s)" if executor is None
                   else f"on {getattr(executor, 'label', backend)}")
            ])
            if progress is not None:
                task_id = progress.add_task("", total=total, completed=skipped)

        def on_row(row: dict[str, Any], done: int, total: int) -> None:
            state["ran"] += 1
            label = (f"{row['topology']} {row['algorithm']} λ={row['load']:g} seed {row['seed']}: "
                     f"delivery {row['mean_delivery_time_mean']:.3g}, sojourn {row['mean_sojourn_time_mean']:.3g}, "
                     f"delivered {100 * row['delivered_fraction_mean']:.1f}%")
            if progress is not None:
                progress.update(task_id, completed=done, description=label)
            else:
                elapsed = time.perf_counter() - state["start"]
                eta = elapsed / state["ran"] * (total - done)
                err.print(f"[{done}/{total}] {label} (elapsed {elapsed:.0f} s, eta {eta:.0f} s)", soft_wrap=True)

        finished = False
        try:
            if progress is not None:
                with progress:
                    outcome = run_sweep(config, executor=executor, on_start=on_start, on_row=on_row)
            else:
                outcome = run_sweep(config, executor=executor, on_start=on_start, on_row=on_row)
            finished = True
        except KeyboardInterrupt:
            _print_error(
                f"interrupted after {state['ran']} new cell(s); {config.results} keeps every finished cell — "
                "re-run the same command to resume"
            )
            raise typer.Exit(130) from None
        finally:
            if executor is not None:
                executor.close(wait=finished)

        console = _wide_stdout()
        console.print(
            f"sweep finished: {outcome.total_cells} cells ({outcome.ran} run, {outcome.skipped} already done) "
            f"in {outcome.wall_time_s:.1f} s → {outcome.results}", soft_wrap=True
        )
        table = Table(title="Saturation (queues bounded / growing, see docs/sweep.md)", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("topology", "algorithm", "bounded up to λ", "growing from λ", "undetermined at λ"):
            table.add_column(column, no_wrap=True)
        for s in summarise_saturation(aggregate(outcome.rows)):
            table.add_row(
                s.topology, s.algorithm,
                "none" if s.bounded_up_to is None else f"{s.bounded_up_to:g}",
                "none" if s.growing_from is None else f"{s.growing_from:g}",
                ", ".join(f"{x:g}" for x in s.undetermined) or "-",
            )
        console.print(table)
        console.print(f"next: mamrl plot {outcome.results} --output DIR", soft_wrap=True)


@app.command()
def plot(
    results: Path = typer.Argument(..., metavar="RESULTS_CSV", help="Results CSV written by `mamrl sweep`."),
    output: Path = typer.Option(..., "--output", "-o", metavar="DIR", help="Directory for the figures and results.md."),
    formats: list[str] = typer.Option(["png", "pdf"], "--format", "-f", metavar="FMT", help="Figure format: png, pdf, svg. Repeatable."),
    relative_load: bool = typer.Option(False, "--relative-load", help="Plot against λ/λ* (the share of the capacity limit) instead of λ."),
) -> None:
    """Plot sweep results (delivery time, sojourn time, loss/delivered vs load) and write a markdown table."""
    with _user_errors():
        from mamrl.plotting.sweep import write_sweep_report

        written = write_sweep_report(results, output, formats=[f.strip().lower().lstrip(".") for f in formats],
                                     relative_load=relative_load)
        err = _stderr()
        for path in written:
            err.print(f"wrote {path}")


@app.command()
def saturation(
    topology: str = typer.Option("b4", "--topology", "-t", metavar="NAME|PATH", help=_TOPOLOGY_HELP),
    algorithm: str = typer.Option("spa", "--algorithm", "-a", metavar="NAME", help="spa, ecmp, max-throughput, min-delay, backpressure, sp-backpressure, random, q-routing, pg or mamrl (trained at each probed load)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", metavar="FILE", help="Evaluate this saved agent at every load instead (no training)."),
    low: str = typer.Option("0.01", "--low", metavar="LAMBDA", help="Lower end of the search (must be bounded)."),
    high: str = typer.Option("0.5", "--high", metavar="LAMBDA", help="Upper end of the search."),
    tolerance: str = typer.Option("0.005", "--tolerance", metavar="LAMBDA", help="Stop when the bracket is this narrow."),
    horizon: int = typer.Option(2000, "--horizon", metavar="TICKS", help="Evaluation episode length (longer = sharper)."),
    episodes: int = typer.Option(10, "--episodes", "-n", metavar="N", help="Evaluation episodes per seed and probe."),
    max_episodes: int = typer.Option(80, "--max-episodes", metavar="N", help="Doubling limit for undetermined probes."),
    seeds: str = typer.Option("0", "--seeds", "-s", metavar="LIST", help="Comma-separated seeds, pooled."),
    train_episodes: int = typer.Option(2000, "--train-episodes", metavar="N", help="Training episodes per probe (learning algorithms)."),
    train_horizon: int = typer.Option(500, "--train-horizon", metavar="TICKS", help="Training episode length."),
    algorithm_config: Optional[str] = typer.Option(None, "--algorithm-config", metavar="JSON", help='Hyper-parameters, e.g. \'{"step_size": 0.1}\'.'),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Write the probes and the bracket as JSON."),
) -> None:
    """Bisect the load for the saturation point of one algorithm on one topology."""
    with _user_errors():
        import json as _json

        from mamrl import runs
        from mamrl.algorithms import canonical_name, make_agent
        from mamrl.experiments.saturation import (
            RULE_TEXT, checkpoint_agent_factory, saturation_search, trained_agent_factory,
        )
        from mamrl.topologies import load_topology

        for value, option in ((horizon, "--horizon"), (episodes, "--episodes"), (max_episodes, "--max-episodes"),
                              (train_episodes, "--train-episodes"), (train_horizon, "--train-horizon")):
            _check_positive(value, option)
        if episodes < 2:
            raise MamrlError(f"--episodes must be >= 2 (a confidence interval needs two), got {episodes}")
        if max_episodes < episodes:
            raise MamrlError(f"--max-episodes must be >= --episodes ({episodes}), got {max_episodes}")
        if horizon < 4:
            raise MamrlError(f"--horizon must be >= 4 ticks to measure a trend, got {horizon}")
        low_v, high_v, tol_v = (_positive_number(v, o) for v, o in ((low, "--low"), (high, "--high"), (tolerance, "--tolerance")))
        if high_v <= low_v:
            raise MamrlError(f"--high ({high_v:g}) must be above --low ({low_v:g})")
        seed_list = _split_list(seeds, "--seeds", "int")
        if any(s < 0 for s in seed_list):
            raise MamrlError(f"--seeds: seeds must be >= 0, got {seeds!r}")
        if json_out is not None and json_out.is_dir():
            raise MamrlError(f"--json {str(json_out)!r} is a directory, expected a file name")
        topo = load_topology(topology)
        if checkpoint is not None:
            if algorithm_config is not None:
                raise MamrlError("--algorithm-config does not apply with --checkpoint (the checkpoint holds its config)")
            name, factory = checkpoint_agent_factory(str(checkpoint))
        else:
            name = canonical_name(algorithm)
            settings: dict[str, Any] = {}
            if algorithm_config is not None:
                try:
                    settings = _json.loads(algorithm_config)
                except ValueError as exc:
                    raise MamrlError(f"--algorithm-config is not valid JSON: {exc}") from None
                if not isinstance(settings, dict):
                    raise MamrlError("--algorithm-config must be a JSON object of hyper-parameters")
            make_agent(name, settings)  # validate now
            factory = trained_agent_factory(name, settings, train_episodes, train_horizon)

        err = _stderr()
        err.print(f"saturation search: {name} on {topo.name}, λ in [{low_v:g}, {high_v:g}], horizon {horizon} ticks, "
                  f"{episodes} episodes × {len(seed_list)} seed(s) per probe", soft_wrap=True)

        def on_probe(p: Any) -> None:
            if p.growth.n == 0:
                err.print(f"  λ={p.load:.4g}: {p.status} (not run: {name} exists only below the capacity limit)", soft_wrap=True)
                return
            err.print(f"  λ={p.load:.4g}: {p.status} (growth {p.growth.mean:+.4f} ± {p.growth.ci95:.4f} vs θ {p.threshold:.4f} "
                      f"packets/tick, {p.episodes} episodes/seed)", soft_wrap=True)

        result = saturation_search(
            topo, name, factory, low=low_v, high=high_v, tolerance=tol_v, horizon_ticks=horizon,
            episodes=episodes, max_episodes=max_episodes, seeds=seed_list, on_probe=on_probe,
        )
        if json_out is not None:
            runs.write_json(json_out, {**result.as_dict(), "checkpoint": None if checkpoint is None else str(checkpoint),
                                       "train_episodes": None if checkpoint is not None else train_episodes,
                                       **runs.provenance()})
            err.print(f"wrote {json_out}")
        table = Table(title=f"Saturation search: {name} on {topo.name}", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("λ", "λ/λ*", "queues", "backlog growth (packets/tick)", "threshold θ", "delivered", "episodes/seed"):
            table.add_column(column, justify="right", no_wrap=True)
        for p in sorted(result.probes, key=lambda p: p.load):
            measured = p.growth.n > 0
            table.add_row(f"{p.load:.4g}", f"{result.share(p.load):.3f}", p.status,
                          f"{p.growth.mean:+.4f} ± {p.growth.ci95:.4f}" if measured else "-", f"{p.threshold:.4f}",
                          f"{100 * p.delivered_fraction.mean:.1f}%" if measured else "-", str(p.episodes))
        console = _wide_stdout()
        console.print(table)
        console.print(result.describe(), soft_wrap=True)
        console.print("Rule: " + RULE_TEXT.replace("*", ""), soft_wrap=True)


@app.command()
def train(
    topology: str = typer.Option("b4", "--topology", "-t", help="Built-in name or topology file/directory."),
    load: str = typer.Option("0.3", "--load", "-l", help="λ, packets per router per tick."),
    algorithm: str = typer.Option("mamrl", "--algorithm", "-a", help="mamrl (alias deep-consensus), maml (meta-training, Algorithm 1), pg or q-routing."),
    episodes: int = typer.Option(1000, "--episodes", "-n", help="Training episodes."),
    seed: int = typer.Option(0, "--seed", help="Seed of the training traffic (and of the initial weights)."),
    horizon: int = typer.Option(500, "--horizon", help="Episode length in ticks."),
    fail: Optional[list[str]] = typer.Option(None, "--fail", metavar="LINK[@TICK]", help="Link failure, e.g. D-E@100 (repeatable)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE", help="Algorithm hyper-parameter, e.g. reward=packet (repeatable; JSON values)."),
    chunk: int = typer.Option(0, "--chunk", metavar="N", help="Episodes per curve row and checkpoint (0: one TRPO or meta iteration for mamrl/maml, else 50)."),
    eval_episodes: int = typer.Option(20, "--eval-episodes", metavar="N", help="Frozen-policy evaluation episodes at the end (0 = none)."),
    out: Path = typer.Option(Path("runs/train"), "--out", "-o", help="Run directory (resumed if it holds this configuration; a larger -n extends it)."),
    tensorboard: Optional[Path] = typer.Option(
        None, "--tensorboard", metavar="DIR",
        help="Also log the learning curves (step = episodes) and the config to TensorBoard in DIR; a resumed run appends.",
    ),
    workers: int = typer.Option(1, "--workers", "-j", metavar="N", help="maml: processes running each meta-iteration's tasks (1 = in this process). With --backend ray: the local instance's CPUs, or at most N at once on a cluster."),
    backend: str = typer.Option("local", "--backend", metavar="NAME", help=_BACKEND_HELP + " maml only: its meta-iterations' tasks."),
    address: Optional[str] = typer.Option(None, "--address", metavar="HOST:PORT", help=_ADDRESS_HELP),
) -> None:
    """Train one algorithm on one configuration: live summary, learning curves (CSV and PNG, optionally
    TensorBoard), atomic checkpoints; re-running the same command after a kill resumes where it stopped."""
    with _user_errors():
        import json as _json

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from mamrl.executors import check_backend
        from mamrl.training import TrainConfig, require_tensorboard, train_run

        if tensorboard is not None:
            require_tensorboard()  # a missing package is a one-line error before any work
        algorithm_config: dict[str, Any] = {}
        for item in set_ or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise MamrlError(f"--set expects KEY=VALUE, got {item!r}")
            try:
                algorithm_config[key.strip()] = _json.loads(value)
            except ValueError:
                algorithm_config[key.strip()] = value
        _check_positive(episodes, "--episodes")
        cfg = TrainConfig(topology, parse_load(load), horizon, tuple(fail or ()), algorithm, algorithm_config,
                          episodes, seed, chunk, eval_episodes).resolved()
        cfg.sim_params()  # bad topology, load or failure: fail before the progress bar starts
        _check_positive(workers, "--workers")
        task_executor = None
        if check_backend(backend, address) == "ray" or workers > 1:
            if cfg.algorithm != "maml":
                raise MamrlError(f"--backend/--workers spread maml's meta-training tasks; {cfg.algorithm} trains in one process")
            from mamrl.meta.maml import maml_task_executor

            task_executor = maml_task_executor(backend, workers, address)  # Ray: connects now
        console = _stderr()
        with Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("episodes"),
                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.description}"),
                      console=console, transient=True) as progress:
            task = progress.add_task("", total=episodes)

            def on_chunk(row: dict[str, Any]) -> None:
                reward = f"reward {row['reward']:.3g}  " if "reward" in row else ""
                summary = (f"{reward}delivery {row['mean_delivery_time'] or float('nan'):.3g}  "
                           f"sojourn {row['mean_sojourn_time'] or float('nan'):.3g}  "
                           f"delivered {100 * (row['delivered_fraction'] or 0):.1f}%  loss {100 * (row['loss_fraction'] or 0):.2f}%")
                progress.update(task, completed=row["episodes"], description=summary)
                console.print(f"[{row['episodes']}/{episodes}] {summary}", highlight=False)

            try:
                last = train_run(cfg, out, on_chunk=on_chunk, tensorboard_dir=tensorboard, task_executor=task_executor)
            finally:
                if task_executor is not None:
                    task_executor.close(wait=False)
        _stdout().print(f"trained {cfg.algorithm} on {topology} at λ = {cfg.load:g} for {episodes} episodes; "
                        f"run directory {out} (curves.csv, curves.png, checkpoint.pt"
                        f"{', evaluation.json' if eval_episodes else ''})"
                        f"{f'; TensorBoard logs in {tensorboard}' if tensorboard is not None else ''}")
        if last:
            _stdout().print(f"last chunk: delivered {100 * (last['delivered_fraction'] or 0):.1f}%, "
                            f"sojourn {last['mean_sojourn_time']}, delivery time {last['mean_delivery_time']}")


@app.command()
def failures(
    preset: Optional[str] = typer.Option(None, "--preset", metavar="NAME", help="Base config: quick (default without --config) or paper."),
    config_file: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE", help="Experiment config file (.toml or .json); flags override it."),
    topology: Optional[str] = typer.Option(None, "--topology", "-t", metavar="NAME|PATH", help=_TOPOLOGY_HELP),
    failure: Optional[list[str]] = typer.Option(None, "--failure", "-f", metavar="LINK", help="Test link A-B (repeatable or comma-separated; default: the paper's three)."),
    held_out: Optional[list[str]] = typer.Option(None, "--held-out", metavar="LINK", help="Test link also kept out of meta-training (repeatable or comma-separated)."),
    controllers: Optional[str] = typer.Option(None, "--controllers", "-a", metavar="LIST", help="Comma-separated: spa, spa-reconverge, q-routing, mamrl-init, continued, random-init (the paper's); also "
             "ecmp, max-throughput, min-delay (each optionally -reconverge), backpressure, sp-backpressure."),
    episodes: Optional[int] = typer.Option(None, "--episodes", "-n", metavar="N", help="Episodes per run, before and after the failure."),
    fail_episode: Optional[int] = typer.Option(None, "--fail-episode", metavar="N", help="First episode with the link down."),
    fail_tick: Optional[int] = typer.Option(None, "--fail-tick", metavar="TICK", help="Tick the link fails at in the failure episode."),
    episodes_per_step: Optional[int] = typer.Option(None, "--episodes-per-step", metavar="N", help="Episodes per controller call (learning step)."),
    seeds: Optional[list[str]] = typer.Option(None, "--seeds", "-s", metavar="LIST", help="Seeds, comma-separated or repeated."),
    load: Optional[str] = typer.Option(None, "--load", "-l", metavar="LAMBDA", help="λ: new packets per router per tick."),
    horizon: Optional[int] = typer.Option(None, "--horizon", metavar="TICKS", help="Episode length in ticks."),
    meta_init: Optional[Path] = typer.Option(None, "--meta-init", metavar="PATH", help="Meta-training directory to reuse (resumed if unfinished), or a maml checkpoint.pt used as it is."),
    meta_iterations: Optional[int] = typer.Option(None, "--meta-iterations", metavar="N", help="MAML-TRPO meta-iterations (deep controllers)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="DIR", help="Output directory (resumed when re-run)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", metavar="N", help="Parallel worker processes (default: one per core; 1 = in process). With --backend ray: the local instance's CPUs, or at most N at once on a cluster."),
    backend: str = typer.Option("local", "--backend", metavar="NAME", help=_BACKEND_HELP),
    address: Optional[str] = typer.Option(None, "--address", metavar="HOST:PORT", help=_ADDRESS_HELP),
    formats: list[str] = typer.Option(["png", "pdf"], "--format", metavar="FMT", help="Figure format: png, pdf, svg. Repeatable."),
) -> None:
    """Run the link-failure experiment (E2; Figs. 5-7, Table 2): every controller learns online
    through a link failure; curves, the episodes-to-adapt table and figures.

    Runs (failure × controller × seed) go in parallel, locally or on a Ray cluster (--backend ray);
    each finished run is appended to curves.csv at once, so an interrupted experiment resumes
    where it stopped.
    """
    with _user_errors():
        from mamrl.experiments.failures import build_failure_config, make_run_executor, run_failure_experiment, table2
        from mamrl.executors import check_backend
        from mamrl.plotting.failures import controller_label, write_failure_report

        def items(values: Optional[list[str]], option: str) -> list[str]:
            return [part for value in values or [] for part in _split_list(value, option, "str")]

        overrides: dict[str, Any] = {}
        if failure:
            overrides["failures"] = items(failure, "--failure")
        if held_out:
            overrides["held_out"] = items(held_out, "--held-out")
        if controllers is not None:
            overrides["controllers"] = _split_list(controllers, "--controllers", "str")
        if seeds:
            overrides["seeds"] = [n for value in seeds for n in _split_list(value, "--seeds", "int")]
        if load is not None:
            overrides["load"] = parse_load(load)
        for name, value in (("topology", topology), ("episodes", episodes), ("fail_episode", fail_episode),
                            ("fail_tick", fail_tick), ("episodes_per_step", episodes_per_step),
                            ("horizon_ticks", horizon), ("workers", workers), ("meta_iterations", meta_iterations)):
            if value is not None:
                overrides[name] = value
        if meta_init is not None:
            overrides["meta_init"] = str(meta_init)
        if output is not None:
            overrides["output"] = str(output)
        fmts = [f.strip().lower().lstrip(".") for f in formats]
        for fmt in fmts:
            if fmt not in ("png", "pdf", "svg"):
                raise MamrlError(f"--format: unknown figure format {fmt!r} (choose from png, pdf, svg)")
        flag = {"horizon_ticks": "--horizon", "failures": "--failure", "output": "--output"}
        config = build_failure_config(
            preset=preset, file=config_file, overrides=overrides,
            override_label=lambda key: flag.get(key, "--" + key.replace("_", "-")),
        )
        backend = check_backend(backend, address)
        # Local: the experiment sizes its pool to the runs left, as always. Ray: connect now, so a
        # missing Ray or an unreachable cluster is reported before meta-training or any run.
        executor = None if backend == "local" else make_run_executor(config.workers, backend=backend, address=address)
        meta_executor = None
        if backend == "ray":  # meta-training's tasks go to the cluster too (locally they run in this process)
            from mamrl.meta.maml import maml_task_executor

            meta_executor = maml_task_executor(backend, config.workers, address)
        err = _stderr()
        progress = None
        if err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            progress = Progress(TextColumn("failures"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
                                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                TextColumn("{task.description}"), console=err, transient=True)
        state: dict[str, Any] = {"start": time.perf_counter(), "ran": 0, "task": None}

        def on_start(skipped: int, total: int) -> None:
            err.print(f"failures: {total} runs ({len(config.test_links())} links × {len(config.controllers)} controllers × "
                      f"{len(config.seeds)} seeds) of {config.episodes} episodes on {config.topology} at λ = {config.load:g}, "
                      f"{skipped} already in {config.output}, "
                      + (f"{min(config.effective_workers(), max(total - skipped, 1))} worker(s)" if executor is None
                         else f"on {getattr(executor, 'label', backend)}"),
                      soft_wrap=True)
            state["start"] = time.perf_counter()
            if progress is not None:
                state["task"] = progress.add_task("", total=total, completed=skipped)
                progress.start()

        def on_run(result: Any, done: int, total: int) -> None:
            state["ran"] += 1
            after = [r for r in result.rows if r["phase"] != "intact"]
            loss = float(np.nanmean([r["loss_fraction"] for r in after])) if after else float("nan")
            label = f"{result.run}: loss after the failure {100 * loss:.2f}%, {result.wall_s:.1f} s"
            if progress is not None:
                progress.update(state["task"], completed=done, description=label)
            else:
                elapsed = time.perf_counter() - state["start"]
                eta = elapsed / state["ran"] * (total - done)
                err.print(f"[{done}/{total}] {label} (elapsed {elapsed:.0f} s, eta {eta:.0f} s)", soft_wrap=True)

        meta_dir = config.meta_init or str(Path(config.output) / "meta")

        def on_meta_chunk(row: dict[str, Any]) -> None:
            err.print(f"meta-training into {meta_dir} ({config.meta_iterations} iterations): {row['episodes']} episodes, "
                      f"{row.get('seconds', 0):.1f} s for the last iteration, delivered "
                      f"{100 * (row.get('delivered_fraction') or 0):.1f}%", soft_wrap=True)

        finished = False
        try:
            outcome = run_failure_experiment(config, executor=executor, on_start=on_start, on_run=on_run,
                                             on_meta_chunk=on_meta_chunk, meta_executor=meta_executor)
            finished = True
        except KeyboardInterrupt:
            if progress is not None:
                progress.stop()
            _print_error(f"interrupted after {state['ran']} new run(s); {config.output}/curves.csv keeps every finished run — "
                         "re-run the same command to resume")
            raise typer.Exit(130) from None
        finally:
            if progress is not None:
                progress.stop()
            if meta_executor is not None:  # before `executor`, which may own the Ray instance
                meta_executor.close(wait=False)
            if executor is not None:
                executor.close(wait=finished)
        written = write_failure_report(outcome.output, formats=fmts, rows=outcome.rows)
        console = _wide_stdout()
        console.print(f"failure experiment finished: {outcome.total_runs} runs ({outcome.ran} run, {outcome.skipped} already done) "
                      f"in {outcome.wall_time_s:.1f} s → {outcome.output}", soft_wrap=True)
        table = Table(title="Episodes to adapt after the failure (rule: docs/failures.md)", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("link", "controller", "to adapt", "loss < 1% after", "plateau reward", "loss", "sojourn", "band/noise"):
            table.add_column(column, no_wrap=True, justify="left" if column in ("link", "controller") else "right")
        for t in table2(outcome.rows):
            def count(est: Any, reached: int) -> str:
                if reached == 0:
                    return f"> {t.budget}"
                return f"{est.mean:.4g}" + ("" if reached == len(t.seeds) else f" ({reached}/{len(t.seeds)})")
            table.add_row(t.failure + (" (held out)" if t.held_out else ""), controller_label(t.controller),
                          count(t.episodes_to_adapt, t.adapted_seeds), count(t.episodes_to_low_loss, t.low_loss_seeds),
                          str(t.plateau_reward), f"{100 * t.plateau_loss_fraction.mean:.2f}%",
                          str(t.plateau_sojourn_time), f"{t.band_to_noise.mean:.2g}")
        console.print(table)
        for path in written:
            err.print(f"wrote {path}")


def _set_overrides(items: Optional[list[str]]) -> dict[str, Any]:
    """`--set KEY=VALUE` options as a dict; values are JSON where they parse, else strings."""
    import json as _json

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MamrlError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = _json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@app.command()
def reproduce(
    topology: Optional[list[str]] = typer.Option(None, "--topology", "-t", metavar="NAME|PATH", help="Topology (repeatable). Default: b4 for quick; b4, geant and att for paper."),
    preset: str = typer.Option("quick", "--preset", metavar="NAME", help="quick (reduced budgets: b4 in under 20 minutes on 2 cores) or paper (the paper's budgets: days of CPU)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="DIR", help="Report folder (default: runs/reproduce-<preset>); re-running resumes into it."),
    workers: int = typer.Option(2, "--workers", "-j", metavar="N", help="Parallel worker processes of the sweep, saturation and failure stages (1 = in process)."),
    backend: str = typer.Option("local", "--backend", metavar="NAME", help=_BACKEND_HELP),
    address: Optional[str] = typer.Option(None, "--address", metavar="HOST:PORT", help=_ADDRESS_HELP),
    set_: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE", help="Change a preset value by dotted name, e.g. sweep.train_episodes=500 or failures.meta_iterations=20 (repeatable; JSON values)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved configuration and the stages already done, then exit."),
) -> None:
    """Reproduce the paper's evaluation in one command: E1 (load sweep, Fig. 4, the λ = 0.5
    comparison), saturation loads, meta-training, E2 (link failures, Figs. 5-7, Table 2) and
    REPORT.md with the paper's numbers beside ours.

    Every stage is resumable: re-running the same command after an interruption skips finished
    stages and finished cells and runs; a different configuration in the same folder is refused.
    """
    with _user_errors():
        import json as _json

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from mamrl.experiments.reproduce_config import STAGES, Manifest, build_reproduce_config
        from mamrl.report.reproduce import StageListener, run_reproduce

        config = build_reproduce_config(preset=preset, topologies=topology or None, overrides=_set_overrides(set_),
                                        workers=workers, backend=backend, address=address, output=output)
        err = _stderr()
        if dry_run:
            existing = Manifest(config).existing()
            done = [name for name, _ in STAGES if existing and existing["stages"].get(name, {}).get("status") == "done"]
            _stdout().print(_json.dumps({**config.as_dict(), "config_hash": config.config_hash()}, indent=2), soft_wrap=True)
            _stdout().print(f"stages already done in {config.output}: {', '.join(done) or 'none'}", soft_wrap=True)
            return

        numbers = {name: k + 1 for k, (name, _) in enumerate(STAGES)}
        progress = None
        if err.is_terminal:
            progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TextColumn("eta"),
                                TimeRemainingColumn(), TextColumn("{task.fields[detail]}"), console=err, transient=True)

        class Listener(StageListener):
            """Draws each stage as a rich progress bar (or prints a line per step when stderr is not a terminal)."""

            def __init__(self) -> None:
                self.tasks: dict[str, Any] = {}
                self.current = ""

            def _label(self, name: str, title: str) -> str:
                return f"[{numbers[name]}/{len(STAGES)}] {title}"

            def opened(self, stages_done: Any) -> None:
                where = (f"{config.workers} worker(s)" if config.backend == "local"
                         else f"backend ray at {config.address or 'a local instance'}")
                err.print(f"reproduce: preset {config.preset} on {', '.join(config.topologies)} into {config.output}, {where}"
                          + (" (reduced budgets: not the paper's numbers)" if config.reduced else "")
                          + (f"; resuming, done: {', '.join(stages_done)}" if stages_done else ""), soft_wrap=True)

            def stage_started(self, name: str, title: str, total: int, completed: int, unit: str) -> None:
                self.current = title
                if progress is not None:
                    self.tasks[name] = progress.add_task(self._label(name, title), total=max(total, 1),
                                                         completed=completed, unit=unit, detail="")
                else:
                    err.print(f"{self._label(name, title)}: {total} {unit}, {completed} already done", soft_wrap=True)

            def advanced(self, name: str, completed: int, total: int, detail: str) -> None:
                if progress is not None and name in self.tasks:
                    progress.update(self.tasks[name], completed=completed, detail=detail)
                else:
                    err.print(f"  [{completed}/{total}] {detail}", soft_wrap=True)

            def stage_finished(self, name: str, title: str, wall_s: float, skipped: bool) -> None:
                if progress is not None and name in self.tasks:
                    progress.remove_task(self.tasks.pop(name))
                state = "already done" if skipped else "done"
                err.print(f"{self._label(name, title)}: {state} ({wall_s:.0f} s)", soft_wrap=True)

        listener = Listener()
        try:
            if progress is not None:
                with progress:
                    outcome = run_reproduce(config, listener=listener)
            else:
                outcome = run_reproduce(config, listener=listener)
        except KeyboardInterrupt:
            _print_error(f"interrupted during {listener.current or 'start-up'}; {config.output} keeps every finished stage, "
                         "cell and run — re-run the same command to resume")
            raise typer.Exit(130) from None
        ran = [name for name, state in outcome.stages.items() if state == "ran"]
        skipped = [name for name, state in outcome.stages.items() if state == "skipped"]
        _wide_stdout().print(
            f"reproduce finished in {outcome.wall_time_s:.0f} s (stages run: {', '.join(ran) or 'none'}; "
            f"already done: {', '.join(skipped) or 'none'}) → {outcome.report}", soft_wrap=True)


def _wide_stdout() -> Console:
    """stdout, at least 120 columns wide when it is not a terminal (logs keep table rows whole)."""
    console = _stdout()
    if not console.is_terminal:
        console.width = max(console.width, 120)
    return console


def _positive_number(text: str, option: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise MamrlError(f"{option} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise MamrlError(f"{option} must be a finite number > 0, got {text!r}")
    return value


# ------------------------------------------------------------------------------ entry point
def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, turning stray user errors into one line and exit 2."""
    try:
        app(args=argv, prog_name="mamrl")
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except MamrlError as exc:
        _print_error(str(exc))
        return 2
    except OSError as exc:
        _print_error(_os_error_message(exc))
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
