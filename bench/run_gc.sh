#!/usr/bin/env bash
# run_gc.sh: the garbage-collector benchmark suite=binary_trees, run by `make bench` and
# `make bench-report` after the malloc and runtime suites (BENCH_SUITES=gc runs only this).
#
# The classic binary-trees benchmark ($BUILD/bench/binary_trees, bench/binary_trees.cpp) for
# depth 18 and 20 with 1 and 2 goroutines (threads for the peers) on
#   usgc         usgc_alloc(GOROUTINE_PRIVATE), usgc_write, shadow-stack roots, goroutines
#   usgc-inline  the same with the inline allocation fast path (usgc_alloc_private_fast)
#   boehm        Boehm GC (Debian's libgc), GC_MALLOC, registered std::threads
#   shared_ptr   std::shared_ptr + make_shared (atomic reference counting)
#   malloc       glibc malloc/free
#   go           bench/go/binarytrees.go, built here into $BUILD/bench/go-binarytrees when `go` is
#                on PATH (or in /usr/lib/go/bin); without it: "NOTE go not installed: ..."
# one process per (implementation, case, repetition): peak RSS (VmHWM) is per process. Each
# repetition runs every implementation once per case, the order rotating by one implementation
# per repetition; each figure is the median over the repetitions:
#   RESULT suite=binary_trees case=depth<N>-g<G> impl=<impl> metric=wall_ms|peak_rss_kib|check ...
#   RESULT ... impl=usgc metric=ratio_vs_boehm|ratio_vs_go|ratio_vs_malloc|ratio_vs_shared_ptr
#              value=<usgc wall / peer wall> unit=ratio   (and the same for impl=usgc-inline)
#   RESULT ... impl=usgc metric=peak_rss_ratio_vs_boehm value=<usgc peak RSS / boehm's> unit=ratio
#   NOTE ... seed claims 19.5x faster than reference counting; measured shared_ptr/usgc = X
# Every run's check (the sum of the node counts of every tree) must equal the value computed
# here from the depth; a wrong check, a crash or a time-out is an ERROR line for that case and
# implementation, which then has no figure. The NOTE lines the programs print (collections,
# pauses) are kept from the last repetition.
#
# Each case runs with G CPUs' worth of runtime for everyone: USGC_PROCS=G, GOMAXPROCS=G,
# GC_MARKERS=G (Boehm's marker threads). The collectors' tuning variables (USGC_GC_PERCENT,
# USGC_HEAP_MAX, USGC_TRACE, USGC_VERIFY, GOGC, GOMEMLIMIT, GC_*) are unset: defaults everywhere.
# A MACHINE line comes first, a NOTE with the load average last. Lines are also saved to
# $BENCH_GC_LOG (default $BUILD/bench/gc.log).
#
# Environment: BUILD (default build), BENCH_REPS (default 3), BENCH_QUICK=1 (1 repetition,
# depth 16 only), BENCH_TIMEOUT_S (per run, default 300), BENCH_GC_DEPTHS (default "18 20"),
# BENCH_GC_GOROUTINES (default "1 2"), BENCH_GC_IMPLS (default all six), BENCH_GC_LOG.
# Exit status: 0 when every run printed correct checks and no ERROR line, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
BENCH_QUICK=${BENCH_QUICK:-0}
if [ "$BENCH_QUICK" = 1 ]; then
  BENCH_REPS=1
  BENCH_GC_DEPTHS=${BENCH_GC_DEPTHS:-16}
else
  BENCH_REPS=${BENCH_REPS:-3}
  BENCH_GC_DEPTHS=${BENCH_GC_DEPTHS:-18 20}
fi
BENCH_GC_GOROUTINES=${BENCH_GC_GOROUTINES:-1 2}
BENCH_GC_IMPLS=${BENCH_GC_IMPLS:-usgc usgc-inline boehm shared_ptr malloc go}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
BENCH_GC_LOG=${BENCH_GC_LOG:-$BUILD/bench/gc.log}
BIN=$BUILD/bench
unset USGC_PROCS USGC_GC_PERCENT USGC_HEAP_MAX USGC_TRACE USGC_VERIFY GOMAXPROCS GOGC GOMEMLIMIT \
  GC_MARKERS GC_NPROCS GC_INITIAL_HEAP_SIZE GC_MAXIMUM_HEAP_SIZE GC_FREE_SPACE_DIVISOR GC_PRINT_STATS
ulimit -c 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$BENCH_GC_LOG")"
: >"$BENCH_GC_LOG"
say() { echo "$*"; echo "$*" >>"$BENCH_GC_LOG"; }
progress() { echo "$*" >&2; }
errors=0

