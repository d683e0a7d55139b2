#!/usr/bin/env bash
# c_api.test.sh: the goroutine C API from a C program, as a user builds one.
#
# Proves: include/usgc/usgc.h (with runtime.h and safepoint.h) compiles as C99 and C11 with
# -Wall -Wextra -Werror, the README's example links against libusgc.a and libusgc.so and prints
# the value its goroutine sent.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=tests/runtime/programs/readme_example.c

check() {  # name, command...
  local name=$1; shift
  if out=$("$@" 2>&1); then echo "PASS $name"; else echo "FAIL $name: ${out//$'\n'/ | }"; failures=$((failures + 1)); fi
}

for std in c99 c11; do
  check "headers-compile-as-$std" gcc -std=$std -Wall -Wextra -Werror -Iinclude -c "$src" -o "$work/example-$std.o"
done

if [ -f "$BUILD/libusgc.a" ]; then
  check "links-static" gcc -std=c11 -Iinclude "$src" "$BUILD/libusgc.a" -lstdc++ -luring -lnuma -pthread -ldl -o "$work/static"
  if [ -x "$work/static" ]; then
    out=$(timeout 60 "$work/static" 2>&1)
    if [ "$out" = "received 42 ok=1" ]; then echo "PASS runs-static"; else echo "FAIL runs-static: got '$out'"; failures=$((failures + 1)); fi
  fi
else
  echo "SKIP links-static: $BUILD/libusgc.a not built"
fi
if [ -f "$BUILD/libusgc.so" ]; then
  check "links-shared" gcc -std=c11 -Iinclude "$src" -L"$BUILD" -lusgc -Wl,-rpath,"$PWD/$BUILD" -o "$work/shared"
  if [ -x "$work/shared" ]; then
    out=$(timeout 60 "$work/shared" 2>&1)
    if [ "$out" = "received 42 ok=1" ]; then echo "PASS runs-shared"; else echo "FAIL runs-shared: got '$out'"; failures=$((failures + 1)); fi
  fi
else
  echo "SKIP links-shared: $BUILD/libusgc.so not built"
fi
exit $((failures > 0))
