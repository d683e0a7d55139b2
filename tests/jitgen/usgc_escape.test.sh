#!/usr/bin/env bash
# usgc_escape.test.sh: the usgc-escape tool run as a user runs it.
#
# Proves: on every corpus program the one-line-per-site report gives each site the class its
# tests/escape/<name>.expected file lists, sorted by position, then a blank line and the per-class
# summary with percentages; -m=2 adds the reason chain (the goroutine capture of processData named
# with its position and variable); --json is valid JSON with the same sites; two runs print the
# same bytes; malformed input gets the parser's `file:line:col: message` errors and exit status 2;
# a missing file, no file and an unknown option (`--run` is not offered yet) exit 2 with a message.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>" per case; exits non-zero if
# any case failed. Environment: BUILD (default build).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
TOOL="$BUILD/usgc-escape"
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }
skip() { echo "SKIP $1: $2"; }

if [ ! -x "$TOOL" ]; then
  echo "FAIL setup: $TOOL is missing (make BUILD=$BUILD $TOOL)"
  exit 1
fi

# 1. Every corpus program: the classes of its .expected file, in position order.
short_class() {  # STACK_LOCAL|stack ... -> stack ...
  case "$1" in
    STACK_LOCAL|stack) echo stack ;; GOROUTINE_PRIVATE|private) echo private ;;
    GOROUTINE_SHARED|shared) echo shared ;; GLOBAL_SHARED|global) echo global ;; *) echo "?$1" ;;
  esac
}
for program in tests/escape/*.usir; do
  name=$(basename "$program" .usir)
  expected_file="tests/escape/$name.expected"
  (cd tests/escape && "../../$TOOL" "$name.usir") >"$work/out" 2>"$work/err"
  rc=$?
  if [ $rc -ne 0 ]; then fail "corpus_$name" "exit $rc: $(head -3 "$work/err")"; continue; fi
  # The site lines: everything before the first blank line, but the indented per-call lines.
  sed '/^$/q' "$work/out" | sed -e '/^$/d' -e '/^ /d' >"$work/sites"
  sed -E 's/^[^:]+:([0-9]+):([0-9]+): .*: (stack|private|shared|global) \(.*$/\1:\2 \3/' \
    "$work/sites" >"$work/got"
  sed 's/#.*//' "$expected_file" | awk 'NF >= 2 {print $1, $2}' |
    while read -r position class; do echo "$position $(short_class "$class")"; done |
    sort -t: -k1,1n -k2,2n >"$work/want"
  if ! diff -u "$work/want" "$work/got" >"$work/diff"; then
    fail "corpus_$name" "decisions differ from $expected_file: $(tr '\n' ' ' <"$work/diff" | head -c 400)"
  elif ! grep -q "^$name.usir:" "$work/sites"; then
    fail "corpus_$name" "site lines do not start with the file name"
  else
    pass "corpus_$name"
  fi
done

# 2. The summary: after one blank line, each class with a count and a percentage.
"$TOOL" tests/escape/process_data.usir >"$work/out" 2>&1
if sed -n '/^$/,$p' "$work/out" | grep -Eq '^  STACK_LOCAL +1 +20\.0%$' &&
   sed -n '/^$/,$p' "$work/out" | grep -Eq '^  GOROUTINE_PRIVATE +3 +60\.0%$' &&
   sed -n '/^$/,$p' "$work/out" | grep -Eq '^  GOROUTINE_SHARED +1 +20\.0%$' &&
   sed -n '/^$/,$p' "$work/out" | grep -Eq '^  GLOBAL_SHARED +0 +0\.0%$' &&
   sed -n '/^$/,$p' "$work/out" | grep -q 'total .*5 allocation sites'; then
  pass summary
else
  fail summary "unexpected summary: $(sed -n '/^$/,$p' "$work/out" | tr '\n' '|')"
fi

# 3. -m=2: the reason chain, indented under its site.
"$TOOL" -m=2 tests/escape/process_data.usir >"$work/out" 2>&1
if grep -A1 ':4:13: new Result: shared (captured by a goroutine)$' "$work/out" |
   grep -q '^    captured by the goroutine spawned at tests/escape/process_data.usir:14:3 through variable %shared$'; then
  pass reasons_m2
