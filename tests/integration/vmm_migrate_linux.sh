#!/bin/sh
# test: live migration of a 2-vCPU Linux guest running the memory dirtier
# (64 MiB) between two "hosts" (network namespaces joined by a veth pair):
# h1 -> h2 -> h1 -> h2. After each move the destination prints "migration
# complete", the source exits 0 with its summary line, heartbeats continue on
# the destination with n and mono increasing past the source's last ones
# (the guest's monotonic clock never goes back), and no VERIFY FAIL.
# needs: kvm
# timeout: 1500
. tests/lib.sh
need_kvm
VMM=$(pwd)/$BUILD/vmm
MEM=${MIG_MEM:-256M}
MOVES=${MIG_MOVES:-3}
CMDLINE="console=ttyS0 quiet panic=-1 workload=dirtier dirtier_mib=64"
H1=lh1.$$; H2=lh2.$$; VA=lva$$; VB=lvb$$
PORT=4445

hb_field() { tr -d '\r' < "$1" | sed -n "s/.*HEARTBEAT .*\b$2=\([0-9.]*\).*/\1/p"; }
hb_count() { _n=$(count_lines "$1" 'HEARTBEAT n='); echo "${_n:-0}"; }
wait_hb() {
    _t=0
    while [ "$(hb_count "$1")" -lt "$2" ]; do
        grep -q "VERIFY FAIL" "$1" && { grep "VERIFY FAIL" "$1"; die "VERIFY FAIL in $1"; }
        [ $_t -ge $(($3 * 5)) ] && { tail -n 20 "$1"; die "$1: fewer than $2 heartbeats after $3 s"; }
        sleep 0.2; _t=$((_t + 1))
    done
}
wait_exit() {
    _t=0
    while kill -0 "$1" 2>/dev/null; do
        [ $_t -ge $(($2 * 5)) ] && die "pid $1 still running after $2 s"
        sleep 0.2; _t=$((_t + 1))
    done
    set +e; wait "$1"; rc=$?; set -e
}
increasing() { awk 'NR > 1 && $1 + 0 <= prev + 0 { bad = 1; print "not increasing: " prev " -> " $1 } { prev = $1 } END { exit bad }' "$1"; }

log "hosts: $H1 (10.9.0.1) <-> $H2 (10.9.0.2)"
ip netns add "$H1"; on_exit "ip netns del $H1"
ip netns add "$H2"; on_exit "ip netns del $H2"
ip link add "$VA" netns "$H1" type veth peer name "$VB" netns "$H2"
ip netns exec "$H1" ip addr add 10.9.0.1/24 dev "$VA"
ip netns exec "$H1" ip link set "$VA" up
ip netns exec "$H2" ip addr add 10.9.0.2/24 dev "$VB"
ip netns exec "$H2" ip link set "$VB" up
printf 'linux-migration-secret\n' > "$TMP/secret"; chmod 600 "$TMP/secret"

# run_vmm IDX NS [--incoming IP:PORT]: a vmm in namespace NS; pid in $PID.
run_vmm() {
    _i=$1; _ns=$2; shift 2
    ip netns exec "$_ns" $VMM run --name mlinux --kernel "$VMLINUZ" --initrd "$LINUX_INITRD" \
        --mem "$MEM" --cpus 2 --cmdline "$CMDLINE" --serial "$TMP/run$_i.log" \
        --control "$TMP/sock$_i" --secret-file "$TMP/secret" "$@" 2> "$TMP/vmm$_i.err" &
    PID=$!
    on_exit "kill -9 $PID"
}

log "boot on $H1: $MEM, 2 vCPUs, dirtier 64 MiB"
run_vmm 0 "$H1"
SRC=$PID
wait_for "$TMP/run0.log" "GUEST UP" 300 || die "guest did not come up"
wait_hb "$TMP/run0.log" 3 300

i=1
while [ $i -le $MOVES ]; do
    if [ $((i % 2)) -eq 1 ]; then ns=$H2; ip=10.9.0.2; else ns=$H1; ip=10.9.0.1; fi
    log "move $i: -> $ns ($ip)"
    run_vmm $i "$ns" --incoming $ip:$PORT
    DST=$PID
    wait_for "$TMP/vmm$i.err" "listening on" 30 || die "destination did not listen"
    $VMM ctl "$TMP/sock$((i - 1))" migrate --to $ip:$PORT --downtime 1000 || die "migrate command failed"
    _t=0
    while kill -0 $SRC 2>/dev/null; do
        $VMM ctl "$TMP/sock$((i - 1))" migrate-status > "$TMP/ms.txt" 2>/dev/null || true
        if grep -Eq "outcome: *(failed|cancelled|ambiguous)" "$TMP/ms.txt"; then
            cat "$TMP/ms.txt" "$TMP/vmm$((i - 1)).err" "$TMP/vmm$i.err"; die "move $i failed"
        fi
        [ $_t -ge 600 ] && { cat "$TMP/ms.txt"; die "move $i: source still running after 600 s"; }
        sleep 1; _t=$((_t + 1))
    done
    wait_exit $SRC 10
    grep "migrated to" "$TMP/vmm$((i - 1)).err" || die "move $i: no summary line on the source"
    [ $rc -eq 0 ] || die "move $i: source exited $rc, want 0"
    grep "migration complete" "$TMP/vmm$i.err" || { cat "$TMP/vmm$i.err"; die "move $i: destination did not complete"; }
    wait_hb "$TMP/run$i.log" 3 300
    : > "$TMP/mono.all"; : > "$TMP/n.all"
    j=0
    while [ $j -le $i ]; do
        hb_field "$TMP/run$j.log" mono >> "$TMP/mono.all"
        hb_field "$TMP/run$j.log" n >> "$TMP/n.all"
        j=$((j + 1))
    done
    increasing "$TMP/mono.all" || die "move $i: HEARTBEAT mono not increasing across the move"
    increasing "$TMP/n.all" || die "move $i: HEARTBEAT n not increasing across the move"
    grep -q "VERIFY FAIL" "$TMP/run$i.log" && die "move $i: VERIFY FAIL"
    echo "move $i: mono $(tail -n 1 "$TMP/mono.all"), $(hb_count "$TMP/run$i.log") heartbeats on the destination"
    SRC=$DST
    i=$((i + 1))
done
$VMM ctl "$TMP/sock$MOVES" status | grep -q "state: *running" || die "final VM not running"
$VMM ctl "$TMP/sock$MOVES" quit
wait_exit $SRC 60
echo "ok"
