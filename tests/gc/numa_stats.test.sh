#!/usr/bin/env bash
# numa_stats.test.sh: the GC heap's per-NUMA-node figures (usgc_gc_get_node_stats and the live
# stats block's gc_node_* fields) from a C11 program built the way a user builds it.
#
# Proves: tests/gc/programs/gc_node_stats.c compiles as C11 with -Wall -Wextra -Werror against the
# public headers only, links against libusgc.a and runs every one of its checks (EINVAL cases,
# committed >= in use per node, the nodes' figures adding up to the heap's, the stats block in
# /dev/shm showing the same per-node figures). Prints "PASS <name>" or "FAIL <name>: <why>".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=tests/gc/programs/gc_node_stats.c
libs=(-luring -lnuma -pthread -ldl)

if out=$(gcc -std=c11 -Wall -Wextra -Werror -Iinclude "$src" "$BUILD/libusgc.a" -lstdc++ "${libs[@]}" \
  -o "$work/gc_node_stats" 2>&1); then
  echo "PASS node-stats-program-builds"
else
  echo "FAIL node-stats-program-builds: ${out//$'\n'/ | }"; exit 1
fi
out=$(USGC_STATS=1 USGC_STATS_INTERVAL_MS=1 timeout 120 "$work/gc_node_stats" 2>&1); rc=$?
if [ $rc -eq 0 ] && [[ "$(tail -n 1 <<<"$out")" =~ ^gc_node_stats:\ [0-9]+\ checks,\ all\ passed$ ]]; then
  echo "PASS node-stats-from-public-headers"
else
  echo "FAIL node-stats-from-public-headers: exit $rc: ${out//$'\n'/ | }"; failures=$((failures + 1))
fi
[ $failures -eq 0 ]
