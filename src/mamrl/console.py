"""What the `mamrl` command shows, in one place: one-line errors, consoles, one progress helper
and rich tables. The command line (`mamrl.cli`) parses options, calls one library function and
prints through these helpers; nothing here is needed by a library user.

Every user mistake (a `MamrlError`, or an output file that cannot be written) ends a command with
one line `error: <message>` on stderr and exit code 2, never a traceback; an interruption (Ctrl-C,
SIGTERM, SIGHUP) ends it with one line saying what was kept and exit code 130.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text
from rich.table import Table

from mamrl.errors import MamrlError


# ------------------------------------------------------------------------------ errors
def one_line(message: str) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip()) or "unknown error"


def print_error(message: str) -> None:
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()


def os_error_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def quiet_stdout() -> None:
    """After the reader of stdout went away (`| head`): send further output, including the
    interpreter's final flush, to /dev/null instead of raising BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


@contextmanager
def termination_as_interrupt() -> Iterator[None]:
    """Make SIGTERM and SIGHUP (`kill`, a closed terminal, the end of a batch job) raise
    KeyboardInterrupt like Ctrl-C, so long commands record the interrupted attempt (a reproduction's
    stage wall time), keep what they finished and print how to resume instead of dying silently.
    A signal the caller chose to ignore (`nohup` ignores SIGHUP) stays ignored."""
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
def user_errors(interrupted: Callable[[], str] | None = None) -> Iterator[None]:
    """Turn MamrlError / OSError into `error: ...` on stderr and exit code 2, mamrl's own
    warnings (defaults taken while importing a topology) into `warning: ...` lines, and SIGTERM /
    SIGHUP into KeyboardInterrupt. With `interrupted`, an interruption prints its message (what was
    kept, how to resume) and exits with 130."""
    # lazy: the CLI's console starts without the topology loaders
    from mamrl.topologies.wild import TopologyWarning

    def show(message, category, *rest, **kwargs):
        if issubclass(category, TopologyWarning):
            stderr().print(f"warning: {one_line(str(message))}", markup=False, soft_wrap=True)  # one line, as in a log
        else:
            previous(message, category, *rest, **kwargs)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        with termination_as_interrupt():
            yield
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print_error(interrupted())
        raise typer.Exit(130) from None
    except BrokenPipeError:
        quiet_stdout()
        raise typer.Exit(1) from None
    except MamrlError as exc:
        print_error(str(exc))
        raise typer.Exit(2) from None
    except OSError as exc:
        print_error(os_error_message(exc))
        raise typer.Exit(2) from None
    finally:
        warnings.showwarning = previous


# ------------------------------------------------------------------------------ consoles
def stdout() -> Console:
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def wide_stdout() -> Console:
    """stdout, at least 120 columns wide when it is not a terminal (logs keep table rows whole)."""
    console = stdout()
    if not console.is_terminal:
        console.width = max(console.width, 120)
    return console


def say(*lines: str) -> None:
    """Status lines on stderr (`wrote FILE`, what a command is about to do)."""
    console = stderr()
    for line in lines:
        console.print(line, soft_wrap=True)


# ------------------------------------------------------------------------------ progress
class _TimeRemaining(ProgressColumn):
    """The time left: from the share of the work done when the steps are weighted (`eta_s`),
    else rich's own estimate from the steps' rate."""

    def render(self, task: Task) -> Text:
        seconds = task.fields.get("eta_s")
        if seconds is None:
            seconds = task.time_remaining
        if seconds is None:
            return Text("-:--:--", style="progress.remaining")
        minutes, second = divmod(int(seconds), 60)
        hours, minute = divmod(minutes, 60)
        return Text(f"{hours}:{minute:02d}:{second:02d}", style="progress.remaining")


