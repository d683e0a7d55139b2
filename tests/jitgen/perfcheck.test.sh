#!/usr/bin/env bash
# perfcheck.test.sh (`make perfcheck`, and part of `make test`): the JIT's stub fast paths within
# their instruction budgets, counted by valgrind --tool=callgrind (deterministic, no hardware
# counters needed).
#
# Method: each program of tests/jitgen/perfcheck/ has two entries, with(n) (a loop of n iterations
# that runs the stub once per iteration, or twice for the poll) and without(n) (the same loop
# without it). $BUILD/usgc-jit-stubs compiles the program, prints where every function and stub
# fast path is (absolute addresses, and each stub's instructions) and runs the entry; callgrind
# records the instructions executed at every address (--dump-instr=yes), and
# tests/jitgen/perfcheck/callgrind_stub_costs.py attributes them to the stubs' ranges. Two figures
# per stub:
#   - per execution: instructions executed inside the stub's marked fast path / times it was
#     entered — the budgeted figure; the loop must have entered it at least n times;
#   - per iteration: (instructions in compiled code of with(n) - of without(n)) / n — what the
#     operation adds to a loop, the compiler's glue around the stub included (printed).
# Budgets (x86-64 JIT, jitgen/x86_64/stubs.hpp):
#   private-alloc    GOROUTINE_PRIVATE allocation fast path <= 7 instructions, header store included
#   barrier          same-goroutine reference store: <= 4 instructions beyond the plain store
#                    (per iteration: a reference store with barrier minus an int store)
#   poll             1 instruction against the poll page per poll (the poll ABI); the whole poll
#                    stub's count is printed beside it (it also loads the thread's poll pointer)
#   frame-push       shadow-stack frame push in the prologue <= 4 (a compact record: 3, plus
#                    the arena mark where the pop restores arena_top; `framed` has none)
#   frame-pop        shadow-stack frame pop in the epilogue <= 6
# Prints "PASS <name>: ...", "FAIL <name>: ..." or "SKIP <name>: <why>" per stub; exits non-zero
# on failure. SKIP when valgrind or the JIT driver is missing. About 30 s (8 runs under callgrind).
# Environment: BUILD (default build), PERFCHECK_ITERATIONS (default 20000).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
N=${PERFCHECK_ITERATIONS:-20000}
DIR=tests/jitgen/perfcheck
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
names=(private-alloc barrier poll frame-push frame-pop)
skip_all() {
  for name in "${names[@]}"; do echo "SKIP perfcheck-$name: $1"; done
  exit 0
}
command -v valgrind >/dev/null 2>&1 || skip_all "valgrind is not installed (tools/install-deps.sh installs it)"
command -v python3 >/dev/null 2>&1 || skip_all "python3 is not installed"
[ -x "$BUILD/usgc-jit-stubs" ] || skip_all "$BUILD/usgc-jit-stubs (the JIT's measuring driver) is not built"

