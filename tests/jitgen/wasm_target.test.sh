#!/usr/bin/env bash
# wasm_target.test.sh: usgc-run --target=wasm (jitgen/wasm) run as a user runs it, in node.
#
# Proves: every corpus program (goroutines, channels and unknown code included) prints the same
# `main returned N` and the same allocations per site and class (--counts) in node as the
# interpreter, also with a collection before every allocation (--gc-stress 1) and every third
# one; runtime errors (nil field, index, division by zero, negative length, send on a closed
# channel, close of a closed or nil channel) exit 1 with the native JIT's positioned message; a
# deadlock (every goroutine blocked, also on a nil channel) exits 1 with the interpreter's
# message; many goroutines blocked at once survive collections and their stacks are reused;
# without binaryen's wasm-opt a program with goroutines is refused with the reason (exit 2);
# -o writes a module wasm-validate accepts and the node host runs alone (also an asyncified
# one); --emit-wat writes the text form; binary-trees on one goroutine gives the JIT's result and
# its heap stays bounded (the collector frees); the collections are usgc's own collector's (gc/
# built for wasm32: its USGC_TRACE=gc lines, private collections of each goroutine and shared
# ones); a goroutine blocked under a call chain too deep for its asyncify buffer stops with a
# named error; usage errors exit 2.
# Skips with the reason when the wasm toolchain (make wasm), node, wabt or binaryen is absent.
# Prints "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>" per case; exits non-zero if
# any case failed. Environment: BUILD (default build).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
TOOL="$BUILD/usgc-run"
RUNTIME="$BUILD/wasm/usgc-wasm-runtime.wasm"
HOST="$BUILD/wasm/usgc-wasm-host.mjs"
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }

if [ ! -x "$TOOL" ]; then
  echo "FAIL setup: $TOOL is missing (make BUILD=$BUILD $TOOL)"
  exit 1
fi
if [ ! -e "$RUNTIME" ]; then
  why=$(cat "$BUILD/wasm/unavailable" 2>/dev/null || echo "make wasm has not run")
  echo "SKIP wasm-target: the WebAssembly runtime is not built ($why)"
  exit 0
fi
if ! command -v node >/dev/null 2>&1; then
  echo "SKIP wasm-target: node is not installed (apt-get install nodejs)"
  exit 0
fi

have_wasm_opt=0
if command -v wasm-opt >/dev/null 2>&1; then
  have_wasm_opt=1
else
  echo "SKIP goroutines: binaryen's wasm-opt is not installed (apt-get install binaryen): programs with goroutines or channels are refused, not compared"
fi

