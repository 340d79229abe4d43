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
#       A wedged lab (kernel trouble on its console and no new output from the
#       command for LAB_WEDGE_SECS, default 240; or no new output at all for
#       LAB_SILENCE_SECS, default off) is ended early, exit 125.
#       LAB_CONSOLE=FILE: copy the lab kernel's console log there at the end.
#       LAB_NPT=1: L1 KVM uses the emulated nested paging (default: npt=0,
#       shadow paging; see below).
#       LAB_APPEND="OPTS": more lab kernel command-line options (experiments:
#       e.g. debug_pagealloc=on). Tried 2026-12-04: thread=single TCG hangs a
#       Linux guest's boot in the lab; tsc=reliable boots (no gain measured).
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
# LAB_CONSOLE=FILE keeps the lab kernel's whole console log (soft lockups, panics).
cleanup() {
    [ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null
    [ -n "${LAB_CONSOLE:-}" ] && cp "$OUT/console" "$LAB_CONSOLE" 2>/dev/null
    rm -rf "$OUT"
}
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

# At most LAB_SLOTS labs (default 2) run at once on this machine: each emulates
# 2 CPUs, and with more labs than cores the emulated CPUs starve, the lab kernel
# reports soft lockups and timing-sensitive tests fail for no reason of theirs.
SLOTS=${LAB_SLOTS:-2}
mkdir -p /var/lock/vmlab
waited=0
while :; do
    i=0; got=""
    while [ "$i" -lt "$SLOTS" ]; do
        exec 8>"/var/lock/vmlab/slot.$i"
        if flock -n 8; then got=$i; break; fi
        exec 8>&-
        i=$((i + 1))
    done
    [ -n "$got" ] && break
    [ "$waited" = 0 ] && echo "lab: waiting for a free lab slot ($SLOTS in use)" >&2
    waited=1; sleep 1
done

# L1 KVM uses shadow paging (kvm-amd npt=0) unless LAB_NPT=1. With QEMU 7.2's
# emulated nested paging the lab kernel died every few minutes under load
# ("corrupted stack end detected inside scheduler" in a vCPU thread, RCU
# stalls, soft lockups; an L2 guest's "Fatal exception in interrupt"): three
# deaths in one 20-minute make bench on 2026-12-05. With npt=0 the same make
# bench ran 799 s without one (guest boots took ours 13.4 s, QEMU 15.8 s,
# against 11.6 and 10.5 s with NPT). QEMU still offers NPT (the verified
# recipe); only L1 KVM's choice differs.
NPT_OPT="lab_kvm_amd=npt=0"; [ "${LAB_NPT:-0}" = 1 ] && NPT_OPT=""
qemu-system-x86_64 -accel tcg,thread=multi -cpu qemu64,+svm,+npt -m "$MEM" -smp 2 \
    -nographic -no-reboot -nic none -serial "file:$OUT/console" -monitor none \
    -kernel "$VMLINUZ" -initrd "$INITRD" -append "console=ttyS0 quiet loglevel=5 panic=-1 $NPT_OPT ${LAB_APPEND:-}" \
    -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$OUT",mount_tag=out,security_model=none,multidevs=remap $WORKSHARE \
    </dev/null >"$OUT/qemu.log" 2>&1 &
QPID=$!

# Stream the command's output while it runs.
tail -n +1 -f "$OUT/stdout" --pid=$QPID 2>/dev/null &
TPID=$!
start=$(date +%s)
# How much host CPU the lab got: its 2 emulated CPUs need up to 2 host CPUs;
# a starved lab (other labs, builds) runs everything several times slower,
# its kernel may report soft lockups, and fixed test timeouts expire.
ticks=0; hz=$(getconf CLK_TCK)
cpu_share() {
    w=$(( $(date +%s) - start ))
    [ "$w" -gt 0 ] || w=1
    echo "lab: QEMU got $(( ticks * 100 / hz / w ))% of one host CPU over ${w}s (it emulates 2 CPUs; a starved lab runs everything slower)" >&2
}
# A wedged lab: the lab kernel reported trouble (soft lockup, RCU stall, hung
# task, BUG) and the command's output (its stdout and the test logs
# run-suite.sh keeps on the share) has not grown for LAB_WEDGE_SECS: it is
# ended then as a dead lab (exit 125), not left to run into the timeout
# (up to 20 minutes that the caller's rerun of the test needs more).
WEDGE=${LAB_WEDGE_SECS:-240}
# LAB_SILENCE_SECS (default 0, off): also end the lab, the same way, when the
# output has not grown for that long even though the console reported
# nothing (seen: a bench lab whose QEMU spun at 80% CPU with a silent
# console for 11 minutes). Only for callers that print at least that often.
SILENCE=${LAB_SILENCE_SECS:-0}
TROUBLE="soft lockup|hard LOCKUP|rcu_.*detected stalls|blocked for more than|BUG:|Oops"
trouble=""; last_size=""; last_growth=$start; last_check=0
# Kill the lab (wedged or timed out), then the output streamer once it has
# shown what the command wrote last.
stop_lab() {
    kill -9 "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null || true; QPID=""
    sleep 0.3; kill "$TPID" 2>/dev/null || true
}
out_size() {
    find "$OUT" -maxdepth 1 -type f ! -name console ! -name qemu.log -printf '%s\n' 2>/dev/null |
        awk '{ s += $1 } END { print s + 0 }'
}
while kill -0 "$QPID" 2>/dev/null; do
    now=$(date +%s)
    if [ $((now - last_check)) -ge 5 ]; then
        last_check=$now
        sz=$(out_size)
        [ "$sz" != "$last_size" ] && { last_size=$sz; last_growth=$now; }
        [ -z "$trouble" ] && grep -qE "$TROUBLE" "$OUT/console" 2>/dev/null && trouble=1
        if [ "$SILENCE" -gt 0 ] && [ $((now - last_growth)) -ge "$SILENCE" ]; then
            stop_lab
            echo "lab: wedged: the command wrote nothing for ${SILENCE}s (LAB_SILENCE_SECS); ended after $((now - start))s" >&2
            grep -E "$TROUBLE|RIP: 0010|Comm:" "$OUT/console" | head -n 12 >&2 || true
            cpu_share
            exit 125
        fi
        if [ -n "$trouble" ] && [ $((now - last_growth)) -ge "$WEDGE" ]; then
            stop_lab
            echo "lab: wedged: the lab kernel reported trouble and the command wrote nothing for ${WEDGE}s; ended after $((now - start))s" >&2
            grep -E "$TROUBLE|RIP: 0010|Comm:" "$OUT/console" | head -n 12 >&2 || true
            cpu_share
            exit 125
        fi
    fi
    if [ $(( $(date +%s) - start )) -ge "$TIMEOUT" ]; then
        stop_lab
        echo "lab: timed out after ${TIMEOUT}s; last console lines:" >&2
        tail -n 15 "$OUT/console" >&2 2>/dev/null || true
        cpu_share
        exit 124
    fi
    # utime + stime (fields 14, 15; qemu's comm has no spaces).
    ticks=$(awk '{print $14 + $15}' "/proc/$QPID/stat" 2>/dev/null || echo "$ticks")
    sleep 0.2
done
wait "$QPID" 2>/dev/null || true; QPID=""
cpu_share
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
# A lab kernel that soft-locked or stalled while the command ran makes every
# timing in it suspect: say so even when the command finished.
if grep -qE "soft lockup|hard LOCKUP|rcu_.*detected stalls" "$OUT/console"; then
    echo "lab: the lab kernel reported trouble while the command ran (results may be skewed):" >&2
    grep -E "BUG|lockup|stall|RIP: 0010|Comm:" "$OUT/console" | head -n 12 >&2 || true
fi
exit "$(cat "$OUT/rc")"
