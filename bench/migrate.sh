#!/bin/sh
# Live migration of a 512 MiB, 2-vCPU Linux guest over loopback (TCP, in a
# network namespace of its own with lo up;
# 127.0.0.1), source and destination on this machine: our vmm (defaults) vs
# QEMU-KVM defaults vs QEMU "best" (multifd on both sides, max-bandwidth 10G,
# downtime-limit 300 ms = our default). Run it where KVM works (directly or in
# the lab). Cases:
#   idle   workload=idle
#   hot64  workload=dirtier dirtier_mib=64 dirtier_hot=64 (64 MiB rewritten
#          as fast as the guest can)
# Each (case, vmm) boots one guest; run N migrates it from the current process
# to a fresh destination process, which then becomes the source of run N+1.
# A migration not finished after BENCH_MIG_CAP s (default 60) is cancelled and
# counted as not converged (our vmm also gives up by itself after 30 rounds).
# Fields: total_s (migrate command -> done, as the source reports it),
# downtime_ms (source's figure), bytes (ours: bytes sent on the wire; QEMU:
# "transferred ram"), rounds (ours: pre-copy rounds + final; QEMU: dirty sync
# count), gap_s / gap_t_s: the largest step between consecutive guest HEARTBEAT
# mono / t values across the move (source's serial log from the last heartbeat
# before the migrate command, then the destination's): the pause the guest sees.
# Prints JSON lines {"bench":"migrate","case":..,"vmm":"ours|qemu|qemu-best","run":N,"converged":..,...}
# Usage: bench/migrate.sh [RUNS]
set -eu
# Run in a network namespace of our own with loopback up (the lab's lo is down).
. bench/netns.sh
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
    bench_reexec_in_netns benchmig "$@"
fi
RUNS=${1:-3}
CAP=${BENCH_MIG_CAP:-60}
. bench/vmlib.sh
PORT=$((47000 + $$ % 1000))
printf 'bench-migration-secret\n' > "$T/secret"; chmod 600 "$T/secret"

case_cmd() {
    case $1 in
    idle) echo "console=ttyS0 quiet panic=-1 workload=idle";;
    hot64) echo "console=ttyS0 quiet panic=-1 workload=dirtier dirtier_mib=64 dirtier_hot=64";;
    esac
}
# gaps OLDLOG SKIP NEWLOG FIELD
gap() { { hb_vals "$1" "$4" "$2"; hb_vals "$3" "$4"; } | max_gap; }
# emit CASE VMM RUN CONVERGED TOTAL_MS DOWNTIME_MS BYTES ROUNDS GAP GAP_T
emit() {
    printf '{"bench":"migrate","case":"%s","vmm":"%s","run":%d,"converged":%s,"total_s":%s,"downtime_ms":%s,"bytes":%s,"rounds":%s,"gap_s":%s,"gap_t_s":%s}\n' \
        "$1" "$2" "$3" "$4" "$(echo "${5:-null}" | awk '$1 == "null" { print "null"; next } { printf "%.3f", $1 / 1000 }')" \
        "${6:-null}" "${7:-null}" "${8:-null}" "${9:-null}" "${10:-null}"
}
jfield() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("null" if v is None else v)' "$1" "$2" 2>/dev/null || echo null; }

