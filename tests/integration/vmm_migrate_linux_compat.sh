#!/bin/sh
# test: a destination that cannot run the guest is refused before any page
# moves, with one clear error line, and the guest keeps running on the
# source. Source: the 2-vCPU Linux guest with a NIC and a disk on h1;
# destinations on h2:
#  1. its --disk path does not exist: the destination refuses to start
#     (exit 2, names the path), `vmm ctl migrate` fails with the connect error;
#  2. --cpus 1: refused at HELLO ("vCPU count: source 2, this VM 1");
#  3. no --net: refused at HELLO (the device lists differ);
#  4. a disk image of another size: refused at HELLO;
#  5. another --mem: refused at HELLO (RAM layout);
#  6. the same configuration: the migration succeeds (RAM hashes equal).
# For 2-5 the source's migrate-status says failed with 0 pages sent and the
# VM keeps running on the source; the destination exits 3 "guest discarded".
# needs: kvm
# timeout: 360
. tests/lib.sh
. tests/vmm_hosts.sh
need_kvm
PORT=4448

hosts_net ch
secret_file secret
truncate -s 16M "$TMP/disk.img"
truncate -s 8M "$TMP/small.img"
NET="--net tap=vtap0"
SEC="--secret-file $TMP/secret --debug-ram-hash=$RH"

log "boot on $H1"
vmm_linux src "$H1" --disk "$TMP/disk.img" $NET $SEC
SRC=$PID
wait_for "$TMP/src.log" "GUEST UP" 300 || die "guest did not come up"
wait_hb "$TMP/src.log" 3 300

# refused CASE TAG PID WANT: the source failed at setup with WANT in its
# error, sent no page, keeps running; the destination said why and exited 3.
refused() {
    wait_outcome "$TMP/src.sock" failed 60
    grep -E "^(error|sent):" "$TMP/ms.txt"
    grep -q "^error: .*$4" "$TMP/ms.txt" || die "$1: the source's error does not say '$4'"
    grep -q "^error: .*keeps running on source" "$TMP/ms.txt" || die "$1: the error does not say where the VM runs"
    grep -Eq "^sent: .*\(0 pages" "$TMP/ms.txt" || die "$1: pages were sent before the refusal"
    wait_exit "$3" 60
    tail -n 1 "$TMP/$2.err"
    [ "$rc" -eq 3 ] || die "$1: destination exit $rc, want 3"
    grep -q "^vmm: incoming: .*$4.*(guest discarded; the source keeps it)" "$TMP/$2.err" ||
        die "$1: the destination's error line does not say '$4'"
    state_is "$TMP/src.sock" running || die "$1: source not running"
    beating "$TMP/src.log" 2 60
}

log "1. destination disk path missing"
set +e
ip netns exec "$H2" "$VMM" run --name linux --kernel "$VMLINUZ" --mem "$MEM" --cpus 2 \
    --disk "$TMP/nope.img" $NET $SEC --incoming $IP2:$PORT > "$TMP/d1.err" 2>&1
rc=$?
ctl "$TMP/src.sock" migrate --to $IP2:$PORT > "$TMP/m1.txt" 2>&1; r=$?
set -e
cat "$TMP/d1.err" "$TMP/m1.txt"
[ $rc -eq 2 ] || die "1: destination exit $rc, want 2"
grep -q "^vmm: --disk $TMP/nope.img: No such file or directory" "$TMP/d1.err" || die "1: unclear destination error"
[ $r -ne 0 ] || die "1: migrate to a missing destination succeeded"
grep -q "connect $IP2:$PORT: Connection refused" "$TMP/m1.txt" || die "1: unclear source error"
state_is "$TMP/src.sock" running || die "1: source not running"
beating "$TMP/src.log" 2 60

log "2. destination with --cpus 1"
CPUS=1 vmm_incoming d2 "$H2" $IP2:$PORT --disk "$TMP/disk.img" $NET $SEC
ctl "$TMP/src.sock" migrate --to $IP2:$PORT || die "migrate command failed"
refused 2 d2 $PID "vCPU count: source 2, this VM 1"

log "3. destination without the NIC"
vmm_incoming d3 "$H2" $IP2:$PORT --disk "$TMP/disk.img" $SEC
ctl "$TMP/src.sock" migrate --to $IP2:$PORT || die "migrate command failed"
refused 3 d3 $PID "devices: source .*virtio-net.*, this VM"

log "4. destination disk of another size"
vmm_incoming d4 "$H2" $IP2:$PORT --disk "$TMP/small.img" $NET $SEC
ctl "$TMP/src.sock" migrate --to $IP2:$PORT || die "migrate command failed"
refused 4 d4 $PID "disk 0: source 16777216 bytes rw, this VM 8388608 bytes rw"

log "5. destination with another --mem"
MEM=128M vmm_incoming d5 "$H2" $IP2:$PORT --disk "$TMP/disk.img" $NET $SEC
ctl "$TMP/src.sock" migrate --to $IP2:$PORT || die "migrate command failed"
refused 5 d5 $PID "RAM layout mismatch"

log "6. the same configuration"
migrate_clean 6 d6 --disk "$TMP/disk.img" $NET $SEC
echo "ok"
