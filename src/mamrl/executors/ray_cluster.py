"""The Ray backend (`--backend ray [--address HOST:PORT]`): sweep cells, failure-experiment
runs and MAML's per-task meta-training work as Ray tasks, on a local Ray instance or on a cluster.

A task is the same pure function of its task object as on the local process pool (`run_cell`,
`run_failure_run`, `maml.run_task_single_threaded`): nothing is shared between tasks and every row is computed from the task's
seeds alone, so both backends give identical results, and the caller writes and re-orders rows
exactly as it does for the local pool (results files resume the same way).

Multi-node clusters: the run function is shipped by reference (module and name), so mamrl must
be installed on every node (`pip install 'mamrl[ray]'`). Tasks run in the driver's working
directory where a node has it; files a config names (a topology directory, the failure
experiment's meta-initialisation) must be at the same path on every node, e.g. on a shared
filesystem. Built-in topologies need no files.

Ray is optional: it is imported only when a `RayCellExecutor` is made.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from mamrl.errors import MamrlError
from mamrl.executors.base import CellExecutor, CellFailed, available_cores, single_threaded

MISSING_RAY = "--backend ray needs Ray: pip install 'mamrl[ray]'"
"""The one-line error when Ray is not installed."""

CONNECT_TIMEOUT_S = 5.0
"""How long to try reaching a cluster's address before giving up (ray.init itself would retry
for minutes)."""

GCS_PORT = 6379
"""The head node's default port (`ray start --head`)."""

CLIENT_PORT = 10001
"""The Ray Client server's default port (`ray://HOST`)."""

_START_HINT = "start one with `ray start --head` on the head node, or check the address"


# ------------------------------------------------------------------------------ addresses
def parse_address(address: str) -> tuple[str, int]:
    """(host, port) of `HOST[:PORT]`, `[IPv6]:PORT` or `ray://HOST[:PORT]` (the Ray Client)."""
    text = address.strip()
    client = text.startswith("ray://")
    rest = text[len("ray://"):] if client else text
    default = CLIENT_PORT if client else GCS_PORT
    if rest.startswith("["):  # [v6]:port
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
        if tail and not tail.startswith(":"):
            host = ""
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    else:  # a bare host (or a bare IPv6 address)
        host, port_text = rest, ""
    if not host or "/" in host or " " in host:
        raise MamrlError(f"--address: expected HOST:PORT (e.g. 10.0.0.1:{GCS_PORT}), got {address!r}")
    try:
        port = int(port_text) if port_text else default
    except ValueError:
        raise MamrlError(f"--address: port {port_text!r} of {address!r} is not a number") from None
    if not 0 < port < 65536:
        raise MamrlError(f"--address: port {port} of {address!r} is out of range")
    return host, port


