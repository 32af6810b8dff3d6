#!/bin/sh
# callgrind.sh - deterministic instruction count of fairsem's uncontended
# fast path (one fairsem_acquire + fairsem_release), independent of timing.
#
#   bench/callgrind.sh [path/to/fairsem-fastpath] [max_slots] [waiters]
#
# Runs the program under callgrind twice (N1 and N2 pairs) and prints
# (Ir(N2) - Ir(N1)) / (N2 - N1): setup, attach and teardown cancel out.
# Then lists the functions that cost most in the larger run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prog=${1:-$here/../build-bench/bench/fairsem-fastpath}
slots=${2:-1}
waiters=${3:-0}
n1=${N1:-2000}
n2=${N2:-12000}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind not found" >&2; exit 1; }
[ -x "$prog" ] || { echo "callgrind.sh: $prog not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
total() { # pairs -> Ir
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$1" "$prog" "$1" "$slots" "$waiters" \
        >/dev/null 2>"$tmp/log.$1" || { cat "$tmp/log.$1" >&2; exit 1; }
    sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$tmp/cg.$1" | head -n 1
}
i1=$(total $n1)
i2=$(total $n2)
per=$(( (i2 - i1) / (n2 - n1) ))
echo "callgrind: max_slots=$slots waiters=$waiters Ir($n1 pairs)=$i1 Ir($n2 pairs)=$i2"
echo "instructions_per_pair=$per"
if command -v callgrind_annotate >/dev/null; then
    echo "--- top functions, $n2 pairs (inclusive setup) ---"
    callgrind_annotate "$tmp/cg.$n2" 2>/dev/null | sed -n '/^Ir/,$p' | head -n 22
fi