# 1. The corpus: wasm in node == interpreted (unchecked); without wasm-opt the programs with
# goroutines or channels are refused with that reason.
for config in "plain:" "stress1:--gc-stress 1" "stress3:--gc-stress 3"; do
  IFS=: read -r label options <<<"$config"
  bad="" accepted=0 refused=0
  for program in tests/escape/*.usir; do
    # shellcheck disable=SC2086
    "$TOOL" --target=wasm $options --counts "$program" >"$work/wasm" 2>"$work/wasm.err"
    wasm_rc=$?
    if [ $have_wasm_opt -eq 0 ] && [ $wasm_rc -eq 2 ] &&
      grep -q "^usgc-run: $program: goroutines and channels on the WebAssembly target need binaryen's wasm-opt" "$work/wasm.err" &&
      [ ! -s "$work/wasm" ]; then
      refused=$((refused + 1))
      continue
    fi
    cat "$work/wasm.err" >>"$work/wasm"
    # shellcheck disable=SC2086
    "$TOOL" --interp --unchecked $options --counts "$program" >"$work/interp" 2>&1
    interp_rc=$?
    if [ $wasm_rc -ne $interp_rc ] || ! cmp -s "$work/wasm" "$work/interp"; then
      bad="$bad $(basename "$program") (exit $wasm_rc/$interp_rc)"
    fi
    accepted=$((accepted + 1))
  done
  if [ -z "$bad" ] && [ $accepted -ge 20 ] && { [ $have_wasm_opt -eq 0 ] || [ $refused -eq 0 ]; }; then
    pass "corpus-$label ($accepted programs same in node as interpreted, $refused refused)"
  else
    fail "corpus-$label" "differ:$bad (accepted $accepted, refused $refused)"
  fi
done

# 2. Without wasm-opt (PATH without it), a program with `go` is not run, and the reason says so.
mkdir -p "$work/bin"
ln -s "$(command -v node)" "$work/bin/node"
PATH="$work/bin" "$TOOL" --target=wasm tests/escape/process_data.usir >"$work/out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "process_data.usir: goroutines and channels on the WebAssembly target need binaryen's wasm-opt (apt-get install binaryen); not lowered" "$work/out"; then
  pass "refuses-go-without-wasm-opt"
else
  fail "refuses-go-without-wasm-opt" "exit $rc: $(head -c 300 "$work/out")"
fi

# 3. Runtime errors: the native JIT's message and status.
cases="nil_field: index_range:5 divide_zero:0 divide_zero:5 negative_length:0"
if [ $have_wasm_opt -eq 1 ]; then
  cases="$cases send_closed:0 send_closed:1 close_twice:0 close_twice:1 close_twice:2"
  cases="$cases many_goroutines:3"
fi
for case in $cases; do
  IFS=: read -r name arg <<<"$case"
  args=()
  [ -n "$arg" ] && args=(--arg "$arg")
  program=tests/jitgen/wasm_programs/$name.usir
  "$TOOL" --target=wasm "${args[@]}" "$program" >"$work/wasm" 2>&1
  wasm_rc=$?
  "$TOOL" "${args[@]}" "$program" >"$work/jit" 2>&1
  jit_rc=$?
  if [ $wasm_rc -eq $jit_rc ] && cmp -s "$work/wasm" "$work/jit"; then
    pass "runtime-error-$name${arg:+-$arg} (exit $wasm_rc: $(head -c 120 "$work/wasm" | tr '\n' ' '))"
  else
    fail "runtime-error-$name" "wasm exit $wasm_rc '$(cat "$work/wasm")', jit exit $jit_rc '$(cat "$work/jit")'"
  fi
done

# 3b. Deadlocks: the interpreter's message (it waits deadlock_ms and says so; the wasm run knows
# at once that no goroutine can run, so its message ends after the count) and status.
if [ $have_wasm_opt -eq 1 ]; then
  for arg in 0 1; do
    program=tests/jitgen/wasm_programs/deadlock.usir
    "$TOOL" --target=wasm --arg $arg "$program" >"$work/wasm" 2>&1
    wasm_rc=$?
    "$TOOL" --interp --arg $arg "$program" >"$work/interp" 2>&1
    interp_rc=$?
    expected=$(sed 's/ for [0-9]* ms)$/)/' "$work/interp")
    if [ $wasm_rc -eq 1 ] && [ $interp_rc -eq 1 ] && [ "$(cat "$work/wasm")" = "$expected" ] &&
      grep -q "all goroutines are asleep - deadlock! (2 goroutines blocked" "$work/wasm"; then
      pass "deadlock-$arg ($(cat "$work/wasm"))"
    else
      fail "deadlock-$arg" "wasm exit $wasm_rc '$(cat "$work/wasm")', interpreter exit $interp_rc '$(cat "$work/interp")'"
    fi
  done

  # Many goroutines: 2,000 spawned, up to 50 alive and most blocked at once; the JIT's result
  # with a collection every 7 allocations, and the stacks of ended goroutines reused (a region
  # is 4 pages: 2,000 without reuse would be 8,000 pages).
  program=tests/jitgen/wasm_programs/many_goroutines.usir
  "$TOOL" --target=wasm --arg 40 --gc-stress 7 --stats "$program" >"$work/wasm" 2>&1
  wasm_rc=$?
  "$TOOL" --arg 40 "$program" >"$work/jit" 2>&1
  pages=$(sed -n 's/.*pages_in_use=\([0-9]*\).*/\1/p' "$work/wasm")
  started=$(sed -n 's/.*goroutines_started=\([0-9]*\).*/\1/p' "$work/wasm")
  collections=$(sed -n 's/.*collections=\([0-9]*\).*/\1/p' "$work/wasm")
  if [ $wasm_rc -eq 0 ] && [ "$(head -1 "$work/wasm")" = "$(cat "$work/jit")" ] &&
    [ "$started" = 2000 ] && [ -n "$pages" ] && [ "$pages" -lt 1000 ] &&
    [ "${collections:-0}" -ge 100 ]; then
    pass "many-goroutines ($(head -1 "$work/wasm"), $started goroutines, $collections collections, $pages pages in use)"
  else
    fail "many-goroutines" "exit $wasm_rc: $(tr '\n' ' ' <"$work/wasm") vs $(cat "$work/jit")"
  fi
