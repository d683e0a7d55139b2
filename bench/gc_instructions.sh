#!/usr/bin/env bash
# gc_instructions.sh: instructions per object of each allocation class and per barrier store,
# counted by valgrind --tool=callgrind on $BUILD/bench/gc_costs --callgrind-case=<case> --count=N.
#
# Method: callgrind counts Ir only inside callgrind_measured_loop (--toggle-collect), which runs
# the case's loop N times. Each case runs twice, with N1 and N2 objects or stores; (Ir(N2) -
# Ir(N1)) / (N2 - N1) removes what does not grow with N (the first block, the first run, the
# loop's setup) and keeps what does, the amortized collections included (a private collection
# every ~1 MiB of garbage, a shared one every ~4 MiB). With the collector off (USGC_GC_PERCENT=off)
# the same difference gives the allocation paths alone: metric=instructions_per_object_gc_off.
# USGC_PROCS=1 for every run (one marker; valgrind runs one thread at a time anyway).
#
# Output (bench/run_all.sh's format; bench/run_gc_costs.sh passes the lines through):
#   RESULT suite=gc_costs case=alloc-<class> impl=usgc metric=instructions_per_object value=<n> unit=instructions
#   RESULT suite=gc_costs case=alloc-malloc impl=glibc metric=instructions_per_object ...      (malloc + free)
#   RESULT suite=gc_costs case=barrier-<kind> impl=usgc|plain metric=instructions_per_store ...
#   RESULT suite=gc_costs case=barrier-publish impl=usgc metric=instructions_per_publish ...     (minus the allocation)
# Without valgrind: "NOTE valgrind not installed: instruction counts skipped" and exit status 0.
#
# Environment: BUILD (default build), BENCH_QUICK=1 (counts 10x smaller, collector on only),
# BENCH_TIMEOUT_S (per valgrind run, default 300).
# Exit status: 0, or 1 when a run failed (an ERROR line names it).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
BENCH_QUICK=${BENCH_QUICK:-0}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
BIN=$BUILD/bench/gc_costs

if ! command -v valgrind >/dev/null; then
  echo "NOTE valgrind not installed: instruction counts skipped (tools/install-deps.sh installs it)"
  exit 0
fi
if [ ! -x "$BIN" ]; then
  echo "gc_instructions.sh: $BIN not built (make BUILD=$BUILD $BIN)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
errors=0

if [ "$BENCH_QUICK" = 1 ]; then n1=20000; n2=100000; modes="on"; else n1=100000; n2=500000; modes="on off"; fi

# ir CASE COUNT GC: the Ir inside callgrind_measured_loop, or empty (an ERROR line printed).
ir() {
  local out=$work/cg.out
  rm -f "$out"
  local gc_env=()
  [ "$3" = off ] && gc_env=(USGC_GC_PERCENT=off)
  if ! env USGC_PROCS=1 "${gc_env[@]+"${gc_env[@]}"}" timeout "$BENCH_TIMEOUT_S" valgrind --tool=callgrind \
      --callgrind-out-file="$out" --toggle-collect='*callgrind_measured_loop*' \
      "$BIN" --callgrind-case="$1" --count="$2" >"$work/stdout" 2>"$work/stderr"; then
    echo "ERROR suite=gc_costs case=$1 impl=callgrind reason=\"valgrind $BIN --callgrind-case=$1 --count=$2 (gc $3) failed: $(grep -m1 -v '^==' "$work/stderr" | head -c 200 | tr -d '"')$(grep -m1 '^ERROR' "$work/stdout" | head -c 200 | tr -d '"')\""
    errors=$((errors + 1))
    return
  fi
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

# per_unit CASE GC: (Ir(n2) - Ir(n1)) / (n2 - n1), or empty.
per_unit() {
  local a b
  a=$(ir "$1" "$n1" "$2")
  [ -n "$a" ] || return
  b=$(ir "$1" "$n2" "$2")
  [ -n "$b" ] || return
  awk -v a="$a" -v b="$b" -v n1="$n1" -v n2="$n2" 'BEGIN {printf "%.1f", (b - a) / (n2 - n1)}'
}

echo "NOTE suite=gc_costs case=instructions valgrind=$(valgrind --version) counts=$n1,$n2 procs=1" \
  "(Ir inside callgrind_measured_loop; per unit = difference of the two counts / $((n2 - n1)))"

# case-in-gc_costs  result-case  impl  unit
cases="stack:alloc-stack:usgc:object private:alloc-private:usgc:object private-inline:alloc-private-inline:usgc:object
shared:alloc-shared:usgc:object global:alloc-global:usgc:object malloc:alloc-malloc:glibc:object
plain:barrier-plain:plain:store barrier-same:barrier-same:usgc:store barrier-cross:barrier-cross:usgc:store
barrier-publish:barrier-publish:usgc:store alloc-for-publish:barrier-publish-alloc-only:usgc:object"
declare -A value
for mode in $modes; do
  for spec in $cases; do
    IFS=: read -r cg_case name impl unit <<<"$spec"
    # The collector-off column is about allocation paths only.
    if [ "$mode" = off ] && [ "$unit" != object ]; then continue; fi
    [ "$mode" = off ] && [ "$cg_case" = malloc ] && continue
    echo "gc_instructions: $cg_case (collector $mode)" >&2
    v=$(per_unit "$cg_case" "$mode")
    [ -n "$v" ] || continue
    value[$cg_case.$mode]=$v
    metric=instructions_per_$unit
    [ "$mode" = off ] && metric=${metric}_gc_off
    [ "$cg_case" = barrier-publish ] && metric=instructions_per_alloc_and_publishing_store
    echo "RESULT suite=gc_costs case=$name impl=$impl metric=$metric value=$v unit=instructions"
  done
done
if [ -n "${value[barrier-publish.on]:-}" ] && [ -n "${value[alloc-for-publish.on]:-}" ]; then
  echo "RESULT suite=gc_costs case=barrier-publish impl=usgc metric=instructions_per_publish value=$(awk -v a="${value[barrier-publish.on]}" -v b="${value[alloc-for-publish.on]}" 'BEGIN {printf "%.1f", a - b}') unit=instructions"
fi
for kind in barrier-same barrier-cross; do
  if [ -n "${value[$kind.on]:-}" ] && [ -n "${value[plain.on]:-}" ]; then
    echo "RESULT suite=gc_costs case=$kind impl=usgc metric=instructions_beyond_plain_store value=$(awk -v a="${value[$kind.on]}" -v b="${value[plain.on]}" 'BEGIN {printf "%.1f", a - b}') unit=instructions"
  fi
done
[ "$errors" -eq 0 ]
