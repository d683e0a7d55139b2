#!/usr/bin/env bash
# run_jit.sh: the JIT benchmark suite=jit_binary_trees (BENCH_SUITES=jit in the Makefile), plus
# the JIT's compile speed and per-stub costs (bench/jit_stub_costs.sh) when the JIT is built.
#
# binary-trees written in .usir (bench/binary_trees.usir: main(depth, goroutines)) for depth 18
# and 20 with 1 and 2 goroutines, run in the same run by
#   jit          $BUILD/usgc-run bench/binary_trees.usir --arg N --arg G   (compiled x86-64)
#   jit-noshrink the same with --no-shrink-wrap (every frame pushed at entry; not in the
#                default list: name it in BENCH_JIT_IMPLS to compare)
#   interp       $BUILD/usgc-run --interp --unchecked ... (the .usir interpreter without its
#                decision checks, which compiled code does not make either); without usgc-run:
#                $BUILD/usgc-escape --run --unchecked
#   usgc         $BUILD/bench/binary_trees --impl=usgc        (the C API, bench/binary_trees.cpp)
#   usgc-inline  $BUILD/bench/binary_trees --impl=usgc-inline (the C API's inline fast path)
#   boehm        $BUILD/bench/binary_trees --impl=boehm       (Boehm GC)
#   go           bench/go/binarytrees.go, built into $BUILD/bench/go-binarytrees (when go exists)
# All do the same work (a stretch tree, a long-lived tree, 2^(N-d+4) trees of each depth d split
# among G workers); the .usir program returns the sum of the checks, the C++ and Go programs
# print it: each must equal the value computed here, or the run is an ERROR.
# wall_ms is the whole process, from exec to exit, measured here for every implementation (the
# JIT's and the interpreter's include parsing, escape analysis, compiling and runtime start-up;
# the C++ and Go programs' own in-process wall_ms is in their RESULT lines too, as metric=
# inner_wall_ms). peak_rss_kib and cpu_ms (user + sys CPU time of the process, all its threads)
# from /usr/bin/time: on a loaded machine the wall time is mostly waiting for a CPU, the CPU
# time is the work done.
# Each case runs with G CPUs' worth of runtime for everyone: USGC_PROCS=G, GOMAXPROCS=G,
# GC_MARKERS=G. Each figure is the median of BENCH_REPS repetitions (the interpreter, much
# slower, runs BENCH_JIT_INTERP_REPS times).
#
# Output:
#   MACHINE suite=jit ...
#   RESULT suite=jit_binary_trees case=depth<N>-g<G> impl=<impl> metric=wall_ms|cpu_ms|peak_rss_kib|check
#   RESULT ... impl=jit|interp metric=ratio_vs_boehm|ratio_vs_go value=<wall / peer wall> unit=ratio
#   RESULT ... impl=jit|interp metric=cpu_ratio_vs_boehm|cpu_ratio_vs_go value=<cpu / peer cpu> unit=ratio
#   RESULT ... impl=jit metric=speedup_vs_interp value=<interp wall / jit wall> unit=ratio
#   NOTE suite=jit_binary_trees target: jit <= 0.5x boehm and < 1x go; measured ...
#   then bench/jit_stub_costs.sh's lines (compile speed, per-stub ns/instructions/cycles).
# Environment: BUILD (default build), BENCH_REPS (default 3), BENCH_QUICK=1 (1 repetition, depth
# 14 only), BENCH_JIT_DEPTHS (default "18 20"), BENCH_JIT_GOROUTINES (default "1 2"),
# BENCH_JIT_IMPLS (default all six), BENCH_JIT_INTERP_REPS (default 1), BENCH_TIMEOUT_S (per
# run, default 900), BENCH_JIT_LOG (default $BUILD/bench/jit.log).
# Exit status: 0 when every run gave the right check, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
BENCH_QUICK=${BENCH_QUICK:-0}
if [ "$BENCH_QUICK" = 1 ]; then
  BENCH_REPS=1
  BENCH_JIT_DEPTHS=${BENCH_JIT_DEPTHS:-14}
else
  BENCH_REPS=${BENCH_REPS:-3}
  BENCH_JIT_DEPTHS=${BENCH_JIT_DEPTHS:-18 20}
fi
BENCH_JIT_GOROUTINES=${BENCH_JIT_GOROUTINES:-1 2}
BENCH_JIT_IMPLS=${BENCH_JIT_IMPLS:-jit interp usgc usgc-inline boehm go}
BENCH_JIT_INTERP_REPS=${BENCH_JIT_INTERP_REPS:-1}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-900}
BENCH_JIT_LOG=${BENCH_JIT_LOG:-$BUILD/bench/jit.log}
BIN=$BUILD/bench
PROGRAM=bench/binary_trees.usir
unset USGC_PROCS USGC_GC_PERCENT USGC_HEAP_MAX USGC_TRACE USGC_VERIFY USGC_PERF_MAP GOMAXPROCS GOGC \
  GOMEMLIMIT GC_MARKERS GC_NPROCS GC_INITIAL_HEAP_SIZE GC_MAXIMUM_HEAP_SIZE GC_FREE_SPACE_DIVISOR
