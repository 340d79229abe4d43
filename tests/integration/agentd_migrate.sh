#!/bin/sh
# test: migration and evacuation through agentd. Three test hosts (namespaces
# on a bridge, 10.78.0.1-3), an agentd on each with a shared secret; three
# freestanding VMs on h1. vmctl migrate vm1 -> h2: heartbeats continue in h2's
# serial log, no VERIFY FAIL, both hosts' vmctl list agree where it lives.
# Migration to an agentd with another secret and to an unreachable address
# fail clearly (exit 1) and the VM keeps running on h1. vmctl evacuate --to
# h2,h3 --parallel 2 moves the rest, prints what moved where, h1 runs nothing.
# needs: kvm
# timeout: 300
. tests/lib.sh
need_kvm
. tests/agentd_cluster.sh

log "three hosts, agentd on each (+ one with another secret on h3:7801)"
cluster_net 3
for i in 1 2 3; do start_agentd $i; done
start_agentd 3 "$TMP/other" 7801 x3

log "three VMs on h1"
for n in vm1 vm2 vm3; do run_fs h1 $n; done
vm h1 list

log "migrate vm1 to h2"
vm h1 migrate vm1 --to 10.78.0.2 > "$TMP/mig.out" || { cat "$TMP/mig.out"; die "migrate failed"; }
grep -v ' round ' "$TMP/mig.out"
# the last line is the outcome ("done (succeeded)", or when the source vmm
# exited before agentd's next poll: "source vmm gone; destination runs the VM")
tail -n 1 "$TMP/mig.out" | grep -Eq 'vm1 -> 10.78.0.2: (done|source vmm gone; destination runs)' || die "no success line"
beating h2 vm1
echo "h1:"; vm h1 list; echo "h2:"; vm h2 list
[ "$(state h2 vm1)" = running ] && [ "$(where h2 vm1)" = h2 ] || die "h2 does not run vm1"
[ "$(state h1 vm1)" = migrated ] || die "h1 does not say vm1 migrated"
where h1 vm1 | grep -q '^10.78.0.2' || die "h1 does not say vm1 went to h2"
[ -z "$(state h3 vm1)" ] || die "h3 knows vm1"

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

log "evacuate h1 to h2,h3 (2 at once)"
set +e; vm h1 evacuate --to 10.78.0.2,10.78.0.3 --parallel 2 > "$TMP/ev.out" 2> "$TMP/ev.err"; rc=$?; set -e
cat "$TMP/ev.out" "$TMP/ev.err"
[ $rc -eq 0 ] || die "evacuate exit $rc"
for n in vm2 vm3; do
    grep -Eq "^$n +10\.78\.0\.[23](:7800)? +(succeeded|done)" "$TMP/ev.out" || die "final table lacks $n"
done
echo "h1:"; vm h1 list; echo "h2:"; vm h2 list; echo "h3:"; vm h3 list
vm h1 list | awk 'NR > 1 { print $2 }' | grep -Eqv '^migrated$' && die "h1 still has a VM that is not migrated"
for n in vm2 vm3; do
    dst=$(where h1 $n | sed 's/^10\.78\.0\.\([0-9]\).*/h\1/')
    case $dst in h2|h3) ;; *) die "h1 says $n went to '$dst'";; esac
    [ "$(state $dst $n)" = running ] || die "$n not running on $dst"
    beating $dst $n
done
for h in h1 h2 h3; do grep -h 'VERIFY FAIL' "$TMP/$h"/*.log && die "VERIFY FAIL on $h"; done
echo ok
