#!/bin/sh
# test: the Linux test guest boots under QEMU-KVM with 2 vCPUs: GUEST UP, both
# CPUs online, the dirtier verifies 32 MiB and heartbeats once per second with
# increasing clocks; its self-test corruption (dirtier_corrupt) is detected.
# This is the peer (QEMU) side of every comparison, checked in the same place
# our vmm runs.
# needs: kvm
# timeout: 240
. tests/lib.sh
need_kvm
boot() { # NAME CMDLINE-EXTRA
    qemu-system-x86_64 -accel kvm -cpu host -m 512 -smp 2 -nographic -no-reboot -nic none -monitor none \
        -serial "file:$TMP/$1.log" -kernel "$VMLINUZ" -initrd "$LINUX_INITRD" \
        -append "console=ttyS0 quiet panic=-1 $2" </dev/null >"$TMP/$1.qemu" 2>&1 &
    echo $! > "$TMP/$1.pid"
    on_exit "kill -9 $(cat "$TMP/$1.pid")"
}
start=$(date +%s)
boot ok "workload=dirtier dirtier_mib=32"
wait_for "$TMP/ok.log" "GUEST UP" 90 || die "no GUEST UP"
log "GUEST UP after $(( $(date +%s) - start )) s"
wait_for "$TMP/ok.log" "CPUS ONLINE" 30 || die "no CPUS ONLINE line"
grep -q "CPUS ONLINE 2" "$TMP/ok.log" || die "want 2 CPUs: $(grep 'CPUS ONLINE' "$TMP/ok.log")"
wait_for "$TMP/ok.log" "HEARTBEAT n=4 " 90 || die "fewer than 4 heartbeats"
grep "HEARTBEAT" "$TMP/ok.log" | tr -d '\r'
# Clocks increase between consecutive heartbeats.
grep "HEARTBEAT" "$TMP/ok.log" | tr -d '\r' | sed 's/.* t=\([0-9.]*\) mono=\([0-9.]*\).*/\1 \2/' | awk '
    NR > 1 && ($1 <= t || $2 <= m) { print "clock went backwards: " $0; bad = 1 }
    { t = $1; m = $2 } END { exit bad }' || die "heartbeat clocks not increasing"
grep -q "VERIFY FAIL" "$TMP/ok.log" && die "VERIFY FAIL on a clean run"
kill -9 "$(cat "$TMP/ok.pid")"
boot bad "workload=dirtier dirtier_mib=8 dirtier_corrupt=3"
wait_for "$TMP/bad.log" "WORKLOAD dirtier EXITED" 120 || true
grep -q "VERIFY FAIL page=" "$TMP/bad.log" || die "self-test corruption not detected"
grep "VERIFY FAIL" "$TMP/bad.log" | tr -d '\r'
echo ok
