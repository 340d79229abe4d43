# Helpers for the multi-host agentd tests (sourced after tests/lib.sh).
# Test hosts are network namespaces ah1..ahN on a bridge ahbr0 in this
# namespace, host i at 10.78.0.i/24; agentd i listens on 10.78.0.i:7800 (the default port) with
# the shared secret $TMP/secret, state in $TMP/hI, socket $TMP/hI.sock.
AGENTD=$ROOT/$BUILD/agentd
VMCTLB=$ROOT/$BUILD/vmctl
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TMP/secret"; chmod 600 "$TMP/secret"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TMP/other"; chmod 600 "$TMP/other"

# cluster_net N: namespaces ah1..ahN joined by bridge ahbr0
# Teardown (cluster_teardown) kills the test's processes first: a namespace
# with processes in it outlives "ip netns del", and so would its veth.
cluster_net() {
    cluster_links_del 9
    on_exit "cluster_teardown $1"
    ip link add ahbr0 type bridge; ip link set ahbr0 up
    _i=1
    while [ $_i -le "$1" ]; do
        ip netns add ah$_i
        ip link add ahv$_i type veth peer name eth0 netns ah$_i
        ip link set ahv$_i master ahbr0 up
        ip -n ah$_i addr add 10.78.0.$_i/24 dev eth0
        ip -n ah$_i link set eth0 up; ip -n ah$_i link set lo up
        _i=$((_i + 1))
    done
}
# start_agentd I [SECRET [PORT [TAG]]]: agentd in namespace ahI, pid in $TMP/TAG.pid
start_agentd() {
    _i=$1; _sec=${2:-$TMP/secret}; _port=${3:-7800}; _tag=${4:-h$1}
    mkdir -p "$TMP/$_tag"; rm -f "$TMP/$_tag.sock"
    ip netns exec ah$_i "$AGENTD" --socket "$TMP/$_tag.sock" --state-dir "$TMP/$_tag" \
        --listen 10.78.0.$_i:$_port --secret-file "$_sec" --vmm "$ROOT/$BUILD/vmm" --host-name $_tag \
        >> "$TMP/$_tag.agentd.log" 2>&1 &
    echo $! > "$TMP/$_tag.pid"
    _n=0; until [ -S "$TMP/$_tag.sock" ] && $VMCTLB --host "$TMP/$_tag.sock" list >/dev/null 2>&1; do
        _n=$((_n + 1)); [ $_n -gt 100 ] && { cat "$TMP/$_tag.agentd.log"; die "agentd $_tag did not start"; }
        sleep 0.1
    done
}
# kill every agentd and vmm the test started
cluster_cleanup() {
    for _p in "$TMP"/*.pid; do [ -f "$_p" ] && kill -9 "$(cat "$_p")"; done
    for _s in "$TMP"/h*/*.json "$TMP"/x*/*.json; do
        [ -f "$_s" ] || continue
        _pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$_s")
        [ -n "$_pid" ] && [ "$_pid" != 0 ] && kill -9 "$_pid"
    done
    return 0
}
cluster_links_del() {
    _i=1
    while [ $_i -le "$1" ]; do
        ip netns del ah$_i 2>/dev/null || true; ip link del ahv$_i 2>/dev/null || true
        ip link del ahg$_i 2>/dev/null || true; _i=$((_i + 1))
    done
    ip netns del ahc 2>/dev/null || true; ip link del ahcv 2>/dev/null || true
    ip link del ahbr0 2>/dev/null || true
    return 0
}
# cluster_guest_net N: a guest LAN 10.79.0.0/24 on the same segment (ahbr0):
# in each host namespace ahI a bridge br0 (for vmctl run --net bridge=br0)
# with an uplink veth to ahbr0, and a client namespace ahc at 10.79.0.100.
cluster_guest_net() {
    _i=1
    while [ $_i -le "$1" ]; do
        ip -n ah$_i link add br0 type bridge; ip -n ah$_i link set br0 up
        ip link add ahg$_i type veth peer name up0 netns ah$_i
        ip link set ahg$_i master ahbr0 up
        ip -n ah$_i link set up0 master br0 up
        _i=$((_i + 1))
    done
    ip netns add ahc; ip -n ahc link set lo up
    ip link add ahcv type veth peer name eth0 netns ahc
    ip link set ahcv master ahbr0 up
    ip -n ahc addr add 10.79.0.100/24 dev eth0; ip -n ahc link set eth0 up
}
cluster_teardown() { cluster_cleanup; sleep 0.5; cluster_links_del "$1"; }
vm() { _h=$1; shift; $VMCTLB --host "$TMP/$_h.sock" "$@"; }
# hb H NAME: heartbeat lines (freestanding or Linux guest) in the serial log of NAME on host H
hb() { _n=$(count_lines "$TMP/$1/$2.log" '^HEARTBEAT '); echo "${_n:-0}"; }
# beating H NAME: new heartbeats appear on host H within 20 s
beating() {
    _b=$(hb "$1" "$2"); _t=0
    while [ "$(hb "$1" "$2")" -le $((_b + 1)) ]; do
        _t=$((_t + 1)); [ $_t -gt 150 ] && { diag "$1" "$2"; die "$2: no new heartbeats on $1"; }
        sleep 0.2
    done
    ! grep -q 'VERIFY FAIL' "$TMP/$1/$2.log" || die "$2: VERIFY FAIL on $1"
}
diag() {	# diag H NAME: what the VM's vmm is doing
    tail -n 3 "$TMP/$1/$2.log"; echo; tail -n 5 "$TMP/$1/$2.vmm.log"
    _pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$TMP/$1/$2.json")
    [ -n "$_pid" ] && ps -L -o pid,tid,stat,wchan:30,pcpu,comm -p "$_pid"
    tail -n 8 "$TMP/$1.agentd.log"; uptime
}
# state H NAME: the VM's state column in H's vmctl list ('' if not listed)
state() { vm "$1" list | awk -v n="$2" '$1 == n { print $2 }'; }
where() { vm "$1" list | awk -v n="$2" '$1 == n { print $3 }'; }
run_fs() {	# run_fs H NAME
    vm "$1" run "$2" --kernel "$ROOT/$FS_GUEST" --mem 64M --cpus 1 --cmdline "mem=16 passes=0 hb=5" >/dev/null
    wait_for "$TMP/$1/$2.log" '^HEARTBEAT gen=' 60 || die "$2 produced no heartbeat"
}
# run_linux H NAME [CMDLINE_EXTRA [VMCTL_ARGS...]]: start the Linux test guest
# (128M, 1 vCPU) on H; returns once its vmm answers (wait_up waits for it).
run_linux() {
    _h=$1; _n=$2; _x=${3:-workload=idle}; shift 2; [ $# -gt 0 ] && shift
    vm "$_h" run "$_n" --kernel "$VMLINUZ" --initrd "$ROOT/$LINUX_INITRD" --mem 128M --cpus 1 \
        --cmdline "console=ttyS0 quiet panic=-1 $_x" "$@" >/dev/null || die "vmctl run $_n on $_h failed"
}
# wait_up H NAME: the Linux guest NAME on H prints heartbeats
wait_up() { wait_for "$TMP/$1/$2.log" '^HEARTBEAT n=' 400 || die "$2 did not come up on $1"; }
# cluster_dump: everything needed to diagnose a failure: each agentd's log,
# each VM's record, the tail of its vmm's own output and of its serial log.
cluster_dump() {
    for _l in "$TMP"/*.agentd.log; do
        [ -f "$_l" ] || continue
        echo "---- $(basename "$_l") (last 30 lines)"; tail -n 30 "$_l"
    done
    for _s in "$TMP"/h*/*.json "$TMP"/x*/*.json; do
        [ -f "$_s" ] || continue
        _b=${_s%.json}
        echo "---- $_s"; cat "$_s"; echo
        echo "---- $_b.vmm.log (last 15 lines)"; tail -n 15 "$_b.vmm.log" 2>/dev/null
        echo "---- $_b.log (serial, last 8 lines)"; tail -n 8 "$_b.log" 2>/dev/null | tr -d '\r'
    done
    uptime; free -m | head -2
}
# die prints the cluster's state first (tests sourcing this file)
die() { echo "FAIL: $*"; cluster_dump 2>&1 | sed 's/^/  | /'; exit 1; }
