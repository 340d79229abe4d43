# Sourced by bench scripts that need a network namespace of their own (taps,
# loopback up; the lab's lo is down). bench_reexec_in_netns PREFIX ARGS...
# re-runs the calling script ($0, from the repository root) in a fresh
# namespace PREFIX.<pid> with lo up, deletes it afterwards and exits with the
# script's status; inside that run (BENCH_IN_NETNS set) it returns at once.
bench_reexec_in_netns() {
    [ -z "${BENCH_IN_NETNS:-}" ] || return 0
    _ns=$1.$$; shift
    ip netns add "$_ns"
    ip -n "$_ns" link set lo up
    set +e
    BENCH_IN_NETNS=1 ip netns exec "$_ns" sh "$0" "$@"; _rc=$?
    ip netns del "$_ns"
    exit $_rc
}
