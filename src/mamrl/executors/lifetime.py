"""Worker processes that die with the process that started them.

A SIGKILL'ed `mamrl` cannot clean up, and its process pool would otherwise outlive it for ever:
each worker holds the forkserver's "alive" pipe and its own task queue open, so neither the
forkserver nor the worker ever sees its end (about 1.2 GB at `-j 2`). On Linux each of them asks
the kernel to SIGKILL it when its parent dies (`prctl(PR_SET_PDEATHSIG)`): the forkserver when
the main process dies (`mamrl.executors.forkserver_preload`, imported first by the forkserver),
each worker when the forkserver dies (`die_with_parent` as the pool's initializer). The resource
tracker then sees every holder of its pipe gone and exits by itself.

Caveat: the kernel's "parent" is the *thread* that forked. The forkserver is started by whichever
thread first submits to a pool; if that thread ends while the main process lives on, the
forkserver is killed and started again by the next pool (multiprocessing checks it is alive).
Elsewhere than Linux this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
"""`prctl` option: the signal this process gets when its parent (thread) dies."""


def die_with_parent(main_pid: int | None = None) -> bool:
    """Ask the kernel (Linux) to SIGKILL this process when its parent dies; returns whether it
    could. With `main_pid`, a process whose main process is already gone (it died before the
    request took effect) exits at once."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if main_pid is not None and not _alive(main_pid):
        os._exit(1)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def in_forkserver() -> bool:
    """Whether this code runs while multiprocessing's forkserver is starting (imports its preload)."""
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "main" and frame.f_globals.get("__name__") == "multiprocessing.forkserver":
            return True
        frame = frame.f_back
    return False


__all__ = ["PR_SET_PDEATHSIG", "die_with_parent", "in_forkserver"]
