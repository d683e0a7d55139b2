#!/usr/bin/env bash
# stack_overflow.test.sh: C code overflowing a goroutine's stack, as a user builds it.
#
# Proves: an unbounded recursion in plain C on a goroutine hits the stack's guard (a guard region
# on Linux 6.13+, a PROT_NONE page before) and dies by SIGSEGV after the runtime's message
# "goroutine N: stack overflow", alone and among a thousand live goroutines, at the default stack
# size and at small and large USGC_STACK_SIZE.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=tests/runtime/programs/c_stack_overflow.c
ulimit -c 0

if [ ! -f "$BUILD/libusgc.a" ]; then
  echo "SKIP c-stack-overflow: $BUILD/libusgc.a not built"
  exit 0
fi
if ! out=$(gcc -std=c11 -O0 -Wall -Wextra -Werror -Iinclude "$src" "$BUILD/libusgc.a" -lstdc++ -luring -lnuma -pthread -ldl -o "$work/overflow" 2>&1); then
  echo "FAIL c-stack-overflow-builds: ${out//$'\n'/ | }"
  exit 1
fi

expect_overflow() {  # name, environment..., -- arguments...
  local name=$1; shift
  local env=()
  while [ "$1" != -- ]; do env+=("$1"); shift; done
  shift
  # In a subshell whose stderr is dropped: bash's own "Segmentation fault" notice is not ours.
  local status
  status=$(
    env "${env[@]+"${env[@]}"}" timeout 60 "$work/overflow" "$@" >"$work/out" 2>"$work/err"
    echo $?
  ) 2>/dev/null
  if [ "$status" -ne $((128 + 11)) ]; then
    echo "FAIL $name: exit status $status, expected death by SIGSEGV ($(head -c 300 "$work/err" | tr '\n' ' '))"
    failures=$((failures + 1))
  elif ! grep -q 'goroutine [0-9]*: stack overflow' "$work/err"; then
    echo "FAIL $name: no 'goroutine N: stack overflow' message ($(head -c 300 "$work/err" | tr '\n' ' '))"
    failures=$((failures + 1))
  else
    echo "PASS $name"
  fi
}

expect_overflow c-overflow-default-stack --
expect_overflow c-overflow-among-1000-goroutines -- nested
expect_overflow c-overflow-8k-stack USGC_STACK_SIZE=8192 --
expect_overflow c-overflow-1m-stack USGC_STACK_SIZE=1048576 --
exit $((failures > 0))
