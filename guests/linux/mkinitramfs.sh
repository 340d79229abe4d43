#!/bin/sh
# Usage: mkinitramfs.sh OUT.cpio.gz [BINDIR]
# Builds the Linux test guest's initramfs: static busybox, guests/linux/init as
# /init, the static test programs (dirtier, echosrv, diskcheck, blkperf) from BINDIR
# (default: the directory of OUT), and the virtio modules with their
# dependencies under /lib/modules/, load order in /lib/modules/modules.list.
# The kernel comes from the cache tests/lab/kernel.sh fills (make deps); this
# script never touches the network.
#   VMLAB_CACHE        kernel cache dir (default /var/cache/vmlab)
#   GUEST_MODULES      modules to include (default below)
set -eu
OUT=$1
BIN=${2:-$(dirname "$OUT")}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
MODS=${GUEST_MODULES:-virtio virtio_ring virtio_pci virtio_net virtio_blk virtio_rng virtio_balloon}
KROOT=${VMLAB_CACHE:-/var/cache/vmlab}/root
if ! ls "$KROOT"/boot/vmlinuz-* >/dev/null 2>&1 || [ ! -f "$KROOT/.complete" ] || [ ! -d "$KROOT/lib/modules" ]; then
    echo "mkinitramfs: no unpacked guest kernel in $KROOT; run 'make deps' first (it runs tests/lab/kernel.sh)" >&2
    exit 1
fi
BB=/bin/busybox
if [ ! -x "$BB" ] || ! "$BB" --list >/dev/null 2>&1 || { ! file "$BB" 2>/dev/null | grep -q static && ldd "$BB" >/dev/null 2>&1; }; then
    echo "mkinitramfs: need a static /bin/busybox (apt-get install busybox-static, or: make deps)" >&2
    exit 1
fi
for p in dirtier echosrv diskcheck blkperf; do
    [ -x "$BIN/$p" ] || { echo "mkinitramfs: missing $BIN/$p (build it first: make guests)" >&2; exit 1; }
done
T=$(mktemp -d); trap 'rm -rf "$T" "$OUT.tmp.$$"' EXIT
mkdir -p "$T/bin" "$T/lib/modules" "$T/proc" "$T/sys" "$T/dev" "$T/tmp" "$T/root"
cp "$BB" "$T/bin/busybox"
ln -s busybox "$T/bin/sh"
cp "$HERE/init" "$T/init"; chmod 755 "$T/init"
for p in dirtier echosrv diskcheck blkperf; do cp "$BIN/$p" "$T/bin/$p"; strip "$T/bin/$p" 2>/dev/null || true; done
"$TOP/tests/lab/modules.sh" "$KROOT" $MODS > "$T/paths"
: > "$T/lib/modules/modules.list"
while read -r p; do
    b=$(basename "$p"); cp "$p" "$T/lib/modules/$b"; echo "$b" >> "$T/lib/modules/modules.list"
done < "$T/paths"
rm "$T/paths"
(cd "$T" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$OUT.tmp.$$"
mv "$OUT.tmp.$$" "$OUT"   # atomic: a concurrent build or boot never sees a partial file
