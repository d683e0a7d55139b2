// runtime/goroutine_stack.hpp — goroutine stacks: mmap'ed, a PROT_NONE guard below, a fixed size
// limit (no growth: overflowing hits the guard and the fault handler reports
// "goroutine N: stack overflow"), cached for reuse.
//
// Layout of one stack mapping (addresses grow to the right, the stack grows to the left):
//   [ guard (guard_bytes, PROT_NONE) | usable (usable_bytes, read/write, committed on touch) ]
//   base                               base + guard_bytes                         top()
// Invariant: a cached stack keeps its pages (reuse is free); the cache is bounded, and stacks
// beyond it are unmapped. Pages a deep call touched stay resident while the stack is cached.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::runtime {

struct GoroutineStack {
  uint8_t* base = nullptr;  // lowest address of the mapping (the guard's start)
  size_t guard_bytes = 0;
  size_t usable_bytes = 0;

  bool empty() const { return base == nullptr; }
  uint8_t* top() const { return base + guard_bytes + usable_bytes; }
  bool guard_contains(const void* address) const {
    auto* a = static_cast<const uint8_t*>(address);
    return a >= base && a < base + guard_bytes;
  }
  bool contains(const void* address) const {
    auto* a = static_cast<const uint8_t*>(address);
    return a >= base && a < top();
  }
};

// Sets the sizes every stack gets (page-rounded). Called by usgc_init before any stack exists.
void stack_pool_configure(size_t usable_bytes, size_t guard_bytes);

// A stack of the configured size: from the cache, or freshly mapped. ENOMEM when out of memory.
kernel::Result<GoroutineStack> stack_acquire();

// Returns a stack to the cache (or unmaps it when the cache is full).
void stack_release(GoroutineStack stack);

// Unmaps every cached stack (usgc_shutdown, tests).
void stack_pool_drain();

struct StackPoolCounters {
  uint64_t mapped;  // stacks mapped since start
  uint64_t unmapped;
  uint64_t cached;  // in the cache now
};
StackPoolCounters stack_pool_counters();

}  // namespace usgc::runtime
