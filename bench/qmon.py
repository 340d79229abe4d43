#!/usr/bin/env python3
"""Tiny QEMU HMP client for the benchmarks (no socat needed).
usage:
  qmon.py SOCK cmd 'HMP COMMAND' ...      run commands, print their output
  qmon.py SOCK wait-status REGEX TIMEOUT  poll 'info status' until REGEX matches
  qmon.py SOCK restore TIMEOUT            wait-status '(paused|running)', then
                                          'cont' (one client for a restore)
  qmon.py SOCK wait-migrate TIMEOUT       poll 'info migrate' until completed or
                                          failed (or TIMEOUT s: migrate_cancel);
                                          prints one JSON object:
  {"status":..,"total_ms":..,"downtime_ms":..,"bytes":..,"rounds":..}
  qmon.py SOCK migrate TIMEOUT URI DSOCK 'DCMD;..' 'SCMD;..'
                                          one client for a whole move: DCMDs on
                                          the destination's monitor DSOCK, then
                                          'migrate_incoming URI' there, SCMDs on
                                          the source (SOCK), 'migrate -d URI',
                                          then as wait-migrate; the JSON also
                                          has "t0": epoch s of the migrate command
QMON_READY=FILE: create FILE when started, before connecting.
Waits up to 30 s for SOCK to accept. No reply within 30 s (a wedged monitor)
ends the wait: status "timeout" (commands: exit 1). Exit 0 ok, 1 timeout/failure.
One process per move matters in the nested lab, where Python start-ups are
slow (/ is a 9p share)."""
import json, os, re, socket, sys, time

IO_TIMEOUT = 30.0   # a monitor that does not answer in this time is wedged


class Hmp:
    def __init__(self, path, wait=30.0):
        end = time.time() + wait
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > end:
                    raise
                time.sleep(0.05)
        self.s.settimeout(IO_TIMEOUT)
        self.buf = b""
        self._prompt()

    def _prompt(self):
        while not self.buf.endswith(b"(qemu) "):
            d = self.s.recv(65536)
            if not d:
                raise EOFError("monitor closed")
            self.buf += d
        out, self.buf = self.buf, b""
        return out.decode(errors="replace")

    def cmd(self, c):
        self.s.sendall(c.encode() + b"\n")
        out = self._prompt()
        return out[: -len("(qemu) ")].replace("\r", "").strip()

    def run(self, cmds):
        """Commands in order, each one's output (without HMP's echo) printed."""
        for c in cmds:
            out = self.cmd(c).split("\n", 1)[1:]  # drop HMP's echo of the command
            out = out[0] if out else ""
            if out:
                print(out, flush=True)


def num(pat, text, default=None):
    m = re.search(pat, text, re.M)
    return int(m.group(1)) if m else default


def wait_status(h, rx, timeout):
    rx, end = re.compile(rx, re.M), time.time() + float(timeout)
    while time.time() < end:
        if rx.search(h.cmd("info status")):
            return True
        time.sleep(0.02)
    return False


def wait_migrate(h, timeout, extra):
    """Poll until the migration ends or TIMEOUT s passed (then cancel); print
    the JSON result. A wedged monitor (no reply in IO_TIMEOUT s) is a timeout."""
    end, st, out = time.time() + float(timeout), "none", ""
    done = ("completed", "failed", "cancelled")
    try:
        while True:
            out = h.cmd("info migrate")
            m = re.search(r"^Migration status: (\S+)", out, re.M)
            st = m.group(1) if m else "none"
            if st in done or time.time() > end:
                break
            time.sleep(0.1)
        if st not in done:
            h.cmd("migrate_cancel")
            st = "timeout"
        # QEMU shows "completed" a moment before it has computed the total
        # time and downtime (both read 0 until then): ask again, 2 s at most.
        for _ in range(20):
            if st != "completed" or num(r"^total time: (\d+) ms", out, 0):
                break
            time.sleep(0.1)
            out = h.cmd("info migrate")
    except (OSError, EOFError) as e:   # socket.timeout is an OSError
        print("qmon: monitor: %s" % (e or type(e).__name__), file=sys.stderr)
        st = "timeout"
    r = dict(extra)
    r.update({"status": st,
              "total_ms": num(r"^total time: (\d+) ms", out),
              "downtime_ms": num(r"^downtime: (\d+) ms", out),
              "bytes": (num(r"^transferred ram: (\d+) kbytes", out, 0) or 0) * 1024,
              "rounds": num(r"^dirty sync count: (\d+)", out)})
    print(json.dumps(r), flush=True)
    return 0 if st == "completed" else 1


def main():
    sock, op = sys.argv[1], sys.argv[2]
    # QMON_READY=FILE: created once Python is up, before connecting, so a
    # caller can start the clock (and QEMU) after our start-up, not before
    if os.environ.get("QMON_READY"):
        open(os.environ["QMON_READY"], "w").close()
    try:
        h = Hmp(sock)
        if op == "cmd":
            h.run(sys.argv[3:])
            return 0
        if op == "wait-status":
            return 0 if wait_status(h, sys.argv[3], sys.argv[4]) else 1
        if op == "restore":
            if not wait_status(h, r"^VM status: (paused|running)$", sys.argv[3]):
                return 1
            h.run(["cont"])
            return 0
        if op == "wait-migrate":
            return wait_migrate(h, sys.argv[3], {})
        if op == "migrate":
            timeout, uri, dsock = sys.argv[3], sys.argv[4], sys.argv[5]
            d = Hmp(dsock)
            d.run([c for c in sys.argv[6].split(";") if c] + ["migrate_incoming " + uri])
            h.run([c for c in sys.argv[7].split(";") if c])
            t0 = time.time()
            h.run(["migrate -d " + uri])
            return wait_migrate(h, timeout, {"t0": round(t0, 3)})
    except (OSError, EOFError) as e:
        print("qmon: %s: %s %s" % (sock, op, e or type(e).__name__), file=sys.stderr)
        if op in ("wait-migrate", "migrate"):
            print(json.dumps({"status": "timeout"}), flush=True)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
