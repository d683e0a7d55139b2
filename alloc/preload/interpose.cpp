// alloc/preload/interpose.cpp — the malloc family and the C++ allocation operators, for
// libusgc_preload.so only (LD_PRELOAD=libusgc_preload.so program).
//
// Each symbol maps onto the usgc_* API with glibc's semantics (see include/usgc/usgc.h); the
// ones glibc has beyond the API (memalign, valloc, pvalloc, mallinfo2, ...) are defined here.
// Bootstrap: nothing here calls dlsym or the real malloc: usgc never forwards to glibc, so the
// first allocation of the process (before any constructor) is served like every other.
// Operator new follows the standard: on failure call the new_handler until it gives up, then
// throw std::bad_alloc (nothrow forms return nullptr).
// Hot path: malloc, free and the plain operator new and delete inline the heap's fast paths
// (alloc/heap.hpp) rather than calling usgc_malloc/usgc_free, which from here would cost a jump
// and a PLT jump per call (those are exported, hence interposable, symbols).
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "alloc/heap.hpp"
#include "alloc/layout.hpp"
#include "usgc/usgc.h"

using usgc::alloc::Caller;
using usgc::alloc::heap_free;
using usgc::alloc::heap_malloc;
using usgc::alloc::t_heap;

namespace {

// usgc_free_sized (alloc/malloc_api.cpp) with the fast path inline: checked builds compare the
// size with the block there.
[[gnu::always_inline]] inline void free_sized_impl(void* pointer, size_t size) {
#if defined(USGC_DEBUG) && USGC_DEBUG
  usgc_free_sized(pointer, size);
#else
  (void)size;
  heap_free(pointer, Caller::kFreeSized);  // null takes the slow path, which ignores it
#endif
}

}  // namespace

#define USGC_EXPORT extern "C" __attribute__((visibility("default")))

USGC_EXPORT void* malloc(size_t size) {
  return heap_malloc(t_heap, size);
}
USGC_EXPORT void free(void* pointer) {
  heap_free(pointer, Caller::kFree);
}
USGC_EXPORT void* calloc(size_t count, size_t size) {
  return usgc_calloc(count, size);
}
USGC_EXPORT void* realloc(void* pointer, size_t size) {
  return usgc_realloc(pointer, size);
}
USGC_EXPORT void* reallocarray(void* pointer, size_t count, size_t size) {
  return usgc_reallocarray(pointer, count, size);
}
USGC_EXPORT void free_sized(void* pointer, size_t size) {
  free_sized_impl(pointer, size);
}
USGC_EXPORT void free_aligned_sized(void* pointer, size_t, size_t size) {
  free_sized_impl(pointer, size);
}
USGC_EXPORT void cfree(void* pointer) {
  heap_free(pointer, Caller::kFree);
}

USGC_EXPORT void* memalign(size_t alignment, size_t size) {
  return usgc_aligned_alloc(alignment, size);
}
USGC_EXPORT void* aligned_alloc(size_t alignment, size_t size) {
  return usgc_aligned_alloc(alignment, size);
}
USGC_EXPORT int posix_memalign(void** result, size_t alignment, size_t size) {
  return usgc_posix_memalign(result, alignment, size);
}
USGC_EXPORT void* valloc(size_t size) {
  return usgc_aligned_alloc(static_cast<size_t>(::getpagesize()), size);
}
USGC_EXPORT void* pvalloc(size_t size) {
  size_t page = static_cast<size_t>(::getpagesize());
  size_t rounded = usgc::alloc::align_up(size == 0 ? 1 : size, page);
  if (rounded < size) {
    errno = ENOMEM;
    return nullptr;
  }
  return usgc_aligned_alloc(page, rounded);
}

USGC_EXPORT size_t malloc_usable_size(void* pointer) {
  return usgc_malloc_usable_size(pointer);
}
USGC_EXPORT int malloc_trim(size_t pad) {
  return usgc_malloc_trim(pad);
}

USGC_EXPORT struct mallinfo2 mallinfo2() {
  struct mallinfo2 info;
  std::memset(&info, 0, sizeof(info));
  usgc_malloc_stats stats;
  stats.version = USGC_MALLOC_STATS_VERSION;
  if (usgc_malloc_get_stats(&stats) != 0) return info;
  info.arena = stats.bytes_committed;
  info.hblkhd = stats.bytes_large_in_use;
  info.uordblks = stats.bytes_in_use;
  info.fordblks =
      stats.bytes_committed > stats.bytes_in_use ? stats.bytes_committed - stats.bytes_in_use : 0;
  info.ordblks = 1;
  return info;
}

