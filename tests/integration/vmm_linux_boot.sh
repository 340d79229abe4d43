#!/bin/sh
# test: our vmm boots the Debian kernel + Linux test guest with 2 vCPUs and
# virtio-rng: GUEST UP, CPUS ONLINE 2, the virtio modules load, heartbeats
# keep coming (timer interrupts and SMP work), SIGUSR2 makes the vmm dump
# every vCPU's state (and dumps them when the guest stays silent), and the
# virtio-balloon (--balloon) gets free pages reported (the vmm logs MiB > 0) and
# guest RAM resident in the memfd (RssShmem) drops below its GUEST UP value.
# needs: kvm
# timeout: 240
. tests/lib.sh
need_kvm
VMM=$BUILD/vmm
LOG=$TMP/boot.log
start=$(date +%s.%N)
$VMM run --name boot --kernel "$VMLINUZ" --initrd "$LINUX_INITRD" --mem 512M --cpus 2 --rng --balloon \
    --cmdline "console=ttyS0 panic=-1 quiet workload=idle" > "$LOG" 2>&1 &
PID=$!
on_exit "kill $PID"
# A silent guest: ask the vmm where each vCPU is (SIGUSR2 state dump), twice,
# 5 s apart: moving RIPs and exit counts mean a slow guest (a starved lab),
# "halted" an idle one, the same RIP and counts while runnable a stuck vCPU.
vcpu_dump() {
    kill -USR2 $PID 2>/dev/null; sleep 5; kill -USR2 $PID 2>/dev/null; sleep 2
    grep "^vmm: vcpu" "$LOG" || echo "(no vCPU answered the state dump)"
}
wait_for "$LOG" "^GUEST UP" 150 || { vcpu_dump; die "no GUEST UP"; }
log "GUEST UP after $(echo "$(date +%s.%N) - $start" | bc) s"
shmem_kib() { awk '/^RssShmem/{print $2}' /proc/$PID/status; }
SHMEM_UP=$(shmem_kib)
wait_for "$LOG" "^CPUS ONLINE" 30 || die "no CPUS ONLINE line"
grep -q "^CPUS ONLINE 2" "$LOG" || die "want CPUS ONLINE 2: $(grep '^CPUS ONLINE' "$LOG")"
wait_for "$LOG" "^MODULES LOADED" 60 || die "no MODULES LOADED"
grep -q "INIT insmod .* failed" "$LOG" && die "a module failed to load"
wait_for "$LOG" "^HEARTBEAT n=3 " 60 || die "heartbeats stopped"
kill -0 $PID 2>/dev/null || die "vmm exited early"
# The state dump answers for every vCPU of a running guest (paging on).
kill -USR2 $PID
wait_for "$LOG" "^vmm: vcpu1: " 20 || die "vCPU 1 did not answer the state dump"
for i in 0 1; do
    grep -Eq "^vmm: vcpu$i: (runnable|halted) rip 0x[0-9a-f]+ .* cr0 0x8[0-9a-f]{7} " "$LOG" ||
        die "bad state dump for vCPU $i: $(grep "^vmm: vcpu$i: " "$LOG")"
done
kill -0 $PID 2>/dev/null || die "vmm exited on the state dump"
# Free page reporting: the guest reports 2 MiB blocks ~2 s after they are
# freed (kernel decompression, initramfs unpacking); the vmm punches them.
wait_for "$LOG" "^vmm: virtio-balloon: guest reported [1-9][0-9]* MiB" 90 ||
    die "no free page report from the guest (virtio_balloon bound? $(grep -i balloon "$LOG"))"
grep -q "virtio-balloon: punching" "$LOG" && die "a punch failed: $(grep punching "$LOG")"
sleep 5
SHMEM_NOW=$(shmem_kib)
log "RssShmem at GUEST UP ${SHMEM_UP} KiB, after reporting ${SHMEM_NOW} KiB"
[ "$SHMEM_NOW" -lt "$SHMEM_UP" ] || die "RssShmem did not drop: $SHMEM_UP -> $SHMEM_NOW KiB"
kill $PID; wait $PID 2>/dev/null || true
grep -E "^(GUEST UP|CPUS|MODULES|HEARTBEAT n=3 |vmm: vcpu|vmm: virtio-balloon)" "$LOG"
echo "ok"
