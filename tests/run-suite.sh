#!/bin/sh
# Run integration test scripts one after another, in the current environment
# (this machine, or inside the lab). For each test prints one line
#   RESULT PASS|FAIL|SKIP <name> <seconds>s [reason]
# and, for failures, the last lines of its output. Test script contract:
#   exit 0 = pass, 77 = skip (last output line says why), anything else = fail;
#   a "# timeout: SEC" header line overrides the default 600 s.
# why LOG: the reason a test failed, for its RESULT line (the summary at the
# end of make test repeats it, and CI keeps only the last lines): its last
# "FAIL: " line, else its last line that is not empty.
why() {
    _w=$(sed -n 's/^FAIL: //p' "$1" | tail -n 1)
    [ -n "$_w" ] || _w=$(grep -v '^[[:space:]]*$' "$1" | tail -n 1)
    printf '%s' "$_w" | tr -d '\r' | cut -c1-200
}
for t in "$@"; do
    name=$(basename "$t" .sh)
    to=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$t" | head -1); to=${to:-600}
    # Inside the lab the log lives on the lab's output share, where lab.sh
    # watches it grow: a lab kernel in trouble whose test makes no progress is
    # ended early instead of at the timeout.
    dir=/tmp; [ -n "${LAB_INSIDE:-}" ] && [ -d "${LAB_OUT:-}" ] && dir=$LAB_OUT
    log=$(mktemp "$dir/test-$name.XXXXXX")
    start=$(date +%s)
    echo "---- $name"
    timeout -k 10 "$to" sh "$t" > "$log" 2>&1 </dev/null; rc=$?
    secs=$(( $(date +%s) - start ))
    case $rc in
    0) echo "RESULT PASS $name ${secs}s";;
    77) echo "RESULT SKIP $name ${secs}s $(tail -n 1 "$log")";;
    124|137) tail -n 40 "$log" | sed 's/^/    | /'
        echo "RESULT FAIL $name ${secs}s timed out after ${to}s; last: $(why "$log")";;
    *) tail -n 40 "$log" | sed 's/^/    | /'; echo "RESULT FAIL $name ${secs}s exit $rc: $(why "$log")";;
    esac
    [ -n "${KEEP_LOGS:-}" ] && cp "$log" "$KEEP_LOGS/$name.log" 2>/dev/null
    rm -f "$log"
done