class ProgressReport:
    """One progress display for every long command: a rich bar on a terminal; otherwise (a log,
    a pipe) one line per step with the elapsed time and an estimate of the time left.

    Steps of unequal cost (a deep learner's sweep cell costs a hundred tabular ones) pass `share`,
    the estimated share of the whole work done after the step; the time left then extrapolates
    that share's rate instead of the steps' count."""

    def __init__(self, label: str, unit: str, *, enabled: bool = True, lines: bool = True):
        """`lines`: print a line per step when stderr is not a terminal (long steps); off for
        fast steps, where a log would only fill up."""
        self.console = stderr()
        self.unit = unit
        self.lines = lines
        self.bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
                            TextColumn("eta"), _TimeRemaining(), TextColumn("{task.description}"),
                            console=self.console, transient=True, disable=not (enabled and self.console.is_terminal))
        self.task: Any = None
        self.start = time.perf_counter()
        self.first = 0  # units done before this process started: not counted in the rate
        self.first_share = 0.0  # the same, as a share of the work (steps given with `share`)
        self.completed = 0

    def __enter__(self) -> "ProgressReport":
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def begin(self, total: int, completed: int = 0, share: float | None = None) -> None:
        self.task = self.bar.add_task("", total=max(total, 1), completed=completed, eta_s=None)
        self.start, self.first, self.completed = time.perf_counter(), completed, completed
        self.first_share = share or 0.0

    def skip(self, completed: int, total: int, detail: str = "", share: float | None = None) -> None:
        """Units found already done (a resumed run): shown, but kept out of the rate behind the eta."""
        if self.task is None:
            self.begin(total, self.completed)
        self.first += completed - self.completed
        if share is not None:
            self.first_share = share
        self.update(completed, total, detail)

    def _remaining_s(self, elapsed: float, completed: int, total: int, share: float | None) -> float | None:
        """Seconds left at this process's rate: of the work's share when given, else of steps."""
        if share is not None:
            done, left = share - self.first_share, 1.0 - share
        else:
            done, left = completed - self.first, total - completed
        return left * elapsed / done if done > 0 and elapsed > 0 else None

    def update(self, completed: int, total: int, detail: str = "", share: float | None = None) -> None:
        if self.task is None:
            self.begin(total)
        self.completed = completed
        elapsed = time.perf_counter() - self.start
        remaining = self._remaining_s(elapsed, completed, total, share)
        self.bar.update(self.task, completed=completed, description=detail, eta_s=remaining if share is not None else None)
        if self.bar.disable and self.lines:
            eta = f", eta {remaining:.0f} s" if remaining is not None else ""
            self.console.print(f"[{completed}/{total}] {detail} (elapsed {elapsed:.0f} s{eta})", soft_wrap=True)

    def advance(self, steps: int = 1) -> None:
        if self.task is not None:
            self.bar.advance(self.task, steps)


# ------------------------------------------------------------------------------ tables
def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1,
          compact: bool = False) -> Table:
    """A rich table: the first `left` columns left-aligned, the rest right-aligned."""
    out = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=not compact, collapse_padding=compact)
    for k, column in enumerate(columns):
        out.add_column(column, justify="left" if k < left else "right", no_wrap=k < left, overflow="fold")
    for row in rows:
        out.add_row(*row)
    return out


_LEADING_METRICS = ("mean_delivery_time", "delivered_fraction", "mean_sojourn_time")
"""The paper's metric first, with the two figures that keep it honest right beside it."""


def metrics_table(summary: dict[str, Any], title: str) -> Table:
    """Every metric as mean ± 95% CI, the paper's metric and its correctives first."""
    # lazy: the CLI's console starts without the compiled simulator
    from mamrl.sim.metrics import METRIC_INFO

    out = Table(title=title, title_justify="left")
    out.add_column("metric", no_wrap=True)
    out.add_column("mean ± 95% CI", justify="right", no_wrap=True)
    out.add_column("unit", no_wrap=True)
    order = [*_LEADING_METRICS, *(k for k in METRIC_INFO if k not in _LEADING_METRICS)]
    for k, key in enumerate(order):
        label, unit = METRIC_INFO[key]
        out.add_row(label, str(summary[key]), unit, end_section=k == len(_LEADING_METRICS) - 1)
    return out


def print_tables(*tables: Table) -> None:
    console = wide_stdout()
    for t in tables:
        console.print(t)


__all__ = [
    "ProgressReport",
    "metrics_table",
    "one_line",
    "os_error_message",
    "print_error",
    "print_tables",
    "quiet_stdout",
    "say",
    "stderr",
    "stdout",
    "table",
    "termination_as_interrupt",
    "user_errors",
    "wide_stdout",
]