ours() { # CASE
    cmd=$(case_cmd "$1")
    curlog=$T/$1.o0.log; cursock=$T/$1.o0.sock
    ours_start "$curlog" "$cursock" "$cmd" --secret-file "$T/secret"; cur=$OPID
    wait_hb "$curlog" 3 600 $cur || { stop_pid $cur; return 1; }
    i=1
    while [ $i -le "$RUNS" ]; do
        PORT=$((PORT + 1))
        dlog=$T/$1.o$i.log; dsock=$T/$1.o$i.sock
        $VMM run --name bench --kernel "$K" --cmdline "$cmd" --mem 512M --cpus 2 \
            --incoming 127.0.0.1:$PORT --secret-file "$T/secret" \
            --serial "$dlog" --control "$dsock" </dev/null >"$dlog.err" 2>&1 &
        dp=$!; PIDS="$PIDS $dp"
        n=0
        until grep -q "listening on" "$dlog.err" 2>/dev/null; do
            sleep 0.05; n=$((n + 1))
            [ $n -lt 600 ] && kill -0 $dp 2>/dev/null || { warn "ours: destination did not listen"; cat "$dlog.err" >&2; stop_pid $cur; return 1; }
        done
        k=$(hb_count "$curlog")
        # how far the guest workload got (dirtier passes/pages): compare like with like
        warn "ours $1 run $i: source before migrate: $(tr -d '\r' < "$curlog" | grep HEARTBEAT | tail -n 1)"
        t0=$(now_ms)
        $VMM ctl "$cursock" migrate --to 127.0.0.1:$PORT >/dev/null || { warn "ours: migrate command failed"; stop_pid $dp; break; }
        echo '{}' > "$T/ms.json"
        while kill -0 $cur 2>/dev/null; do
            $VMM ctl "$cursock" migrate-status --json > "$T/ms.new" 2>/dev/null && mv "$T/ms.new" "$T/ms.json" || true
            grep -Eq '"outcome":"(not converged|not_converged|failed|cancelled)' "$T/ms.json" && break
            # success: the source lingers answering migrate-status until quit
            grep -q "migrated to 127.0.0.1:$PORT: total" "$curlog.err" 2>/dev/null &&
                { $VMM ctl "$cursock" quit >/dev/null 2>&1 || true; break; }
            if [ $(($(now_ms) - t0)) -gt $((CAP * 1000)) ]; then
                $VMM ctl "$cursock" migrate-cancel >/dev/null 2>&1 || true
                sleep 1; $VMM ctl "$cursock" migrate-status --json > "$T/ms.json" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
        sum=$(grep "migrated to 127.0.0.1:$PORT: total" "$curlog.err" 2>/dev/null || true)
        slog=$curlog
        if [ -n "$sum" ]; then
            wait $cur 2>/dev/null || warn "ours: source exit status $? after success"
            tot=$(echo "$sum" | sed -n 's/.*total \([0-9]*\) ms.*/\1/p')
            dt=$(echo "$sum" | sed -n 's/.*downtime \([0-9]*\) ms.*/\1/p')
            rounds=$(echo "$sum" | sed -n 's/.*, \([0-9]*\) rounds.*/\1/p')
            bytes=$(echo "$sum" | sed -n 's/.*rounds, \([0-9]*\) bytes sent.*/\1/p')
            if wait_hb "$dlog" 3 120 $dp; then
                emit "$1" ours $i true "$tot" "$dt" "$bytes" "$rounds" \
                    "$(gap "$curlog" $((k - 1)) "$dlog" mono)" "$(gap "$curlog" $((k - 1)) "$dlog" t)"
            else
                warn "ours: destination does not run the guest"; emit "$1" ours $i false "$tot" "$dt" "$bytes" "$rounds"
                stop_pid $dp; return 1
            fi
            cur=$dp; curlog=$dlog; cursock=$dsock
        else
            warn "ours: $1 run $i did not complete: $(cat "$T/ms.json")"
            kill -0 $cur 2>/dev/null || { warn "ours: source died"; tail -n 3 "$curlog.err" >&2; stop_pid $dp; return 1; }
            r=$(jfield "$T/ms.json" round); [ "$r" = null ] || r=$((r + 1))
            emit "$1" ours $i false "$(jfield "$T/ms.json" total_ms)" null "$(jfield "$T/ms.json" bytes_sent)" "$r"
            stop_pid $dp
        fi
        # where the seconds went (source phases, destination load/resume), for humans
        { grep -h "migration phases" "$slog.err"; grep -h "incoming: migration complete" "$dlog.err"; } 2>/dev/null |
            sed "s/^/bench: ours $1 run $i: /" >&2 || true
        i=$((i + 1))
    done
    stop_pid $cur
}

qemu_mig() { # CASE best(0|1)
    cmd=$(case_cmd "$1"); who=qemu; [ "$2" = 1 ] && who=qemu-best
    set_best="migrate_set_capability multifd on"
    tune="migrate_set_parameter max-bandwidth 10G"
    dlim="migrate_set_parameter downtime-limit 300"
    curlog=$T/$1.$who.0.log; curmon=$T/$1.$who.0.mon
    qemu_start "$curlog" "$curmon" "$cmd"; cur=$QPID
    wait_hb "$curlog" 3 600 $cur || { stop_pid $cur; return 1; }
    i=1
    while [ $i -le "$RUNS" ]; do
        PORT=$((PORT + 1))
        dlog=$T/$1.$who.$i.log; dmon=$T/$1.$who.$i.mon
        qemu_start "$dlog" "$dmon" "$cmd" -incoming defer; dp=$QPID
        if [ "$2" = 1 ]; then
            $QMON "$dmon" cmd "$set_best" "migrate_incoming tcp:127.0.0.1:$PORT"
            $QMON "$curmon" cmd "$set_best" "$tune" "$dlim"
        else
            $QMON "$dmon" cmd "migrate_incoming tcp:127.0.0.1:$PORT"
        fi
        k=$(hb_count "$curlog")
        # how far the guest workload got (dirtier passes/pages): compare like with like
        warn "$who $1 run $i: source before migrate: $(tr -d '\r' < "$curlog" | grep HEARTBEAT | tail -n 1)"
        $QMON "$curmon" cmd "migrate -d tcp:127.0.0.1:$PORT"
        res=$($QMON "$curmon" wait-migrate "$CAP" || true)
        echo "$res" > "$T/qm.json"
        st=$(jfield "$T/qm.json" status)
        if [ "$st" = completed ] && wait_hb "$dlog" 3 120 $dp; then
            emit "$1" $who $i true "$(jfield "$T/qm.json" total_ms)" "$(jfield "$T/qm.json" downtime_ms)" \
                "$(jfield "$T/qm.json" bytes)" "$(jfield "$T/qm.json" rounds)" \
                "$(gap "$curlog" $((k - 1)) "$dlog" mono)" "$(gap "$curlog" $((k - 1)) "$dlog" t)"
            stop_pid $cur
            cur=$dp; curlog=$dlog; curmon=$dmon
        else
            warn "$who: $1 run $i: $res"
            emit "$1" $who $i false "$(jfield "$T/qm.json" total_ms)" null "$(jfield "$T/qm.json" bytes)" "$(jfield "$T/qm.json" rounds)"
            stop_pid $dp
            [ "$st" = completed ] && { stop_pid $cur; return 1; }
        fi
        i=$((i + 1))
    done
    stop_pid $cur
}
qemu() { qemu_mig "$1" 0; }
qemu_best() { qemu_mig "$1" 1; }

for c in ${BENCH_CASES:-idle hot64}; do
    for who in ${BENCH_ONLY:-ours qemu qemu_best}; do
        $who "$c" || warn "$who: migrate $c failed"
    done
done
exit 0
