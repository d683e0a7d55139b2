#!/usr/bin/env bash
# Runs every test suite of usgc and ends with one summary line, "usgc-tests: N passed, N failed,
# N skipped", which CI reads. Suites:
#   - GoogleTest binaries (unit tests; preload tests run under LD_PRELOAD=libusgc_preload.so);
#   - script suites tests/**/*.test.sh, each printing "PASS <name>", "FAIL <name>: <why>" or
#     "SKIP <name>: <why>" per case and exiting non-zero if any case failed.
# Environment: BUILD (the build folder, default build), MODE (release, debug, asan, ...),
# UNIT_TEST_SHARDS and UNIT_TEST_SHARD (the unit tests in several processes, below),
# SANITIZER_SCRIPT_SUITES (the script suites asan and tsan run; default below), UBSAN_SCRIPT_SUITES
# (ubsan's); GoogleTest itself
# reads GTEST_FILTER.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
SANITIZER_SCRIPT_SUITES=${SANITIZER_SCRIPT_SUITES:-tests/runtime/self_test.test.sh tests/jitgen/usgc_run.test.sh tests/jitgen/usgc_escape.test.sh}
# UBSan keeps glibc's malloc, so its preload library runs under real programs too; the other
# script suites link libusgc.a into programs of their own without -fsanitize=undefined.
UBSAN_SCRIPT_SUITES=${UBSAN_SCRIPT_SUITES:-$SANITIZER_SCRIPT_SUITES tests/preload/real_programs.test.sh tests/preload/heap_profile.test.sh}
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
  grep -v -E '^\[ +(RUN|OK) +\]|^\[-+\] [0-9]+ tests? from [A-Za-z]|^Note: Google Test filter' "$log"
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

# Sanitizer builds: the options every run gets (tools/sanitizers/README.md says why each is set),
# after the caller's own (a later flag wins). A report fails the run: ThreadSanitizer exits 66
# at the end of a process that had one, AddressSanitizer and UndefinedBehaviorSanitizer stop at
# the first.
sanitizers="$PWD/tools/sanitizers"
case "${MODE:-release}" in
  tsan)
    export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}suppressions=$sanitizers/tsan.supp:second_deadlock_stack=1:history_size=4"
    ;;
  asan)
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}check_initialization_order=1:strict_init_order=1"
    export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$sanitizers/lsan.supp"
    ;;
  ubsan)
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1"
    ;;
esac

# The unit tests run in UNIT_TEST_SHARDS processes, one after another: under the sanitizers one
# process for all of them does not fit in memory (docs/HACKING.md "Sanitizer builds": what
# ThreadSanitizer keeps per process). A shard is a set of whole test suites (suite k of the
# filtered list goes to shard k mod N), so a suite's state made once per process (the random
# .usir sweep) is made once. Each shard's peak resident size and time are printed when
# /usr/bin/time is installed. UNIT_TEST_SHARD=k (1-based) runs shard k alone.
case "${MODE:-release}" in
  tsan) default_shards=8 ;;
  asan) default_shards=4 ;;
  *) default_shards=1 ;;
esac
UNIT_TEST_SHARDS=${UNIT_TEST_SHARDS:-$default_shards}
if [ "$UNIT_TEST_SHARDS" -le 1 ]; then
  run_gtest unit_tests "$BUILD/tests/unit_tests"
else
  # "Suite." lines, then "  test  # parameter" lines (GoogleTest's listing, after GTEST_FILTER).
  shard_filters=()
  suite_index=-1
  while IFS= read -r line; do
    if [[ $line =~ ^\ \ ([^ ]+) ]]; then
      shard=$((suite_index % UNIT_TEST_SHARDS))
      shard_filters[shard]="${shard_filters[shard]:+${shard_filters[shard]}:}$suite${BASH_REMATCH[1]}"
    elif [[ $line =~ ^([^ ]+\.)(\ |$) ]]; then
      suite=${BASH_REMATCH[1]}; suite_index=$((suite_index + 1))
    fi
  done < <("$BUILD/tests/unit_tests" --gtest_list_tests)
  timing=$(mktemp)
  timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f 'peak RSS %M KiB, %e s, CPU %U s user + %S s system' -o "$timing")
  for ((shard = 0; shard < UNIT_TEST_SHARDS; shard++)); do
    [ -n "${shard_filters[shard]:-}" ] || continue
    [ -z "${UNIT_TEST_SHARD:-}" ] || [ "$UNIT_TEST_SHARD" -eq $((shard + 1)) ] || continue
    run_gtest "unit_tests shard $((shard + 1))/$UNIT_TEST_SHARDS" \
      "${timer[@]}" "$BUILD/tests/unit_tests" --gtest_filter="${shard_filters[shard]}"
    [ ${#timer[@]} -gt 0 ] && echo "-- $(tr '\n' ' ' < "$timing")"
  done
  rm -f "$timing"
fi
case "${MODE:-release}" in
  asan|tsan)
    # The sanitizer runtimes replace malloc themselves and must come first in the process:
    # preloading usgc over them is not a supported combination. The unit tests above run the
    # allocator under the sanitizer through the usgc_* API instead.
    echo "SKIP preload_tests: MODE=$MODE replaces malloc with the sanitizer's; preload runs in release/debug/ubsan"
    skipped=$((skipped + 1))
    # Of the script suites, those that run the programs this build made (the demo's self test,
    # the JIT, the escape analysis). The others preload usgc, build programs of their own
    # against libusgc.a without the sanitizer's flags, or count instructions.
    for script in $SANITIZER_SCRIPT_SUITES; do
      run_script_suite "$script"
    done
    ;;
  ubsan)
    run_gtest preload_tests env LD_PRELOAD="$PWD/$BUILD/libusgc_preload.so" "$BUILD/tests/preload_tests"
    for script in $UBSAN_SCRIPT_SUITES; do
      run_script_suite "$script"
    done
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
