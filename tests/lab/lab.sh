#!/bin/sh
# The KVM test lab.
#
#   lab.sh run [--timeout SEC] [--mem MIB] [--env NAME]... -- COMMAND [ARG]...
#       Boots QEMU's emulator with an emulated AMD SVM CPU on Debian's stock
#       kernel; inside, kvm-amd provides a working /dev/kvm. COMMAND runs as root
#       chrooted into this machine's root (shared read-only over 9p) in the same
#       working directory, with fresh tmpfs /tmp and /run. Its output streams
#       here as it runs; its exit status becomes ours. A lab that hangs is killed
#       at the timeout and reported (exit 124) with the last console lines.
#   lab.sh initrd
#       Builds (or reuses) the lab's initramfs and prints its path.
#
# Inside the lab, /tmp/labout is a writable directory on this machine ($LAB_OUT
# is its path here), for results and logs that must outlive the run.
# Environment passed in: PATH, LAB=nested, LAB_INSIDE=1, and every --env NAME.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VMLAB_CACHE:-/var/cache/vmlab}

die() { echo "lab: $*" >&2; exit 1; }

lab_initrd() {
    KROOT=$("$HERE/kernel.sh") || exit 1
    INITRD=$CACHE/lab-initrd.cpio.gz
    # Rebuild when the init script or module list changed.
    STAMP=$(cat "$HERE/lab-init" "$HERE/mklabinitrd.sh" "$HERE/modules.sh" | cksum | cut -d' ' -f1)
    if [ ! -f "$INITRD" ] || [ "$(cat "$INITRD.stamp" 2>/dev/null)" != "$STAMP" ]; then
        "$HERE/mklabinitrd.sh" "$KROOT" "$INITRD" || die "building the lab initramfs failed"
        echo "$STAMP" > "$INITRD.stamp"
    fi
    echo "$INITRD"
}

cmd=${1:-}; [ $# -gt 0 ] && shift
case "$cmd" in
initrd) lab_initrd; exit 0;;
run) ;;
*) echo "usage: lab.sh run [--timeout SEC] [--mem MIB] [--env NAME]... -- COMMAND..." >&2; exit 2;;
esac

TIMEOUT=1200; MEM=4096; ENVS=""
while [ $# -gt 0 ]; do
    case "$1" in
    --timeout) TIMEOUT=$2; shift 2;;
    --mem) MEM=$2; shift 2;;
    --env) ENVS="$ENVS $2"; shift 2;;
    --) shift; break;;
    *) die "unknown option '$1'";;
    esac
done
[ $# -gt 0 ] || die "no command given"
[ "$(id -u)" = 0 ] || die "must run as root (the lab shares / and loads kernel modules)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (run: make deps)"

INITRD=$(lab_initrd)
KROOT=$("$HERE/kernel.sh")
VMLINUZ=$(ls "$KROOT"/boot/vmlinuz-* | head -1)

OUT=$(mktemp -d /tmp/lab.XXXXXX)
chmod 755 "$OUT"
QPID=""
cleanup() { [ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT INT TERM

{
    echo "export PATH='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'"
    echo "export HOME=/root LAB=nested LAB_INSIDE=1 LAB_OUT=/tmp/labout TERM=dumb"
    for e in $ENVS; do
        eval "v=\${$e:-}"
        printf "export %s='%s'\n" "$e" "$(printf %s "$v" | sed "s/'/'\\\\''/g")"
    done
    printf "cd '%s' || exit 125\n" "$(pwd)"
    printf "exec"
    for a in "$@"; do printf " '%s'" "$(printf %s "$a" | sed "s/'/'\\\\''/g")"; done
    echo
} > "$OUT/cmd.sh"
: > "$OUT/stdout"
# A working directory under /tmp, /run or /dev would be hidden by the lab's own
# mounts there; share it separately and mount it at the same path inside.
WORKSHARE=""
case "$(pwd)" in
/tmp/*|/run/*|/dev/*) pwd > "$OUT/workdir"
    WORKSHARE="-virtfs local,path=$(pwd),mount_tag=work,security_model=none,readonly=on,multidevs=remap";;
esac

qemu-system-x86_64 -accel tcg,thread=multi -cpu qemu64,+svm,+npt -m "$MEM" -smp 2 \
    -nographic -no-reboot -nic none -serial "file:$OUT/console" -monitor none \
    -kernel "$VMLINUZ" -initrd "$INITRD" -append "console=ttyS0 quiet panic=-1" \
    -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$OUT",mount_tag=out,security_model=none,multidevs=remap $WORKSHARE \
    </dev/null >"$OUT/qemu.log" 2>&1 &
QPID=$!

# Stream the command's output while it runs.
tail -n +1 -f "$OUT/stdout" --pid=$QPID 2>/dev/null &
TPID=$!
start=$(date +%s)
while kill -0 "$QPID" 2>/dev/null; do
    if [ $(( $(date +%s) - start )) -ge "$TIMEOUT" ]; then
        kill -9 "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null || true; QPID=""
        sleep 0.3; kill "$TPID" 2>/dev/null || true
        echo "lab: timed out after ${TIMEOUT}s; last console lines:" >&2
        tail -n 15 "$OUT/console" >&2 2>/dev/null || true
        exit 124
    fi
    sleep 0.2
done
wait "$QPID" 2>/dev/null || true; QPID=""
sleep 0.3; kill "$TPID" 2>/dev/null || true; wait "$TPID" 2>/dev/null || true
if [ ! -f "$OUT/rc" ]; then
    echo "lab: the lab stopped before the command finished; qemu: $(tail -n 3 "$OUT/qemu.log" | tr '\n' ' ')" >&2
    echo "lab: kernel trouble reported on the lab console:" >&2
    grep -E "BUG|panic|lockup|stall|Oops|RIP: 0010|Comm:" "$OUT/console" | head -n 20 >&2 || true
    echo "lab: last console lines:" >&2
    tail -n 15 "$OUT/console" >&2 2>/dev/null || true
    exit 125
fi
grep '^lab:' "$OUT/console" | grep -v 'kvm ready' >&2 || true
exit "$(cat "$OUT/rc")"
