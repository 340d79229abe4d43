# Shared helpers for integration tests (sourced: . tests/lib.sh).
# Tests run from the repository root, here or inside the lab.
set -eu
ROOT=$(pwd)
BUILD=${BUILD:-build}
KROOT=$(tests/lab/kernel.sh)
VMLINUZ=$(ls "$KROOT"/boot/vmlinuz-* | head -1)
LINUX_INITRD=$BUILD/guests/linux/initramfs.cpio.gz
FS_GUEST=$BUILD/guests/freestanding/guest.elf
TMP=$(mktemp -d /tmp/itest.XXXXXX)
CLEANUP=""
# cleanup runs the registered commands (last registered first) then removes TMP.
on_exit() { CLEANUP="$*; $CLEANUP"; }
_cleanup() { eval "$CLEANUP" 2>/dev/null || true; rm -rf "$TMP"; }
trap _cleanup EXIT INT TERM

die() { echo "FAIL: $*"; exit 1; }
skip() { echo "$*"; exit 77; }
log() { echo "[$(date +%T)] $*"; }

# wait_for FILE REGEX TIMEOUT_SEC: wait until a line matching REGEX appears in
# FILE; fails (returns 1) at the timeout. Also fails early on "VERIFY FAIL".
wait_for() {
    _f=$1; _re=$2; _to=$3; _t=0
    while [ "$_t" -lt $((_to * 5)) ]; do
        if grep -q "VERIFY FAIL" "$_f" 2>/dev/null; then
            echo "VERIFY FAIL seen in $_f:"; grep "VERIFY FAIL" "$_f"; return 1
        fi
        grep -Eq "$_re" "$_f" 2>/dev/null && return 0
        sleep 0.2; _t=$((_t + 1))
    done
    echo "timed out after ${_to}s waiting for /$_re/ in $_f; last lines:"; tail -n 15 "$_f" 2>/dev/null
    return 1
}

# count_lines FILE REGEX
count_lines() { grep -Ec "$2" "$1" 2>/dev/null || true; }

# need_kvm: KVM tests may only run where the probe said (direct) or in the lab.
need_kvm() { [ -c /dev/kvm ] || die "no /dev/kvm here (tests needing KVM run in the lab: tests/lab/lab.sh)"; }
