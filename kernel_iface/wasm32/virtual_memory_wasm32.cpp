// kernel_iface/wasm32/virtual_memory_wasm32.cpp — virtual_memory.hpp on the WebAssembly back end
// (wasm32-wasi, built only by tools/build-wasm-runtime.sh; the native build never sees it).
//
// WebAssembly has one linear memory that only grows (memory.grow, 64 KiB pages) and no way to
// give pages back, protect them or map them elsewhere. So, as mimalloc's WASI primitive layer:
//   map_aligned / reserve_aligned  a free range of earlier unmaps (first fit, aligned), or the
//                                  memory grown by the bytes plus the padding the alignment needs
//                                  (the padding becomes a free range); the pages are zero
//                                  (fresh pages are, reused ones were zeroed when unmapped);
//   unmap                          zeroes the range and keeps it for reuse (never returned);
//   commit                         nothing to do (all memory is committed);
//   decommit                       zeroes the range (what MADV_DONTNEED's readers expect: zero
//                                  pages afterwards), counted as a decommit;
//   protect / move_mapping         ENOTSUP (no page protection; nothing relies on it here);
//   advise_huge_pages              a successful no-op.
// Invariant: every free range is zero-filled and 64 KiB-aligned. Single-threaded (one instance,
// one thread): no locks. Hot path: none (block and chunk slow paths only).
#include <cerrno>
#include <cstring>

#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

constexpr size_t kWasmPageBytes = 65536;
constexpr size_t kMaxFreeRanges = 256;

struct FreeRange {
  uintptr_t begin;
  size_t bytes;
};
FreeRange g_free[kMaxFreeRanges];
size_t g_free_count = 0;
VirtualMemoryCounters g_counters{};
uint32_t g_injected_failures = 0;

bool is_power_of_two(size_t value) {
  return value != 0 && (value & (value - 1)) == 0;
}

// Keeps [begin, begin + bytes) (zero) for reuse, merged with a neighbour when they touch.
void keep_free(uintptr_t begin, size_t bytes) {
  if (bytes == 0) return;
  for (size_t i = 0; i < g_free_count; ++i) {
    if (g_free[i].begin + g_free[i].bytes == begin) {
      g_free[i].bytes += bytes;
      return;
    }
    if (begin + bytes == g_free[i].begin) {
      g_free[i].begin = begin;
      g_free[i].bytes += bytes;
      return;
    }
  }
  if (g_free_count < kMaxFreeRanges) g_free[g_free_count++] = {begin, bytes};
  // else: the range is lost to reuse (memory never shrinks anyway); counted nowhere
}

// An aligned part of a free range, or 0.
uintptr_t take_free(size_t bytes, size_t alignment) {
  for (size_t i = 0; i < g_free_count; ++i) {
    uintptr_t begin = g_free[i].begin, end = begin + g_free[i].bytes;
    uintptr_t aligned = (begin + alignment - 1) & ~(alignment - 1);
    if (aligned + bytes > end) continue;
    g_free[i] = g_free[--g_free_count];
    keep_free(begin, aligned - begin);
    keep_free(aligned + bytes, end - aligned - bytes);
    return aligned;
  }
  return 0;
}

}  // namespace

size_t os_page_size() {
  return kWasmPageBytes;
}

Result<void*> map_aligned(size_t bytes, size_t alignment) {
  if (bytes == 0 || bytes % kWasmPageBytes != 0 || !is_power_of_two(alignment) ||
      alignment < kWasmPageBytes)
    return Result<void*>::failure(EINVAL);
  if (g_injected_failures != 0) {
    --g_injected_failures;
    ++g_counters.failures;
    return Result<void*>::failure(ENOMEM);
  }
  uintptr_t reused = take_free(bytes, alignment);
  if (reused != 0) {
    ++g_counters.maps;
    return Result<void*>::success(reinterpret_cast<void*>(reused));
  }
  uintptr_t end = __builtin_wasm_memory_size(0) * kWasmPageBytes;
  uintptr_t aligned = (end + alignment - 1) & ~(alignment - 1);
  size_t grow_bytes = aligned - end + bytes;
  if (grow_bytes < bytes || aligned + bytes < aligned ||
      __builtin_wasm_memory_grow(0, grow_bytes / kWasmPageBytes) == static_cast<size_t>(-1)) {
    ++g_counters.failures;
    return Result<void*>::failure(ENOMEM);
  }
  keep_free(end, aligned - end);
  ++g_counters.maps;
  return Result<void*>::success(reinterpret_cast<void*>(aligned));
}

Result<void*> reserve_aligned(size_t bytes, size_t alignment) {
  return map_aligned(bytes, alignment);
}

Status unmap(void* address, size_t bytes) {
  auto begin = reinterpret_cast<uintptr_t>(address);
  if (begin % kWasmPageBytes != 0 || bytes % kWasmPageBytes != 0) return Status::failure(EINVAL);
  std::memset(address, 0, bytes);
  keep_free(begin, bytes);
  ++g_counters.unmaps;
  return Status::success();
}

Status commit(void* address, size_t bytes) {
  (void)address;
  (void)bytes;
  return Status::success();
}

Status decommit(void* address, size_t bytes) {
  std::memset(address, 0, bytes);
  ++g_counters.decommits;
  g_counters.bytes_decommitted += bytes;
  return Status::success();
}

Status protect(void* address, size_t bytes, Access access) {
  (void)address;
  (void)bytes;
  (void)access;
  return Status::failure(ENOTSUP);
}

Status move_mapping(void* address, size_t old_bytes, size_t new_bytes, void* target) {
  (void)address;
  (void)old_bytes;
  (void)new_bytes;
  (void)target;
  return Status::failure(ENOTSUP);
}

Status advise_huge_pages(void* address, size_t bytes, bool enable) {
  (void)address;
  (void)bytes;
  (void)enable;
  return Status::success();
}

void fail_next_maps(uint32_t count) {
  g_injected_failures = count;
}

VirtualMemoryCounters virtual_memory_counters() {
  return g_counters;
}

}  // namespace usgc::kernel
