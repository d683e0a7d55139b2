#!/usr/bin/env bash
# report.sh: `make bench-report`. Runs the suites of BENCH_SUITES (default "malloc runtime gc"):
#   malloc   bench/run_all.sh (BENCH_QUICK, BENCH_REPS, BENCH_ONLY, BENCH_IMPLS as there), log
#            $BUILD/bench/report.log;
#   runtime  bench/run_runtime.sh (goroutines, safepoints), log $BUILD/bench/report-runtime.log;
#   gc       bench/run_gc.sh (binary-trees), log $BUILD/bench/report-gc.log, and
#            bench/run_gc_costs.sh (allocation and barrier costs, pauses, scaling, instruction
#            counts), log $BUILD/bench/report-gc-costs.log;
# then writes docs/benchmarks-report.md (generated: the tables of bench/format_table.py,
# format_runtime_table.py and format_gc_table.py, and the plots) and the PNG plots of
# bench/plot_results.py into docs/plots/. docs/benchmarks.md, curated by hand, is not touched.
# Exit status: 1 if a benchmark run failed or gave a wrong result, else the plotter's.
# Saved logs instead of runs: BENCH_REPORT_LOG (malloc), BENCH_REPORT_RUNTIME_LOG,
# BENCH_REPORT_GC_LOG (binary-trees) and BENCH_REPORT_GC_COSTS_LOG, any of them (e.g.
# bench/results/*.log): when one is set nothing runs, and only the logs named are reported.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
PYTHON=/usr/bin/python3
LOG=$BUILD/bench/report.log
RUNTIME_LOG=$BUILD/bench/report-runtime.log
GC_LOG=$BUILD/bench/report-gc.log
GC_COSTS_LOG=$BUILD/bench/report-gc-costs.log
saved="${BENCH_REPORT_LOG:-}${BENCH_REPORT_RUNTIME_LOG:-}${BENCH_REPORT_GC_LOG:-}${BENCH_REPORT_GC_COSTS_LOG:-}"
if [ -n "$saved" ]; then  # saved logs only
  LOG=${BENCH_REPORT_LOG:-}
  RUNTIME_LOG=${BENCH_REPORT_RUNTIME_LOG:-}
  GC_LOG=${BENCH_REPORT_GC_LOG:-}
  GC_COSTS_LOG=${BENCH_REPORT_GC_COSTS_LOG:-}
fi
BENCH_SUITES=${BENCH_SUITES:-malloc runtime gc}
REPORT=docs/benchmarks-report.md
PLOTS=docs/plots

start=$(date +%s)
bench_status=0
if [ -z "$saved" ]; then
  if [[ " $BENCH_SUITES " == *" malloc "* ]]; then
    BUILD=$BUILD BENCH_LOG=$LOG bash bench/run_all.sh || bench_status=1
  else
    rm -f "$LOG"
  fi
  if [[ " $BENCH_SUITES " == *" runtime "* ]]; then
    BUILD=$BUILD BENCH_RUNTIME_LOG=$RUNTIME_LOG bash bench/run_runtime.sh || bench_status=1
  else
    rm -f "$RUNTIME_LOG"
  fi
  if [[ " $BENCH_SUITES " == *" gc "* ]]; then
    BUILD=$BUILD BENCH_GC_LOG=$GC_LOG bash bench/run_gc.sh || bench_status=1
    BUILD=$BUILD BENCH_GC_COSTS_LOG=$GC_COSTS_LOG bash bench/run_gc_costs.sh || bench_status=1
  else
    rm -f "$GC_LOG" "$GC_COSTS_LOG"
  fi
