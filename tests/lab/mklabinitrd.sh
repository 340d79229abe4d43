#!/bin/sh
# Usage: mklabinitrd.sh KROOT OUT.cpio.gz
# Builds the lab's initramfs: static busybox, tests/lab/lab-init as /init, and
# the kernel modules the lab needs (KVM for AMD SVM, 9p over virtio-pci for the
# host's files, and the networking pieces tests use: tun, bridge, veth, sch_plug,
# ifb, ingress mirroring, soft-RoCE), with a load-order list in /modules.list.
set -eu
KROOT=$1; OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
MODS="irqbypass ccp kvm kvm-amd
virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
9pnet 9pnet_virtio netfs fscache 9p
tun bridge veth sch_plug ifb sch_ingress act_mirred cls_matchall
crc32_generic ib_core ib_uverbs udp_tunnel ip6_udp_tunnel rdma_rxe"
BB=$(command -v busybox || true)
[ -x /bin/busybox ] && BB=/bin/busybox
if ! file "$BB" 2>/dev/null | grep -q static && ! ldd "$BB" 2>&1 | grep -q "not a dynamic"; then
    echo "mklabinitrd: need a static busybox (apt-get install busybox-static, or: make deps)" >&2; exit 1
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/lib/modules" "$T/proc" "$T/sys" "$T/dev" "$T/host" "$T/out" "$T/tmp"
cp "$BB" "$T/bin/busybox"
for a in sh mount umount insmod poweroff cat echo mkdir sleep chroot; do ln -s busybox "$T/bin/$a"; done
cp "$HERE/lab-init" "$T/init"; chmod 755 "$T/init"
"$HERE/modules.sh" "$KROOT" $MODS > "$T/paths"
: > "$T/modules.list"
while read -r p; do
    b=$(basename "$p"); cp "$p" "$T/lib/modules/$b"; echo "$b" >> "$T/modules.list"
done < "$T/paths"
rm "$T/paths"
(cd "$T" && find . | cpio -o -H newc 2>/dev/null) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
