# Helpers for the vmm integration tests (sourced after tests/lib.sh): how a
# test starts a vmm, watches its guest's heartbeats and its migration, and the
# two test "hosts" of the migration tests (network namespaces joined by a veth
# pair, tests/hostnet.sh). Every file a vmm writes is named after its TAG: $TMP/TAG.log (serial),
# $TMP/TAG.err (the vmm's stderr), $TMP/TAG.sock (control socket).
VMM=$ROOT/$BUILD/vmm
# Defaults for vmm_linux (a test may set them before calling it).
MEM=${MEM:-256M}
CPUS=${CPUS:-2}
CMDLINE=${CMDLINE:-"console=ttyS0 quiet panic=-1 workload=dirtier dirtier_mib=64"}

# hosts_net, client_net, plug_tap, fdb_port, link_set: tests/hostnet.sh
# (shared with bench/migrate.sh).
. tests/hostnet.sh
# secret_file NAME [TEXT]: a 0600 secret file $TMP/NAME.
secret_file() { printf '%s\n' "${2:-migration-test-secret-$1}" > "$TMP/$1"; chmod 600 "$TMP/$1"; }

# vmm_start TAG NS ARGS...: `vmm run ARGS` in namespace NS ("-" = this one),
# serial/control/stderr named after TAG; its pid in $PID (killed at exit).
vmm_start() {
    _tag=$1; _ns=$2; shift 2
    rm -f "$TMP/$_tag.sock"
    if [ "$_ns" = - ]; then
        "$VMM" run --serial "$TMP/$_tag.log" --control "$TMP/$_tag.sock" "$@" 2> "$TMP/$_tag.err" &
    else
        ip netns exec "$_ns" "$VMM" run --serial "$TMP/$_tag.log" --control "$TMP/$_tag.sock" "$@" \
            2> "$TMP/$_tag.err" &
    fi
    PID=$!
    on_exit "kill -9 $PID"
}
# vmm_linux TAG NS ARGS...: the Linux test guest ($MEM, $CPUS, $CMDLINE).
vmm_linux() {
    _tag=$1; _ns=$2; shift 2
    vmm_start "$_tag" "$_ns" --name linux --kernel "$VMLINUZ" --initrd "$LINUX_INITRD" \
        --mem "$MEM" --cpus "$CPUS" --cmdline "$CMDLINE" "$@"
}
# vmm_incoming TAG NS IP:PORT ARGS...: a destination (Linux guest options)
# waiting on IP:PORT; returns once it listens.
vmm_incoming() {
    _tag=$1; _ns=$2; _hp=$3; shift 3
    vmm_linux "$_tag" "$_ns" --incoming "$_hp" "$@"
    wait_for "$TMP/$_tag.err" "listening on" 30 || die "$_tag: destination did not listen"
}
ctl() { "$VMM" ctl "$@"; }