# measure PROGRAM ENTRY: runs it under callgrind; its stub and function figures go to
# $work/PROGRAM-ENTRY.costs. Status 1 (and a reason in $work/why) when the run failed.
measure() {
  local program=$1 entry=$2 out=$work/$1-$2
  if ! USGC_PROCS=1 timeout 300 valgrind --tool=callgrind --dump-instr=yes \
      --callgrind-out-file="$out.cg" "$BUILD/usgc-jit-stubs" --entry "$entry" --arg "$N" \
      "$DIR/$program.usir" >"$out.ranges" 2>"$out.err"; then
    echo "valgrind $BUILD/usgc-jit-stubs --entry $entry $DIR/$program.usir failed: $(grep -v '^==' "$out.err" | head -n 2 | tr '\n' ' ')" >"$work/why"
    return 1
  fi
  if ! python3 "$DIR/callgrind_stub_costs.py" "$out.cg" "$out.ranges" >"$out.costs" 2>"$out.err"; then
    echo "callgrind_stub_costs.py: $(head -n 2 "$out.err" | tr '\n' ' ')" >"$work/why"
    return 1
  fi
}
# field FILE STUB KEY: a stub's figure (e.g. per_execution) from a .costs file.
field() {
  awk -v stub="$2" -v key="$3" '$1 == "stub" && $2 == stub {
    for (k = 3; k <= NF; k++) { split($k, kv, "="); if (kv[1] == key) print kv[2] } }' "$work/$1.costs"
}
jit_instructions() { awk '$1 == "jit_instructions" {print $2}' "$work/$1.costs"; }
per_iteration() {  # program: (with - without) / N
  awk -v a="$(jit_instructions "$1-with")" -v b="$(jit_instructions "$1-without")" -v n="$N" \
    'BEGIN {printf "%.2f", (a - b) / n}'
}
within() { awk -v value="$1" -v budget="$2" 'BEGIN {exit !(value <= budget + 0.005)}'; }
# check NAME VALUE BUDGET EXECUTIONS MINIMUM DETAIL
check() {
  local name=$1 value=$2 budget=$3 executions=$4 minimum=$5 detail=$6
  if [ -z "$value" ] || [ -z "$executions" ]; then
    echo "FAIL perfcheck-$name: no figure for the stub (not compiled into the program?): $detail"
    failures=$((failures + 1))
  elif [ "$executions" -lt "$minimum" ]; then
    echo "FAIL perfcheck-$name: the stub ran $executions times, fewer than the loop's $minimum: $detail"
    failures=$((failures + 1))
  elif within "$value" "$budget"; then
    echo "PASS perfcheck-$name: $value <= $budget ($detail)"
  else
    echo "FAIL perfcheck-$name: $value > budget $budget ($detail)"
    failures=$((failures + 1))
  fi
}

declare -A failed_program=()
for program in private_alloc barrier poll frame; do
  for entry in with without; do
    if ! measure "$program" "$entry"; then failed_program[$program]=$(cat "$work/why"); break; fi
  done
done
program_failed() {  # name program: FAIL line when the program's runs failed
  if [ -n "${failed_program[$2]:-}" ]; then
    echo "FAIL perfcheck-$1: ${failed_program[$2]}"
    failures=$((failures + 1))
    return 0
  fi
  return 1
}

if ! program_failed private-alloc private_alloc; then
  executions=$(field private_alloc-with private_alloc executions)
  completed=$(field private_alloc-with private_alloc completed)
  check private-alloc "$(field private_alloc-with private_alloc per_execution)" 7 "${executions:-0}" "$N" \
    "instructions per GOROUTINE_PRIVATE allocation fast path, header store included; $executions allocations, $completed completed on the fast path; per loop iteration vs copying a reference: +$(per_iteration private_alloc)"
fi
if ! program_failed barrier barrier; then
  stub=$(field barrier-with barrier per_execution)
  check barrier "$(per_iteration barrier)" 4 "$(field barrier-with barrier executions)" "$N" \
    "instructions a same-goroutine reference store adds beyond a plain store (per loop iteration, with - without); the barrier stub, store included: $stub per store"
fi
if ! program_failed poll poll; then
  check poll "$(field poll-with poll memory_accesses_per_execution)" 1 "$(field poll-with poll executions)" "$((2 * N))" \
    "instructions against the poll page per poll; the poll stub: $(field poll-with poll per_execution) instructions per poll (the load of the thread's poll pointer, then the test); a back edge with its stop-flag check adds $(per_iteration poll) per loop iteration"
fi
if ! program_failed frame-push frame; then
  check frame-push "$(field frame-with frame_push per_execution)" 4 "$(field frame-with frame_push executions)" "$N" \
    "instructions per shadow-stack frame push (prologue); a whole call of a 2-reference function calling a frameless one adds $(per_iteration frame) per loop iteration"
fi
if ! program_failed frame-pop frame; then
  check frame-pop "$(field frame-with frame_pop per_execution)" 6 "$(field frame-with frame_pop executions)" "$N" \
    "instructions per shadow-stack frame pop (epilogue, leave and ret included)"
fi
[ "$failures" -eq 0 ]
