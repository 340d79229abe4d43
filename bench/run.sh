#!/bin/sh
# make bench: every measure side by side with its peer, in the same run and the
# same place, repeated (median of BENCH_RUNS, default 3), printed as a table
# with ratios, saved to bench/results/latest.json and drawn as PNG plots.
#   - page codec natively (vs memcpy on this machine)
#   - boot to GUEST UP and RSS after boot, ours vs QEMU-KVM (lab or direct)
# Rows for snapshot/restore and migration are added as those land.
set -eu
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-3}
OUT=bench/results; mkdir -p "$OUT"
RAW=$(mktemp); trap 'rm -f "$RAW"' EXIT
echo "bench: page codec (native)"
build/bench/codec_bench 8 >> "$RAW"
WHERE=$(tests/lab/probe.sh)
echo "bench: boot and RSS, ours vs QEMU-KVM ($WHERE, $RUNS runs each)"
if [ "$WHERE" = direct ]; then
    bench/boot.sh "$RUNS" >> "$RAW"
else
    tests/lab/lab.sh run --timeout 1800 -- bench/boot.sh "$RUNS" | grep '^{' >> "$RAW"
fi
python3 bench/report.py "$RAW" "$WHERE" "$OUT"
