#!/bin/sh
# Run cmocka unit-test binaries; print each failing test and a count line
# "UNIT <passed> <failed>" as the last line. Exit 1 on any failure.
pass=0; fail=0
for t in "$@"; do
    name=$(basename "$t")
    out=$(CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$t" 2>&1); rc=$?
    p=$(printf '%s\n' "$out" | grep -c '^ok ')
    f=$(printf '%s\n' "$out" | grep -c '^not ok ')
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or timed out outside a test
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$f" -ne 0 ]; then
        echo "FAIL unit $name (exit $rc):"; printf '%s\n' "$out" | grep -v '^ok ' | tail -n 30
    else
        echo "ok   unit $name ($p tests)"
    fi
done
echo "UNIT $pass $fail"
[ $fail -eq 0 ]
