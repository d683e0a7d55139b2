#!/usr/bin/env bash
# usgc_text.test.sh: every instruction of libusgc lies in its usgc_text section.
#
# Asynchronous safepoints never stop a thread whose program counter is in usgc's own code
# (safepoint/code_ranges.hpp), which the build moves into the section usgc_text. Code the
# compiler emits in other sections — COMDAT copies of inline and template functions
# (.text.<symbol>), .text.unlikely parts — would count as program code, and a thread stopped or
# preempted there (holding a runtime lock, say) could deadlock its P. Proves: no member of
# libusgc.a has a .text* section left, and the lock's contended path is in usgc_text.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
lib=$BUILD/libusgc.a
if [ ! -f "$lib" ] || ! command -v objdump >/dev/null; then
  echo "SKIP no-code-outside-usgc-text: $lib or objdump missing"
  exit 0
fi
failures=0
left=$(objdump -h "$lib" | awk '$2 ~ /^\.text/ {print $2}' | sort -u)
if [ -z "$left" ]; then
  echo "PASS no-code-outside-usgc-text"
else
  echo "FAIL no-code-outside-usgc-text: $(echo "$left" | head -5 | tr '\n' ' ')"
  failures=$((failures + 1))
fi
section=$(objdump -t "$lib" | awk '/futex_mutex_lock_contended/ {print $4; exit}')
if [ "$section" = usgc_text ]; then
  echo "PASS lock-slow-path-in-usgc-text"
else
  echo "FAIL lock-slow-path-in-usgc-text: futex_mutex_lock_contended is in '${section:-nowhere}'"
  failures=$((failures + 1))
fi
exit $((failures > 0))
