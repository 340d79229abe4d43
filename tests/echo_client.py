#!/usr/bin/python3
"""TCP echo client for the migration tests and bench/migrate.sh: keeps one
connection to the guest's echo server (port 7) and checks every echo until
STOPFILE exists.
Usage: echo_client.py STOPFILE HOST CONNECT_TIMEOUT_S IO_TIMEOUT_S [INTERVAL_MS]
One small request every INTERVAL_MS (default 200) ms, measured from the
previous request's send (a late reply is followed at once by the next send).
Prints "echo N" per round trip (with INTERVAL_MS: "echo N t=EPOCH_S", the
wall-clock time of the reply, for bench/migrate.sh's per-migration window), then "CLIENT ok n=N worst_rtt_ms=MS
max_gap_ms=G", or "CLIENT FAIL: ... max_gap_ms=G" and exit 1 when the
connection closes, an echo differs or no reply comes within IO_TIMEOUT_S.
max_gap_ms is the largest time between consecutive successful replies (on a
failure it includes the time from the last reply to the failure): what a user
of the guest's service feels during a migration."""
import socket, sys, time, os
stop, host = sys.argv[1], sys.argv[2]
stamp = len(sys.argv) > 5
interval = float(sys.argv[5]) / 1000 if stamp else 0.2
s = socket.create_connection((host, 7), timeout=float(sys.argv[3]))
s.settimeout(float(sys.argv[4]))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
n, worst, gap, last = 0, 0.0, 0.0, None


def fail(why):
    g = max(gap, time.monotonic() - last) if last is not None else 0.0
    print("CLIENT FAIL: %s after %d echoes max_gap_ms=%d t=%.3f" % (why, n, g * 1000, time.time()), flush=True)
    sys.exit(1)


nxt = time.monotonic()
while not os.path.exists(stop):
    msg = ("ping %d\n" % n).encode()
    t0 = time.monotonic()
    try:
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            d = s.recv(len(msg) - len(got))
            if not d:
                fail("connection closed")
            got += d
    except OSError as e:  # socket.timeout included
        fail("%s" % (e or type(e).__name__))
    if got != msg:
        fail("echo mismatch %r != %r" % (got, msg))
    t1 = time.monotonic()
    worst = max(worst, t1 - t0)
    if last is not None:
        gap = max(gap, t1 - last)
    last = t1
    n += 1
    if stamp:
        print("echo %d t=%.3f" % (n, time.time()), flush=True)
    else:
        print("echo %d" % n, flush=True)
    nxt = max(nxt + interval, t1)
    if nxt > t1:
        time.sleep(nxt - t1)
print("CLIENT ok n=%d worst_rtt_ms=%d max_gap_ms=%d" % (n, worst * 1000, gap * 1000), flush=True)
