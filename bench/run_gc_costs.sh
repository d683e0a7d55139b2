#!/usr/bin/env bash
# run_gc_costs.sh: the costs of usgc's collector beside the seed's claims (suite=gc_costs): a
# MACHINE line, then
#   1. $BUILD/bench/gc_costs (TSC rate, allocation per ownership class against glibc malloc,
#      barriers against a plain store, private and shared pause distributions); its lines pass
#      through;
#   2. scaling: `gc_costs --cases scaling --procs 1` and `--procs 2` (one runtime per process),
#      BENCH_REPS times each, the order alternating; the median of each and
#      metric=ratio_2p_vs_1p (target >= 1.8), beside the machine's floor measured in the same run:
#      `gc_costs --cases scaling-floor` (the same churn with malloc/free in 1 and 2 threads);
#   3. bench/gc_instructions.sh (instructions per object and per store under callgrind; skipped
#      with a NOTE without valgrind);
#   4. $BUILD/bench/gc_pauses (suite=gc_pauses: paced private pauses at 1, 8, 64 MiB live, shared
#      pauses beside 8 and 64 MiB of private live data, time to safepoint during private marking).
#      Every shared stop of 1 ms or more is kept, stretch by stretch (the pause probe's stderr
#      line), as `NOTE suite=gc_costs case=gc_pauses slow_stop="usgc: gc S<n> ... stop ..."`.
# A NOTE with the load average ends the run. Lines are also saved to $BENCH_GC_COSTS_LOG (default
# $BUILD/bench/gc_costs.log). USGC_PROCS, USGC_GC_PERCENT and USGC_HEAP_MAX are unset for the runs.
#
# Environment: BUILD (default build), BENCH_REPS (scaling repetitions, default 3), BENCH_QUICK=1
# (about 10x less work, 1 repetition), BENCH_TIMEOUT_S (per program run, default 300),
# BENCH_GC_COSTS_LOG, BENCH_GC_COSTS_PARTS (default "costs scaling instructions pauses").
# Exit status: 0 when every program ran and printed no ERROR line, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
BENCH_QUICK=${BENCH_QUICK:-0}
if [ "$BENCH_QUICK" = 1 ]; then BENCH_REPS=${BENCH_REPS:-1}; else BENCH_REPS=${BENCH_REPS:-3}; fi
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
BENCH_GC_COSTS_LOG=${BENCH_GC_COSTS_LOG:-$BUILD/bench/gc_costs.log}
BENCH_GC_COSTS_PARTS=${BENCH_GC_COSTS_PARTS:-costs scaling instructions pauses}
BIN=$BUILD/bench/gc_costs
unset USGC_PROCS USGC_GC_PERCENT USGC_HEAP_MAX USGC_TRACE USGC_VERIFY
ulimit -c 0

if [ ! -x "$BIN" ]; then
  echo "run_gc_costs.sh: $BIN not built (make BUILD=$BUILD $BIN)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$BENCH_GC_COSTS_LOG")"
: >"$BENCH_GC_COSTS_LOG"
say() { echo "$*"; echo "$*" >>"$BENCH_GC_COSTS_LOG"; }
progress() { echo "$*" >&2; }
errors=0
quick_args=()
[ "$BENCH_QUICK" = 1 ] && quick_args=(--quick)
has_part() { [[ " $BENCH_GC_COSTS_PARTS " == *" $1 "* ]]; }

# ---- header -----------------------------------------------------------------------------------
cpu=$(bench_cpu_model)
tsc_flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(constant_tsc|nonstop_tsc|tsc_known_freq|hypervisor)$' | paste -sd, -)
commit=$(bench_commit)
say "MACHINE suite=gc_costs date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) cpu=\"$cpu\" nproc=$(nproc)" \
    "load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" reps=$BENCH_REPS quick=$BENCH_QUICK commit=$commit" \
    "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)" \
    "tsc_flags=${tsc_flags:-none} gc_costs_built=$(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ)"
say "NOTE suite=gc_costs this is a VM whose $(nproc) vCPUs are often not both available to one process" \
    "(other guests, other load): read 2-P figures beside the malloc floor of the same run"

# run_program LABEL COMMAND...: runs one program; its RESULT/NOTE/ERROR lines are said (RESULT
# lines not when $skip_results is 1), SAMPLE lines kept in $work/samples; a failure without an
# ERROR line becomes one.
skip_results=0
run_program() {
  local label=$1
  shift
  timeout "$BENCH_TIMEOUT_S" "$@" >"$work/out" 2>"$work/err"
  local status=$?
  while IFS= read -r line; do
    case $line in
      RESULT*) [ "$skip_results" = 1 ] || say "$line" ;;
      NOTE*) say "$line" ;;
      SAMPLE*) echo "$line" >>"$work/samples" ;;
      ERROR*) say "$line"; errors=$((errors + 1)) ;;
    esac
  done <"$work/out"
  # The shared pause probe's lines (gc/shared_pause_probe.hpp; gc_pauses turns it on at 1 ms, its
  # peer runs inherit it) go to stderr, one per slow stop of a shared collection, stretch by
  # stretch: kept as NOTE lines, so a long stop of any run is attributed in the log and the report.
  while IFS= read -r line; do
    case $line in
      "usgc: gc "*" stop "*) say "NOTE suite=gc_costs case=$label slow_stop=\"${line//\"/\'}\"" ;;
    esac
  done <"$work/err"
  if [ "$status" -ne 0 ] && ! grep -q '^ERROR' "$work/out"; then
    local why="exit status $status"
    [ "$status" = 124 ] && why="timed out after ${BENCH_TIMEOUT_S}s"
    [ "$status" -gt 128 ] && [ "$status" != 124 ] && why="killed by signal $((status - 128))"
    say "ERROR suite=gc_costs case=$label impl=usgc reason=\"$* : $why: $(head -c 200 "$work/err" | head -n 1 | tr -d '"')\""
    errors=$((errors + 1))
  fi
  progress "gc_costs: $label: status $status"
}
: >"$work/samples"