else
  fail reasons_m2 "no capture reason under the shared Result: $(head -12 "$work/out" | tr '\n' '|')"
fi

# 4. --json: valid, same sites and classes.
"$TOOL" --json -m=2 tests/escape/process_data.usir >"$work/json" 2>&1
if ! command -v python3 >/dev/null 2>&1; then
  skip json "python3 is not installed"
elif python3 - "$work/json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
classes = [(s["line"], s["column"], s["class"]) for s in data["sites"]]
assert classes == [(2, 13, "GOROUTINE_PRIVATE"), (3, 14, "GOROUTINE_PRIVATE"),
                   (4, 13, "GOROUTINE_SHARED"), (7, 16, "STACK_LOCAL"),
                   (9, 13, "GOROUTINE_PRIVATE")], classes
assert data["summary"]["total"] == 5 and data["summary"]["STACK_LOCAL"]["count"] == 1
assert all(s["chain"] for s in data["sites"] if s["class"] != "STACK_LOCAL")
PY
then
  pass json
else
  fail json "invalid or unexpected JSON: $(head -c 300 "$work/json")"
fi

# 5. Determinism: the same bytes on every run.
for run in 1 2 3; do "$TOOL" -m=2 tests/escape/worker_pool.usir >"$work/run$run" 2>&1; done
if cmp -s "$work/run1" "$work/run2" && cmp -s "$work/run1" "$work/run3"; then
  pass deterministic
else
  fail deterministic "two runs printed different reports"
fi

# 6. Malformed input: the parser's errors with file:line:col, exit 2, no report.
cat >"$work/bad.usir" <<'USIR'
type Point { x: int y: int }
func f() {
  var %p: *Point
entry:
  %p = new Pont
  ret %p
}
USIR
"$TOOL" "$work/bad.usir" >"$work/out" 2>"$work/err"
rc=$?
if [ $rc -eq 2 ] && grep -Eq "^$work/bad.usir:1:[0-9]+: expected" "$work/err" && [ ! -s "$work/out" ]; then
  pass malformed_syntax
else
  fail malformed_syntax "exit $rc, stderr: $(head -3 "$work/err" | tr '\n' '|'), stdout: $(head -c 100 "$work/out")"
fi
printf 'type Point { x: int }\nfunc f() {\n  var %%p: *Point\nentry:\n  %%p = new Pont\n  ret\n}\n' \
  >"$work/undefined.usir"
"$TOOL" "$work/undefined.usir" >"$work/out" 2>"$work/err"
rc=$?
if [ $rc -eq 2 ] && grep -Eq "^$work/undefined.usir:5:[0-9]+: .*Pont" "$work/err"; then
  pass malformed_semantic
else
  fail malformed_semantic "exit $rc, stderr: $(head -3 "$work/err" | tr '\n' '|')"
fi
head -c 3000 /dev/urandom >"$work/noise.usir"
"$TOOL" "$work/noise.usir" >/dev/null 2>"$work/err"
rc=$?
if [ $rc -eq 2 ]; then pass malformed_binary; else fail malformed_binary "exit $rc on random bytes"; fi

# 7. Usage errors.
"$TOOL" "$work/does-not-exist.usir" >/dev/null 2>"$work/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "cannot read '$work/does-not-exist.usir'" "$work/err"; then
  pass missing_file
else
  fail missing_file "exit $rc, stderr: $(head -2 "$work/err" | tr '\n' '|')"
fi
"$TOOL" >/dev/null 2>"$work/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "usage:" "$work/err"; then pass no_file; else fail no_file "exit $rc"; fi
"$TOOL" --frobnicate tests/escape/process_data.usir >/dev/null 2>"$work/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "unknown option '--frobnicate'" "$work/err" && grep -q "usage:" "$work/err"; then
  pass unknown_option
else
  fail unknown_option "exit $rc, stderr: $(head -2 "$work/err" | tr '\n' '|')"
fi

[ $failures -eq 0 ]
