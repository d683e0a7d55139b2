// kernel_iface/lock_rank.hpp — the one table of lock ranks, for both kinds of usgc lock (the
// allocator's SpinLock and the runtime's and collector's FutexMutex), and its debug check.
//
// The rule (Go's lockrank, HotSpot's mutex ranks): a thread may take a lock only while every
// lock it holds has a LOWER rank. A rank marked "nests" may also be taken while holding locks of
// the same rank (select locks its channels in address order). try_lock never waits, so it
// records the lock without checking the order. Debug builds (USGC_DEBUG: make debug, asan,
// ubsan, tsan) check every acquisition and stop with one line naming both locks; release builds
// compile the checks away (the fast paths keep their instruction counts).
//
// Held ranks are per thread. A FutexMutex held across a goroutine switch (the parking protocol)
// is released by the scheduler context on the same thread, so the per-thread record stays right.
// A lock that a goroutine holds while it may move to another thread (the collection lock: held
// from before the stop to after the concurrent sweep) is "goroutine-held": taking it is checked
// against what the thread holds, but it is not recorded as held by the thread.
//
// The order, lowest (taken first) to highest (leaves); where each lock lives and what it guards:
//    1 gc collection        gc/shared_collector.cpp     one shared collection (goroutine-held)
//    2 safepoint operation  safepoint/stop_the_world    stop/handshake requests; held across a stop
//    3 mutator registry     gc/mutator.cpp              the registry of mutators
//    4 type registration    gc/type_registry.cpp        registered types
//    5 global roots         gc/roots.cpp                global roots and handles
//    6 reference channels   runtime/reference_channels  the registry of reference channels
//    7 channel (nests)      runtime/channel.hpp         one channel's buffer and wait queues
//    8 wait group           runtime/waitgroup.cpp       one wait group's waiters
//    9 timers               runtime/monitor.cpp         the timer heap
//   10 scheduler            runtime/scheduler.hpp       run queue, idle Ps and Ms
//   11 free goroutines      runtime/scheduler.hpp       the goroutine record cache
//   12 goroutine stacks     runtime/goroutine_stack     the stack cache
//   13 safepoint arm        safepoint/stop_the_world    one P's poll mirror and arm reasons
//   14 global cache         gc/shared_heap.cpp          the GLOBAL_SHARED allocation cache
//   15 shared size class    gc/shared_heap.cpp          one shared size class
//   16 large objects        gc/shared_heap.cpp          the large-object lists
//   17 mark stack           gc/parallel_mark.cpp        the markers' public stack
//  17b grey queue           gc/concurrent_mark.cpp      objects shaded by mutators while marking
//   18 block pool           gc/block.cpp                the GC block pool
//   19 code visibility      jitgen/code_visibility      the perf map and the GDB JIT list
//  19b heap help            alloc/heap.hpp (Heap)       one heap's full pages against a thread
//                                                       helping its idle owner (remote_free_queue)
//   20 heap pool            alloc/heap_lifecycle.cpp    heap registry and unused heaps
//   21 large arena (nests)  alloc/large_arena.cpp       one node's segments of large spans
//                                                       (several only at fork, in node order)
//   22 abandoned segments   alloc/segment.cpp           segments whose thread exited
//   23 segment cache        alloc/segment.cpp           per-node caches of empty segments
//   24 decommit queue       kernel_iface/decommit_queue the io_uring ring (a leaf)
//   25 heap profile         alloc/heap_profile.cpp      sampled blocks and stacks (a leaf: taken
//                                                       on sampled mallocs and their frees)
// The allocator's locks are the highest: any code may call malloc while holding another lock.
#pragma once

#include <cstdint>

#include "kernel_iface/fatal.hpp"

