#!/bin/sh
# test: a TCP connection survives live migration. Three namespaces: hosts h1
# and h2 (a bridge each, joined by a veth pair: one L2 segment) and a client
# namespace plugged into h1's bridge. A Linux guest (workload=combo: dirtier +
# echo server, virtio-net on a tap in the host's bridge) is migrated h1 -> h2
# while a client keeps one TCP connection to the guest's echo port busy; the
# connection must keep echoing after the move (the guest announces its MAC
# after resume; the tap of the dead source disappears).
# needs: kvm
# timeout: 900
. tests/lib.sh
need_kvm
VMM=$(pwd)/$BUILD/vmm
H1=nh1.$$; H2=nh2.$$; HC=nhc.$$
PORT=4446
CMDLINE="console=ttyS0 quiet panic=-1 workload=combo dirtier_mib=32 ip=10.10.0.2/24"

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
# plug_tap NS: wait for the vmm's tap in NS and put it into the bridge.
plug_tap() {
    _t=0
    until ip -n "$1" link show vtap0 > /dev/null 2>&1; do
        [ $_t -ge 150 ] && die "no tap vtap0 in $1"
        sleep 0.2; _t=$((_t + 1))
    done
    ip -n "$1" link set vtap0 master br0 up
}

log "namespaces: $H1, $H2 (bridged), client $HC"
for ns in $H1 $H2 $HC; do ip netns add "$ns"; on_exit "ip netns del $ns"; ip -n "$ns" link set lo up; done
for ns in $H1 $H2; do
    ip -n "$ns" link add br0 type bridge
    ip -n "$ns" link set br0 up
done
ip link add hva netns "$H1" type veth peer name hvb netns "$H2"
ip -n "$H1" link set hva master br0 up
ip -n "$H2" link set hvb master br0 up
ip link add cva netns "$HC" type veth peer name cvb netns "$H1"
ip -n "$H1" link set cvb master br0 up
ip -n "$HC" addr add 10.10.0.100/24 dev cva
ip -n "$HC" link set cva up
# migration traffic: a separate address on each host's bridge
ip -n "$H1" addr add 10.9.0.1/24 dev br0
ip -n "$H2" addr add 10.9.0.2/24 dev br0
printf 'net-migration-secret\n' > "$TMP/secret"; chmod 600 "$TMP/secret"

cat > "$TMP/client.py" <<'EOF'
import socket, sys, time, os
stop, host = sys.argv[1], sys.argv[2]
s = socket.create_connection((host, 7), timeout=10)
s.settimeout(60)
n, worst, t_last = 0, 0.0, time.time()
while not os.path.exists(stop):
    msg = ("ping %d\n" % n).encode()
    t0 = time.time()
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(len(msg) - len(got))
        if not d:
            print("CLIENT FAIL: connection closed after %d echoes" % n, flush=True); sys.exit(1)
        got += d
    if got != msg:
        print("CLIENT FAIL: echo mismatch %r != %r" % (got, msg), flush=True); sys.exit(1)
    worst = max(worst, time.time() - t0)
    n += 1
    print("echo %d" % n, flush=True)
    time.sleep(0.2)
print("CLIENT ok n=%d worst_rtt_ms=%d" % (n, worst * 1000), flush=True)
EOF

log "boot on $H1"
ip netns exec "$H1" $VMM run --name mnet --kernel "$VMLINUZ" --initrd "$LINUX_INITRD" --mem 256M \
    --cpus 2 --cmdline "$CMDLINE" --net tap=vtap0 --serial "$TMP/run0.log" --control "$TMP/sock0" \
    --secret-file "$TMP/secret" 2> "$TMP/vmm0.err" &
SRC=$!
on_exit "kill -9 $SRC"
plug_tap "$H1"
wait_for "$TMP/run0.log" "ECHOSRV LISTEN" 300 || die "echo server did not come up"
wait_hb "$TMP/run0.log" 2 300
ip netns exec "$HC" ping -c 1 -W 5 10.10.0.2 > /dev/null || die "guest not reachable from the client"
ip netns exec "$HC" /usr/bin/python3 "$TMP/client.py" "$TMP/stop" 10.10.0.2 > "$TMP/client.log" 2>&1 &
CL=$!
on_exit "kill -9 $CL"
wait_for "$TMP/client.log" "^echo 5$" 60 || die "client does not get echoes"

log "migrate to $H2 with the connection open"
ip netns exec "$H2" $VMM run --name mnet --kernel "$VMLINUZ" --initrd "$LINUX_INITRD" --mem 256M \
    --cpus 2 --cmdline "$CMDLINE" --net tap=vtap0 --serial "$TMP/run1.log" --control "$TMP/sock1" \
    --incoming 10.9.0.2:$PORT --secret-file "$TMP/secret" 2> "$TMP/vmm1.err" &
DST=$!
on_exit "kill -9 $DST"
plug_tap "$H2"
wait_for "$TMP/vmm1.err" "listening on" 30 || die "destination did not listen"
$VMM ctl "$TMP/sock0" migrate --to 10.9.0.2:$PORT --downtime 1000 || die "migrate command failed"
wait_exit $SRC 300
cat "$TMP/vmm0.err" "$TMP/vmm1.err"
[ $rc -eq 0 ] || die "source exited $rc"
before=$(grep -c '^echo ' "$TMP/client.log")
wait_hb "$TMP/run1.log" 2 120
_t=0
while [ "$(grep -c '^echo ' "$TMP/client.log")" -lt $((before + 10)) ]; do
    grep -q "CLIENT FAIL" "$TMP/client.log" && { cat "$TMP/client.log" | tail -n 3; die "client failed"; }
    [ $_t -ge 300 ] && { tail -n 3 "$TMP/client.log"; die "no echoes after the move"; }
    sleep 0.2; _t=$((_t + 1))
done
touch "$TMP/stop"
wait_exit $CL 30
tail -n 1 "$TMP/client.log"
[ $rc -eq 0 ] || die "client exit $rc"
echo "echoes before the move finished: $before, total: $(grep -c '^echo ' "$TMP/client.log")"
$VMM ctl "$TMP/sock1" quit
wait_exit $DST 60
grep -q "VERIFY FAIL" "$TMP/run1.log" && die "VERIFY FAIL"
echo "ok"
