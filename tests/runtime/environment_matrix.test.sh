#!/usr/bin/env bash
# environment_matrix.test.sh: every USGC_* variable x {empty, garbage, negative, overflow, huge,
# valid} (sizes also an overflowing suffix), through a program built from the public headers
# (tests/runtime/programs/environment_probe.c, linked against libusgc.a).
#
# Proves the rule of the README's configuration table: an empty value is the default, silently;
# a bad one is refused with exactly one line naming the variable, the value and the accepted
# range ('usgc: NAME="VALUE" refused: want ...; using the default (...)'), the program still runs
# (exit 0) and the default is what it gets; a valid one is taken, silently. Where the value is
# visible through the C API (usgc_config_from_environment, usgc_gc_get_stats) the test checks it.
# Prints "PASS <name>", "FAIL <name>: <why>" per variable; exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -f "$BUILD/libusgc.a" ]; then echo "FAIL setup: $BUILD/libusgc.a is missing"; exit 1; fi
if ! gcc -std=c11 -Wall -Wextra -Werror -Iinclude tests/runtime/programs/environment_probe.c "$BUILD/libusgc.a" \
     -lstdc++ -luring -lnuma -pthread -ldl -o "$work/probe" 2>"$work/build.err"; then
  echo "FAIL probe-builds: $(head -c 400 "$work/build.err")"; exit 1
fi

procs_default=$(getconf _NPROCESSORS_ONLN)
defaults="procs=$procs_default stack_bytes=65536 guard_bytes=16384 preempt_after_us=10000 heap_limit_bytes=0"

# variable | kind (number, size, word) | valid value | what the valid value shows ("" = nothing visible)
variables=(
  "USGC_DECAY_MS|number|500|"
  "USGC_DECOMMIT|word|madvise|"
  "USGC_STATS|word|0|"
  "USGC_STATS_INTERVAL_MS|number|50|"
  "USGC_PROCS|number|3|procs=3"
  "USGC_STACK_SIZE|size|128K|stack_bytes=131072"
  "USGC_STACK_GUARD|size|8K|guard_bytes=8192"
  "USGC_PREEMPT_US|number|2000|preempt_after_us=2000"
  "USGC_GC_PERCENT|number|off|"
  "USGC_GC_GENERATIONAL|word|0|"
  "USGC_GC_CONCURRENT|word|0|"
  "USGC_HEAP_MAX|size|512M|heap_limit_bytes=536870912"
  "USGC_TRACE|word|gc|"
  "USGC_VERIFY|word|1|"
  "USGC_SAFEPOINT_ARMING|word|mprotect|"
  "USGC_PROF|word|0|"
  "USGC_PROF_SAMPLE|size|4K|"
  "USGC_LEAKS|word|0|"
  "USGC_GC_INCREMENTAL|word|0|"
  "USGC_SAFEPOINT_WAIT|word|sleep|"
  "USGC_SAFEPOINT_CLAIM|word|0|"
  "USGC_TRACE_PAUSE_US|number|1000|"
)
# USGC_PROF_FILE takes any file name (every value above is one): its refusals (control bytes, over
# 4095 bytes) are tested in tests/kernel_iface/environment_test.cpp.

# expect_figures WANT OUTPUT: every name=value of WANT is in the probe's line.
expect_figures() {
  local figure
  for figure in $1; do
    grep -qw -- "$figure" <<<"$2" || { echo "$figure not in '$2'"; return 1; }
  done
}

for entry in "${variables[@]}"; do
  IFS='|' read -r name kind valid shows <<<"$entry"
  why=""
  cases=("empty|" "garbage|abc" "negative|-1" "overflow|18446744073709551616" "huge|18446744073709551615" "valid|$valid")
  [ "$kind" = size ] && cases+=("overflow-suffix|17179869184G")
  for case_entry in "${cases[@]}"; do
    class=${case_entry%%|*}
    value=${case_entry#*|}
    env "$name=$value" timeout 60 "$work/probe" >"$work/out" 2>"$work/err"
    status=$?
    output=$(cat "$work/out")
    lines=$(grep -c -- "$name" "$work/err")
    if [ $status -ne 0 ]; then
      why="$class ($name=\"$value\"): exit $status: $(head -c 300 "$work/err")"; break
    fi
    case "$class" in
      empty|valid)
        if [ "$lines" -ne 0 ]; then why="$class: a message about a good value: $(grep -- "$name" "$work/err")"; break; fi
        want=$defaults
        [ "$class" = valid ] && [ -n "$shows" ] && want=$shows
        if ! problem=$(expect_figures "$want" "$output"); then why="$class: $problem"; break; fi
        ;;
      *)
        pattern="^usgc: $name=\"$value\" refused: want .*; using the default (.*)\$"
        if [ "$lines" -ne 1 ] || ! grep -q -- "$pattern" "$work/err"; then
          why="$class ($name=\"$value\"): want one refusal line, got $lines: $(head -c 300 "$work/err")"; break
        fi
        if ! problem=$(expect_figures "$defaults" "$output"); then why="$class: the default was not used: $problem"; break; fi
        ;;
    esac
  done
  if [ -z "$why" ]; then echo "PASS environment-$name"; else echo "FAIL environment-$name: $why"; failures=$((failures + 1)); fi
done

# A refusal line shows the range and escapes what a terminal would act on.
env USGC_STACK_GUARD=$'\e[2J-1' "$work/probe" >/dev/null 2>"$work/err"
if grep -qF 'usgc: USGC_STACK_GUARD="\x1b[2J-1" refused: want 4K..64M bytes (digits, optional K/M/G/T suffix); using the default (16K)' "$work/err" &&
   ! grep -q $'\e' "$work/err"; then
  echo "PASS environment-message-escaped-with-range"
else
  echo "FAIL environment-message-escaped-with-range: $(cat -v "$work/err")"; failures=$((failures + 1))
fi

[ "$failures" -eq 0 ]
