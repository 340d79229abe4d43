#!/bin/sh
# test: virtio-net in our vmm on a tap inside a private network namespace:
# the guest comes up as 10.0.0.2/24, answers ping, negotiated checksum and
# TSO offloads (the tap shows tx csum/tso on: host->guest frames up to 64
# KiB), and echoes 2 MB of random bytes over TCP unchanged (GSO frames both
# ways: the guest's TSO goes through the tap's segmentation).
# needs: kvm
# timeout: 300
. tests/lib.sh
need_kvm
VMM=$BUILD/vmm
NS=vmmnet$$
ip netns add $NS
on_exit "ip netns del $NS"
ip netns exec $NS ip link set lo up
ip netns exec $NS ip tuntap add tap0 mode tap
ip netns exec $NS ip addr add 10.0.0.1/24 dev tap0
ip netns exec $NS ip link set tap0 up
LOG=$TMP/net.log
ip netns exec $NS $VMM run --name net --kernel "$VMLINUZ" --initrd "$LINUX_INITRD" --mem 512M --cpus 2 \
    --net tap=tap0,mac=52:54:00:ab:cd:01 --rng \
    --cmdline "console=ttyS0 panic=-1 quiet workload=echo ip=10.0.0.2/24" > "$LOG" 2>&1 &
PID=$!
on_exit "kill $PID"
wait_for "$LOG" "^NET (UP|FAIL)" 150 || die "no NET line"
grep -q "^NET UP eth0 10.0.0.2/24" "$LOG" || die "$(grep '^NET' "$LOG")"
wait_for "$LOG" "^ECHOSRV LISTEN" 30 || die "echo server did not start"
ip netns exec $NS ping -c 3 -W 5 10.0.0.2 || die "ping failed"
off=$(ip netns exec $NS python3 tests/tap_offloads.py tap0) || die "cannot read tap0 offloads"
echo "$off"
[ "$off" = "tap0 csum=1 tso=1" ] || die "guest did not get checksum/TSO offloads on the tap: $off"
ip netns exec $NS ip neigh show 10.0.0.2 | grep -qi "52:54:00:ab:cd:01" || die "guest MAC is not the configured one"
head -c 2000000 /dev/urandom > "$TMP/in.bin"
ip netns exec $NS python3 - "$TMP/in.bin" <<'PY' || die "TCP echo failed"
import socket, sys, time
d = open(sys.argv[1], 'rb').read()
s = socket.create_connection(('10.0.0.2', 7), timeout=60)
t = time.time()
s.sendall(d)
s.shutdown(socket.SHUT_WR)
got = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
dt = time.time() - t
print("echoed %d of %d bytes in %.2fs (%.1f MB/s)" % (len(got), len(d), dt, len(d) / dt / 1e6))
sys.exit(0 if bytes(got) == d else 1)
PY
kill -0 $PID 2>/dev/null || die "vmm exited early"
echo "ok"
