#!/bin/sh
# test: snapshot/restore of a 2-vCPU Linux guest running the memory dirtier
# (64 MiB) and a virtio-rng device: vmm ctl status/pause/resume, snapshot mid-run (guest keeps
# running), then three restores of the same snapshot, each continuing with
# heartbeats whose n/t/mono keep increasing past the snapshot and no VERIFY
# FAIL; a corrupted state file and a wrong-sized memory file are refused.
# needs: kvm
# timeout: 600
. tests/lib.sh
. tests/vmm_hosts.sh
need_kvm
MEM=${SNAP_MEM:-512M}
CMDLINE="console=ttyS0 quiet panic=-1 workload=dirtier dirtier_mib=64"
SNAP=$TMP/snap

log "boot: $MEM, 2 vCPUs"
vmm_linux r0 - --rng
PID0=$PID
wait_for "$TMP/r0.log" "GUEST UP" 300 || die "guest did not come up"
wait_hb "$TMP/r0.log" 3 300
ctl "$TMP/r0.sock" status | tee "$TMP/st.txt"
grep -q "state: *running" "$TMP/st.txt" || die "status: not running"
grep -q "cpus: *2" "$TMP/st.txt" || die "status: cpus"

log "pause/resume"
ctl "$TMP/r0.sock" pause || die "pause failed"
ctl "$TMP/r0.sock" status | grep -q "state: *paused" || die "status: not paused"
n1=$(hb_count "$TMP/r0.log"); sleep 3; n2=$(hb_count "$TMP/r0.log")
[ "$n1" -eq "$n2" ] || die "heartbeats while paused ($n1 -> $n2)"
set +e; ctl "$TMP/r0.sock" pause > "$TMP/p2.txt" 2>&1; rc=$?; set -e
[ $rc -eq 1 ] || die "second pause exit $rc, want 1"
ctl "$TMP/r0.sock" resume || die "resume failed"
wait_hb "$TMP/r0.log" $((n2 + 2)) 60

log "snapshot"
wait_hb "$TMP/r0.log" 6 120
before=$(hb_count "$TMP/r0.log")
t0=$(date +%s%N)
ctl "$TMP/r0.sock" snapshot "$SNAP" || die "snapshot failed"
t1=$(date +%s%N)
echo "snapshot of $MEM took $(( (t1 - t0) / 1000000 )) ms (vmm ctl round trip)"
grep "snapshot to" "$TMP/r0.err" || true
ls -ls "$SNAP"
[ -f "$SNAP/state" ] && [ -f "$SNAP/memory" ] || die "snapshot files missing"
ls -a "$SNAP" | grep -q tmp && die "temporary files left in $SNAP"
# The heartbeats up to here all precede the snapshot.
hb_field "$TMP/r0.log" mono | head -n "$before" | tail -n 1 > "$TMP/mono_before"
hb_field "$TMP/r0.log" n | head -n "$before" | tail -n 1 > "$TMP/n_before"
mono_before=$(cat "$TMP/mono_before"); n_before=$(cat "$TMP/n_before")
echo "last heartbeat before snapshot: n=$n_before mono=$mono_before"
wait_hb "$TMP/r0.log" $((before + 3)) 60    # the source keeps running
ctl "$TMP/r0.sock" status | grep -q "state: *running" || die "not running after snapshot"
ctl "$TMP/r0.sock" quit || die "quit failed"
wait $PID0 || die "vmm exited $? after quit"
grep -q "VERIFY FAIL" "$TMP/r0.log" && die "VERIFY FAIL in the original run"

for i in 1 2 3; do
    log "restore $i"
    t0=$(date +%s%N)
    vmm_start r$i - --restore "$SNAP" --rng
    pid=$PID
    wait_hb "$TMP/r$i.log" 4 120
    t1=$(date +%s%N)
    cat "$TMP/r$i.err"
    echo "restore $i: 4 heartbeats $(( (t1 - t0) / 1000000 )) ms after start"
    tr -d '\r' < "$TMP/r$i.log" | grep HEARTBEAT | head -n 4
    { echo "$mono_before"; hb_field "$TMP/r$i.log" mono; } > "$TMP/mono$i"
    { echo "$n_before"; hb_field "$TMP/r$i.log" n; } > "$TMP/n$i"
    hb_field "$TMP/r$i.log" t > "$TMP/t$i"
    increasing "$TMP/mono$i" || die "restore $i: CLOCK_MONOTONIC not increasing across the restore"
    increasing "$TMP/n$i" || die "restore $i: heartbeat sequence not continuing"
    increasing "$TMP/t$i" || die "restore $i: realtime not increasing"
    ctl "$TMP/r$i.sock" status | grep -q "state: *running" || die "restore $i: not running"
    grep -q "VERIFY FAIL" "$TMP/r$i.log" && die "restore $i: VERIFY FAIL"
    ctl "$TMP/r$i.sock" quit
    wait $pid || die "restore $i: vmm exited $?"
done

log "corrupted snapshots are refused"
mkdir "$TMP/bad"
cp "$SNAP/state" "$TMP/bad/state"; cp --sparse=always "$SNAP/memory" "$TMP/bad/memory"
printf '\377' | dd of="$TMP/bad/state" bs=1 seek=200 conv=notrunc 2>/dev/null
set +e; $VMM run --restore "$TMP/bad" --serial "$TMP/bad.log" > "$TMP/bad.err" 2>&1; rc=$?; set -e
cat "$TMP/bad.err"
[ $rc -eq 2 ] || die "corrupted state: exit $rc, want 2"
grep -q "^vmm: restore $TMP/bad: $TMP/bad/state: vmstate: checksum mismatch (file says 0x[0-9a-f]*, data is 0x[0-9a-f]*): truncated or corrupt$" "$TMP/bad.err" ||
    die "corrupted state: not the checksum error"
cp "$SNAP/state" "$TMP/bad/state"
set +e; $VMM run --restore "$TMP/bad" --serial "$TMP/bad.log" > "$TMP/bad.err" 2>&1; rc=$?; set -e
cat "$TMP/bad.err"    # the same snapshot without its --rng device
[ $rc -eq 3 ] || die "missing device: exit $rc, want 3"
grep -q "snapshot has state for device 'virtio-rng' which this VM lacks" "$TMP/bad.err" || die "missing device: unclear error"
truncate -s 100M "$TMP/bad/memory"
set +e; $VMM run --restore "$TMP/bad" --serial "$TMP/bad.log" > "$TMP/bad.err" 2>&1; rc=$?; set -e
cat "$TMP/bad.err"
[ $rc -eq 2 ] || die "short memory file: exit $rc, want 2"
grep -q "memory: 104857600 bytes, want" "$TMP/bad.err" || die "short memory: unclear error"
echo "ok"