fi

# 4. -o and the host alone; the module validates.
if "$TOOL" --target=wasm -o "$work/arrays.wasm" tests/escape/arrays.usir &&
  node "$HOST" --runtime="$RUNTIME" --counts "$work/arrays.wasm" >"$work/host" 2>&1 &&
  "$TOOL" --interp --unchecked --counts tests/escape/arrays.usir >"$work/interp" 2>&1 &&
  cmp -s "$work/host" "$work/interp"; then
  pass "output-file-run-by-host"
else
  fail "output-file-run-by-host" "$(head -c 300 "$work/host" 2>/dev/null)"
fi
if [ $have_wasm_opt -eq 1 ]; then
  if "$TOOL" --target=wasm -o "$work/pipeline.wasm" tests/escape/channel_pipeline.usir &&
    node "$HOST" --runtime="$RUNTIME" --counts "$work/pipeline.wasm" >"$work/host" 2>&1 &&
    "$TOOL" --interp --unchecked --counts tests/escape/channel_pipeline.usir >"$work/interp" 2>&1 &&
    cmp -s "$work/host" "$work/interp"; then
    pass "asyncified-output-file-run-by-host"
  else
    fail "asyncified-output-file-run-by-host" "$(head -c 300 "$work/host" 2>/dev/null)"
  fi
  if command -v wasm-validate >/dev/null 2>&1; then
    if wasm-validate "$work/pipeline.wasm" >"$work/validate" 2>&1; then
      pass "asyncified-output-file-validates"
    else
      fail "asyncified-output-file-validates" "$(head -c 300 "$work/validate")"
    fi
  fi
fi
if command -v wasm-validate >/dev/null 2>&1; then
  if wasm-validate "$work/arrays.wasm" >"$work/validate" 2>&1; then
    pass "output-file-validates"
  else
    fail "output-file-validates" "$(head -c 300 "$work/validate")"
  fi
else
  echo "SKIP output-file-validates: wabt's wasm-validate is not installed (apt-get install wabt)"
fi
if command -v wasm2wat >/dev/null 2>&1; then
  if "$TOOL" --target=wasm --emit-wat "$work/arrays.wat" tests/escape/arrays.usir &&
    grep -q '(import "usgc" "usgc_wasm_alloc_private_slow"' "$work/arrays.wat"; then
    pass "emit-wat"
  else
    fail "emit-wat" "no text module written"
  fi
else
  echo "SKIP emit-wat: wabt's wasm2wat is not installed (apt-get install wabt)"
fi

# 5. binary-trees on one goroutine: the JIT's result; collections keep the heap bounded (a tree
# of depth 12 is about 8,000 nodes, 13 pages of 24-byte slots; 1.2 million nodes are made).
"$TOOL" --target=wasm --arg 12 --stats bench/binary_trees_single.usir >"$work/wasm" 2>&1
wasm_rc=$?
"$TOOL" --arg 12 bench/binary_trees_single.usir >"$work/jit" 2>&1
pages=$(sed -n 's/.*pages_in_use=\([0-9]*\).*/\1/p' "$work/wasm")
collections=$(sed -n 's/.*collections=\([0-9]*\).*/\1/p' "$work/wasm")
if [ $wasm_rc -eq 0 ] && [ "$(head -1 "$work/wasm")" = "$(cat "$work/jit")" ] &&
  [ -n "$pages" ] && [ "$pages" -lt 200 ] && [ "${collections:-0}" -ge 1 ]; then
  pass "binary-trees-single ($(head -1 "$work/wasm"), $collections collections, $pages pages in use)"
