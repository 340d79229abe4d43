#!/bin/sh
# test: agentd with its state directory on a full filesystem (a 1 MiB
# tmpfs). A VM runs; the filesystem is then filled to the last block.
#  - vmctl run of another VM fails with exit 1 and an error that says the
#    state dir has no space (ERROR_NO_SPACE), nothing is started;
#  - vmctl stop of the running VM still stops it (the record update fails:
#    agentd logs it) and agentd keeps serving (list, show, version);
#  - every NAME.json on disk is still a complete, valid record (write to a
#    temp file + fsync + rename: a failed write never replaces it) and no
#    NAME.json.tmp is left behind;
#  - once space is freed, vmctl run works again.
# needs: kvm
# timeout: 240
. tests/lib.sh
need_kvm
. tests/agentd_cluster.sh
PY=/usr/bin/python3

cluster_net 1
mkdir -p "$TMP/h1"
mount -t tmpfs -o size=1m,mode=0700 tmpfs "$TMP/h1"
on_exit "umount -l $TMP/h1"
start_agentd 1

# records_ok: every record parses as JSON with a name and a state
records_ok() {
    for _j in "$TMP"/h1/*.json; do
        [ -f "$_j" ] || continue
        $PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["name"] and r["state"], r' "$_j" \
            || die "$_j is not a valid record: $(cat "$_j")"
    done
    ls "$TMP"/h1/*.tmp 2>/dev/null && die "temp files left in the state dir"
    return 0
}

log "a VM runs, then the state filesystem is filled"
vm h1 run a --kernel "$ROOT/$FS_GUEST" --mem 64M --cpus 1 --cmdline "mem=16 passes=0 hb=0" >/dev/null
vm h1 list
dd if=/dev/zero of="$TMP/h1/filler" bs=4k 2>/dev/null || true
df -k "$TMP/h1" | tail -n 1
records_ok

log "vmctl run b on the full state dir -> clear error, nothing started"
set +e; vm h1 run b --kernel "$ROOT/$FS_GUEST" --mem 64M --cpus 1 > "$TMP/out" 2> "$TMP/err"; rc=$?; set -e
cat "$TMP/out" "$TMP/err"
[ $rc -eq 1 ] || die "vmctl run b: exit $rc, want 1"
grep -q 'No space left' "$TMP/err" || die "the error does not say the state dir is full"
grep -q 'not started' "$TMP/err" || die "the error does not say b was not started"
[ -z "$(state h1 b)" ] || [ "$(state h1 b)" != running ] || die "b runs"
pgrep -f -- "--name b " >/dev/null && die "a vmm for b runs"
records_ok

log "vmctl stop a while full -> stops, agentd logs the failed record update, keeps serving"
vm h1 stop a || die "stop a failed"
_t=0; until [ "$(state h1 a)" = stopped ]; do
    _t=$((_t + 1)); [ $_t -gt 50 ] && { vm h1 list; die "a not stopped"; }; sleep 0.2
done
grep 'a: .*No space left' "$TMP/h1.agentd.log" || die "agentd did not log the failed record write"
vm h1 version >/dev/null || die "agentd stopped serving"
vm h1 show a >/dev/null || die "show a failed"
records_ok
kill -0 "$(cat "$TMP/h1.pid")" || die "agentd died"

log "space freed -> vmctl run works again"
rm -f "$TMP/h1/filler"
vm h1 run b --kernel "$ROOT/$FS_GUEST" --mem 64M --cpus 1 --cmdline "mem=16 passes=0 hb=5" >/dev/null \
    || die "run b after freeing space failed"
wait_for "$TMP/h1/b.log" '^HEARTBEAT gen=' 60 || die "b produced no heartbeat"
[ "$(state h1 b)" = running ] || die "b not running"
records_ok
echo ok
