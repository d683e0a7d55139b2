#!/usr/bin/env bash
# footprint_trace.test.sh: USGC_TRACE=footprint as a program sees it under LD_PRELOAD.
#
# Proves: a plain program (tests/preload/programs/shared_slots.cpp: threads that come and go and
# free each other's blocks) run with USGC_TRACE=footprint prints malloc mode's footprint census at
# exit, with figures that hang together (live blocks within the touched part of the pages in use,
# within the pages in use; a resident set at the peak; the peak thread's size classes, each with at
# most its touched part handed out), and its own output is unchanged; without the variable nothing
# is printed.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on a failure.
# Environment: BUILD (default build).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
PRELOAD_LIB="$PWD/$BUILD/libusgc_preload.so"
PROGRAM="$PWD/$BUILD/programs/shared_slots"
failures=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }

if [ ! -x "$PROGRAM" ]; then echo "SKIP footprint-trace: programs not built"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PROGRAM" 2 4 4000 4000 1 >"$work/reference" 2>&1
USGC_TRACE=footprint LD_PRELOAD="$PRELOAD_LIB" "$PROGRAM" 2 4 4000 4000 1 >"$work/out" 2>"$work/err"
code=$?
figure() { sed -n "s/^usgc: footprint: $1=\([0-9]*\) KiB.*/\1/p" "$work/err"; }
resident=$(figure resident)
live=$(figure live_blocks)
in_use=$(figure pages_in_use)
touched=$(figure pages_in_use_touched)
if [ $code != 0 ] || ! cmp -s "$work/reference" "$work/out"; then
  fail footprint-trace-program "exit $code or output differs: $(head -c 300 "$work/err")"
elif [ -z "$resident" ] || [ -z "$live" ] || [ -z "$in_use" ] || [ -z "$touched" ] ||
  ! grep -q "^usgc: footprint: free_pages_dirty=" "$work/err" ||
  ! grep -q "^usgc: footprint: decommit_backlog=" "$work/err"; then
  fail footprint-trace-census "no census on stderr: $(head -c 600 "$work/err")"
elif [ "$resident" -le 0 ] || [ "$live" -le 0 ] || [ "$live" -gt "$touched" ] ||
  [ "$touched" -gt "$in_use" ]; then
  fail footprint-trace-figures "figures do not hang together: resident=$resident live=$live touched=$touched in_use=$in_use"
else
  pass footprint-trace-census
fi
# The peak thread's heap by size class: every class line has at most its touched part handed out.
bad_class=$(sed -n 's/^usgc: footprint: class=\([0-9]*\) pages=\([0-9]*\) touched=\([0-9]*\) KiB handed_out=\([0-9]*\) KiB.*/\1 \2 \3 \4/p' "$work/err" |
  awk '$2 < 1 || $4 > $3 { print; exit }')
if [ -n "$bad_class" ]; then
  fail footprint-trace-classes "a class line does not hang together: $bad_class"
else
  pass footprint-trace-classes
fi

LD_PRELOAD="$PRELOAD_LIB" "$PROGRAM" 2 4 4000 4000 1 >/dev/null 2>"$work/err_off"
if grep -q "footprint" "$work/err_off"; then
  fail footprint-trace-off "a census without USGC_TRACE: $(head -c 200 "$work/err_off")"
else
  pass footprint-trace-off
fi
[ "$failures" -eq 0 ]
