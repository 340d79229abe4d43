#!/bin/sh
# test: live migration of the freestanding guest (verify+write passes forever,
# heartbeats) between two "hosts" (network namespaces joined by a veth pair):
#  1. h1 -> h2 (migrate-wait exits 0, outcome succeeded): the guest continues on the destination (heartbeat generations
#     keep increasing past the source's last one, no VERIFY FAIL), the source
#     exits 0 with its summary line, the destination prints "migration complete";
#  2. kill -9 of the destination mid-migration (bandwidth capped so it takes
#     seconds): the source reports the error and keeps running (status running,
#     heartbeats continue);
#  3. migrate-cancel mid-migration (pause refused meanwhile; migrate-wait
#     ends, exit 1, once it is cancelled): outcome
#     cancelled, the destination exits non-zero, the source keeps running;
#  4. wrong secret: a clear auth error on both sides, the source keeps running.
# needs: kvm
# timeout: 300
. tests/lib.sh
. tests/vmm_hosts.sh
need_kvm
PORT=4444
CMDLINE="mem=32 passes=0 hb=2"


hosts_net mh
secret_file secret
secret_file wrong some-other-secret

# start_src N [MEM]: source vmm in h1 (serial src$N.log, control src$N.sock)
start_src() {
    vmm_start src$1 "$H1" --name fs --kernel "$FS_GUEST" --mem ${2:-64M} --cpus 1 \
        --cmdline "$CMDLINE" --secret-file "$TMP/secret"
    SRC=$PID
    wait_hb "$TMP/src$1.log" 3 120
}
# start_dst N [SECRET [MEM]]: destination vmm in h2 waiting on $IP2:PORT
start_dst() {
    vmm_start dst$1 "$H2" --name fs --kernel "$FS_GUEST" --mem ${3:-64M} --cpus 1 \
        --cmdline "$CMDLINE" --incoming $IP2:$PORT --secret-file "${2:-$TMP/secret}"
    DST=$PID
    wait_for "$TMP/dst$1.err" "listening on" 30 || die "destination did not listen"
}

log "1. migrate h1 -> h2"
start_src 1
start_dst 1
ctl "$TMP/dst1.sock" status | grep -q "state: *incoming" || die "destination status is not incoming"
ctl "$TMP/src1.sock" migrate --to $IP2:$PORT || die "migrate command failed"
# migrate-wait returns once the outcome is set (the source lingers up to 5 s)
mw=0; ctl "$TMP/src1.sock" migrate-wait --timeout 110 > "$TMP/mw1.txt" 2>&1 || mw=$?
[ $mw -eq 0 ] || { cat "$TMP/mw1.txt"; die "migrate-wait: exit $mw for a migration that should succeed"; }
grep -q "outcome: *succeeded" "$TMP/mw1.txt" || { cat "$TMP/mw1.txt"; die "migrate-wait printed no success"; }
wait_exit $SRC 120
cat "$TMP/src1.err"; cat "$TMP/dst1.err"
[ $rc -eq 0 ] || die "source exited $rc after a migration, want 0"
grep -q "migrated to $IP2:$PORT: total" "$TMP/src1.err" || die "no summary line on the source"
grep -q "vmm: incoming: migration complete (downtime" "$TMP/dst1.err" || die "destination did not complete"
last=$(hb_field "$TMP/src1.log" gen | tail -n 1)
wait_hb "$TMP/dst1.log" 3 60
first=$(hb_field "$TMP/dst1.log" gen | head -n 1)
echo "source's last heartbeat gen=$last, destination's first gen=$first"
[ "$first" -gt "$last" ] || die "destination gen $first does not continue after $last"
{ echo "$last"; hb_field "$TMP/dst1.log" gen; } | awk 'NR > 1 && $1 <= p { print "gen " p " -> " $1; bad = 1 } { p = $1 } END { exit bad }' ||
    { tail -n 5 "$TMP/src1.log"; head -n 8 "$TMP/dst1.log"; die "heartbeat generations not increasing across the move"; }
