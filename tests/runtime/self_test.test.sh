#!/usr/bin/env bash
# self_test.test.sh: `usgc-demo --self-test SECONDS` runs usgc_self_test (usgc/validate.h) on a
# fresh runtime: it passes, with work in every counter and a verified heap; a bad argument is a
# usage error. Also under USGC_PROCS=1 and with the shared collector off.
# Prints "PASS <name>" or "FAIL <name>: <why>"; exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
DEMO="$BUILD/usgc-demo"
failures=0
[ -x "$DEMO" ] || { echo "FAIL setup: $DEMO is missing"; exit 1; }

# run_case NAME ENV...: the self test for 1 s passes with plausible counts.
run_case() {
  local name=$1; shift
  local out
  out=$(env "$@" timeout 120 "$DEMO" --self-test 1 2>&1)
  local status=$?
  if [ $status -ne 0 ]; then echo "FAIL $name: exit $status: ${out//$'\n'/ | }"; failures=$((failures + 1)); return; fi
  if python3 - "$out" <<'PY'
import re, sys
text = sys.argv[1]
m = re.search(r"self test passed: (\d+) rounds, (\d+) objects allocated, (\d+) published, (\d+) messages, "
              r"(\d+) collections, (\d+) checks, 0 failures", text)
assert m, text
rounds, allocated, published, messages, collections, checks = map(int, m.groups())
assert rounds > 0 and allocated > rounds and published == messages > 0 and collections > 0 and checks > rounds, m.groups()
h = re.search(r"heap verified: (\d+) objects, (\d+) bytes, (\d+) references, (\d+) roots, (\d+) goroutines", text)
assert h and int(h.group(1)) > 0 and int(h.group(2)) > 0 and int(h.group(5)) >= 1, text
PY
  then echo "PASS $name"; else echo "FAIL $name: ${out//$'\n'/ | }"; failures=$((failures + 1)); fi
}

run_case self-test-passes USGC_STATS=1
run_case self-test-one-p USGC_PROCS=1
run_case self-test-collector-off USGC_GC_PERCENT=off

out=$(timeout 30 "$DEMO" --self-test -3 2>&1)
status=$?
if [ $status -eq 2 ] && grep -q "takes seconds" <<<"$out"; then echo "PASS self-test-bad-argument"
else echo "FAIL self-test-bad-argument: exit $status: $out"; failures=$((failures + 1)); fi

[ "$failures" -eq 0 ]
