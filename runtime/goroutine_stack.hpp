// runtime/goroutine_stack.hpp — goroutine stacks: slots carved from large reservations, a guard
// below each, a fixed size limit (no growth: overflowing hits the guard and the fault handler
// reports "goroutine N: stack overflow"), pooled for reuse with their memory given back.
//
// Layout of one stack slot inside a chunk (addresses grow to the right, the stack to the left):
//   [ guard (guard_bytes) | usable (usable_bytes, read/write, committed on touch) ]
//   base                   base + guard_bytes                               top()
// Chunks are read/write anonymous mappings of about 1 GiB (MAP_NORESERVE) carved into slots.
// Guards are MADV_GUARD_INSTALL guard regions where the kernel has them (Linux 6.13+): they do
// not split the chunk, so a million stacks cost a few dozen mappings. On older kernels each guard
// is a PROT_NONE mprotect, two mappings per stack as before (vm.max_map_count then caps live
// goroutines near 32 000), and the pool says so once at start.
//
// The few-pages invariant: a stack in the pool keeps at most kKeptResidentBytes (its top pages,
// which the next goroutine touches first) resident, and at most kMaxWarmStacks pooled stacks
// (the warm ones) keep even that; besides them at most kPendingStacksMax released stacks wait,
// still resident, to be decommitted together (one MADV_DONTNEED per run of adjacent slots through
// the process's DecommitQueue), and at most kFreshStacksMax ready stacks keep their top page
// (populated and touched ahead, so a spawn takes no first-touch fault). A released stack is reused
// only once its decommit ticket is complete (the decommit ticket rule). Pooled stacks beyond these
// cost no memory, only a bit in their chunk's free bitmap; stack_pool_drain (the scavenger's trim)
// gives back even the warm, pending and fresh ones and unmaps every chunk with no live stack.
//
// Hot path: none. Spawning reuses a goroutine record with its stack (scheduler.cpp's caches);
// this pool is reached when those caches are empty or full, under one FutexMutex; a refill
// (64 stacks) makes its two batched system calls outside it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::runtime {

struct GoroutineStack {
  uint8_t* base = nullptr;  // lowest address of the slot (the guard's start)
  size_t guard_bytes = 0;
  size_t usable_bytes = 0;
  uint32_t chunk_index = 0;  // the chunk the slot was carved from (goroutine_stack.cpp)

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

enum class StackGuardMode : uint8_t {
  kAuto,          // guard regions when the kernel has them, mprotect otherwise (the default)
  kGuardRegions,  // MADV_GUARD_INSTALL; configure fails over to mprotect if unsupported
  kMprotect,      // PROT_NONE guards (two mappings per stack): the old kernels' path, for tests
};

// Sets the sizes every stack gets (page-rounded) and the guard mode. Called by usgc_init before
// any stack of the new configuration exists; stacks still live from an earlier configuration
// are unmapped (with their chunk) when the last of them is released.
void stack_pool_configure(size_t usable_bytes, size_t guard_bytes,
                          StackGuardMode mode = StackGuardMode::kAuto);

// A stack of the configured size: from the pool, or carved. ENOMEM when out of memory or
// mappings (the reason is printed once). `interrupted` (may be nullptr; a spawning goroutine
// passes "a stop is pending on my P"): a refill asks it between small groups of pages and, once
// it says yes, hands the rest out unpopulated (their first touch faults later); with it the
// acquire waits for no decommit, so a stop waits for at most one small system call.
kernel::Result<GoroutineStack> stack_acquire(bool (*interrupted)() = nullptr);

// Returns a stack to the pool; its memory below the kept top pages is given back.
void stack_release(GoroutineStack stack);

// Empties the pool: every pooled stack is decommitted, chunks with no live stack are unmapped
// (the scavenger's trim, usgc_shutdown, configure, tests).
void stack_pool_drain();

// Makes stacks ready ahead of a spawner that is draining the ready ones (called by a machine
// with nothing to run: the idle P pays for the guards, populates and first touches). Returns
// quickly (one relaxed load) when no refill is wanted; true when it refilled. `interrupted` is
// asked between small groups of pages (a stop request: the P must answer within microseconds);
// once it says yes the rest is left for the spawns. Never waits for a decommit.
bool stack_pool_refill_ahead(bool (*interrupted)());

// A counter that moves whenever a stack is taken from the pool (the scavenger's "still in use").
uint64_t stack_pool_activity();

struct StackPoolCounters {
  uint64_t carved;           // stacks carved from chunks since start
  uint64_t live;             // stacks handed out and not released
  uint64_t warm;             // pooled stacks that keep their top pages
  uint64_t pending;          // released, resident, waiting for a batched decommit
  uint64_t fresh;            // ready to hand out, top page populated
  uint64_t cold;             // pooled stacks with no resident page
  uint64_t pages_populated;  // top pages populated ahead of first touch since start
  uint64_t chunks;           // chunks mapped now
  uint64_t chunks_unmapped;  // chunks unmapped since start
  uint64_t decommits;        // ranges the pool gave to the DecommitQueue since start
  bool guard_regions;        // the current configuration uses MADV_GUARD_INSTALL
};
StackPoolCounters stack_pool_counters();

// Tests: `hook` (nullptr: none, the default) is called by every decommit the pool queues, right
// before the queue's enqueue (which may make the batch's system call), on the queueing thread.
void stack_pool_set_decommit_hook_for_testing(void (*hook)());
// Tests: the pool's lock is held by some thread now (by the caller itself, in a test that is the
// pool's only user).
bool stack_pool_lock_held_for_testing();

// Resident bytes a pooled warm stack may keep (its top pages).
inline constexpr size_t kKeptResidentBytes = 8 * 1024;
// Warm stacks at most; further released stacks keep nothing resident once decommitted.
inline constexpr uint32_t kMaxWarmStacks = 256;
// Released stacks gathered for one batched decommit, at most (goroutine_stack.cpp).
inline constexpr uint32_t kPendingStacksMax = 64;
// Ready stacks (guard installed, top page populated and touched) at most; a refill makes half.
inline constexpr uint32_t kFreshStacksMax = 64;

}  // namespace usgc::runtime
