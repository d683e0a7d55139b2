#!/usr/bin/env bash
# run_all.sh: the malloc-mode benchmark of usgc, run by `make bench`.
#
# Runs every workload under glibc (no preload), jemalloc (the baseline), mimalloc, tcmalloc and
# usgc (LD_PRELOAD of each; an allocator whose library is missing is skipped with a NOTE), all in
# one run. Repetitions interleave the allocators round-robin (the starting allocator rotates per
# repetition and workload), so a slow phase of the machine hits every allocator alike. Each run's
# stdout and exit status are checked against glibc's: a wrong result or a crash is an ERROR line,
# never a number. For each (workload, allocator) it prints the median wall time and median peak
# RSS over the repetitions and their ratios to jemalloc's medians:
#   RESULT suite=malloc case=<workload> impl=<alloc> metric=wall_time value=<s> unit=s
#   RESULT suite=malloc case=<workload> impl=<alloc> metric=peak_rss value=<KiB> unit=KiB
#   RESULT suite=malloc case=<workload> impl=<alloc> metric=wall_ratio_vs_jemalloc value=<x> unit=ratio
#   RESULT suite=malloc case=<workload> impl=<alloc> metric=rss_ratio_vs_jemalloc value=<x> unit=ratio
# and the same for CPU time (user + system; metric=cpu_time, cpu_ratio_vs_jemalloc), which other
# load on the machine disturbs less than wall time, and metric=wall_spread, (max - min) / median
# of the wall times over the repetitions, to show how noisy the machine was. A MACHINE line (date, kernel, CPU model, nproc,
# load average, commit) comes first, a NOTE with the load average at the end last. The same lines
# are saved to $BENCH_LOG (default $BUILD/bench/malloc.log) for bench/format_table.py.
#
# Environment: BUILD (default build), BENCH_REPS (default 5), BENCH_QUICK=1 (1 repetition,
# smaller arguments), BENCH_ONLY="case1 case2" (run only these workloads), BENCH_IMPLS="glibc
# jemalloc ..." (only these allocators), BENCH_TIMEOUT_S (per run, default 300), BENCH_LOG,
# USGC_BASELINE_LIB (see below).
# Exit status: 0 if every run gave glibc's result, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
BENCH_QUICK=${BENCH_QUICK:-0}
if [ "$BENCH_QUICK" = 1 ]; then BENCH_REPS=${BENCH_REPS:-1}; else BENCH_REPS=${BENCH_REPS:-5}; fi
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
BENCH_LOG=${BENCH_LOG:-$BUILD/bench/malloc.log}
PROGRAMS_SRC=tests/preload/programs
PROGRAMS_BIN=$BUILD/programs
MEASURE=$BUILD/bench/measure
PYTHON=/usr/bin/python3
LIBDIR=/usr/lib/x86_64-linux-gnu
ulimit -c 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$BENCH_LOG")"
: >"$BENCH_LOG"
say() { echo "$*"; echo "$*" >>"$BENCH_LOG"; }
progress() { echo "$*" >&2; }

# ---- allocators --------------------------------------------------------------------------------
declare -A IMPL_LIB=(
  [glibc]=""
  [jemalloc]=$LIBDIR/libjemalloc.so.2
  [mimalloc]=$LIBDIR/libmimalloc.so.2
  [tcmalloc]=$LIBDIR/libtcmalloc_minimal.so.4
  [usgc]=$PWD/$BUILD/libusgc_preload.so
)
# USGC_BASELINE_LIB=<path of another libusgc_preload.so> adds it as impl usgc_baseline (before/after
# figures of a change in one run).
default_impls="glibc jemalloc mimalloc tcmalloc usgc"
if [ -n "${USGC_BASELINE_LIB:-}" ]; then
  IMPL_LIB[usgc_baseline]=$USGC_BASELINE_LIB
  default_impls="$default_impls usgc_baseline"
