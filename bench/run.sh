#!/bin/sh
# make bench: every measure side by side with its peer, in the same run and the
# same place, repeated (median of BENCH_RUNS, default 3), printed as a table
# with ratios, saved to bench/results/latest.json and drawn as PNG plots.
#   - page codec natively (vs memcpy on this machine)
#   - boot to GUEST UP and RSS after boot, ours vs QEMU-KVM (lab or direct)
#   - snapshot/restore (bench/snapshot.sh) and live migration idle / 64 MiB hot
#     set vs QEMU defaults and QEMU multifd+10G (bench/migrate.sh), same lab boot
set -eu
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-3}
OUT=bench/results; mkdir -p "$OUT"
RAW=$(mktemp); trap 'rm -f "$RAW"' EXIT
echo "bench: page codec (native)"
build/bench/codec_bench 8 >> "$RAW"
WHERE=$(tests/lab/probe.sh)
echo "bench: boot and RSS, snapshot/restore, live migration: ours vs QEMU-KVM ($WHERE, $RUNS runs each)"
VMB="bench/boot.sh $RUNS; bench/snapshot.sh $RUNS; bench/migrate.sh $RUNS"
if [ "$WHERE" = direct ]; then
    sh -c "$VMB" | tee -a "$RAW" | grep -v '^{' || true
else
    # one lab boot for all VM measures; JSON lines are collected, the rest shown
    tests/lab/lab.sh run --timeout 1800 --env BENCH_MIG_CAP -- sh -c "$VMB" |
        tee -a "$RAW" | grep -v '^{' || true
fi
python3 bench/report.py "$RAW" "$WHERE" "$OUT"