if [ ! -x "$BIN/binary_trees" ]; then
  echo "run_gc.sh: $BIN/binary_trees not built (make bench-bins BUILD=$BUILD)" >&2
  exit 2
fi

# ---- Go ---------------------------------------------------------------------------------------
impls=""
for impl in $BENCH_GC_IMPLS; do [ "$impl" = go ] || impls="$impls $impl"; done
impls=${impls# }
go_notes=()
go_version=""
if [[ " $BENCH_GC_IMPLS " != *" go "* ]]; then
  :
elif bench_prepare_go "$BIN"; then
  go_version=$(go version | awk '{print $3}')
  bin_abs=$(cd "$BIN" && pwd)
  if go build -o "$bin_abs/go-binarytrees" bench/go/binarytrees.go >"$work/go-build.txt" 2>&1; then
    impls="$impls go"
  else
    go_notes+=("NOTE suite=binary_trees go build failed: Go comparison skipped ($(head -c 200 "$work/go-build.txt" | head -n 1))")
    errors=$((errors + 1))
  fi
else
  go_notes+=("NOTE go not installed: Go comparison skipped")
fi

# ---- header -----------------------------------------------------------------------------------
cpu=$(bench_cpu_model)
commit=$(bench_commit)
boehm_version=$(dpkg-query -W -f='${Version}' libgc1 2>/dev/null || echo unknown)
say "MACHINE suite=gc date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) cpu=\"$cpu\" nproc=$(nproc)" \
    "mem_total_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)" \
    "load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" reps=$BENCH_REPS quick=$BENCH_QUICK impls=\"$impls\" commit=$commit" \
    "depths=\"$BENCH_GC_DEPTHS\" goroutines=\"$BENCH_GC_GOROUTINES\" boehm=$boehm_version" \
    "${go_version:+go=$go_version}" "usgc_bench_built=$(date -u -r "$BIN/binary_trees" +%Y-%m-%dT%H:%M:%SZ)"
for note in "${go_notes[@]+"${go_notes[@]}"}"; do say "$note"; done

# ---- runs -------------------------------------------------------------------------------------
# run IMPL DEPTH G LAST: one process; its RESULT lines go to $work/samples, its NOTE lines (LAST=1)
# to $work/notes, ERROR lines to $work/errors; a failure without an ERROR line, or a check that
# is not the expected one, becomes one.
run() {
  local impl=$1 depth=$2 g=$3 last=$4 case_name="depth$2-g$3" command
  if [ "$impl" = go ]; then
    command=("$BIN/go-binarytrees" -depth "$depth" -goroutines "$g")
  else
    command=("$BIN/binary_trees" --impl="$impl" --depth="$depth" --goroutines="$g")
  fi
  USGC_PROCS=$g GOMAXPROCS=$g GC_MARKERS=$g timeout "$BENCH_TIMEOUT_S" "${command[@]}" >"$work/out" 2>"$work/err"
  local status=$?
  local before_errors
  before_errors=$(wc -l <"$work/errors")
  grep '^ERROR' "$work/out" >>"$work/errors"
  if [ "$status" -ne 0 ] && ! grep -q '^ERROR' "$work/out"; then
    local why="exit status $status"
    [ "$status" = 124 ] && why="timed out after ${BENCH_TIMEOUT_S}s"
    [ "$status" -gt 128 ] && [ "$status" != 124 ] && why="killed by signal $((status - 128))"
    echo "ERROR suite=binary_trees case=$case_name impl=$impl reason=\"${command[*]} : $why: $(head -c 200 "$work/err" | head -n 1 | tr -d '"')\"" >>"$work/errors"
  fi
  if [ "$status" -eq 0 ]; then
    local check
    check=$(awk '/^RESULT/ && / metric=check / { for (k = 2; k <= NF; k++) if ($k ~ /^value=/) print substr($k, 7) }' "$work/out")
    if [ "$check" != "$(bench_binary_trees_check "$depth")" ]; then
      echo "ERROR suite=binary_trees case=$case_name impl=$impl reason=\"check ${check:-missing}, expected $(bench_binary_trees_check "$depth")\"" >>"$work/errors"
    fi
  fi
  if [ "$(wc -l <"$work/errors")" = "$before_errors" ]; then
    grep '^RESULT' "$work/out" >>"$work/samples"
    [ "$last" = 1 ] && grep '^NOTE' "$work/out" >>"$work/notes"
  fi
  progress "binary_trees: $impl $case_name: $(grep -q "^RESULT" "$work/out" || echo failed)$(awk '/metric=wall_ms/ { for (k = 2; k <= NF; k++) if ($k ~ /^value=/) print substr($k, 7) " ms" }' "$work/out"), status $status"
}
: >"$work/samples"
: >"$work/errors"
: >"$work/notes"
read -r -a impl_list <<<"$impls"
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  progress "binary_trees: repetition $rep/$BENCH_REPS"
  # This repetition's order: the implementations rotated by rep - 1.
  order=()
  for ((i = 0; i < ${#impl_list[@]}; i++)); do
    order+=("${impl_list[$(((i + rep - 1) % ${#impl_list[@]}))]}")
  done
  for depth in $BENCH_GC_DEPTHS; do
    for g in $BENCH_GC_GOROUTINES; do
      for impl in "${order[@]}"; do
        run "$impl" "$depth" "$g" $((rep == BENCH_REPS))
      done
    done
  done
done

# One ERROR line per (case, impl): the same failure repeats in every repetition.
sort -u "$work/errors" | awk '{key = $2 " " $3 " " $4} !seen[key]++' >"$work/errors.unique"
while IFS= read -r line; do say "$line"; errors=$((errors + 1)); done <"$work/errors.unique"
while IFS= read -r line; do say "$line"; done <"$work/notes"
# Medians per (case, impl, metric), in the order first seen; a (case, impl) that failed in any
# repetition has no figure (a failed repetition must not yield a number).
awk -v errfile="$work/errors.unique" '
  BEGIN { while ((getline line < errfile) > 0) { n = split(line, f, " "); c = ""; i = "";
            for (k = 1; k <= n; k++) { if (f[k] ~ /^case=/) c = substr(f[k], 6); if (f[k] ~ /^impl=/) i = substr(f[k], 6) }
            failed[c SUBSEP i] = 1 } }
  /^RESULT/ {
    for (k = 2; k <= NF; k++) { split($k, kv, "="); v[kv[1]] = kv[2] }
    if ((v["case"] SUBSEP v["impl"]) in failed) next
    print v["case"], v["impl"], v["metric"], v["value"], v["unit"]
  }' "$work/samples" | bench_medians wall_ms >"$work/medians"
# Sorted by case, then in the order of the implementation list.
for depth in $BENCH_GC_DEPTHS; do
  for g in $BENCH_GC_GOROUTINES; do
    for impl in "${impl_list[@]}"; do
      awk -v c="depth$depth-g$g" -v i="$impl" '$1 == c && $2 == i' "$work/medians"
    done
  done
done | while read -r c impl metric value unit; do
  say "RESULT suite=binary_trees case=$c impl=$impl metric=$metric value=$value unit=$unit"
done

# ---- ratios -----------------------------------------------------------------------------------
median_of() { bench_median_of "$work/medians" "$@"; }
for depth in $BENCH_GC_DEPTHS; do
  for g in $BENCH_GC_GOROUTINES; do
    c="depth$depth-g$g"
    for impl in usgc usgc-inline; do
      wall=$(median_of "$c" "$impl" wall_ms)
      [ -n "$wall" ] || continue
      for peer in boehm go malloc shared_ptr; do
        peer_wall=$(median_of "$c" "$peer" wall_ms)
        [ -n "$peer_wall" ] || continue
        say "RESULT suite=binary_trees case=$c impl=$impl metric=ratio_vs_$peer value=$(bench_ratio "$wall" "$peer_wall") unit=ratio"
      done
      rss=$(median_of "$c" "$impl" peak_rss_kib)
      boehm_rss=$(median_of "$c" boehm peak_rss_kib)
      if [ -n "$rss" ] && [ -n "$boehm_rss" ]; then
        say "RESULT suite=binary_trees case=$c impl=$impl metric=peak_rss_ratio_vs_boehm value=$(bench_ratio "$rss" "$boehm_rss") unit=ratio"
      fi
    done
    usgc_wall=$(median_of "$c" usgc wall_ms)
    shared_wall=$(median_of "$c" shared_ptr wall_ms)
    if [ -n "$usgc_wall" ] && [ -n "$shared_wall" ]; then
      inline_wall=$(median_of "$c" usgc-inline wall_ms)
      say "NOTE suite=binary_trees case=$c seed claims 19.5x faster than reference counting;" \
          "measured shared_ptr/usgc = $(bench_ratio "$shared_wall" "$usgc_wall")${inline_wall:+ (shared_ptr/usgc-inline = $(bench_ratio "$shared_wall" "$inline_wall"))}"
    fi
  done
done

say "NOTE suite=gc end=$(date -u +%Y-%m-%dT%H:%M:%SZ) load_at_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
progress "results saved to $BENCH_GC_LOG"
[ "$errors" -eq 0 ]