fi
impls=()
missing_notes=()
for impl in ${BENCH_IMPLS:-$default_impls}; do
  if [ -z "${IMPL_LIB[$impl]+set}" ]; then
    echo "run_all.sh: unknown allocator '$impl' in BENCH_IMPLS" >&2; exit 2
  elif [ -n "${IMPL_LIB[$impl]}" ] && [ ! -f "${IMPL_LIB[$impl]}" ]; then
    missing_notes+=("NOTE suite=malloc impl=$impl skipped: ${IMPL_LIB[$impl]#"$PWD/"} not found")
  else
    impls+=("$impl")
  fi
done
if [[ " ${impls[*]} " != *" glibc "* ]]; then impls=(glibc "${impls[@]}"); fi  # the reference
# A snapshot of usgc's library: a rebuild during the run must not mix two versions in one table.
if [[ " ${impls[*]} " == *" usgc "* ]]; then
  cp "${IMPL_LIB[usgc]}" "$work/libusgc_preload.so"
  usgc_built=$(date -u -r "${IMPL_LIB[usgc]}" +%Y-%m-%dT%H:%M:%SZ)
  IMPL_LIB[usgc]=$work/libusgc_preload.so
fi

# ---- workloads: name, then the command (a leading "<file" gives its stdin) -------------------
declare -A WORKLOAD
if [ "$BENCH_QUICK" = 1 ]; then
  WORKLOAD[churn_1t]="$PROGRAMS_BIN/churn 1 3000000 1"
  WORKLOAD[churn_2t]="$PROGRAMS_BIN/churn 2 3000000 1"
  WORKLOAD[producer_consumer]="$PROGRAMS_BIN/producer_consumer 2 2 300000 1"
  WORKLOAD[realloc_growth]="$PROGRAMS_BIN/realloc_growth 300 1"
  WORKLOAD[mt_program]="$PROGRAMS_BIN/mt_program 2 2 1000 1"
  WORKLOAD[python_churn]="$PYTHON $PROGRAMS_SRC/churn.py 8 1"
  WORKLOAD[thread_ring]="$PROGRAMS_BIN/thread_ring 2 500 1024 1"
  WORKLOAD[shared_slots]="$PROGRAMS_BIN/shared_slots 2 10 10000 20000 1"
  WORKLOAD[xmalloc_6p]="$PROGRAMS_BIN/producer_consumer 6 2 50000 1"
  WORKLOAD[python_malloc]="env PYTHONMALLOC=malloc $PYTHON $PROGRAMS_SRC/churn.py 8 1"
else
  WORKLOAD[churn_1t]="$PROGRAMS_BIN/churn 1 30000000 1"
  WORKLOAD[churn_2t]="$PROGRAMS_BIN/churn 2 30000000 1"
  WORKLOAD[producer_consumer]="$PROGRAMS_BIN/producer_consumer 2 2 3000000 1"
  WORKLOAD[realloc_growth]="$PROGRAMS_BIN/realloc_growth 2500 1"
  WORKLOAD[mt_program]="$PROGRAMS_BIN/mt_program 2 2 8000 1"
  WORKLOAD[python_churn]="$PYTHON $PROGRAMS_SRC/churn.py 60 1"
  WORKLOAD[thread_ring]="$PROGRAMS_BIN/thread_ring 2 5000 1024 1"
  WORKLOAD[shared_slots]="$PROGRAMS_BIN/shared_slots 2 100 10000 20000 1"
  WORKLOAD[xmalloc_6p]="$PROGRAMS_BIN/producer_consumer 6 2 500000 1"
  WORKLOAD[python_malloc]="env PYTHONMALLOC=malloc $PYTHON $PROGRAMS_SRC/churn.py 60 1"
fi
WORKLOAD[sqlite]="<$PROGRAMS_SRC/sqlite.sql sqlite3 :memory:"
WORKLOAD[gxx_templates]="g++ -std=c++20 -O1 -S -frandom-seed=templates -o - $PROGRAMS_SRC/templates.cpp"
all_cases=(churn_1t churn_2t producer_consumer realloc_growth mt_program python_churn sqlite gxx_templates
  thread_ring shared_slots xmalloc_6p python_malloc)

