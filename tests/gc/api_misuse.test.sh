#!/usr/bin/env bash
# api_misuse.test.sh: misuses of the GC API's stores stop the process with a message naming the
# call, never a bare SIGSEGV or a silent store (tests/gc/programs/api_misuse.c, public headers,
# linked against libusgc.a).
#
# Proves: usgc_write into a pointer that is no GC object, a field outside the target,
# usgc_write_bulk on NULL or past the object's end, usgc_array_write on NULL or a foreign pointer,
# usgc_global_store into a NULL slot each abort (SIGABRT) with "usgc: <call>: ..." on stderr, with
# the inline fast path as it is; usgc_write(NULL, ...) does too when the embedder builds with
# -DUSGC_CHECKED; a plain build keeps the inline fast path unchanged, so it faults on the header
# read (SIGSEGV) and the fault handler prints a line naming the GC calls that read a header.
# Prints "PASS <name>" or "FAIL <name>: <why>" per case; exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=tests/gc/programs/api_misuse.c

for variant in plain checked; do
  flags=""
  [ "$variant" = checked ] && flags="-DUSGC_CHECKED"
  if ! gcc -std=c11 -Wall -Wextra -Werror -O1 $flags -Iinclude "$src" "$BUILD/libusgc.a" -lstdc++ -luring -lnuma \
       -pthread -ldl -o "$work/misuse-$variant" 2>"$work/build.err"; then
    echo "FAIL builds-$variant: $(head -c 400 "$work/build.err")"; exit 1
  fi
done

# expect VARIANT CASE PATTERN: the case dies by SIGABRT with a line matching PATTERN.
expect() {
  local variant=$1 case_name=$2 pattern=$3
  # Through an inner shell (that does not exec), so its "Aborted" report goes to the err file.
  bash -c 'timeout 30 "$@"; exit $?' misuse "$work/misuse-$variant" "$case_name" >"$work/out" 2>"$work/err"
  local status=$?
  if [ $status -ne 134 ]; then
    echo "FAIL $variant-$case_name: exit $status (want SIGABRT): $(head -c 300 "$work/out") $(head -c 300 "$work/err")"
    failures=$((failures + 1))
  elif ! grep -qE -- "$pattern" "$work/err"; then
    echo "FAIL $variant-$case_name: no '$pattern' in: $(head -c 300 "$work/err")"; failures=$((failures + 1))
  else
    echo "PASS $variant-$case_name"
  fi
}

expect plain write-foreign '^usgc: usgc_write: 0x[0-9a-f]+ is not a GC object \(header ffffffffffffffff names no registered type\)'
expect plain write-field-outside '^usgc: usgc_write: 1 field\(s\) from 0x[0-9a-f]+ are not inside object 0x[0-9a-f]+ \(type Node, 24 bytes\)'
expect plain write-bulk-null '^usgc: usgc_write_bulk: the target object is NULL'
expect plain write-bulk-overrun '^usgc: usgc_write_bulk: 4 field\(s\) from 0x[0-9a-f]+ are not inside object'
expect plain array-write-null '^usgc: usgc_array_write: the target object is NULL'
expect plain array-write-foreign '^usgc: usgc_array_write: 0x[0-9a-f]+ is not a GC object'
expect plain global-store-null '^usgc: usgc_global_store: the slot is NULL'
# Plain build: the inline fast path faults on the header of NULL; the fault handler names it.
timeout 30 bash -c '"$@"; exit $?' misuse "$work/misuse-plain" write-null >"$work/out" 2>"$work/err"
status=$?
if [ $status -eq 139 ] && grep -qE '^usgc: fault at 0xfffffffffffff[0-9a-f]{3}: the header of a NULL object was read: a GC call \(usgc_write' "$work/err"; then
  echo "PASS plain-write-null-fault-named"
else echo "FAIL plain-write-null-fault-named: exit $status: $(head -c 300 "$work/err")"; failures=$((failures + 1)); fi
expect checked write-null '^usgc: usgc_write: the target object is NULL \(field 0x[0-9a-f]+\)'
expect checked write-foreign '^usgc: usgc_write: 0x[0-9a-f]+ is not a GC object'
expect checked write-field-outside '^usgc: usgc_write: 1 field\(s\) from'

[ "$failures" -eq 0 ]
