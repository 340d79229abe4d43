#!/bin/sh
# Boot-to-GUEST-UP time and RSS after boot: our vmm vs QEMU-KVM, same kernel,
# same initramfs, same memory and vCPUs, same place (run it where KVM works:
# directly or inside the lab). RSS is read BENCH_BOOT_SETTLE (6) s after
# GUEST UP for every VMM alike: free page reporting gives freed guest RAM
# back ~2 s after the guest frees it. Peers: QEMU as-is (no balloon) and
# QEMU with -device virtio-balloon-pci,free-page-reporting=on; ours runs
# with its defaults (no balloon: --balloon is opt-in, see vmm/virtio/README.md). Prints JSON lines:
#   {"bench":"boot","vmm":"ours|qemu|qemu-balloon","run":N,"boot_s":..,"rss_kib":..}
# Usage: bench/boot.sh [RUNS]
set -eu
RUNS=${1:-3}
KROOT=$(tests/lab/kernel.sh)
K=$(ls "$KROOT"/boot/vmlinuz-* | head -1)
I=build/guests/linux/initramfs.cpio.gz
CMD="console=ttyS0 quiet panic=-1 workload=idle"
SETTLE=${BENCH_BOOT_SETTLE:-6}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
now_ms() { date +%s%3N; }
measure() { # WHO RUN
    log=$T/$1.$2.log; : > "$log"
    start=$(now_ms)
    if [ "$1" = ours ]; then
        build/vmm run --name bench --kernel "$K" --initrd "$I" --mem 512M --cpus 2 \
            --cmdline "$CMD" --serial "$log" >/dev/null 2>&1 &
    else
        extra=""
        [ "$1" = qemu-balloon ] && extra="-device virtio-balloon-pci,free-page-reporting=on"
        # shellcheck disable=SC2086 # $extra: zero or two words
        qemu-system-x86_64 -accel kvm -cpu host -m 512 -smp 2 -nographic -no-reboot -nic none \
            -monitor none -serial "file:$log" -kernel "$K" -initrd "$I" -append "$CMD" $extra \
            </dev/null >/dev/null 2>&1 &
    fi
    pid=$!
    n=0
    while ! grep -q "GUEST UP" "$log" 2>/dev/null; do
        sleep 0.05; n=$((n + 1))
        if [ $n -gt 2400 ] || ! kill -0 $pid 2>/dev/null; then
            kill -9 $pid 2>/dev/null; echo "bench: $1 did not reach GUEST UP" >&2; return 1
        fi
    done
    end=$(now_ms)
    sleep "$SETTLE"   # let init settle and free pages get reported, then read RSS
    rss=$(awk '/^VmRSS/{print $2}' /proc/$pid/status 2>/dev/null)
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null || true
    [ -n "$rss" ] || { echo "bench: $1 exited before its RSS was read" >&2; return 1; }
    printf '{"bench":"boot","vmm":"%s","run":%d,"boot_s":%s,"rss_kib":%s}\n' \
        "$1" "$2" "$(echo "$end $start" | awk '{printf "%.3f", ($1-$2)/1000}')" "$rss"
}
i=1
while [ $i -le "$RUNS" ]; do
    measure ours $i || true
    measure qemu $i || true
    measure qemu-balloon $i || true
    i=$((i + 1))
done
