#!/bin/sh
# test: migration and evacuation of Linux guests through agentd. Three test
# hosts (namespaces on a bridge, 10.78.0.1-3; a guest LAN 10.79.0.0/24 with
# a bridge br0 in each host and a client namespace ahc), an agentd on each
# with a shared secret (plus one with another secret on h3:7801). Three
# Linux test guests on h1; vm1 runs the echo server on --net bridge=br0
# (agentd makes the tap) and a client in ahc keeps one TCP session to it
# busy for the whole test: it must never break.
#  - migration to an agentd with another secret and to an unreachable
#    address fail clearly (exit 1) and the VM keeps running on h1.
#  - vmctl evacuate --to h2,h3 --parallel 2 moves h1's three VMs, prints
#    what moved where, h1 runs nothing, each VM beats where it went.
#  - vmctl migrate vm1 from there to the other host, session open: the
#    session goes on echoing, heartbeats continue, both hosts' vmctl list
#    agree, the tap moved, the summary gives total time, downtime and bytes
#    (or says which are unknown).
#  - vmctl console on the new host reaches vm1's serial port (the guest's
#    tty echoes a scripted line back); console of an unknown VM exits 4.
# On any failure, every agentd's log, each VM's record, vmm output and serial
# tail are printed (cluster_dump).
# needs: kvm
# timeout: 600
. tests/lib.sh
need_kvm
. tests/agentd_cluster.sh
PY=/usr/bin/python3

log "three hosts, agentd on each (+ one with another secret on h3:7801), guest LAN"
cluster_net 3
cluster_guest_net 3
for i in 1 2 3; do start_agentd $i; done
start_agentd 3 "$TMP/other" 7801 x3

log "three Linux guests on h1 (vm1: echo server on bridge br0)"
run_linux h1 vm1 "workload=echo ip=10.79.0.11/24" --net bridge=br0
for n in vm2 vm3; do run_linux h1 $n; done
tap=$(ip -n ah1 -o link show master br0 | awk -F': ' '$2 ~ /^kvt/ { sub(/@.*/, "", $2); print $2 }')
[ -n "$tap" ] || die "agentd made no tap in h1's br0"
log "vm1's tap on h1: $tap"
for n in vm1 vm2 vm3; do wait_up h1 $n; done
wait_for "$TMP/h1/vm1.log" 'ECHOSRV LISTEN' 120 || die "vm1's echo server did not start"
vm h1 list

_t=0; until ip netns exec ahc ping -c 1 -W 2 10.79.0.11 >/dev/null 2>&1; do
    _t=$((_t + 1)); [ $_t -gt 30 ] && die "vm1 (10.79.0.11) not reachable from the client namespace"
done
ip netns exec ahc $PY tests/echo_client.py "$TMP/stop" 10.79.0.11 30 120 > "$TMP/client.log" 2>&1 &
CL=$!
on_exit "kill -9 $CL"
wait_for "$TMP/client.log" '^echo 5$' 60 || die "the client gets no echoes from vm1"
# echoes_go_on: 10 more echoes arrive, the session never broke
echoes_go_on() {
    _b=$(grep -c '^echo ' "$TMP/client.log"); _t=0
    while [ "$(grep -c '^echo ' "$TMP/client.log")" -lt $((_b + 10)) ]; do
        grep -q "CLIENT FAIL" "$TMP/client.log" && { tail -n 3 "$TMP/client.log"; die "the client's session broke"; }
        _t=$((_t + 1)); [ $_t -gt 300 ] && { tail -n 3 "$TMP/client.log"; die "no echoes after the move"; }
        sleep 0.2
    done
    log "the client's session goes on: $(grep -c '^echo ' "$TMP/client.log") echoes"
}

log "migrate vm2 to an agentd with another secret -> clear failure, vm2 stays"
set +e; vm h1 migrate vm2 --to 10.78.0.3:7801 > "$TMP/out" 2> "$TMP/err"; rc=$?; set -e
cat "$TMP/out" "$TMP/err"
[ $rc -eq 1 ] || die "exit $rc, want 1"
grep -qi 'authenticat' "$TMP/err" || die "error does not say authentication"
[ "$(state h1 vm2)" = running ] || die "vm2 not running on h1"
[ -z "$(state x3 vm2)" ] || die "unauthenticated agentd created vm2"
beating h1 vm2

