#!/usr/bin/env bash
# install_deps.test.sh: tools/install-deps.sh never fails the build for a missing optional tool.
#
# Proves, with a PATH where clang, clang-format, valgrind, tmux, sqlite3 and gnuplot are absent
# and apt-get/sudo are stubs that always fail (exit 100, as without network):
#   - the build check exits 0 and prints one "optional <pkg> is not installed: ..." line per
#     absent tool, saying what is skipped;
#   - a missing required package (a copy of the script with one more entry in build_required)
#     stops with exit 1 and "cannot build: missing required packages <pkg>";
#   - a missing benchmark package stops `install-deps.sh bench` (exit 1) but only notes it for a
#     plain build (exit 0).
# Prints "PASS <name>" or "FAIL <name>: <why>"; exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A bin directory with the tools the script itself uses, and failing package managers.
mkdir -p "$work/bin"
for tool in bash env sort id cat echo sleep true; do
  path=$(command -v "$tool") && ln -s "$path" "$work/bin/$tool"
done
for stub in apt-get sudo; do
  printf '#!/bin/sh\necho "E: %s is failing (test stub)" >&2\nexit 100\n' "$stub" >"$work/bin/$stub"
  chmod +x "$work/bin/$stub"
done
run() { env -i HOME="$HOME" PATH="$work/bin" bash "$@"; }

run tools/install-deps.sh >"$work/out" 2>"$work/err"
status=$?
if [ $status -ne 0 ]; then echo "FAIL optional-tools-missing: exit $status: $(cat "$work/err")"; failures=$((failures + 1))
else
  ok=1
  for pkg in clang clang-format valgrind tmux; do
    grep -q "^usgc: optional $pkg is not installed: .*skipped" "$work/err" || { ok=0; why="no line for $pkg"; }
  done
  if [ $ok = 1 ]; then echo "PASS optional-tools-missing"; else echo "FAIL optional-tools-missing: $why: $(cat "$work/err")"; failures=$((failures + 1)); fi
fi

# A required package that cannot be installed.
sed 's|^  \[g++\]=/usr/bin/g++$|&\n  [usgc-test-required]=/nonexistent/usgc-test-required|' tools/install-deps.sh >"$work/required.sh"
grep -q usgc-test-required "$work/required.sh" || { echo "FAIL required-missing: could not add the entry"; exit 1; }
run "$work/required.sh" >"$work/out" 2>"$work/err"
status=$?
if [ $status -eq 1 ] && grep -q "^usgc: cannot build: missing required packages usgc-test-required " "$work/err"; then
  echo "PASS required-missing-stops"
else echo "FAIL required-missing-stops: exit $status: $(cat "$work/err")"; failures=$((failures + 1)); fi

# A benchmark package that cannot be installed.
sed 's|^  \[libgc-dev\]=.*$|&\n  [usgc-test-bench]=/nonexistent/usgc-test-bench|' tools/install-deps.sh >"$work/bench.sh"
run "$work/bench.sh" >"$work/out" 2>"$work/err"
status=$?
if [ $status -eq 0 ] && grep -q "benchmark dependencies missing: usgc-test-bench" "$work/err"; then echo "PASS bench-missing-build-goes-on"
else echo "FAIL bench-missing-build-goes-on: exit $status: $(cat "$work/err")"; failures=$((failures + 1)); fi
run "$work/bench.sh" bench >"$work/out" 2>"$work/err"
status=$?
if [ $status -eq 1 ] && grep -q "cannot build the benchmarks: missing usgc-test-bench" "$work/err"; then echo "PASS bench-missing-stops-bench"
else echo "FAIL bench-missing-stops-bench: exit $status: $(cat "$work/err")"; failures=$((failures + 1)); fi

[ "$failures" -eq 0 ]
