#!/bin/sh
# virtio-net and virtio-blk throughput of a 512 MiB, 2-vCPU Linux guest: our
# vmm vs QEMU-KVM, same kernel, same initramfs (bench/mkinitrd.sh: the test
# guest's plus iperf3), same tap setup, same place (run it where KVM works:
# directly or in the lab). One guest boot per configuration does both:
#   ours        --net tap=tap0 --disk IMG (virtio-blk: writes to the host page
#               cache, FLUSH = fdatasync, i.e. QEMU's cache=writeback semantics)
#   qemu        QEMU defaults: -netdev tap (vhost=off: virtio-net in QEMU's
#               userspace), -drive if=virtio,cache=writeback
#   qemu-vhost  vhost-net (vhost=on, in-kernel datapath, what libvirt uses) and
#               cache=writethrough (every write reaches the file before completion)
# cache=none (O_DIRECT) is not offered: the lab's /tmp is tmpfs, which has no
# O_DIRECT on its 6.1 kernel. The disk image lives in $TMPDIR (tmpfs in the lab).
# blk: the guest's blkperf (guests/linux) writes BENCH_BLK_MIB (64) MiB with
#   O_DIRECT + fdatasync, then reads them back with O_DIRECT, RUNS times; it
#   times itself with the guest's CLOCK_MONOTONIC (kvmclock on both).
# net: after blkperf is done, iperf3 (TCP, 1 stream, BENCH_NET_SECS (4) s
#   after 1 s omitted) from the host namespace to the guest (host_to_guest =
#   the guest receives) and with -R (guest_to_host), RUNS times each; the
#   receiver's byte count over its time.
# Everything runs in a network namespace of our own: tap0 10.0.0.1/24 on this
# side, the guest 10.0.0.2/24.
# Prints JSON lines:
#   {"bench":"blk","vmm":V,"run":N,"op":"write|read","mib":M,"mbps":..}
#   {"bench":"net","vmm":V,"run":N,"dir":"host_to_guest|guest_to_host","mbps":..}
# (MB/s = 10^6 bytes per second.)  BENCH_ONLY (e.g. "qemu") picks configurations.
# Usage: bench/io.sh [RUNS]
set -eu
. bench/netns.sh
if [ -z "${BENCH_IN_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "bench: io.sh needs root (tap, network namespace)" >&2; exit 1; }
    bench_reexec_in_netns benchio "$@"
fi
RUNS=${1:-3}
MIB=${BENCH_BLK_MIB:-64}
SECS=${BENCH_NET_SECS:-4}
. bench/vmlib.sh
I=build/bench/initramfs-io.cpio.gz
[ -f "$I" ] || { warn "io: no $I (bench/run.sh builds it with bench/mkinitrd.sh)"; exit 1; }
command -v iperf3 >/dev/null || { warn "io: iperf3 missing on this side (make deps)"; exit 1; }
CMD="console=ttyS0 quiet panic=-1 workload=blkperf,iperf3 ip=10.0.0.2/24 blkperf_mib=$MIB blkperf_runs=$RUNS"
MAC=52:54:00:be:0c:01

# vhost_kos MODROOT MODULE: MODULE's .ko and its dependencies' (from their
# depends= field), dependencies first, each once ($SEEN), looked up in
# drivers/vhost and drivers/net only; fails if one is not there.
vhost_kos() {
    local _m _f _d _n _dep   # recursive: dash's local
    _m=$(echo "$2" | tr - _)
    case "$SEEN" in *" $_m "*) return 0;; esac
    SEEN="$SEEN$_m "
    _f=""
    for _d in "$1/kernel/drivers/vhost" "$1/kernel/drivers/net"; do
        for _n in "$_m" "$(echo "$_m" | tr _ -)"; do [ -f "$_d/$_n.ko" ] && _f=$_d/$_n.ko && break 2; done
    done
    [ -n "$_f" ] || return 1
    for _dep in $(modinfo -F depends "$_f" | tr , ' '); do vhost_kos "$1" "$_dep" || return 1; done
    echo "$_f"
}

# vhost-net for the qemu-vhost row: inside the lab the module comes from the
# lab kernel's own tree (the same kernel tests/lab/kernel.sh unpacked).
vhost_ready() {
    [ -c /dev/vhost-net ] && return 0
    modprobe vhost_net 2>/dev/null && [ -c /dev/vhost-net ] && return 0
    [ -d "$KROOT/lib/modules/$(uname -r)" ] || return 1
    # vhost_net needs vhost, vhost_iotlb, tap, tun. tests/lab/modules.sh finds
    # them by walking the whole module tree once per module, which takes
    # about 90 s over the lab's 9p share: look in their two directories first.
    _kos=$(SEEN=" " vhost_kos "$KROOT/lib/modules/$(uname -r)" vhost_net) ||
        _kos=$(tests/lab/modules.sh "$KROOT" vhost_net 2>/dev/null) || true
    for m in $_kos; do
        insmod "$m" 2>/dev/null || true   # already loaded (tun) is fine
    done
    [ -c /dev/vhost-net ]
}

