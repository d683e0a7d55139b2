#!/usr/bin/env bash
# Builds the WebAssembly runtime of lowered .usir programs (jitgen/wasm/runtime/*.c) with clang
# for wasm32-wasi into $BUILD/wasm/usgc-wasm-runtime.wasm, and copies the node host beside it
# (usgc-run --target=wasm finds both next to itself, in wasm/). Used by `make wasm` (part of
# `make test`). Without the toolchain (clang with the wasm32 target, wasm-ld, wasi-libc) it says
# what is missing and exits 0: the wasm tests then skip with that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
out="$BUILD/wasm"
mkdir -p "$out"
cp tools/usgc-wasm-host.mjs "$out/usgc-wasm-host.mjs"
CLANG=${WASM_CC:-}
if [ -z "$CLANG" ]; then
  for candidate in clang clang-14; do
    command -v "$candidate" >/dev/null 2>&1 && CLANG=$candidate && break
  done
fi
reason=
if [ -z "$CLANG" ]; then
  reason="no clang (apt-get install clang-14)"
elif ! command -v wasm-ld >/dev/null 2>&1 && ! command -v wasm-ld-14 >/dev/null 2>&1; then
  reason="no wasm-ld (apt-get install lld-14)"
elif [ ! -e /usr/include/wasm32-wasi/string.h ] || [ ! -e /usr/lib/wasm32-wasi/libc.a ]; then
  reason="no wasi-libc (apt-get install wasi-libc)"
elif [ ! -e "$("$CLANG" --target=wasm32-wasi -print-libgcc-file-name 2>/dev/null)" ]; then
  reason="no compiler-rt builtins for wasm32 (apt-get install libclang-rt-14-dev-wasm32)"
fi
if [ -n "$reason" ]; then
  rm -f "$out/usgc-wasm-runtime.wasm"
  echo "$reason" >"$out/unavailable"
  echo "usgc: the WebAssembly runtime is not built: $reason" >&2
  exit 0
fi
sources=(jitgen/wasm/runtime/*.c)
target="$out/usgc-wasm-runtime.wasm"
if [ -e "$target" ] && [ -z "$(find "${sources[@]}" jitgen/wasm/runtime/*.h jitgen/wasm/wasm_abi.h -newer "$target")" ]; then
  exit 0
fi
rm -f "$out/unavailable"
"$CLANG" --target=wasm32-wasi -O2 -std=c11 -Wall -Wextra -Werror -I. -nostartfiles \
  -Wl,--no-entry -Wl,-z,stack-size=65536 -o "$target.tmp" "${sources[@]}"
mv "$target.tmp" "$target"
