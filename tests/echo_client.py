#!/usr/bin/python3
"""TCP echo client for the migration tests: keeps one connection to the
guest's echo server (port 7) and checks every echo until STOPFILE exists.
Usage: echo_client.py STOPFILE HOST CONNECT_TIMEOUT_S IO_TIMEOUT_S
Prints "echo N" per round trip, then "CLIENT ok n=N worst_rtt_ms=MS", or
"CLIENT FAIL: ..." and exit 1 when the connection closes or an echo differs."""
import socket, sys, time, os
stop, host = sys.argv[1], sys.argv[2]
s = socket.create_connection((host, 7), timeout=float(sys.argv[3]))
s.settimeout(float(sys.argv[4]))
n, worst = 0, 0.0
while not os.path.exists(stop):
    msg = ("ping %d\n" % n).encode()
    t0 = time.time()
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(len(msg) - len(got))
        if not d:
            print("CLIENT FAIL: connection closed after %d echoes" % n, flush=True); sys.exit(1)
        got += d
    if got != msg:
        print("CLIENT FAIL: echo mismatch %r != %r" % (got, msg), flush=True); sys.exit(1)
    worst = max(worst, time.time() - t0)
    n += 1
    print("echo %d" % n, flush=True)
    time.sleep(0.2)
print("CLIENT ok n=%d worst_rtt_ms=%d" % (n, worst * 1000), flush=True)