ctl "$TMP/dst1.sock" status | grep -q "state: *running" || die "destination not running"
ctl "$TMP/dst1.sock" quit
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
ctl "$TMP/src2.sock" migrate --to $IP2:$PORT --bandwidth 8 || die "migrate command failed"
_t=0
until ctl "$TMP/src2.sock" migrate-status 2>/dev/null | grep -Eq "phase: *(precopy|stop_copy)"; do
    [ $_t -ge 100 ] && die "migration never reached pre-copy"
    sleep 0.05; _t=$((_t + 1))
done
kill -STOP $DST
ctl "$TMP/src2.sock" status | tee "$TMP/st.txt"
grep -q "state: *migrating" "$TMP/st.txt" || die "source status is not migrating"
ctl "$TMP/src2.sock" migrate-status | grep -E "phase|sent"
sleep 1
kill -9 $DST; wait $DST 2>/dev/null || true
wait_outcome "$TMP/src2.sock" "failed" 60 || { cat "$TMP/src2.err"; exit 1; }
cat "$TMP/ms.txt"
grep -q "error: *migrate: " "$TMP/ms.txt" || die "migrate-status has no error"
grep -q "keeps running on source\|resumed on source" "$TMP/ms.txt" || die "error does not say the VM runs on the source"
ctl "$TMP/src2.sock" status | grep -q "state: *running" || die "source not running after the failure"
n=$(hb_count "$TMP/src2.log")
wait_hb "$TMP/src2.log" $((n + 3)) 60
kill -0 $SRC || die "source vmm died"

log "3. migrate-cancel mid-migration"
start_dst 4 "$TMP/secret" 512M
ctl "$TMP/src2.sock" migrate --to $IP2:$PORT --bandwidth 8 || die "migrate command failed"
_t=0
until ctl "$TMP/src2.sock" migrate-status 2>/dev/null | grep -Eq "phase: *precopy"; do
    [ $_t -ge 100 ] && die "migration never reached pre-copy"
    sleep 0.05; _t=$((_t + 1))
done
ctl "$TMP/src2.sock" pause > "$TMP/p.txt" 2>&1 && die "pause accepted during a migration"
ctl "$TMP/src2.sock" migrate-cancel || die "migrate-cancel failed"
ctl "$TMP/src2.sock" migrate-wait --timeout 60 > "$TMP/ms.txt" 2>&1 && die "migrate-wait exited 0 for a cancelled migration"
cat "$TMP/ms.txt"
grep -q "outcome: *cancelled" "$TMP/ms.txt" || die "migrate-wait: outcome is not cancelled"
wait_exit $DST 60
[ $rc -ne 0 ] || die "destination exited 0 after a cancelled migration"
tail -n 1 "$TMP/dst4.err"
ctl "$TMP/src2.sock" status | grep -q "state: *running" || die "source not running after cancel"
n=$(hb_count "$TMP/src2.log")
wait_hb "$TMP/src2.log" $((n + 3)) 60

log "4. wrong secret"
start_dst 3 "$TMP/wrong" 512M
ctl "$TMP/src2.sock" migrate --to $IP2:$PORT || die "migrate command failed"
wait_outcome "$TMP/src2.sock" "failed" 60
cat "$TMP/ms.txt"
grep -qi "auth" "$TMP/ms.txt" || die "source error does not mention authentication"
wait_exit $DST 60
cat "$TMP/dst3.err"
[ $rc -ne 0 ] || die "destination exited 0 after a failed authentication"
grep -qi "vmm: incoming: .*auth" "$TMP/dst3.err" || die "destination error does not mention authentication"
ctl "$TMP/src2.sock" status | grep -q "state: *running" || die "source not running after the auth failure"
n=$(hb_count "$TMP/src2.log")
wait_hb "$TMP/src2.log" $((n + 3)) 60
ctl "$TMP/src2.sock" quit
wait_exit $SRC 30
grep -q "VERIFY FAIL" "$TMP/src2.log" && die "VERIFY FAIL"
echo "ok"