# Heartbeats: the Linux guest prints "HEARTBEAT n=.. t=.. mono=..", the
# freestanding guest "HEARTBEAT gen=..".
hb_count() { _n=$(count_lines "$1" '^HEARTBEAT gen=|HEARTBEAT n='); echo "${_n:-0}"; }
# hb_field FILE FIELD: FIELD (n, t, mono, gen) of every complete heartbeat
# line, one a line. A source's log may end mid-line (the guest was paused
# while printing; the rest goes to the destination's log): that partial line
# is left out, else its value (cut short, and without a newline, so glued to
# the next file's first value: "139140") breaks the "increasing" checks.
# The log of a running guest grows while we read it, so one copy is both
# checked and parsed: checking the file and then reading it again let a
# half-written line through ("restore 3: ... not increasing", 2026-12-05).
hb_field() {
    _hf=$(mktemp "${TMP:-/tmp}/hb.XXXXXX")
    cat "$1" > "$_hf" 2>/dev/null || true
    if [ -n "$(tail -c 1 "$_hf")" ]; then sed '$d' "$_hf"; else cat "$_hf"; fi |
        tr -d '\r' | sed -n "s/.*HEARTBEAT .*\b$2=\([0-9.]*\).*/\1/p"
    rm -f "$_hf"
}
# wait_hb FILE N TIMEOUT: wait until FILE has at least N heartbeats.
wait_hb() {
    _t=0
    while [ "$(hb_count "$1")" -lt "$2" ]; do
        grep -q "VERIFY FAIL" "$1" 2>/dev/null && { grep "VERIFY FAIL" "$1"; die "VERIFY FAIL in $1"; }
        [ $_t -ge $(($3 * 5)) ] && { tail -n 20 "$1"; die "$1: fewer than $2 heartbeats after $3 s"; }
        sleep 0.2; _t=$((_t + 1))
    done
}
# beating FILE [N [TIMEOUT]]: N (3) more heartbeats within TIMEOUT (120) s.
beating() { wait_hb "$1" $(($(hb_count "$1") + ${2:-3})) "${3:-120}"; }
# no_verify_fail FILE...
no_verify_fail() { ! grep -H "VERIFY FAIL" "$@" || die "VERIFY FAIL"; }
# increasing LIST_FILE: every value strictly greater than the previous one.
increasing() { awk 'NR > 1 && $1 + 0 <= prev + 0 { bad = 1; print "not increasing: " prev " -> " $1 } { prev = $1 } END { exit bad }' "$1"; }

