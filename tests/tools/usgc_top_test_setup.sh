# tests/tools/usgc_top_test_setup.sh — the set-up the usgc-top test scripts share; sourced by
# them (`source "$(dirname "$0")/usgc_top_test_setup.sh"`), never run (its name does not end in
# .test.sh, so tests/run_all.sh does not take it for a suite).
#
# After sourcing, the working directory is the repository root and these are set:
#   BUILD         the build folder (environment, default build)
#   TOP, LOOP, PRELOAD_LIB   absolute paths of usgc-top, usgc-alloc-loop, libusgc_preload.so
#   UID_NOW       the user id (statistics blocks are /dev/shm/usgc-<uid>-<pid>)
#   failures      0; fail() counts into it, and the script ends with [ "$failures" -eq 0 ]
#   work          a fresh temporary directory: the script's own cleanup (its EXIT trap) removes it
# and these functions:
#   pass NAME / fail NAME WHY / skip NAME WHY   one result line: "PASS NAME", "FAIL NAME: WHY", ...
#   wait_for SECONDS COMMAND...   polls COMMAND every 0.1 s until it succeeds; false on timeout
#   require_files FILE...         "FAIL setup: FILE is missing" and exit 1 unless every FILE exists
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
BUILD=${BUILD:-build}
TOP="$PWD/$BUILD/usgc-top"
LOOP="$PWD/$BUILD/usgc-alloc-loop"
PRELOAD_LIB="$PWD/$BUILD/libusgc_preload.so"
UID_NOW=$(id -u)
failures=0
work=$(mktemp -d)

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }
skip() { echo "SKIP $1: $2"; }

wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.1
  done
}

require_files() {
  local file
  for file in "$@"; do
    if [ ! -e "$file" ]; then
      echo "FAIL setup: $file is missing (make it: make all tests)"
      exit 1
    fi
  done
}
