#!/bin/sh
# Usage: guests/linux/smoke.sh [boot|detect|disk|net|all]...   (default: all)
# Boots the Linux test guest under QEMU (TCG by default; Linux hangs in its
# decompressor under KVM on some hosts) and checks it:
#   boot    workload=dirtier dirtier_mib=16, -smp 2: GUEST UP, CPUS ONLINE 2,
#           DIRTIER START, >= 3 HEARTBEATs (n consecutive, mono increasing),
#           no VERIFY FAIL; reports the wall time from QEMU start to GUEST UP
#   detect  dirtier_corrupt=5: the guest's self-corruption must give VERIFY FAIL
#   disk    virtio-blk on a scratch image, workload=disk shutdown=1: DISK OK,
#           guest powers off, and the host re-checks the bytes with diskcheck
#   net     virtio-net on a tap inside a private network namespace,
#           workload=echo: ping, TCP echo and HTTP from the namespace
# Env: BUILD (build), INITRD, SMOKE_ACCEL (tcg), SMOKE_TIMEOUT (90 s per wait).
# Prints "PASS <test> ..." / "FAIL <test> ..." and "smoke: N passed, N failed";
# exits non-zero if anything failed. Needs root for the net test.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
INITRD=${INITRD:-$BUILD/guests/linux/initramfs.cpio.gz}
ACCEL=${SMOKE_ACCEL:-tcg}
TO=${SMOKE_TIMEOUT:-90}
DISKCHECK=$BUILD/guests/linux/diskcheck
KROOT=$(tests/lab/kernel.sh)
VMLINUZ=$(ls "$KROOT"/boot/vmlinuz-* | head -1)
[ -f "$INITRD" ] || { echo "smoke: no $INITRD (run make)"; exit 1; }
TMP=$(mktemp -d /tmp/lgsmoke.XXXXXX)
cp "$INITRD" "$TMP/initrd"; INITRD=$TMP/initrd   # immune to a concurrent rebuild
NS=""
PASSED=0 FAILED=0

cleanup() {
    for f in "$TMP"/*.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# vm NAME APPEND [QEMU ARGS...]: start QEMU in the background (under $PREFIX).
PREFIX=""
vm() {
    _n=$1 _a=$2; shift 2
    : > "$TMP/$_n.log"
    T0=$(now_ms)
    $PREFIX qemu-system-x86_64 -accel "$ACCEL" -m 512 -smp 2 -display none -monitor none -no-reboot \
        -serial "file:$TMP/$_n.log" -kernel "$VMLINUZ" -initrd "$INITRD" \
        -append "console=ttyS0 quiet panic=-1 $_a" "$@" </dev/null >"$TMP/$_n.qemu" 2>&1 &
    echo $! > "$TMP/$_n.pid"
}
stop() {
    [ -f "$TMP/$1.pid" ] || return 0
    kill "$(cat "$TMP/$1.pid")" 2>/dev/null || true
    wait "$(cat "$TMP/$1.pid")" 2>/dev/null || true
    rm -f "$TMP/$1.pid"
}
alive() { kill -0 "$(cat "$TMP/$1.pid")" 2>/dev/null; }

# wait_line NAME REGEX [TIMEOUT]: wait for a console line; sets AT_MS (ms since start).
wait_line() {
    _end=$(($(now_ms) + ${3:-$TO} * 1000))
    while [ "$(now_ms)" -lt "$_end" ]; do
        if grep -Eq "$2" "$TMP/$1.log"; then AT_MS=$(($(now_ms) - T0)); return 0; fi
        alive "$1" || { grep -Eq "$2" "$TMP/$1.log" && { AT_MS=$(($(now_ms) - T0)); return 0; }; break; }
        sleep 0.05
    done
    return 1
}

pass() { echo "PASS $*"; PASSED=$((PASSED + 1)); }
fail() {
    _t=$1; shift
    echo "FAIL $_t: $*"; FAILED=$((FAILED + 1))
    if [ -f "$TMP/$_t.log" ]; then echo "--- last console lines of $_t:"; tail -n 15 "$TMP/$_t.log"; fi
    if [ -s "$TMP/$_t.qemu" ]; then echo "--- qemu:"; tail -n 5 "$TMP/$_t.qemu"; fi
}
secs() { printf '%d.%02d' $(($1 / 1000)) $(($1 % 1000 / 10)); }

t_boot() {
    vm boot "workload=dirtier dirtier_mib=16"
    wait_line boot '^GUEST UP' || { fail boot "no GUEST UP in ${TO}s"; stop boot; return; }
    up=$AT_MS
    if ! wait_line boot '^HEARTBEAT n=3 '; then fail boot "fewer than 3 HEARTBEATs"; stop boot; return; fi
    stop boot
    L=$TMP/boot.txt
    tr -d '\r' < "$TMP/boot.log" > "$L"   # the serial console ends lines with \r\n
    grep -q '^CPUS ONLINE 2$' "$L" || { fail boot "no 'CPUS ONLINE 2'"; return; }
    grep -q '^DIRTIER START mib=16 ' "$L" || { fail boot "no DIRTIER START mib=16"; return; }
    grep -q '^WORKLOAD dirtier STARTED' "$L" || { fail boot "no WORKLOAD dirtier STARTED"; return; }
    ! grep -q 'VERIFY FAIL' "$L" || { fail boot "$(grep 'VERIFY FAIL' "$L")"; return; }
    # Heartbeats: n = 1,2,3..., mono strictly increasing, gen never decreasing.
    bad=$(grep '^HEARTBEAT ' "$L" | tr '=' ' ' | awk '
        $3 != NR { print "n=" $3 " at heartbeat " NR; exit }
        $7 + 0 <= pm + 0 && NR > 1 { print "mono not increasing at n=" $3; exit }
        $9 + 0 < pg + 0 { print "gen went back at n=" $3; exit }
        { pm = $7; pg = $9 }')
    [ -z "$bad" ] || { fail boot "bad heartbeats: $bad"; return; }
    hb=$(grep -c '^HEARTBEAT ' "$L")
    kup=$(sed -n 's/^GUEST UP uptime=\([0-9.]*\).*/\1/p' "$L")
    pass boot "GUEST UP $(secs "$up")s after QEMU start (guest uptime ${kup}s, accel $ACCEL), $hb heartbeats, $(grep '^HEARTBEAT ' "$L" | tail -1 | sed 's/.*\(gen=[0-9]*\).*/\1/')"
}

