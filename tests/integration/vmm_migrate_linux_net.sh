#!/bin/sh
# test: a TCP connection survives live migration. Three namespaces: hosts h1
# and h2 (a bridge each, joined by a veth pair: one L2 segment) and a client
# namespace plugged into h1's bridge. A Linux guest (workload=combo: dirtier +
# echo server, virtio-net on a tap in the host's bridge) is migrated h1 -> h2
# while a client keeps one TCP connection to the guest's echo port busy; the
# connection must keep echoing after the move (the destination vmm sends a
# RARP for the guest's MAC, seen on h1's bridge, and the guest announces
# itself after resume; the tap of the dead source disappears). The destination's
# fresh tap must get the checksum/TSO offloads the guest negotiated on the
# source (re-applied when the device state loads).
# needs: kvm
# timeout: 600
. tests/lib.sh
. tests/vmm_hosts.sh
need_kvm
PORT=4446
CMDLINE="console=ttyS0 quiet panic=-1 workload=combo dirtier_mib=32 ip=10.10.0.2/24"

GMAC=52:54:00:4e:7a:01
hosts_net nh bridge
client_net nh 10.10.0.100/24
secret_file secret

log "boot on $H1"
vmm_linux m0 "$H1" --net tap=vtap0,mac=$GMAC --secret-file "$TMP/secret"
SRC=$PID
plug_tap "$H1"
wait_for "$TMP/m0.log" "ECHOSRV LISTEN" 300 || die "echo server did not come up"
wait_hb "$TMP/m0.log" 2 300
ip netns exec "$HC" ping -c 1 -W 5 10.10.0.2 > /dev/null || die "guest not reachable from the client"
ip netns exec "$HC" /usr/bin/python3 tests/echo_client.py "$TMP/stop" 10.10.0.2 10 60 > "$TMP/client.log" 2>&1 &
CL=$!
on_exit "kill -9 $CL"
wait_for "$TMP/client.log" "^echo 5$" 60 || die "client does not get echoes"

log "migrate to $H2 with the connection open"
vmm_start m1 "$H2" --name linux --kernel "$VMLINUZ" --initrd "$LINUX_INITRD" --mem "$MEM" \
    --cpus "$CPUS" --cmdline "$CMDLINE" --net tap=vtap0,mac=$GMAC --incoming $IP2:$PORT --secret-file "$TMP/secret"
DST=$PID
plug_tap "$H2"
ip netns exec "$H1" /usr/bin/python3 tests/rarp_watch.py br0 "$TMP/rarp.txt" 120 &
RW=$!
on_exit "kill -9 $RW"
wait_for "$TMP/rarp.txt" "^watching" 30 || die "rarp_watch did not start"
wait_for "$TMP/m1.err" "listening on" 30 || die "destination did not listen"
ctl "$TMP/m0.sock" migrate --to $IP2:$PORT --downtime 1000 || die "migrate command failed"
wait_exit $SRC 300
cat "$TMP/m0.err" "$TMP/m1.err"
[ $rc -eq 0 ] || die "source exited $rc"
off=$(ip netns exec "$H2" python3 tests/tap_offloads.py vtap0) || die "cannot read vtap0 offloads"
echo "destination $off"
[ "$off" = "vtap0 csum=1 tso=1" ] || die "offloads not re-applied on the destination's tap: $off"
wait_for "$TMP/rarp.txt" "^RARP" 30 || die "no RARP reached $H1's bridge after the move"
cat "$TMP/rarp.txt"
grep -q "^RARP src=$GMAC sender=$GMAC target=$GMAC op=3$" "$TMP/rarp.txt" || die "the RARP does not name the guest's MAC"
before=$(grep -c '^echo ' "$TMP/client.log")
wait_hb "$TMP/m1.log" 2 120
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
ctl "$TMP/m1.sock" quit
wait_exit $DST 60
no_verify_fail "$TMP/m0.log" "$TMP/m1.log"
echo "ok"