cases=()
for c in ${BENCH_ONLY:-${all_cases[*]}}; do
  if [ -z "${WORKLOAD[$c]+set}" ]; then echo "run_all.sh: unknown workload '$c' in BENCH_ONLY" >&2; exit 2; fi
  read -r -a words <<<"${WORKLOAD[$c]#<* }"  # the command without a leading "<stdin-file"
  if ! command -v "${words[0]}" >/dev/null; then
    missing_notes+=("NOTE suite=malloc case=$c skipped: ${words[0]} not found (build it: make bench-bins)")
  else
    cases+=("$c")
  fi
done

# ---- header -----------------------------------------------------------------------------------
cpu=$(bench_cpu_model)
commit=$(bench_commit)
say "MACHINE suite=malloc date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) cpu=\"$cpu\" nproc=$(nproc)" \
    "load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" reps=$BENCH_REPS quick=$BENCH_QUICK impls=\"${impls[*]}\" commit=$commit" \
    "${usgc_built:+usgc_library_built=$usgc_built}"
for note in "${missing_notes[@]+"${missing_notes[@]}"}"; do say "$note"; done
[ -x "$MEASURE" ] || say "NOTE suite=malloc $MEASURE not built: timing with /usr/bin/time (10 ms steps)"

# run_one CASE IMPL REP: one measured run; leaves "<wall> <rss> <status> <cpu>" in $work/CASE.IMPL.REP.m
# and the stdout in $work/CASE.IMPL.REP.out.
run_one() {
  local c=$1 impl=$2 rep=$3 spec=${WORKLOAD[$1]} stdin=/dev/null
  if [ "${spec:0:1}" = "<" ]; then stdin=${spec%% *}; stdin=${stdin#<}; spec=${spec#* }; fi
  local -a cmd
  read -r -a cmd <<<"$spec"
  local base=$work/$c.$impl.$rep env_args=()
  [ -n "${IMPL_LIB[$impl]}" ] && env_args=(--env "LD_PRELOAD=${IMPL_LIB[$impl]}")
  if [ -x "$MEASURE" ]; then
    "$MEASURE" "$base.m" "${env_args[@]+"${env_args[@]}"}" -- timeout "$BENCH_TIMEOUT_S" "${cmd[@]}" \
      <"$stdin" >"$base.out" 2>"$base.err"
  else
    local preload=()
    [ -n "${IMPL_LIB[$impl]}" ] && preload=(env "LD_PRELOAD=${IMPL_LIB[$impl]}")
    /usr/bin/time -f "%e %M %x %U %S" -o "$base.m" timeout "$BENCH_TIMEOUT_S" "${preload[@]+"${preload[@]}"}" "${cmd[@]}" \
      <"$stdin" >"$base.out" 2>"$base.err"
  fi
  [ -s "$base.m" ] || echo "0 0 255 0" >"$base.m"
  # GNU time writes "Command terminated by signal N" (and then %x is 0) or "Command exited with
  # non-zero status N" before its line: keep the last line, with 128 + N for a signal.
  local signal
  signal=$(sed -n 's/^Command terminated by signal \([0-9]*\).*/\1/p' "$base.m")
  tail -n 1 "$base.m" | awk -v sig="$signal" '{if (sig != "") $3 = 128 + sig; if (NF == 5) {$4 += $5; NF = 4} print}' >"$base.m.tmp" &&
    mv "$base.m.tmp" "$base.m"
}

# ---- the runs, interleaved -------------------------------------------------------------------
n_impls=${#impls[@]}
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  for ci in "${!cases[@]}"; do
    c=${cases[$ci]}
    for ((k = 0; k < n_impls; k++)); do
      impl=${impls[$(((k + rep + ci) % n_impls))]}
      run_one "$c" "$impl" "$rep"
      progress "rep $rep/$BENCH_REPS  $c  $impl: $(awk '{printf "%.3f s, %d KiB, cpu %.3f s, status %d", $1, $2, $4, $3}' "$work/$c.$impl.$rep.m")"
    done
  done
done

# ---- verification and medians -----------------------------------------------------------------
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
errors=0
declare -A WALL RSS CPU SPREAD
for c in "${cases[@]}"; do
  ref=$work/$c.glibc.1
  ref_status=$(cut -d' ' -f3 "$ref.m")
  if [ "$ref_status" != 0 ]; then
    say "ERROR suite=malloc case=$c impl=glibc reason=\"reference run failed with status $ref_status: $(head -c 200 "$ref.err" | head -n 1)\""
    errors=$((errors + 1))
    continue
  fi
  for impl in "${impls[@]}"; do
    bad=""
    for ((rep = 1; rep <= BENCH_REPS; rep++)); do
      base=$work/$c.$impl.$rep
      status=$(cut -d' ' -f3 "$base.m")
      if [ "$status" != 0 ]; then
        case $status in
          124) why="timed out after ${BENCH_TIMEOUT_S}s" ;;
          1[3-9][0-9] | 2[0-4][0-9]) why="killed by signal $((status - 128))" ;;
          *) why="exit status $status" ;;
        esac
        bad="repetition $rep: $why"
        first_err=$(head -c 200 "$base.err" | head -n 1)
        [ -n "$first_err" ] && bad="$bad; stderr: $first_err"
        break
      elif ! cmp -s "$ref.out" "$base.out"; then
        bad="repetition $rep: output differs from glibc's ($(wc -c <"$base.out") bytes, glibc $(wc -c <"$ref.out"))"
        break
      fi
    done
    if [ -n "$bad" ]; then
      say "ERROR suite=malloc case=$c impl=$impl reason=\"${bad//\"/\'}\""
      errors=$((errors + 1))
      continue
    fi
    WALL[$c.$impl]=$(for ((rep = 1; rep <= BENCH_REPS; rep++)); do cut -d' ' -f1 "$work/$c.$impl.$rep.m"; done | median)
    RSS[$c.$impl]=$(for ((rep = 1; rep <= BENCH_REPS; rep++)); do cut -d' ' -f2 "$work/$c.$impl.$rep.m"; done | median)
    CPU[$c.$impl]=$(for ((rep = 1; rep <= BENCH_REPS; rep++)); do cut -d' ' -f4 "$work/$c.$impl.$rep.m"; done | median)
    SPREAD[$c.$impl]=$(for ((rep = 1; rep <= BENCH_REPS; rep++)); do cut -d' ' -f1 "$work/$c.$impl.$rep.m"; done |
      sort -g | awk -v m="${WALL[$c.$impl]}" 'NR == 1 {lo = $1} {hi = $1} END {printf "%.3f", (m > 0 ? (hi - lo) / m : 0)}')
  done
