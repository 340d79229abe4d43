#!/usr/bin/python3
"""Print a tap's transmit offloads as the kernel sees them: "IF csum=0|1
tso=0|1" (legacy ETHTOOL_GTXCSUM / ETHTOOL_GTSO through SIOCETHTOOL, no
ethtool binary needed). For a tap these are what its reader (our vmm) told
TUNSETOFFLOAD it can take, i.e. the guest's negotiated GUEST_CSUM/TSO.
Run it in the tap's network namespace. Usage: tap_offloads.py IFNAME"""
import array, fcntl, socket, struct, sys

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM, ETHTOOL_GTSO = 0x16, 0x1e


def get(sock, ifname, cmd):
    val = array.array('I', [cmd, 0])          # struct ethtool_value
    ifr = struct.pack('16sP', ifname.encode(), val.buffer_info()[0])
    ifr += b'\0' * (40 - len(ifr))            # sizeof(struct ifreq)
    fcntl.ioctl(sock, SIOCETHTOOL, ifr)
    return val[1]


s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
name = sys.argv[1]
print("%s csum=%d tso=%d" % (name, get(s, name, ETHTOOL_GTXCSUM), get(s, name, ETHTOOL_GTSO)))
