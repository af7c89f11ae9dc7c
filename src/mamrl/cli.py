"""The `mamrl` command line: list topologies, simulate a routing policy, benchmark, plot.

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
    "few packets looks fast; read it beside the delivered fraction and the bias-free sojourn time (SPEC §1)."
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
def _user_errors() -> Iterator[None]:
    """Turn MamrlError / OSError into `error: ...` on stderr and exit code 2."""
    try:
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
    ends = f"{topology.router_names[topology.links[link].a]}-{topology.router_names[topology.links[link].b]}"
    name = topology.link_name(link)
    return ends if name == ends else f"{ends} ({name})"


@dataclass(frozen=True)
class RunSetup:
    """A resolved simulation: parameters, policy tables and the config that describes them."""

    params: Any  # SimParams
    tables: Any  # RoutingTables
    policy: str
    config: dict[str, Any]
    failure_labels: tuple[str, ...]


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
) -> RunSetup:
    """Validate the options and build the simulation they describe (raises MamrlError)."""
    from mamrl.agents import make_policy
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
    policy_key = policy.strip().lower()
    if reconvergence_delay is not None:
        if policy_key != "spa":
            raise MamrlError(f"--reconvergence-delay applies to the spa policy only, not {policy!r}")
        if reconvergence_delay < 0:
            raise MamrlError(f"--reconvergence-delay must be >= 0 ticks, got {reconvergence_delay}")
    routing = make_policy(policy_key, reconvergence_delay_ticks=reconvergence_delay)
    topo = load_topology(topology, demand=demand)
    failures = tuple(LinkFailure.parse(topo, spec) for spec in fail)
    seen: set[int] = set()
    for failure in failures:
        if failure.link in seen:
            raise MamrlError(f"--fail names link {topo.link_name(failure.link)!r} more than once")
        seen.add(failure.link)
    params = SimParams(topo, load_value, horizon_ticks=horizon, failures=failures, buffer_limit=buffer_limit)
    for failure in failures:
        if failure.tick >= horizon:
            _stderr().print(
                f"warning: failure of {_link_label(topo, failure.link)} at tick {failure.tick} is at or after "
                f"the horizon ({horizon} ticks) and has no effect"
            )
    tables = routing.routing_tables(params)
    config = {
        "command": "simulate",
        "topology_spec": topology,
        "demand_file": None if demand is None else str(demand),
        "simulation": params.describe(),
        "policy": {"name": routing.name, "reconvergence_delay_ticks": reconvergence_delay},
        "episodes": episodes,
        "batch_size": batch_size,
        "seed": seed,
    }
    labels = tuple(f"{_link_label(topo, f.link)} @ tick {f.tick}" for f in failures)
    return RunSetup(params, tables, routing.name, config, labels)


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


_TOPOLOGY_HELP = "A built-in topology (b4, geant, att) or a topology file/directory."
_FAIL_HELP = "Fail a link: A-B by router names, a link name or id, optionally @TICK (default 0). Repeatable."


@app.command()
def simulate(
    topology: str = typer.Option("b4", "--topology", "-t", metavar="NAME|PATH", help=_TOPOLOGY_HELP),
    load: str = typer.Option("0.3", "--load", "-l", metavar="LAMBDA", help="λ: new packets per router per tick (Poisson)."),
    policy: str = typer.Option("spa", "--policy", "-p", metavar="NAME", help="Routing policy: spa or random."),
    episodes: int = typer.Option(20, "--episodes", "-n", metavar="N", help="Number of episodes."),
    seed: int = typer.Option(0, "--seed", "-s", metavar="SEED", help="Seed; episode k's traffic depends only on (seed, k)."),
    horizon: int = typer.Option(500, "--horizon", metavar="TICKS", help="Episode length in ticks."),
    fail: list[str] = typer.Option([], "--fail", metavar="LINK[@TICK]", help=_FAIL_HELP),
    reconvergence_delay: Optional[int] = typer.Option(
        None, "--reconvergence-delay", metavar="TICKS", help="spa: recompute shortest paths this many ticks after a failure."
    ),
    buffer_limit: Optional[int] = typer.Option(None, "--buffer-limit", metavar="N", help="Max packets per router queue (drop-tail)."),
    demand: Optional[Path] = typer.Option(None, "--demand", metavar="FILE", help="Demand file replacing the packet-size table."),
    batch_size: int = typer.Option(32, "--batch-size", metavar="B", help="Episodes simulated together."),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Write config, per-episode metrics and summary as JSON."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", metavar="FILE", help="Write one CSV row per episode."),
    out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Write a run directory (config.json, metrics.json, episodes.csv)."),
) -> None:
    """Simulate a routing policy and print every metric with a 95% confidence interval."""
    with _user_errors():
        from mamrl import runs
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
            batch_size=batch_size,
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
                **runs.metrics_document(per_episode, summary),
            }
            runs.write_json(json_out, doc)
            written.append(f"wrote {json_out}")
        if csv_out is not None:
            runs.write_episodes_csv(csv_out, per_episode)
            written.append(f"wrote {csv_out}")
        if out is not None:
            run_dir = runs.write_run_dir(
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

        from mamrl import bench as benchmark
        from mamrl import runs

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
            task = progress.add_task("bench", total=total)
            rows = benchmark.run_bench(settings, on_row=lambda _row: progress.advance(task))
        elapsed = time.perf_counter() - start

        if output is not None:
            runs.write_text(output, benchmark.markdown_report(rows, settings, command, elapsed))
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
        if output is not None:
            err.print(f"wrote {output}")


@app.command("plot-topology")
def plot_topology_command(
    topology: str = typer.Option("b4", "--topology", "-t", metavar="NAME|PATH", help=_TOPOLOGY_HELP),
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="Figure file: .png, .pdf or .svg."),
    load: str = typer.Option("0.3", "--load", "-l", metavar="LAMBDA", help="λ: new packets per router per tick (Poisson)."),
    episodes: int = typer.Option(5, "--episodes", "-n", metavar="N", help="Episodes to average utilisation and losses over."),
    seed: int = typer.Option(0, "--seed", "-s", metavar="SEED", help="Seed of the simulated episodes."),
    policy: str = typer.Option("spa", "--policy", "-p", metavar="NAME", help="Routing policy: spa or random."),
    horizon: int = typer.Option(500, "--horizon", metavar="TICKS", help="Episode length in ticks."),
    fail: list[str] = typer.Option([], "--fail", metavar="LINK[@TICK]", help=_FAIL_HELP),
    reconvergence_delay: Optional[int] = typer.Option(
        None, "--reconvergence-delay", metavar="TICKS", help="spa: recompute shortest paths this many ticks after a failure."
    ),
    buffer_limit: Optional[int] = typer.Option(None, "--buffer-limit", metavar="N", help="Max packets per router queue (drop-tail)."),
    demand: Optional[Path] = typer.Option(None, "--demand", metavar="FILE", help="Demand file replacing the packet-size table."),
) -> None:
    """Draw a topology with link utilisation and per-router losses from a simulation."""
    with _user_errors():
        from mamrl.plotting.topology import FORMATS, format_title, layout_note, plot_topology, save_figure

        if output.suffix.lower() not in FORMATS:
            raise MamrlError(f"--output {str(output)!r}: use a .png, .pdf or .svg file name")
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