done

for c in "${cases[@]}"; do
  for impl in "${impls[@]}"; do
    [ -n "${WALL[$c.$impl]+set}" ] || continue
    prefix="RESULT suite=malloc case=$c impl=$impl"
    say "$prefix metric=wall_time value=$(awk -v v="${WALL[$c.$impl]}" 'BEGIN {printf "%.3f", v}') unit=s"
    say "$prefix metric=peak_rss value=$(awk -v v="${RSS[$c.$impl]}" 'BEGIN {printf "%d", v}') unit=KiB"
    say "$prefix metric=cpu_time value=$(awk -v v="${CPU[$c.$impl]}" 'BEGIN {printf "%.3f", v}') unit=s"
    say "$prefix metric=wall_spread value=${SPREAD[$c.$impl]} unit=ratio"
    if [ -n "${WALL[$c.jemalloc]+set}" ]; then
      say "$prefix metric=wall_ratio_vs_jemalloc value=$(awk -v a="${WALL[$c.$impl]}" -v b="${WALL[$c.jemalloc]}" 'BEGIN {printf "%.3f", a / b}') unit=ratio"
      say "$prefix metric=rss_ratio_vs_jemalloc value=$(awk -v a="${RSS[$c.$impl]}" -v b="${RSS[$c.jemalloc]}" 'BEGIN {printf "%.3f", a / b}') unit=ratio"
      say "$prefix metric=cpu_ratio_vs_jemalloc value=$(awk -v a="${CPU[$c.$impl]}" -v b="${CPU[$c.jemalloc]}" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}') unit=ratio"
    fi
  done
done
say "NOTE suite=malloc end=$(date -u +%Y-%m-%dT%H:%M:%SZ) load_at_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
progress "results saved to $BENCH_LOG; table: $PYTHON bench/format_table.py $BENCH_LOG"
[ "$errors" -eq 0 ]
