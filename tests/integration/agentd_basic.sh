#!/bin/sh
# test: agentd started the way systemd does it (NOTIFY_SOCKET owned by the
# test, listening Unix socket passed as fd 3 via LISTEN_FDS/LISTEN_PID,
# WATCHDOG_USEC) reports READY=1, STATUS= and WATCHDOG=1; vmctl runs the
# freestanding guest, list/show/log show it; agentd is killed with SIGKILL and
# restarted -> the VM is re-adopted and the guest keeps running (heartbeats
# continue, no VERIFY FAIL); pause/resume/stop work; unknown VM, duplicate
# name, bad sizes and bad names give clear errors and documented exit codes.
# needs: kvm
# timeout: 240
. tests/lib.sh
need_kvm
PY=/usr/bin/python3
[ -x $PY ] || skip "no /usr/bin/python3 for the notify listener"
AGENTD=$BUILD/agentd
VMCTL="$BUILD/vmctl --host $TMP/agentd.sock"
ST=$TMP/state
NOTIFY=$TMP/notify.sock
NLOG=$TMP/notify.log

# Datagram listener collecting sd_notify messages, one per line ("|" for \n).
cat > "$TMP/notify.py" <<'PYEOF'
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode(errors="replace").replace("\n", "|") + "\n")
PYEOF
# systemd-style launcher: bind+listen the Unix socket on fd 3, then exec
# agentd in this very process so LISTEN_PID is right.
cat > "$TMP/launch.py" <<'PYEOF'
import socket, sys, os
path = sys.argv[1]
try: os.unlink(path)
except FileNotFoundError: pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
os.umask(0o077); s.bind(path); s.listen(16)
os.dup2(s.fileno(), 3); os.set_inheritable(3, True)
env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="api")
os.execve(sys.argv[2], sys.argv[2:], env)
PYEOF
$PY "$TMP/notify.py" "$NOTIFY" "$NLOG" & NPID=$!
on_exit "kill $NPID"
# agentd's READY=1 is lost if the listener has not bound yet (slow lab)
_t=0; until [ -S "$NOTIFY" ]; do _t=$((_t + 1)); [ $_t -gt 100 ] && die "notify listener did not start"; sleep 0.1; done

start_agentd() {
    : > "$NLOG"
    NOTIFY_SOCKET=$NOTIFY WATCHDOG_USEC=1000000 \
        $PY "$TMP/launch.py" "$TMP/agentd.sock" "$ROOT/$AGENTD" --state-dir "$ST" --vmm "$ROOT/$BUILD/vmm" \
        >> "$TMP/agentd.log" 2>&1 &
    APID=$!
    wait_for "$NLOG" 'READY=1' 10 || { cat "$TMP/agentd.log"; die "agentd never sent READY=1"; }
}
vmctl_fails() {	# want_rc want_text cmd...
    _rc=$1; _want=$2; shift 2
    set +e; $VMCTL "$@" > "$TMP/out" 2> "$TMP/err"; rc=$?; set -e
    echo "\$ vmctl $* -> exit $rc: $(cat "$TMP/err" | head -n 1)"
    [ $rc -eq "$_rc" ] || die "vmctl $*: exit $rc, want $_rc"
    grep -q -- "$_want" "$TMP/err" || die "vmctl $*: stderr lacks '$_want'"
}
# alive PID: running (not gone, not a zombie waiting for its new parent).
alive() { [ -r /proc/$1/stat ] && ! grep -q '^[0-9]* ([^)]*) Z' /proc/$1/stat; }
hb() { _n=$(count_lines "$ST/fs1.log" '^HEARTBEAT gen='); echo "${_n:-0}"; }

