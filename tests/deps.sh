#!/bin/sh
# Install every Debian package the build, the tests, the lab and the benchmarks
# need. Idempotent: installs only what is missing; quiet when all is present.
set -eu
PKGS="build-essential gcc make clang pkg-config libev-dev libprotobuf-c-dev protobuf-c-compiler
liblz4-dev libibverbs-dev ibverbs-providers libsystemd-dev libcmocka-dev libssl-dev
qemu-system-x86 qemu-utils busybox-static cpio iproute2 kmod xz-utils gzip procps psmisc
libclang-rt-14-dev python3 iputils-ping gnuplot-nox iperf3"
if [ "$(id -u)" != 0 ]; then
    echo "deps: must run as root to install packages (try: sudo make deps)" >&2
    exit 1
fi
MISSING=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || MISSING="$MISSING $p"
done
if [ -n "$MISSING" ]; then
    echo "deps: installing:$MISSING"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends $MISSING >/tmp/deps-apt.log 2>&1 || {
        apt-get update >/tmp/deps-apt-update.log 2>&1 || true
        apt-get install -y --no-install-recommends $MISSING >/tmp/deps-apt.log 2>&1 || {
            echo "deps: apt-get install failed (see /tmp/deps-apt.log): $(tail -1 /tmp/deps-apt.log)" >&2; exit 1; }
    }
fi
# The guest/lab kernel: Debian's stock linux-image, unpacked once into a cache.
"$(dirname "$0")/lab/kernel.sh" >/dev/null