def is_loopback(address: str) -> bool:
    """Whether `address` names this machine's loopback interface (localhost, 127.x, ::1)."""
    try:
        host, _ = parse_address(address)
    except MamrlError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a one-line MamrlError unless something accepts connections at `address`, and it is
    not an HTTP server (the dashboard's port, 8265, is a common mistake, on which `ray.init`
    would wait for minutes). A Ray head answers in HTTP/2 (gRPC)."""
    host, port = parse_address(address)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc) or type(exc).__name__)
        raise MamrlError(f"cannot reach a Ray cluster at {address} ({reason}): {_START_HINT}") from None
    with sock:
        answer = b""
        try:
            sock.settimeout(min(timeout, 2.0))
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answer = sock.recv(5)
        except OSError:
            pass  # silent or closed: not conclusive, let ray.init decide
    if answer.startswith(b"HTTP/"):
        raise MamrlError(
            f"{address} answers in HTTP, so it is not a Ray cluster's head (the dashboard's port, or a proxy?): "
            f"use the head node's GCS port, {GCS_PORT} unless `ray start --head --port` set another"
        )


# ------------------------------------------------------------------------------ ray
def import_ray(*, loopback: bool) -> Any:
    """The `ray` module, or the one-line MamrlError `MISSING_RAY`.

    Ray reads these settings when it is imported. A local instance (or a cluster on this
    machine's loopback) is kept on the loopback interface; for a remote cluster the node must
    advertise a reachable address, so the setting is left to the environment. Token
    authentication stays off unless the environment asks for it. (`setdefault`: the caller's
    environment wins.)
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if loopback:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        # lazy: optional dependency (mamrl[ray])
        import ray
    except ImportError:
        raise MamrlError(MISSING_RAY) from None
    return ray


def run_remote(run: Callable[[Any], Any], task: Any, cwd: str | None) -> Any:
    """What a Ray worker runs for one task: `run(task)` with one torch thread (like the local
    pool), in the driver's working directory when the node has it, so relative paths in a config
    name the same files."""
    if cwd and os.path.isdir(cwd) and os.getcwd() != cwd:
        os.chdir(cwd)
    with single_threaded():
        return run(task)


def _reason(exc: BaseException) -> str:
    """The first line of what a task raised (a RayTaskError carries it as `cause`)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    if "No module named 'mamrl" in text:
        reason += " (install mamrl on every node: pip install 'mamrl[ray]')"
    return reason


class RayCellExecutor(CellExecutor):
    """Runs tasks as Ray tasks of one CPU each, longest first; yields results as they complete.

    Without `address`, starts a local Ray instance with `workers` CPUs (default: this machine's
    cores) and shuts it down on `close`. With `address` (`HOST:PORT` of a head node started by
    `ray start --head`, `ray://HOST:PORT`, or `auto`), joins that cluster and leaves it running;
    `workers`, if given, caps the cells running at once. A Ray session this process already has
    (a notebook, a test fixture) is used as it is and left open.
    """

    def __init__(self, workers: int | None = None, *, address: str | None = None,
                 run: Callable[[Any], Any], cost: Callable[[Any], float] | None = None,
                 describe: Callable[[Any], str] | None = None):
        """`run` (a top-level function of an installed module: it is shipped by reference)
        computes a task's result on a worker; `cost` orders the tasks (longest first);
        `describe` names a task in errors. Defaults: sweep cells. Raises the one-line
        `MISSING_RAY` error if Ray is not installed."""
        if workers is not None and workers < 1:
            raise MamrlError(f"workers must be >= 1, got {workers}")
        if address is not None and address.strip() != "auto":
            parse_address(address)  # a malformed address is a one-line error now
        self.workers = workers
        self.address = address.strip() if address is not None else None
        self.run = run
        self.cost = cost or (lambda task: 1.0)
        self.describe = describe or (lambda task: f"task {task}")
        self._ray = import_ray(loopback=self.address is None or is_loopback(self.address))
        self._owned = False
        self._remote: Any = None
        self._pending: set[Any] = set()  # refs of unfinished tasks of all calls, for `close`
        self.label = "Ray (not connected)"
        """Where tasks run, for progress messages (set by `connect`)."""

    def connect(self) -> None:
        """Start or join Ray (once); one-line MamrlErrors for an unreachable or unusable cluster."""
        if self._remote is not None:
            return
        ray = self._ray
        if self.address is not None and self.address != "auto":
            check_reachable(self.address)
        where = "a local Ray instance" if self.address is None else f"the Ray cluster at {self.address}"
        if ray.is_initialized():
            where = "the current Ray session"
        else:
            try:
                if self.address is None:
                    # address="local": a new instance of our own, never one found running on this
                    # machine (two test workers or two users' sweeps must not join each other).
                    ray.init(address="local", num_cpus=self.workers or available_cores(), include_dashboard=False,
                             logging_level=logging.WARNING)
                else:
                    ray.init(address=self.address, logging_level=logging.WARNING)
            except Exception as exc:  # ConnectionError, RuntimeError, version mismatches: one line
                action = "cannot start a local Ray instance" if self.address is None else f"cannot join {where}"
                text = str(exc).strip()
                reason = text.splitlines()[0] if text else type(exc).__name__
                hint = "" if self.address is None else f"; {_START_HINT}"
                raise MamrlError(f"{action}: {reason}{hint}") from None
            self._owned = True
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            self.close(wait=False)
            raise MamrlError(f"{where} has no CPUs to run cells on: start workers with `ray start --address=HEAD:{GCS_PORT}`")
        # A local instance of our own has `workers` CPUs; elsewhere `workers` caps the tasks in flight.
        cap = f", at most {self.workers} at once" if self.workers and not (self._owned and self.address is None) else ""
        self.label = f"{where} ({cpus} CPUs{cap})"
        # One CPU per task: the cell itself is single-threaded (run_remote), so Ray's CPU count is
        # the number of cells running at once. Crashed workers are retried (a cell is a pure
        # function of its task); errors raised by a cell are not.
        self._remote = ray.remote(num_cpus=1)(run_remote)

    def map_cells(self, tasks: Sequence[Any]) -> Iterator[Any]:
        if not tasks:
            return
        self.connect()
        ray = self._ray
        # Longest first, submitted from the driver's queue: with a cap (`workers`) this order is
        # exact; without one, Ray's scheduler roughly keeps submission order.
        queue = sorted(tasks, key=self.cost, reverse=True)[::-1]
        limit = self.workers or len(queue)
        cwd = os.getcwd()
        pending: dict[Any, Any] = {}  # this call's unfinished tasks, by object ref
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    task = queue.pop()
                    ref = self._remote.remote(self.run, task, cwd)
                    pending[ref] = task
                    self._pending.add(ref)
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    task = pending.pop(ref)
                    self._pending.discard(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:
                        raise CellFailed(f"{self.describe(task)} failed: {_reason(exc)}") from exc
                    yield result
        finally:
            # The caller stopped early (or a cell failed): the tasks left would only hold CPUs
            # (and, on a cluster that outlives us, run on), and a later call must not see them.
            self._cancel(pending)

    def _cancel(self, refs: Iterable[Any]) -> None:
        """Cancel tasks, killing the workers of those running (force=True). A gentle cancel
        raises KeyboardInterrupt wherever the task is, e.g. half-way through `import torch`,
        and Ray would then reuse that half-initialised worker for the next task."""
        for ref in list(refs):
            self._pending.discard(ref)
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # already finished, or Ray is going away: nothing to cancel
                pass

    def close(self, *, wait: bool = True) -> None:
        """Cancel the tasks not finished (their results would be discarded: unlike the local
        pool, running ones are stopped rather than waited for, whatever `wait`) and shut down a
        Ray instance this executor started; a joined cluster keeps running."""
        self._cancel(self._pending)
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False
        self._remote = None


__all__ = [
    "CLIENT_PORT",
    "CONNECT_TIMEOUT_S",
    "GCS_PORT",
    "MISSING_RAY",
    "RayCellExecutor",
    "check_reachable",
    "import_ray",
    "is_loopback",
    "parse_address",
    "run_remote",
]
