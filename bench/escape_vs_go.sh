#!/usr/bin/env bash
# escape_vs_go.sh: suite=escape, usgc's escape analysis against Go's ("precision against
# Go"): for every corpus program tests/escape/<name>.usir that has a Go equivalent
# bench/go/escape/<name>.go, the allocation sites Go's `go build -gcflags=-m` keeps on the stack
# ("does not escape") against the sites usgc-escape decides STACK_LOCAL (or allocates in the caller's frame at some calls), and usgc's split of the
# rest into private / shared / global, which Go does not make. Each Go allocation carries a
# `// usir line:col` comment naming its .usir site; bench/escape_vs_go.py does the matching (see
# its docstring for the rules: inlined copies, channels, the -m -l variant) and prints
#   RESULT suite=escape case=<name>|total impl=go metric=sites|stack_sites|stack_sites_noinline ...
#   RESULT suite=escape case=<name>|total impl=usgc metric=sites|stack_sites|private_sites|shared_sites|global_sites|
#          caller_frame_sites|stack_anywhere_sites (STACK_LOCAL, or in the caller's frame at some calls) ...
#   CHECK suite=escape case=<name>|total target="usgc stack sites >= go stack sites" ... result=pass|FAIL
#   NOTE ... usgc fewer|more: <site>: usgc <class> (<reason>), go <decision>
# A MACHINE line comes first. Without Go (bench_prepare_go fails): one NOTE, nothing compared,
# status 0. Lines are also saved to $BENCH_ESCAPE_LOG (default $BUILD/bench/escape.log); the
# per-site table goes to stderr.
#
# Environment: BUILD (default build; $BUILD/usgc-escape must be built), BENCH_ESCAPE_LOG,
# BENCH_ESCAPE_PROGRAMS (default: every bench/go/escape/*.go with a .usir).
# Exit status: 0 when every program was compared (a missed target is a CHECK ... result=FAIL line,
# not a failure), 1 on an ERROR line, 2 when usgc-escape is missing.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. bench/bench_common.sh
BUILD=${BUILD:-build}
BENCH_ESCAPE_LOG=${BENCH_ESCAPE_LOG:-$BUILD/bench/escape.log}
BENCH_ESCAPE_PROGRAMS=${BENCH_ESCAPE_PROGRAMS:-}
TOOL=$BUILD/usgc-escape

if [ ! -x "$TOOL" ]; then
  echo "escape_vs_go.sh: $TOOL not built (make BUILD=$BUILD $TOOL)" >&2
  exit 2
fi
mkdir -p "$(dirname "$BENCH_ESCAPE_LOG")" "$BUILD/bench"
: >"$BENCH_ESCAPE_LOG"
say() { echo "$*"; echo "$*" >>"$BENCH_ESCAPE_LOG"; }

go_version=""
have_go=0
if bench_prepare_go "$BUILD/bench"; then
  have_go=1
  go_version=$(go version | awk '{print $3}')
fi
say "MACHINE suite=escape date=$(date -u +%Y-%m-%dT%H:%M:%SZ) kernel=$(uname -r) cpu=\"$(bench_cpu_model)\"" \
    "nproc=$(nproc) commit=$(bench_commit) ${go_version:+go=$go_version }usgc_escape=$TOOL" \
    "usgc_escape_built=$(date -u -r "$TOOL" +%Y-%m-%dT%H:%M:%SZ)"
if [ "$have_go" = 0 ]; then
  say "NOTE go not installed: Go comparison skipped"
  exit 0
fi

# The Go programs are single files built outside any module; GOFLAGS from the caller could
# change the diagnostics (-gcflags, -mod): the comparison runs with none.
read -r -a programs <<<"$BENCH_ESCAPE_PROGRAMS"
GOFLAGS= /usr/bin/python3 bench/escape_vs_go.py --usgc-escape "$TOOL" \
  --go-dir bench/go/escape --corpus tests/escape "${programs[@]+"${programs[@]}"}" \
  | while IFS= read -r line; do say "$line"; done
status=${PIPESTATUS[0]}
echo "results saved to $BENCH_ESCAPE_LOG" >&2
exit "$status"
