// alloc/wasm32/libc_malloc_wasm32.cpp — the C library's malloc family on the WebAssembly target
// (wasm32-wasi, built only by tools/build-wasm-runtime.sh), served by usgc's malloc.
//
// wasi-libc's malloc (dlmalloc, one archive member of libc.a) defines malloc, free, calloc,
// realloc, aligned_alloc, posix_memalign, malloc_usable_size and the __libc_* aliases. Defining
// every one of them here keeps that member out of the link, so everything in the module that
// allocates through the C library — libc++'s operator new, wasi-libc's own calls (environ,
// stdio buffers), the collector's side tables — uses usgc's allocator (alloc/), which takes its
// memory from kernel_iface's wasm32 back end (memory.grow). The memory has one allocator. As
// alloc/preload/interpose.cpp natively, each symbol maps onto the usgc_* API. Hot path: the
// usgc_* fast paths behind one call.
#include <cstddef>

#include "usgc/usgc.h"

#define USGC_LIBC_EXPORT extern "C" __attribute__((visibility("default")))

USGC_LIBC_EXPORT void* malloc(size_t size) {
  return usgc_malloc(size);
}
USGC_LIBC_EXPORT void free(void* pointer) {
  usgc_free(pointer);
}
USGC_LIBC_EXPORT void* calloc(size_t count, size_t size) {
  return usgc_calloc(count, size);
}
USGC_LIBC_EXPORT void* realloc(void* pointer, size_t size) {
  return usgc_realloc(pointer, size);
}
USGC_LIBC_EXPORT void* aligned_alloc(size_t alignment, size_t size) {
  return usgc_aligned_alloc(alignment, size);
}
USGC_LIBC_EXPORT int posix_memalign(void** result, size_t alignment, size_t size) {
  return usgc_posix_memalign(result, alignment, size);
}
USGC_LIBC_EXPORT size_t malloc_usable_size(void* pointer) {
  return usgc_malloc_usable_size(pointer);
}
USGC_LIBC_EXPORT void* __libc_malloc(size_t size) {
  return usgc_malloc(size);
}
USGC_LIBC_EXPORT void __libc_free(void* pointer) {
  usgc_free(pointer);
}
USGC_LIBC_EXPORT void* __libc_calloc(size_t count, size_t size) {
  return usgc_calloc(count, size);
}
