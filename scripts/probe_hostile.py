#!/usr/bin/env python
"""Probe the `mamrl` command line with hostile input and count what goes wrong.

Each case runs `mamrl ARGS...` in a fresh process inside its own scratch folder, under a virtual
memory limit (`ulimit -v`, default 3 GB) and a time limit, so that a probe cannot take the machine
down. mamrl's own memory budget is set to 2/3 of that limit (`MAMRL_MEMORY_LIMIT_BYTES`), as if the
machine had that much memory. A case is

- `ok`        exit code 2, one `error: ...` line on stderr, no traceback, no file written;
- `traceback` a traceback, or an exit code other than 0 and 2;
- `silent`    exit code 0 (the hostile input was accepted), or a file was written;
- `runaway`   the time limit was hit, or memory ran out (MemoryError, "Unable to allocate", killed).

    python scripts/probe_hostile.py [--limit-kb 3000000] [--timeout 90] [--only SUBSTRING] [-j 2]

Prints one line per case and the counts; exits 1 when any case is not `ok`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BIG = str(10**30)  # beyond 64 bits
HUGE = str(10**12)  # fits 64 bits, far too much work or memory


def own(links: list[dict], routers: list | None = None, **top: object) -> str:
    return json.dumps({"format": "mamrl-topology/1", "name": "t", "routers": routers or ["p", "q", "r"], "links": links, **top})


def own_link(**changes: object) -> str:
    first = {"a": "p", "b": "q", "capacity": 5, "latency_ticks": 1, **changes}
    return own([first, {"a": "q", "b": "r", "capacity": 5, "latency_ticks": 1}])


def line_topology(n: int) -> str:
    routers = [f"r{i}" for i in range(n)]
    links = [{"a": routers[i], "b": routers[i + 1]} for i in range(n - 1)]
    return own(links, routers, defaults={"capacity": 1000, "latency_ticks": 1})


TEAVAR_HEAD = "to_node from_node capacity prob_failure\n"
GRAPHML = ('<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
           '<key id="d" for="edge" attr.name="delay" attr.type="double"/>'
           '<key id="l" for="node" attr.name="label" attr.type="string"/>'
           '<graph edgedefault="undirected">{nodes}{edges}</graph></graphml>')

# (name, {file: text}, argv); every case must be refused.
CASES: list[tuple[str, dict[str, str], list[str]]] = [
    # topology files
    ("own latency 2**62 ticks", {"t.json": own_link(latency_ticks=2**62)}, ["simulate", "-t", "t.json", "-n", "1", "--horizon", "10"]),
    ("own latency 1e9 ticks", {"t.json": own_link(latency_ticks=10**9)}, ["simulate", "-t", "t.json", "-n", "1", "--horizon", "10"]),
    ("own latency beyond 64 bits", {"t.json": own_link(latency_ticks=2**70)}, ["simulate", "-t", "t.json", "-n", "1"]),
    ("own capacity beyond 64 bits", {"t.json": own_link(capacity=2**70)}, ["capacity", "-t", "t.json"]),
    ("own coordinate 1e400", {"t.json": own([{"a": "p", "b": "q", "capacity": 1, "latency_ticks": 1}],
                                              [{"name": "p", "x": 0, "y": 0}, {"name": "q", "x": 0, "y": 0}]).replace('"x": 0', '"x": 1e400', 1)},
     ["capacity", "-t", "t.json"]),
    ("own duplicate router", {"t.json": own_link(), "dup.json": own_link().replace('["p", "q", "r"]', '["p", "q", "p"]')},
     ["capacity", "-t", "dup.json"]),
    ("deeply nested JSON", {"t.json": "[" * 200000 + "]" * 200000}, ["simulate", "-t", "t.json", "-n", "1"]),
    ("deeply nested JSON object", {"t.json": '{"a":' * 200000 + "1" + "}" * 200000}, ["capacity", "-t", "t.json"]),
    ("paper latency 2**40", {"t.json": json.dumps({"data": {"mapTopology": {"nodes": [{"name": "A"}, {"name": "B"}],
                                                                           "edges": [{"from": "A", "to": "B", "BW": 5, "Lat": 2**40}]}}})},
     ["simulate", "-t", "t.json", "-n", "1", "--horizon", "10"]),
    ("teavar duplicate router name", {"tv/topology.txt": TEAVAR_HEAD + "1 2 10 0\n2 3 10 0\n", "tv/nodes.txt": "name\na\nb\na\n"},
     ["capacity", "-t", "tv"]),
    ("teavar capacity beyond 64 bits", {"tv/topology.txt": TEAVAR_HEAD + f"1 2 {BIG} 0\n2 3 10 0\n"}, ["capacity", "-t", "tv"]),
    ("teavar router id 10**12", {"tv/topology.txt": TEAVAR_HEAD + f"1 2 10 0\n2 {HUGE} 10 0\n", "tv/nodes.txt": "name\n" + "x\n" * 3},
     ["capacity", "-t", "tv"]),
    ("graphml delay 1e15 ms", {"t.graphml": GRAPHML.format(nodes='<node id="a"/><node id="b"/>',
                                                           edges='<edge source="a" target="b"><data key="d">1e15</data></edge>')},
     ["simulate", "-t", "t.graphml", "-n", "1", "--horizon", "10"]),
    ("gml deeply nested", {"t.gml": "graph [ " + "a [ " * 100000 + "] " * 100000 + "]"}, ["capacity", "-t", "t.gml"]),
    ("demand value 1e400", {"d.txt": "1e400 1 1 1 1 1\n", "t.json": own_link()},
     ["simulate", "-t", "t.json", "--demand", "d.txt", "-n", "1"]),
    ("sweep config deeply nested", {"c.json": "[" * 200000 + "]" * 200000}, ["sweep", "--config", "c.json", "--results", "r.csv"]),
    ("sweep config TOML deeply nested", {"c.toml": "a = " + "[" * 200000 + "]" * 200000}, ["sweep", "--config", "c.toml", "--results", "r.csv"]),
    ("train --set deeply nested", {}, ["train", "--set", "reward=" + "[" * 30000 + "]" * 30000, "-n", "1", "--out", "run"]),
    ("saturation --algorithm-config nested", {}, ["saturation", "-a", "pg", "--algorithm-config", "[" * 30000 + "]" * 30000]),
    # command-line numbers
    ("simulate --horizon 10**30", {}, ["simulate", "--horizon", BIG, "-n", "1"]),
    ("simulate --horizon 10**12", {}, ["simulate", "--horizon", HUGE, "-n", "1"]),
    ("simulate --load 1e6", {}, ["simulate", "--load", "1e6", "-n", "1"]),
    ("simulate --load 1e300", {}, ["simulate", "--load", "1e300", "-n", "1"]),
    ("simulate --episodes 10**12", {}, ["simulate", "-n", HUGE, "--horizon", "10"]),
    ("simulate --batch-size 10**7", {}, ["simulate", "-n", str(10**7), "--batch-size", str(10**7)]),
    ("simulate --batch-size 10**30", {}, ["simulate", "-n", BIG, "--batch-size", BIG]),
    ("simulate --fail B-C@10**30", {}, ["simulate", "-n", "1", "--fail", f"0@{BIG}"]),
    ("simulate --fail 10**30", {}, ["simulate", "-n", "1", "--fail", BIG]),
    ("simulate --buffer-limit 10**30", {}, ["simulate", "-n", "1", "--buffer-limit", BIG]),
    ("simulate --reconvergence-delay 10**30", {}, ["simulate", "-n", "1", "--fail", "0", "--reconvergence-delay", BIG]),
    ("simulate per-destination 4000 routers", {"big.json": line_topology(4000)},
     ["simulate", "-t", "big.json", "-n", "32", "--horizon", "10", "--queues", "per-destination"]),
    ("simulate spa 20000 routers", {"big.json": line_topology(20000)}, ["simulate", "-t", "big.json", "-n", "1", "--horizon", "5"]),
    ("capacity 3000 routers", {"big.json": line_topology(3000)}, ["capacity", "-t", "big.json"]),
    ("train --horizon 10**30", {}, ["train", "--horizon", BIG, "-n", "1", "--out", "run"]),
    ("train --horizon 10**10", {}, ["train", "--horizon", str(10**10), "-n", "1", "--out", "run"]),
    ("train --load 1e6", {}, ["train", "--load", "1e6", "-n", "1", "--out", "run"]),
    ("train --fail 0@10**30", {}, ["train", "--fail", f"0@{BIG}", "-n", "1", "--out", "run"]),
    ("train --fail at the horizon", {}, ["train", "--fail", "0@500", "--horizon", "500", "-n", "1", "--out", "run"]),
    ("train --episodes 10**30", {}, ["train", "-n", BIG, "--out", "run"]),
    ("train --eval-episodes 10**12 (pg)", {}, ["train", "-a", "pg", "-n", "1", "--horizon", "10", "--eval-episodes", HUGE, "--out", "run"]),
    ("sweep --horizon 10**12", {}, ["sweep", "--horizon", HUGE, "--results", "r.csv", "-j", "1"]),
    ("sweep --loads 1e6", {}, ["sweep", "--loads", "1e6", "--algorithms", "spa", "--results", "r.csv", "-j", "1"]),
    ("sweep --eval-episodes 10**30", {}, ["sweep", "--eval-episodes", BIG, "--results", "r.csv", "-j", "1"]),
    ("saturation --horizon 10**12", {}, ["saturation", "--horizon", HUGE]),
    ("saturation --horizon 10**30", {}, ["saturation", "--horizon", BIG]),
    ("saturation --low 1e5 --high 1e6", {}, ["saturation", "--high", "1e6", "--low", "1e5", "--horizon", "1000"]),
    ("failures --fail-tick 10**30", {}, ["failures", "--fail-tick", BIG, "-o", "out"]),
    ("failures --horizon 10**12", {}, ["failures", "--horizon", HUGE, "-o", "out", "-a", "spa"]),
    ("failures --episodes 10**12", {}, ["failures", "--episodes", HUGE, "-o", "out", "-a", "spa"]),
    ("reproduce --set sweep.horizon_ticks=10**12", {}, ["reproduce", "--set", f"sweep.horizon_ticks={HUGE}", "-o", "out"]),
]
CASES = [case for case in CASES if case[2]]


def run_case(case: tuple[str, dict[str, str], list[str]], args: argparse.Namespace) -> tuple[str, str, str]:
    name, files, argv = case
    folder = Path(tempfile.mkdtemp(prefix="probe-"))
    try:
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8")
        before = {p for p in folder.rglob("*")}
        mamrl = Path(sys.executable).with_name("mamrl")
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
        shell = f"ulimit -v {args.limit_kb}; exec timeout -s KILL {args.timeout} '{mamrl}' {quoted}"
        env = {**os.environ, "MAMRL_MEMORY_LIMIT_BYTES": str(args.limit_kb * 1024 * 2 // 3)}
        proc = subprocess.run(["bash", "-c", shell], cwd=folder, capture_output=True, text=True, env=env)
        after = {p for p in folder.rglob("*")} - before
        err = proc.stderr
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: ")]
        if proc.returncode in (-9, 137) or "MemoryError" in err or "Unable to allocate" in err or "out of memory" in err.lower():
            verdict = "runaway"
        elif "Traceback" in err or "Traceback" in proc.stdout or proc.returncode not in (0, 2):
            verdict = "traceback"
        elif proc.returncode == 0:
            verdict = "silent"
        elif after or len(lines) != 1 or not lines[0].startswith("error: "):
            verdict = "silent" if after else "traceback"
        else:
            verdict = "ok"
        detail = (lines[-1] if lines else err.strip().splitlines()[-1:] or [f"exit {proc.returncode}"])
        detail = detail if isinstance(detail, str) else detail[0]
        if after and verdict != "ok":
            detail += f" [wrote {sorted(str(p.relative_to(folder)) for p in after)[:3]}]"
        return name, verdict, detail[:200]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-kb", type=int, default=3_000_000)
    parser.add_argument("--timeout", type=int, default=90)
    parser.add_argument("--only", default="")
    parser.add_argument("-j", type=int, default=2)
    args = parser.parse_args()
    cases = [c for c in CASES if args.only.lower() in c[0].lower()]
    counts: dict[str, int] = {}
    with ThreadPoolExecutor(args.j) as pool:
        for name, verdict, detail in pool.map(lambda c: run_case(c, args), cases):
            counts[verdict] = counts.get(verdict, 0) + 1
            print(f"{verdict:9} {name:45} {detail}", flush=True)
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), f"(of {len(cases)})")
    return 0 if counts.get("ok", 0) == len(cases) else 1


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
