#!/usr/bin/env bash
# usgc_escape_bounds.test.sh: usgc-escape's resource bounds on hostile .usir input.
#
# Proves: the input must be a regular file of at most 16 MiB (/dev/zero, a FIFO, a directory and
# a 17 MiB file each get one line and exit 2, never bad_alloc or a hang); eight
# `new [16777216]*T` sites lay out in O(1) each (usgc's pointer-array kind) and, run, stop at the
# default heap limit or --heap-max with exit 1 and an out-of-memory line, in bounded memory;
# `new [16777217]int` is an error (exit 2), not a zero-length array; a large fixed array
# (`new [5000]*T`) still works when run; a bad --heap-max is a usage error; a call chain of
# 2000 functions (bench/escape_chain_program.py) is analyzed with every site shared, in bounded
# memory. Resource checks use /usr/bin/time's maximum RSS (no wall-time assertion; timeouts only
# guard against hangs).
# Prints "PASS <name>" or "FAIL <name>: <why>"; exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
ESCAPE="$BUILD/usgc-escape"
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -x "$ESCAPE" ] || { echo "FAIL setup: $ESCAPE is missing"; exit 1; }

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }

# expect NAME STATUS PATTERN COMMAND...: exit STATUS and a stderr line matching PATTERN.
expect() {
  local name=$1 want=$2 pattern=$3; shift 3
  timeout 120 "$@" >"$work/out" 2>"$work/err"
  local status=$?
  if [ $status -ne "$want" ]; then fail "$name" "exit $status (want $want): $(head -c 300 "$work/err")"
  elif [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$work/err"; then fail "$name" "no '$pattern' in: $(head -c 300 "$work/err")"
  elif grep -q "terminate called\|bad_alloc" "$work/err"; then fail "$name" "aborted: $(head -c 300 "$work/err")"
  else pass "$name"; fi
}

expect dev-zero-refused 2 "cannot read '/dev/zero': not a regular file" "$ESCAPE" /dev/zero
mkfifo "$work/fifo"
expect fifo-refused 2 "not a regular file" "$ESCAPE" "$work/fifo"
expect directory-refused 2 "not a regular file \(a directory\)" "$ESCAPE" "$work"
head -c $((17 << 20)) /dev/zero | tr '\0' ' ' >"$work/big.usir"
expect big-file-refused 2 "above the limit of 16777216" "$ESCAPE" "$work/big.usir"

# Eight huge fixed arrays of pointers.
{
  echo "type T { v: int }"
  echo "func main() -> int {"
  for i in 1 2 3 4 5 6 7 8; do echo "  var %a$i: [16777216]*T"; done
  echo "  var %n: int"
  echo "entry:"
  for i in 1 2 3 4 5 6 7 8; do echo "  %a$i = new [16777216]*T"; done
  echo "  %n = len %a8"
  echo "  ret %n"
  echo "}"
} >"$work/huge.usir"
# max_rss_kb FILE: the "maxrss=N" line /usr/bin/time wrote.
max_rss_kb() { sed -n 's/^maxrss=//p' "$1" | tail -n 1; }
if [ -x /usr/bin/time ]; then TIME=(/usr/bin/time -f maxrss=%M -o "$work/rss"); else TIME=(); fi
expect huge-arrays-analyzed 0 "" "${TIME[@]}" "$ESCAPE" "$work/huge.usir"
if [ -f "$work/rss" ] && [ "$(max_rss_kb "$work/rss")" -gt 262144 ]; then
  fail huge-arrays-memory "the analysis took $(max_rss_kb "$work/rss") KB (want < 256 MiB)"
elif [ -f "$work/rss" ]; then pass huge-arrays-memory; fi
rm -f "$work/rss"
expect huge-arrays-run-stops-at-heap-limit 1 "out of memory" "${TIME[@]}" "$ESCAPE" --run --heap-max 64M "$work/huge.usir"
if [ -f "$work/rss" ] && [ "$(max_rss_kb "$work/rss")" -gt 524288 ]; then
  fail huge-arrays-run-memory "the run took $(max_rss_kb "$work/rss") KB (want < 512 MiB)"
elif [ -f "$work/rss" ]; then pass huge-arrays-run-memory; fi
expect default-heap-limit 1 "out of memory" env -u USGC_HEAP_MAX "$ESCAPE" --run "$work/huge.usir"
expect bad-heap-max 2 "--heap-max lots: want 1M..64T bytes" "$ESCAPE" --run --heap-max lots "$work/huge.usir"

# Above 2^24 elements: an error, not a zero-length array.
cat >"$work/over.usir" <<'USIR'
func main() -> int {
  var %a: [16777217]int
  var %n: int
entry:
  %a = new [16777217]int
  %n = len %a
  ret %n
}
USIR
expect fixed-array-over-limit 2 "new \[16777217\]int: more than 16777216 elements" "$ESCAPE" --run "$work/over.usir"

# A large fixed array of pointers (the array-kind layout) runs: elements stored and read back.
cat >"$work/large.usir" <<'USIR'
type T { v: int }
func main() -> int {
  var %a: [5000]*T
  var %t: *T
  var %u: *T
  var %n: int
  var %v: int
entry:
  %a = new [5000]*T
  %t = new T
  store %t.v, 7
  store %a[4999], %t
  %u = load %a[4999]
  %v = load %u.v
  %n = len %a
  %n = add %n, %v
  ret %n
}
USIR
timeout 120 "$ESCAPE" --run --gc-stress 1 "$work/large.usir" >"$work/out" 2>"$work/err"
status=$?
if [ $status -eq 0 ] && grep -q "^main returned 5007$" "$work/out"; then pass large-fixed-array-runs
else fail large-fixed-array-runs "exit $status: $(tail -n 2 "$work/out") $(head -c 300 "$work/err")"; fi

# A chain of 2000 functions: every node shared (the spawn at the end reaches them all).
python3 bench/escape_chain_program.py 2000 usir >"$work/chain.usir"
rm -f "$work/rss"
timeout 300 "${TIME[@]}" "$ESCAPE" "$work/chain.usir" >"$work/out" 2>"$work/err"
status=$?
if [ $status -ne 0 ]; then fail long-call-chain "exit $status: $(head -c 300 "$work/err")"
elif ! grep -qE "GOROUTINE_SHARED +2000 +100.0%" "$work/out"; then fail long-call-chain "$(tail -n 8 "$work/out")"
elif [ -f "$work/rss" ] && [ "$(max_rss_kb "$work/rss")" -gt 131072 ]; then
  fail long-call-chain "$(max_rss_kb "$work/rss") KB (want < 128 MiB)"
else pass long-call-chain; fi

[ "$failures" -eq 0 ]
