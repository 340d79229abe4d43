#!/bin/sh
# test: our vmm runs the freestanding self-checking guest: 20 passes over 32 MiB
# verify (exit 0), a deliberately corrupted page is detected (exit 1, VERIFY
# FAIL), and bad CLI input gets one clear error line and exit 2.
# needs: kvm
# timeout: 180
. tests/lib.sh
need_kvm
VMM=$BUILD/vmm
set +e
$VMM run --name fs --kernel "$FS_GUEST" --mem 64M --cpus 1 --cmdline "mem=32 passes=20 hb=5" > "$TMP/ok.log" 2>&1
rc=$?
set -e
cat "$TMP/ok.log"
[ $rc -eq 0 ] || die "clean run exited $rc, want 0"
grep -q "VERIFY OK gen=20" "$TMP/ok.log" || die "no VERIFY OK gen=20"
[ "$(count_lines "$TMP/ok.log" '^HEARTBEAT gen=')" -eq 4 ] || die "want 4 heartbeats"
set +e
$VMM run --name fs --kernel "$FS_GUEST" --mem 64M --cpus 1 --cmdline "mem=32 passes=10 corrupt=3" > "$TMP/bad.log" 2>&1
rc=$?
set -e
cat "$TMP/bad.log"
[ $rc -eq 1 ] || die "corrupt run exited $rc, want 1 (guest failure)"
grep -q "VERIFY FAIL page=" "$TMP/bad.log" || die "corruption not detected"
# Bad input: each a clear error and exit 2, never a crash.
check_usage() {
    want=$1; shift
    set +e; $VMM "$@" > "$TMP/u.log" 2>&1; rc=$?; set -e
    echo "\$ vmm $*  -> exit $rc: $(head -n 1 "$TMP/u.log")"
    [ $rc -eq 2 ] || die "vmm $*: exit $rc, want 2"
    grep -q -- "$want" "$TMP/u.log" || die "vmm $*: error does not mention '$want'"
}
check_usage "invalid size" run --name x --kernel "$FS_GUEST" --mem abc --cpus 1
check_usage "/nonexistent" run --name x --kernel /nonexistent --mem 64M --cpus 1
check_usage "unknown" run --name x --kernel "$FS_GUEST" --mem 64M --bogus
check_usage "cpus" run --name x --kernel "$FS_GUEST" --mem 64M --cpus 0
echo "ok"