t_detect() {
    vm detect "workload=dirtier dirtier_mib=4 dirtier_corrupt=5"
    if wait_line detect 'VERIFY FAIL page=[0-9]+ expected=5 got=4' && wait_line detect 'WORKLOAD dirtier EXITED rc=1' 10; then
        pass detect "$(grep 'VERIFY FAIL' "$TMP/detect.log" | cut -c1-60)"
    else
        fail detect "injected stale page not reported as VERIFY FAIL expected=5 got=4"
    fi
    stop detect
}

t_disk() {
    img=$TMP/disk.img
    truncate -s 8M "$img"
    vm disk "workload=disk shutdown=1 disk_seed=7" -drive "file=$img,if=virtio,format=raw,cache=none"
    if ! wait_line disk '^DISK (OK|FAIL)'; then fail disk "no DISK line"; stop disk; return; fi
    grep -q '^DISK OK blocks=2048 ' "$TMP/disk.log" || { fail disk "$(grep '^DISK' "$TMP/disk.log")"; stop disk; return; }
    wait_line disk 'GUEST POWEROFF' 20 || { fail disk "no GUEST POWEROFF"; stop disk; return; }
    _end=$(($(now_ms) + 20000))
    while alive disk && [ "$(now_ms)" -lt "$_end" ]; do sleep 0.1; done
    alive disk && { fail disk "QEMU still running after poweroff"; stop disk; return; }
    stop disk
    host=$("$DISKCHECK" --dev "$img" --mode check --seed 7 2>&1) || { fail disk "host check: $host"; return; }
    pass disk "$(grep '^DISK OK' "$TMP/disk.log" | cut -d' ' -f1-4), guest powered off, host re-check: $host"
}

t_net() {
    [ "$(id -u)" = 0 ] || { fail net "needs root (network namespace + tap)"; return; }
    NS=lgsmoke$$
    ip netns add "$NS" || { fail net "ip netns add failed"; NS=""; return; }
    ip netns exec "$NS" sh -c "ip link set lo up && ip tuntap add dev tap0 mode tap &&
        ip addr add 10.99.0.1/24 dev tap0 && ip link set tap0 up" || { fail net "tap setup failed"; return; }
    PREFIX="ip netns exec $NS"
    vm net "workload=echo ip=10.99.0.2/24 gw=10.99.0.1" \
        -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0
    PREFIX=""
    if ! wait_line net '^ECHOSRV LISTEN' || ! grep -q '^NET UP eth0 10.99.0.2/24' "$TMP/net.log"; then
        fail net "guest network or echosrv did not come up"; stop net; return
    fi
    X="ip netns exec $NS"
    $X ping -c 3 -W 5 10.99.0.2 > "$TMP/ping" 2>&1 || { fail net "ping: $(tail -2 "$TMP/ping")"; stop net; return; }
    msg="smoke-echo-$$"
    got=$($X python3 -c "
import socket,sys
s=socket.create_connection(('10.99.0.2',7),timeout=10); s.sendall(sys.argv[1].encode()); s.shutdown(socket.SHUT_WR)
b=b''
while True:
    d=s.recv(4096)
    if not d: break
    b+=d
print(b.decode())" "$msg" 2>&1) || true
    [ "$got" = "$msg" ] || { fail net "TCP echo returned '$got'"; stop net; return; }
    body=$($X wget -q -T 10 -O - http://10.99.0.2/ 2>&1) || true
    case $body in "echosrv ok n=1") ;; *) fail net "HTTP returned '$body'"; stop net; return;; esac
    stop net
    pass net "ping $(sed -n 's/.*= [0-9.]*\/\([0-9.]*\)\/.*/\1/p' "$TMP/ping") ms avg, TCP echo ok, HTTP '$body'"
}

[ $# -gt 0 ] || set -- all
for t in "$@"; do
    case $t in
        all) t_boot; t_detect; t_disk; t_net;;
        boot|detect|disk|net) "t_$t";;
        *) echo "smoke: unknown test $t"; exit 2;;
    esac
done
echo "smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
