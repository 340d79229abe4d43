#!/bin/sh
# test: live migration of the freestanding guest (verify+write passes forever,
# heartbeats) between two "hosts" (network namespaces joined by a veth pair):
#  1. h1 -> h2: the guest continues on the destination (heartbeat generations
#     keep increasing past the source's last one, no VERIFY FAIL), the source
#     exits 0 with its summary line, the destination prints "migration complete";
#  2. kill -9 of the destination mid-migration (bandwidth capped so it takes
#     seconds): the source reports the error and keeps running (status running,
#     heartbeats continue);
#  3. migrate-cancel mid-migration (pause refused meanwhile): outcome
#     cancelled, the destination exits non-zero, the source keeps running;
#  4. wrong secret: a clear auth error on both sides, the source keeps running.
# needs: kvm
# timeout: 600
. tests/lib.sh
need_kvm
VMM=$(pwd)/$BUILD/vmm
H1=mh1.$$; H2=mh2.$$; VA=mva$$; VB=mvb$$
PORT=4444
CMDLINE="mem=32 passes=0 hb=2"

gens() { tr -d '\r' < "$1" | sed -n 's/^HEARTBEAT gen=\([0-9]*\).*/\1/p'; }
hb_count() { _n=$(count_lines "$1" '^HEARTBEAT gen='); echo "${_n:-0}"; }
wait_hb() {
    _t=0
    while [ "$(hb_count "$1")" -lt "$2" ]; do
        grep -q "VERIFY FAIL" "$1" && { grep "VERIFY FAIL" "$1"; die "VERIFY FAIL in $1"; }
        [ $_t -ge $(($3 * 5)) ] && { tail -n 20 "$1"; die "$1: fewer than $2 heartbeats after $3 s"; }
        sleep 0.2; _t=$((_t + 1))
    done
}
in1() { ip netns exec "$H1" "$@"; }
in2() { ip netns exec "$H2" "$@"; }
# wait_exit PID TIMEOUT: wait for a background process; its status in $rc.
wait_exit() {
    _t=0
    while kill -0 "$1" 2>/dev/null; do
        [ $_t -ge $(($2 * 5)) ] && die "pid $1 still running after $2 s"
        sleep 0.2; _t=$((_t + 1))
    done
    set +e; wait "$1"; rc=$?; set -e
}
# wait_outcome SOCK REGEX TIMEOUT: poll migrate-status until outcome matches.
wait_outcome() {
    _t=0
    while :; do
        $VMM ctl "$1" migrate-status > "$TMP/ms.txt" 2>&1 || true
        grep -Eq "outcome: *($2)" "$TMP/ms.txt" && return 0
        [ $_t -ge $(($3 * 5)) ] && { cat "$TMP/ms.txt"; tail -n 5 "$TMP"/src*.err; die "outcome /$2/ not reached after $3 s"; }
        sleep 0.2; _t=$((_t + 1))
    done
}

log "hosts: $H1 (10.9.0.1) <-> $H2 (10.9.0.2)"
ip netns add "$H1"; on_exit "ip netns del $H1"
ip netns add "$H2"; on_exit "ip netns del $H2"
ip link add "$VA" netns "$H1" type veth peer name "$VB" netns "$H2"
in1 ip addr add 10.9.0.1/24 dev "$VA"; in1 ip link set "$VA" up; in1 ip link set lo up
in2 ip addr add 10.9.0.2/24 dev "$VB"; in2 ip link set "$VB" up; in2 ip link set lo up
in1 ping -c 1 -W 2 10.9.0.2 > /dev/null || die "veth link does not work"
printf 'migration-test-secret\n' > "$TMP/secret"; chmod 600 "$TMP/secret"
printf 'some-other-secret\n' > "$TMP/wrong"; chmod 600 "$TMP/wrong"

# start_src N [MEM]: source vmm in h1 (serial src$N.log, control src$N.sock)
start_src() {
    ip netns exec "$H1" $VMM run --name fs --kernel "$FS_GUEST" --mem ${2:-64M} --cpus 1 --cmdline "$CMDLINE" \
        --serial "$TMP/src$1.log" --control "$TMP/src$1.sock" --secret-file "$TMP/secret" \
        2> "$TMP/src$1.err" &
    SRC=$!
    on_exit "kill -9 $SRC"
    wait_hb "$TMP/src$1.log" 3 120
}
# start_dst N [SECRET [MEM]]: destination vmm in h2 waiting on 10.9.0.2:PORT
start_dst() {
    ip netns exec "$H2" $VMM run --name fs --kernel "$FS_GUEST" --mem ${3:-64M} --cpus 1 --cmdline "$CMDLINE" \
        --serial "$TMP/dst$1.log" --control "$TMP/dst$1.sock" --incoming 10.9.0.2:$PORT \
        --secret-file "${2:-$TMP/secret}" 2> "$TMP/dst$1.err" &
    DST=$!
    on_exit "kill -9 $DST"
    wait_for "$TMP/dst$1.err" "listening on" 30 || die "destination did not listen"
}