USGC_EXPORT struct mallinfo mallinfo() {
  struct mallinfo2 wide = mallinfo2();
  struct mallinfo info;
  std::memset(&info, 0, sizeof(info));
  auto clip = [](size_t value) {
    return static_cast<int>(value > 0x7fffffff ? 0x7fffffff : value);
  };
  info.arena = clip(wide.arena);
  info.hblkhd = clip(wide.hblkhd);
  info.uordblks = clip(wide.uordblks);
  info.fordblks = clip(wide.fordblks);
  info.ordblks = clip(wide.ordblks);
  return info;
}

// glibc's tuning knobs have no meaning for usgc; accepted and ignored (USGC_* variables tune it).
USGC_EXPORT int mallopt(int, int) {
  return 1;
}

// ---- C++ operators --------------------------------------------------------------------------

namespace {

[[gnu::noinline]] void* new_slow(size_t size, size_t alignment, bool nothrow) {
  for (;;) {
    void* pointer = alignment == 0 ? usgc_malloc(size) : usgc_aligned_alloc(alignment, size);
    if (pointer != nullptr) return pointer;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

[[gnu::noinline]] void* new_generic(size_t size) {
  void* pointer = usgc::alloc::heap_malloc_generic(size, t_heap);
  return pointer != nullptr ? pointer : new_slow(size, 0, false);
}

// The fast path ends in a return or a jump, so it saves no register.
inline void* new_impl(size_t size) {
  void* pointer = usgc::alloc::heap_malloc_fast(t_heap, size);
  if (__builtin_expect(pointer != nullptr, 1)) return pointer;
  return new_generic(size);
}

inline void* new_aligned_impl(size_t size, std::align_val_t alignment) {
  void* pointer = usgc_aligned_alloc(static_cast<size_t>(alignment), size);
  return pointer != nullptr ? pointer : new_slow(size, static_cast<size_t>(alignment), false);
}

inline void* new_nothrow_impl(size_t size, size_t alignment) noexcept {
  void* pointer = alignment == 0 ? usgc_malloc(size) : usgc_aligned_alloc(alignment, size);
  if (pointer != nullptr) return pointer;
  try {
    return new_slow(size, alignment, true);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

#define USGC_OPERATOR __attribute__((visibility("default")))

USGC_OPERATOR void* operator new(size_t size) {
  return new_impl(size);
}
USGC_OPERATOR void* operator new[](size_t size) {
  return new_impl(size);
}
USGC_OPERATOR void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return new_nothrow_impl(size, 0);
}
USGC_OPERATOR void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return new_nothrow_impl(size, 0);
}
USGC_OPERATOR void* operator new(size_t size, std::align_val_t alignment) {
  return new_aligned_impl(size, alignment);
}
USGC_OPERATOR void* operator new[](size_t size, std::align_val_t alignment) {
  return new_aligned_impl(size, alignment);
}
USGC_OPERATOR void* operator new(size_t size, std::align_val_t alignment,
                                 const std::nothrow_t&) noexcept {
  return new_nothrow_impl(size, static_cast<size_t>(alignment));
}
USGC_OPERATOR void* operator new[](size_t size, std::align_val_t alignment,
                                   const std::nothrow_t&) noexcept {
  return new_nothrow_impl(size, static_cast<size_t>(alignment));
}

USGC_OPERATOR void operator delete(void* pointer) noexcept {
  heap_free(pointer, Caller::kFree);
}
USGC_OPERATOR void operator delete[](void* pointer) noexcept {
  heap_free(pointer, Caller::kFree);
}
USGC_OPERATOR void operator delete(void* pointer, size_t size) noexcept {
  free_sized_impl(pointer, size);
}
USGC_OPERATOR void operator delete[](void* pointer, size_t size) noexcept {
  free_sized_impl(pointer, size);
}
USGC_OPERATOR void operator delete(void* pointer, const std::nothrow_t&) noexcept {
  heap_free(pointer, Caller::kFree);
}
USGC_OPERATOR void operator delete[](void* pointer, const std::nothrow_t&) noexcept {
  heap_free(pointer, Caller::kFree);
}
USGC_OPERATOR void operator delete(void* pointer, std::align_val_t) noexcept {
  heap_free(pointer, Caller::kFree);
}
USGC_OPERATOR void operator delete[](void* pointer, std::align_val_t) noexcept {
  heap_free(pointer, Caller::kFree);
}
USGC_OPERATOR void operator delete(void* pointer, size_t size, std::align_val_t) noexcept {
  free_sized_impl(pointer, size);
}
USGC_OPERATOR void operator delete[](void* pointer, size_t size, std::align_val_t) noexcept {
  free_sized_impl(pointer, size);
}
USGC_OPERATOR void operator delete(void* pointer, std::align_val_t,
                                   const std::nothrow_t&) noexcept {
  heap_free(pointer, Caller::kFree);
}
USGC_OPERATOR void operator delete[](void* pointer, std::align_val_t,
                                     const std::nothrow_t&) noexcept {
  heap_free(pointer, Caller::kFree);
}
