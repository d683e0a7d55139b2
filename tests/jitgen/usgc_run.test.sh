#!/usr/bin/env bash
# usgc_run.test.sh: the usgc-run tool (the x86-64 JIT, or the interpreter with --interp) run as a
# user runs it.
#
# Proves: every corpus program's main prints the same `main returned N` and the same allocations
# per site and class (--counts) compiled as interpreted, with --gc-stress 1, with USGC_PROCS=1
# and 2, and with USGC_VERIFY=1 (the heap verified after each collection) too; --entry and --arg pass an entry and its arguments; a runtime error
# exits 1 with the interpreter's positioned message; --disasm prints every function with the
# stub boundaries marked; USGC_PERF_MAP=1 names the compiled functions in the perf map; usage
# errors, a missing file and a malformed one exit 2; libusgc.so exports the JIT's C++ API.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>" per case; exits non-zero if
# any case failed. Environment: BUILD (default build).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
TOOL="$BUILD/usgc-run"
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }

if [ ! -x "$TOOL" ]; then
  echo "FAIL setup: $TOOL is missing (make BUILD=$BUILD $TOOL)"
  exit 1
fi

# 1. The corpus: compiled == interpreted (unchecked: compiled code makes no decision checks).
for config in "plain::" "stress:--gc-stress 1:" "procs1::USGC_PROCS=1" "procs2::USGC_PROCS=2" \
  "verify:--gc-stress 4:USGC_VERIFY=1"; do
  IFS=: read -r label options environment <<<"$config"
  bad=""
  programs=0
  for program in tests/escape/*.usir; do
    # shellcheck disable=SC2086
    env $environment "$TOOL" $options --counts "$program" >"$work/jit" 2>&1
    jit_rc=$?
    # shellcheck disable=SC2086
    env $environment "$TOOL" --interp --unchecked $options --counts "$program" >"$work/interp" 2>&1
    interp_rc=$?
    if [ $jit_rc -ne 0 ] || [ $interp_rc -ne 0 ] || ! cmp -s "$work/jit" "$work/interp"; then
      bad="$bad $(basename "$program") (exit $jit_rc/$interp_rc)"
    fi
    programs=$((programs + 1))
  done
  if [ -z "$bad" ] && [ "$programs" -ge 40 ]; then
    pass "corpus-$label ($programs programs: same result and counts compiled as interpreted)"
  else
    fail "corpus-$label" "differ:$bad"
  fi
done

# 2. --entry and --arg.
cat >"$work/args.usir" <<'USIR'
func add3(%a: int, %b: int, %c: bool) -> int {
  var %r: int
entry:
  %r = add %a, %b
  br %c, yes, no
yes:
  %r = mul %r, 10
  ret %r
no:
  ret %r
}
func main() -> int {
entry:
  ret 1
}
USIR
out=$("$TOOL" --entry add3 --arg 4 --arg 5 --arg 1 "$work/args.usir" 2>&1)
if [ "$out" = "add3 returned 90" ]; then pass entry-and-args; else fail entry-and-args "got '$out'"; fi

# 3. A runtime error: exit 1, the interpreter's positioned message.
cat >"$work/error.usir" <<'USIR'
type P { x: int }
func main() -> int {
  var %p: *P
  var %v: int
entry:
  %v = load %p.x @12:7
  ret %v
}
USIR
"$TOOL" "$work/error.usir" >"$work/out" 2>"$work/err"
rc=$?
"$TOOL" --interp "$work/error.usir" >/dev/null 2>"$work/err_interp"
if [ $rc -eq 1 ] && grep -q "error.usir:12:7: runtime error: nil pointer dereference (field x of %p)" "$work/err" &&
   cmp -s "$work/err" "$work/err_interp"; then
  pass runtime-error
else
  fail runtime-error "exit $rc: $(cat "$work/err")"
fi

# 4. --disasm: every function, stubs marked.
"$TOOL" --disasm tests/escape/process_data.usir >"$work/disasm" 2>&1
rc=$?
missing=""
for needle in "usgc_jit_enter:" "processData:" "main:" "accumulate:" "processData[caller frame:" \
  "; ---- stub frame_push" "; ---- stub frame_pop" "; ---- stub poll" "; ---- stub private_alloc" \
  "; ---- stub stack_alloc" "; ---- stub barrier" "; ---- end poll" "test byte ptr [r11], 0"; do
  grep -qF "$needle" "$work/disasm" || missing="$missing '$needle'"
done
if [ $rc -eq 0 ] && [ -z "$missing" ]; then pass disasm; else fail disasm "exit $rc, missing$missing"; fi

# 5. The perf map names the compiled functions.
before=$(ls /tmp/perf-*.map 2>/dev/null | sort)
USGC_PERF_MAP=1 TMPDIR=/tmp "$TOOL" tests/escape/process_data.usir >"$work/out" 2>&1 &
pid=$!
wait $pid
map="/tmp/perf-$pid.map"
if [ -f "$map" ] && grep -qE '^[0-9a-f]+ [0-9a-f]+ usir:processData$' "$map" &&
   grep -qE ' usir:main$' "$map"; then
  pass perf-map
else
  fail perf-map "no usir: symbols in $map"
fi
rm -f "$map"

# 6. Usage errors, unreadable and malformed files: exit 2 with a message.
expect_usage() {  # name, then the arguments
  local name=$1
  shift
  "$TOOL" "$@" >/dev/null 2>"$work/err"
  local rc=$?
  if [ $rc -eq 2 ] && [ -s "$work/err" ]; then pass "$name"; else fail "$name" "exit $rc"; fi
}
expect_usage no-file
expect_usage missing-file "$work/nothing.usir"
expect_usage unknown-option --frobnicate tests/escape/process_data.usir
expect_usage bad-arg --arg twelve tests/escape/process_data.usir
printf 'func main() -> int {\nentry:\n  ret %%nope\n}\n' >"$work/bad.usir"
expect_usage malformed "$work/bad.usir"
expect_usage no-such-entry --entry nowhere tests/escape/process_data.usir

# 7. The C++ API an embedder links against libusgc.so is exported: parse, analyze, compile, run.
if command -v nm >/dev/null 2>&1 && [ -f "$BUILD/libusgc.so" ]; then
  nm -DC "$BUILD/libusgc.so" 2>/dev/null | grep -E "^[0-9a-f]+ T " >"$work/exports"
  missing=""
  for symbol in "usgc::jitgen::ir::parse_module(" "usgc::jitgen::escape::analyze_escapes(" \
    "usgc::jitgen::x86_64::CompiledModule::compile(" "usgc::jitgen::x86_64::run_compiled(" \
    "usgc::jitgen::x86_64::CompiledModule::entry(" "usgc::jitgen::interpreter::run_program("; do
    grep -qF "$symbol" "$work/exports" || missing="$missing $symbol"
  done
  if [ -z "$missing" ]; then pass api-exported; else fail api-exported "not exported:$missing"; fi
else
  echo "SKIP api-exported: nm or $BUILD/libusgc.so missing"
fi

[ $failures -eq 0 ]
