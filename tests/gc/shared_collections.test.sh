#!/usr/bin/env bash
# shared_collections.test.sh: shared collections as an embedder sees them, from a C11 program built
# the way a user builds it (tests/gc/programs/shared_cards_and_stops.c, <usgc/usgc.h> only).
#
# Proves: with the heap verifier on (USGC_VERIFY=1) and two Ps, young shared objects referred to
# only from old shared objects survive minor collections (dirty cards scanned by the parallel
# markers) and full ones (mark bitmaps cleared lazily), and goroutines running on the Ps when the
# world stops keep what their private data refers to; the program runs all of its checks, with
# either wait protocol of the stops (USGC_SAFEPOINT_WAIT=spin and sleep).
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=tests/gc/programs/shared_cards_and_stops.c
if [ ! -f "$BUILD/libusgc.a" ]; then
  echo "SKIP shared-cards-and-stops: $BUILD/libusgc.a not built"
  exit 0
fi
if ! out=$(gcc -std=c11 -Wall -Wextra -Werror -Iinclude "$src" "$BUILD/libusgc.a" -lstdc++ \
    -luring -lnuma -pthread -ldl -o "$work/prog" 2>&1); then
  echo "FAIL shared-cards-and-stops-builds: ${out//$'\n'/ | }"
  exit 1
fi
echo "PASS shared-cards-and-stops-builds"
# Both ways a stop waits (USGC_SAFEPOINT_WAIT): spin, the default (the collector keeps its P
# through its stops), and sleep (it gives its P up, the protocol before).
for wait in spin sleep; do
  out=$(USGC_SAFEPOINT_WAIT=$wait USGC_VERIFY=1 USGC_PROCS=2 timeout 120 "$work/prog" 2>&1); rc=$?
  if [ $rc -eq 0 ] && [[ "$(tail -n 1 <<<"$out")" =~ ^shared_cards_and_stops:\ [0-9]+\ checks,\ all\ passed$ ]]; then
    echo "PASS shared-cards-and-stops-runs-wait-$wait"
  else
    echo "FAIL shared-cards-and-stops-runs-wait-$wait: exit $rc: $(tail -n 5 <<<"$out" | tr '\n' '|')"
    exit 1
  fi
done
