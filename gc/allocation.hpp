// gc/allocation.hpp — allocation in each ownership class (the slow paths behind usgc_alloc and
// the inline fast path of usgc/gc.h), and the collections allocation may start.
//
//   class      where                                           file
//   STACK      the goroutine's arena block, LIFO bump           gc/stack_arena.cpp
//   PRIVATE    runs of the goroutine's own blocks (its TLAB)    gc/private_heap.cpp
//   SHARED     runs of shared blocks, one cache per P           gc/shared_heap.cpp
//   GLOBAL     runs of shared blocks, one cache, under a lock   gc/shared_heap.cpp
// Every function returns a zeroed object with its header written, or nullptr with the C API error
// set (gc::fail). A shared array's length is written by allocate_shared BEFORE its header's
// release store: a concurrent minor mark's card scan may trace a shared object (allocated black)
// as soon as it sees the header, and reads the length first. The other classes' callers write an
// array's length themselves (no other thread reads their objects before the owner publishes them).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gc/mutator.hpp"
#include "gc/object_header.hpp"

namespace usgc::gc {

// header: class, type and array bits (the owner is added for private and stack-local objects).
// bytes: header + payload (object_bytes); size_class: size_class_of(bytes) or kNoSizeClass.
void* allocate_private(Mutator& mutator, uint64_t header, size_t bytes, uint32_t size_class);
void* allocate_stack_local(Mutator& mutator, uint64_t header, size_t bytes);
// array_length: written into an array's length word (the header's array bit set), else ignored.
void* allocate_shared(Mutator& mutator, uint64_t header, size_t bytes, uint32_t size_class,
                      uint64_t array_length = 0);

// Private heap internals shared with the collector and the exit path (private_heap.cpp).
// Folds the used part of run c into the statistics and empties it.
void retire_private_run(Mutator& mutator, uint32_t size_class);
void retire_all_private_runs(Mutator& mutator);

// Near USGC_HEAP_MAX budgets shrink to a quarter of the headroom, but never below this: a heap at
// its limit collects once per this many bytes, not on every refill.
inline constexpr size_t kMinimumBudgetNearLimit = 256 * 1024;

// Pacing: the budget after a collection that left `live_bytes`.
size_t budget_after(size_t live_bytes, size_t minimum_bytes);

// Collections (private_collector.cpp, shared_collector.cpp).
// Minor unless full_requested (explicit requests, the heap limit) or private_full_collection_due
// (USGC_GC_GENERATIONAL=0, or the old generation grew by USGC_GC_PERCENT since the last full one).
void collect_private(Mutator& mutator, const char* reason, bool full_requested = false);
bool private_full_collection_due(const Mutator& mutator);
// Runs a shared collection unless one completed since `observed_cycle` (then returns at once:
// the pacer's triggers coalesce). kAlwaysCollect: run one regardless (usgc_gc_collect).
inline constexpr uint64_t kAlwaysCollect = UINT64_MAX;
// full_requested: mark everything (explicit requests, the heap limit); otherwise the generational
// policy of shared_collector.cpp chooses a minor or a full collection.
// minor_requested: a minor collection if the policy allows one at all (usgc_gc_collect's
// USGC_GC_SHARED_MINOR), whatever the old generation's growth.
void collect_shared(const char* reason, uint64_t observed_cycle, bool full_requested = false,
                    bool minor_requested = false);
uint64_t shared_cycle();
// Heap limit reached: collect what can be collected. True if memory may have been freed.
bool collect_for_heap_limit(Mutator& mutator);

}  // namespace usgc::gc
