#!/bin/sh
# test: our vmm boots the Debian kernel + Linux test guest with 2 vCPUs and
# virtio-rng: GUEST UP, CPUS ONLINE 2, the virtio modules load, heartbeats
# keep coming (timer interrupts and SMP work).
# needs: kvm
# timeout: 240
. tests/lib.sh
need_kvm
VMM=$BUILD/vmm
LOG=$TMP/boot.log
start=$(date +%s.%N)
$VMM run --name boot --kernel "$VMLINUZ" --initrd "$LINUX_INITRD" --mem 512M --cpus 2 --rng \
    --cmdline "console=ttyS0 panic=-1 quiet workload=idle" > "$LOG" 2>&1 &
PID=$!
on_exit "kill $PID"
wait_for "$LOG" "^GUEST UP" 150 || die "no GUEST UP"
log "GUEST UP after $(echo "$(date +%s.%N) - $start" | bc) s"
wait_for "$LOG" "^CPUS ONLINE" 30 || die "no CPUS ONLINE line"
grep -q "^CPUS ONLINE 2" "$LOG" || die "want CPUS ONLINE 2: $(grep '^CPUS ONLINE' "$LOG")"
wait_for "$LOG" "^MODULES LOADED" 60 || die "no MODULES LOADED"
grep -q "INIT insmod .* failed" "$LOG" && die "a module failed to load"
wait_for "$LOG" "^HEARTBEAT n=3 " 60 || die "heartbeats stopped"
kill -0 $PID 2>/dev/null || die "vmm exited early"
kill $PID; wait $PID 2>/dev/null || true
grep -E "^(GUEST UP|CPUS|MODULES|HEARTBEAT n=3 )" "$LOG"
echo "ok"
