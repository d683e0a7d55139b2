#!/usr/bin/env bash
# malloc_instructions.sh: whole-program instruction counts of the malloc suite's workloads under
# LD_PRELOAD, usgc against its peers in the same run — a figure the load of a shared machine cannot
# disturb (callgrind counts every instruction the program executes, the allocator's and the
# program's, in every process it starts).
#
# Runs each workload under valgrind --tool=callgrind with:
#   usgc        LD_PRELOAD=libusgc_preload.so (a copy taken at the start)
#   usgc_base   BASE_PRELOAD (optional: another build, e.g. before a change)
#   glibc       no preload (the C library's malloc)
#   jemalloc    libjemalloc.so.2       mimalloc  libmimalloc.so.2
#   tcmalloc    libtcmalloc_minimal.so.4 (as bench/run_all.sh)
# (an allocator whose library is missing is left out with a NOTE) and prints, per workload:
#   RESULT suite=malloc_instructions case=<workload> impl=<impl> metric=instructions value=<n> unit=instructions
#   RESULT suite=malloc_instructions case=<workload> impl=usgc metric=instructions_ratio_vs_<peer> value=<x> unit=ratio
#   RESULT suite=malloc_instructions case=<workload> impl=usgc metric=instructions_ratio_vs_best_peer value=<x> unit=ratio
#       (best_peer: the fewest of jemalloc, mimalloc and tcmalloc, the issue's target; the peer is
#       named in a NOTE line)
# and at the end the same figures as a Markdown table (usgc's count, its ratio to each allocator's).
# Each run's stdout must equal glibc's (or, without glibc, the first allocator's): a difference or a
# failed run is an ERROR line, never a number.
#
# CACHE_SIM=1 adds callgrind's cache simulation (--cache-sim=yes, a fixed hierarchy: 32 KiB 8-way
# I1 and D1, 8 MiB 16-way LL, 64-byte lines, so the figures do not depend on the host) and prints
# metric=d1_misses (D1mr + D1mw: data reads and writes missing the first level) and
# metric=ll_misses (ILmr + DLmr + DLmw) with their ratios. What the simulation models: one cache
# hierarchy, LRU, write-allocate, every access of the program and the allocator (how many distinct
# lines the allocator's metadata and the blocks it hands out make the program touch). What it does
# not: valgrind runs one thread at a time, so all threads share that one cache — a line one thread
# wrote and another then reads is a hit there, where real cores transfer it (a coherence miss);
# remote frees, a shared cache line between threads, false sharing cost nothing in it. Nor does it
# model prefetchers, the TLB or page faults. So it ranks footprint and locality, not cross-thread
# traffic; the cross-thread workloads' cost of line transfers is in neither metric.
#
# Workloads (bench/run_all.sh's, at sizes that take under a few minutes under callgrind: its quick
# sizes, and smaller inputs for sqlite and g++, derived from the same files by substitution):
#   churn_1t churn_2t producer_consumer realloc_growth mt_program python_churn sqlite gxx_templates
#   thread_ring shared_slots xmalloc_6p python_malloc
# The counts of the multi-thread workloads depend a little on valgrind's schedule (their waiting
# loops); REPS > 1 takes medians. The statistics block is off (USGC_STATS=0: it is refreshed by the
# clock, so the count would depend on time).
# Environment: BUILD (default build), REPS (default 1, median), BASE_PRELOAD, CACHE_SIM (0),
# IMPLS="usgc usgc_base ..." (these only), BENCH_ONLY="churn_1t ..." (these only).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
REPS=${REPS:-1}
CACHE_SIM=${CACHE_SIM:-0}
PROGRAMS=$PWD/$BUILD/programs
PROGRAMS_SRC=$PWD/tests/preload/programs
PYTHON=/usr/bin/python3
LIBDIR=/usr/lib/x86_64-linux-gnu
command -v valgrind >/dev/null || { echo "NOTE suite=malloc_instructions skipped: valgrind not installed"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$BUILD/libusgc_preload.so" "$work/usgc.so"
declare -A LIB=([usgc]=$work/usgc.so [glibc]="" [jemalloc]=$LIBDIR/libjemalloc.so.2
  [mimalloc]=$LIBDIR/libmimalloc.so.2 [tcmalloc]=$LIBDIR/libtcmalloc_minimal.so.4)
if [ -n "${BASE_PRELOAD:-}" ]; then cp "$BASE_PRELOAD" "$work/base.so"; LIB[usgc_base]=$work/base.so; fi
impls=()
for impl in ${IMPLS:-usgc usgc_base glibc jemalloc mimalloc tcmalloc}; do
  [ -n "${LIB[$impl]+set}" ] || { [ "$impl" = usgc_base ] && continue; echo "unknown impl $impl" >&2; exit 2; }
  if [ -n "${LIB[$impl]}" ] && [ ! -f "${LIB[$impl]}" ]; then
    echo "NOTE suite=malloc_instructions impl=$impl skipped: ${LIB[$impl]} not found"
  else
    impls+=("$impl")
  fi
done
peers=(jemalloc mimalloc tcmalloc)

# The smaller inputs: the same statements and source with smaller counts.
sed -e 's/i < 50000)/i < 5000)/; s/i < 40000)/i < 4000)/; s/i < 200000)/i < 20000)/' \
  "$PROGRAMS_SRC/sqlite.sql" >"$work/sqlite.sql"
sed -e 's/kTypes = 20;/kTypes = 6;/; s/kVariantAlternatives = 12;/kVariantAlternatives = 6;/' \
  "$PROGRAMS_SRC/templates.cpp" >"$work/templates.cpp"
declare -A WORKLOAD=(
  [churn_1t]="$PROGRAMS/churn 1 300000 1"
  [churn_2t]="$PROGRAMS/churn 2 300000 1"
  [producer_consumer]="$PROGRAMS/producer_consumer 2 2 300000 1"
  [realloc_growth]="$PROGRAMS/realloc_growth 300 1"
  [mt_program]="$PROGRAMS/mt_program 2 2 1000 1"
  [python_churn]="$PYTHON $PROGRAMS_SRC/churn.py 8 1"
  [sqlite]="<$work/sqlite.sql sqlite3 :memory:"
  [gxx_templates]="g++ -std=c++20 -O1 -S -frandom-seed=templates -o - $work/templates.cpp"
  [thread_ring]="$PROGRAMS/thread_ring 2 500 1024 1"
  [shared_slots]="$PROGRAMS/shared_slots 2 10 10000 20000 1"
  [xmalloc_6p]="$PROGRAMS/producer_consumer 6 2 50000 1"
  [python_malloc]="env PYTHONMALLOC=malloc $PYTHON $PROGRAMS_SRC/churn.py 8 1"
)
all_cases=(churn_1t churn_2t producer_consumer realloc_growth mt_program python_churn sqlite
  gxx_templates thread_ring shared_slots xmalloc_6p python_malloc)
cases=(${BENCH_ONLY:-${all_cases[*]}})
cache_args=()
if [ "$CACHE_SIM" = 1 ]; then
  cache_args=(--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=8388608,16,64)
fi
echo "MACHINE suite=malloc_instructions date=$(date -u +%Y-%m-%dT%H:%M:%SZ) cpu=\"$(bench_cpu_model)\"" \
  "valgrind=$(valgrind --version) cache_sim=$CACHE_SIM reps=$REPS impls=\"${impls[*]}\" commit=$(bench_commit)"
status=0

# run IMPL CASE REP: one run under callgrind; leaves the events summed over the run's processes in
# $work/CASE.IMPL.REP.ev ("Ir=<n> D1mr=<n> ..."), its stdout in .out; status 1 (an ERROR line)
# when the program failed.
run() {
  local impl=$1 c=$2 rep=$3 spec=${WORKLOAD[$2]} stdin=/dev/null
  local base=$work/$c.$impl.$rep dir=$work/run-$impl-$c
  mkdir -p "$dir"
  if [ "${spec:0:1}" = "<" ]; then stdin=${spec%% *}; stdin=${stdin#<}; spec=${spec#* }; fi
  local -a cmd env_args=(USGC_STATS=0)
  read -r -a cmd <<<"$spec"
  [ -n "${LIB[$impl]}" ] && env_args+=("LD_PRELOAD=${LIB[$impl]}")
  (cd "$dir" && valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null \
    "${cache_args[@]+"${cache_args[@]}"}" env "${env_args[@]}" "${cmd[@]}" <"$stdin" >"$base.out" 2>"$base.err")
  local code=$?
  if [ $code != 0 ]; then
    echo "ERROR suite=malloc_instructions case=$c impl=$impl exit=$code: $(grep -v '^==' "$base.err" | head -c 200)"
    return 1
  fi
  # One "Events :" and one "Collected :" line per process: sum each event over the processes.
  awk '/^==[0-9]+== Events *:/ { sub(/^==[0-9]+== Events *: */, ""); n = split($0, names, " ") }
       /^==[0-9]+== Collected *:/ { sub(/^==[0-9]+== Collected *: */, ""); split($0, v, " ");
                                   for (i = 1; i <= n; i++) sum[names[i]] += v[i] }
       END { for (e in sum) printf "%s=%.0f ", e, sum[e]; print "" }' "$base.err" >"$base.ev"
}
event() {  # FILE NAME -> the event's value (0 when absent)
  tr ' ' '\n' <"$1" | awk -F= -v e="$2" '$1 == e { print $2; found = 1 } END { if (!found) print 0 }'
}
metric_of() {  # EVFILE METRIC
  case $2 in
    instructions) event "$1" Ir ;;
    d1_misses) echo $(($(event "$1" D1mr) + $(event "$1" D1mw))) ;;
    ll_misses) echo $(($(event "$1" ILmr) + $(event "$1" DLmr) + $(event "$1" DLmw))) ;;
  esac
}
metrics=(instructions)
declare -A unit=([instructions]=instructions [d1_misses]=misses [ll_misses]=misses)
[ "$CACHE_SIM" = 1 ] && metrics+=(d1_misses ll_misses)

