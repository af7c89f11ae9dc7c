#!/usr/bin/env bash
# Bisect every algorithm's saturation load on b4, geant and att (mamrl saturation; 2,000-tick
# evaluation episodes), one JSON per (topology, algorithm) under runs/saturation/. Resumable: a
# search whose JSON exists is skipped. The deep learner is trained 1,000 episodes per probe
# (the sweep's 2,000 halved: each probe retrains it) and bisected between 0.8 λ* and 1.05 λ*
# with a tolerance of 0.01 (it is bounded at 0.9 and 0.95 λ* in the yardstick comparison, and
# above λ* no routing is bounded: five probes per topology instead of ten from 0.01 to 0.5).
# Usage: [ALGORITHMS="spa pg"] scripts/saturation_all.sh [MAMRL] [PARALLEL]   (defaults: every
# algorithm below, .venv/bin/mamrl, 2 in parallel)
set -euo pipefail
MAMRL=${1:-.venv/bin/mamrl}
PARALLEL=${2:-2}
OUT=runs/saturation
mkdir -p "$OUT"
jobs=()
for algo in ${ALGORITHMS:-spa ecmp max-throughput min-delay sp-backpressure backpressure q-routing pg mamrl}; do
  for topo in b4 geant att; do
    jobs+=("$topo $algo")
  done
done
run_one() {
  topo=$1; algo=$2; out="$OUT/$topo-$algo.json"
  [ -s "$out" ] && { echo "skip $out"; return 0; }
  extra=()
  if [ "$algo" = mamrl ]; then
    limit=$("$(dirname "$MAMRL")/python" -c "from mamrl.sim.capacity import capacity_bound; from mamrl.topologies import load_topology; print(capacity_bound(load_topology('$topo'), find_binding=False).max_load)")
    extra=(--train-episodes 1000 --tolerance 0.01 --low "$(python3 -c "print(round(0.8 * $limit, 4))")" --high "$(python3 -c "print(round(1.05 * $limit, 4))")")
  fi
  start=$(date +%s)
  "$MAMRL" saturation -t "$topo" -a "$algo" --json "$out.tmp" "${extra[@]}" > "$OUT/$topo-$algo.log" 2>&1
  mv "$out.tmp" "$out"
  echo "$topo $algo done in $(( $(date +%s) - start )) s"
}
export -f run_one
export MAMRL OUT
printf '%s\n' "${jobs[@]}" | xargs -P "$PARALLEL" -L 1 bash -c 'run_one "$@"' _
