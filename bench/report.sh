#!/usr/bin/env bash
# report.sh: `make bench-report`. Runs the malloc benchmarks (bench/run_all.sh; BENCH_QUICK,
# BENCH_REPS, BENCH_ONLY, BENCH_IMPLS as there), saving the log to $BUILD/bench/report.log, then
# writes docs/benchmarks-report.md (generated: bench/format_table.py's tables and the plots) and
# the PNG plots of bench/plot_results.py into docs/plots/. docs/benchmarks.md, curated by hand,
# is not touched. Exit status: run_all.sh's (1 if a run gave a wrong result), else the plotter's.
# BENCH_REPORT_LOG=<saved log> skips the run and reports that log (e.g. bench/results/*.log).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
PYTHON=/usr/bin/python3
LOG=${BENCH_REPORT_LOG:-$BUILD/bench/report.log}
REPORT=docs/benchmarks-report.md
PLOTS=docs/plots

start=$(date +%s)
bench_status=0
if [ -z "${BENCH_REPORT_LOG:-}" ]; then
  BUILD=$BUILD BENCH_LOG=$LOG bash bench/run_all.sh
  bench_status=$?
fi
grep -q '^MACHINE' "$LOG" 2>/dev/null || { echo "report.sh: no results in $LOG" >&2; exit 2; }

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "# usgc benchmark report (generated)"
  echo
  echo "Written by \`make bench-report\` (bench/report.sh) from \`$LOG\`; do not edit: run it again."
  echo "The method and the curated results are in [benchmarks.md](benchmarks.md)."
  grep -q '^MACHINE.* quick=1' "$LOG" &&
    echo "Quick mode (BENCH_QUICK=1): one short run each, so single ratios can move by tens of percent."
  echo
  "$PYTHON" bench/format_table.py "$LOG" || exit 2
  echo
  "$PYTHON" bench/plot_results.py "$LOG" "$PLOTS" docs
} >"$tmp"
plot_status=$?
[ "$plot_status" -le 1 ] || exit "$plot_status"
mv "$tmp" "$REPORT" && chmod 644 "$REPORT"
trap - EXIT

echo "bench-report: $(($(date +%s) - start)) s; log $LOG; report $REPORT; plots:"
ls -1 "$PLOTS"/*.png 2>/dev/null | sed 's/^/  /'
[ "$bench_status" -eq 0 ] || exit "$bench_status"
exit "$plot_status"
