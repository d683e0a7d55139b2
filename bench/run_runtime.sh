#!/usr/bin/env bash
# run_runtime.sh: the goroutine and safepoint benchmarks (suite=goroutines, suite=safepoint), run
# by `make bench` and `make bench-report` after the malloc benchmarks (bench/run_all.sh).
#
# suite=goroutines: $BUILD/bench/goroutines (usgc) and, when `go` is on PATH, the same work in
# Go (bench/go/spawn.go, bench/go/pingpong.go, built here into $BUILD/bench/go-spawn and
# go-pingpong), in one run. Each repetition runs every program once (one measurement per case),
# the order alternating between usgc first and Go first; each figure is the median of the
# repetitions' SAMPLE lines, and usgc's is divided by Go's:
#   RESULT suite=goroutines case=<case> impl=usgc|go metric=ns_per_goroutine|ns_per_round_trip value=<ns> unit=ns
#   RESULT suite=goroutines case=<case> impl=usgc metric=ratio_vs_go value=<usgc / go> unit=ratio
# Without go: "NOTE go not installed: Go comparison skipped".
# suite=million: $BUILD/bench/million_goroutines beside bench/go/million.go (see below).
# suite=safepoint: $BUILD/bench/safepoint (machine floor, poll overhead, time to safepoint
# against goroutine count for both arming modes and the requester's spin, under goroutine churn,
# handshakes); its lines are passed through.
# suite=safepoint_blocked: $BUILD/bench/safepoint_blocked once (time to safepoint with blocked and
# non-polling threads, plain against bracketed join); its lines are passed through.
#
# A MACHINE line comes first (as in run_all.sh), a NOTE with the load average at the end last.
# USGC_PROCS, GOMAXPROCS and USGC_SAFEPOINT_ARMING are unset for the runs: the cases without a
# -procsN suffix run at the online cores for both runtimes, and the safepoint program switches
# the arming mode itself. Lines are also saved to $BENCH_RUNTIME_LOG (default
# $BUILD/bench/runtime.log; bench/format_runtime_table.py turns it into tables).
#
# Environment: BUILD (default build), BENCH_REPS (default 5; repetitions of suite=goroutines),
# BENCH_QUICK=1 (1 repetition, sizes about 10x smaller), BENCH_TIMEOUT_S (per program run,
# default 300), BENCH_RUNTIME_LOG.
# Exit status: 0 when every program ran and printed no ERROR line, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
BENCH_QUICK=${BENCH_QUICK:-0}
if [ "$BENCH_QUICK" = 1 ]; then BENCH_REPS=${BENCH_REPS:-1}; else BENCH_REPS=${BENCH_REPS:-5}; fi
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
BENCH_RUNTIME_LOG=${BENCH_RUNTIME_LOG:-$BUILD/bench/runtime.log}
BIN=$BUILD/bench
unset USGC_PROCS GOMAXPROCS USGC_SAFEPOINT_ARMING
ulimit -c 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$BENCH_RUNTIME_LOG")"
: >"$BENCH_RUNTIME_LOG"
say() { echo "$*"; echo "$*" >>"$BENCH_RUNTIME_LOG"; }
progress() { echo "$*" >&2; }
errors=0

for program in goroutines safepoint; do
  if [ ! -x "$BIN/$program" ]; then
    echo "run_runtime.sh: $BIN/$program not built (make bench-bins BUILD=$BUILD)" >&2
    exit 2
  fi
done

# ---- Go ---------------------------------------------------------------------------------------
impls="usgc"
go_notes=()
go_version=""
if bench_prepare_go "$BIN"; then
  go_version=$(go version | awk '{print $3}')
  bin_abs=$(cd "$BIN" && pwd)
  if { go build -o "$bin_abs/go-spawn" bench/go/spawn.go bench/go/benchutil.go && go build -o "$bin_abs/go-pingpong" bench/go/pingpong.go bench/go/benchutil.go; } \
    >"$work/go-build.txt" 2>&1; then
    impls="usgc go"
  else
    go_notes+=("NOTE suite=goroutines go build failed: Go comparison skipped ($(head -c 200 "$work/go-build.txt" | head -n 1))")
    errors=$((errors + 1))
  fi
