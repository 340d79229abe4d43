#!/bin/sh
# Usage: bench/mkinitrd.sh BASE.cpio.gz OUT.cpio.gz
# The I/O benchmark's guest initramfs: the Linux test guest's initramfs
# (BASE, unchanged) followed by a second gzip'd cpio archive holding Debian's
# /usr/bin/iperf3 as /bin/iperf3 plus the shared libraries ldd names, at the
# same paths (the kernel unpacks concatenated archives in order). Both VMMs
# boot this same file. Needs iperf3 (make deps installs it).
set -eu
BASE=$1 OUT=$2
IPERF=$(command -v iperf3 || true)
[ -n "$IPERF" ] || { echo "mkinitrd: iperf3 missing (apt-get install iperf3, or: make deps)" >&2; exit 1; }
[ -f "$BASE" ] || { echo "mkinitrd: no base initramfs $BASE (run: make guests)" >&2; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T" "$OUT.tmp.$$"' EXIT
mkdir -p "$T/bin"
cp "$IPERF" "$T/bin/iperf3"
# ldd lines: "libx.so.N => /path (0x..)" and "/lib64/ld-linux-x86-64.so.2 (0x..)".
ldd "$IPERF" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' > "$T/libs"
[ -s "$T/libs" ] || { echo "mkinitrd: ldd found no libraries for $IPERF" >&2; exit 1; }
while read -r l; do
    mkdir -p "$T$(dirname "$l")"
    cp -L "$l" "$T$l"   # the soname path, dereferenced: no dangling symlinks
done < "$T/libs"
rm "$T/libs"
# Run it once in a chroot of the overlay alone: every library it needs is there.
if ! chroot "$T" /bin/iperf3 --version >/dev/null 2>&1; then
    echo "mkinitrd: iperf3 does not start from the overlay (missing library?)" >&2; exit 1
fi
mkdir -p "$(dirname "$OUT")"
cp "$BASE" "$OUT.tmp.$$"
(cd "$T" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -6 >> "$OUT.tmp.$$"
mv "$OUT.tmp.$$" "$OUT"
