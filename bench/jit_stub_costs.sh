#!/usr/bin/env bash
# jit_stub_costs.sh: the x86-64 JIT's compile speed and the cost of each stub, beside the seed's
# claims (run by bench/run_jit.sh, BENCH_SUITES=jit).
#
# Compile speed (suite=jit_compile): $BUILD/usgc-jit-stubs --no-run --compile-repeat K over every
# program of tests/escape/*.usir (the escape corpus). Per program: the first compile of the
# process (compile_ns, with its first-use costs) and the fastest of K-1 more (warm); summed over
# the corpus: functions and bytes of code per second, cold and warm, and the escape analysis's
# time beside it (the in-run reference: compiling costs this many analyses).
#
# Stub costs (suite=jit_stubs): each program of tests/jitgen/perfcheck/ has with(n) (a loop that
# runs the stub once more per iteration than without(n) does) and without(n):
#   private_alloc  GOROUTINE_PRIVATE allocation (amortized refills and private collections
#                  included in the time figures; 16-byte objects, 24 with the header)
#   stack_alloc    STACK_LOCAL allocation in a callee's frame (popped by its epilogue)
#   barrier        a same-goroutine reference store (against an int store)
#   poll           one more loop back edge: the poll and the stop-flag check
#   frame          a call of a leaf with 2 reference locals: frame push and pop, the whole call
# Figures per stub, each a difference with - without divided by n:
#   instructions_per_op        callgrind, instructions inside the stub's marked fast path per
#                              execution (make perfcheck's method; n = 20000)
#   instructions_per_iteration callgrind, the difference of all compiled-code instructions
#   wall_ns_per_op             median run_ns over BENCH_REPS runs (n = BENCH_JIT_STUB_N)
#   cpu_ns_per_op              task-clock of every thread of the run (perf_event software
#                              counter), median over the same runs
#   est_cycles_per_op          cpu_ns_per_op x the CPU's nominal MHz (/proc/cpuinfo): an
#                              estimate, printed only where hardware cycle counters are missing
#   cycles_per_op              perf_event cycles (user space) where the hardware has them
# and a NOTE with the seed's claims (private 3-5 cycles, stack 1-2, barrier 2-3).
# Environment: BUILD, BENCH_REPS (default 3), BENCH_QUICK=1 (n 10x smaller, 1 repetition),
# BENCH_JIT_STUB_N (default 20000000), BENCH_JIT_COMPILE_REPEAT (default 10).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
BENCH_QUICK=${BENCH_QUICK:-0}
if [ "$BENCH_QUICK" = 1 ]; then BENCH_REPS=1; N=${BENCH_JIT_STUB_N:-2000000}; else
  BENCH_REPS=${BENCH_REPS:-3}; N=${BENCH_JIT_STUB_N:-20000000}; fi
COMPILE_REPEAT=${BENCH_JIT_COMPILE_REPEAT:-10}
TOOL=$BUILD/usgc-jit-stubs
DIR=tests/jitgen/perfcheck
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
errors=0
if [ ! -x "$TOOL" ]; then
  echo "NOTE suite=jit_stubs $TOOL not built: compile speed and stub costs skipped"
  exit 0
fi
export USGC_PROCS=1
mhz=$(awk -F: '/^cpu MHz/ {printf "%.0f", $2; exit}' /proc/cpuinfo)

