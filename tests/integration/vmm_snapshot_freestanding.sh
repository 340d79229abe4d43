#!/bin/sh
# test: the freestanding guest (verify+write passes forever, heartbeats) runs
# under --control; a snapshot is taken mid-run (the guest keeps going); the
# vmm is killed; the snapshot is restored 3 times, each run continuing past
# the snapshot's heartbeat generation without VERIFY FAIL. Hostile snapshot
# directories (no state, truncated state, wrong-size memory) exit 2.
# needs: kvm
# timeout: 400
. tests/lib.sh
. tests/vmm_hosts.sh
need_kvm
SNAP=$TMP/snap

vmm_start r0 - --name fs --kernel "$FS_GUEST" --mem 64M --cpus 1 --cmdline "mem=32 passes=0 hb=2"
PID0=$PID
wait_hb "$TMP/r0.log" 3 120
ctl "$TMP/r0.sock" status | grep -q "state: *running" || die "not running"
before=$(hb_count "$TMP/r0.log")
ctl "$TMP/r0.sock" snapshot "$SNAP" || die "snapshot failed"
cat "$TMP/r0.err"
gen_before=$(hb_field "$TMP/r0.log" gen | head -n "$before" | tail -n 1)
wait_hb "$TMP/r0.log" $((before + 2)) 60      # keeps running after the snapshot
kill -9 $PID0; wait $PID0 2>/dev/null || true
echo "snapshot after gen=$gen_before"
for i in 1 2 3; do
    vmm_start r$i - --restore "$SNAP"
    pid=$PID
    wait_hb "$TMP/r$i.log" 3 120
    cat "$TMP/r$i.err"
    first=$(hb_field "$TMP/r$i.log" gen | head -n 1)
    echo "restore $i: first heartbeat gen=$first"
    [ "$first" -gt "$gen_before" ] || die "restore $i: gen $first does not continue after $gen_before"
    { echo "$gen_before"; hb_field "$TMP/r$i.log" gen; } | awk 'NR > 1 && $1 <= p { exit 1 } { p = $1 }' ||
        { hb_field "$TMP/r$i.log" gen | tr '\n' ' '; tr -d '\r' < "$TMP/r$i.log" | head -n 12
          die "restore $i: heartbeat generations not increasing"; }
    ctl "$TMP/r$i.sock" quit
    wait $pid || die "restore $i: exit $?"
    grep -q "VERIFY FAIL" "$TMP/r$i.log" && die "restore $i: VERIFY FAIL"
done
# Hostile snapshot directories: a clear error, exit 2, never a crash.
check_bad() {
    want=$1
    set +e; $VMM run --restore "$TMP/bad" --serial "$TMP/bad.log" > "$TMP/bad.err" 2>&1; rc=$?; set -e
    echo "-> exit $rc: $(head -n 1 "$TMP/bad.err")"
    [ $rc -eq 2 ] || die "exit $rc, want 2"
    grep -q -- "$want" "$TMP/bad.err" || die "error does not mention '$want'"
}
mkdir "$TMP/bad"
check_bad "no usable state file"
cp --sparse=always "$SNAP/memory" "$TMP/bad/memory"
head -c 1000 "$SNAP/state" > "$TMP/bad/state"
check_bad "truncated or corrupt"
cp "$SNAP/state" "$TMP/bad/state"; truncate -s 1M "$TMP/bad/memory"
check_bad "memory: 1048576 bytes, want 67108864"
echo "ok"
