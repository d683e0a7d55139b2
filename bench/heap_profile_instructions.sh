#!/usr/bin/env bash
# heap_profile_instructions.sh: what the heap profile costs in malloc mode, in instructions —
# a figure the load of a shared machine cannot disturb (callgrind counts every instruction the
# program executes, usgc's and the program's; wall and CPU time are in run_heap_profile.sh).
#
# Runs each workload (tests/preload/programs, one thread so the count is reproducible: churn of
# random sizes 8..1024 with some up to 32 KiB, and realloc growth chains) under
# valgrind --tool=callgrind with:
#   usgc        LD_PRELOAD=libusgc_preload.so, USGC_PROF unset
#   usgc_prof   the same with USGC_PROF=1 (default rate: a sample per 512 KiB)
#   usgc_base, usgc_base_prof   BASE_PRELOAD (optional: another build, e.g. before a change),
#               without and with USGC_PROF=1
#   jemalloc, jemalloc_prof   libjemalloc.so.2 without and with MALLOC_CONF=prof:true (the peer)
# and prints, per workload:
#   RESULT suite=heap_profile_instructions case=<workload> impl=<impl> metric=instructions value=<n> unit=instructions
#   RESULT suite=heap_profile_instructions case=<workload> impl=usgc_prof metric=ratio_prof_on_vs_off value=<x> unit=ratio
#   RESULT suite=heap_profile_instructions case=<workload> impl=usgc metric=ratio_off_vs_base value=<x> unit=ratio
#   RESULT suite=heap_profile_instructions case=<workload> impl=usgc_base_prof metric=ratio_prof_on_vs_off value=<x> unit=ratio
#   RESULT suite=heap_profile_instructions case=<workload> impl=jemalloc_prof metric=ratio_prof_on_vs_off value=<x> unit=ratio
#   RESULT suite=heap_profile_instructions case=<workload> impl=<usgc_prof|usgc_base_prof> metric=stack_instructions_per_sample value=<n> unit=instructions
# The last: what capturing one sample's call stack costs, from one more callgrind run that counts
# only inside the stack capture (--toggle-collect: stack_walk_capture, or _Unwind_Backtrace in a
# build without it), divided by the samples the profile's stderr summary reports.
# Sampling draws random countdowns, so usgc_prof's count varies by a few samples' worth between
# runs (REPS runs, median). Environment: BUILD (default build), REPS (default 3), BASE_PRELOAD,
# IMPLS="usgc usgc_prof ..." (these only), BENCH_ONLY="churn_1t ..." (these workloads only).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
REPS=${REPS:-3}
PROGRAMS=$PWD/$BUILD/programs
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
command -v valgrind >/dev/null || { echo "NOTE suite=heap_profile_instructions skipped: valgrind not installed"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$BUILD/libusgc_preload.so" "$work/usgc.so"
impls=(usgc usgc_prof)
if [ -n "${BASE_PRELOAD:-}" ]; then cp "$BASE_PRELOAD" "$work/base.so"; impls+=(usgc_base usgc_base_prof); fi
[ -f "$JEMALLOC" ] && impls+=(jemalloc jemalloc_prof)
[ -n "${IMPLS:-}" ] && read -r -a impls <<<"$IMPLS"
# Single-threaded only: with two threads the count depends on the schedule (waiting loops).
declare -A WORKLOAD=(
  [churn_1t]="$PROGRAMS/churn 1 300000 1"
  [realloc_growth]="$PROGRAMS/realloc_growth 300 1"
)
cases=(${BENCH_ONLY:-churn_1t realloc_growth})
echo "MACHINE suite=heap_profile_instructions date=$(date -u +%Y-%m-%dT%H:%M:%SZ) cpu=\"$(bench_cpu_model)\" valgrind=$(valgrind --version) commit=$(bench_commit)"
status=0
count() {  # IMPL CASE -> instructions (or empty)
  local impl=$1 c=$2 dir="$work/run-$1-$2"
  mkdir -p "$dir"
  local env_args=()
  # USGC_STATS=0: the statistics block is refreshed by the clock, which would make the count
  # depend on how long the run took.
  case $impl in
    usgc) env_args=("LD_PRELOAD=$work/usgc.so") ;;
    usgc_prof) env_args=("LD_PRELOAD=$work/usgc.so" USGC_PROF=1 "USGC_PROF_FILE=$dir/p.pb.gz") ;;
    usgc_base) env_args=("LD_PRELOAD=$work/base.so") ;;
    usgc_base_prof) env_args=("LD_PRELOAD=$work/base.so" USGC_PROF=1 "USGC_PROF_FILE=$dir/p.pb.gz") ;;
    jemalloc) env_args=("LD_PRELOAD=$JEMALLOC") ;;
    jemalloc_prof) env_args=("LD_PRELOAD=$JEMALLOC" "MALLOC_CONF=prof:true,prof_final:false") ;;
  esac
  env_args+=(USGC_STATS=0)
  read -r -a cmd <<<"${WORKLOAD[$c]}"
  bench_callgrind_instructions "$dir" heap_profile_instructions "$c" "$impl" "${env_args[@]}" -- "${cmd[@]}" ||
    status=1
}
# per_sample IMPL CASE: the stack capture's instructions per sample (empty when not measurable).
per_sample() {
  local impl=$1 c=$2 dir="$work/sample-$1-$2" lib pattern
  case $impl in
    usgc_prof) lib=$work/usgc.so ;;
    usgc_base_prof) lib=$work/base.so ;;
    *) return 0 ;;
  esac
  pattern=_Unwind_Backtrace
  nm "$lib" 2>/dev/null | grep stack_walk_capture >/dev/null && pattern='*stack_walk_capture*'
  mkdir -p "$dir"
  read -r -a cmd <<<"${WORKLOAD[$c]}"
  (cd "$dir" && valgrind --tool=callgrind --trace-children=yes "--toggle-collect=$pattern" \
     --callgrind-out-file=/dev/null env "LD_PRELOAD=$lib" USGC_PROF=1 "USGC_PROF_FILE=$dir/p.pb.gz" \
     USGC_STATS=0 "${cmd[@]}" >"$dir/out" 2>"$dir/err") || return 0
  local collected samples
  collected=$(grep -E '^==[0-9]+== Collected' "$dir/err" | tail -n 1 | awk '{print $NF}')
  samples=$(sed -nE 's/^usgc: heap profile: ([0-9]+) samples.*/\1/p' "$dir/err" | tail -n 1)
  [ -n "$collected" ] && [ -n "$samples" ] && [ "$samples" -gt 0 ] && echo $((collected / samples))
}
for c in "${cases[@]}"; do
  declare -A n=()
  for impl in "${impls[@]}"; do
    : >"$work/$c.$impl"
    for ((r = 0; r < REPS; r++)); do count "$impl" "$c" >>"$work/$c.$impl"; done
    [ -s "$work/$c.$impl" ] || continue
    n[$impl]=$(bench_median_of_numbers <"$work/$c.$impl")
    echo "RESULT suite=heap_profile_instructions case=$c impl=$impl metric=instructions value=${n[$impl]} unit=instructions"
  done
  [ -n "${n[usgc]+set}" ] && [ -n "${n[usgc_prof]+set}" ] &&
    echo "RESULT suite=heap_profile_instructions case=$c impl=usgc_prof metric=ratio_prof_on_vs_off value=$(bench_ratio "${n[usgc_prof]}" "${n[usgc]}" 4) unit=ratio"
  [ -n "${n[usgc]+set}" ] && [ -n "${n[usgc_base]+set}" ] &&
    echo "RESULT suite=heap_profile_instructions case=$c impl=usgc metric=ratio_off_vs_base value=$(bench_ratio "${n[usgc]}" "${n[usgc_base]}" 4) unit=ratio"
  [ -n "${n[usgc_base]+set}" ] && [ -n "${n[usgc_base_prof]+set}" ] &&
    echo "RESULT suite=heap_profile_instructions case=$c impl=usgc_base_prof metric=ratio_prof_on_vs_off value=$(bench_ratio "${n[usgc_base_prof]}" "${n[usgc_base]}" 4) unit=ratio"
  [ -n "${n[jemalloc]+set}" ] && [ -n "${n[jemalloc_prof]+set}" ] &&
    echo "RESULT suite=heap_profile_instructions case=$c impl=jemalloc_prof metric=ratio_prof_on_vs_off value=$(bench_ratio "${n[jemalloc_prof]}" "${n[jemalloc]}" 4) unit=ratio"
  for impl in usgc_prof usgc_base_prof; do
    [[ " ${impls[*]} " == *" $impl "* ]] || continue
    v=$(per_sample "$impl" "$c")
    [ -n "$v" ] && echo "RESULT suite=heap_profile_instructions case=$c impl=$impl metric=stack_instructions_per_sample value=$v unit=instructions"
  done
  unset n
done
exit $status
