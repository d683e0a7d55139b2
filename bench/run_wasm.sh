#!/usr/bin/env bash
# bench/run_wasm.sh — binary-trees on one goroutine (bench/binary_trees_single.usir) lowered to
# WebAssembly and run in node (usgc-run --target=wasm: usgc's collector, gc/, built for
# wasm32), against the same .usir under the x86-64 JIT (usgc-run) and the same program written
# in JavaScript run by node (bench/binary_trees.mjs: V8's collector), in the same run, the
# repetitions interleaved. Each run's check is compared with the expected node count.
#
# Output, one line per figure (wall_ms is the median of BENCH_REPS whole-process runs, node's
# start-up and the lowering included):
#   RESULT suite=wasm_binary_trees case=depth<N> impl=wasm|jit|js metric=wall_ms value=<ms> unit=ms
#   RESULT ... impl=wasm metric=ratio_vs_jit|ratio_vs_js value=<wasm wall / peer wall> unit=ratio
#   RESULT ... impl=wasm metric=collections value=<n> unit=count   (private + shared, --stats)
#   RESULT suite=wasm_goroutines case=ping_pong<N> impl=wasm|jit|jit_1p|js metric=wall_ms ...
#     bench/ping_pong.usir: two goroutines hand a counter over unbuffered channels N times (a
#     goroutine switch per hand-off: asyncify unwind + rewind in wasm; usgc's scheduler under the
#     JIT, with its default Ps and with USGC_PROCS=1; async/await in bench/ping_pong.mjs)
#   RESULT suite=wasm_goroutines case=binary_trees<N>_g4 impl=wasm|jit|jit_1p metric=wall_ms ...
#     bench/binary_trees.usir with 4 worker goroutines and a channel (no JavaScript peer)
#   (for these two: also metric=cpu_ms, user + system CPU time of the whole process, median;
#   RESULT ... impl=wasm metric=wall_ratio_vs_<peer>|cpu_ratio_vs_<peer> value=<wasm / peer>)
#   RESULT suite=wasm_counters case=depth<N> impl=wasm|jit|js metric=<event> value=<n> unit=count|ns
#     process-wide perf_event counts of one run (bench/process_counters.cpp): software events
#     (task-clock, page-faults, context-switches) and, where the machine has a PMU, hardware
#     ones (instructions, cycles, branch-misses; otherwise a NOTE line with the reason), and
#     impl=wasm metric=<event>_ratio_vs_jit|js
#   RESULT suite=wasm_stubs case=<sequence> impl=wasm metric=wasm_instructions value=<n> unit=count
#     the fast path of each inline sequence, counted from the emitted module (usgc-run
#     --target=wasm --stub-counts; deterministic) over this program and tests/escape/arrays.usir
# Environment: BUILD (default build), BENCH_REPS (default 3), BENCH_WASM_DEPTHS (default "16"),
# BENCH_PING_PONG_ROUNDS (default 1000000). The goroutine cases need binaryen's wasm-opt (a NOTE
# line says when they are skipped).
# Exit status: 0 when every run gave the right check, 1 otherwise; skips (exit 0, a NOTE line)
# without node or the wasm runtime.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
BENCH_REPS=${BENCH_REPS:-3}
BENCH_WASM_DEPTHS=${BENCH_WASM_DEPTHS:-16}
PROGRAM=bench/binary_trees_single.usir
if ! command -v node >/dev/null 2>&1 || [ ! -e "$BUILD/wasm/usgc-wasm-runtime.wasm" ]; then
  echo "NOTE suite=wasm_binary_trees skipped: node or $BUILD/wasm/usgc-wasm-runtime.wasm (make wasm) is missing"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "MACHINE suite=wasm date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) cpu=\"$(bench_cpu_model)\"" \
  "nproc=$(nproc) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" reps=$BENCH_REPS node=$(node --version)" \
  "commit=$(bench_commit)"

