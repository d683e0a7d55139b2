#!/usr/bin/env bash
# report.sh: `make bench-report`. Runs the malloc benchmarks (bench/run_all.sh; BENCH_QUICK,
# BENCH_REPS, BENCH_ONLY, BENCH_IMPLS as there), saving the log to $BUILD/bench/report.log, and
# the goroutine and safepoint benchmarks (bench/run_runtime.sh), saving theirs to
# $BUILD/bench/report-runtime.log; then writes docs/benchmarks-report.md (generated:
# bench/format_table.py's and bench/format_runtime_table.py's tables and the plots) and the PNG
# plots of bench/plot_results.py into docs/plots/. docs/benchmarks.md, curated by hand, is not
# touched. Exit status: 1 if a benchmark run failed or gave a wrong result, else the plotter's.
# BENCH_SUITES="malloc runtime" (the default) chooses what runs. BENCH_REPORT_LOG=<saved log>
# and/or BENCH_REPORT_RUNTIME_LOG=<saved log> skip the runs and report those logs (e.g.
# bench/results/*.log).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
PYTHON=/usr/bin/python3
LOG=$BUILD/bench/report.log
RUNTIME_LOG=$BUILD/bench/report-runtime.log
if [ -n "${BENCH_REPORT_LOG:-}${BENCH_REPORT_RUNTIME_LOG:-}" ]; then  # saved logs only
  LOG=${BENCH_REPORT_LOG:-}
  RUNTIME_LOG=${BENCH_REPORT_RUNTIME_LOG:-}
fi
BENCH_SUITES=${BENCH_SUITES:-malloc runtime}
REPORT=docs/benchmarks-report.md
PLOTS=docs/plots

start=$(date +%s)
bench_status=0
if [ -z "${BENCH_REPORT_LOG:-}${BENCH_REPORT_RUNTIME_LOG:-}" ]; then
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
fi
have_malloc=0
have_runtime=0
grep -q '^MACHINE suite=malloc' "$LOG" 2>/dev/null && have_malloc=1
grep -q '^MACHINE suite=runtime' "$RUNTIME_LOG" 2>/dev/null && have_runtime=1
if [ "$have_malloc" = 0 ] && [ "$have_runtime" = 0 ]; then
  echo "report.sh: no results in $LOG or $RUNTIME_LOG" >&2
  exit 2
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "# usgc benchmark report (generated)"
  echo
  logs=()
  [ "$have_malloc" = 1 ] && logs+=("\`$LOG\`")
  [ "$have_runtime" = 1 ] && logs+=("\`$RUNTIME_LOG\`")
  echo "Written by \`make bench-report\` (bench/report.sh) from ${logs[*]}; do not edit: run it again."
  echo "The method and the curated results are in [benchmarks.md](benchmarks.md)."
  cat ${LOG:+"$LOG"} ${RUNTIME_LOG:+"$RUNTIME_LOG"} 2>/dev/null | grep -q '^MACHINE.* quick=1' &&
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
  plot_args=()
  if [ "$have_malloc" = 1 ]; then
    plot_args=("$LOG" "$PLOTS" docs)
    [ "$have_runtime" = 1 ] && plot_args+=(--runtime-log "$RUNTIME_LOG")
  else
    plot_args=("$RUNTIME_LOG" "$PLOTS" docs)
  fi
  "$PYTHON" bench/plot_results.py "${plot_args[@]}"
} >"$tmp"
plot_status=$?
[ "$plot_status" -le 1 ] || exit "$plot_status"
mv "$tmp" "$REPORT" && chmod 644 "$REPORT"
trap - EXIT

echo "bench-report: $(($(date +%s) - start)) s; logs $([ "$have_malloc" = 1 ] && echo "$LOG ")$([ "$have_runtime" = 1 ] && echo "$RUNTIME_LOG "); report $REPORT; plots:"
ls -1 "$PLOTS"/*.png 2>/dev/null | sed 's/^/  /'
[ "$bench_status" -eq 0 ] || exit "$bench_status"
exit "$plot_status"
