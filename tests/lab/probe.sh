#!/bin/sh
# Decide where KVM tests run: "direct" (this machine's /dev/kvm) or "nested"
# (the lab: QEMU TCG with emulated SVM, kvm-amd inside). Prints one line on
# stdout, "direct" or "nested", and the reason on stderr.
#   LAB=direct|nested forces the choice.
#   PROBE_TIMEOUT (default 20 s): a probe Linux guest under QEMU-KVM must reach
#   its /init within this time for "direct" to be chosen; on some machines
#   /dev/kvm exists yet Linux hangs in its decompressor.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
case "${LAB:-}" in
direct|nested) echo "probe: LAB=$LAB forced" >&2; echo "$LAB"; exit 0;;
"") ;;
*) echo "probe: LAB must be 'direct' or 'nested', not '$LAB'" >&2; exit 2;;
esac
if ! [ -c /dev/kvm ] || ! : < /dev/kvm 2>/dev/null; then
    echo "probe: /dev/kvm missing or not openable -> nested lab" >&2; echo nested; exit 0
fi
KROOT=$("$HERE/kernel.sh")
VMLINUZ=$(ls "$KROOT"/boot/vmlinuz-* | head -1)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/r/bin"; cp /bin/busybox "$T/r/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox echo PROBE-INIT-REACHED\n/bin/busybox poweroff -f\n' > "$T/r/init"
chmod +x "$T/r/init"
(cd "$T/r" && find . | cpio -o -H newc 2>/dev/null) | gzip -1 > "$T/probe.cpio.gz"
TO=${PROBE_TIMEOUT:-20}
start=$(date +%s)
timeout "$TO" qemu-system-x86_64 -accel kvm -cpu host -m 256 -nographic -no-reboot -nic none \
    -kernel "$VMLINUZ" -initrd "$T/probe.cpio.gz" -append "console=ttyS0 quiet panic=-1" \
    </dev/null > "$T/out" 2>&1 || true
if grep -q PROBE-INIT-REACHED "$T/out"; then
    echo "probe: a Linux guest reached /init under KVM in $(( $(date +%s) - start )) s -> direct" >&2
    echo direct
else
    echo "probe: /dev/kvm opens but a Linux guest did not reach /init within ${TO} s -> nested lab" >&2
    echo nested
fi