else
  go_notes+=("NOTE go not installed: Go comparison skipped")
fi

# ---- header -----------------------------------------------------------------------------------
cpu=$(bench_cpu_model)
commit=$(bench_commit)
say "MACHINE suite=runtime date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) cpu=\"$cpu\" nproc=$(nproc)" \
    "load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" reps=$BENCH_REPS quick=$BENCH_QUICK impls=\"$impls\" commit=$commit" \
    "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)" \
    "${go_version:+go=$go_version}" "usgc_bench_built=$(date -u -r "$(ls -t "$BIN/goroutines" "$BIN/safepoint" | head -n 1)" +%Y-%m-%dT%H:%M:%SZ)"
for note in "${go_notes[@]+"${go_notes[@]}"}"; do say "$note"; done

# ---- suite=goroutines -------------------------------------------------------------------------
usgc_args=()
spawn_args=()
pingpong_args=()
if [ "$BENCH_QUICK" = 1 ]; then
  usgc_args=(--spawn 10000 --round-trips 20000)
  spawn_args=(-spawn 10000)
  pingpong_args=(-round-trips 20000)
fi
# run NAME COMMAND...: one program run; its SAMPLE lines go to $work/samples, ERROR lines to
# $work/errors, and a failure without an ERROR line becomes one.
run() {
  local name=$1
  shift
  timeout "$BENCH_TIMEOUT_S" "$@" >"$work/out" 2>"$work/err"
  local status=$?
  grep '^SAMPLE' "$work/out" >>"$work/samples"
  grep '^ERROR' "$work/out" >>"$work/errors"
  if [ "$status" -ne 0 ] && ! grep -q '^ERROR' "$work/out"; then
    local why="exit status $status"
    [ "$status" = 124 ] && why="timed out after ${BENCH_TIMEOUT_S}s"
    [ "$status" -gt 128 ] && [ "$status" != 124 ] && why="killed by signal $((status - 128))"
    echo "ERROR suite=goroutines impl=$name reason=\"$* : $why: $(head -c 200 "$work/err" | head -n 1 | tr -d '"')\"" >>"$work/errors"
  fi
  progress "goroutines: $*: $(grep -c '^SAMPLE' "$work/out") samples, status $status"
}
: >"$work/samples"
: >"$work/errors"
# One process per number of Ps (0: the default, the online cores; the others name their cases
# -procsN), as one program uses one runtime.
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  progress "goroutines: repetition $rep/$BENCH_REPS"
  order="usgc go"
  [ $((rep % 2)) = 0 ] && order="go usgc"
  for procs in 0 1 2; do
    for impl in $order; do
      case " $impls " in *" $impl "*) ;; *) continue ;; esac
      if [ "$impl" = usgc ]; then
        run usgc "$BIN/goroutines" --reps 1 --procs "$procs" "${usgc_args[@]+"${usgc_args[@]}"}"
      else
        run go "$BIN/go-spawn" -reps 1 -procs "$procs" "${spawn_args[@]+"${spawn_args[@]}"}"
        run go "$BIN/go-pingpong" -reps 1 -procs "$procs" "${pingpong_args[@]+"${pingpong_args[@]}"}"
      fi
    done
  done
