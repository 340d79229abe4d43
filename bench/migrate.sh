#!/bin/sh
# Live migration of a 512 MiB, 2-vCPU Linux guest between two host network
# namespaces over TCP on a bridged L2 segment (tests/hostnet.sh: hosts $H1 and
# $H2, a bridge each joined by a veth pair, the migration stream between the
# hosts' 10.9.0.x addresses), the guest's virtio-net on a tap in the current
# host's bridge, and a client namespace on the same segment: our vmm
# (defaults) vs QEMU-KVM defaults vs QEMU "best" (multifd on both sides,
# max-bandwidth 10G, downtime-limit 300 ms = our default). Same guest, MAC and
# address (10.10.0.2) for all. Run it as root where KVM works (directly or in
# the lab). Cases:
#   idle   workload=idle,echo
#   hot64  workload=dirtier,echo dirtier_mib=64 dirtier_hot=64 (64 MiB
#          rewritten as fast as the guest can)
# Each (case, vmm) boots one guest on H1; run N migrates it from the current
# process to a fresh destination process on the other host, which then
# becomes the source of run N+1. A migration not finished after BENCH_MIG_CAP
# s (default 60) is cancelled and counted as not converged (our vmm also gives
# up by itself after 30 rounds).
# The client (tests/echo_client.py in the client namespace) keeps one TCP
# connection to the guest's echo server (port 7) for the whole boot, one small
# request every 10 ms; client_gap_ms is the largest time between consecutive
# replies whose interval overlaps [migrate command, 20 replies after the
# move] - the outage a user of the guest feels - and client_ok says whether
# the connection survived (the client is restarted for the next run if not).
# fdb_ok: both bridges have learnt the guest's MAC on the port towards the
# destination's tap afterwards (QEMU announces after migration, we do via
# VIRTIO_NET_F_GUEST_ANNOUNCE).
# Other fields: total_s (migrate command -> done, as the source reports it),
# downtime_ms (source's figure), bytes (ours: bytes sent on the wire; QEMU:
# "transferred ram"), rounds (ours: pre-copy rounds + final; QEMU: dirty sync
# count), gap_s / gap_t_s: the largest step between consecutive guest HEARTBEAT
# mono / t values across the move (source's serial log from the last heartbeat
# before the migrate command, then the destination's; 1 s resolution).
# Prints JSON lines {"bench":"migrate","case":..,"vmm":"ours|qemu|qemu-best","run":N,"converged":..,...}
# Usage: bench/migrate.sh [RUNS]
set -eu
RUNS=${1:-3}
CAP=${BENCH_MIG_CAP:-60}
# BENCH_OURS_ARGS: extra vmm run options for both ends of our moves (A/B
# experiments, e.g. --balloon); unquoted on purpose
OURS_ARGS=${BENCH_OURS_ARGS:-}
# BENCH_MIGRATE_ARGS: extra `vmm ctl migrate` options for our moves (e.g.
# --bandwidth 160, in Mbit/s, to see what the guest costs while a move is slow).
MIG_ARGS=${BENCH_MIGRATE_ARGS:-}
. bench/vmlib.sh
PORT=$((47000 + $$ % 1000))
printf 'bench-migration-secret\n' > "$T/secret"; chmod 600 "$T/secret"
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
CTL="timeout 30 $VMM ctl"   # a control socket that does not answer must not hang the bench

