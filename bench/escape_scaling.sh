#!/usr/bin/env bash
# escape_scaling.sh: suite=escape_scaling, how the escape analysis scales on long call chains
# (bench/escape_chain_program.py: f0 -> f1 -> ... -> f(N-1), one allocation per function, every
# one shared by the spawn at the end), against Go's escape analysis on the same chain in the same
# run (`go build -gcflags=-m`, which compiles too: the ratio is an upper bound of usgc's share).
#   RESULT suite=escape_scaling case=chain_<N> impl=usgc metric=seconds value=<s> unit=s
#   RESULT suite=escape_scaling case=chain_<N> impl=usgc metric=max_rss value=<KiB> unit=KiB
#   RESULT suite=escape_scaling case=chain_<N> impl=go metric=seconds value=<s> unit=s
#   RESULT suite=escape_scaling case=chain_<N> impl=usgc/go metric=time_ratio value=<r> unit=ratio
#   RESULT suite=escape_scaling case=chain_<N>_over_<M> impl=usgc metric=time_growth value=<g> unit=ratio
# (time_growth: seconds at N over seconds at the previous size: 10 for linear growth when N grows
# tenfold.) Without Go: a NOTE and the usgc lines only.
# Environment: BUILD (default build), BENCH_ESCAPE_CHAIN_SIZES (default "1000 10000").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
TOOL=$BUILD/usgc-escape
SIZES=${BENCH_ESCAPE_CHAIN_SIZES:-1000 10000}
[ -x "$TOOL" ] || { echo "escape_scaling.sh: $TOOL not built" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
have_go=0
bench_prepare_go "$BUILD/bench" && have_go=1
echo "MACHINE suite=escape_scaling date=$(date -u +%Y-%m-%dT%H:%M:%SZ) cpu=\"$(bench_cpu_model)\" nproc=$(nproc) commit=$(bench_commit)${have_go:+ go=$(go version 2>/dev/null | awk '{print $3}')}"
[ "$have_go" = 1 ] || echo "NOTE go not installed: the Go peer is skipped"

# seconds COMMAND...: wall seconds of COMMAND (and its max RSS in $work/rss); status of COMMAND.
seconds() {
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f %M -o "$work/rss" "$@" >"$work/out" 2>"$work/err"
  local status=$?
  end=$(date +%s.%N)
  elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", b - a }')
  return $status
}

previous_size=""; previous_seconds=""
for n in $SIZES; do
  python3 bench/escape_chain_program.py "$n" usir >"$work/chain.usir"
  if ! seconds "$TOOL" "$work/chain.usir"; then echo "ERROR case=chain_$n usgc-escape failed: $(head -c 200 "$work/err")"; exit 1; fi
  usgc_seconds=$elapsed
  printf 'RESULT suite=escape_scaling case=chain_%s impl=usgc metric=seconds value=%.3f unit=s\n' "$n" "$usgc_seconds"
  printf 'RESULT suite=escape_scaling case=chain_%s impl=usgc metric=max_rss value=%s unit=KiB\n' "$n" "$(cat "$work/rss")"
  if [ -n "$previous_seconds" ]; then
    printf 'RESULT suite=escape_scaling case=chain_%s_over_%s impl=usgc metric=time_growth value=%.2f unit=ratio\n' \
      "$n" "$previous_size" "$(awk -v a="$usgc_seconds" -v b="$previous_seconds" 'BEGIN { print a / b }')"
  fi
  previous_size=$n; previous_seconds=$usgc_seconds
  if [ "$have_go" = 1 ]; then
    mkdir -p "$work/go"
    python3 bench/escape_chain_program.py "$n" go >"$work/go/main.go"
    if seconds env -C "$work/go" GOFLAGS= go build -gcflags=-m -o "$work/go/chain" main.go; then
      printf 'RESULT suite=escape_scaling case=chain_%s impl=go metric=seconds value=%.3f unit=s\n' "$n" "$elapsed"
      printf 'RESULT suite=escape_scaling case=chain_%s impl=usgc/go metric=time_ratio value=%.3f unit=ratio\n' \
        "$n" "$(awk -v a="$usgc_seconds" -v b="$elapsed" 'BEGIN { print a / b }')"
    else
      echo "NOTE case=chain_$n go build failed: $(head -c 200 "$work/err")"
    fi
  fi
done
