"""What every run writes, in one place (shared infrastructure at the bottom of the layer stack):

* provenance: version, git commit and date (`provenance`);
* strict JSON (`dumps`, `jsonable`: NaN becomes null);
* atomic writes (`atomic_file`, `write_text`, `write_bytes`, `write_json`): a temporary file
  beside the target, fsync'ed and renamed over it, so a kill at any moment leaves the old file or
  the complete new one;
* resumable results tables (`ResultsTable`, `TableSchema`): a CSV of rows appended durably,
  with a JSON sidecar holding the resolved config and its hash, refused on a different config;
* run directories that never overwrite an earlier run (`new_run_dir`);
* output locks (`lock_output`): one run at a time per output folder or results file;
* damaged-file checks: JSON metadata read with one-line errors (`read_json`), file records
  (size and sha256) and their verification (`file_record`, `changed_files`);
* checkpoints written atomically with one-line errors (`save_torch`);
* wall time over attempts, killed ones included (`AttemptClock`).
"""

from __future__ import annotations

import ast
import contextlib
import csv
import dataclasses
import datetime as _dt
import functools
import hashlib
import io
import json
import math
import os
import platform
import sys
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import mamrl
from mamrl.errors import MamrlError


# ------------------------------------------------------------------------------ provenance
def git_commit() -> dict[str, Any] | None:
    """`{"commit": sha, "dirty": bool}` of the checkout mamrl runs from, or None if it is not one.
    `dirty` means tracked files differ from HEAD (untracked files are ignored).

    Read-only: `rev-parse` and `diff-index` with optional locks disabled, so it never touches the
    index of a repository someone else is working in.
    """
    package_dir = Path(mamrl.__file__).resolve().parent
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=package_dir, env=env, capture_output=True, text=True, timeout=10, check=False
        )

    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0:
            return None
        # Only trust the repository if it is mamrl's own (src layout), not some enclosing one.
        if (Path(top.stdout.strip()) / "src" / "mamrl").resolve() != package_dir:
            return None
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("diff-index", "--quiet", "HEAD", "--").returncode != 0
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict[str, Any]:
    """Version, commit and date of a run (the date in UTC, ISO 8601)."""
    return {
        "mamrl_version": mamrl.__version__,
        "git": git_commit(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }


def cpu_model() -> str:
    """This machine's CPU model (`/proc/cpuinfo`'s model name where there is one): wall times
    measured on different machines (cloud VMs change between attempts) are read apart."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()  # may run `uname -p`: only where /proc has no answer


def machine_label() -> str:
    """CPU model and logical cores, as a run's attempts record them (`attempts.json`, the manifest)."""
    return f"{cpu_model()}, {os.cpu_count()} logical cores"


# ------------------------------------------------------------------------------ JSON helpers
def jsonable(value: Any) -> Any:
    """`value` with numpy scalars/arrays turned into Python values and NaN/inf into None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # e.g. an Estimate
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(doc: Any) -> str:
    """Strict JSON text (no NaN) of `doc`, indented, ending with a newline."""
    return json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n"


# ------------------------------------------------------------------------------ writers
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


NEW_FILE_MODE = 0o666 & ~_umask()
"""Permissions of written files: those `open` would give (mkstemp's temporary files are 0600,
which would leave results unreadable to the rest of a group)."""


def _prepare_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MamrlError(f"cannot create directory {str(path.parent)!r}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "w") -> Iterator[Any]:
    """Open a temporary file beside `path` for writing (`mode` "w" text or "wb" bytes); on a
    clean exit it is flushed, fsync'ed and renamed over `path`, so a reader (or a resumed run
    after a kill) sees either the old file or the complete new one, never a partial one. On any
    error the temporary file is removed; an OSError becomes a one-line MamrlError.

    The temporary name is unique (`mkstemp`), so two writers never share one."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise MamrlError(f"cannot write {str(path)!r}: it is a directory")
    _prepare_parent(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise MamrlError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if mode == "w" else {})) as handle:
            os.fchmod(handle.fileno(), NEW_FILE_MODE)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MamrlError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_output_file(path: str | os.PathLike[str] | None, option: str) -> None:
    """Refuse, before any work, an output file name that is a directory (None: no output)."""
    if path is not None and Path(path).is_dir():
        raise MamrlError(f"{option} {str(path)!r} is a directory, expected a file name")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a text file atomically (`atomic_file`), creating parent directories."""
    with atomic_file(path, "w") as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write a binary file atomically (`atomic_file`), creating parent directories."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)
    return Path(path)


STDOUT = "-"
"""The output file name that means standard output (`--json -`)."""


def is_stdout(path: str | os.PathLike[str] | None) -> bool:
    """Whether an output file option names standard output (`-`)."""
    return path is not None and str(path) == STDOUT


def write_json(path: str | os.PathLike[str], doc: Any) -> Path:
    """Write `doc` as JSON to `path` atomically, or to standard output if `path` is `-`."""
    if is_stdout(path):
        sys.stdout.write(dumps(doc) + "\n")
        sys.stdout.flush()
        return Path(STDOUT)
    return write_text(path, dumps(doc))


def save_torch(path: str | os.PathLike[str], payload: Any, what: str = "checkpoint") -> Path:
    """`torch.save(payload)` to `path` atomically. The payload is serialised in memory first (a
    checkpoint here is small), so a failed write is an OSError of our own write, not torch's
    RuntimeError: a full disk is one line (`could not write checkpoint <path>: No space left on
    device`) and no temporary file is left behind."""
    # lazy: torch takes ~1 s to import; runs.py is imported by every command
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    try:
        return write_bytes(path, buffer.getvalue())
    except MamrlError as exc:
        raise MamrlError(f"could not write {what} {path}: {str(exc).rpartition(': ')[2]}") from None


def read_json(path: str | os.PathLike[str], what: str, recover: str) -> Any:
    """The JSON document of run metadata `path`; a missing, empty, truncated or invalid file is
    one line naming it, `what` it is and how to `recover`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MamrlError(f"{what} {path} does not exist; {recover}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MamrlError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}; {recover}") from None
    if not text.strip():
        raise MamrlError(f"{what} {path} is empty (a write cut short?); {recover}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise MamrlError(f"{what} {path} is damaged (not valid JSON: {exc}); {recover}") from None


# ------------------------------------------------------------------------------ file records
def file_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """`{"size": bytes, "sha256": hex}` of a file, to notice later that it changed."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"size": size, "sha256": digest.hexdigest()}


def changed_files(base: str | os.PathLike[str], records: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(relative path, what is wrong) of each file of `records` (relative path -> `file_record`
    under `base`) that is missing, of another size or another content."""
    problems = []
    for name, record in records.items():
        path = Path(base) / name
        if not path.is_file():
            problems.append((name, "missing"))
            continue
        try:
            now = file_record(path)
        except OSError as exc:
            problems.append((name, f"unreadable ({exc.strerror or exc})"))
            continue
        if not isinstance(record, Mapping) or now["size"] != record.get("size"):
            size = record.get("size") if isinstance(record, Mapping) else None
            problems.append((name, f"{now['size']} bytes, {size} when written (truncated or changed)"))
        elif now["sha256"] != record.get("sha256"):
            problems.append((name, "content changed since it was written"))
    return problems


# ------------------------------------------------------------------------------ output locks
LOCK_NAME = ".mamrl.lock"
"""The lock file of an output directory (a results file's is `.<name>.lock` beside it). It stays
after the run (removing it would race with a run taking it); emptiness checks ignore it."""

_held_locks: dict[Path, list[int]] = {}
"""Lock file -> [descriptor, depth] of the locks this process holds: a lock taken again by the
same process (`mamrl reproduce` runs stages that lock their own folders) is re-entrant, where a
second `flock` on a new descriptor would conflict with the first."""


def lock_path_of(path: str | os.PathLike[str], *, directory: bool = True) -> Path:
    """The lock file of output directory `path` (`directory=False`: of output file `path`)."""
    path = Path(path)
    return path / LOCK_NAME if directory else path.with_name(f".{path.name}.lock")


def is_lock_file(path: Path) -> bool:
    return path.name == LOCK_NAME or (path.name.startswith(".") and path.name.endswith(".lock"))


@contextlib.contextmanager
def lock_output(path: str | os.PathLike[str], option: str = "--output", *, directory: bool = True) -> Iterator[Path]:
    """Hold an exclusive lock on output directory `path` (`directory=False`: on output file `path`,
    via a lock file beside it) while a run writes there; a second run gets one line naming the
    folder, the pid holding it and `option` to choose another. The kernel drops an `flock` when
    its holder dies, so a killed run leaves no stale lock. Re-entrant within a process. (Where
    `fcntl` does not exist, on Windows, runs are not locked.)"""
    target = Path(path)
    if directory and target.exists() and not target.is_dir():
        raise MamrlError(f"{option} {str(target)!r} exists and is not a directory")
    lock_path = lock_path_of(target, directory=directory)
    try:
        # lazy: fcntl is POSIX-only; where it is missing the lock is skipped (below)
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield target
        return
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "output directory" if directory else "directory"
        raise MamrlError(f"cannot create {what} {str(lock_path.parent)!r}: {exc.strerror or exc}") from None
    key = lock_path.resolve()
    held = _held_locks.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield target
        finally:
            held[1] -= 1
        return
    try:
        fd = os.open(key, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise MamrlError(f"cannot lock {str(target)!r} ({lock_path.name}): {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            except OSError:
                pid = "unknown"
            raise MamrlError(f"{target} is in use by another mamrl run (pid {pid}); wait for it or choose another {option}") from None
        except OSError as exc:
            raise MamrlError(f"cannot lock {str(target)!r} ({lock_path.name}): {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        _held_locks[key] = [fd, 1]
        try:
            yield target
        finally:
            del _held_locks[key]
    finally:
        os.close(fd)  # releases the flock


# ------------------------------------------------------------------------------ wall time over attempts
class AttemptClock:
    """Wall time of a run over all its attempts, killed ones included, in a JSON file
    (`attempts.json` of a run folder): `start()` adds an attempt, `tick()` (at each checkpoint or
    finished unit of work) and `stop()` store its elapsed seconds. A killed attempt keeps the time
    up to its last tick. Each attempt also records the version and commit that ran it (a resumed
    run's code may change between attempts, and `run.json` keeps only the last one's) and the
    machine's CPU (a resumed run may continue on another machine). Damaged or
    foreign content is started afresh (it is bookkeeping only)."""

    FORMAT = "mamrl-attempts-1"

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.attempts: list[dict[str, Any]] = []
        self._start = 0.0

    def start(self) -> "AttemptClock":
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            attempts = doc["attempts"] if doc.get("format") == self.FORMAT else []
            self.attempts = [a for a in attempts if isinstance(a, dict) and isinstance(a.get("wall_s"), (int, float))]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.attempts = []
        made = provenance()
        self.attempts.append({"started_utc": made["date_utc"], "mamrl_version": made["mamrl_version"], "git": made["git"],
                              "cpu": machine_label(), "wall_s": 0.0, "finished": False})
        self._start = time.perf_counter()
        self._save()
        return self

    def elapsed(self) -> float:
        """Seconds of the current attempt so far."""
        return time.perf_counter() - self._start

    def tick(self, *, finished: bool = False) -> None:
        self.attempts[-1].update(wall_s=round(self.elapsed(), 3), finished=finished)
        self._save()

    def stop(self) -> None:
        self.tick(finished=True)

    def total_s(self) -> float:
        """Wall seconds of every attempt (the current one up to its last tick)."""
        return round(sum(float(a["wall_s"]) for a in self.attempts), 3)

    def _save(self) -> None:
        write_json(self.path, {"format": self.FORMAT, "total_wall_s": self.total_s(), "attempts": self.attempts})


# ------------------------------------------------------------------------------ run directories
def new_run_dir(path: str | os.PathLike[str]) -> Path:
    """The directory a run asked to go to `path` will be written to.

    `path` itself if it does not exist or is an empty directory; otherwise the first free
    `path-2`, `path-3`, ... (never overwrite an earlier run). A file at `path` is an error.
    """
    base = Path(path)
    if base.exists() and not base.is_dir():
        raise MamrlError(f"run directory {str(base)!r} exists and is not a directory")
    candidate = base
    k = 1
    while candidate.exists() and (not candidate.is_dir() or any(not is_lock_file(p) for p in candidate.iterdir())):
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


# ------------------------------------------------------------------------------ configs
def config_hash(resolved: Mapping[str, Any]) -> str:
    """12 hex digits identifying a resolved config (tags every results row)."""
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def config_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields in which two resolved configs differ."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(name)
            else:
                out.extend(config_differences(old[key], new[key], name))
        return out
    return [] if old == new else [prefix or "(config)"]


def summarise_differences(differences: list[str], limit: int = 8) -> str:
    """`a, b.c and 3 more`: the first `limit` names of `config_differences`, for one-line errors."""
    return ", ".join(differences[:limit]) + (f" and {len(differences) - limit} more" if len(differences) > limit else "")


@functools.lru_cache(maxsize=None)
def field_docs(module: str, class_name: str) -> dict[str, str]:
    """The field docstrings (the string literal under each field, on one line) of dataclass
    `class_name` in mamrl module `module`, read from its source without importing it: the command
    line's option help comes from them (so the two cannot drift apart) at no start-up cost."""
    relative = module.split(".")[1:]  # "mamrl.experiments.config" -> experiments/config.py
    path = Path(mamrl.__file__).resolve().parent.joinpath(*relative).with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = next((node.body for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name), None)
    if body is None:
        raise ValueError(f"no class {class_name} in {module}")
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


# ------------------------------------------------------------------------------ results tables
Row = dict[str, Any]


@dataclass(frozen=True)
class TableSchema:
    """The columns of a results CSV and how their values are written and read."""

    columns: tuple[str, ...]
    """Header, in order."""
    int_columns: frozenset[str] = frozenset()
    """Columns holding integers; the others not in `str_columns` hold floats (NaN: an empty cell)."""
    str_columns: frozenset[str] = frozenset()
    """Columns holding text."""
    what: str = "results file"
    """What such a file is called in messages."""

    def header(self) -> str:
        return _csv_line(self.columns)

    def format_value(self, key: str, value: Any) -> str:
        if key in self.str_columns:
            return str(value)
        if key in self.int_columns:
            return str(int(value))
        number = float(value)
        return repr(number) if math.isfinite(number) else ""

    def format_rows(self, rows: Iterable[Row]) -> str:
        """CSV lines (each with its newline), columns in order; a row lacking a column is an error."""
        out = []
        for row in rows:
            missing = [c for c in self.columns if c not in row]
            if missing:
                raise MamrlError(f"{self.what} row lacks columns {missing}")
            out.append(_csv_line([self.format_value(c, row[c]) for c in self.columns]))
        return "".join(out)

    def parse_value(self, key: str, text: str) -> Any:
        if key in self.str_columns:
            return text
        if key in self.int_columns:
            return int(text)
        return float(text) if text != "" else float("nan")

    def parse_rows(self, text: str, where: str) -> list[Row]:
        """Rows of complete CSV lines (no header; line numbers count from 2)."""
        rows = []
        for number, fields in enumerate(csv.reader(io.StringIO(text)), start=2):
            if not fields:
                continue
            if len(fields) != len(self.columns):
                raise MamrlError(f"{where} line {number}: expected {len(self.columns)} fields, found {len(fields)} "
                                 f"(corrupt {self.what})")
            try:
                rows.append({c: self.parse_value(c, v) for c, v in zip(self.columns, fields)})
            except ValueError as exc:
                raise MamrlError(f"{where} line {number}: {exc} (corrupt {self.what})") from None
        return rows


def _csv_line(values: Sequence[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


HeaderCheck = Callable[[Path, Sequence[str]], None]
"""Called with a file's header when it is not the schema's: may raise a more specific error
(for example: written by an older version whose metrics differ)."""


def _read_table_text(path: Path, schema: TableSchema) -> str:
    if not path.is_file():
        raise MamrlError(f"{schema.what} {str(path)!r} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MamrlError(f"cannot read {schema.what} {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None


def _header_columns(text: str) -> tuple[str, ...] | None:
    """The columns of the file's first line, if that line is complete."""
    header, newline, _ = text.partition("\n")
    return tuple(next(csv.reader([header]))) if newline and header else None


def _parse_table(text: str, path: Path, schema: TableSchema, check_header: HeaderCheck | None) -> list[Row]:
    """The complete rows of a results CSV's text (a trailing partial line, a write cut short, is ignored)."""
    complete = text[: text.rfind("\n") + 1]
    columns = _header_columns(complete)
    if columns is None:
        return []
    if columns != schema.columns:
        if check_header is not None:
            check_header(path, columns)
        unknown = [c for c in schema.columns if c not in columns]
        raise MamrlError(f"{path}: not a {schema.what} of this mamrl version (header differs"
                         + (f"; missing {', '.join(unknown[:4])}" if unknown else "") + ")")
    return schema.parse_rows(complete.partition("\n")[2], str(path))


def read_table(path: str | os.PathLike[str], schema: TableSchema, *, check_header: HeaderCheck | None = None) -> list[Row]:
    """The complete rows of a results CSV (a trailing partial line, a write cut short, is ignored)."""
    path = Path(path)
    return _parse_table(_read_table_text(path, schema), path, schema, check_header)


class ResultsTable:
    """A resumable results CSV and its JSON sidecar (the resolved config that produced it).

    * `open()` checks an existing file against the config (sidecar present and equal, header,
      every row's config hash) and returns its complete rows, or creates the sidecar and an
      empty file. A trailing partial line is dropped.
    * `append(rows)` appends complete lines in one write, fsync'ed before it returns: a killed
      run loses only the work in progress.
    * `rewrite(rows)` replaces the file atomically (canonical order at the end of a run).

    `kind` names the run in messages ("sweep"); `start_over` ends the refusals ("use a new
    --results file"), naming what the user can do.
    """

    def __init__(self, path: str | os.PathLike[str], schema: TableSchema, *, sidecar: str | os.PathLike[str],
                 sidecar_format: str, resolved: Mapping[str, Any], kind: str, start_over: str,
                 check_header: HeaderCheck | None = None):
        self.path = Path(path)
        self.schema = schema
        self.sidecar = Path(sidecar)
        self.sidecar_format = sidecar_format
        self.resolved = dict(resolved)
        self.hash = config_hash(self.resolved)
        self.kind = kind
        self.start_over = start_over
        self.check_header = check_header

    def check_sidecar(self) -> None:
        """Refuse a sidecar that is unreadable, of another kind, or of a different config."""
        try:
            doc = json.loads(self.sidecar.read_text(encoding="utf-8"))
            if doc["format"] != self.sidecar_format:
                raise ValueError("format")
            old = doc["config"]
        except (OSError, ValueError, KeyError, TypeError):
            raise MamrlError(f"{self.sidecar} is unreadable or not a {self.kind} config; {self.start_over}") from None
        diff = config_differences(old, self.resolved)
        if diff:
            raise MamrlError(f"{str(self.path)!r} belongs to a different {self.kind} config (differs in: {summarise_differences(diff)}); "
                             f"{self.start_over}, or delete it and {self.sidecar.name} to start over")

    def _checked_rows(self) -> tuple[list[Row], bool]:
        """(rows of the existing file, checked against this config; whether it needs a rewrite:
        a partial last line or a missing header)."""
        text = _read_table_text(self.path, self.schema)  # read once: header, rows and a cut-short write
        columns = _header_columns(text)
        if columns is not None and columns != self.schema.columns and self.check_header is not None:
            self.check_header(self.path, columns)  # first: an old file's config differs too, and this says why
        if not self.sidecar.is_file():
            raise MamrlError(f"{self.schema.what} {str(self.path)!r} exists but its config sidecar {self.sidecar.name} does not; {self.start_over}")
        self.check_sidecar()
        rows = _parse_table(text, self.path, self.schema, self.check_header)
        for row in rows:
            if row.get("config_hash") != self.hash:
                raise MamrlError(f"{self.path}: a row has config hash {row.get('config_hash')}, this run is {self.hash}; "
                                 f"{self.start_over}")
        return rows, columns is None or not text.endswith("\n")

    def read(self) -> list[Row]:
        """The rows already written, checked against this config, changing nothing (`--dry-run`)."""
        if self.path.is_dir():
            raise MamrlError(f"{self.schema.what} {str(self.path)!r} is a directory, expected a file name")
        return self._checked_rows()[0] if self.path.exists() else []

    def open(self) -> list[Row]:
        if self.path.is_dir():
            raise MamrlError(f"{self.schema.what} {str(self.path)!r} is a directory, expected a file name")
        if self.path.exists():
            rows, damaged = self._checked_rows()
            if damaged:
                self.rewrite(rows)  # drop a partial line (an interrupted write); write a missing header
            return rows
        if self.sidecar.exists():
            self.check_sidecar()  # refuses another kind of run's folder
        else:
            write_json(self.sidecar, {"format": self.sidecar_format, "config_hash": self.hash, "config": self.resolved,
                                      "created": provenance()})
        self.rewrite([])
        return []

    def append(self, rows: Iterable[Row]) -> None:
        text = self.schema.format_rows(rows)
        try:
            with open(self.path, "a", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise MamrlError(f"cannot write {self.schema.what} {str(self.path)!r}: {exc.strerror or exc}") from None

    def rewrite(self, rows: Iterable[Row]) -> None:
        write_text(self.path, self.schema.header() + self.schema.format_rows(rows))


__all__ = [
    "AttemptClock",
    "LOCK_NAME",
    "changed_files",
    "file_record",
    "is_lock_file",
    "lock_output",
    "lock_path_of",
    "read_json",
    "save_torch",
    "dumps",
    "git_commit",
    "jsonable",
    "new_run_dir",
    "provenance",
    "ResultsTable",
    "Row",
    "TableSchema",
    "atomic_file",
    "check_output_file",
    "config_differences",
    "config_hash",
    "field_docs",
    "read_table",
    "summarise_differences",
    "write_bytes",
    "write_json",
    "write_text",
]
