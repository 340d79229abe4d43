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
RES=$(mktemp); trap 'rm -rf "$RES" "$RES.d" "$RES.flaky"' EXIT
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
        # So every KVM test runs once first (pass 1), then each that did not
        # pass runs again in fresh lab boots (pass 2, one lab at a time), up
        # to LAB_TRIES (4) boots in all:
        #  - a FAIL in a lab whose kernel reported trouble (lab.sh says so),
        #    a lab that died, and a wedged lab (lab.sh ends it early) count as
        #    lab deaths;
        #  - two clean FAILs make a failure, never rerun further;
        #  - no rerun starts that could outlast KVM_BUDGET seconds (default
        #    4200: CI stops make test at 90 minutes) with its full timeout.
        # Reruns come after every first run, so a lab death early on cannot
        # eat the time a later test's first run needs.
        # A pass after a failure counts but is reported as FLAKY in the output
        # and the summary, never silently.
        budget=${KVM_BUDGET:-4200}
        mkdir -p "$RES.d"
        # lab_try TEST: one lab boot; updates $RES.d/NAME.{out,fails,deaths,tries}.
        lab_try() {
            n=$(basename "$1" .sh); d=$RES.d/$n
            tests/lab/lab.sh run --timeout $(( $(timeout_of "$1") + 120 )) --env TESTS --env KEEP_LOGS -- \
                tests/run-suite.sh "$1" > "$d.out" 2>&1
            cat "$d.out"
            echo $(( $(cat "$d.tries" 2>/dev/null || echo 0) + 1 )) > "$d.tries"
            grep -q "^RESULT PASS $n \|^RESULT SKIP $n " "$d.out" && return 0
            if grep -q "^RESULT FAIL $n " "$d.out" && ! grep -q "^lab: the lab kernel reported trouble" "$d.out"; then
                echo $(( $(cat "$d.fails" 2>/dev/null || echo 0) + 1 )) > "$d.fails"
            else
                echo $(( $(cat "$d.deaths" 2>/dev/null || echo 0) + 1 )) > "$d.deaths"
            fi
            return 1
        }
        timeout_of() { _to=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$1" | head -1); echo "${_to:-600}"; }
        # Pass 1 runs LAB_JOBS (default 2) labs at once: a lab alone gets
        # about 1.2 of the 2 host cores (its workload is mostly one busy
        # vCPU), so two side by side finish the pass in well under the
        # serial time. Longest timeouts first, from one queue; each test's
        # output is printed whole when it ends.
        for t in $kvm; do echo "$(timeout_of "$t") $t"; done | sort -rn | cut -d' ' -f2 > "$RES.d/queue"
        : > "$RES.d/again"
        pass1_worker() {
            while :; do
                t=$(flock "$RES.d/queue" sh -c 'head -n 1 "$1"; sed -i 1d "$1"' sh "$RES.d/queue")
                [ -n "$t" ] || break
                lab_try "$t" > "$RES.d/w$1.out" 2>&1 || echo "$t" >> "$RES.d/again"
                flock "$RES.d/print" cat "$RES.d/w$1.out"
            done
        }
        w=1; pids=""
        while [ "$w" -le "${LAB_JOBS:-2}" ]; do
            pass1_worker $w & pids="$pids $!"
            w=$((w + 1))
        done
        wait $pids
        again=""
        for t in $kvm; do grep -qx "$t" "$RES.d/again" && again="$again $t"; done
        for t in $again; do
            n=$(basename "$t" .sh); d=$RES.d/$n
            while :; do
                fails=$(cat "$d.fails" 2>/dev/null || echo 0); deaths=$(cat "$d.deaths" 2>/dev/null || echo 0)
                try=$(cat "$d.tries")
                [ "$fails" -ge 2 ] || [ "$try" -ge "${LAB_TRIES:-4}" ] && break
                if [ $(( $(date +%s) - start + $(timeout_of "$t") + 120 )) -gt "$budget" ]; then
                    echo "no rerun of $n: the KVM tests have run $(( $(date +%s) - start )) s; a rerun could outlast the $budget s budget"
                    break
                fi
                echo "FLAKY? $n did not pass in the lab ($fails test failure(s), $deaths lab death(s)); lab boot $((try + 1))"
                lab_try "$t" && {
                    echo "FLAKY $n (passed on lab boot $((try + 1)) after $fails test failure(s) and $deaths lab death(s))" >> "$RES.flaky"
                    break
                }
            done
        done
        for t in $kvm; do
            n=$(basename "$t" .sh); d=$RES.d/$n
            grep "^RESULT " "$d.out" >> "$RES" ||
                echo "RESULT FAIL $n 0s no result: the lab died or wedged in all $(cat "$d.tries") boot(s)" | tee -a "$RES"
        done
        rm -rf "$RES.d"
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