table=()
for c in "${cases[@]}"; do
  [ -n "${WORKLOAD[$c]+set}" ] || { echo "unknown workload $c" >&2; exit 2; }
  ok_impls=()
  for impl in "${impls[@]}"; do
    good=1
    for ((r = 0; r < REPS; r++)); do run "$impl" "$c" "$r" || { good=0; status=1; }; done
    [ $good = 1 ] && ok_impls+=("$impl")
  done
  [ ${#ok_impls[@]} = 0 ] && continue
  reference=${ok_impls[0]}
  [[ " ${ok_impls[*]} " == *" glibc "* ]] && reference=glibc
  checked=()
  for impl in "${ok_impls[@]}"; do
    if ! cmp -s "$work/$c.$impl.0.out" "$work/$c.$reference.0.out"; then
      echo "ERROR suite=malloc_instructions case=$c impl=$impl output differs from $reference's"
      status=1
    else
      checked+=("$impl")
    fi
  done
  for m in "${metrics[@]}"; do
    declare -A n=()
    for impl in "${checked[@]}"; do
      n[$impl]=$(for ((r = 0; r < REPS; r++)); do metric_of "$work/$c.$impl.$r.ev" "$m"; done |
        bench_median_of_numbers)
      echo "RESULT suite=malloc_instructions case=$c impl=$impl metric=$m value=${n[$impl]} unit=${unit[$m]}"
    done
    [ -n "${n[usgc]+set}" ] || { unset n; continue; }
    best=""
    for peer in usgc_base glibc "${peers[@]}"; do
      [ -n "${n[$peer]+set}" ] || continue
      echo "RESULT suite=malloc_instructions case=$c impl=usgc metric=${m}_ratio_vs_$peer value=$(bench_ratio "${n[usgc]}" "${n[$peer]}" 4) unit=ratio"
      if [[ " ${peers[*]} " == *" $peer "* ]] && { [ -z "$best" ] || [ "${n[$peer]}" -lt "${n[$best]}" ]; }; then
        best=$peer
      fi
    done
    if [ -n "$best" ]; then
      echo "RESULT suite=malloc_instructions case=$c impl=usgc metric=${m}_ratio_vs_best_peer value=$(bench_ratio "${n[usgc]}" "${n[$best]}" 4) unit=ratio"
      echo "NOTE suite=malloc_instructions case=$c metric=$m best_peer=$best"
    fi
    row="| $c | $m | ${n[usgc]}"
    for impl in "${impls[@]}"; do
      [ "$impl" = usgc ] && continue
      if [ -n "${n[$impl]+set}" ]; then row+=" | $(bench_ratio "${n[usgc]}" "${n[$impl]}" 3)"; else row+=" | -"; fi
    done
    table+=("$row | ${best:--} |")
    unset n
  done
done
# The same as a Markdown table (usgc's count, then usgc / each allocator's count).
if [ ${#table[@]} != 0 ]; then
  header="| workload | metric | usgc"
  rule="| --- | --- | ---:"
  for impl in "${impls[@]}"; do
    [ "$impl" = usgc ] || { header+=" | ÷ $impl"; rule+=" | ---:"; }
  done
  echo "$header | best peer |"
  echo "$rule | --- |"
  printf '%s\n' "${table[@]}"
fi
exit $status