expected_check() {  # the same sum as run_jit.sh's (with or without worker goroutines)
  local n=$1 d sum
  sum=$(((1 << (n + 2)) - 1 + (1 << (n + 1)) - 1))
  for ((d = 4; d <= n; d += 2)); do sum=$((sum + (1 << (n - d + 4)) * ((1 << (d + 1)) - 1))); done
  echo "$sum"
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

errors=0
for depth in $BENCH_WASM_DEPTHS; do
  expected="main returned $(expected_check "$depth")"
  : >"$work/wasm" ; : >"$work/jit" ; : >"$work/js"
  for ((rep = 0; rep < BENCH_REPS; ++rep)); do
    for impl in wasm jit js; do
      case $impl in
        wasm) command=("$BUILD/usgc-run" --target=wasm --stats --arg "$depth" "$PROGRAM") ;;
        jit) command=("$BUILD/usgc-run" --arg "$depth" "$PROGRAM") ;;
        js) command=(node bench/binary_trees.mjs "$depth") ;;
      esac
      start=$(date +%s%N)
      "${command[@]}" >"$work/out" 2>&1
      end=$(date +%s%N)
      if [ "$(head -1 "$work/out")" != "$expected" ]; then
        echo "ERROR suite=wasm_binary_trees case=depth$depth impl=$impl: $(head -c 200 "$work/out")"
        errors=$((errors + 1))
        continue
      fi
      echo $(((end - start) / 1000000)) >>"$work/$impl"
      [ $impl = wasm ] && sed -n 's/.*collections=\([0-9]*\).*/\1/p' "$work/out" >"$work/collections"
    done
  done
  for impl in wasm jit js; do
    [ -s "$work/$impl" ] || continue
    eval "wall_$impl=$(median <"$work/$impl")"
    echo "RESULT suite=wasm_binary_trees case=depth$depth impl=$impl metric=wall_ms value=$(median <"$work/$impl") unit=ms"
  done
  if [ -s "$work/wasm" ]; then
    for peer in jit js; do
      [ -s "$work/$peer" ] || continue
      eval "peer_wall=\$wall_$peer"
      echo "RESULT suite=wasm_binary_trees case=depth$depth impl=wasm metric=ratio_vs_$peer value=$(awk -v a="$wall_wasm" -v b="$peer_wall" 'BEGIN {printf "%.2f", a / b}') unit=ratio"
    done
    echo "RESULT suite=wasm_binary_trees case=depth$depth impl=wasm metric=collections value=$(cat "$work/collections") unit=count"
  fi
done
# Process-wide counters (bench/process_counters: the project's perf_event groups opened with
# inherit before the fork, so node's every thread — V8's compilers and its GC helpers included —
# is counted): node running the lowered module in the host alone (no lowering, no usgc-run), the
# JIT, and node running the JavaScript program; one run each, after the timed ones.
counters="$BUILD/bench/process_counters"
if [ -x "$counters" ]; then
  for depth in $BENCH_WASM_DEPTHS; do
    expected="main returned $(expected_check "$depth")"
    "$BUILD/usgc-run" --target=wasm --arg "$depth" -o "$work/binary_trees.wasm" "$PROGRAM"
    for impl in wasm jit js; do
      case $impl in
        wasm) command=(node "$BUILD/wasm/usgc-wasm-host.mjs" --runtime="$BUILD/wasm/usgc-wasm-runtime.wasm"
          --arg="$depth" "$work/binary_trees.wasm") ;;
        jit) command=("$BUILD/usgc-run" --arg "$depth" "$PROGRAM") ;;
        js) command=(node bench/binary_trees.mjs "$depth") ;;
      esac
      "$counters" wasm_counters "depth$depth" "$impl" -- "${command[@]}" >"$work/counted" 2>&1
      if ! grep -qxF "$expected" "$work/counted"; then
        echo "ERROR suite=wasm_counters case=depth$depth impl=$impl: $(head -c 200 "$work/counted")"
        errors=$((errors + 1))
        continue
      fi
      grep -E '^(RESULT|NOTE) ' "$work/counted" | sort -u
      grep '^RESULT ' "$work/counted" | sed 's/.* metric=\([^ ]*\) value=\([^ ]*\) .*/\1 \2/' >"$work/counted.$impl"
    done
    for metric in task-clock instructions cycles page-faults; do
      wasm_value=$(awk -v m="$metric" '$1 == m {print $2}' "$work/counted.wasm" 2>/dev/null)
      [ -n "$wasm_value" ] || continue
      for peer in jit js; do
        peer_value=$(awk -v m="$metric" '$1 == m {print $2}' "$work/counted.$peer" 2>/dev/null)
        [ -n "$peer_value" ] && [ "$peer_value" != 0 ] || continue
        echo "RESULT suite=wasm_counters case=depth$depth impl=wasm metric=${metric}_ratio_vs_$peer value=$(awk -v a="$wasm_value" -v b="$peer_value" 'BEGIN {printf "%.2f", a / b}') unit=ratio"
      done
    done
    rm -f "$work"/counted.*
  done