# ---- 1. costs and pauses ----------------------------------------------------------------------
if has_part costs; then
  progress "gc_costs: allocation, barriers, pauses (quick: about 15 s; full: about 60 s)"
  run_program costs "$BIN" "${quick_args[@]+"${quick_args[@]}"}"
fi

# ---- 2. scaling -------------------------------------------------------------------------------
if has_part scaling; then
  : >"$work/samples"
  skip_results=1  # each process's RESULT is one repetition: the medians below replace them
  for ((rep = 1; rep <= BENCH_REPS; rep++)); do
    order="1 2"
    [ $((rep % 2)) = 0 ] && order="2 1"
    for procs in $order; do
      run_program "scaling-procs$procs" "$BIN" --cases scaling --procs "$procs" --reps 1 "${quick_args[@]+"${quick_args[@]}"}"
    done
  done
  skip_results=0
  median_of() {
    awk -v c="$1" '$0 ~ "case=" c " " { for (k = 2; k <= NF; k++) if ($k ~ /^value=/) print substr($k, 7) }' "$work/samples" |
      sort -g | awk '{v[NR] = $1} END {if (NR == 0) exit; print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
  }
  one=$(median_of scaling-procs1)
  two=$(median_of scaling-procs2)
  if [ -n "$one" ] && [ -n "$two" ]; then
    say "RESULT suite=gc_costs case=scaling-procs1 impl=usgc metric=mobjects_per_s value=$one unit=Mobj/s"
    say "RESULT suite=gc_costs case=scaling-procs2 impl=usgc metric=mobjects_per_s value=$two unit=Mobj/s"
    say "RESULT suite=gc_costs case=scaling impl=usgc metric=ratio_2p_vs_1p value=$(awk -v a="$two" -v b="$one" 'BEGIN {printf "%.3f", a / b}') unit=ratio"
    say "RESULT suite=gc_costs case=scaling impl=target metric=ratio_target value=1.8 unit=ratio"
  fi
  : >"$work/samples"
  run_program scaling-floor "$BIN" --cases scaling-floor --reps "$BENCH_REPS" "${quick_args[@]+"${quick_args[@]}"}"
  floor=$(grep -h 'case=scaling-floor impl=glibc metric=ratio_2_threads_vs_1' "$BENCH_GC_COSTS_LOG" | tail -n 1 | sed 's/.*value=\([^ ]*\).*/\1/')
  floor_one=$(grep -h 'case=scaling-floor-threads1 impl=glibc metric=mobjects_per_s ' "$BENCH_GC_COSTS_LOG" | tail -n 1 | sed 's/.*value=\([^ ]*\).*/\1/')
  if [ -n "$one" ] && [ -n "$two" ] && [ -n "$floor" ] && [ -n "$floor_one" ]; then
    say "RESULT suite=gc_costs case=scaling-procs1 impl=usgc metric=ratio_vs_malloc_1thread value=$(awk -v a="$one" -v b="$floor_one" 'BEGIN {printf "%.3f", a / b}') unit=ratio"
    say "NOTE suite=gc_costs case=scaling usgc 2P/1P = $(awk -v a="$two" -v b="$one" 'BEGIN {printf "%.2f", a / b}')x" \
        "(target >= 1.8x); the machine's floor in the same run, malloc/free 2 threads/1 thread = ${floor}x"
  fi
fi

# ---- 3. instructions --------------------------------------------------------------------------
if has_part instructions; then
  progress "gc_costs: instruction counts under callgrind (quick: about 30 s; full: about 2 min)"
  BUILD=$BUILD BENCH_QUICK=$BENCH_QUICK BENCH_TIMEOUT_S=$BENCH_TIMEOUT_S bash bench/gc_instructions.sh >"$work/instructions.out"
  instructions_status=$?
  while IFS= read -r line; do
    case $line in
      RESULT* | NOTE*) say "$line" ;;
      ERROR*) say "$line"; errors=$((errors + 1)) ;;
    esac
  done <"$work/instructions.out"
  if [ "$instructions_status" -ne 0 ] && ! grep -q '^ERROR' "$work/instructions.out"; then
    say "ERROR suite=gc_costs case=instructions impl=callgrind reason=\"bench/gc_instructions.sh: exit status $instructions_status\""
    errors=$((errors + 1))
  fi
fi

# 4. pauses as the collector paces itself (suite=gc_pauses, bench/gc_pauses.cpp).
if has_part pauses && [ -x "$BUILD/bench/gc_pauses" ]; then
  quick_flag=()
  [ "$BENCH_QUICK" = 1 ] && quick_flag=(--quick)
  run_program gc_pauses "$BUILD/bench/gc_pauses" "${quick_flag[@]}"
fi

say "NOTE suite=gc_costs end=$(date -u +%Y-%m-%dT%H:%M:%SZ) load_at_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
progress "results saved to $BENCH_GC_COSTS_LOG"
[ "$errors" -eq 0 ]
