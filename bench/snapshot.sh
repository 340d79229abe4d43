#!/bin/sh
# Snapshot and restore of a 512 MiB, 2-vCPU Linux guest running the dirtier
# over 128 MiB: our vmm vs QEMU-KVM, same kernel/initramfs, same place (run it
# where KVM works: directly or inside the lab). Each VM boots once; each run
# takes one snapshot of the running VM and restores it in a new process.
#   save_s     ours: `vmm ctl SOCK snapshot DIR` round trip (pause, write state +
#              sparse memory, resume).  QEMU: HMP `stop`, `migrate -d "exec:cat > F"`
#              (max-bandwidth 10G: savevm-like, no rate limit) polled to
#              completed, `cont` - timed inside bench/qmon.py (no client start-up).
#   restore_s  process start -> first HEARTBEAT line in the new serial log.
#              ours: `vmm run --restore DIR`; QEMU: `-incoming "exec:cat F"`,
#              HMP `cont` as soon as the load finished (the VM was stopped when
#              saved; the HMP client is started before the clock). Heartbeats tick once per guest second: +-1 s granularity.
#   bytes      disk space used by the snapshot (du: ours is a sparse file).
# Prints JSON lines {"bench":"snapshot","vmm":"ours|qemu","run":N,"save_s":..,"restore_s":..,"bytes":..}
# Usage: bench/snapshot.sh [RUNS]
set -eu
RUNS=${1:-3}
. bench/vmlib.sh
CMD="console=ttyS0 quiet panic=-1 workload=dirtier dirtier_mib=128"

emit() { printf '{"bench":"snapshot","vmm":"%s","run":%d,"save_s":%s,"restore_s":%s,"bytes":%s}\n' "$@"; }

ours() {
    ours_start "$T/o.log" "$T/o.sock" "$CMD"; src=$OPID
    wait_hb "$T/o.log" 3 240 "$src" || { stop_pid $src; return 1; }
    i=1
    while [ $i -le "$RUNS" ]; do
        d=$T/osnap$i
        t0=$(now_ms)
        $VMM ctl "$T/o.sock" snapshot "$d" >/dev/null || { warn "ours: snapshot failed"; break; }
        t1=$(now_ms)
        bytes=$(du -B1 -s "$d" | cut -f1)
        r0=$(now_ms)
        $VMM run --restore "$d" --control "$T/or$i.sock" --serial "$T/or$i.log" </dev/null >"$T/or$i.log.err" 2>&1 &
        rp=$!; PIDS="$PIDS $rp"
        if wait_hb "$T/or$i.log" 1 300 $rp; then
            r1=$(now_ms)
            emit ours $i "$(secs $t1 $t0)" "$(secs $r1 $r0)" "$bytes"
        fi
        stop_pid $rp; rm -rf "$d"
        i=$((i + 1))
    done
    stop_pid $src
}

qemu() {
    qemu_start "$T/q.log" "$T/q.mon" "$CMD"; src=$QPID
    wait_hb "$T/q.log" 3 240 "$src" || { stop_pid $src; return 1; }
    $QMON "$T/q.mon" cmd "migrate_set_parameter max-bandwidth 10G" "migrate_set_parameter downtime-limit 300"
    i=1
    while [ $i -le "$RUNS" ]; do
        f=$T/qsnap$i
        # stop + migrate to file + wait + cont, timed inside one client
        save=$(python3 - "$T/q.mon" "$f" <<'EOF'
import sys, time, re
sys.path.insert(0, "bench")
from qmon import Hmp
h = Hmp(sys.argv[1])
t0 = time.time()
h.cmd("stop")
h.cmd('migrate -d "exec:cat > %s"' % sys.argv[2])
while True:
    out = h.cmd("info migrate")
    m = re.search(r"^Migration status: (\S+)", out, re.M)
    if m and m.group(1) in ("completed", "failed", "cancelled"):
        break
    time.sleep(0.01)
h.cmd("cont")
t1 = time.time()
print("%.3f" % (t1 - t0) if m.group(1) == "completed" else "fail")
EOF
        ) || save=fail
        [ "$save" != fail ] || { warn "qemu: save to $f failed"; break; }
        bytes=$(du -B1 -s "$f" | cut -f1)
        # the monitor client (wait for the load, then cont) is started and up
        # before the clock starts: its Python start-up (slow in the lab)
        # is not QEMU's restore time
        rm -f "$T/qready"
        QMON_READY=$T/qready $QMON "$T/qr$i.mon" restore 300 >/dev/null & qc=$!; PIDS="$PIDS $qc"
        n=0; until [ -f "$T/qready" ] || [ $n -ge 600 ]; do sleep 0.05; n=$((n + 1)); done
        r0=$(now_ms)
        qemu_start "$T/qr$i.log" "$T/qr$i.mon" "$CMD" -incoming "exec:cat $f"; rp=$QPID
        if wait_hb "$T/qr$i.log" 1 300 $rp; then
            r1=$(now_ms)
            emit qemu $i "$save" "$(secs $r1 $r0)" "$bytes"
        fi
        stop_pid $qc; stop_pid $rp; rm -f "$f"
        i=$((i + 1))
    done
    stop_pid $src
}

ONLY=${BENCH_ONLY:-ours qemu}   # for trying one side
for who in $ONLY; do
    $who || warn "$who: snapshot bench failed"
done
exit 0
