// kernel_iface/virtual_memory.cpp — see virtual_memory.hpp. All calls go straight to the
// kernel; nothing here allocates, so it is safe inside malloc and before constructors.
#include "kernel_iface/virtual_memory.hpp"
#include "kernel_iface/address_sanitizer.hpp"
#include "kernel_iface/asan_shadow.hpp"

#include <sys/auxv.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>

namespace usgc::kernel {
namespace {

// Relaxed: counters for statistics, no ordering with anything.
std::atomic<uint64_t> g_maps{0};
std::atomic<uint64_t> g_unmaps{0};
std::atomic<uint64_t> g_decommits{0};
std::atomic<uint64_t> g_bytes_decommitted{0};
std::atomic<uint64_t> g_failures{0};
std::atomic<uint32_t> g_injected_map_failures{0};

bool take_injected_failure() {
  uint32_t pending = g_injected_map_failures.load(std::memory_order_relaxed);
  while (pending != 0) {
    if (g_injected_map_failures.compare_exchange_weak(pending, pending - 1,
                                                      std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

bool is_power_of_two(size_t value) {
  return value != 0 && (value & (value - 1)) == 0;
}

Result<void*> map_aligned_with(size_t bytes, size_t alignment, int protection, int extra_flags) {
  size_t page = os_page_size();
  if (bytes == 0 || bytes % page != 0 || !is_power_of_two(alignment) || alignment < page) {
    return Result<void*>::failure(EINVAL);
  }
  if (take_injected_failure()) {
    g_failures.fetch_add(1, std::memory_order_relaxed);
    return Result<void*>::failure(ENOMEM);
  }
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | extra_flags;
  // First try the exact size: the kernel often hands out aligned addresses for large sizes.
  if (alignment == page) {
    void* p = ::mmap(nullptr, bytes, protection, flags, -1, 0);
    if (p == MAP_FAILED) {
      g_failures.fetch_add(1, std::memory_order_relaxed);
      return Result<void*>::failure(errno);
    }
    g_maps.fetch_add(1, std::memory_order_relaxed);
    return Result<void*>::success(p);
  }
  size_t over = bytes + alignment - page;
  if (over < bytes) return Result<void*>::failure(ENOMEM);  // size overflow
  void* raw = ::mmap(nullptr, over, protection, flags, -1, 0);
  if (raw == MAP_FAILED) {
    g_failures.fetch_add(1, std::memory_order_relaxed);
    return Result<void*>::failure(errno);
  }
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
  size_t head = aligned - start;
  size_t tail = over - head - bytes;
  // munmap of a sub-range of our own fresh mapping cannot fail except on programming error.
  if (head != 0) ::munmap(raw, head);
  if (tail != 0) ::munmap(reinterpret_cast<void*>(aligned + bytes), tail);
  g_maps.fetch_add(1, std::memory_order_relaxed);
  return Result<void*>::success(reinterpret_cast<void*>(aligned));
}

int protection_of(Access access) {
  switch (access) {
    case Access::kNone:
      return PROT_NONE;
    case Access::kRead:
      return PROT_READ;
    case Access::kReadWrite:
      return PROT_READ | PROT_WRITE;
  }
  return PROT_NONE;
}

}  // namespace

size_t os_page_size() {
  static const size_t page = [] {
    unsigned long value = ::getauxval(AT_PAGESZ);
    return value == 0 ? size_t{4096} : static_cast<size_t>(value);
  }();
  return page;
}

Result<void*> map_aligned(size_t bytes, size_t alignment) {
  return map_aligned_with(bytes, alignment, PROT_READ | PROT_WRITE, MAP_NORESERVE);
}

Result<void*> reserve_aligned(size_t bytes, size_t alignment) {
  return map_aligned_with(bytes, alignment, PROT_NONE, MAP_NORESERVE);
}

Status unmap(void* address, size_t bytes) {
  // Whatever is mapped here next starts addressable (its shadow pages dropped, not zeroed).
  asan_unpoison_dropping_shadow(address, bytes);
  if (::munmap(address, bytes) != 0) {
    g_failures.fetch_add(1, std::memory_order_relaxed);
    return Status::failure(errno);
  }
  g_unmaps.fetch_add(1, std::memory_order_relaxed);
  return Status::success();
}

Status move_mapping(void* address, size_t old_bytes, size_t new_bytes, void* target) {
  void* moved = ::mremap(address, old_bytes, new_bytes, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  if (moved == MAP_FAILED) {
    g_failures.fetch_add(1, std::memory_order_relaxed);
    return Status::failure(errno);
  }
  // The shadow does not move with the pages: the old range is free address space now, and the
  // new one holds what its owner says (it tracks the moved object again).
  asan_unpoison_dropping_shadow(address, old_bytes);
  asan_unpoison_dropping_shadow(target, new_bytes);
  return Status::success();
}

Status commit(void* address, size_t bytes) {
  return protect(address, bytes, Access::kReadWrite);
}

Status decommit(void* address, size_t bytes) {
  if (::madvise(address, bytes, MADV_DONTNEED) != 0) {
    g_failures.fetch_add(1, std::memory_order_relaxed);
    return Status::failure(errno);
  }
  g_decommits.fetch_add(1, std::memory_order_relaxed);
  g_bytes_decommitted.fetch_add(bytes, std::memory_order_relaxed);
  return Status::success();
}

Status protect(void* address, size_t bytes, Access access) {
  if (::mprotect(address, bytes, protection_of(access)) != 0) {
    g_failures.fetch_add(1, std::memory_order_relaxed);
    return Status::failure(errno);
  }
  return Status::success();
}

Status advise_huge_pages(void* address, size_t bytes, bool enable) {
  if (::madvise(address, bytes, enable ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0) {
    return Status::failure(errno);
  }
  return Status::success();
}

void fail_next_maps(uint32_t count) {
  g_injected_map_failures.store(count, std::memory_order_relaxed);
}

VirtualMemoryCounters virtual_memory_counters() {
  return VirtualMemoryCounters{
      g_maps.load(std::memory_order_relaxed),
      g_unmaps.load(std::memory_order_relaxed),
      g_decommits.load(std::memory_order_relaxed),
      g_bytes_decommitted.load(std::memory_order_relaxed),
      g_failures.load(std::memory_order_relaxed),
  };
}

}  // namespace usgc::kernel
