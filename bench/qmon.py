#!/usr/bin/env python3
"""Tiny QEMU HMP client for the benchmarks (no socat needed).
usage:
  qmon.py SOCK cmd 'HMP COMMAND' ...      run commands, print their output
  qmon.py SOCK wait-status REGEX TIMEOUT  poll 'info status' until REGEX matches
  qmon.py SOCK wait-migrate TIMEOUT       poll 'info migrate' until completed or
                                          failed (or TIMEOUT s: migrate_cancel);
                                          prints one JSON object:
  {"status":..,"total_ms":..,"downtime_ms":..,"bytes":..,"rounds":..}
Waits up to 30 s for SOCK to accept. Exit 0 ok, 1 timeout/failure."""
import json, re, socket, sys, time


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


def num(pat, text, default=None):
    m = re.search(pat, text, re.M)
    return int(m.group(1)) if m else default


def main():
    sock, op = sys.argv[1], sys.argv[2]
    h = Hmp(sock)
    if op == "cmd":
        for c in sys.argv[3:]:
            out = h.cmd(c).split("\n", 1)[1:]  # drop HMP's echo of the command
            out = out[0] if out else ""
            if out:
                print(out)
        return 0
    if op == "wait-status":
        rx, end = re.compile(sys.argv[3], re.M), time.time() + float(sys.argv[4])
        while time.time() < end:
            if rx.search(h.cmd("info status")):
                return 0
            time.sleep(0.02)
        return 1
    if op == "wait-migrate":
        end = time.time() + float(sys.argv[3])
        while True:
            out = h.cmd("info migrate")
            m = re.search(r"^Migration status: (\S+)", out, re.M)
            st = m.group(1) if m else "none"
            if st in ("completed", "failed", "cancelled") or time.time() > end:
                break
            time.sleep(0.1)
        if st not in ("completed", "failed", "cancelled"):
            h.cmd("migrate_cancel")
            st = "timeout"
        # QEMU shows "completed" a moment before it has computed the total
        # time and downtime (both read 0 until then): ask again, 2 s at most.
        for _ in range(20):
            if st != "completed" or num(r"^total time: (\d+) ms", out, 0):
                break
            time.sleep(0.1)
            out = h.cmd("info migrate")
        r = {"status": st,
             "total_ms": num(r"^total time: (\d+) ms", out),
             "downtime_ms": num(r"^downtime: (\d+) ms", out),
             "bytes": (num(r"^transferred ram: (\d+) kbytes", out, 0) or 0) * 1024,
             "rounds": num(r"^dirty sync count: (\d+)", out)}
        print(json.dumps(r))
        return 0 if st == "completed" else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
