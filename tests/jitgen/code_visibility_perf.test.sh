#!/usr/bin/env bash
# code_visibility_perf.test.sh: `perf report` names JIT code announced through
# jitgen/code_visibility when the process ran with USGC_PERF_MAP=1 (the perf map,
# /tmp/perf-<pid>.map), and does not without it.
#
# Builds tests/jitgen/programs/visible_jit_code.cpp against libusgc.a and samples it with
# `perf record -e cpu-clock` (a software clock: works on machines without hardware counters)
# while it spins in its hand-placed function `usgc_jit_visible_answer`. Proves:
#   - with USGC_PERF_MAP=1, perf report's symbol column names usgc_jit_visible_answer;
#   - without it, the same code has no name (so the name came from the map);
#   - the x86-64 JIT announces what it compiles: `USGC_PERF_MAP=1 perf record usgc-run
#     bench/binary_trees.usir` names the .usir functions (usir:bottom_up_tree, usir:item_check).
# SKIP when perf is not installed or may not sample (perf_event_paranoid, containers).
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
failures=0
work=$(mktemp -d)
cleanup() {  # the sampled processes' perf maps (their pids are in $work/pids), then $work
  local pid
  while read -r pid; do [ -n "$pid" ] && rm -f "/tmp/perf-$pid.map"; done <"$work/pids" 2>/dev/null
  rm -rf "$work"
}
# The perf maps usgc-run wrote: new since $work/stamp and naming the benchmark's functions.
remove_usgc_run_maps() {
  find /tmp -maxdepth 1 -name 'perf-*.map' -newer "$work/stamp" -user "$(id -u)" 2>/dev/null |
    while read -r map; do grep -q 'usir:bottom_up_tree' "$map" && rm -f "$map"; done
}
trap cleanup EXIT
names=(perf-report-names-jit-function-from-perf-map perf-report-has-no-name-without-perf-map
  perf-report-names-usir-functions-compiled-by-usgc-run)

skip_all() {  # why
  for name in "${names[@]}"; do echo "SKIP $name: $1"; done
  exit 0
}
command -v perf >/dev/null 2>&1 || skip_all "perf is not installed (apt-get install linux-perf)"
[ -f "$BUILD/libusgc.a" ] || skip_all "$BUILD/libusgc.a is not built"
if ! perf record -q -e cpu-clock -o "$work/probe.data" -- true >"$work/probe.txt" 2>&1; then
  skip_all "perf record cannot sample here: $(head -n 1 "$work/probe.txt")"
fi

program=$work/visible_jit_code
if ! out=$(g++ -std=c++20 -O1 -g -I. -Iinclude tests/jitgen/programs/visible_jit_code.cpp \
    "$BUILD/libusgc.a" -luring -lnuma -pthread -ldl -o "$program" 2>&1); then
  for name in "${names[@]}"; do echo "FAIL $name: build: ${out//$'\n'/ | }"; done
  exit 1
fi

# profile PERF_MAP: perf report's symbol lines for one sampled run (its pid's map is removed).
profile() {
  local data=$work/perf-$1.data
  USGC_PERF_MAP=$1 timeout 120 perf record -q -e cpu-clock -F 2000 -o "$data" -- \
    "$program" spin 30000000 >"$work/run.txt" 2>&1
  grep -oE 'pid [0-9]+' "$work/run.txt" | grep -oE '[0-9]+' >>"$work/pids"
  perf report -i "$data" --stdio --sort sym 2>/dev/null | grep -v '^#'
}

out=$(profile 1)
if grep -qE '%.*usgc_jit_visible_answer' <<<"$out"; then
  echo "PASS perf-report-names-jit-function-from-perf-map"
else
  echo "FAIL perf-report-names-jit-function-from-perf-map: $(head -n 8 <<<"$out" | tr '\n' '|')"
  failures=$((failures + 1))
fi
out=$(profile 0)
# The program's own symbols must resolve (so a missing name is the map's doing): its main or the
# two-instruction visible_jit_code_identity, which a short run may not sample at all.
if grep -qE '\] (visible_jit_code_identity|main) *$' <<<"$out" &&
    ! grep -q 'usgc_jit_visible_answer' <<<"$out"; then
  echo "PASS perf-report-has-no-name-without-perf-map"
else
  echo "FAIL perf-report-has-no-name-without-perf-map: $(head -n 8 <<<"$out" | tr '\n' '|')"
  failures=$((failures + 1))
fi
if [ -x "$BUILD/usgc-run" ]; then
  touch "$work/stamp"
  USGC_PROCS=1 USGC_PERF_MAP=1 timeout 300 perf record -q -e cpu-clock -F 2000 -o "$work/usgc-run.data" -- \
    "$BUILD/usgc-run" bench/binary_trees.usir --arg 14 --arg 1 >"$work/run.txt" 2>&1
  out=$(perf report -i "$work/usgc-run.data" --stdio --sort sym 2>/dev/null | grep -v '^#')
  remove_usgc_run_maps
  if grep -qE '%.*usir:(bottom_up_tree|item_check)' <<<"$out"; then
    echo "PASS perf-report-names-usir-functions-compiled-by-usgc-run"
  else
    echo "FAIL perf-report-names-usir-functions-compiled-by-usgc-run: $(cat "$work/run.txt") $(head -n 8 <<<"$out" | tr '\n' '|')"
    failures=$((failures + 1))
  fi
else
  echo "SKIP perf-report-names-usir-functions-compiled-by-usgc-run: $BUILD/usgc-run is not built"
fi
[ "$failures" -eq 0 ]