ulimit -c 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$BENCH_JIT_LOG")"
: >"$BENCH_JIT_LOG"
say() { echo "$*"; echo "$*" >>"$BENCH_JIT_LOG"; }
progress() { echo "$*" >&2; }
errors=0
notes=()

# ---- which implementations can run -------------------------------------------------------------
impls=()
interp_command=()
for impl in $BENCH_JIT_IMPLS; do
  case $impl in
    jit|jit-noshrink)
      if [ -x "$BUILD/usgc-run" ]; then impls+=("$impl"); else notes+=("NOTE suite=jit_binary_trees $BUILD/usgc-run not built: the JIT is not measured"); fi ;;
    interp)
      if [ -x "$BUILD/usgc-run" ]; then
        interp_command=("$BUILD/usgc-run" --interp --unchecked); impls+=(interp)
      elif [ -x "$BUILD/usgc-escape" ]; then
        interp_command=("$BUILD/usgc-escape" --run --unchecked); impls+=(interp)
        notes+=("NOTE suite=jit_binary_trees interp runs through usgc-escape --run --unchecked (no usgc-run)")
      fi ;;
    usgc|usgc-inline|boehm)
      if [ -x "$BIN/binary_trees" ]; then impls+=("$impl"); else notes+=("NOTE suite=jit_binary_trees $BIN/binary_trees not built: $impl skipped"); fi ;;
    go)
      if bench_prepare_go "$BIN"; then
        bin_abs=$(cd "$BIN" 2>/dev/null && pwd || echo "$PWD/$BIN")
        mkdir -p "$bin_abs"
        if go build -o "$bin_abs/go-binarytrees" bench/go/binarytrees.go >"$work/go-build.txt" 2>&1; then
          impls+=(go)
        else
          notes+=("NOTE suite=jit_binary_trees go build failed: $(head -n 1 "$work/go-build.txt" | head -c 200)")
          errors=$((errors + 1))
        fi
      else
        notes+=("NOTE go not installed: Go comparison skipped")
      fi ;;
    *) echo "run_jit.sh: unknown implementation '$impl'" >&2; exit 2 ;;
  esac
done

say "MACHINE suite=jit date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) cpu=\"$(bench_cpu_model)\"" \
    "nproc=$(nproc) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" reps=$BENCH_REPS interp_reps=$BENCH_JIT_INTERP_REPS" \
    "quick=$BENCH_QUICK impls=\"${impls[*]}\" depths=\"$BENCH_JIT_DEPTHS\" goroutines=\"$BENCH_JIT_GOROUTINES\"" \
    "commit=$(bench_commit)"
for note in "${notes[@]+"${notes[@]}"}"; do say "$note"; done

# run IMPL DEPTH G: one process; appends "case impl metric value unit" lines to $work/samples or
# an ERROR line to $work/errors.
run() {
  local impl=$1 depth=$2 g=$3 case_name="depth$2-g$3" command check
  case $impl in
    jit) command=("$BUILD/usgc-run" "$PROGRAM" --arg "$depth" --arg "$g") ;;
    jit-noshrink) command=("$BUILD/usgc-run" --no-shrink-wrap "$PROGRAM" --arg "$depth" --arg "$g") ;;
    interp) command=("${interp_command[@]}" "$PROGRAM" --arg "$depth" --arg "$g") ;;
    go) command=("$BIN/go-binarytrees" -depth "$depth" -goroutines "$g") ;;
    *) command=("$BIN/binary_trees" --impl="$impl" --depth="$depth" --goroutines="$g") ;;
  esac
  local start end status
  start=$(date +%s%N)
  USGC_PROCS=$g GOMAXPROCS=$g GC_MARKERS=$g timeout "$BENCH_TIMEOUT_S" \
    /usr/bin/time -f '%M %U %S' -o "$work/rss" "${command[@]}" >"$work/out" 2>"$work/err"
  status=$?
  end=$(date +%s%N)
  if [ "$status" -ne 0 ]; then
    local why="exit status $status"
    [ "$status" = 124 ] && why="timed out after ${BENCH_TIMEOUT_S}s"
    echo "ERROR suite=jit_binary_trees case=$case_name impl=$impl reason=\"${command[*]}: $why: $(grep -v '^Command' "$work/err" | head -n 1 | head -c 200 | tr -d '"')\"" >>"$work/errors"
    progress "jit_binary_trees: $impl $case_name: failed ($why)"
    return
  fi
  case $impl in
    jit|jit-noshrink|interp)  # the entry's result: the last number printed
      check=$(grep -oE -- '-?[0-9]+' "$work/out" | tail -n 1) ;;
    *)
      check=$(awk '/^RESULT/ && / metric=check / { for (k = 2; k <= NF; k++) if ($k ~ /^value=/) print substr($k, 7) }' "$work/out")
      awk -v c="$case_name" -v i="$impl" '/^RESULT/ && / metric=wall_ms / { for (k = 2; k <= NF; k++) if ($k ~ /^value=/) print c, i, "inner_wall_ms", substr($k, 7), "ms" }' "$work/out" >>"$work/samples" ;;
  esac
  if [ "$check" != "$(bench_binary_trees_check "$depth")" ]; then
    echo "ERROR suite=jit_binary_trees case=$case_name impl=$impl reason=\"check ${check:-missing}, expected $(bench_binary_trees_check "$depth")\"" >>"$work/errors"
    return
  fi
  local wall_ms=$(((end - start) / 1000000))
  echo "$case_name $impl wall_ms $wall_ms ms" >>"$work/samples"
  echo "$case_name $impl peak_rss_kib $(tail -n 1 "$work/rss" | awk '{print $1}') KiB" >>"$work/samples"
  echo "$case_name $impl cpu_ms $(tail -n 1 "$work/rss" | awk '{printf "%.0f", ($2 + $3) * 1000}') ms" >>"$work/samples"
  echo "$case_name $impl check $check count" >>"$work/samples"
  progress "jit_binary_trees: $impl $case_name: $wall_ms ms"
}

