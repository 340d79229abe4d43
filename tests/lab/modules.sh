#!/bin/sh
# Usage: modules.sh KROOT MODULE...
# Prints the .ko paths of the named modules and all their dependencies, in a
# valid load order (dependencies first, each once). Dependencies come from the
# modules' own depends= field (modinfo -F depends), so no depmod is needed.
set -eu
KROOT=$1; shift
MODROOT=$(ls -d "$KROOT"/lib/modules/*/ | head -1)
SEEN=" "
resolve() {
    local m f d
    m=$(echo "$1" | tr - _)
    case "$SEEN" in *" $m "*) return 0;; esac
    f=$(find "$MODROOT" -name "$m.ko" -o -name "$(echo "$m" | tr _ -).ko" | head -1)
    if [ -z "$f" ]; then
        if grep -q "/$m.ko\$\|/$(echo "$m" | tr _ -).ko\$" "$MODROOT/modules.builtin" 2>/dev/null; then
            SEEN="$SEEN$m "; return 0
        fi
        echo "modules.sh: module $m not found under $MODROOT" >&2; exit 1
    fi
    SEEN="$SEEN$m "
    for d in $(modinfo -F depends "$f" | tr , ' '); do resolve "$d"; done
    echo "$f"
}
for m in "$@"; do resolve "$m"; done
