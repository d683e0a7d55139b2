#!/usr/bin/env bash
# code_visibility_gdb.test.sh: gdb names JIT code announced through jitgen/code_visibility (the
# GDB JIT interface), the way it names V8's or LLVM's.
#
# Builds tests/jitgen/programs/visible_jit_code.cpp against libusgc.a and runs it under
# `gdb -batch`, stopped in the C function the JIT code calls back. Proves:
#   - the backtrace names the announced function (`usgc_jit_visible_answer`) between the
#     callback and main, so gdb also unwinds through the JIT frame;
#   - `info symbol` on the JIT frame's pc answers "usgc_jit_visible_answer + N in section .text";
#   - after withdraw_compiled_module the same code is no longer named (gdb dropped the object);
#   - the x86-64 JIT announces what it compiles: stopped in the private allocation's slow path
#     called from compiled code (usgc-run bench/binary_trees.usir), gdb's backtrace names the
#     .usir function (`usir:bottom_up_tree`).
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
names=(gdb-backtrace-names-jit-function gdb-info-symbol-names-jit-function gdb-forgets-withdrawn-jit-function
  gdb-backtrace-names-usir-function-compiled-by-usgc-run)

skip_all() {  # why
  for name in "${names[@]}"; do echo "SKIP $name: $1"; done
  exit 0
}
command -v gdb >/dev/null 2>&1 || skip_all "gdb is not installed (apt-get install gdb)"
[ -f "$BUILD/libusgc.a" ] || skip_all "$BUILD/libusgc.a is not built"

program=$work/visible_jit_code
if ! out=$(g++ -std=c++20 -O1 -g -I. -Iinclude tests/jitgen/programs/visible_jit_code.cpp \
    "$BUILD/libusgc.a" -luring -lnuma -pthread -ldl -o "$program" 2>&1); then
  for name in "${names[@]}"; do echo "FAIL $name: build: ${out//$'\n'/ | }"; done
  exit 1
fi

run_gdb() {  # program arguments...
  timeout 120 gdb -batch -nx -q \
    -ex 'set debuginfod enabled off' -ex 'set pagination off' -ex 'set confirm off' \
    -ex 'break visible_jit_code_breakpoint' -ex 'run' -ex 'bt' -ex 'up' -ex 'info symbol $pc' \
    -ex 'kill' --args "$program" "$@" 2>&1
}

out=$(run_gdb)
flat=${out//$'\n'/ | }
if ! grep -q 'Breakpoint 1, .*visible_jit_code_breakpoint' <<<"$out"; then
  for name in "${names[@]}"; do echo "FAIL $name: gdb did not stop in the callback: $flat"; done
  exit 1
fi
# bt: #0 visible_jit_code_breakpoint, #1 0x... in usgc_jit_visible_answer (), #2 ... main
if grep -qE '^#1 +0x[0-9a-f]+ in usgc_jit_visible_answer ' <<<"$out" &&
   grep -qE '^#2 .* main ' <<<"$out"; then
  echo "PASS gdb-backtrace-names-jit-function"
else
  echo "FAIL gdb-backtrace-names-jit-function: $flat"; failures=$((failures + 1))
fi
if grep -qE '^usgc_jit_visible_answer \+ [0-9]+ in section \.text' <<<"$out"; then
  echo "PASS gdb-info-symbol-names-jit-function"
else
  echo "FAIL gdb-info-symbol-names-jit-function: $flat"; failures=$((failures + 1))
fi

out=$(run_gdb withdraw)
flat=${out//$'\n'/ | }
if grep -q 'Breakpoint 1, .*visible_jit_code_breakpoint' <<<"$out" &&
   ! grep -q 'usgc_jit_visible_answer' <<<"$out" && grep -q 'No symbol matches' <<<"$out"; then
  echo "PASS gdb-forgets-withdrawn-jit-function"
else
  echo "FAIL gdb-forgets-withdrawn-jit-function: $flat"; failures=$((failures + 1))
fi
if [ -x "$BUILD/usgc-run" ]; then
  out=$(USGC_PROCS=1 timeout 120 gdb -batch -nx -q \
    -ex 'set debuginfod enabled off' -ex 'set pagination off' -ex 'set confirm off' \
    -ex 'break usgc_alloc_private_slow' -ex 'run' -ex 'bt 3' -ex 'kill' \
    --args "$BUILD/usgc-run" bench/binary_trees.usir --arg 4 --arg 1 2>&1)
  if grep -qE '^#1 +0x[0-9a-f]+ in usir:bottom_up_tree ' <<<"$out"; then
    echo "PASS gdb-backtrace-names-usir-function-compiled-by-usgc-run"
  else
    echo "FAIL gdb-backtrace-names-usir-function-compiled-by-usgc-run: ${out//$'\n'/ | }"
    failures=$((failures + 1))
  fi
else
  echo "SKIP gdb-backtrace-names-usir-function-compiled-by-usgc-run: $BUILD/usgc-run is not built"
fi
[ "$failures" -eq 0 ]
