// runtime/goroutine_stack.cpp — mapping, caching and unmapping goroutine stacks (see the .hpp).
//
// The cache is a LIFO array under a FutexMutex (spawn-heavy programs reuse the stack that was
// just released, whose top pages are still resident and in the TLB). Bounded by
// kMaxCachedStacks; the rest are unmapped at once.
#include "runtime/goroutine_stack.hpp"

#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::runtime {
namespace {

constexpr uint32_t kMaxCachedStacks = 1024;

struct StackPool {
  kernel::FutexMutex<kernel::LockRank::kGoroutineStacks> lock;
  size_t usable_bytes = 256 * 1024;
  size_t guard_bytes = 16 * 1024;
  GoroutineStack cached[kMaxCachedStacks];
  uint32_t cached_count = 0;
  std::atomic<uint64_t> mapped{0};
  std::atomic<uint64_t> unmapped{0};
};
StackPool g_pool;

size_t round_to_pages(size_t bytes) {
  size_t page = kernel::os_page_size();
  return (bytes + page - 1) & ~(page - 1);
}

// The usual cause is not memory but the kernel's limit on mappings per process: a stack with
// its guard is two mappings, so the default vm.max_map_count (65530) allows about 32 000 live
// goroutines. usgc_go returns ENOMEM; this says why, once.
void report_mapping_failure_once(int error) {
  static std::atomic<bool> reported{false};
  if (reported.exchange(true, std::memory_order_relaxed)) return;
  StackPoolCounters counters = stack_pool_counters();
  kernel::print_message(
      "goroutine stacks: mapping stack number %lu failed (errno %d); each stack with its guard "
      "takes two of the "
      "process's mappings (sysctl vm.max_map_count, 65530 by default): raise that limit, or keep "
      "fewer goroutines "
      "alive at once",
      static_cast<unsigned long>(counters.mapped - counters.unmapped + 1), error);
}

void unmap_stack(const GoroutineStack& stack) {
  kernel::Status status = kernel::unmap(stack.base, stack.guard_bytes + stack.usable_bytes);
  (void)status;  // an unmap of our own mapping cannot fail; nothing to do if it did
  g_pool.unmapped.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

void stack_pool_configure(size_t usable_bytes, size_t guard_bytes) {
  stack_pool_drain();
  kernel::FutexMutexGuard guard(g_pool.lock);
  g_pool.usable_bytes = round_to_pages(usable_bytes);
  g_pool.guard_bytes = round_to_pages(guard_bytes == 0 ? kernel::os_page_size() : guard_bytes);
}

kernel::Result<GoroutineStack> stack_acquire() {
  size_t usable_bytes;
  size_t guard_bytes;
  {
    kernel::FutexMutexGuard guard(g_pool.lock);
    if (g_pool.cached_count > 0)
      return kernel::Result<GoroutineStack>::success(g_pool.cached[--g_pool.cached_count]);
    usable_bytes = g_pool.usable_bytes;
    guard_bytes = g_pool.guard_bytes;
  }
  size_t total = guard_bytes + usable_bytes;
  kernel::Result<void*> mapping = kernel::map_aligned(total, kernel::os_page_size());
  if (!mapping.ok()) {
    report_mapping_failure_once(mapping.error());
    return kernel::Result<GoroutineStack>::failure(mapping.error());
  }
  GoroutineStack stack;
  stack.base = static_cast<uint8_t*>(mapping.value());
  stack.guard_bytes = guard_bytes;
  stack.usable_bytes = usable_bytes;
  kernel::Status guard_status = kernel::protect(stack.base, guard_bytes, kernel::Access::kNone);
  if (!guard_status.ok()) {
    report_mapping_failure_once(guard_status.error());
    (void)kernel::unmap(stack.base, total);
    return kernel::Result<GoroutineStack>::failure(guard_status.error());
  }
  g_pool.mapped.fetch_add(1, std::memory_order_relaxed);
  return kernel::Result<GoroutineStack>::success(stack);
}

void stack_release(GoroutineStack stack) {
  if (stack.empty()) return;
  {
    kernel::FutexMutexGuard guard(g_pool.lock);
    if (g_pool.cached_count < kMaxCachedStacks && stack.usable_bytes == g_pool.usable_bytes &&
        stack.guard_bytes == g_pool.guard_bytes) {
      g_pool.cached[g_pool.cached_count++] = stack;
      return;
    }
  }
  unmap_stack(stack);
}

void stack_pool_drain() {
  for (;;) {
    GoroutineStack stack;
    {
      kernel::FutexMutexGuard guard(g_pool.lock);
      if (g_pool.cached_count == 0) return;
      stack = g_pool.cached[--g_pool.cached_count];
    }
    unmap_stack(stack);
  }
}

StackPoolCounters stack_pool_counters() {
  StackPoolCounters counters{};
  counters.mapped = g_pool.mapped.load(std::memory_order_relaxed);
  counters.unmapped = g_pool.unmapped.load(std::memory_order_relaxed);
  kernel::FutexMutexGuard guard(g_pool.lock);
  counters.cached = g_pool.cached_count;
  return counters;
}

}  // namespace usgc::runtime
