"""numba's cache follows the sources a compiled module imports, not only its own file."""

from __future__ import annotations

import re
from pathlib import Path

from mamrl.numba_cache import NUMBA_MODULES, PACKAGE_ROOT, dependencies, refresh_numba_caches


def test_every_cached_module_is_listed() -> None:
    decorated = re.compile(r"numba\.n?jit\([^)]*cache=True")
    cached = {".".join(p.relative_to(PACKAGE_ROOT).with_suffix("").parts)
              for p in (PACKAGE_ROOT / "mamrl").rglob("*.py") if decorated.search(p.read_text(encoding="utf-8"))}
    assert cached == set(NUMBA_MODULES)


def test_the_backpressure_kernel_depends_on_the_kernel() -> None:
    names = {p.name for p in dependencies(PACKAGE_ROOT, "mamrl.sim.backpressure_kernel")}
    assert {"backpressure_kernel.py", "kernel.py"} <= names
    assert "kernel.py" in {p.name for p in dependencies(PACKAGE_ROOT, "mamrl.agents.policy_gradient")}


def _package(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    pkg = root / "mamrl" / "sim"
    pkg.mkdir(parents=True)
    (root / "mamrl" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "kernel.py").write_text("COLUMN = 3\n")
    (pkg / "user.py").write_text("from mamrl.sim.kernel import (\n    COLUMN,\n)\nfrom mamrl.sim import kernel\n")
    (pkg / "other.py").write_text("X = 1\n")
    cache = pkg / "__pycache__"
    cache.mkdir()
    return root, cache


def _caches(cache: Path) -> None:
    for name in ("user.f-1.py311.nbi", "user.f-1.py311.1.nbc"):
        (cache / name).write_bytes(b"compiled")


def test_a_changed_dependency_clears_the_dependent_cache(tmp_path: Path) -> None:
    root, cache = _package(tmp_path)
    modules = ("mamrl.sim.user",)
    _caches(cache)
    assert refresh_numba_caches(root, modules) == ["mamrl.sim.user"]  # no stamp yet: cleared once
    _caches(cache)
    assert refresh_numba_caches(root, modules) == [] and (cache / "user.f-1.py311.nbi").exists()
    (root / "mamrl" / "sim" / "other.py").write_text("X = 2\n")  # not imported by user.py
    assert refresh_numba_caches(root, modules) == []
    (root / "mamrl" / "sim" / "kernel.py").write_text("COLUMN = 4\n")
    assert refresh_numba_caches(root, modules) == ["mamrl.sim.user"]
    assert not list(cache.glob("user.*.nb*"))
