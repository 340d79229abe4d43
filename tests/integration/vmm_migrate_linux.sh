#!/bin/sh
# test: live migration of a 2-vCPU Linux guest with a virtio-net NIC and a
# virtio-blk disk (shared image), running the memory dirtier and the echo
# server, back and forth 10 times between two "hosts" (network namespaces
# joined by a veth pair): h1 -> h2 -> h1 -> ... After each move the source
# exits 0 with its summary line, the destination prints "migration complete",
# the hash of all guest RAM the source logged at pause equals the one the
# destination logged just before resuming (--debug-ram-hash), heartbeats
# continue on the destination with n and mono increasing past every earlier
# one (the guest's monotonic clock never goes back), and no VERIFY FAIL.
# needs: kvm
# timeout: 540
. tests/lib.sh
. tests/vmm_hosts.sh
need_kvm
MEM=${MIG_MEM:-256M}
MOVES=${MIG_MOVES:-10}
CMDLINE="console=ttyS0 quiet panic=-1 workload=dirtier,echo,disk dirtier_mib=32 disk_blocks=512 ip=10.10.0.2/24"
PORT=4445

hosts_net lh
secret_file secret
truncate -s 16M "$TMP/disk.img"
set -- --disk "$TMP/disk.img" --net tap=vtap0 --secret-file "$TMP/secret" --debug-ram-hash="$RH"

log "boot on $H1: $MEM, 2 vCPUs, dirtier 32 MiB, NIC, disk"
vmm_linux m0 "$H1" "$@"
SRC=$PID
wait_for "$TMP/m0.log" "GUEST UP" 300 || die "guest did not come up"
wait_for "$TMP/m0.log" "^DISK OK" 120 || die "guest's disk check did not pass"
wait_hb "$TMP/m0.log" 3 300

i=1
while [ $i -le $MOVES ]; do
    if [ $((i % 2)) -eq 1 ]; then ns=$H2; ip=$IP2; else ns=$H1; ip=$IP1; fi
    src=m$((i - 1)); dst=m$i
    log "move $i: -> $ns ($ip)"
    vmm_incoming $dst "$ns" $ip:$PORT "$@"
    DST=$PID
    ctl "$TMP/$src.sock" migrate --to $ip:$PORT --downtime 1000 || die "migrate command failed"
    _t=0
    while kill -0 $SRC 2>/dev/null; do
        ctl "$TMP/$src.sock" migrate-status > "$TMP/ms.txt" 2>/dev/null || true
        if grep -Eq "outcome: *(failed|cancelled|ambiguous)" "$TMP/ms.txt"; then
            cat "$TMP/ms.txt" "$TMP/$src.err" "$TMP/$dst.err"; die "move $i failed"
        fi
        [ $_t -ge 1200 ] && { cat "$TMP/ms.txt"; die "move $i: source still running after 120 s"; }
        sleep 0.1; _t=$((_t + 1))
    done
    wait_exit $SRC 10
    grep "migrated to" "$TMP/$src.err" || die "move $i: no summary line on the source"
    [ $rc -eq 0 ] || die "move $i: source exited $rc, want 0"
    grep "migration complete" "$TMP/$dst.err" || { cat "$TMP/$dst.err"; die "move $i: destination did not complete"; }
    ram_hashes $src $dst
    wait_hb "$TMP/$dst.log" 3 120
    : > "$TMP/mono.all"; : > "$TMP/n.all"
    j=0
    while [ $j -le $i ]; do
        hb_field "$TMP/m$j.log" mono >> "$TMP/mono.all"
        hb_field "$TMP/m$j.log" n >> "$TMP/n.all"
        j=$((j + 1))
    done
    increasing "$TMP/mono.all" || die "move $i: HEARTBEAT mono not increasing across the move"
    increasing "$TMP/n.all" || die "move $i: HEARTBEAT n not increasing across the move"
    no_verify_fail "$TMP/$dst.log"
    echo "move $i: mono $(tail -n 1 "$TMP/mono.all"), $(hb_count "$TMP/$dst.log") heartbeats on the destination"
    SRC=$DST
    i=$((i + 1))
done
state_is "$TMP/m$MOVES.sock" running || die "final VM not running"
ctl "$TMP/m$MOVES.sock" quit
wait_exit $SRC 60
no_verify_fail "$TMP"/m*.log
echo "ok"
