#!/usr/bin/env bash
# escape_dynamic.sh: suite=escape_dynamic, the share of dynamic allocations per ownership class
# over the escape corpus (the seed claims 60-80% stack-allocated): every
# tests/escape/<name>.usir runs its main in checked mode through `usgc-escape --json --run`, and
# bench/escape_dynamic.py sums the allocations per class (its docstring has the RESULT and CHECK
# lines). A MACHINE line comes first; lines are also saved to $BENCH_ESCAPE_DYNAMIC_LOG (default
# $BUILD/bench/escape_dynamic.log); per-program progress goes to stderr.
#
# Environment: BUILD (default build; $BUILD/usgc-escape must be built), BENCH_ESCAPE_DYNAMIC_LOG,
# BENCH_ESCAPE_PROGRAMS (default: every corpus program).
# Exit status: 0 when every program ran to completion (a missed claim is a CHECK ... result=FAIL
# line, not a failure), 1 on an ERROR line, 2 when usgc-escape is missing.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
BENCH_ESCAPE_DYNAMIC_LOG=${BENCH_ESCAPE_DYNAMIC_LOG:-$BUILD/bench/escape_dynamic.log}
BENCH_ESCAPE_PROGRAMS=${BENCH_ESCAPE_PROGRAMS:-}
TOOL=$BUILD/usgc-escape

if [ ! -x "$TOOL" ]; then
  echo "escape_dynamic.sh: $TOOL not built (make BUILD=$BUILD $TOOL)" >&2
  exit 2
fi
mkdir -p "$(dirname "$BENCH_ESCAPE_DYNAMIC_LOG")"
: >"$BENCH_ESCAPE_DYNAMIC_LOG"
say() { echo "$*"; echo "$*" >>"$BENCH_ESCAPE_DYNAMIC_LOG"; }
say "MACHINE suite=escape_dynamic date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) cpu=\"$(bench_cpu_model)\"" \
    "nproc=$(nproc) commit=$(bench_commit) usgc_escape=$TOOL"
read -r -a programs <<<"$BENCH_ESCAPE_PROGRAMS"
/usr/bin/python3 bench/escape_dynamic.py --usgc-escape "$TOOL" --corpus tests/escape \
  "${programs[@]+"${programs[@]}"}" | while IFS= read -r line; do say "$line"; done
status=${PIPESTATUS[0]}
echo "results saved to $BENCH_ESCAPE_DYNAMIC_LOG" >&2
exit "$status"
