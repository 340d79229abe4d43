#!/bin/sh
# make bench: every measure side by side with its peer, in the same run and the
# same place, repeated (median of BENCH_RUNS, default 3), printed as a table
# with ratios, saved to bench/results/latest.json and drawn as PNG plots.
#   - page codec natively (vs memcpy on this machine)
#   - boot to GUEST UP and RSS after boot, ours vs QEMU-KVM (lab or direct)
#   - snapshot/restore (bench/snapshot.sh), virtio-net/-blk throughput
#     (bench/io.sh) and live migration idle / 64 MiB hot set vs QEMU defaults
#     and QEMU multifd+10G (bench/migrate.sh), all in one lab boot
# Prints the wall time of each phase and of the whole run.
set -eu
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-3}
export BENCH_RUNS=$RUNS
OUT=bench/results; mkdir -p "$OUT"
RAW=$(mktemp); trap 'rm -f "$RAW" "$RAW.part" "$RAW.rc"' EXIT
T0=$(date +%s)
echo "bench: page codec (native)"
build/bench/codec_bench 8 >> "$RAW"
T1=$(date +%s)
# The I/O guest: the test guest's initramfs plus iperf3 (same file for both VMMs).
bench/mkinitrd.sh build/guests/linux/initramfs.cpio.gz build/bench/initramfs-io.cpio.gz
WHERE=$(tests/lab/probe.sh)
T2=$(date +%s)
echo "bench: boot and RSS, snapshot/restore, virtio-net/-blk, live migration: ours vs QEMU-KVM ($WHERE, $RUNS runs each)"
# All VM scripts run in one lab boot (bench/vm.sh), holding one lab slot. The
# lab kernel sometimes dies (soft lockup, panic): then the scripts that had
# finished keep their rows (vm.sh prints a "phase" line after each), the rows
# of the unfinished one are dropped, and the unfinished ones run again in a
# fresh lab boot (up to BENCH_LAB_BOOTS boots, none started after
# BENCH_RERUN_UNTIL s). migrate.sh (the longest) keeps its finished blocks too: a
# "part" line per case and VMM, skipped in the rerun. A rerun is said, never
# hidden.
vm_run() { # SCRIPT...
    if [ "$WHERE" = direct ]; then
        bench/vm.sh "$RUNS" "$@" | tee -a "$RAW" | grep -v '^{' || true
        return 0
    fi
    pending="$*"
    boots=${BENCH_LAB_BOOTS:-3}
    for attempt in $(seq 1 "$boots"); do
        # rows to a file, the rest shown live; the lab's exit status via $RAW.rc
        { rc=0; tests/lab/lab.sh run --timeout "$LAB_TIMEOUT" --env BENCH_MIG_CAP --env BENCH_BLK_MIB --env BENCH_NET_SECS \
              --env BENCH_ONLY --env BENCH_CASES --env BENCH_SKIP_PARTS -- bench/vm.sh "$RUNS" $pending || rc=$?; echo $rc > "$RAW.rc"; } |
            tee "$RAW.part" | grep --line-buffered -v '^{' || true
        rc=$(cat "$RAW.rc")
        # rows up to the last finished script's phase line or block's part
        # line (migrate.sh: one per case and VMM)
        awk '/^\{"bench":"(phase|part)"/ { print buf $0; buf = ""; next } /^\{/ { buf = buf $0 "\n" }' "$RAW.part" | sed '/^$/d' >> "$RAW"
        skip=$(sed -n 's|^{"bench":"part","script":"[a-z]*","part":"\([a-z0-9_/]*\)"}$|\1|p' "$RAW" | tr '\n' ' ')
        done_s=$(sed -n 's/^{"bench":"phase","name":"\([a-z]*\)".*/\1/p' "$RAW.part")
        left=""
        for s in $pending; do case " $(echo $done_s) " in *" $s "*) ;; *) left="$left $s";; esac; done
        pending=$left
        # 124: lab timed out; 125: the lab died before the command finished
        { [ "$rc" = 124 ] || [ "$rc" = 125 ]; } && [ -n "$pending" ] || break
        export BENCH_SKIP_PARTS="$skip"
        # Another boot only while the run can still end within ~30 minutes
        # (a rerun of the longest script's unfinished blocks takes ~8).
        el=$(($(date +%s) - T0))
        if [ $attempt -ge "$boots" ] || [ $el -ge "$RERUN_UNTIL" ]; then
            echo "bench: the lab died (exit $rc) after $el s, boot $attempt of at most $boots; no rows for$pending"
            break
        fi
        echo "bench: the lab died (exit $rc) after $el s; rerunning$pending in a fresh lab boot ($((attempt + 1)) of at most $boots)${skip:+ (blocks already measured: $skip)}"
    done
    rm -f "$RAW.part" "$RAW.rc"
}
# The lab's timeout bounds a wedged lab: boot ~3 min, snapshot ~3, io ~5,
# migrate ~11 with another lab beside it (2026-12-04, 3 runs); 45 minutes in
# all, so a slow but healthy lab is not killed and rerun. Inside, no wait is
# unbounded (a stalled run ends as a "timeout" row, see bench/README.md).
LAB_TIMEOUT=${BENCH_LAB_TIMEOUT:-2700}
# A lab whose kernel reported trouble (RCU stall, soft lockup) and whose
# command then printed nothing for this long is ended and rerun: 150 s, not
# the tests' 240, since every bench script prints at least once a run
# (a migration run is capped at BENCH_MIG_CAP 60 s, a monitor wait at 30 s).
export LAB_WEDGE_SECS=${LAB_WEDGE_SECS:-150}
# ... and one whose command printed nothing at all for 300 s, console quiet or
# not: no bench wait is longer than 240 s (guest boot, heartbeats, blkperf).
export LAB_SILENCE_SECS=${LAB_SILENCE_SECS:-300}
# Lab boots for the VM scripts (the lab kernel sometimes dies: see
# tests/lab/README.md) and the last moment (s into the run) to start one more.
RERUN_UNTIL=${BENCH_RERUN_UNTIL:-1320}
vm_run ${BENCH_VM:-boot snapshot io migrate}
T3=$(date +%s)
BENCH_T_CODEC=$((T1 - T0)) BENCH_T_SETUP=$((T2 - T1)) BENCH_T_VM=$((T3 - T2)) BENCH_T_TOTAL=$((T3 - T0)) \
    python3 bench/report.py "$RAW" "$WHERE" "$OUT"
T4=$(date +%s)
echo "bench: wall time $((T4 - T0)) s (codec $((T1 - T0)) s, lab probe + setup $((T2 - T1)) s, VM measures $((T3 - T2)) s, report $((T4 - T3)) s)"
