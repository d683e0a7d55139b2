#!/usr/bin/env bash
# bench/run_wasm.sh — binary-trees on one goroutine (bench/binary_trees_single.usir) lowered to
# WebAssembly and run in node (usgc-run --target=wasm: the wasm runtime's allocator and
# collector), against the same .usir under the x86-64 JIT (usgc-run) and the same program written
# in JavaScript run by node (bench/binary_trees.mjs: V8's collector), in the same run, the
# repetitions interleaved. Each run's check is compared with the expected node count.
#
# Output, one line per figure (wall_ms is the median of BENCH_REPS whole-process runs, node's
# start-up and the lowering included):
#   RESULT suite=wasm_binary_trees case=depth<N> impl=wasm|jit|js metric=wall_ms value=<ms> unit=ms
#   RESULT ... impl=wasm metric=ratio_vs_jit|ratio_vs_js value=<wasm wall / peer wall> unit=ratio
#   RESULT ... impl=wasm metric=collections value=<n> unit=count   (the wasm runtime's, --stats)
#   RESULT suite=wasm_stubs case=<sequence> impl=wasm metric=wasm_instructions value=<n> unit=count
#     the fast path of each inline sequence, counted from the emitted module (usgc-run
#     --target=wasm --stub-counts; deterministic) over this program and tests/escape/arrays.usir
# Environment: BUILD (default build), BENCH_REPS (default 3), BENCH_WASM_DEPTHS (default "16").
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

expected_check() {  # single goroutine: the same sum as run_jit.sh's
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
for program in "$PROGRAM" tests/escape/arrays.usir; do
  "$BUILD/usgc-run" --target=wasm --stub-counts "$program"
done | sort -u | while read -r _ name count; do
  echo "RESULT suite=wasm_stubs case=$name impl=wasm metric=wasm_instructions value=$count unit=count"
done
exit $((errors > 0))
