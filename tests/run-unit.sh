#!/bin/sh
# Run cmocka unit-test binaries; print each failing test and a count line
# "UNIT <passed> <failed> <skipped>" as the last line. Exit 1 on any failure.
# A test that skips itself (cmocka's skip(), TAP "not ok N # SKIP", e.g. no
# /dev/kvm on this host) is counted and listed as skipped, never as failed.
pass=0; fail=0; skip=0
for t in "$@"; do
    name=$(basename "$t")
    out=$(CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$t" 2>&1); rc=$?
    p=$(printf '%s\n' "$out" | grep -c '^ok ')
    s=$(printf '%s\n' "$out" | grep -c '^not ok .*# SKIP')
    f=$(( $(printf '%s\n' "$out" | grep -c '^not ok ') - s ))
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or timed out outside a test
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    if [ "$f" -ne 0 ]; then
        echo "FAIL unit $name (exit $rc):"; printf '%s\n' "$out" | grep -v '^ok ' | tail -n 30
    else
        echo "ok   unit $name ($p tests$([ "$s" -gt 0 ] && echo ", $s skipped"))"
    fi
done
echo "UNIT $pass $fail $skip"
[ $fail -eq 0 ]