# ---- compile speed ------------------------------------------------------------------------------
: >"$work/compile"
for program in tests/escape/*.usir; do
  if ! "$TOOL" --no-run --compile-repeat "$COMPILE_REPEAT" "$program" >"$work/one" 2>"$work/err"; then
    echo "ERROR suite=jit_compile case=$(basename "$program" .usir) impl=jit reason=\"$(head -n 1 "$work/err" | tr -d '"')\""
    errors=$((errors + 1))
    continue
  fi
  grep '^compile ' "$work/one" >>"$work/compile"
done
awk -v n="$(ls tests/escape/*.usir | wc -l)" '
  { for (k = 2; k <= NF; k++) { split($k, kv, "="); sum[kv[1]] += kv[2] } programs++ }
  END {
    if (programs == 0) exit 1
    printf "RESULT suite=jit_compile case=escape_corpus impl=jit metric=programs value=%d unit=count\n", programs
    printf "RESULT suite=jit_compile case=escape_corpus impl=jit metric=functions value=%d unit=count\n", sum["functions"]
    printf "RESULT suite=jit_compile case=escape_corpus impl=jit metric=code_bytes value=%d unit=bytes\n", sum["code_bytes"]
    printf "RESULT suite=jit_compile case=escape_corpus impl=jit metric=functions_per_s_warm value=%.0f unit=functions/s\n", sum["functions"] / (sum["warm_compile_ns"] / 1e9)
    printf "RESULT suite=jit_compile case=escape_corpus impl=jit metric=code_bytes_per_s_warm value=%.0f unit=bytes/s\n", sum["code_bytes"] / (sum["warm_compile_ns"] / 1e9)
    printf "RESULT suite=jit_compile case=escape_corpus impl=jit metric=functions_per_s_first value=%.0f unit=functions/s\n", sum["functions"] / (sum["compile_ns"] / 1e9)
    printf "RESULT suite=jit_compile case=escape_corpus impl=jit metric=code_bytes_per_s_first value=%.0f unit=bytes/s\n", sum["code_bytes"] / (sum["compile_ns"] / 1e9)
    printf "RESULT suite=jit_compile case=escape_corpus impl=jit metric=warm_compile_vs_escape_analysis value=%.3f unit=ratio\n", sum["warm_compile_ns"] / sum["analysis_ns"]
  }' "$work/compile" || { echo "ERROR suite=jit_compile case=escape_corpus impl=jit reason=\"no program compiled\""; errors=$((errors + 1)); }

# ---- stub costs ---------------------------------------------------------------------------------
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
per_op() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f", (a - b) / n }'; }
have_cycles=0
for program in private_alloc stack_alloc barrier poll frame; do
  for entry in with without; do
    : >"$work/$program-$entry.wall"; : >"$work/$program-$entry.cpu"; : >"$work/$program-$entry.cycles"
    for ((rep = 1; rep <= BENCH_REPS; rep++)); do
      if ! "$TOOL" --counters --entry "$entry" --arg "$N" "$DIR/$program.usir" >"$work/run" 2>"$work/err"; then
        echo "ERROR suite=jit_stubs case=$program impl=jit reason=\"$entry: $(head -n 1 "$work/err" | tr -d '"')\""
        errors=$((errors + 1)); continue
      fi
      awk -F= '/^run_ns=/ {print $2}' "$work/run" >>"$work/$program-$entry.wall"
      awk '$1 == "counter" && $2 == "task-clock" {print $3}' "$work/run" >>"$work/$program-$entry.cpu"
      awk '$1 == "counter" && $2 == "cycles" {print $3}' "$work/run" >>"$work/$program-$entry.cycles"
      grep -q '^counter cycles ' "$work/run" && have_cycles=1
      grep -m1 '^counters_unavailable hardware' "$work/run" >"$work/why-no-cycles"
    done
  done
  # callgrind: the stub's own instructions and the compiled code's difference (n = 20000)
  instructions=""; iteration=""
  if command -v valgrind >/dev/null 2>&1; then
    for entry in with without; do
      valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$work/$entry.cg" \
        "$TOOL" --entry "$entry" --arg 20000 "$DIR/$program.usir" >"$work/$entry.ranges" 2>/dev/null &&
        python3 "$DIR/callgrind_stub_costs.py" "$work/$entry.cg" "$work/$entry.ranges" >"$work/$entry.costs"
    done
    stub=$program; [ "$program" = frame ] && stub=frame_push
    instructions=$(awk -v s="$stub" '$1 == "stub" && $2 == s { for (k = 3; k <= NF; k++) if ($k ~ /^per_execution=/) print substr($k, 15) }' "$work/with.costs" 2>/dev/null)
    with_ir=$(awk '$1 == "jit_instructions" {print $2}' "$work/with.costs" 2>/dev/null)
    without_ir=$(awk '$1 == "jit_instructions" {print $2}' "$work/without.costs" 2>/dev/null)
    [ -n "$with_ir" ] && [ -n "$without_ir" ] && iteration=$(per_op "$with_ir" "$without_ir" 20000)
  fi
  case_name=$program
  [ -n "$instructions" ] && echo "RESULT suite=jit_stubs case=$case_name impl=jit metric=instructions_per_op value=$instructions unit=instructions"
  [ -n "$iteration" ] && echo "RESULT suite=jit_stubs case=$case_name impl=jit metric=instructions_per_iteration value=$iteration unit=instructions"
  wall_with=$(median <"$work/$program-with.wall"); wall_without=$(median <"$work/$program-without.wall")
  cpu_with=$(median <"$work/$program-with.cpu"); cpu_without=$(median <"$work/$program-without.cpu")
  [ -n "$wall_with" ] && [ -n "$wall_without" ] && echo "RESULT suite=jit_stubs case=$case_name impl=jit metric=wall_ns_per_op value=$(per_op "$wall_with" "$wall_without" "$N") unit=ns"
  if [ -n "$cpu_with" ] && [ -n "$cpu_without" ]; then
    cpu=$(per_op "$cpu_with" "$cpu_without" "$N")
    echo "RESULT suite=jit_stubs case=$case_name impl=jit metric=cpu_ns_per_op value=$cpu unit=ns"
    if [ "$have_cycles" = 0 ] && [ -n "$mhz" ]; then
      echo "RESULT suite=jit_stubs case=$case_name impl=jit metric=est_cycles_per_op value=$(awk -v c="$cpu" -v m="$mhz" 'BEGIN {printf "%.1f", c * m / 1000}') unit=cycles"
    fi
  fi
  cycles_with=$(median <"$work/$program-with.cycles"); cycles_without=$(median <"$work/$program-without.cycles")
  [ -n "$cycles_with" ] && [ -n "$cycles_without" ] && echo "RESULT suite=jit_stubs case=$case_name impl=jit metric=cycles_per_op value=$(per_op "$cycles_with" "$cycles_without" "$N") unit=cycles"
done
if [ "$have_cycles" = 0 ]; then
  echo "NOTE suite=jit_stubs cycles not counted: $(cut -d' ' -f3- "$work/why-no-cycles" 2>/dev/null | head -c 300); est_cycles_per_op = cpu_ns_per_op x ${mhz:-?} MHz instead"
fi
echo "NOTE suite=jit_stubs seed claims: stack allocation 1-2 cycles, private 3-5, same-goroutine barrier 2-3; measured above (private includes amortized refills and collections)"
[ "$errors" -eq 0 ]
