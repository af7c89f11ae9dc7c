"""Numba's on-disk cache, kept in step with the sources it was compiled from.

Numba invalidates a cached function when its own file changes, not when a module it takes
constants or functions from does. Editing `sim/kernel.py` (a column index, a new history field)
would leave `sim/backpressure_kernel.py`'s cache compiled against the old kernel: a silent wrong
result. So every module compiled with `cache=True` (`NUMBA_MODULES`) gets a stamp of its own
source and of the mamrl modules it imports, in its `__pycache__`; when the stamp differs, its
cache files are deleted before numba reads them, and numba compiles afresh.

An installed package is replaced whole on upgrade, so numba's own check suffices there; where
`__pycache__` cannot be written (a read-only install), nothing is done.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

NUMBA_MODULES: tuple[str, ...] = (
    "mamrl.sim.kernel",
    "mamrl.sim.backpressure_kernel",
    "mamrl.agents.min_delay",
    "mamrl.agents.policy_gradient",
)
"""Modules with `cache=True` functions (a test checks that none is missing)."""

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
"""The directory holding the `mamrl` package."""

_IMPORT = re.compile(r"^\s*(?:from\s+(mamrl[\w.]*)\s+import\s+\(?([\w\s,]*)|import\s+(mamrl[\w.]*))", re.MULTILINE)


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def dependencies(root: Path, module: str) -> list[Path]:
    """The module's source and the sources of the mamrl modules it imports directly (sorted)."""
    own = _module_file(root, module)
    if own is None:
        return []
    found = {own}
    for match in _IMPORT.finditer(own.read_text(encoding="utf-8")):
        package, names, plain = match.groups()
        dotted = package or plain
        for candidate in [dotted, *(f"{dotted}.{n.strip()}" for n in (names or "").split(",") if n.strip())]:
            path = _module_file(root, candidate)
            if path is not None:
                found.add(path)
    return sorted(found)


def sources_stamp(root: Path, files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def refresh_numba_caches(root: Path = PACKAGE_ROOT, modules: Sequence[str] = NUMBA_MODULES) -> list[str]:
    """Delete the numba cache files of every module whose sources stamp changed; the modules
    refreshed (call before the modules are imported)."""
    refreshed = []
    for module in modules:
        own = _module_file(root, module)
        if own is None:
            continue
        try:
            stamp = sources_stamp(root, dependencies(root, module))
            cache_dir = own.parent / "__pycache__"
            stamp_file = cache_dir / f"{own.stem}.mamrl-sources"
            if stamp_file.is_file() and stamp_file.read_text(encoding="utf-8") == stamp:
                continue
            for stale in [*cache_dir.glob(f"{own.stem}.*.nbi"), *cache_dir.glob(f"{own.stem}.*.nbc")]:
                stale.unlink(missing_ok=True)
            cache_dir.mkdir(exist_ok=True)
            stamp_file.write_text(stamp, encoding="utf-8")
            refreshed.append(module)
        except OSError:  # a read-only install: numba's own checks (and a whole-package upgrade) suffice
            continue
    return refreshed


__all__ = ["NUMBA_MODULES", "dependencies", "refresh_numba_caches", "sources_stamp"]