done
# One ERROR line per (case, impl): the same failure repeats in every repetition.
sort -u "$work/errors" | awk '{key = $2 " " $3 " " $4} !seen[key]++' >"$work/errors.unique"
while IFS= read -r line; do say "$line"; errors=$((errors + 1)); done <"$work/errors.unique"
# Medians of the SAMPLE lines per (case, impl, metric), in the order cases first appeared; a case
# with an ERROR for an impl has no figure for it (a failed repetition must not yield a number).
awk -v errfile="$work/errors.unique" '
  BEGIN { while ((getline line < errfile) > 0) { n = split(line, f, " "); c = ""; i = "";
            for (k = 1; k <= n; k++) { if (f[k] ~ /^case=/) c = substr(f[k], 6); if (f[k] ~ /^impl=/) i = substr(f[k], 6) }
            if (c != "") failed[c SUBSEP i] = 1; else failed_impl[i] = 1 } }
  /^SAMPLE/ {
    for (k = 2; k <= NF; k++) { split($k, kv, "="); v[kv[1]] = kv[2] }
    key = v["case"] SUBSEP v["impl"]
    if ((key in failed) || (v["impl"] in failed_impl)) next
    if (!(key in count)) { order[++n_keys] = key; metric[key] = v["metric"]; unit[key] = v["unit"] }
    values[key, ++count[key]] = v["value"]
  }
  END {
    for (k = 1; k <= n_keys; k++) {
      key = order[k]; m = count[key]
      for (i = 1; i <= m; i++) s[i] = values[key, i]
      for (i = 2; i <= m; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
      med = (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
      split(key, ci, SUBSEP)
      printf "%s %s %s %.1f %s\n", ci[1], ci[2], metric[key], med, unit[key]
    }
  }' "$work/samples" >"$work/medians"
while read -r c impl metric value unit; do
  say "RESULT suite=goroutines case=$c impl=$impl metric=$metric value=$value unit=$unit"
done <"$work/medians"
if [[ " $impls " == *" go "* ]]; then
  while read -r c impl metric value unit; do
    [ "$impl" = usgc ] || continue
    go_value=$(awk -v c="$c" '$1 == c && $2 == "go" {print $4}' "$work/medians")
    [ -n "$go_value" ] || continue
    say "RESULT suite=goroutines case=$c impl=usgc metric=ratio_vs_go value=$(awk -v a="$value" -v b="$go_value" 'BEGIN {printf "%.3f", a / b}') unit=ratio"
  done <"$work/medians"
fi

# ---- suite=safepoint --------------------------------------------------------------------------
# Three processes: poll-overhead needs preemption off, the stops need it on; the churn case
# (stops while goroutines are spawned and end) runs at 10 000 goroutines only.
quick_args=()
[ "$BENCH_QUICK" = 1 ] && quick_args=(--quick)
for cases in "floor ttsp handshake" "churn" "poll"; do
  progress "safepoint: $cases (quick: a few seconds; full: about 40 s)"
  case_args=()
  [ "$cases" = churn ] && case_args=(--counts 10000)
  timeout "$BENCH_TIMEOUT_S" "$BIN/safepoint" --cases "$cases" "${case_args[@]+"${case_args[@]}"}" \
    "${quick_args[@]+"${quick_args[@]}"}" >"$work/safepoint.out" 2>"$work/safepoint.err"
  status=$?
  while IFS= read -r line; do
    case $line in
      RESULT* | NOTE*) say "$line" ;;
      ERROR*) say "$line"; errors=$((errors + 1)) ;;
    esac
  done <"$work/safepoint.out"
  if [ "$status" -ne 0 ] && ! grep -q '^ERROR' "$work/safepoint.out"; then
    case $status in
      124) why="timed out after ${BENCH_TIMEOUT_S}s" ;;
      1[3-9][0-9] | 2[0-4][0-9]) why="killed by signal $((status - 128))" ;;
      *) why="exit status $status" ;;
    esac
    say "ERROR suite=safepoint impl=usgc reason=\"safepoint --cases '$cases': $why: $(head -c 200 "$work/safepoint.err" | head -n 1 | tr -d '"')\""
    errors=$((errors + 1))
  fi
done

