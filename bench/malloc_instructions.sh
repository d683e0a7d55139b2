#!/usr/bin/env bash
# malloc_instructions.sh: whole-program instruction counts of malloc workloads under LD_PRELOAD,
# usgc against its peers in the same run — a figure the load of a shared machine cannot disturb
# (callgrind counts every instruction the program executes, the allocator's and the program's).
#
# Runs each workload (tests/preload/programs) under valgrind --tool=callgrind with:
#   usgc        LD_PRELOAD=libusgc_preload.so
#   usgc_base   BASE_PRELOAD (optional: another build, e.g. before a change)
#   jemalloc    libjemalloc.so.2
#   mimalloc    libmimalloc.so.2
# and prints, per workload:
#   RESULT suite=malloc_instructions case=<workload> impl=<impl> metric=instructions value=<n> unit=instructions
#   RESULT suite=malloc_instructions case=<workload> impl=usgc metric=ratio_vs_<peer> value=<x> unit=ratio
# Workloads: churn_1t (one thread, random sizes 8..1024 and some up to 32 KiB, every free local)
# churn_2t (the same in two threads), thread_ring (two threads, every free a remote free),
# mt_program (two threads passing work between them, some frees remote) and shared_slots (Larson's
# shape: short-lived threads replacing random slots of a shared array, most frees remote); the
# counts of the multi-thread workloads depend a little on the schedule (waiting loops). Environment: BUILD (default build), REPS (default 1, median),
# BASE_PRELOAD, IMPLS="usgc usgc_base ..." (these only), BENCH_ONLY="churn_1t ..." (these only).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
REPS=${REPS:-1}
PROGRAMS=$PWD/$BUILD/programs
LIBDIR=/usr/lib/x86_64-linux-gnu
command -v valgrind >/dev/null || { echo "NOTE suite=malloc_instructions skipped: valgrind not installed"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$BUILD/libusgc_preload.so" "$work/usgc.so"
impls=(usgc)
if [ -n "${BASE_PRELOAD:-}" ]; then cp "$BASE_PRELOAD" "$work/base.so"; impls+=(usgc_base); fi
[ -f "$LIBDIR/libjemalloc.so.2" ] && impls+=(jemalloc)
[ -f "$LIBDIR/libmimalloc.so.2" ] && impls+=(mimalloc)
[ -n "${IMPLS:-}" ] && read -r -a impls <<<"$IMPLS"
declare -A WORKLOAD=(
  [churn_1t]="$PROGRAMS/churn 1 300000 1"
  [thread_ring]="$PROGRAMS/thread_ring 2 500 1024 1"
  [churn_2t]="$PROGRAMS/churn 2 300000 1"
  [mt_program]="$PROGRAMS/mt_program 2 2 1000 1"
  [shared_slots]="$PROGRAMS/shared_slots 2 10 10000 20000 1"
)
cases=(${BENCH_ONLY:-churn_1t churn_2t thread_ring mt_program shared_slots})
echo "MACHINE suite=malloc_instructions date=$(date -u +%Y-%m-%dT%H:%M:%SZ) cpu=\"$(bench_cpu_model)\" valgrind=$(valgrind --version) commit=$(bench_commit)"
status=0
count() {  # IMPL CASE -> instructions (or empty)
  local impl=$1 c=$2 dir="$work/run-$1-$2"
  mkdir -p "$dir"
  local preload
  case $impl in
    usgc) preload=$work/usgc.so ;;
    usgc_base) preload=$work/base.so ;;
    jemalloc) preload=$LIBDIR/libjemalloc.so.2 ;;
    mimalloc) preload=$LIBDIR/libmimalloc.so.2 ;;
  esac
  read -r -a cmd <<<"${WORKLOAD[$c]}"
  # USGC_STATS=0: the statistics block is refreshed by the clock (the count would depend on time).
  bench_callgrind_instructions "$dir" malloc_instructions "$c" "$impl" "LD_PRELOAD=$preload" USGC_STATS=0 -- \
    "${cmd[@]}" || status=1
}
for c in "${cases[@]}"; do
  declare -A n=()
  for impl in "${impls[@]}"; do
    : >"$work/$c.$impl"
    for ((r = 0; r < REPS; r++)); do count "$impl" "$c" >>"$work/$c.$impl"; done
    [ -s "$work/$c.$impl" ] || continue
    n[$impl]=$(bench_median_of_numbers <"$work/$c.$impl")
    echo "RESULT suite=malloc_instructions case=$c impl=$impl metric=instructions value=${n[$impl]} unit=instructions"
  done
  for peer in usgc_base jemalloc mimalloc; do
    [ -n "${n[usgc]+set}" ] && [ -n "${n[$peer]+set}" ] &&
      echo "RESULT suite=malloc_instructions case=$c impl=usgc metric=ratio_vs_$peer value=$(bench_ratio "${n[usgc]}" "${n[$peer]}" 4) unit=ratio"
  done
  unset n
done
exit $status