# wait_exit PID TIMEOUT: wait for a background process; its status in $rc.
wait_exit() {
    _t=0
    while kill -0 "$1" 2>/dev/null; do
        [ $_t -ge $(($2 * 5)) ] && die "pid $1 still running after $2 s"
        sleep 0.2; _t=$((_t + 1))
    done
    set +e; wait "$1"; rc=$?; set -e
}
# state_is SOCK STATE: `vmm ctl status` says STATE.
state_is() { ctl "$1" status 2>/dev/null | grep -Eq "^state: *$2( |\$)"; }
# wait_state SOCK STATE TIMEOUT
wait_state() {
    _t=0
    until state_is "$1" "$2"; do
        [ $_t -ge $(($3 * 5)) ] && { ctl "$1" status; die "$1: state not $2 after $3 s"; }
        sleep 0.2; _t=$((_t + 1))
    done
}
# wait_outcome SOCK REGEX TIMEOUT: poll migrate-status (into $TMP/ms.txt)
# until the outcome matches (and, unless it is "succeeded", the error is
# there too: the engine publishes the outcome a moment before the vmm
# stores the error text).
wait_outcome() {
    _t=0
    while :; do
        ctl "$1" migrate-status > "$TMP/ms.txt" 2>&1 || true
        grep -Eq "outcome: *($2)" "$TMP/ms.txt" &&
            { grep -q "outcome: *succeeded" "$TMP/ms.txt" || grep -q "^error: " "$TMP/ms.txt"; } && return 0
        [ $_t -ge $(($3 * 5)) ] && { cat "$TMP/ms.txt"; tail -n 5 "$TMP"/*.err; die "outcome /$2/ not reached after $3 s"; }
        sleep 0.2; _t=$((_t + 1))
    done
}
# wait_mig SOCK REGEX TIMEOUT: poll migrate-status every 50 ms until a line
# matches REGEX (e.g. "round: *2$"); fails if the migration ended first.
wait_mig() {
    _t=0
    while :; do
        ctl "$1" migrate-status > "$TMP/ms.txt" 2>&1 || true
        grep -Eq "$2" "$TMP/ms.txt" && return 0
        grep -Eq "outcome: *(succeeded|failed|cancelled|ambiguous)" "$TMP/ms.txt" &&
            { cat "$TMP/ms.txt"; die "migration ended before /$2/"; }
        [ $_t -ge $(($3 * 20)) ] && { cat "$TMP/ms.txt"; die "migration: /$2/ not seen after $3 s"; }
        sleep 0.05; _t=$((_t + 1))
    done
}
# ram_hashes SRC_TAG DST_TAG: with --debug-ram-hash=$RH on both vmms, the
# hash of all guest RAM the source logged at pause must equal the one the
# destination logged just before resuming (and the one of RAM as received,
# before the device state was loaded). On a mismatch the differing pages
# are listed from the per-page hash files.
RH=$TMP/ramhash
mkdir -p "$RH"
ram_hashes() {
    _s=$(sed -n 's/.*ram hash at pause: \([0-9a-f]*\).*/\1/p' "$TMP/$1.err" | tail -n 1)
    _r=$(sed -n 's/.*ram hash as received: \([0-9a-f]*\).*/\1/p' "$TMP/$2.err" | tail -n 1)
    _d=$(sed -n 's/.*ram hash before resume: \([0-9a-f]*\).*/\1/p' "$TMP/$2.err" | tail -n 1)
    [ -n "$_s" ] || die "$1: no 'ram hash at pause' line"
    [ -n "$_d" ] || die "$2: no 'ram hash before resume' line"
    if [ "$_s" != "$_d" ] || [ "$_s" != "$_r" ]; then
        _ps=$(sed -n 's/.*ram hash at pause: .* pages in \(.*\)/\1/p' "$TMP/$1.err" | tail -n 1)
        for _w in "as received" "before resume"; do
            _pd=$(sed -n "s/.*ram hash $_w: .* pages in \(.*\)/\1/p" "$TMP/$2.err" | tail -n 1)
            [ -f "$_ps" ] && [ -f "$_pd" ] && python3 - "$_ps" "$_pd" "$_w" <<'PY'
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
d = [i // 8 for i in range(0, min(len(a), len(b)), 8) if a[i:i + 8] != b[i:i + 8]]
print("pages differing from the source at pause, destination %s: %d: %s" %
      (sys.argv[3], len(d), " ".join("0x%x" % p for p in d[:20])))
PY
        done
        die "RAM differs: source at pause $_s, destination as received $_r, before resume $_d"
    fi
    echo "RAM hash $_s on both sides"
}

# migrate_clean STEP DST ARGS...: start destination DST on $H2 at $IP2:$PORT
# with ARGS, migrate the source (socket src.sock, pid $SRC) there, require the
# source to exit 0, then landed_clean.
migrate_clean() {
    _mc_step=$1 _mc_dst=$2; shift 2
    vmm_incoming "$_mc_dst" "$H2" $IP2:$PORT "$@"
    _mc_pid=$PID
    ctl "$TMP/src.sock" migrate --to $IP2:$PORT --downtime 1000 || die "$_mc_step: migrate command failed"
    wait_exit $SRC 120
    [ "$rc" -eq 0 ] || { cat "$TMP/src.err"; die "$_mc_step: source exited $rc"; }
    landed_clean "$_mc_step" "$_mc_dst" $_mc_pid
}
# landed_clean STEP DST DST_PID: what every clean migration from src to DST
# must give once the source is gone: the destination completed, RAM at pause
# equals RAM at resume (ram_hashes), heartbeats go on increasing across the
# move, no VERIFY FAIL. Then DST quits.
landed_clean() {
    grep "migration complete" "$TMP/$2.err" || die "$1: destination did not complete"
    ram_hashes src "$2"
    wait_hb "$TMP/$2.log" 3 60
    : > "$TMP/n.all"; hb_field "$TMP/src.log" n >> "$TMP/n.all"; hb_field "$TMP/$2.log" n >> "$TMP/n.all"
    increasing "$TMP/n.all" || die "$1: heartbeats not continuing"
    no_verify_fail "$TMP/src.log" "$TMP/$2.log"
    ctl "$TMP/$2.sock" quit
    wait_exit $3 60
}