: >"$work/samples"
: >"$work/errors"
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  progress "jit_binary_trees: repetition $rep/$BENCH_REPS"
  for depth in $BENCH_JIT_DEPTHS; do
    for g in $BENCH_JIT_GOROUTINES; do
      for impl in "${impls[@]}"; do
        [ "$impl" = interp ] && [ "$rep" -gt "$BENCH_JIT_INTERP_REPS" ] && continue
        run "$impl" "$depth" "$g"
      done
    done
  done
done

sort -u "$work/errors" | while IFS= read -r line; do say "$line"; done
errors=$((errors + $(sort -u "$work/errors" | wc -l)))
# Medians per (case, impl, metric), in the order first seen.
bench_medians <"$work/samples" >"$work/medians"
for depth in $BENCH_JIT_DEPTHS; do
  for g in $BENCH_JIT_GOROUTINES; do
    for impl in "${impls[@]}"; do
      awk -v c="depth$depth-g$g" -v i="$impl" '$1 == c && $2 == i' "$work/medians"
    done
  done
done | while read -r c impl metric value unit; do
  say "RESULT suite=jit_binary_trees case=$c impl=$impl metric=$metric value=$value unit=$unit"
done

median_of() { bench_median_of "$work/medians" "$@"; }
for depth in $BENCH_JIT_DEPTHS; do
  for g in $BENCH_JIT_GOROUTINES; do
    c="depth$depth-g$g"
    for impl in jit jit-noshrink interp; do
      wall=$(median_of "$c" "$impl" wall_ms)
      [ -n "$wall" ] || continue
      for peer in boehm go usgc usgc-inline; do
        peer_wall=$(median_of "$c" "$peer" wall_ms)
        [ -n "$peer_wall" ] && say "RESULT suite=jit_binary_trees case=$c impl=$impl metric=ratio_vs_$peer value=$(bench_ratio "$wall" "$peer_wall") unit=ratio"
        cpu=$(median_of "$c" "$impl" cpu_ms)
        peer_cpu=$(median_of "$c" "$peer" cpu_ms)
        [ -n "$cpu" ] && [ -n "$peer_cpu" ] && [ "$peer_cpu" != 0 ] &&
          say "RESULT suite=jit_binary_trees case=$c impl=$impl metric=cpu_ratio_vs_$peer value=$(bench_ratio "$cpu" "$peer_cpu") unit=ratio"
      done
    done
    jit_wall=$(median_of "$c" jit wall_ms)
    interp_wall=$(median_of "$c" interp wall_ms)
    if [ -n "$jit_wall" ] && [ -n "$interp_wall" ]; then
      say "RESULT suite=jit_binary_trees case=$c impl=jit metric=speedup_vs_interp value=$(bench_ratio "$interp_wall" "$jit_wall") unit=ratio"
    fi
    boehm_wall=$(median_of "$c" boehm wall_ms)
    go_wall=$(median_of "$c" go wall_ms)
    if [ -n "$jit_wall" ] && [ -n "$boehm_wall" ] && [ -n "$go_wall" ]; then
      jit_cpu=$(median_of "$c" jit cpu_ms)
      boehm_cpu=$(median_of "$c" boehm cpu_ms)
      go_cpu=$(median_of "$c" go cpu_ms)
      say "NOTE suite=jit_binary_trees case=$c target: jit <= 0.5x boehm and < 1x go;" \
          "measured wall jit/boehm = $(bench_ratio "$jit_wall" "$boehm_wall"), jit/go = $(bench_ratio "$jit_wall" "$go_wall");" \
          "cpu jit/boehm = $(bench_ratio "$jit_cpu" "$boehm_cpu"), jit/go = $(bench_ratio "$jit_cpu" "$go_cpu")"
    fi
  done
done

# ---- compile speed and per-stub costs ----------------------------------------------------------
if [ -f bench/jit_stub_costs.sh ]; then
  BUILD=$BUILD bash bench/jit_stub_costs.sh | tee -a "$BENCH_JIT_LOG" || errors=$((errors + 1))
fi

say "NOTE suite=jit end=$(date -u +%Y-%m-%dT%H:%M:%SZ) load_at_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
progress "results saved to $BENCH_JIT_LOG"
[ "$errors" -eq 0 ]