# ---- suite=safepoint_blocked -------------------------------------------------------------------
# Time to safepoint with threads that block unbracketed or spin without polls, beside polling
# goroutines; binary-trees with a plain against a bracketed pthread_join (bench/safepoint_blocked.cpp).
if [ -x "$BIN/safepoint_blocked" ]; then
  progress "safepoint_blocked (about 20 s)"
  blocked_args=()
  [ "$BENCH_QUICK" = 1 ] && blocked_args=(100 14)
  if timeout "$BENCH_TIMEOUT_S" "$BIN/safepoint_blocked" "${blocked_args[@]+"${blocked_args[@]}"}" \
      >"$work/blocked.out" 2>"$work/blocked.err"; then
    while IFS= read -r line; do
      case $line in RESULT* | NOTE*) say "$line" ;; esac
    done <"$work/blocked.out"
  else
    say "ERROR suite=safepoint_blocked impl=usgc reason=\"exit status $?: $(head -c 200 "$work/blocked.err" | head -n 1 | tr -d '"')\""
    errors=$((errors + 1))
  fi
fi

# ---- suite=million ----------------------------------------------------------------------------
# bench/million_goroutines.cpp beside bench/go/million.go, one process per case and runtime (usgc
# first, then Go; one run each): 1 000 000 parked goroutines (spawn time, RSS each, stops with them
# parked) and a burst of 500 000 (RSS after they end). Quick: 100 000 and 50 000.
if [ -x "$BIN/million_goroutines" ]; then
  million_go=""
  if [[ " $impls " == *" go "* ]] && go build -o "$bin_abs/go-million" bench/go/million.go >"$work/go-million-build.txt" 2>&1; then
    million_go="$BIN/go-million"
  fi
  for million_case in parked burst; do
    count=""
    if [ "$BENCH_QUICK" = 1 ]; then
      count=50000
      [ "$million_case" = parked ] && count=100000
    fi
    for impl in usgc go; do
      if [ "$impl" = usgc ]; then
        command=("$BIN/million_goroutines" --case "$million_case")
        [ -n "$count" ] && command+=(--goroutines "$count")
      else
        [ -n "$million_go" ] || continue
        command=("$million_go" -case "$million_case")
        [ -n "$count" ] && command+=(-goroutines "$count")
      fi
      progress "million: $impl $million_case"
      timeout "$BENCH_TIMEOUT_S" "${command[@]}" >"$work/million.out" 2>"$work/million.err"
      status=$?
      grep -E '^(RESULT|NOTE)' "$work/million.out" | while IFS= read -r line; do say "$line"; done
      if [ "$status" -ne 0 ] || grep -q '^ERROR' "$work/million.out"; then
        say "ERROR suite=million case=$million_case impl=$impl reason=\"exit status $status: $(grep -m1 '^ERROR' "$work/million.out" | head -c 200 | tr -d '"')$(head -c 200 "$work/million.err" | head -n 1 | tr -d '"')\""
        errors=$((errors + 1))
      fi
    done
    # usgc / Go for each metric both printed.
    if [ -n "$million_go" ]; then
      grep "^RESULT suite=million case=$million_case " "$BENCH_RUNTIME_LOG" | awk -v c="$million_case" '
        { for (k = 2; k <= NF; k++) { split($k, kv, "="); v[kv[1]] = kv[2] }
          key = v["metric"]; if (v["impl"] == "usgc") u[key] = v["value"]; else if (v["impl"] == "go") g[key] = v["value"]; unit[key] = v["unit"] }
        END { for (m in u) if ((m in g) && g[m] != 0 && m != "rss_growth_percent")
                printf "RESULT suite=million case=%s impl=usgc metric=%s_ratio_vs_go value=%.3f unit=ratio\n", c, m, u[m] / g[m] }' |
        while IFS= read -r line; do say "$line"; done
    fi
  done
else
  say "NOTE suite=million skipped: $BIN/million_goroutines not built"
fi

say "NOTE suite=runtime end=$(date -u +%Y-%m-%dT%H:%M:%SZ) load_at_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
progress "results saved to $BENCH_RUNTIME_LOG; tables: /usr/bin/python3 bench/format_runtime_table.py $BENCH_RUNTIME_LOG"
[ "$errors" -eq 0 ]
