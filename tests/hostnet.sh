# The two test "hosts" of the migration tests and bench/migrate.sh: network
# namespaces joined by a veth pair, optionally bridged (one L2 segment) with a
# client namespace and guests' taps plugged in. Sourced (POSIX sh); the
# caller provides log MSG, die MSG and on_exit CMD (run at exit, last
# registered first) - tests/lib.sh does, bench/migrate.sh maps them.

# hosts_net PREFIX [bridge]: namespaces $H1 (10.9.0.1) and $H2 (10.9.0.2)
# joined by the veth pair $VA (in H1) / $VB (in H2); $IP1/$IP2 are the hosts'
# addresses. With "bridge", each host has a bridge br0 holding its veth end
# and its address (one L2 segment over both hosts: plug guests' taps into it).
# Teardown (registered here, so it runs after every later on_exit) deletes
# them; processes are killed first because they were registered later.
hosts_net() {
    H1=${1}1.$$; H2=${1}2.$$; VA=${1}a$$; VB=${1}b$$; IP1=10.9.0.1; IP2=10.9.0.2
    log "hosts: $H1 ($IP1) <-> $H2 ($IP2)${2:+ (bridged)}"
    ip netns add "$H1"; on_exit "ip netns del $H1"
    ip netns add "$H2"; on_exit "ip netns del $H2"
    ip link add "$VA" netns "$H1" type veth peer name "$VB" netns "$H2"
    _d1=$VA; _d2=$VB
    if [ "${2:-}" = bridge ]; then
        # A fixed MAC: a bridge with a random one takes its ports' lowest, so
        # it would change as VMMs' taps come and go, and the other host's
        # cached ARP entry would point at a MAC nobody has any more.
        ip -n "$H1" link add br0 address 02:00:0a:09:00:01 type bridge
        ip -n "$H2" link add br0 address 02:00:0a:09:00:02 type bridge
        for _ns in "$H1" "$H2"; do ip -n "$_ns" link set br0 up; done
        ip -n "$H1" link set "$VA" master br0; ip -n "$H2" link set "$VB" master br0
        _d1=br0; _d2=br0
    fi
    ip -n "$H1" addr add $IP1/24 dev $_d1; ip -n "$H1" link set "$VA" up; ip -n "$H1" link set lo up
    ip -n "$H2" addr add $IP2/24 dev $_d2; ip -n "$H2" link set "$VB" up; ip -n "$H2" link set lo up
    ip netns exec "$H1" ping -c 1 -W 5 $IP2 > /dev/null || die "link $H1 <-> $H2 does not work"
}
# client_net PREFIX ADDR/LEN: after hosts_net ... bridge, a third namespace
# $HC whose veth (cva; peer cvb in H1) sits in $H1's br0, with address ADDR:
# a client on the same L2 segment as both hosts' guests.
client_net() {
    HC=${1}c.$$
    log "client namespace $HC ($2) on $H1's bridge"
    ip netns add "$HC"; on_exit "ip netns del $HC"; ip -n "$HC" link set lo up
    ip link add cva netns "$HC" type veth peer name cvb netns "$H1"
    ip -n "$H1" link set cvb master br0 up
    ip -n "$HC" addr add "$2" dev cva
    ip -n "$HC" link set cva up
}
# plug_tap NS [TAP]: wait for a VMM's tap (vtap0) in NS, put it into br0.
plug_tap() {
    _t=0
    until ip -n "$1" link show "${2:-vtap0}" > /dev/null 2>&1; do
        [ $_t -ge 150 ] && die "no tap ${2:-vtap0} in $1"
        sleep 0.2; _t=$((_t + 1))
    done
    ip -n "$1" link set "${2:-vtap0}" master br0 up
}
# fdb_port NS MAC: the port of NS's br0 that has learnt MAC (empty if none).
fdb_port() { bridge -n "$1" fdb show br br0 2>/dev/null | awk -v m="$2" 'tolower($1) == tolower(m) && $2 == "dev" { print $3; exit }'; }
# link_set up|down: both ends of the veth between the hosts.
link_set() { ip -n "$H1" link set "$VA" "$1"; ip -n "$H2" link set "$VB" "$1"; }
