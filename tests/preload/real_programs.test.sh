#!/usr/bin/env bash
# real_programs.test.sh: runs real programs once without and once with LD_PRELOAD of
# libusgc_preload.so and checks that usgc's malloc changes nothing a program prints or returns.
#
# Proves: usgc is a drop-in malloc for python3 (with pymalloc and with PYTHONMALLOC=malloc),
# sqlite3 (an in-memory database), g++ (compiling a template-heavy file; the assembly must be
# byte-identical) and our own multi-threaded programs (tests/preload/programs: churn,
# producer_consumer, realloc_growth, mt_program, thread_ring, shared_slots), and that the preloaded process really allocates
# through usgc (usgc_malloc_get_stats resolves in the global scope and has counted allocations).
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>" per case; exits non-zero if
# any case failed. Every run is bounded by RUN_TIMEOUT_S (default 120). Nothing asserts on time.
# Environment: BUILD (default build). Run from anywhere; it works from the repository root.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-120}
PRELOAD_LIB="$PWD/$BUILD/libusgc_preload.so"
PROGRAMS_SRC=tests/preload/programs
PROGRAMS_BIN="$BUILD/programs"
PYTHON=/usr/bin/python3
ulimit -c 0  # a crash under test must not leave a core file in the work tree
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }
skip() { echo "SKIP $1: $2"; }

# First line of a file, for a one-line reason.
first_line() { head -n 1 "$1" 2>/dev/null | cut -c1-200; }

describe_status() {  # exit status -> words
  case $1 in
    124) echo "timed out after ${RUN_TIMEOUT_S}s" ;;
    0) echo "exit 0" ;;
    *) if [ "$1" -gt 128 ]; then echo "killed by signal $(($1 - 128)) ($(kill -l $(($1 - 128)) 2>/dev/null))"; else echo "exit $1"; fi ;;
  esac
}

# compare_run NAME COMMAND...: runs COMMAND (stdin from $STDIN_FILE if set) without and with the
# preload library; PASS if both exit 0 and print the same stdout.
compare_run() {
  local name=$1; shift
  local stdin=${STDIN_FILE:-/dev/null}
  timeout "$RUN_TIMEOUT_S" "$@" <"$stdin" >"$work/$name.base.out" 2>"$work/$name.base.err"
  local base_status=$?
  if [ "$base_status" -ne 0 ]; then
    fail "$name" "the run without preload failed ($(describe_status $base_status)): $(first_line "$work/$name.base.err")"
    return
  fi
  timeout "$RUN_TIMEOUT_S" env LD_PRELOAD="$PRELOAD_LIB" "$@" <"$stdin" >"$work/$name.usgc.out" 2>"$work/$name.usgc.err"
  local usgc_status=$?
  if [ "$usgc_status" -ne "$base_status" ]; then
    fail "$name" "under usgc: $(describe_status $usgc_status) (without preload: exit 0); stderr: $(first_line "$work/$name.usgc.err")"
  elif ! cmp -s "$work/$name.base.out" "$work/$name.usgc.out"; then
    fail "$name" "stdout differs under usgc ($(wc -c <"$work/$name.usgc.out") bytes vs $(wc -c <"$work/$name.base.out") without preload; first difference: $(cmp "$work/$name.base.out" "$work/$name.usgc.out" 2>&1 | head -n 1))"
  else
    pass "$name"
  fi
}

# compare_program NAME ARGS...: one of our own programs, built by the Makefile into $BUILD/programs.
compare_program() {
  local name=$1; shift
  if [ ! -x "$PROGRAMS_BIN/$name" ]; then
    fail "$name" "$PROGRAMS_BIN/$name is not built (run make tests)"
    return
  fi
  compare_run "$name" "$PROGRAMS_BIN/$name" "$@"
}

# ---- the preload library must exist and be the allocator of the preloaded process ------------
if [ ! -f "$PRELOAD_LIB" ]; then
  fail preload-library "$BUILD/libusgc_preload.so does not exist (run make)"
  for name in usgc-active python3-churn python3-churn-pythonmalloc sqlite3-memory gxx-templates \
              mt_program churn producer_consumer realloc_growth thread_ring shared_slots; do
    skip "$name" "no preload library"
  done
  exit 1
fi
pass preload-library

# The symbol resolves in the global scope only if libusgc_preload.so is loaded, and a non-zero
# allocation count shows that malloc calls reached usgc. The struct prefix is version 1 of
# usgc_malloc_stats (fields are only ever added at the end); a large buffer leaves room for them.
active_check='
import ctypes, sys
lib = ctypes.CDLL(None)
try:
    get_stats = lib.usgc_malloc_get_stats
except AttributeError:
    print("usgc_malloc_get_stats does not resolve: usgc is not loaded"); sys.exit(1)
buf = (ctypes.c_uint64 * 64)()
buf[0] = 1  # version (uint32 at offset 0, little-endian)
rc = get_stats(ctypes.byref(buf))
malloc_count = buf[5]  # offset 40: uint32 version, uint32 numa_nodes, then 5 uint64 fields
if rc != 0:
    print(f"usgc_malloc_get_stats returned {rc}"); sys.exit(1)
if malloc_count == 0:
    print("usgc counted no allocation in a running python3"); sys.exit(1)
print("active")
'
if [ ! -x "$PYTHON" ]; then
  skip usgc-active "$PYTHON not installed"
else
  out=$(timeout "$RUN_TIMEOUT_S" env LD_PRELOAD="$PRELOAD_LIB" "$PYTHON" -c "$active_check" 2>"$work/active.err")
  status=$?
  if [ "$status" -eq 0 ] && [ "$out" = active ]; then
    pass usgc-active
  else
    fail usgc-active "${out:-$(describe_status $status)}; stderr: $(first_line "$work/active.err")"
  fi
fi

# ---- real programs ---------------------------------------------------------------------------
if [ -x "$PYTHON" ]; then
  compare_run python3-churn "$PYTHON" "$PROGRAMS_SRC/churn.py"
  # Without pymalloc every Python object is a malloc call: a much harder test of the allocator.
  compare_run python3-churn-pythonmalloc env PYTHONMALLOC=malloc "$PYTHON" "$PROGRAMS_SRC/churn.py" 20
else
  skip python3-churn "$PYTHON not installed"
  skip python3-churn-pythonmalloc "$PYTHON not installed"
fi

if command -v sqlite3 >/dev/null; then
  STDIN_FILE="$PROGRAMS_SRC/sqlite.sql" compare_run sqlite3-memory sqlite3 :memory:
else
  skip sqlite3-memory "sqlite3 not installed"
fi

if command -v g++ >/dev/null; then
  # The assembly goes to stdout, so the comparison is of the compiler's whole output.
  compare_run gxx-templates g++ -std=c++20 -O1 -S -frandom-seed=templates -o - "$PROGRAMS_SRC/templates.cpp"
else
  skip gxx-templates "g++ not installed"
fi

compare_program mt_program
compare_program churn
compare_program producer_consumer
compare_program realloc_growth
# Cross-thread frees in batches: a ring where each thread frees the previous one's blocks, and
# short-lived threads freeing blocks of exited threads (checksums must match glibc's run).
compare_program thread_ring 3 300 512 7
compare_program shared_slots 2 20 5000 4000 7

[ "$failures" -eq 0 ]
