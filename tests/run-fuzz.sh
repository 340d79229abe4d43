#!/bin/sh
# Run each libFuzzer target for SECONDS, with a corpus dir under build/fuzz/corpus.
# Prints one line per target; exit 1 if any target found a crash.
SECS=$1; shift
fail=0
for f in "$@"; do
    n=$(basename "$f")
    c=build/fuzz/corpus/$n; mkdir -p "$c" build/fuzz/crashes
    if "$f" -max_total_time="$SECS" -print_final_stats=0 -artifact_prefix=build/fuzz/crashes/"$n"- "$c" \
        > build/fuzz/"$n".log 2>&1; then
        echo "fuzz $n: ok (${SECS}s, $(ls "$c" | wc -l) corpus entries)"
    else
        echo "fuzz $n: FAILED, see build/fuzz/$n.log:"; grep -E 'ERROR|SUMMARY' build/fuzz/"$n".log | head -5
        fail=1
    fi
done
exit $fail
