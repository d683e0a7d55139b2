#!/usr/bin/env bash
# wasm_target.test.sh: usgc-run --target=wasm (jitgen/wasm) run as a user runs it, in node.
#
# Proves: every corpus program the WebAssembly target accepts prints the same `main returned N`
# and the same allocations per site and class (--counts) in node as the interpreter, also with a
# collection before every allocation (--gc-stress 1) and every third one; every program it does
# not accept (goroutines, channels, unknown code) is refused with exit 2 and a positioned reason,
# never run; runtime errors (nil field, index, division by zero, negative length) exit 1 with the
# native JIT's positioned message; -o writes a module wasm-validate accepts and the node host runs
# alone; --emit-wat writes the text form; binary-trees on one goroutine gives the JIT's result and
# its heap stays bounded (the collector frees); usage errors exit 2.
# Skips with the reason when the wasm toolchain (make wasm), node or wabt is absent.
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

# 1. The corpus: wasm in node == interpreted (unchecked), or refused with a reason.
for config in "plain:" "stress1:--gc-stress 1" "stress3:--gc-stress 3"; do
  IFS=: read -r label options <<<"$config"
  bad="" accepted=0 refused=0
  for program in tests/escape/*.usir; do
    # shellcheck disable=SC2086
    "$TOOL" --target=wasm $options --counts "$program" >"$work/wasm" 2>"$work/wasm.err"
    wasm_rc=$?
    if [ $wasm_rc -eq 2 ] && grep -q "^usgc-run: $program:[0-9]*:[0-9]*: the WebAssembly target does not support" "$work/wasm.err" &&
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
  if [ -z "$bad" ] && [ $accepted -ge 20 ] && [ $refused -ge 1 ]; then
    pass "corpus-$label ($accepted programs same in node as interpreted, $refused refused)"
  else
    fail "corpus-$label" "differ:$bad (accepted $accepted, refused $refused)"
  fi
done

# 2. Refusal: a program with `go` is not run, and the reason names the construct and position.
"$TOOL" --target=wasm tests/escape/process_data.usir >"$work/out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "process_data.usir:14:3: the WebAssembly target does not support \`go\`" "$work/out"; then
  pass "refuses-go"
else
  fail "refuses-go" "exit $rc: $(head -c 300 "$work/out")"
fi

# 3. Runtime errors: the native JIT's message and status.
for case in "nil_field:" "index_range:5" "divide_zero:0" "divide_zero:5" "negative_length:0"; do
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

# 4. -o and the host alone; the module validates.
if "$TOOL" --target=wasm -o "$work/arrays.wasm" tests/escape/arrays.usir &&
  node "$HOST" --runtime="$RUNTIME" --counts "$work/arrays.wasm" >"$work/host" 2>&1 &&
  "$TOOL" --interp --unchecked --counts tests/escape/arrays.usir >"$work/interp" 2>&1 &&
  cmp -s "$work/host" "$work/interp"; then
  pass "output-file-run-by-host"
else
  fail "output-file-run-by-host" "$(head -c 300 "$work/host" 2>/dev/null)"
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