log "1. migrate h1 -> h2"
start_src 1
start_dst 1
$VMM ctl "$TMP/dst1.sock" status | grep -q "state: *incoming" || die "destination status is not incoming"
$VMM ctl "$TMP/src1.sock" migrate --to 10.9.0.2:$PORT || die "migrate command failed"
wait_exit $SRC 120
cat "$TMP/src1.err"; cat "$TMP/dst1.err"
[ $rc -eq 0 ] || die "source exited $rc after a migration, want 0"
grep -q "migrated to 10.9.0.2:$PORT: total" "$TMP/src1.err" || die "no summary line on the source"
grep -q "vmm: incoming: migration complete (downtime" "$TMP/dst1.err" || die "destination did not complete"
last=$(gens "$TMP/src1.log" | tail -n 1)
wait_hb "$TMP/dst1.log" 3 60
first=$(gens "$TMP/dst1.log" | head -n 1)
echo "source's last heartbeat gen=$last, destination's first gen=$first"
[ "$first" -gt "$last" ] || die "destination gen $first does not continue after $last"
{ echo "$last"; gens "$TMP/dst1.log"; } | awk 'NR > 1 && $1 <= p { print "gen " p " -> " $1; bad = 1 } { p = $1 } END { exit bad }' ||
    { tail -n 5 "$TMP/src1.log"; head -n 8 "$TMP/dst1.log"; die "heartbeat generations not increasing across the move"; }
$VMM ctl "$TMP/dst1.sock" status | grep -q "state: *running" || die "destination not running"
$VMM ctl "$TMP/dst1.sock" quit
wait_exit $DST 30
[ $rc -eq 0 ] || die "destination exit $rc after quit"
grep -q "VERIFY FAIL" "$TMP/dst1.log" "$TMP/src1.log" && die "VERIFY FAIL"

log "2. kill -9 the destination mid-migration"
start_src 2 512M
start_dst 2 "$TMP/secret" 512M
# 8 Mbit/s = 1 MB/s (the engine's smallest cap). The guest's RAM compresses
# so well (and untouched RAM travels as 16-byte zero markers) that even
# 512M moves in a few seconds, so the destination is frozen (SIGSTOP) as soon as pre-copy runs - it can never acknowledge, so
# the source cannot finish - and then killed with -9 mid-stream.
$VMM ctl "$TMP/src2.sock" migrate --to 10.9.0.2:$PORT --bandwidth 8 || die "migrate command failed"
_t=0
until $VMM ctl "$TMP/src2.sock" migrate-status 2>/dev/null | grep -Eq "phase: *(precopy|stop_copy)"; do
    [ $_t -ge 100 ] && die "migration never reached pre-copy"
    sleep 0.05; _t=$((_t + 1))
done
kill -STOP $DST
$VMM ctl "$TMP/src2.sock" status | tee "$TMP/st.txt"
grep -q "state: *migrating" "$TMP/st.txt" || die "source status is not migrating"
$VMM ctl "$TMP/src2.sock" migrate-status | grep -E "phase|sent"
sleep 1
kill -9 $DST; wait $DST 2>/dev/null || true
wait_outcome "$TMP/src2.sock" "failed" 60 || { cat "$TMP/src2.err"; exit 1; }
cat "$TMP/ms.txt"
grep -q "error: *migrate: " "$TMP/ms.txt" || die "migrate-status has no error"
grep -q "keeps running on source\|resumed on source" "$TMP/ms.txt" || die "error does not say the VM runs on the source"
$VMM ctl "$TMP/src2.sock" status | grep -q "state: *running" || die "source not running after the failure"
n=$(hb_count "$TMP/src2.log")
wait_hb "$TMP/src2.log" $((n + 3)) 60
kill -0 $SRC || die "source vmm died"

log "3. migrate-cancel mid-migration"
start_dst 4 "$TMP/secret" 512M
$VMM ctl "$TMP/src2.sock" migrate --to 10.9.0.2:$PORT --bandwidth 8 || die "migrate command failed"
_t=0
until $VMM ctl "$TMP/src2.sock" migrate-status 2>/dev/null | grep -Eq "phase: *precopy"; do
    [ $_t -ge 100 ] && die "migration never reached pre-copy"
    sleep 0.05; _t=$((_t + 1))
done
$VMM ctl "$TMP/src2.sock" pause > "$TMP/p.txt" 2>&1 && die "pause accepted during a migration"
$VMM ctl "$TMP/src2.sock" migrate-cancel || die "migrate-cancel failed"
wait_outcome "$TMP/src2.sock" "cancelled" 60
cat "$TMP/ms.txt"
wait_exit $DST 60
[ $rc -ne 0 ] || die "destination exited 0 after a cancelled migration"
tail -n 1 "$TMP/dst4.err"
$VMM ctl "$TMP/src2.sock" status | grep -q "state: *running" || die "source not running after cancel"
n=$(hb_count "$TMP/src2.log")
wait_hb "$TMP/src2.log" $((n + 3)) 60

log "4. wrong secret"
start_dst 3 "$TMP/wrong" 512M
$VMM ctl "$TMP/src2.sock" migrate --to 10.9.0.2:$PORT || die "migrate command failed"
wait_outcome "$TMP/src2.sock" "failed" 60
cat "$TMP/ms.txt"
grep -qi "auth" "$TMP/ms.txt" || die "source error does not mention authentication"
wait_exit $DST 60
cat "$TMP/dst3.err"
[ $rc -ne 0 ] || die "destination exited 0 after a failed authentication"
grep -qi "vmm: incoming: .*auth" "$TMP/dst3.err" || die "destination error does not mention authentication"
$VMM ctl "$TMP/src2.sock" status | grep -q "state: *running" || die "source not running after the auth failure"
n=$(hb_count "$TMP/src2.log")
wait_hb "$TMP/src2.log" $((n + 3)) 60
$VMM ctl "$TMP/src2.sock" quit
wait_exit $SRC 30
grep -q "VERIFY FAIL" "$TMP/src2.log" && die "VERIFY FAIL"
echo "ok"
