#!/bin/sh
# make demo: the main job end to end. Two test hosts (network namespaces h1
# and h2 joined by a veth pair), an agentd on each with a shared cluster
# secret, a Linux guest running the memory dirtier on h1, then a live
# migration to h2 with progress, the summary, where the VM lives afterwards,
# and cleanup. Runs directly where KVM can boot Linux, else inside the lab.
set -eu
cd "$(dirname "$0")/.."
if [ -z "${LAB_INSIDE:-}" ]; then
    where=$(tests/lab/probe.sh)
    if [ "$where" = nested ]; then
        echo "demo: running inside the nested KVM lab (this machine's /dev/kvm cannot boot Linux)"
        exec tests/lab/lab.sh run --timeout 900 -- tests/demo.sh
    fi
fi
B=$(pwd)/build
KROOT=$(tests/lab/kernel.sh)
K=$(ls "$KROOT"/boot/vmlinuz-* | head -1)
T=$(mktemp -d /tmp/demo.XXXXXX)
step() { printf '\n== %s\n' "$*"; }
cleanup() {
    for h in h1 h2; do
        [ -f "$T/$h.pid" ] && kill "$(cat "$T/$h.pid")" 2>/dev/null
        for s in "$T/$h"/*.json; do
            [ -f "$s" ] && pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$s") && [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
        done
        ip netns del "demo-$h" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

step "two test hosts: namespaces demo-h1 (10.77.0.1) and demo-h2 (10.77.0.2)"
ip netns add demo-h1; ip netns add demo-h2
ip link add demo-v1 type veth peer name demo-v2
ip link set demo-v1 netns demo-h1; ip link set demo-v2 netns demo-h2
ip -n demo-h1 addr add 10.77.0.1/24 dev demo-v1; ip -n demo-h1 link set demo-v1 up; ip -n demo-h1 link set lo up
ip -n demo-h2 addr add 10.77.0.2/24 dev demo-v2; ip -n demo-h2 link set demo-v2 up; ip -n demo-h2 link set lo up
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/secret"; chmod 600 "$T/secret"

step "agentd on each host"
for i in 1 2; do
    mkdir -p "$T/h$i"
    ip netns exec demo-h$i "$B/agentd" --socket "$T/h$i.sock" --state-dir "$T/h$i" \
        --listen 10.77.0.$i:7000 --secret-file "$T/secret" --vmm "$B/vmm" --host-name h$i \
        > "$T/h$i.agentd.log" 2>&1 &
    echo $! > "$T/h$i.pid"
done
for i in 1 2; do
    n=0; until [ -S "$T/h$i.sock" ]; do n=$((n + 1)); [ $n -gt 50 ] && { cat "$T/h$i.agentd.log"; exit 1; }; sleep 0.1; done
done
echo "agentd h1 and h2 up"

step "boot a Linux guest (2 vCPUs, 256 MiB, dirtier over 32 MiB) on h1"
"$B/vmctl" --host "$T/h1.sock" run web1 --kernel "$K" --initrd build/guests/linux/initramfs.cpio.gz \
    --mem 256M --cpus 2 --cmdline "console=ttyS0 quiet panic=-1 workload=dirtier dirtier_mib=32"
n=0; until "$B/vmctl" --host "$T/h1.sock" log web1 2>/dev/null | grep -q "HEARTBEAT n=3 "; do
    n=$((n + 1)); [ $n -gt 600 ] && { echo "demo: guest did not come up"; "$B/vmctl" --host "$T/h1.sock" log web1 | tail; exit 1; }; sleep 0.2
done
"$B/vmctl" --host "$T/h1.sock" log web1 | tr -d '\r' | grep -E "GUEST UP|CPUS ONLINE|DIRTIER START|HEARTBEAT" | tail -n 5
"$B/vmctl" --host "$T/h1.sock" list

step "live-migrate web1 from h1 to h2"
"$B/vmctl" --host "$T/h1.sock" migrate web1 --to 10.77.0.2:7000

step "afterwards"
echo "h1:"; "$B/vmctl" --host "$T/h1.sock" list
echo "h2:"; "$B/vmctl" --host "$T/h2.sock" list
sleep 3
echo "guest console on h2 (heartbeats continue, no VERIFY FAIL):"
"$B/vmctl" --host "$T/h2.sock" log web1 | tr -d '\r' | grep -E "HEARTBEAT|VERIFY" | tail -n 4
if "$B/vmctl" --host "$T/h2.sock" log web1 | grep -q "VERIFY FAIL"; then echo "demo: VERIFY FAIL"; exit 1; fi
"$B/vmctl" --host "$T/h2.sock" stop web1 >/dev/null
step "done; cleaning up"
