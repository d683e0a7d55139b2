#!/usr/bin/env bash
# run_heap_profile.sh: what the heap profile costs in malloc mode, against jemalloc's.
#
# Runs malloc workloads (tests/preload/programs) under four allocators in one run, repetitions
# interleaved round-robin (the first allocator rotates per repetition):
#   usgc            LD_PRELOAD=libusgc_preload.so, USGC_PROF unset
#   usgc_prof       the same with USGC_PROF=1 (the default rate: a sample per 512 KiB), the
#                   profile written at exit into a temporary directory
#   jemalloc        LD_PRELOAD=libjemalloc.so.2
#   jemalloc_prof   the same with MALLOC_CONF=prof:true,prof_final:true (jemalloc's default
#                   lg_prof_sample 19: a sample per 512 KiB, the same rate), its final profile
#                   written into the temporary directory
# and prints, per workload, the median CPU time (user + system, which other load on a shared
# machine disturbs less than wall time) and the ratios that matter:
#   RESULT suite=heap_profile case=<workload> impl=<impl> metric=cpu_time value=<s> unit=s
#   RESULT suite=heap_profile case=<workload> impl=usgc_prof metric=cpu_ratio_prof_on_vs_off value=<x> unit=ratio
#   RESULT suite=heap_profile case=<workload> impl=jemalloc_prof metric=cpu_ratio_prof_on_vs_off value=<x> unit=ratio
#   RESULT suite=heap_profile case=<workload> impl=usgc_prof metric=cpu_ratio_vs_jemalloc_prof value=<x> unit=ratio
# Paired figures (the two runs of a pair are neighbours in the same repetition, so slow drifts
# of the machine's load cancel): the median of the per-repetition ratios and their range, the
# range being the noise to compare the effect with:
#   RESULT suite=heap_profile case=<workload> impl=usgc_prof metric=paired_cpu_ratio_prof_on_vs_off value=<x> unit=ratio
#   NOTE suite=heap_profile case=<workload> impl=usgc_prof paired_ratios="<min>..<max>" pairs=<n>
# With BASE_PRELOAD=<another libusgc_preload.so> (e.g. a build of an older commit) it runs that
# one too, as impl usgc_base, and prints paired_cpu_ratio_off_vs_base (usgc / usgc_base).
# A run that fails, or writes no profile when profiling is on, is an ERROR line, never a number.
# Environment: BUILD (default build), BENCH_REPS (default 5), BENCH_QUICK=1 (1 repetition, small
# arguments), BENCH_ONLY="churn_1t ..." (these workloads only), BENCH_TIMEOUT_S (default 300),
# BENCH_NO_JEMALLOC=1 (usgc only), BASE_PRELOAD (see above).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
BENCH_QUICK=${BENCH_QUICK:-0}
if [ "$BENCH_QUICK" = 1 ]; then BENCH_REPS=${BENCH_REPS:-1}; else BENCH_REPS=${BENCH_REPS:-5}; fi
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
MEASURE=$BUILD/bench/measure
PROGRAMS=$BUILD/programs
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
ulimit -c 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

for needed in "$MEASURE" "$PROGRAMS/churn" "$BUILD/libusgc_preload.so"; do
  [ -e "$needed" ] || { echo "run_heap_profile.sh: $needed not built (make all bench-bins)" >&2; exit 2; }
done
cp "$BUILD/libusgc_preload.so" "$work/libusgc_preload.so"  # a rebuild during the run changes nothing

impls=(usgc usgc_prof)
if [ -n "${BASE_PRELOAD:-}" ]; then
  [ -f "$BASE_PRELOAD" ] || { echo "run_heap_profile.sh: BASE_PRELOAD $BASE_PRELOAD not found" >&2; exit 2; }
  cp "$BASE_PRELOAD" "$work/libusgc_base.so"
  impls+=(usgc_base)
fi
if [ "${BENCH_NO_JEMALLOC:-0}" = 1 ]; then
  echo "NOTE suite=heap_profile impl=jemalloc skipped: BENCH_NO_JEMALLOC=1"
elif [ -f "$JEMALLOC" ]; then
  impls+=(jemalloc jemalloc_prof)
else
  echo "NOTE suite=heap_profile impl=jemalloc skipped: $JEMALLOC not found"
fi

declare -A WORKLOAD
if [ "$BENCH_QUICK" = 1 ]; then
  WORKLOAD[churn_1t]="$PROGRAMS/churn 1 3000000 1"
  WORKLOAD[churn_2t]="$PROGRAMS/churn 2 3000000 1"
  WORKLOAD[producer_consumer]="$PROGRAMS/producer_consumer 2 2 300000 1"
  WORKLOAD[mt_program]="$PROGRAMS/mt_program 2 2 1000 1"
  WORKLOAD[shared_slots]="$PROGRAMS/shared_slots 2 10 10000 20000 1"
else
  WORKLOAD[churn_1t]="$PROGRAMS/churn 1 30000000 1"
  WORKLOAD[churn_2t]="$PROGRAMS/churn 2 30000000 1"
  WORKLOAD[producer_consumer]="$PROGRAMS/producer_consumer 2 2 3000000 1"
  WORKLOAD[mt_program]="$PROGRAMS/mt_program 2 2 8000 1"
  WORKLOAD[shared_slots]="$PROGRAMS/shared_slots 2 100 10000 20000 1"
