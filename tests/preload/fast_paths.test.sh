#!/usr/bin/env bash
# fast_paths.test.sh: the free fast path as a program sees it under LD_PRELOAD, counted exactly
# (ptrace single-stepping: tests/preload/programs/free_cost_profiled.cpp, heap profile off).
#
# Proves: a program's free() of a small block it owns costs the program's PLT jump, the call and
# the free fast path inline in the preload library's free (alloc/preload/interpose.cpp), no jump to
# usgc_free and no PLT jump of the library's own (26 instructions: the budget below; it was 29
# with free() calling usgc_free); and that every one of those frees took the fast path.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on a failure.
# Environment: BUILD (default build), MODE (the budget holds for optimized builds only).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
PRELOAD_LIB="$PWD/$BUILD/libusgc_preload.so"
PROGRAM="$PWD/$BUILD/programs/free_cost_profiled"
kPreloadFreeBudget=26
failures=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }
skip() { echo "SKIP $1: $2"; }

if [ ! -x "$PROGRAM" ]; then skip preload-free-fast-path "programs not built"; exit 0; fi
case "${MODE:-release}" in
  release) ;;
  *) skip preload-free-fast-path "MODE=$MODE: the budget is for optimized builds"; exit 0 ;;
esac
for size in 32 48; do
  line=$(LD_PRELOAD="$PRELOAD_LIB" "$PROGRAM" 500 "$size" 2>&1)
  code=$?
  fast=$(sed -n 's/.* fast_instructions=\([0-9]*\).*/\1/p' <<<"$line")
  slow=$(sed -n 's/.* slow_frees=\([0-9]*\).*/\1/p' <<<"$line")
  if [ $code = 2 ]; then
    skip "preload-free-fast-path-$size" "cannot trace: $(head -c 200 <<<"$line")"
  elif [ $code != 0 ] || [ -z "$fast" ]; then
    fail "preload-free-fast-path-$size" "exit $code: $(head -c 300 <<<"$line")"
  elif [ "$fast" -gt "$kPreloadFreeBudget" ]; then
    fail "preload-free-fast-path-$size" "free() took $fast instructions, budget $kPreloadFreeBudget: $line"
  elif [ "$slow" -gt 5 ]; then
    # A few frees may leave the fast path (a page retired as it empties); all 500 are in 2 pages.
    fail "preload-free-fast-path-$size" "$slow of 500 frees left the fast path: $line"
  else
    pass "preload-free-fast-path-$size"
  fi
done
[ "$failures" -eq 0 ]
