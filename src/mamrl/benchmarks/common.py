"""What the benchmarks share: timing, the machine they ran on, and their sections of a markdown file.

Each benchmark writes its own section of BENCHMARKS.md between its start and end markers
(`write_section`), so running one benchmark keeps the others' sections.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import mamrl
from mamrl.runs import cpu_model, write_text


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in seconds of `repeats` calls of `fn`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_ticks() -> tuple[int, int] | None:
    """(stolen, total) CPU time of the whole machine in clock ticks so far, from /proc/stat's
    first line; None where it does not exist (not Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return ticks[7], sum(ticks)


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of the machine's CPU time between two `cpu_ticks` readings that the hypervisor gave
    to other guests (steal): on a shared VM, what a wall-clock figure lost to its neighbours."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def _torch_threads() -> int:
    # lazy: torch takes ~1 s to import; only the deep benchmarks pay for it
    import torch

    return torch.get_num_threads()


def machine_info(single_core: bool = True) -> dict[str, str]:
    """CPU model, cores, OS and library versions of this machine; `single_core=False` for
    benchmarks whose torch work uses torch's threads."""
    cpu = cpu_model()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    # lazy: keeps the benchmark helpers light
    import numba

    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} logical ({usable} usable by this process)"
                 + ("; the benchmark uses one" if single_core else f"; torch uses {_torch_threads()} threads"),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "mamrl": mamrl.__version__,
    }


def human(rate: float) -> str:
    """A rate with a k/M/G suffix and three significant figures."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(rate) >= factor:
            return f"{rate / factor:.3g}{suffix}"
    return f"{rate:.3g}"


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a markdown table: the first two columns left-aligned, the rest right-aligned."""
    lines = ["| " + " | ".join(columns) + " |", "|---|---|" + "---:|" * (len(columns) - 2)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def close_section(lines: list[str], machine: dict[str, str], end: str) -> str:
    """A benchmark section's text: its `lines`, then the machine line and the `end` marker."""
    return "\n".join([*lines, "- Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), end]) + "\n"


def write_section(path: str | Path, section: str, start: str, end: str) -> None:
    """Replace (or append) the section between the `start` and `end` markers of a markdown file."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section.rstrip("\n") + after
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    write_text(path, text)


def command_line(command: str, *options: str | None) -> str:
    """The command that produced a report, for its header: `command` and the options given (None: left out)."""
    return " ".join([command, *(option for option in options if option)])


__all__ = ["close_section", "cpu_ticks", "human", "machine_info", "markdown_table", "median_time", "steal_share",
           "write_section"]
