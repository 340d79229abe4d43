#!/bin/sh
# test: auto-converge in the lab. The 2-vCPU Linux guest's dirtier rewrites
# every word of 32 MiB (dirtier_full=1: pages LZ4 cannot shrink much) with
# two threads: in the lab it dirties ~80k pages/s unthrottled, far more
# than a --bandwidth 80 (Mbit/s) link can carry (~2.4k pages/s), so the dirty
# set stops shrinking; the source must throttle the vCPUs (migrate-status
# shows the throttle rising round by round; 60-80% in the lab) until the
# guest dirties less than the link carries, then converge and complete: the
# destination runs the guest with equal RAM hashes, heartbeats continue, no
# VERIFY FAIL. The guest's own dirtying rate (HEARTBEAT pages=) is printed
# to show what the throttle did.
# needs: kvm
# timeout: 420
. tests/lib.sh
. tests/vmm_hosts.sh
need_kvm
CMDLINE="console=ttyS0 quiet panic=-1 workload=dirtier dirtier_mib=32 dirtier_full=1 dirtier_threads=2"
BW=${MIG_BW:-80}	# Mbit/s
PORT=4449
# guest_rate LOG: the guest's own dirtying rate (HEARTBEAT pages=, mono=)
# over every 10 heartbeats: shows what the throttle did to the guest.
guest_rate() {
    tr -d '\r' < "$1" | sed -n 's/.*HEARTBEAT .*mono=\([0-9.]*\) .*pages=\([0-9]*\).*/\1 \2/p' |
        awk 'NR % 10 == 1 { if (NR > 1 && $1 > m) printf "guest mono %.0f s: %.0f pages/s\n", $1, ($2 - p) / ($1 - m); m = $1; p = $2 }'
}

hosts_net ah
secret_file secret
set -- --secret-file "$TMP/secret" --debug-ram-hash="$RH"

log "boot on $H1"
vmm_linux src "$H1" "$@"
SRC=$PID
wait_for "$TMP/src.log" "GUEST UP" 300 || die "guest did not come up"
wait_hb "$TMP/src.log" 3 300

log "migrate with --bandwidth $BW (Mbit/s)"
vmm_incoming dst "$H2" $IP2:$PORT "$@"
DST=$PID
ctl "$TMP/src.sock" migrate --to $IP2:$PORT --bandwidth $BW --downtime 1000 || die "migrate command failed"
: > "$TMP/throttle"
deadline=$(($(date +%s) + 300))
while kill -0 $SRC 2>/dev/null; do
    if ctl "$TMP/src.sock" migrate-status > "$TMP/ms.txt" 2>/dev/null; then
        grep -Eq "outcome: *(failed|cancelled|ambiguous)" "$TMP/ms.txt" &&
            { cat "$TMP/ms.txt"; guest_rate "$TMP/src.log"; die "migration failed"; }
        r=$(sed -n 's/^phase: .*(round \([0-9]*\)).*/\1/p' "$TMP/ms.txt")
        p=$(sed -n 's/^throttle: *\([0-9]*\)%.*/\1/p' "$TMP/ms.txt")
        [ -n "$r" ] && [ -n "$p" ] && [ "$(tail -n 1 "$TMP/throttle")" != "$r $p" ] &&
            { echo "$r $p" >> "$TMP/throttle"; echo "round $r: throttle $p%, $(grep '^dirty rate' "$TMP/ms.txt")"; }
    fi
    [ "$(date +%s)" -ge $deadline ] && { cat "$TMP/ms.txt"; guest_rate "$TMP/src.log"; die "source still running after 300 s"; }
    sleep 0.2
done
wait_exit $SRC 10
cat "$TMP/src.err"
guest_rate "$TMP/src.log"
[ $rc -eq 0 ] || { tr -d '\r' < "$TMP/src.log" | tail -n 40; die "source exited $rc"; }
grep "migrated to" "$TMP/src.err" || die "no summary line"
max=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$TMP/throttle")
echo "highest throttle seen in migrate-status: $max%"
[ "$max" -ge 20 ] || die "auto-converge never throttled (max $max%)"
landed_clean move dst $DST
echo "ok"