else
  echo "NOTE suite=wasm_counters skipped: $counters is not built (make bench-bins)"
fi

# compare SUITE CASE EXPECTED IMPL... : runs each implementation BENCH_REPS times (interleaved),
# checks its first line, prints the median wall time per implementation and wasm's ratios.
# The commands are in the array variables command_<impl>.
compare() {
  local suite=$1 case=$2 expected=$3 impl rep start end peer
  shift 3
  for impl in "$@"; do : >"$work/$impl" ; : >"$work/$impl.cpu"; done
  local TIMEFORMAT='%U %S'
  for ((rep = 0; rep < BENCH_REPS; ++rep)); do
    for impl in "$@"; do
      local -n command="command_$impl"
      start=$(date +%s%N)
      if [ "$impl" = jit_1p ]; then
        { time USGC_PROCS=1 "${command[@]}" >"$work/out" 2>&1; } 2>"$work/time"
      else
        { time "${command[@]}" >"$work/out" 2>&1; } 2>"$work/time"
      fi
      end=$(date +%s%N)
      if [ "$(head -1 "$work/out")" != "$expected" ]; then
        echo "ERROR suite=$suite case=$case impl=$impl: $(head -c 200 "$work/out")"
        errors=$((errors + 1))
        continue
      fi
      echo $(((end - start) / 1000000)) >>"$work/$impl"
      awk '{printf "%d\n", ($1 + $2) * 1000}' "$work/time" >>"$work/$impl.cpu"
    done
  done
  local metric file
  for metric in wall_ms cpu_ms; do
    for impl in "$@"; do
      file="$work/$impl"
      [ $metric = cpu_ms ] && file="$work/$impl.cpu"
      [ -s "$file" ] || continue
      echo "RESULT suite=$suite case=$case impl=$impl metric=$metric value=$(median <"$file") unit=ms"
    done
    [ -s "$work/wasm" ] || continue
    for peer in "$@"; do
      [ "$peer" = wasm ] || [ ! -s "$work/$peer" ] && continue
      local a="$work/wasm" b="$work/$peer"
      [ $metric = cpu_ms ] && a="$a.cpu" && b="$b.cpu"
      echo "RESULT suite=$suite case=$case impl=wasm metric=${metric%_ms}_ratio_vs_$peer value=$(awk -v a="$(median <"$a")" -v b="$(median <"$b")" 'BEGIN {printf "%.2f", a / b}') unit=ratio"
    done
  done
}

if command -v wasm-opt >/dev/null 2>&1; then
  rounds=${BENCH_PING_PONG_ROUNDS:-1000000}
  command_wasm=("$BUILD/usgc-run" --target=wasm --arg "$rounds" bench/ping_pong.usir)
  command_jit=("$BUILD/usgc-run" --arg "$rounds" bench/ping_pong.usir)
  command_jit_1p=("${command_jit[@]}")
  command_js=(node bench/ping_pong.mjs "$rounds")
  compare wasm_goroutines "ping_pong$rounds" "main returned $((2 * rounds))" wasm jit jit_1p js
  for depth in $BENCH_WASM_DEPTHS; do
    command_wasm=("$BUILD/usgc-run" --target=wasm --arg "$depth" --arg 4 bench/binary_trees.usir)
    command_jit=("$BUILD/usgc-run" --arg "$depth" --arg 4 bench/binary_trees.usir)
    command_jit_1p=("${command_jit[@]}")
    compare wasm_goroutines "binary_trees${depth}_g4" "main returned $(expected_check "$depth")" \
      wasm jit jit_1p
  done
else
  echo "NOTE suite=wasm_goroutines skipped: binaryen's wasm-opt is not installed (apt-get install binaryen)"
fi

for program in "$PROGRAM" tests/escape/arrays.usir; do
  "$BUILD/usgc-run" --target=wasm --stub-counts "$program"
done | sort -u | while read -r _ name count; do
  echo "RESULT suite=wasm_stubs case=$name impl=wasm metric=wasm_instructions value=$count unit=count"
done
exit $((errors > 0))
