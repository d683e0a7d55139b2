#!/usr/bin/env bash
# soak.sh: `make soak DURATION=SECONDS` — the GC and malloc stress tests, again and again with a
# new seed each round and the heap verifier on (USGC_VERIFY=1), and usgc_self_test, until
# DURATION seconds (default 60) have passed. Not part of `make test` (its length is the point).
# Each round prints one line; a failure prints the failing step's output (the stress tests print
# their seed, USGC_TEST_SEED=... repeats it) and the script exits 1 at once.
# Environment: BUILD (default build), DURATION (seconds, default 60).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
DURATION=${DURATION:-60}
case "$DURATION" in '' | *[!0-9]*)
  echo "soak: DURATION must be whole seconds, not '$DURATION'" >&2
  exit 2
  ;;
esac
for binary in "$BUILD/tests/unit_tests" "$BUILD/usgc-demo"; do
  [ -x "$binary" ] || { echo "soak: $binary is missing (make all tests)" >&2; exit 2; }
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
end=$((SECONDS + DURATION))
round=0
while [ $SECONDS -lt $end ] || [ $round -eq 0 ]; do
  round=$((round + 1))
  seed=$(( $(date +%s%N) & 0x7fffffffffff ))
  if ! USGC_VERIFY=1 USGC_TEST_SEED=$seed "$BUILD/tests/unit_tests" \
       --gtest_filter='GcStress*:UsgcStress*' --gtest_brief=1 >"$log" 2>&1; then
    echo "soak: round $round: stress tests FAILED (USGC_TEST_SEED=$seed):"; cat "$log"; exit 1
  fi
  if ! USGC_VERIFY=1 "$BUILD/usgc-demo" --self-test 5 >"$log" 2>&1; then
    echo "soak: round $round: self test FAILED:"; cat "$log"; exit 1
  fi
  echo "soak: round $round passed (USGC_TEST_SEED=$seed; $(head -n 1 "$log")), $((end > SECONDS ? end - SECONDS : 0)) s left"
done
echo "soak: $round rounds in ${DURATION} s, all passed"
