#!/bin/sh
# test: faults during live migration of the 2-vCPU Linux guest (dirtier,
# NIC, disk) between two "hosts" (network namespaces). One source on h1; a
# fresh destination on h2 for each case:
#  1. kill -9 of the destination in round 1 (the full copy),
#  2. kill -9 of the destination in a later round (round >= 3),
#  3. kill -9 of the destination during switchover (it stops reading after
#     ROUND_END(FINAL): --mig-fault stall-switchover; the source is paused),
#  4. the link cut mid-stream (both veth ends down): both sides time out,
#  5. AMBIGUOUS: GO lost on the link (--mig-fault lose-go): the source stays
#     paused (status paused_ambiguous, no heartbeats), the destination
#     discards the guest; neither resumes on its own; the operator's resume
#     on the source brings the guest back;
#  6. a clean migration afterwards (RAM hashes equal).
# After every fault: one error line on the source saying where the VM runs,
# the destination gone without "migration complete", the source running
# with new heartbeats (the guest runs on exactly one host), no VERIFY FAIL.
# needs: kvm
# timeout: 480
. tests/lib.sh
. tests/vmm_hosts.sh
need_kvm
CMDLINE="console=ttyS0 quiet panic=-1 workload=dirtier,disk dirtier_mib=64 disk_blocks=256"
PORT=4447

hosts_net fh
secret_file secret
truncate -s 16M "$TMP/disk.img"
set -- --disk "$TMP/disk.img" --net tap=vtap0 --secret-file "$TMP/secret" --debug-ram-hash="$RH"

log "boot on $H1"
vmm_linux src "$H1" "$@"
SRC=$PID
wait_for "$TMP/src.log" "GUEST UP" 300 || die "guest did not come up"
wait_hb "$TMP/src.log" 3 300

# survived CASE DST_TAG DST_PID OUTCOME_RE: the source reports the failure
# with one error line saying where the VM is, the destination has exited
# without running the guest, the source runs and beats.
survived() {
    wait_outcome "$TMP/src.sock" "$4" 90
    grep -E "^error:" "$TMP/ms.txt" || die "$1: migrate-status has no error"
    wait_exit "$3" 60
    echo "$1: destination exit $rc: $(tail -n 1 "$TMP/$2.err")"
    [ "$rc" -ne 0 ] || die "$1: destination exited 0"
    ! grep -q "migration complete" "$TMP/$2.err" || die "$1: destination ran the guest"
    state_is "$TMP/src.sock" running || { ctl "$TMP/src.sock" status; die "$1: source not running"; }
    beating "$TMP/src.log" 3 60
    no_verify_fail "$TMP/src.log"
}
resumed_line() {
    grep -Eq "^error: .*(keeps running on source|resumed on source)" "$TMP/ms.txt" ||
        die "$1: the error does not say the VM runs on the source"
}

# kill_in_round CASE DST_TAG ROUND_RE SECS VMM_ARGS...: a destination, a
# migration capped at 8 MB/s, kill -9 of the destination once the source is
# in a pre-copy round matching ROUND_RE; the VM must survive on the source.
kill_in_round() {
    _kr_c=$1 _kr_t=$2 _kr_re=$3 _kr_s=$4; shift 4
    vmm_incoming "$_kr_t" "$H2" $IP2:$PORT "$@"
    ctl "$TMP/src.sock" migrate --to $IP2:$PORT --bandwidth 8 || die "$_kr_c: migrate command failed"
    wait_mig "$TMP/src.sock" "phase: *precopy \(round $_kr_re\)" "$_kr_s"
    grep phase "$TMP/ms.txt"
    kill -9 $PID
    survived "$_kr_c" "$_kr_t" $PID failed
    resumed_line "$_kr_c"
}

log "1. kill the destination in round 1"
kill_in_round 1 d1 1 60 "$@"

log "2. kill the destination in a later round"
kill_in_round 2 d2 "([3-9]|[1-9][0-9])" 150 "$@"

log "3. kill the destination during switchover"
vmm_incoming d3 "$H2" $IP2:$PORT --mig-fault stall-switchover "$@"
ctl "$TMP/src.sock" migrate --to $IP2:$PORT --downtime 2000 || die "migrate command failed"
wait_for "$TMP/d3.err" "fault stall-switchover" 120 || die "destination never reached switchover"
ctl "$TMP/src.sock" migrate-status | grep phase
kill -9 $PID
survived 3 d3 $PID failed
resumed_line 3

log "4. cut the link mid-stream"
vmm_incoming d4 "$H2" $IP2:$PORT "$@"
ctl "$TMP/src.sock" migrate --to $IP2:$PORT --bandwidth 8 || die "migrate command failed"
wait_mig "$TMP/src.sock" "phase: *precopy \(round 1\)" 60
link_set down
# Both sides give up after their 30 s I/O timeout.
survived 4 d4 $PID failed
resumed_line 4
grep -q "guest discarded" "$TMP/d4.err" || die "4: destination did not say it discarded the guest"
link_set up

log "5. GO lost on the link: AMBIGUOUS"
vmm_incoming d5 "$H2" $IP2:$PORT --mig-fault lose-go "$@"
DST=$PID
ctl "$TMP/src.sock" migrate --to $IP2:$PORT --downtime 2000 || die "migrate command failed"
wait_outcome "$TMP/src.sock" ambiguous 120
cat "$TMP/ms.txt"
grep -q "fault lose-go: GO thrown away" "$TMP/d5.err" || die "5: the destination never got to GO"
wait_exit $DST 60
[ "$rc" -ne 0 ] || die "5: destination exited 0"
! grep -q "migration complete" "$TMP/d5.err" || die "5: destination ran the guest"
grep "guest discarded" "$TMP/d5.err" || die "5: destination did not say it discarded the guest"
ctl "$TMP/src.sock" status | tee "$TMP/st.txt"
grep -q "^state: *paused_ambiguous" "$TMP/st.txt" || die "5: source state is not paused_ambiguous"
# Neither side runs the guest: no heartbeat for 3 s (an absence: a fixed wait).
n=$(hb_count "$TMP/src.log"); sleep 3
[ "$(hb_count "$TMP/src.log")" -eq "$n" ] || die "5: the source's guest runs after AMBIGUOUS"
set +e; ctl "$TMP/src.sock" migrate --to $IP2:$PORT > "$TMP/again.txt" 2>&1; r=$?; set -e
cat "$TMP/again.txt"
[ $r -ne 0 ] && grep -q AMBIGUOUS "$TMP/again.txt" || die "5: a new migration was not refused"
ctl "$TMP/src.sock" resume || die "5: operator resume failed"
state_is "$TMP/src.sock" running || die "5: not running after resume"
beating "$TMP/src.log" 3 60
no_verify_fail "$TMP/src.log"

log "6. a clean migration after all that"
migrate_clean 6 d6 "$@"
echo "ok"
