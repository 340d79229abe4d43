# Shared by bench/snapshot.sh and bench/migrate.sh (sourced, POSIX sh).
# Guest: Debian's kernel + build/guests/linux initramfs, 512 MiB, 2 vCPUs.
# BENCH_QEMU_ACCEL (default kvm) lets the QEMU half be tried under tcg.
KROOT=$(tests/lab/kernel.sh)
K=$(ls "$KROOT"/boot/vmlinuz-* | head -1)
I=build/guests/linux/initramfs.cpio.gz
VMM=${BENCH_VMM:-build/vmm}	# another binary as "ours": before/after in one lab boot
QACCEL=${BENCH_QEMU_ACCEL:-kvm}
QCPU=host; [ "$QACCEL" = kvm ] || QCPU=max
QMON="python3 bench/qmon.py"
T=$(mktemp -d /tmp/bench.XXXXXX)
PIDS=""
# set -e holds inside the trap too: a failed kill of an already reaped pid must not end it early
# BENCH_KEEP=DIR: copy the logs (serial consoles, VMM stderr) there first.
cleanup() { for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    # regular files only: a socket copied onto the lab's 9p share makes
    # QEMU's 9p server drop the client (and the lab with it)
    [ -z "${BENCH_KEEP:-}" ] || { mkdir -p "$BENCH_KEEP" &&
        find "$T" -maxdepth 1 -type f -exec cp {} "$BENCH_KEEP"/ \; 2>/dev/null || true; }
    rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 143' INT TERM   # through the EXIT trap; a bare handler would carry on

now_ms() { date +%s%3N; }
secs() { echo "$1 $2" | awk '{printf "%.3f", ($1-$2)/1000}'; }   # END_MS START_MS
warn() { echo "bench: $*" >&2; }

# IN_NS (bench/migrate.sh: "ip netns exec NS", unquoted on purpose) starts the
# VMMs below in a network namespace; ip execs them, so $QPID/$OPID stay theirs.
IN_NS=""
# qemu_start LOG MON CMDLINE [EXTRA...]: a QEMU-KVM VM like boot.sh's, HMP on MON.
qemu_start() {
    _log=$1 _mon=$2 _cmd=$3; shift 3
    $IN_NS qemu-system-x86_64 -accel "$QACCEL" -cpu "$QCPU" -m 512 -smp 2 -display none -no-reboot -nic none \
        -serial "file:$_log" -monitor "unix:$_mon,server,nowait" \
        -kernel "$K" -initrd "$I" -append "$_cmd" "$@" </dev/null >"$_log.err" 2>&1 &
    QPID=$!; PIDS="$PIDS $QPID"
}
# ours_start LOG SOCK CMDLINE [EXTRA...]
ours_start() {
    _log=$1 _sock=$2 _cmd=$3; shift 3
    $IN_NS $VMM run --name bench --kernel "$K" --initrd "$I" --mem 512M --cpus 2 --cmdline "$_cmd" \
        --serial "$_log" --control "$_sock" "$@" </dev/null >"$_log.err" 2>&1 &
    OPID=$!; PIDS="$PIDS $OPID"
}

hb_count() { [ -f "$1" ] || { echo 0; return; }; _n=$(tr -d '\r' < "$1" | grep -c 'HEARTBEAT n=' || true); echo "${_n:-0}"; }
# wait_hb LOG N TIMEOUT_S PID: until LOG has N heartbeats (1 if the process dies or times out).
wait_hb() {
    _t=0
    while [ "$(hb_count "$1")" -lt "$2" ]; do
        [ $_t -ge $(($3 * 20)) ] && { warn "$1: fewer than $2 heartbeats after $3 s"; return 1; }
        kill -0 "$4" 2>/dev/null || { warn "$1: process $4 died"; tail -n 5 "$1" "$1.err" >&2; return 1; }
        sleep 0.05; _t=$((_t + 1))
    done
}
# hb_vals LOG FIELD [SKIP]: FIELD (t or mono) of each heartbeat after the first SKIP.
hb_vals() { tr -d '\r' < "$1" | sed -n "s/.*HEARTBEAT .*\b$2=\([0-9.]*\).*/\1/p" | tail -n +$((${3:-0} + 1)); }
# max_gap: largest step between consecutive numbers on stdin ("null" if < 2).
max_gap() { awk 'NR > 1 && $1 - p > g { g = $1 - p } { p = $1 } END { if (NR < 2) print "null"; else printf "%.3f\n", g }'; }
# stop_pid PID: kill -9 and reap.
stop_pid() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }
