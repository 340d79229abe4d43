#!/bin/sh
# test: virtio-blk in our vmm: the guest writes, syncs and reads back a
# pattern (DISK OK, verify mode); a write-mode run is checked byte for byte
# on the host with diskcheck; a ",ro" disk rejects writes; bad --disk gets
# a clear error and exit 2.
# needs: kvm
# timeout: 420
. tests/lib.sh
need_kvm
VMM=$BUILD/vmm
DISKCHECK=$BUILD/guests/linux/diskcheck
IMG=$TMP/disk.img
BLOCKS=1024
truncate -s 64M "$IMG"
run() {  # run NAME DISKARG CMDLINE...
    _n=$1; _d=$2; shift 2
    set +e
    timeout 200 $VMM run --name "$_n" --kernel "$VMLINUZ" --initrd "$LINUX_INITRD" --mem 512M --cpus 2 \
        --disk "$_d" --cmdline "console=ttyS0 panic=-1 quiet shutdown=1 workload=disk $*" > "$TMP/$_n.log" 2>&1
    rc=$?
    set -e
    grep -E "^(GUEST UP|DISK|WORKLOAD)" "$TMP/$_n.log" || true
}
run verify "$IMG" disk_mode=verify disk_blocks=$BLOCKS disk_seed=7
[ $rc -eq 0 ] || { tail -n 20 "$TMP/verify.log"; die "verify run exited $rc"; }
grep -q "^DISK OK blocks=$BLOCKS .*mode=verify" "$TMP/verify.log" || die "no DISK OK (verify)"

run write "$IMG" disk_mode=write disk_blocks=$BLOCKS disk_seed=42
[ $rc -eq 0 ] || die "write run exited $rc"
grep -q "^DISK OK blocks=$BLOCKS .*mode=write" "$TMP/write.log" || die "no DISK OK (write)"
# Host side: the pattern really is in the image file.
$DISKCHECK --dev "$IMG" --mode check --seed 42 --blocks $BLOCKS > "$TMP/host.log" 2>&1 || {
    cat "$TMP/host.log"; die "host-side check of the written image failed"; }
cat "$TMP/host.log"
grep -q "DISK OK" "$TMP/host.log" || die "host check: no DISK OK"
# And the guest reads the host's bytes back (check mode on a fresh boot).
run check "$IMG" disk_mode=check disk_blocks=$BLOCKS disk_seed=42
grep -q "^DISK OK blocks=$BLOCKS .*mode=check" "$TMP/check.log" || die "no DISK OK (check)"

# Read-only disk: the guest's writes fail, the image is unchanged.
sum=$(cksum < "$IMG")
run ro "$IMG,ro" disk_mode=write disk_blocks=16 disk_seed=9
grep -q "^DISK FAIL" "$TMP/ro.log" || die "writes to a ,ro disk did not fail"
[ "$(cksum < "$IMG")" = "$sum" ] || die "read-only image changed"

check_usage() {
    want=$1; shift
    set +e; $VMM "$@" > "$TMP/u.log" 2>&1; rc=$?; set -e
    echo "\$ vmm $*  -> exit $rc: $(head -n 1 "$TMP/u.log")"
    [ $rc -eq 2 ] || die "vmm $*: exit $rc, want 2"
    grep -q -- "$want" "$TMP/u.log" || die "vmm $*: error does not mention '$want'"
}
check_usage "disk /nonexistent.img: No such file or directory" run --name x --kernel "$VMLINUZ" --disk /nonexistent.img
check_usage "invalid MAC" run --name x --kernel "$VMLINUZ" --net tap=t0,mac=zz:00:00:00:00:01
check_usage "tap=IFNAME is required" run --name x --kernel "$VMLINUZ" --net mac=52:54:00:00:00:01
echo "ok"