namespace usgc::kernel {

enum class LockRank : uint8_t {
  kGcCollection = 1,
  kSafepointOperation,
  kMutatorRegistry,
  kTypeRegistration,
  kGlobalRoots,
  kReferenceChannels,
  kChannel,
  kWaitGroup,
  kTimers,
  kScheduler,
  kFreeGoroutines,
  kGoroutineStacks,
  kSafepointArm,
  kGlobalCache,
  kSharedSizeClass,
  kLargeObjects,
  kMarkStack,
  kGreyQueue,
  kBlockPool,
  kCodeVisibility,
  kHeapHelp,
  kHeapPool,
  kLargeArena,
  kAbandonedSegments,
  kSegmentCache,
  kDecommitQueue,
  kHeapProfile,
  kCount  // not a rank
};
static_assert(static_cast<unsigned>(LockRank::kCount) <= 64, "held ranks are a 64-bit set");

struct LockRankInfo {
  const char* name;
  bool nests;  // may be held several times at once (in a documented order among themselves)
  bool goroutine_held = false;  // may be released on another thread than the one that took it
};

// Indexed by rank; index 0 is no lock.
inline constexpr LockRankInfo kLockRanks[] = {
    {"no", false},
    {"gc collection", false, true},
    {"safepoint operation", false},
    {"mutator registry", false},
    {"type registration", false},
    {"global roots", false},
    {"reference channels", false},
    {"channel", true},
    {"wait group", false},
    {"timers", false},
    {"scheduler", false},
    {"free goroutines", false},
    {"goroutine stacks", false},
    {"safepoint arm", false},
    {"global cache", false},
    {"shared size class", false},
    {"large objects", false},
    {"mark stack", false},
    {"grey queue", false},
    {"block pool", false},
    {"code visibility", false},
    {"heap help", false},
    {"heap pool", false},
    {"large arena", true},
    {"abandoned segments", false},
    {"segment cache", false},
    {"decommit queue", false},
    {"heap profile", false},
};
static_assert(sizeof(kLockRanks) / sizeof(kLockRanks[0]) == static_cast<unsigned>(LockRank::kCount),
              "one kLockRanks entry per rank");

constexpr const char* lock_rank_name(LockRank rank) {
  return kLockRanks[static_cast<unsigned>(rank)].name;
}

#if defined(USGC_DEBUG) && USGC_DEBUG
// The calling thread's held locks: a bit per rank, and how many of each.
struct HeldLockRanks {
  uint64_t ranks = 0;
  uint8_t counts[static_cast<unsigned>(LockRank::kCount)] = {};
};
inline thread_local HeldLockRanks t_held_lock_ranks;

inline unsigned highest_held_lock_rank() {
  uint64_t held = t_held_lock_ranks.ranks;
  return held == 0 ? 0 : 63u - static_cast<unsigned>(__builtin_clzll(held));
}

inline void record_lock_acquired(LockRank rank) {
  unsigned index = static_cast<unsigned>(rank);
  if (kLockRanks[index].goroutine_held) return;
  t_held_lock_ranks.ranks |= uint64_t{1} << index;
  ++t_held_lock_ranks.counts[index];
}
#endif

// Before a blocking acquisition: stops the process when the order is broken (debug builds).
inline void check_lock_order_then_record(LockRank rank) {
#if defined(USGC_DEBUG) && USGC_DEBUG
  unsigned index = static_cast<unsigned>(rank);
  unsigned highest = highest_held_lock_rank();
  bool ordered = highest < index || (highest == index && kLockRanks[index].nests);
  USGC_CHECK(ordered,
             "lock order: taking the %s lock (rank %u) while holding the %s lock (rank %u); "
             "the order is kernel_iface/lock_rank.hpp",
             lock_rank_name(rank), index, kLockRanks[highest].name, highest);
  record_lock_acquired(rank);
#else
  (void)rank;
#endif
}

// After a successful try_lock: recorded, not checked (a try never waits).
inline void record_lock_taken_by_try(LockRank rank) {
#if defined(USGC_DEBUG) && USGC_DEBUG
  record_lock_acquired(rank);
#else
  (void)rank;
#endif
}

inline void record_lock_released(LockRank rank) {
#if defined(USGC_DEBUG) && USGC_DEBUG
  unsigned index = static_cast<unsigned>(rank);
  if (kLockRanks[index].goroutine_held) return;
  USGC_CHECK(t_held_lock_ranks.counts[index] > 0, "lock order: releasing the %s lock, not held",
             lock_rank_name(rank));
  if (--t_held_lock_ranks.counts[index] == 0) t_held_lock_ranks.ranks &= ~(uint64_t{1} << index);
#else
  (void)rank;
#endif
}

// fork() child: the locks were reset; the forking thread holds none of them any more.
inline void forget_held_locks_after_fork() {
#if defined(USGC_DEBUG) && USGC_DEBUG
  t_held_lock_ranks = HeldLockRanks{};
#endif
}

}  // namespace usgc::kernel
