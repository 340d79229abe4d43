#!/bin/sh
# test: the freestanding self-checking guest under QEMU-KVM: 20 passes over
# 32 MiB verify, and a deliberately corrupted page (corrupt=3) is detected.
# needs: kvm
# timeout: 120
. tests/lib.sh
need_kvm
run() {
    set +e
    timeout 60 qemu-system-x86_64 -accel kvm -m 128 -nographic -no-reboot -nic none -monitor none \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -serial "file:$TMP/$1.log" \
        -kernel "$FS_GUEST" -append "$2" </dev/null >"$TMP/$1.qemu" 2>&1
    rc=$?
    set -e
    cat "$TMP/$1.log"; echo
    echo "exit $rc"
}
run ok "mem=32 passes=20 hb=5"
[ "$rc" -eq 1 ] || die "clean run: want isa-debug-exit 0 (qemu status 1), got $rc"
grep -q "VERIFY OK gen=20" "$TMP/ok.log" || die "no VERIFY OK gen=20"
grep -q "VERIFY FAIL" "$TMP/ok.log" && die "unexpected VERIFY FAIL"
run bad "mem=32 passes=10 corrupt=3"
[ "$rc" -eq 3 ] || die "corrupt run: want isa-debug-exit 1 (qemu status 3), got $rc"
grep -q "VERIFY FAIL page=" "$TMP/bad.log" || die "corruption not detected"
echo "ok: verify passes clean, detects the corrupted page"
