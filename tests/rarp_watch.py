#!/usr/bin/python3
"""rarp_watch.py IFACE OUTFILE SECONDS: print to OUTFILE one line
'RARP src=MAC sender=MAC target=MAC op=N' per RARP frame (ethertype 0x8035)
seen on IFACE within SECONDS, then exit (0 if any was seen, 1 if none).
Used to check the VMM's own RARP after a migration (guests send ARP, never
RARP, so a RARP with the guest's MAC can only come from the VMM)."""
import socket
import sys
import time

ETH_P_RARP = 0x8035


def mac(b):
    return ":".join("%02x" % x for x in b)


def main():
    iface, out, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_RARP))
    s.bind((iface, ETH_P_RARP))
    end = time.time() + secs
    seen = 0
    with open(out, "w", buffering=1) as f:
        print("watching", iface, file=f)
        while time.time() < end:
            s.settimeout(max(0.1, end - time.time()))
            try:
                fr = s.recv(2048)
            except socket.timeout:
                break
            if len(fr) < 42:
                continue
            op = int.from_bytes(fr[20:22], "big")
            print("RARP src=%s sender=%s target=%s op=%d" % (mac(fr[6:12]), mac(fr[22:28]), mac(fr[32:38]), op), file=f)
            seen += 1
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
