#!/usr/bin/env bash
# Runs every test suite of usgc and ends with one summary line, "usgc-tests: N passed, N failed,
# N skipped", which CI reads. Suites:
#   - GoogleTest binaries (unit tests; preload tests run under LD_PRELOAD=libusgc_preload.so);
#   - script suites tests/**/*.test.sh, each printing "PASS <name>", "FAIL <name>: <why>" or
#     "SKIP <name>: <why>" per case and exiting non-zero if any case failed.
# Environment: BUILD (the build folder, default build), MODE (release, debug, asan, ...).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
passed=0; failed=0; skipped=0
failed_names=()

run_gtest() {  # name, command...
  local name=$1; shift
  local xml; xml=$(mktemp --suffix=.xml)
  local log; log=$(mktemp)
  echo "== $name"
  # The whole log is kept so that a crash or a watchdog abort can be shown with the test that was
  # running; what is printed as it runs is the brief form (failures and the summary).
  "$@" --gtest_output="xml:$xml" > "$log" 2>&1
  local rc=$?
  grep -v -E '^\[ +(RUN|OK) +\]|^\[-+\] [0-9]+ tests? from [A-Za-z]' "$log"
  if [ $rc -ne 0 ]; then
    echo "-- $name exited with $rc; the last lines of its log:"
    tail -n 300 "$log"
  fi
  rm -f "$log"
  if [ -s "$xml" ]; then
    local t f s
    t=$(grep -o '<testsuites [^>]*' "$xml" | grep -o ' tests="[0-9]*"' | grep -o '[0-9]*')
    f=$(grep -o '<testsuites [^>]*' "$xml" | grep -o ' failures="[0-9]*"' | grep -o '[0-9]*')
    s=$(grep -c 'result="skipped"' "$xml")
    passed=$((passed + t - f - s)); failed=$((failed + f)); skipped=$((skipped + s))
    [ "$f" -gt 0 ] && failed_names+=("$name")
  fi
  if [ $rc -ne 0 ] && { [ ! -s "$xml" ] || [ "${f:-0}" -eq 0 ]; }; then
    failed=$((failed + 1)); failed_names+=("$name (exit $rc)")
  fi
  rm -f "$xml"
}

run_script_suite() {  # path
  local script=$1 out
  echo "== $script"
  out=$(mktemp)
  bash "$script" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  local p f s
  p=$(grep -c '^PASS ' "$out"); f=$(grep -c '^FAIL ' "$out"); s=$(grep -c '^SKIP ' "$out")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$f" -gt 0 ]; then failed_names+=("$script"); fi
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); failed_names+=("$script (exit $rc)"); fi
  rm -f "$out"
}

run_gtest unit_tests "$BUILD/tests/unit_tests"
case "${MODE:-release}" in
  asan|tsan)
    # The sanitizer runtimes replace malloc themselves and must come first in the process:
    # preloading usgc over them is not a supported combination. The unit tests above run the
    # allocator under the sanitizer through the usgc_* API instead.
    echo "SKIP preload_tests: MODE=$MODE replaces malloc with the sanitizer's; preload runs in release/debug/ubsan"
    skipped=$((skipped + 1))
    ;;
  *)
    run_gtest preload_tests env LD_PRELOAD="$PWD/$BUILD/libusgc_preload.so" "$BUILD/tests/preload_tests"
    while IFS= read -r script; do
      run_script_suite "$script"
    done < <(find tests -name '*.test.sh' | sort)
    ;;
esac

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed suites: ${failed_names[*]}"
echo "usgc-tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
