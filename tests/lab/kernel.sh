#!/bin/sh
# Fetch and unpack Debian's stock kernel (linux-image-6.1.0-*-amd64) into a cache
# directory, once. Prints the unpacked root on stdout; everything that needs the
# guest/lab kernel or its modules calls this.
#   VMLAB_CACHE  cache dir (default /var/cache/vmlab)
# Output: the directory holding boot/vmlinuz-* and lib/modules/*/.
set -eu
CACHE=${VMLAB_CACHE:-/var/cache/vmlab}
ROOT=$CACHE/root
if ls "$ROOT"/boot/vmlinuz-* >/dev/null 2>&1 && [ -f "$ROOT/.complete" ]; then
    echo "$ROOT"; exit 0
fi
mkdir -p "$CACHE" 2>/dev/null || { echo "kernel.sh: cannot create $CACHE (run as root or set VMLAB_CACHE to a writable dir)" >&2; exit 1; }
PKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-6/{print $2; exit}')
if [ -z "$PKG" ]; then
    echo "kernel.sh: cannot find Debian's linux-image-6.1.0-*-amd64 (apt-cache depends linux-image-amd64 gave nothing; run 'apt-get update')" >&2
    exit 1
fi
cd "$CACHE"
rm -f ./*.deb
if ! apt-get download "$PKG" >/dev/null 2>"$CACHE/download.err"; then
    echo "kernel.sh: apt-get download $PKG failed: $(tail -1 "$CACHE/download.err") (check Debian's apt registry is reachable, then 'apt-get update')" >&2
    exit 1
fi
rm -rf "$ROOT.tmp"
dpkg-deb -x ./"$PKG"_*.deb "$ROOT.tmp" || { echo "kernel.sh: dpkg-deb -x failed (disk full?)" >&2; exit 1; }
rm -rf "$ROOT"; mv "$ROOT.tmp" "$ROOT"; rm -f ./*.deb
touch "$ROOT/.complete"
echo "$ROOT"
