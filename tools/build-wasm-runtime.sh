#!/usr/bin/env bash
# Builds the WebAssembly runtime of lowered .usir programs with clang for wasm32-wasi into
# $BUILD/wasm/usgc-wasm-runtime.wasm, and copies the node host beside it (usgc-run --target=wasm
# finds both next to itself, in wasm/). The runtime is usgc's own collector (gc/*.cpp) built for
# wasm32 over the WebAssembly back end of the lower layers (kernel_iface/wasm32, numa/wasm32,
# alloc/wasm32, safepoint/wasm32), plus the goroutine, channel and slow-path glue of
# jitgen/wasm/runtime/. Used by `make wasm` (part of `make test`). Without the toolchain (clang
# with the wasm32 target, wasm-ld, wasi-libc, libc++ for wasm32) it says what is missing and
# exits 0: the wasm tests then skip with that reason.
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
elif [ ! -e /usr/lib/wasm32-wasi/libc++.a ] || [ ! -e /usr/lib/wasm32-wasi/libc++abi.a ]; then
  reason="no libc++ for wasm32 (apt-get install libc++-14-dev-wasm32 libc++abi-14-dev-wasm32)"
fi
if [ -n "$reason" ]; then
  rm -f "$out/usgc-wasm-runtime.wasm"
  echo "$reason" >"$out/unavailable"
  echo "usgc: the WebAssembly runtime is not built: $reason" >&2
  exit 0
fi
CLANGXX=${WASM_CXX:-${CLANG/clang/clang++}}
c_sources=(jitgen/wasm/runtime/*.c)
# usgc's layers for wasm32: the collector whole, the lower layers' WebAssembly back ends, and of
# kernel_iface the portable files (error output, the environment).
# Of alloc/ the allocator proper (segments, pages, heaps, the malloc API), with its wasm32 back
# ends for what WASI has not (the heap profile's unwinding, the /dev/shm statistics block) and
# the C library's malloc family on top (alloc/wasm32/).
alloc_sources=(alloc/heap.cpp alloc/page_queues.cpp alloc/heap_segments.cpp alloc/heap_free.cpp
  alloc/free_checks.cpp alloc/heap_decay.cpp alloc/heap_lifecycle.cpp alloc/large_arena.cpp
  alloc/large_objects.cpp alloc/malloc_api.cpp alloc/malloc_stats.cpp alloc/remote_free_queue.cpp
  alloc/segment.cpp alloc/segment_map.cpp alloc/foreign_block_cache.cpp alloc/page_free_batch.cpp
  alloc/huge_chunks.cpp
  alloc/heap_profile_cut.cpp alloc/footprint.cpp alloc/wasm32/*.cpp)
cxx_sources=(jitgen/wasm/runtime/*.cpp gc/*.cpp kernel_iface/wasm32/*.cpp kernel_iface/fatal.cpp
  kernel_iface/environment.cpp numa/wasm32/*.cpp "${alloc_sources[@]}" safepoint/wasm32/*.cpp)
target="$out/usgc-wasm-runtime.wasm"
headers=(jitgen/wasm/runtime/*.h jitgen/wasm/wasm_abi.h gc/*.hpp kernel_iface/*.hpp
  kernel_iface/wasm32/include/*.h numa/*.hpp safepoint/*.hpp include/usgc/*.h alloc/*.hpp)
# alloc/'s own check of usgc's malloc on wasm32 (tests/alloc/wasm32_malloc.test.sh runs it).
malloc_test_source=tests/alloc/wasm32/malloc_wasm32_program.cpp
malloc_test="$out/usgc-wasm-malloc-test.wasm"
if [ -e "$target" ] && [ -e "$malloc_test" ] &&
  [ -z "$(find "${c_sources[@]}" "${cxx_sources[@]}" "${headers[@]}" "$malloc_test_source" -newer "$target")" ]; then
  exit 0
fi
rm -f "$out/unavailable"
objects="$out/obj"
# ccache when present (the wasm32 objects of gc/ take minutes to compile otherwise).
WASM_CCACHE=$(command -v ccache || true)
mkdir -p "$objects"
common=(--target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wno-missing-field-initializers -I. -Iinclude
  -isystem kernel_iface/wasm32/include -DNDEBUG)
object_files=()
for source in "${c_sources[@]}" "${cxx_sources[@]}"; do
  object="$objects/${source//\//_}.o"
  object_files+=("$object")
  if [ "$source" = "${source%.c}" ]; then
    $WASM_CCACHE "$CLANGXX" "${common[@]}" -std=c++20 -fno-exceptions -fno-rtti -c "$source" -o "$object"
  else
    $WASM_CCACHE "$CLANG" "${common[@]}" -std=c11 -c "$source" -o "$object"
  fi
done
"$CLANGXX" --target=wasm32-wasi -nostartfiles -Wl,--no-entry -Wl,-z,stack-size=262144 \
  -o "$target.tmp" "${object_files[@]}"
# The malloc test program: usgc's allocator and the lower layers' back ends, nothing of gc/.
malloc_test_objects=()
for object in "${object_files[@]}"; do
  case "$object" in
  "$objects"/alloc_* | "$objects"/kernel_iface_* | "$objects"/numa_*) malloc_test_objects+=("$object") ;;
  esac
done
$WASM_CCACHE "$CLANGXX" "${common[@]}" -std=c++20 -fno-exceptions -fno-rtti -c "$malloc_test_source" \
  -o "$objects/malloc_test.o"
"$CLANGXX" --target=wasm32-wasi -o "$malloc_test.tmp" "$objects/malloc_test.o" "${malloc_test_objects[@]}"
mv "$malloc_test.tmp" "$malloc_test"
mv "$target.tmp" "$target"