log "agentd under a fake systemd"
start_agentd
on_exit 'kill $APID; [ -n "${VPID:-}" ] && kill -9 $VPID'
grep 'READY=1' "$NLOG" | grep -q 'STATUS=' || grep -q 'STATUS=' "$NLOG" || die "no STATUS="
wait_for "$NLOG" 'WATCHDOG=1' 5 || die "no WATCHDOG=1 with WATCHDOG_USEC=1s"
sleep 1.2
[ "$(count_lines "$NLOG" 'WATCHDOG=1')" -ge 2 ] || die "watchdog not kicked periodically"
cat "$NLOG"

log "run the freestanding guest"
$VMCTL run fs1 --kernel "$FS_GUEST" --mem 64M --cpus 1 --cmdline "mem=16 passes=0 hb=5"
wait_for "$ST/fs1.log" '^HEARTBEAT gen=' 60 || die "guest produced no heartbeat"
$VMCTL list | tee "$TMP/list"
grep -Eq '^fs1 +running ' "$TMP/list" || die "list does not show fs1 running"
$VMCTL list --json | grep -q '"name":"fs1","state":"running"' || die "list --json"
$VMCTL show fs1 | tee "$TMP/show"
grep -q '^cmdline: *mem=16 passes=0 hb=5' "$TMP/show" || die "show lacks the cmdline"
VPID=$(sed -n 's/^pid: *\([0-9]*\).*/\1/p' "$TMP/show")
[ -n "$VPID" ] && kill -0 "$VPID" || die "show gives no live pid"
$VMCTL log fs1 > "$TMP/log"
grep -q 'FREESTANDING UP' "$TMP/log" || die "log lacks the guest banner"
grep -q 'STATUS=serving 1 VMs (1 running' "$NLOG" || sleep 0 # STATUS refreshes every 10 s

log "kill -9 agentd, restart, VM must be re-adopted untouched"
before=$(hb)
kill -9 $APID; wait $APID 2>/dev/null || true
sleep 1
kill -0 "$VPID" || die "vmm died with agentd"
start_agentd
grep -q 'READY=1' "$NLOG" || die "no READY after restart"
grep 're-adopted' "$NLOG" || die "READY status does not mention re-adoption"
$VMCTL show fs1 | tee "$TMP/show2"
grep -q '^state: *running' "$TMP/show2" || die "fs1 not running after restart"
grep -q "^pid: *$VPID (re-adopted)" "$TMP/show2" || die "fs1 not re-adopted with the same pid"
_t=0; while [ "$(hb)" -le $((before + 1)) ]; do
    _t=$((_t + 1)); [ $_t -gt 150 ] && die "no new heartbeats after agentd restart"; sleep 0.2; done
grep -q 'VERIFY FAIL' "$ST/fs1.log" && die "VERIFY FAIL in guest"
log "heartbeats $before -> $(hb)"

log "errors"
vmctl_fails 1 "already exists" run fs1 --kernel "$FS_GUEST"
vmctl_fails 4 "show nope: no such VM" show nope
vmctl_fails 4 "no such VM" stop nope
vmctl_fails 2 "invalid size '12Q'" run x --kernel "$FS_GUEST" --mem 12Q
vmctl_fails 2 "out of range" run x --kernel "$FS_GUEST" --mem 1K
vmctl_fails 2 "cpus" run x --kernel "$FS_GUEST" --cpus 0
vmctl_fails 2 "only letters" run 'bad/name' --kernel "$FS_GUEST"
vmctl_fails 2 "/nonexistent" run x --kernel /nonexistent
vmctl_fails 2 "unknown command" frobnicate
vmctl_fails 3 "cannot reach agentd" --host "$TMP/none.sock" list

log "pause, resume, stop"
$VMCTL pause fs1 | grep -q 'fs1: paused' || die "pause"
$VMCTL resume fs1 | grep -q 'fs1: running' || die "resume"
$VMCTL stop fs1
alive "$VPID" && die "vmm still alive after stop"
VPID=
$VMCTL show fs1 | grep -q '^state: *stopped' || die "fs1 not stopped"
vmctl_fails 1 "not running" pause fs1
grep -q 'VERIFY FAIL' "$ST/fs1.log" && die "VERIFY FAIL in guest"
echo "ok"