else
  fail "binary-trees-single" "exit $wasm_rc: $(tr '\n' ' ' <"$work/wasm") vs $(cat "$work/jit")"
fi
# 5b. A goroutine blocked under a call chain too deep for its asyncify buffer: a named error
# (exit 1), not an engine trap; a shallow one runs as natively.
if [ $have_wasm_opt -eq 1 ]; then
  program=tests/jitgen/wasm_programs/deep_block.usir
  "$TOOL" --target=wasm --arg 20 "$program" >"$work/wasm" 2>&1
  shallow_rc=$?
  "$TOOL" --arg 20 "$program" >"$work/jit" 2>&1
  "$TOOL" --target=wasm --arg 5000 "$program" >"$work/deep" 2>&1
  deep_rc=$?
  if [ $shallow_rc -eq 0 ] && cmp -s "$work/wasm" "$work/jit" && [ $deep_rc -eq 1 ] &&
    grep -q "^$program: goroutine blocked too deep: its saved wasm frames overflow its asyncify buffer ([0-9]* bytes)" "$work/deep"; then
    pass "asyncify-buffer-overflow-named ($(cat "$work/deep"))"
  else
    fail "asyncify-buffer-overflow-named" "exit $shallow_rc/$deep_rc: $(cat "$work/wasm" "$work/deep" | tr '\n' ' ')"
  fi
fi

# 6. The collector in wasm is usgc's gc/ (no second collector): its trace (USGC_TRACE=gc, passed
# to the runtime through WASI) shows private collections of two different goroutines (g1 is main)
# and shared collections, and the program's result is the interpreter's.
USGC_TRACE=gc "$TOOL" --target=wasm --gc-stress 50 tests/escape/fan_in.usir >"$work/wasm" 2>"$work/trace"
wasm_rc=$?
"$TOOL" --interp --unchecked tests/escape/fan_in.usir >"$work/interp" 2>&1
private_goroutines=$(sed -n 's/^usgc: gc .* private[-a-z]* g\([0-9]*\) .*/\1/p' "$work/trace" | sort -u | wc -l)
shared=$(grep -c '^usgc: gc .* shared' "$work/trace")
if [ $wasm_rc -eq 0 ] && cmp -s "$work/wasm" "$work/interp" && [ "$private_goroutines" -ge 2 ] &&
  [ "$shared" -ge 1 ]; then
  pass "collector-is-usgc-gc (private collections of $private_goroutines goroutines, $shared shared collections traced by gc/)"
else
  fail "collector-is-usgc-gc" "exit $wasm_rc, $private_goroutines goroutines collected privately, $shared shared: $(head -3 "$work/trace" | tr '\n' ' ')"
fi
"$TOOL" --target=wasm --arg 6 --gc-stress 1 bench/binary_trees_single.usir >"$work/wasm" 2>&1
"$TOOL" --arg 6 bench/binary_trees_single.usir >"$work/jit" 2>&1
if cmp -s "$work/wasm" "$work/jit"; then
  pass "binary-trees-single-stress1"
else
  fail "binary-trees-single-stress1" "$(cat "$work/wasm") vs $(cat "$work/jit")"
fi

# 6. Usage errors.
"$TOOL" --target=wasm --disasm tests/escape/arrays.usir >"$work/out" 2>&1
rc1=$?
"$TOOL" --target=wasm "$work/missing.usir" >"$work/out2" 2>&1
rc2=$?
"$TOOL" --target=wasm --entry nowhere tests/escape/arrays.usir >"$work/out3" 2>&1
rc3=$?
if [ $rc1 -eq 2 ] && grep -q "not supported with --target=wasm" "$work/out" && [ $rc2 -eq 2 ] &&
  [ $rc3 -eq 2 ] && grep -q "no function 'nowhere' to run" "$work/out3"; then
  pass "usage-errors"
else
  fail "usage-errors" "exits $rc1/$rc2/$rc3"
fi

exit $((failures > 0))
