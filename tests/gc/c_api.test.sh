#!/usr/bin/env bash
# c_api.test.sh: the garbage-collected heap's public API from a C program and a C++ program, built
# the way a user builds them.
#
# Proves: usgc/usgc.h (with gc.h and object.h) compiles as C99 and C11 and usgc/gc.hpp as C++20
# with -Wall -Wextra -Werror; tools/usgc-process-data.cpp (`make run`) is in the C subset;
# tests/gc/programs/gc_api_example.c links against libusgc.a and libusgc.so and
# gc_api_example.cpp against libusgc.a, and each runs every one of its checks (allocation per
# class, publication points, roots, handles, both kinds of collection, checksums) with success.
# The shared-library run also sets USGC_VERIFY=1 (the heap verifier after every collection). A
# store of a STACK_LOCAL object into a heap object stops the process with a message.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
c_src=tests/gc/programs/gc_api_example.c
cxx_src=tests/gc/programs/gc_api_example.cpp
libs=(-luring -lnuma -pthread -ldl)

check() {  # name, command...
  local name=$1; shift
  if out=$("$@" 2>&1); then echo "PASS $name"; else echo "FAIL $name: ${out//$'\n'/ | }"; failures=$((failures + 1)); fi
}

run_program() {  # name, expected last line (a regex), command...
  local name=$1 expected=$2; shift 2
  local out rc
  out=$(timeout 120 "$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] && [[ "$(tail -n 1 <<<"$out")" =~ $expected ]]; then
    echo "PASS $name"
  else
    echo "FAIL $name: exit $rc: ${out//$'\n'/ | }"; failures=$((failures + 1))
  fi
}

for std in c99 c11; do
  check "gc-headers-compile-as-$std" gcc -std=$std -Wall -Wextra -Werror -Iinclude -c "$c_src" -o "$work/c-$std.o"
done
check "gc-hpp-compiles-as-c++20" g++ -std=c++20 -Wall -Wextra -Werror -Iinclude -c "$cxx_src" -o "$work/cxx.o"
check "process-data-is-c11" gcc -x c -std=c11 -Wall -Wextra -Werror -Iinclude -c tools/usgc-process-data.cpp -o "$work/pd.o"

c_ok='^gc_api_example: [0-9]+ checks, all passed$'
cxx_ok='^gc_api_example_cpp: [0-9]+ checks, all passed$'
if [ -f "$BUILD/libusgc.a" ]; then
  check "c-links-static" gcc -std=c11 -Iinclude "$c_src" "$BUILD/libusgc.a" -lstdc++ "${libs[@]}" -o "$work/c-static"
  [ -x "$work/c-static" ] && run_program "c-runs-static" "$c_ok" "$work/c-static"
  if [ -x "$work/c-static" ]; then
    out=$(ulimit -c 0; timeout 60 "$work/c-static" store-stack-local-into-heap 2>&1); rc=$?
    # stopped on purpose (abort or exit status), not a timeout (124) or a crash (139: SIGSEGV)
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 139 ] && grep -qiE 'stack.local' <<<"$out"; then
      echo "PASS stack-local-into-heap-stops-the-process"
    else
      echo "FAIL stack-local-into-heap-stops-the-process: exit $rc: ${out//$'\n'/ | }"; failures=$((failures + 1))
    fi
  fi
  check "cxx-links-static" g++ -std=c++20 -Iinclude "$cxx_src" "$BUILD/libusgc.a" "${libs[@]}" -o "$work/cxx-static"
  [ -x "$work/cxx-static" ] && run_program "cxx-runs-static" "$cxx_ok" "$work/cxx-static"
else
  echo "SKIP c-links-static: $BUILD/libusgc.a not built"
  echo "SKIP cxx-links-static: $BUILD/libusgc.a not built"
fi
if [ -f "$BUILD/libusgc.so" ]; then
  check "c-links-shared" gcc -std=c11 -Iinclude "$c_src" -L"$BUILD" -lusgc -Wl,-rpath,"$PWD/$BUILD" -o "$work/c-shared"
  [ -x "$work/c-shared" ] && run_program "c-runs-shared-verified" "$c_ok" env USGC_VERIFY=1 "$work/c-shared"
else
  echo "SKIP c-links-shared: $BUILD/libusgc.so not built"
fi
exit $((failures > 0))
