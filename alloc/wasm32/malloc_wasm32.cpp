// alloc/wasm32/malloc_wasm32.cpp — usgc's malloc entry points (usgc/usgc.h) on the WebAssembly
// target (wasm32-wasi, built only by tools/build-wasm-runtime.sh).
//
// On wasm32 the GC layer's side tables (mark stacks, handle tables, the verifier's sets) are the
// only users of usgc_malloc: the GC's objects live in its own blocks (gc/block.cpp over the
// wasm32 back end of kernel_iface). alloc/'s segment allocator, per-core caches and remote-free
// queues are built for 64-bit Linux (47-bit address layout, x86-64 flag outputs in the free
// path) and are not ported: these entry points are wasi-libc's malloc, with usgc.h's contract
// (malloc(0) unique, realloc(p, 0) frees, calloc/reallocarray overflow checks). Hot path: none
// (GC slow paths only).
#include <cerrno>
#include <cstdlib>

#include "usgc/usgc.h"

extern "C" {

void* usgc_malloc(size_t size) {
  return std::malloc(size == 0 ? 1 : size);
}

void* usgc_calloc(size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) {
    errno = ENOMEM;
    return nullptr;
  }
  return std::calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
}

void* usgc_realloc(void* pointer, size_t size) {
  if (size == 0) {
    std::free(pointer);
    return nullptr;
  }
  return std::realloc(pointer, size);
}

void* usgc_reallocarray(void* pointer, size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) {
    errno = ENOMEM;
    return nullptr;
  }
  return usgc_realloc(pointer, count * size);
}

void usgc_free(void* pointer) {
  std::free(pointer);
}

}  // extern "C"