# A fresh tap and a fresh sparse disk image for every configuration.
setup() {
    ip link del tap0 2>/dev/null || true
    ip tuntap add tap0 mode tap
    ip addr add 10.0.0.1/24 dev tap0
    ip link set tap0 up
    rm -f "$T/disk.img"; truncate -s $((MIB + 16))M "$T/disk.img"
}

# iperf3 JSON on stdin -> receiver MB/s, or nothing. awk, not Python (a
# Python start-up is slow in the lab): iperf3 -J prints one key per line,
# and the first "seconds"/"bytes" after "sum_received" are the receiver's.
iperf_mbps() {
    awk '/"sum_received"[ \t]*:/ { r = 1; next }
         r && /"seconds"[ \t]*:/ && s == "" { s = $2 }
         r && /"bytes"[ \t]*:/ && b == "" { b = $2 }
         r && /}/ { r = 0 }
         END { gsub(/,/, "", s); gsub(/,/, "", b); if (s + 0 > 0 && b != "") printf "%.2f\n", b / s / 1e6 }'
}

# measure VMM LOG PID: the guest's blkperf lines, then iperf3 both ways.
measure() {
    who=$1 log=$2 pid=$3 n=0 m0=$(now_ms)
    until [ -f "$log" ] && tr -d '\r' < "$log" | grep -Eq '^BLKPERF (DONE|FAIL)'; do
        kill -0 "$pid" 2>/dev/null || { warn "io: $who died"; tail -n 5 "$log" "$log.err" >&2; return 1; }
        [ $n -lt 2400 ] || { warn "io: $who: no BLKPERF DONE after 240 s"; return 1; }
        sleep 0.1; n=$((n + 1))
    done
    tr -d '\r' < "$log" | sed -n 's/^BLKPERF run=\([0-9]*\) op=\([a-z]*\) mib=\([0-9]*\) s=[0-9.]* mbps=\([0-9.]*\)$/\1 \2 \3 \4/p' |
        while read -r r op m v; do
            printf '{"bench":"blk","vmm":"%s","run":%d,"op":"%s","mib":%d,"mbps":%s}\n' "$who" "$r" "$op" "$m" "$v"
        done
    tr -d '\r' < "$log" | grep '^BLKPERF FAIL' >&2 || true
    warn "io: $who: boot + blkperf took $(secs "$(now_ms)" "$m0") s"
    tr -d '\r' < "$log" | grep -q '^NET UP' || { warn "io: $who: guest network not up: $(tr -d '\r' < "$log" | grep '^NET' || true)"; return 1; }
    i=1
    while [ $i -le "$RUNS" ]; do
        for dir in host_to_guest guest_to_host; do
            rflag=""; [ $dir = guest_to_host ] && rflag=-R
            v=""; try=0
            # the server may still be starting, or busy closing the last test
            while [ -z "$v" ] && [ $try -lt 5 ]; do
                # bounded: a stalled iperf3 connection (the guest's server
                # gone quiet) once hung a whole make bench run here
                v=$(timeout -k 5 $((SECS + 30)) iperf3 -c 10.0.0.2 -t "$SECS" -O 1 -J $rflag 2>/dev/null |
                    iperf_mbps || true)
                [ -n "$v" ] || sleep 1
                try=$((try + 1))
            done
            if [ -n "$v" ]; then
                printf '{"bench":"net","vmm":"%s","run":%d,"dir":"%s","mbps":%s}\n' "$who" $i $dir "$v"
            else
                warn "io: $who: iperf3 $dir run $i failed"
            fi
        done
        i=$((i + 1))
    done
    warn "io: $who: boot + blkperf + iperf3 took $(secs "$(now_ms)" "$m0") s"
}

ours() {
    setup
    ours_start "$T/o.log" "$T/o.sock" "$CMD" --net tap=tap0,mac=$MAC --disk "$T/disk.img"
    measure ours "$T/o.log" $OPID || true
    stop_pid $OPID
}
qemu_io() { # WHO VHOST(on|off) CACHE
    setup
    qemu_start "$T/$1.log" "$T/$1.mon" "$CMD" \
        -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=$2 -device virtio-net-pci,netdev=n0,mac=$MAC \
        -drive file="$T/disk.img",format=raw,if=virtio,cache=$3
    measure "$1" "$T/$1.log" $QPID || true
    stop_pid $QPID
}
qemu() { qemu_io qemu off writeback; }
qemu_vhost() {
    vhost_ready || { warn "io: no /dev/vhost-net (vhost_net module): qemu-vhost skipped"; return 0; }
    qemu_io qemu-vhost on writethrough
}

for who in ${BENCH_ONLY:-ours qemu qemu_vhost}; do
    $who || warn "io: $who failed"
done
exit 0