log "migrate vm2 to an unreachable address -> clear failure, vm2 stays"
set +e; vm h1 migrate vm2 --to 10.78.0.99 > "$TMP/out" 2> "$TMP/err"; rc=$?; set -e
cat "$TMP/out" "$TMP/err"
[ $rc -eq 1 ] || die "exit $rc, want 1"
grep -q '10.78.0.99' "$TMP/err" || die "error does not name the peer"
[ "$(state h1 vm2)" = running ] || die "vm2 not running on h1"
beating h1 vm2

log "evacuate h1 (vm1 vm2 vm3) to h2,h3, 2 at once, the client's session open"
set +e; vm h1 evacuate --to 10.78.0.2,10.78.0.3 --parallel 2 > "$TMP/ev.out" 2> "$TMP/ev.err"; rc=$?; set -e
grep -v ' round ' "$TMP/ev.out"; cat "$TMP/ev.err"
[ $rc -eq 0 ] || die "evacuate exit $rc"
for n in vm1 vm2 vm3; do
    grep -Eq "^$n +10\.78\.0\.[23](:7800)? +(succeeded|done)" "$TMP/ev.out" || die "final table lacks $n"
done
echo "h1:"; vm h1 list; echo "h2:"; vm h2 list; echo "h3:"; vm h3 list
vm h1 list | awk 'NR > 1 { print $2 }' | grep -Eqv '^migrated$' && die "h1 still has a VM that is not migrated"
for n in vm1 vm2 vm3; do
    dst=$(where h1 $n | sed 's/^10\.78\.0\.\([0-9]\).*/h\1/')
    case $dst in h2|h3) ;; *) die "h1 says $n went to '$dst'";; esac
    [ "$(state $dst $n)" = running ] || die "$n not running on $dst"
    beating $dst $n
done
echoes_go_on

src=$(where h1 vm1 | sed 's/^10\.78\.0\.\([0-9]\).*/h\1/')
case $src in h2) dst=h3; di=3;; *) dst=h2; di=2;; esac
log "migrate vm1 $src -> $dst with the client's session open"
vm $src migrate vm1 --to 10.78.0.$di > "$TMP/mig.out" 2>&1 || { cat "$TMP/mig.out"; die "migrate failed"; }
grep -v ' round ' "$TMP/mig.out"
grep -Eq "vm1 -> 10.78.0.$di: (done|source vmm gone; destination runs)" "$TMP/mig.out" || die "no success line"
grep -Eq "vm1 -> 10.78.0.$di: .* in [0-9]+ ms, downtime ([0-9]+ ms|unknown), ([0-9.]+ MiB|unknown) sent" "$TMP/mig.out" \
    || die "the summary lacks total time, downtime or bytes"
beating $dst vm1
echo "$src:"; vm $src list; echo "$dst:"; vm $dst list
[ "$(state $dst vm1)" = running ] && [ "$(where $dst vm1)" = $dst ] || die "$dst does not run vm1"
[ "$(state $src vm1)" = migrated ] || die "$src does not say vm1 migrated"
where $src vm1 | grep -q "^10.78.0.$di" || die "$src does not say vm1 went to $dst"
ip -n ah$di -o link show master br0 | grep -q "$tap" || die "$dst's agentd made no tap $tap in br0"
_t=0; while ip -n ah${src#h} link show "$tap" >/dev/null 2>&1; do
    _t=$((_t + 1)); [ $_t -gt 50 ] && die "the source tap $tap still exists on $src"; sleep 0.2
done
echoes_go_on

log "vmctl console vm1 on $dst: a scripted line reaches the guest's serial port and echoes back"
word=console-check-$$
(sleep 1; printf '%s\r' "$word"; sleep 1) | vm $dst console vm1 --linger 5 > "$TMP/con.out" 2> "$TMP/con.err" \
    || { cat "$TMP/con.err"; die "vmctl console failed"; }
tr -d '\r' < "$TMP/con.out" | grep -q "$word" || { cat "$TMP/con.out" "$TMP/con.err"; die "no echo of '$word' on the console"; }
log "console echoed: $(tr -d '\r' < "$TMP/con.out" | grep "$word" | head -n 1)"
set +e; vm $dst console nosuch > /dev/null 2> "$TMP/err" < /dev/null; rc=$?; set -e
[ $rc -eq 4 ] || die "console of an unknown VM: exit $rc, want 4"

touch "$TMP/stop"; wait $CL || die "client exit $?"
tail -n 1 "$TMP/client.log"
for h in h1 h2 h3; do grep -h 'VERIFY FAIL' "$TMP/$h"/*.log && die "VERIFY FAIL on $h"; done
echo ok
