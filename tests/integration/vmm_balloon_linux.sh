#!/bin/sh
# test: free page reporting (--balloon) while the guest keeps freeing and
# reusing memory: the dirtier (32 MiB, verified) plus its churn thread (64 MiB
# mapped, stamped, held 1 s, verified, unmapped, over and over). The vmm
# punches every range the guest reports while the guest reallocates what it
# reported before; a page punched while still in use fails a check (VERIFY
# FAIL region=churn). With reports flowing: a live snapshot and two restores
# of it (the guest keeps reporting and verifying in each), and a live
# migration to a second host whose RAM at resume equals the source's at
# pause (pages punched during pre-copy arrive as zeros, none stale).
# needs: kvm
# timeout: 720
. tests/lib.sh
. tests/vmm_hosts.sh
need_kvm
MEM=512M
CMDLINE="console=ttyS0 quiet panic=-1 workload=dirtier dirtier_mib=32 dirtier_churn=64"
SNAP=$TMP/snap
PORT=4447

# reported TAG: MiB the vmm of TAG says the guest reported free so far (its
# progress line comes at 1 MiB, then every 64 MiB).
reported() {
    _r=$(sed -n 's/^vmm: virtio-balloon: guest reported \([0-9]*\) MiB.*/\1/p' "$TMP/$1.err" | tail -n 1)
    echo "${_r:-0}"
}
# wait_reported TAG MIB TIMEOUT: TIMEOUT in wall-clock seconds (a starved
# lab stretches loops that count their sleeps); on failure says how far the
# guest and its vmm got, so a stall is told apart from a dead guest.
wait_reported() {
    _end=$(( $(date +%s) + $3 ))
    while [ "$(reported "$1")" -lt "$2" ]; do
        no_verify_fail "$TMP/$1.log"
        if [ "$(date +%s)" -ge $_end ]; then
            tr -d '\r' < "$TMP/$1.log" | grep -v "^HEARTBEAT" | tail -n 10
            tail -n 5 "$TMP/$1.err"
            die "$1: guest reported $(reported "$1") MiB free after $3 s, want >= $2 ($(hb_count "$TMP/$1.log") heartbeats, last: $(tr -d '\r' < "$TMP/$1.log" | grep HEARTBEAT | tail -n 1))"
        fi
        sleep 0.5
    done
}

hosts_net bl
secret_file secret
set -- --balloon --secret-file "$TMP/secret" --debug-ram-hash="$RH"

log "boot on $H1: $MEM, 2 vCPUs, --balloon, dirtier 32 MiB + churn 64 MiB"
vmm_linux src "$H1" "$@"
SRC=$PID
wait_for "$TMP/src.log" "GUEST UP" 240 || die "guest did not come up"
wait_hb "$TMP/src.log" 3 180
log "guest up, $(hb_count "$TMP/src.log") heartbeats; waiting for free page reports"
# More than all of RAM (512 MiB) reported: memory was reported, reused and
# reported again (the churn), so punches and reuse interleave from here on.
wait_reported src 576 240
echo "reported $(reported src) MiB; $(tr -d '\r' < "$TMP/src.log" | grep CHURN | tail -n 1)"
grep -q "virtio-balloon: punching" "$TMP/src.err" && die "a punch failed: $(grep punching "$TMP/src.err")"

log "live snapshot while the guest reports"
# The heartbeats printed before the command all precede the snapshot.
before=$(hb_count "$TMP/src.log")
ctl "$TMP/src.sock" snapshot "$SNAP" || die "snapshot failed"
n_before=$(hb_field "$TMP/src.log" n | head -n "$before" | tail -n 1)
beating "$TMP/src.log" 3
no_verify_fail "$TMP/src.log"

log "live migration $H1 -> $H2 while the guest reports"
migrate_clean move dst "$@"
grep -h "migration phases\|migrated to" "$TMP/src.err"

for i in 1 2; do
    log "restore $i"
    vmm_start r$i - --restore "$SNAP" --balloon
    pid=$PID
    wait_hb "$TMP/r$i.log" 3 120
    { echo "$n_before"; hb_field "$TMP/r$i.log" n; } > "$TMP/n$i"
    increasing "$TMP/n$i" || die "restore $i: heartbeat sequence not continuing"
    # The restored guest goes on freeing, reporting and reusing.
    wait_reported r$i 128 180
    beating "$TMP/r$i.log" 3
    no_verify_fail "$TMP/r$i.log"
    state_is "$TMP/r$i.sock" running || die "restore $i: not running"
    echo "restore $i: reported $(reported r$i) MiB, $(tr -d '\r' < "$TMP/r$i.log" | grep CHURN | tail -n 1)"
    ctl "$TMP/r$i.sock" quit
    wait_exit $pid 60
    [ "$rc" -eq 0 ] || die "restore $i: vmm exited $rc"
done
grep -h "punching" "$TMP"/*.err && die "a punch failed"
no_verify_fail "$TMP"/*.log
echo "ok"