fi
have_malloc=0
have_runtime=0
have_gc=0
have_gc_costs=0
grep -q '^MACHINE suite=malloc' "$LOG" 2>/dev/null && have_malloc=1
grep -q '^MACHINE suite=runtime' "$RUNTIME_LOG" 2>/dev/null && have_runtime=1
grep -q '^MACHINE suite=gc ' "$GC_LOG" 2>/dev/null && have_gc=1
grep -q '^MACHINE suite=gc_costs ' "$GC_COSTS_LOG" 2>/dev/null && have_gc_costs=1
logs=()  # the logs with results, in the order of the report's sections
[ "$have_malloc" = 1 ] && logs+=("$LOG")
[ "$have_runtime" = 1 ] && logs+=("$RUNTIME_LOG")
[ "$have_gc" = 1 ] && logs+=("$GC_LOG")
[ "$have_gc_costs" = 1 ] && logs+=("$GC_COSTS_LOG")
if [ "${#logs[@]}" = 0 ]; then
  echo "report.sh: no results in ${LOG:-(no malloc log)}, ${RUNTIME_LOG:-(no runtime log)}," \
       "${GC_LOG:-(no gc log)} or ${GC_COSTS_LOG:-(no gc costs log)}" >&2
  exit 2
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "# usgc benchmark report (generated)"
  echo
  named=$(printf '`%s` ' "${logs[@]}")
  echo "Written by \`make bench-report\` (bench/report.sh) from ${named% }; do not edit: run it again."
  echo "The method and the curated results are in [benchmarks.md](benchmarks.md)."
  cat "${logs[@]}" 2>/dev/null | grep -q '^MACHINE.* quick=1' &&
    echo "Quick mode (BENCH_QUICK=1): one short run each, so single ratios can move by tens of percent."
  echo
  if [ "$have_malloc" = 1 ]; then
    echo "## Malloc mode"
    echo
    "$PYTHON" bench/format_table.py "$LOG" || exit 2
    echo
  fi
  if [ "$have_runtime" = 1 ]; then
    echo "## Goroutines and safepoints"
    echo
    "$PYTHON" bench/format_runtime_table.py "$RUNTIME_LOG" || exit 2
    echo
  fi
  if [ "$have_gc" = 1 ] || [ "$have_gc_costs" = 1 ]; then
    echo "## Garbage collection"
    echo
    gc_logs=()
    [ "$have_gc" = 1 ] && gc_logs+=("$GC_LOG")
    [ "$have_gc_costs" = 1 ] && gc_logs+=("$GC_COSTS_LOG")
    "$PYTHON" bench/format_gc_table.py "${gc_logs[@]}" || exit 2
    echo
    # The slow shared stops of gc_pauses, as the pause probe attributed them (run_gc_costs.sh).
    if [ "$have_gc_costs" = 1 ] && grep -q ' slow_stop=' "$GC_COSTS_LOG"; then
      echo "Shared stops of 1 ms or more (bench/gc_pauses, the pause probe's account, docs/gc.md):"
      echo
      grep -o ' slow_stop=.*' "$GC_COSTS_LOG" | sed 's/^ slow_stop="/    /; s/"$//'
      echo
    fi
    echo "Binary-trees wall time per implementation and the pause distributions are plotted under [Plots](#plots)."
    echo
  fi
  # The first log is plot_results.py's LOG (the malloc one, whose ratio plots need it), the others
  # are read beside it.
  plot_args=("${logs[0]}" "$PLOTS" docs)
  [ "$have_runtime" = 1 ] && [ "${logs[0]}" != "$RUNTIME_LOG" ] && plot_args+=(--runtime-log "$RUNTIME_LOG")
  [ "$have_gc" = 1 ] && [ "${logs[0]}" != "$GC_LOG" ] && plot_args+=(--gc-log "$GC_LOG")
  [ "$have_gc_costs" = 1 ] && [ "${logs[0]}" != "$GC_COSTS_LOG" ] && plot_args+=(--gc-log "$GC_COSTS_LOG")
  "$PYTHON" bench/plot_results.py "${plot_args[@]}"
} >"$tmp"
plot_status=$?
[ "$plot_status" -le 1 ] || exit "$plot_status"
mv "$tmp" "$REPORT" && chmod 644 "$REPORT"
trap - EXIT

echo "bench-report: $(($(date +%s) - start)) s; logs ${logs[*]}; report $REPORT; plots:"
ls -1 "$PLOTS"/*.png 2>/dev/null | sed 's/^/  /'
[ "$bench_status" -eq 0 ] || exit "$bench_status"
exit "$plot_status"