fi
cases=(${BENCH_ONLY:-churn_1t churn_2t producer_consumer mt_program shared_slots})
for c in "${cases[@]}"; do
  [ -n "${WORKLOAD[$c]+set}" ] || { echo "run_heap_profile.sh: unknown workload '$c' in BENCH_ONLY" >&2; exit 2; }
done

echo "MACHINE suite=heap_profile date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) cpu=\"$(bench_cpu_model)\" nproc=$(nproc) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" commit=$(bench_commit)"

# run_once CASE IMPL REP: appends the CPU seconds to $work/CASE.IMPL, or reports an ERROR.
run_once() {
  local c=$1 impl=$2 rep=$3 dir="$work/run-$1-$2-$3"
  mkdir -p "$dir"
  local env_args=()
  case $impl in
    usgc) env_args=(--env "LD_PRELOAD=$work/libusgc_preload.so") ;;
    usgc_base) env_args=(--env "LD_PRELOAD=$work/libusgc_base.so") ;;
    usgc_prof) env_args=(--env "LD_PRELOAD=$work/libusgc_preload.so" --env USGC_PROF=1
                         --env "USGC_PROF_FILE=$dir/usgc.heap.pb.gz") ;;
    jemalloc) env_args=(--env "LD_PRELOAD=$JEMALLOC") ;;
    jemalloc_prof) env_args=(--env "LD_PRELOAD=$JEMALLOC"
                             --env "MALLOC_CONF=prof:true,prof_final:true,prof_prefix:$dir/jeprof") ;;
  esac
  read -r -a cmd <<<"${WORKLOAD[$c]}"
  "$MEASURE" "$dir/m" "${env_args[@]}" -- timeout "$BENCH_TIMEOUT_S" "${cmd[@]}" >"$dir/out" 2>"$dir/err"
  local wall rss code cpu
  read -r wall rss code cpu <"$dir/m"
  if [ "$code" != 0 ]; then
    echo "ERROR suite=heap_profile case=$c impl=$impl exit=$code: $(head -c 200 "$dir/err")"; status=1; return
  fi
  if [[ $impl == *_prof ]] && [ -z "$(ls "$dir" | grep -E 'heap')" ]; then
    echo "ERROR suite=heap_profile case=$c impl=$impl wrote no profile: $(head -c 200 "$dir/err")"; status=1; return
  fi
  echo "$cpu" >>"$work/$c.$impl"
  echo "$cpu" >"$work/$c.$impl.rep$rep"
  rm -rf "$dir"
}

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for ((rep = 0; rep < BENCH_REPS; rep++)); do
  for c in "${cases[@]}"; do
    n=${#impls[@]}
    for ((k = 0; k < n; k++)); do
      run_once "$c" "${impls[$(((k + rep) % n))]}" "$rep"
    done
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }'; }
for c in "${cases[@]}"; do
  declare -A cpu=()
  for impl in "${impls[@]}"; do
    [ -s "$work/$c.$impl" ] || continue
    cpu[$impl]=$(median "$work/$c.$impl")
    echo "RESULT suite=heap_profile case=$c impl=$impl metric=cpu_time value=${cpu[$impl]} unit=s"
  done
  if [ -n "${cpu[usgc]+set}" ] && [ -n "${cpu[usgc_prof]+set}" ]; then
    echo "RESULT suite=heap_profile case=$c impl=usgc_prof metric=cpu_ratio_prof_on_vs_off value=$(ratio "${cpu[usgc_prof]}" "${cpu[usgc]}") unit=ratio"
  fi
  if [ -n "${cpu[jemalloc]+set}" ] && [ -n "${cpu[jemalloc_prof]+set}" ]; then
    echo "RESULT suite=heap_profile case=$c impl=jemalloc_prof metric=cpu_ratio_prof_on_vs_off value=$(ratio "${cpu[jemalloc_prof]}" "${cpu[jemalloc]}") unit=ratio"
  fi
  if [ -n "${cpu[usgc_prof]+set}" ] && [ -n "${cpu[jemalloc_prof]+set}" ]; then
    echo "RESULT suite=heap_profile case=$c impl=usgc_prof metric=cpu_ratio_vs_jemalloc_prof value=$(ratio "${cpu[usgc_prof]}" "${cpu[jemalloc_prof]}") unit=ratio"
  fi
  unset cpu
  # paired A B METRIC: per repetition A/B where both ran; their median and range.
  paired() {
    local a=$1 b=$2 metric=$3 rep
    : >"$work/$c.$metric"
    for ((rep = 0; rep < BENCH_REPS; rep++)); do
      [ -s "$work/$c.$a.rep$rep" ] && [ -s "$work/$c.$b.rep$rep" ] || continue
      ratio "$(cat "$work/$c.$a.rep$rep")" "$(cat "$work/$c.$b.rep$rep")" >>"$work/$c.$metric"
      echo >>"$work/$c.$metric"
    done
    [ -s "$work/$c.$metric" ] || return
    echo "RESULT suite=heap_profile case=$c impl=$a metric=$metric value=$(median "$work/$c.$metric") unit=ratio"
    echo "NOTE suite=heap_profile case=$c impl=$a ${metric}_range=\"$(sort -g "$work/$c.$metric" | head -1)..$(sort -g "$work/$c.$metric" | tail -1)\" pairs=$(wc -l <"$work/$c.$metric")"
  }
  paired usgc_prof usgc paired_cpu_ratio_prof_on_vs_off
  [ -n "${BASE_PRELOAD:-}" ] && paired usgc usgc_base paired_cpu_ratio_off_vs_base
done
echo "NOTE suite=heap_profile load_at_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
exit $status
