#!/bin/sh
# All VM measures in one go (bench/run.sh runs this once, in one lab boot or
# directly): boot.sh, snapshot.sh, io.sh, migrate.sh, each with RUNS runs.
# Each script's wall time goes to stderr and as {"bench":"phase",...} to stdout.
# Usage: bench/vm.sh [RUNS] [SCRIPT...]   (default: all four, in that order)
set -u
RUNS=${1:-3}; [ $# -gt 0 ] && shift
for s in ${*:-boot snapshot io migrate}; do
    t=$(date +%s)
    bench/$s.sh "$RUNS" || echo "bench: $s.sh exited $?" >&2
    d=$(($(date +%s) - t))
    echo "bench: $s.sh took $d s" >&2
    printf '{"bench":"phase","name":"%s","s":%d}\n' "$s" "$d"
done