# The topology of the migration tests (tests/hostnet.sh wants log/die/on_exit).
NETCLEAN=""
log() { warn "$*"; }
die() { warn "$*"; exit 1; }
on_exit() { NETCLEAN="$*; $NETCLEAN"; }
# VMMs and clients die first (cleanup), then the namespaces go.
trap 'cleanup; eval "$NETCLEAN" 2>/dev/null || true' EXIT
trap 'exit 143' INT TERM   # through the EXIT trap; a bare handler would carry on
. tests/hostnet.sh
hosts_net bm bridge
client_net bm 10.10.0.100/24
GIP=10.10.0.2
MAC=52:54:00:be:0c:01
# host N (1 or 2): its namespace and address; the guest starts on host 1 ($ch:
# where it runs now) and each run moves it to the other one (3 - $ch).
host_ns() { [ "$1" = 1 ] && echo "$H1" || echo "$H2"; }
host_ip() { [ "$1" = 1 ] && echo "$IP1" || echo "$IP2"; }
case_cmd() {
    case $1 in
    idle) echo "console=ttyS0 quiet panic=-1 workload=idle,echo ip=$GIP/24";;
    hot64) echo "console=ttyS0 quiet panic=-1 workload=dirtier,echo dirtier_mib=64 dirtier_hot=64 ip=$GIP/24";;
    esac
}
# gaps OLDLOG SKIP NEWLOG FIELD
gap() { { hb_vals "$1" "$4" "$2"; hb_vals "$3" "$4"; } | max_gap; }
# emit CASE VMM RUN CONVERGED TOTAL_MS DOWNTIME_MS BYTES ROUNDS GAP GAP_T CLIENT_GAP_MS CLIENT_OK FDB_OK
# The row's "status": ok (converged), or $STATUS (default not_converged; set
# to timeout / failed / not_run by the caller for that one row).
# "cpu_s" is $CPU_S (set by cpu_report; consumed here).
emit() {
    _st=ok; [ "$4" = true ] || _st=${STATUS:-not_converged}
    printf '{"bench":"migrate","case":"%s","vmm":"%s","run":%d,"converged":%s,"status":"%s","total_s":%s,"downtime_ms":%s,"bytes":%s,"rounds":%s,"gap_s":%s,"gap_t_s":%s,"client_gap_ms":%s,"client_ok":%s,"fdb_ok":%s,"cpu_s":%s}\n' \
        "$1" "$2" "$3" "$4" "$_st" "$(echo "${5:-null}" | awk '$1 == "null" { print "null"; next } { printf "%.3f", $1 / 1000 }')" \
        "${6:-null}" "${7:-null}" "${8:-null}" "${9:-null}" "${10:-null}" "${11:-null}" "${12:-null}" "${13:-null}" "${CPU_S:-null}"
    CPU_S=""
}
# not_run CASE VMM FROM WHY: a row for each run FROM..RUNS that could not be
# tried (boot failed, source gone or wedged): every run keeps its row.
not_run() {
    [ "$3" -le "$RUNS" ] || return 0
    warn "$2 $1: runs $3..$RUNS not run: $4"
    _r=$3; while [ "$_r" -le "$RUNS" ]; do STATUS=not_run emit "$1" "$2" "$_r" false; _r=$((_r + 1)); done
}
now_s() { date +%s.%3N; }
# CPU accounting: where a move's CPU time went.
# cpu_snap FILE PID...: a "PID - proc TICKS" line per process (utime+stime of
# all its threads, exited ones included), a "PID TID COMM TICKS" line per live
# thread, and "lab - busy TICKS" for the whole machine (/proc/stat).
cpu_ticks() { sed 's/.*) //' "$1" 2>/dev/null | awk '{print $12 + $13}'; }
cpu_snap() {
    _f=$1; shift; : > "$_f"
    for _p in "$@"; do
        echo "$_p - proc $(cpu_ticks /proc/$_p/stat)" >> "$_f"
        for _t in /proc/$_p/task/*; do
            [ -r "$_t/stat" ] || continue
            echo "$_p ${_t##*/} $(tr ' ' _ < "$_t/comm" 2>/dev/null) $(cpu_ticks "$_t/stat")" >> "$_f"
        done
    done
    awk '/^cpu / { print "lab - busy", $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat >> "$_f"
}
# cpu_report WHO CASE RUN BEFORE AFTER SRC DST: sets CPU_S (CPU seconds
# both VMM processes spent from the migrate command to the bench seeing it
# done, guest vCPUs included) and prints each side's threads (those still
# alive at AFTER) and the machine's busy CPU seconds.
cpu_report() {
    _r=$(awk -v hz="$(getconf CLK_TCK)" -v s="$6" '
        NR == FNR { b[$1 " " $2] = $4; next }
        { k = $1 " " $2; if (!(k in b)) b[k] = 0; v = ($4 - b[k]) / hz
          if ($1 == "lab") { lab = v; next }
          side = ($1 == s) ? "source" : "destination"
          if ($2 == "-") { tot[side] = v; next }
          if (v >= 0.01) th[side] = th[side] sprintf(" %s %.2f", $3, v) }
        END { printf "%.2f source %.2f (threads alive at the end:%s), destination %.2f (%s), all CPUs of this machine %.2f\n",
              tot["source"] + tot["destination"], tot["source"], th["source"], tot["destination"], substr(th["destination"], 2), lab }' "$4" "$5")
    CPU_S=${_r%% *}
    warn "$1 $2 run $3: cpu s: ${_r#* }"
}
# mem_snap FILE / mem_report WHO CASE RUN BEFORE AFTER: the lab's free
# memory and reclaim work across a move (a move that ran into direct
# reclaim or compaction pays for it in its page allocations).
mem_snap() { { awk '/^MemFree:/ { print "memfree_kib", $2 }' /proc/meminfo
    grep -E '^(allocstall_[a-z]+|compact_stall|pgscan_direct|pgsteal_kswapd) ' /proc/vmstat; } > "$1" 2>/dev/null || true; }
mem_report() {
    warn "$1 $2 run $3: lab memory: $(awk 'NR == FNR { b[$1] = $2; next }
        $1 == "memfree_kib" { printf "free %d -> %d MiB", b[$1] / 1024, $2 / 1024; next }
        { d[$1 ~ /^allocstall/ ? "allocstall" : $1] += $2 - b[$1] }
        END { for (k in d) printf ", %s +%d", k, d[k] }' "$4" "$5" 2>/dev/null)"; }
# run_times WHO CASE RUN P0 P1 P2: where a run's wall time went (stderr):
# destination start + client (P0..P1), the move (P1..P2), the destination's
# heartbeats + client replies + rows (P2..now)
run_times() { warn "$1 $2 run $3: wall s: destination start $(secs $5 $4), move $(secs $6 $5), after $(secs "$(now_ms)" $6)"; }
# wait_line FILE REGEX TIMEOUT_S [PID]: gives up at once if PID (the VMM
# writing FILE) is gone; on failure says what the guest and the VMM printed last.
wait_line() {
    _t=0
    until tr -d '\r' < "$1" 2>/dev/null | grep -Eq "$2"; do
        if [ $_t -ge $(($3 * 20)) ] || { [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; }; then
            warn "$1: no /$2/ after $((_t / 20)) s$([ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null && echo " (its VMM exited)")"
            warn "  guest's last lines: $(tr -d '\r' < "$1" 2>/dev/null | tail -n 3 | tr '\n' '|')"
            warn "  VMM's last lines: $(tail -n 3 "$1.err" 2>/dev/null | tr '\n' '|')"
            return 1
        fi
        sleep 0.05; _t=$((_t + 1))
    done
}

# The TCP client: one per guest boot (restarted if its connection broke),
# one echo request every 10 ms, each reply logged with its time.
CLP=""; CLN=0; CLOG=/dev/null
# client_replies AFTER_S: replies stamped after AFTER_S (epoch seconds).
client_replies() { sed -n 's/^echo [0-9]* t=//p' "$CLOG" | awk -v a="$1" '$1 > a { n++ } END { print n + 0 }'; }
# client_wait N AFTER_S TIMEOUT_S: until N replies after AFTER_S; 1 if the
# client failed or the time ran out.
client_wait() {
    _t=0
    while [ "$(client_replies "$2")" -lt "$1" ]; do
        grep -q "CLIENT FAIL" "$CLOG" && return 1
        [ $_t -ge $(($3 * 20)) ] && return 1
        sleep 0.05; _t=$((_t + 1))
    done
}
# client_start: make sure a client runs and gets replies (20 within 30 s).
client_start() {
    # a connection that broke while no move was measured (e.g. a cancelled one)
    grep -q "CLIENT FAIL" "$CLOG" && { warn "client: $(tail -n 1 "$CLOG")"; client_stop; }
    [ -n "$CLP" ] && return 0
    CLN=$((CLN + 1)); CLOG=$T/client.$CLN.log; rm -f "$T/stop"
    ip netns exec "$HC" $PY tests/echo_client.py "$T/stop" $GIP 10 30 10 > "$CLOG" 2>&1 &
    CLP=$!; PIDS="$PIDS $CLP"
    client_wait 20 0 30 && return 0
    warn "client: no echoes from the guest: $(tail -n 2 "$CLOG")"; client_stop; return 1
}
client_stop() { [ -z "$CLP" ] || { touch "$T/stop"; sleep 0.1; stop_pid $CLP; CLP=""; }; }
# client_gap T0_S: after a move, wait for 20 replies (30 s at most); CGAP =
# the largest time (ms) between consecutive replies of an interval reaching
# into [T0_S, now], COK = whether the connection survived. A broken (or 30 s
# silent) connection's open interval ends at its failure (or now): CGAP is
# then a lower bound, and the client is restarted for the next run.
client_gap() {
    CGAP=null; COK=false
    [ -n "$CLP" ] || return 0
    _d=$(now_s)
    client_wait 20 "$_d" 30 && COK=true
    _e=$(now_s)
    CGAP=$({ sed -n 's/^echo [0-9]* t=//p' "$CLOG"
             [ $COK = true ] || sed -n 's/^CLIENT FAIL.* t=//p' "$CLOG" | grep . || echo "$_e"; } |
           awk -v a="$1" -v b="$_e" 'NR > 1 && $1 >= a && p <= b && $1 - p > g { g = $1 - p } { p = $1 } END { printf "%d\n", g * 1000 }')
    [ $COK = true ] || { warn "client: connection lost: $(tail -n 1 "$CLOG")"; client_stop; }
}
# fdb_check HOST TAP: FDB_OK = host HOST's bridge has learnt the guest's MAC
# on TAP, the other host's bridge on its veth towards HOST.
fdb_check() {
    if [ "$1" = 1 ]; then _o=$H2 _v=$VB; else _o=$H1 _v=$VA; fi
    _p=$(fdb_port "$(host_ns $1)" $MAC); _q=$(fdb_port "$_o" $MAC)
    FDB_OK=false; [ "$_p" = "$2" ] && [ "$_q" = "$_v" ] && FDB_OK=true
    [ $FDB_OK = true ] || warn "bridges: $MAC on '$_p' in $(host_ns $1) (want $2), on '$_q' in $_o (want $_v)"
}
# net_up LOG TAP NS PID: plug a fresh guest's tap, wait for its echo server
# and heartbeats, then start the client.
net_up() {
    plug_tap "$3" "$2"
    wait_line "$1" "ECHOSRV LISTEN" 240 "$4" && wait_hb "$1" 3 240 "$4" || return 1
    client_start || true
}
# jfield FILE KEY: KEY's value in FILE's one flat JSON object (strings unquoted,
# "null" if absent). sed, not Python: Python start-ups are slow in the lab.
jfield() { _v=$(sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\).*/\1/p" "$1" 2>/dev/null | head -n 1); echo "${_v:-null}"; }

ours() { # CASE
    cmd=$(case_cmd "$1")
    curlog=$T/$1.o0.log; cursock=$T/$1.o0.sock
    IN_NS="ip netns exec $H1"
    ours_start "$curlog" "$cursock" "$cmd" --secret-file "$T/secret" --net tap=to0,mac=$MAC $OURS_ARGS; cur=$OPID
    IN_NS=""
    b0=$(now_ms)
    net_up "$curlog" to0 "$H1" $cur || { stop_pid $cur; client_stop; not_run "$1" ours 1 "guest did not come up"; return 1; }
    warn "ours $1: guest up (echo server, 3 heartbeats, client) after $(secs "$(now_ms)" $b0) s"
    i=1; ch=1
    while [ $i -le "$RUNS" ]; do
        PORT=$((PORT + 1)); p0=$(now_ms)
        dlog=$T/$1.o$i.log; dsock=$T/$1.o$i.sock
        d=$((3 - ch)); dip=$(host_ip $d)
        ip netns exec "$(host_ns $d)" $VMM run --name bench --kernel "$K" --cmdline "$cmd" --mem 512M --cpus 2 \
            --incoming $dip:$PORT --secret-file "$T/secret" --net tap=to$i,mac=$MAC \
            --serial "$dlog" --control "$dsock" $OURS_ARGS </dev/null >"$dlog.err" 2>&1 &
        dp=$!; PIDS="$PIDS $dp"
        plug_tap "$(host_ns $d)" to$i
        client_start || true
        n=0
        until grep -q "listening on" "$dlog.err" 2>/dev/null; do
            sleep 0.05; n=$((n + 1))
            [ $n -lt 600 ] && kill -0 $dp 2>/dev/null || { warn "ours: destination did not listen"; cat "$dlog.err" >&2
                stop_pid $dp; stop_pid $cur; client_stop; not_run "$1" ours $i "destination did not listen"; return 1; }
        done
        k=$(hb_count "$curlog")
        # how far the guest workload got (dirtier passes/pages): compare like with like
        warn "ours $1 run $i: source before migrate: $(tr -d '\r' < "$curlog" | grep HEARTBEAT | tail -n 1)"
        mem_snap "$T/mem0"; cpu_snap "$T/cpu0" $cur $dp
        t0=$(now_ms); c0=$(now_s); p1=$t0
        $CTL "$cursock" migrate --to $dip:$PORT $MIG_ARGS >/dev/null || { warn "ours: migrate command failed"; stop_pid $dp
            STATUS=failed emit "$1" ours $i false; stop_pid $cur; client_stop; not_run "$1" ours $((i + 1)) "migrate command failed"; return 1; }
        # One process waits, polling every 100 ms as qmon.py does for QEMU.
        # (A shell loop starting vmm ctl, mv and grep several times a second
        # took about a tenth of the lab's CPU away from the move it timed.)
        TIMEDOUT=0
        $CTL "$cursock" migrate-wait --timeout "$CAP" --json > "$T/ms.json" 2>/dev/null || true
        [ -s "$T/ms.json" ] || echo '{}' > "$T/ms.json"
        if grep -q '"outcome":"succeeded"' "$T/ms.json"; then
            # the source prints its summary line as it sets the outcome and
            # lingers answering migrate-status until quit
            n=0
            until grep -q "migrated to $dip:$PORT: total" "$curlog.err" 2>/dev/null || [ $n -ge 100 ]; do
                sleep 0.05; n=$((n + 1))
            done
            cpu_snap "$T/cpu1" $cur $dp; mem_snap "$T/mem1"; cpu_report ours "$1" $i "$T/cpu0" "$T/cpu1" $cur $dp
            mem_report ours "$1" $i "$T/mem0" "$T/mem1"
            $CTL "$cursock" quit >/dev/null 2>&1 || true
        elif grep -q '"outcome":"none"' "$T/ms.json"; then
            # still running after CAP s
            $CTL "$cursock" migrate-cancel >/dev/null 2>&1 || true
            sleep 1; $CTL "$cursock" migrate-status --json > "$T/ms.json" 2>/dev/null || true
            TIMEDOUT=1
        fi
        sum=$(grep "migrated to $dip:$PORT: total" "$curlog.err" 2>/dev/null || true)
        slog=$curlog; p2=$(now_ms)
        if [ -n "$sum" ]; then
            wait $cur 2>/dev/null || warn "ours: source exit status $? after success"
            tot=$(echo "$sum" | sed -n 's/.*total \([0-9]*\) ms.*/\1/p')
            dt=$(echo "$sum" | sed -n 's/.*downtime \([0-9]*\) ms.*/\1/p')
            rounds=$(echo "$sum" | sed -n 's/.*, \([0-9]*\) rounds.*/\1/p')
            bytes=$(echo "$sum" | sed -n 's/.*rounds, \([0-9]*\) bytes sent.*/\1/p')
            if wait_hb "$dlog" 2 120 $dp; then
                client_gap "$c0"; fdb_check $d to$i
                emit "$1" ours $i true "$tot" "$dt" "$bytes" "$rounds" \
                    "$(gap "$curlog" $((k - 1)) "$dlog" mono)" "$(gap "$curlog" $((k - 1)) "$dlog" t)" \
                    "$CGAP" "$COK" "$FDB_OK"
            else
                warn "ours: destination does not run the guest"; STATUS=failed emit "$1" ours $i false "$tot" "$dt" "$bytes" "$rounds"
                stop_pid $dp; client_stop; not_run "$1" ours $((i + 1)) "destination does not run the guest"; return 1
            fi
            cur=$dp; curlog=$dlog; cursock=$dsock; ch=$d
        else
            warn "ours: $1 run $i did not complete: $(cat "$T/ms.json")"
            r=$(jfield "$T/ms.json" round); [ "$r" = null ] || r=$((r + 1))
            kill -0 $cur 2>/dev/null || { warn "ours: source died"; tail -n 3 "$curlog.err" >&2; stop_pid $dp; client_stop
                STATUS=failed emit "$1" ours $i false "$(jfield "$T/ms.json" total_ms)" null "$(jfield "$T/ms.json" bytes_sent)" "$r"
                not_run "$1" ours $((i + 1)) "source died"; return 1; }
            st=not_converged; [ $TIMEDOUT = 1 ] && st=timeout
            STATUS=$st emit "$1" ours $i false "$(jfield "$T/ms.json" total_ms)" null "$(jfield "$T/ms.json" bytes_sent)" "$r"
            stop_pid $dp
        fi
        # where the seconds went (source phases, destination load/resume), for humans
        { grep -h "migration phases" "$slog.err"; grep -h "incoming: migration complete" "$dlog.err"; } 2>/dev/null |
            sed "s/^/bench: ours $1 run $i: /" >&2 || true
        run_times ours "$1" $i $p0 $p1 $p2
        i=$((i + 1))
    done
    stop_pid $cur; client_stop
}

qemu_mig() { # CASE best(0|1)
    cmd=$(case_cmd "$1"); who=qemu; [ "$2" = 1 ] && who=qemu-best
    set_best="migrate_set_capability multifd on"
    tune="migrate_set_parameter max-bandwidth 10G"
    dlim="migrate_set_parameter downtime-limit 300"
    tp=tq; [ "$2" = 1 ] && tp=tb
    # same NIC as ours: virtio-net-pci on a tap, userspace virtio (vhost=off), same MAC
    nic() { echo "-netdev tap,id=n0,ifname=$tp$1,script=no,downscript=no,vhost=off -device virtio-net-pci,netdev=n0,mac=$MAC"; }
    curlog=$T/$1.$who.0.log; curmon=$T/$1.$who.0.mon
    IN_NS="ip netns exec $H1"
    qemu_start "$curlog" "$curmon" "$cmd" $(nic 0); cur=$QPID
    IN_NS=""
    b0=$(now_ms)
    net_up "$curlog" ${tp}0 "$H1" $cur || { stop_pid $cur; client_stop; not_run "$1" $who 1 "guest did not come up"; return 1; }
    warn "$who $1: guest up (echo server, 3 heartbeats, client) after $(secs "$(now_ms)" $b0) s"
    i=1; ch=1
    while [ $i -le "$RUNS" ]; do
        PORT=$((PORT + 1)); p0=$(now_ms)
        dlog=$T/$1.$who.$i.log; dmon=$T/$1.$who.$i.mon
        d=$((3 - ch)); dip=$(host_ip $d)
        IN_NS="ip netns exec $(host_ns $d)"
        qemu_start "$dlog" "$dmon" "$cmd" $(nic $i) -incoming defer; dp=$QPID
        IN_NS=""
        plug_tap "$(host_ns $d)" $tp$i
        client_start || true
        dcmds=""; scmds=""
        [ "$2" = 1 ] && { dcmds="$set_best"; scmds="$set_best;$tune;$dlim"; }
        k=$(hb_count "$curlog")
        # how far the guest workload got (dirtier passes/pages): compare like with like
        warn "$who $1 run $i: source before migrate: $(tr -d '\r' < "$curlog" | grep HEARTBEAT | tail -n 1)"
        # one client for the whole move: set-up of both ends, migrate -d (its
        # time is t0, the client gap's window start), wait, cancel at CAP s
        p1=$(now_ms); mem_snap "$T/mem0"; cpu_snap "$T/cpu0" $cur $dp
        res=$($QMON "$curmon" migrate "$CAP" "tcp:$dip:$PORT" "$dmon" "$dcmds" "$scmds" | tail -n 1)
        p2=$(now_ms); cpu_snap "$T/cpu1" $cur $dp; mem_snap "$T/mem1"; cpu_report $who "$1" $i "$T/cpu0" "$T/cpu1" $cur $dp
        mem_report $who "$1" $i "$T/mem0" "$T/mem1"
        echo "$res" > "$T/qm.json"
        st=$(jfield "$T/qm.json" status); c0=$(jfield "$T/qm.json" t0)
        if [ "$st" = completed ] && wait_hb "$dlog" 2 120 $dp; then
            client_gap "$c0"; fdb_check $d $tp$i
            emit "$1" $who $i true "$(jfield "$T/qm.json" total_ms)" "$(jfield "$T/qm.json" downtime_ms)" \
                "$(jfield "$T/qm.json" bytes)" "$(jfield "$T/qm.json" rounds)" \
                "$(gap "$curlog" $((k - 1)) "$dlog" mono)" "$(gap "$curlog" $((k - 1)) "$dlog" t)" \
                "$CGAP" "$COK" "$FDB_OK"
            # not before: killing QEMU's source at "completed" can reset the
            # stream the destination is still reading (seen: a corrupt vring)
            stop_pid $cur
            cur=$dp; curlog=$dlog; curmon=$dmon; ch=$d
        else
            warn "$who: $1 run $i: $res"
            # timeout: not done at CAP s (cancelled) or the monitor stopped answering
            case $st in completed) STATUS=failed;; timeout) STATUS=timeout;; *) STATUS=not_converged;; esac
            emit "$1" $who $i false "$(jfield "$T/qm.json" total_ms)" null "$(jfield "$T/qm.json" bytes)" "$(jfield "$T/qm.json" rounds)"
            STATUS=""
            stop_pid $dp
            # completed but the destination does not run the guest: it is gone
            [ "$st" = completed ] && { stop_pid $cur; client_stop; not_run "$1" $who $((i + 1)) "destination does not run the guest"; return 1; }
            # a source whose monitor no longer answers (QEMU wedged in a cancel) cannot go on
            if [ "$st" = timeout ] && ! $QMON "$curmon" wait-status '^VM status: running' 10 >/dev/null 2>&1; then
                stop_pid $cur; client_stop; not_run "$1" $who $((i + 1)) "source QEMU not running after the cancel"; return 1
            fi
        fi
        run_times $who "$1" $i $p0 $p1 $p2
        i=$((i + 1))
    done
    stop_pid $cur; client_stop
}
qemu() { qemu_mig "$1" 0; }
qemu_best() { qemu_mig "$1" 1; }

# Each (case, VMM) block ends with a {"bench":"part",...} line: when the lab
# dies mid-script, bench/run.sh keeps the rows of finished blocks and reruns
# only the others, passing them over in BENCH_SKIP_PARTS ("idle/ours ...").
for c in ${BENCH_CASES:-idle hot64}; do
    # not $who: qemu_mig sets that global to the row name (qemu-best), and
    # the part name must match BENCH_ONLY's (qemu_best)
    for blk in ${BENCH_ONLY:-ours qemu qemu_best}; do
        case " ${BENCH_SKIP_PARTS:-} " in *" $c/$blk "*) warn "$c/$blk: measured in an earlier lab boot"; continue;; esac
        $blk "$c" || warn "$blk: migrate $c failed"
        printf '{"bench":"part","script":"migrate","part":"%s/%s"}\n' "$c" "$blk"
    done
done
exit 0
