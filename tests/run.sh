#!/bin/sh
# The test runner behind `make test`. Runs, in order:
#   1. unit tests (cmocka binaries build/tests/test_*),
#   2. integration tests that need no KVM (tests/integration/*.sh without a
#      "# needs: kvm" header), on this machine,
#   3. integration tests that need KVM: directly or in the nested lab (one
#      boot per test), as tests/lab/probe.sh decides (LAB=direct|nested).
# Ends with exactly one summary line: "N passed, N failed[, N skipped]".
#   TESTS=substring   run only integration tests whose name contains it
#   UNIT=0            skip unit tests
cd "$(dirname "$0")/.." || exit 1
RES=$(mktemp); trap 'rm -f "$RES"' EXIT
upass=0; ufail=0; uskip=0
if [ "${UNIT:-1}" != 0 ] && ls build/tests/test_* >/dev/null 2>&1; then
    echo "== unit tests"
    tests/run-unit.sh build/tests/test_* | tee "$RES.unit"
    set -- $(tail -n 1 "$RES.unit"); upass=$2; ufail=$3; uskip=${4:-0}; rm -f "$RES.unit"
fi
host=""; kvm=""
for t in tests/integration/*.sh; do
    [ -f "$t" ] || continue
    case "$(basename "$t")" in *"${TESTS:-}"*) ;; *) continue;; esac
    if grep -q '^# needs: .*kvm' "$t"; then kvm="$kvm $t"; else host="$host $t"; fi
done
if [ -n "$host" ]; then
    echo "== integration tests (this machine)"
    tests/run-suite.sh $host | tee -a "$RES"
fi
if [ -n "$kvm" ]; then
    where=$(tests/lab/probe.sh)
    echo "== integration tests needing KVM ($where)"
    start=$(date +%s)
    if [ "$where" = direct ]; then
        tests/run-suite.sh $kvm | tee -a "$RES"
    else
        # One lab boot per test (~10 s each): a test that wedges or crashes
        # the lab's kernel fails alone, and no test inherits another's
        # leftovers (namespaces, links, processes).
        # The nested lab itself sometimes wedges or panics (a guest vCPU
        # never leaves VMRUN under QEMU's emulated SVM; RCU stalls; or the
        # lab kernel panics "corrupted stack end" inside KVM_RUN, see README).
        # So a KVM test that does not pass in the lab runs again in a fresh
        # lab boot, up to LAB_TRIES (4) boots in all:
        #  - a FAIL in a lab whose kernel reported trouble (lab.sh says so),
        #    a lab that died, and a wedged lab (lab.sh ends it early) count as
        #    lab deaths;
        #  - two clean FAILs make a failure, never rerun further;
        #  - no rerun starts once the KVM tests have run so long that it could
        #    outlast KVM_BUDGET seconds (default 3600) with its full timeout.
        # A pass after a failure counts but is reported as FLAKY in the output
        # and the summary, never silently.
        for t in $kvm; do
            n=$(basename "$t" .sh)
            to=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$t" | head -1); to=${to:-600}
            try=1; fails=0; deaths=0
            while :; do
                tests/lab/lab.sh run --timeout $(( to + 120 )) --env TESTS --env KEEP_LOGS -- \
                    tests/run-suite.sh "$t" > "$RES.one" 2>&1
                cat "$RES.one"
                grep -q "^RESULT PASS $n \|^RESULT SKIP $n " "$RES.one" && break
                if grep -q "^RESULT FAIL $n " "$RES.one" && ! grep -q "^lab: the lab kernel reported trouble" "$RES.one"; then
                    fails=$((fails + 1))
                else
                    deaths=$((deaths + 1))
                fi
                [ "$fails" -ge 2 ] || [ "$try" -ge "${LAB_TRIES:-4}" ] && break
                if [ $(( $(date +%s) - start + to + 120 )) -gt "${KVM_BUDGET:-3600}" ]; then
                    echo "no rerun of $n: the KVM tests have run $(( $(date +%s) - start )) s; a rerun could outlast the ${KVM_BUDGET:-3600} s budget"
                    break
                fi
                try=$((try + 1))
                echo "FLAKY? $n did not pass in the lab ($fails test failure(s), $deaths lab death(s)); lab boot $try"
            done
            [ "$try" -gt 1 ] && grep -q "^RESULT PASS $n " "$RES.one" && \
                echo "FLAKY $n (passed on lab boot $try after $fails test failure(s) and $deaths lab death(s))" >> "$RES.flaky"
            grep "^RESULT " "$RES.one" >> "$RES" ||
                echo "RESULT FAIL $n 0s no result: the lab died or wedged in all $try boot(s)" | tee -a "$RES"
        done
        rm -f "$RES.one"
    fi
    echo "(KVM tests took $(( $(date +%s) - start )) s)"
    # A test that never reported (lab died or hung) is a failure.
    for t in $kvm; do
        n=$(basename "$t" .sh)
        grep -q "^RESULT [A-Z]* $n " "$RES" || echo "RESULT FAIL $n 0s no result (lab or runner died)" | tee -a "$RES"
    done
fi
ipass=$(grep -c '^RESULT PASS ' "$RES"); ifail=$(grep -c '^RESULT FAIL ' "$RES"); iskip=$(grep -c '^RESULT SKIP ' "$RES")
grep '^RESULT SKIP ' "$RES" | sed 's/^RESULT SKIP /skipped: /'
[ -f "$RES.flaky" ] && cat "$RES.flaky" && rm -f "$RES.flaky"
grep '^RESULT FAIL ' "$RES" | sed 's/^RESULT FAIL /failed: /'
passed=$((upass + ipass)); failed=$((ufail + ifail)); skipped=$((uskip + iskip))
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
