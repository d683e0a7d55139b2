// gc/shared_heap.cpp — see shared_heap.hpp.
#include "gc/shared_heap.hpp"

#include <cstring>

#include "gc/allocation.hpp"
#include "gc/block_sweep.hpp"
#include "gc/concurrent_mark.hpp"
#include "gc/gc_state.hpp"
#include "gc/run_cache.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "numa/numa.hpp"
#include "safepoint/stop_the_world.hpp"
#include "usgc/usgc.h"

namespace usgc::gc {
namespace {

// Partial blocks are kept per home node (NUMA placement, gc/block.hpp): a P's cache takes runs
// from blocks of its own node first, from another node's only when its own node's pool refuses a
// new block. All under the class lock; g_shared_heap.partial_node_span bounds the lists to visit.
struct SharedClass {
  kernel::FutexMutex<kernel::LockRank::kSharedSizeClass> lock;
  Block* swept = nullptr;                // next_in_heap
  Block* partial[numa::kMaxNodes] = {};  // next_partial, per home node
  Block* unswept = nullptr;              // next_in_heap
};

struct SharedCache {
  usgc_alloc_run runs[kSizeClassCount];
  char* run_begin[kSizeClassCount];
  Block* current[kSizeClassCount];
  usgc_ownership ownership;
};

// The shared heap's state.
struct SharedHeap {
  SharedClass classes[kSizeClassCount];  // each under its own lock
  // 1 + the highest home node of a block ever on a partial list. Raised under a class lock, read
  // under one (relaxed: every list it covers is read under its own class lock).
  std::atomic<int> partial_node_span{1};

  kernel::FutexMutex<kernel::LockRank::kLargeObjects> large_lock;
  Block* large_swept = nullptr;    // next_in_heap, under large_lock
  Block* large_unswept = nullptr;  // next_in_heap, under large_lock

  // One cache per P, then the global one. The array is written by shared_heap_initialize and
  // shared_heap_shutdown (no goroutine runs); a P's cache is used only by the thread holding that
  // P, the global one only under global_cache_lock.
  SharedCache* caches = nullptr;
  uint32_t cache_count = 0;
  kernel::FutexMutex<kernel::LockRank::kGlobalCache> global_cache_lock;

  // The pacer: bytes handed out since the last collection (relaxed counter, added to by refills
  // and publications, reset by shared_heap_restart_budget in the start stop).
  std::atomic<size_t> bytes_since_collection{0};
  // Set when the bytes above reach the budget (checked where they grow: run refills and
  // publications), so the allocation path tests one flag instead of recomputing the budget.
  // Relaxed: a late flag only delays the collection to a later allocation. On a line of its own:
  // every private and shared refill reads it, and the counter above is written by shared refills
  // on every P (a read of a line another core keeps writing is a transfer each time).
  alignas(64) std::atomic<bool> collection_due{false};
  // Written by the collector (shared_heap_set_live_bytes, under its lock), read by the pacer
  // (relaxed).
  alignas(64) std::atomic<size_t> live_bytes_after_collection{0};
};
constinit SharedHeap g_shared_heap;

void push_partial_locked(SharedClass& cls, Block* b) {
  int node = b->node;
  if (node + 1 > g_shared_heap.partial_node_span.load(std::memory_order_relaxed)) {
    int span = g_shared_heap.partial_node_span.load(std::memory_order_relaxed);
    while (node + 1 > span && !g_shared_heap.partial_node_span.compare_exchange_weak(
                                  span, node + 1, std::memory_order_relaxed)) {
    }
  }
  b->next_partial = cls.partial[node];
  cls.partial[node] = b;
}

Block* pop_partial_locked(SharedClass& cls, int node) {
  Block* b = cls.partial[node];
  if (b != nullptr) {
    cls.partial[node] = b->next_partial;
    b->next_partial = nullptr;
  }
  return b;
}

// Another node's partial block (the caller's node could not give a new block).
Block* pop_any_partial_locked(SharedClass& cls) {
  int span = g_shared_heap.partial_node_span.load(std::memory_order_relaxed);
  for (int node = 0; node < span; ++node) {
    if (Block* b = pop_partial_locked(cls, node)) return b;
  }
  return nullptr;
}

void note_growth(size_t bytes) {
  g_shared_heap.bytes_since_collection.fetch_add(bytes, std::memory_order_relaxed);
  if (shared_collection_due()) g_shared_heap.collection_due.store(true, std::memory_order_relaxed);
}

// A cache's run cache (gc/run_cache.hpp).
RunCache run_cache(SharedCache& cache) {
  return RunCache{cache.runs, cache.run_begin, cache.current};
}

void account_used_run(SharedCache& cache, uint32_t c) {
  run_cache(cache).account_used_run(c, cache.ownership);
}

// Frees the dead objects of a shared block (the shared-liveness rule) and rebuilds its runs.
// Returns the bytes freed.
// While a shared mark runs (a goroutine's exit adopting its blocks), nothing is freed: an
// unmarked object may be live until the mark ends (gc/concurrent_mark.hpp).
size_t sweep_shared_block(Block* b) {
  uint32_t freed = sweep_block(b, [b](char*, uint64_t header, uint32_t index) {
    USGC_CHECK(is_shared_class(header),
               "gc: heap corruption: a private or stack-local header %lx in shared block %p",
               static_cast<unsigned long>(header), static_cast<void*>(b));
    if (b->shared_marked(index) || shared_mark_in_progress()) return false;
    count_sub(
        g_counters.bytes_in_use[class_of(header) == Ownership::kGlobal ? USGC_GLOBAL_SHARED
                                                                       : USGC_GOROUTINE_SHARED],
        b->slot_bytes);
    return true;
  });
  return size_t{freed} * b->slot_bytes;
}

// A swept block goes back to its class (or to the pool when empty). Returns live bytes.
size_t file_swept_block(Block* b) {
  if (b->live_slots == 0) {
    forget_free_runs(b);
    release_block(b);
    return 0;
  }
  SharedClass& cls = g_shared_heap.classes[b->size_class];
  kernel::FutexMutexGuard guard(cls.lock);
  b->next_in_heap = cls.swept;
  cls.swept = b;
  if (b->free_runs != nullptr) push_partial_locked(cls, b);
  return size_t{b->live_slots} * b->slot_bytes;
}

bool take_run(SharedCache& cache, uint32_t c, Block* b) {
  return run_cache(cache).take_run(
      c, b, [](char* begin, char* end) { note_growth(static_cast<size_t>(end - begin)); });
}

// Refills cache run c. False with the error reported when no memory can be had.
bool refill(SharedCache& cache, uint32_t c, AcquireFailure* failure) {
  account_used_run(cache, c);
  run_cache(cache).empty_run(c);
  if (cache.current[c] != nullptr && take_run(cache, c, cache.current[c])) return true;
  cache.current[c] = nullptr;
  SharedClass& cls = g_shared_heap.classes[c];
  // Resolved once per refill (gc/block.hpp, "NUMA placement"): the node of the CPU this P's
  // worker runs on now.
  const int node = block_node_of_caller();
  for (;;) {
    Block* b = nullptr;
    Block* to_sweep = nullptr;
    {
      kernel::FutexMutexGuard guard(cls.lock);
      b = pop_partial_locked(cls, node);
      if (b == nullptr && cls.unswept != nullptr) {
        to_sweep = cls.unswept;
        cls.unswept = to_sweep->next_in_heap;
      }
    }
    if (b != nullptr) {
      if (take_run(cache, c, b)) return true;
      continue;
    }
    if (to_sweep != nullptr) {
      size_t freed = sweep_shared_block(to_sweep);
      count_add(g_counters.bytes_freed_shared, freed);
      if (to_sweep->live_slots == 0) {
        // Empty: back to its node's pool (a new block below comes from ours).
        forget_free_runs(to_sweep);
        release_block(to_sweep);
        continue;
      }
      bool has_runs = to_sweep->free_runs != nullptr;
      bool ours = to_sweep->node == node;
      {
        kernel::FutexMutexGuard guard(cls.lock);
        to_sweep->next_in_heap = cls.swept;
        cls.swept = to_sweep;
        // Another node's block with free runs waits on its node's partial list.
        if (has_runs && !ours) push_partial_locked(cls, to_sweep);
      }
      if (has_runs && ours && take_run(cache, c, to_sweep)) return true;
      continue;
    }
    Block* fresh = acquire_block_on_node(node, BlockKind::kSmall, c, 0, failure);
    if (fresh == nullptr) {
      // Our node's pool refused: free slots on another node beat failing.
      {
        kernel::FutexMutexGuard guard(cls.lock);
        b = pop_any_partial_locked(cls);
      }
      if (b == nullptr) return false;
      *failure = AcquireFailure::kNone;
      if (take_run(cache, c, b)) return true;
      continue;
    }
    {
      kernel::FutexMutexGuard guard(cls.lock);
      fresh->next_in_heap = cls.swept;
      cls.swept = fresh;
    }
    bool taken = take_run(cache, c, fresh);
    USGC_ASSERT(taken, "a new block has one run");
    return taken;
  }
}

// The header (and an array's length word) of a new shared object at `slot`, the header last.
// Release: pairs with the card scan's acquire load of the header of a slot whose mark bit is set
// (allocate black): the block's format, the zeroed fields and the length are seen with it.
void publish_new_header(char* slot, uint64_t header, uint64_t array_length) {
  if (is_array(header)) *reinterpret_cast<uint64_t*>(slot + kHeaderBytes) = array_length;
  __atomic_store_n(reinterpret_cast<uint64_t*>(slot), header, __ATOMIC_RELEASE);
}

void* allocate_large(uint64_t header, size_t bytes, uint64_t array_length,
                     AcquireFailure* failure) {
  Block* b = acquire_large(bytes, 0, failure);
  if (b == nullptr) return nullptr;
  note_growth(b->mapping_bytes);
  usgc_ownership ownership =
      class_of(header) == Ownership::kGlobal ? USGC_GLOBAL_SHARED : USGC_GOROUTINE_SHARED;
  count_add(g_counters.bytes_in_use[ownership], b->mapping_bytes);
  count_add(g_counters.objects_allocated[ownership], 1);
  char* slot = b->slots_begin();
  publish_new_header(slot, header, array_length);
  if (shared_mark_in_progress()) b->set_shared_mark(0);  // allocate black
  {
    kernel::FutexMutexGuard guard(g_shared_heap.large_lock);
    b->next_in_heap = g_shared_heap.large_swept;
    g_shared_heap.large_swept = b;
  }
  return slot + kHeaderBytes;
}

// One attempt; nullptr with *failure set when memory was refused.
void* try_allocate(uint64_t header, size_t bytes, uint32_t c, uint64_t array_length,
                   AcquireFailure* failure) {
  *failure = AcquireFailure::kNone;
  if (c == kNoSizeClass) return allocate_large(header, bytes, array_length, failure);
  bool global = class_of(header) == Ownership::kGlobal;
  SharedCache* cache;
  if (global) {
    g_shared_heap.global_cache_lock.lock();
    cache = &g_shared_heap.caches[g_shared_heap.cache_count - 1];
  } else {
    safepoint::SafepointSlot* slot = safepoint::current_slot();
    USGC_CHECK(slot != nullptr && slot->index + 1 < g_shared_heap.cache_count,
               "gc: shared allocation on a thread that holds no P");
    cache = &g_shared_heap.caches[slot->index];
  }
  usgc_alloc_run& run = cache->runs[c];
  char* object = nullptr;
  if (run.next != nullptr && run.next + kSlotBytes[c] <= run.limit) {
    object = run.next;
  } else if (refill(*cache, c, failure)) {
    object = run.next;
  }
  if (object != nullptr) {
    run.next = object + kSlotBytes[c];
    publish_new_header(object, header, array_length);
    // Allocate black while a shared mark runs: nothing will trace a new object's way to it.
    if (shared_mark_in_progress()) {
      Block* block = block_of(object + kHeaderBytes);
      block->set_shared_mark(block->slot_index_of(object));
    }
    object += kHeaderBytes;
  }
  if (global) g_shared_heap.global_cache_lock.unlock();
  return object;
}

}  // namespace

int shared_heap_initialize(uint32_t processor_count) {
  g_shared_heap.cache_count = processor_count + 1;
  g_shared_heap.caches =
      static_cast<SharedCache*>(usgc_calloc(g_shared_heap.cache_count, sizeof(SharedCache)));
  if (g_shared_heap.caches == nullptr) return ENOMEM;
  for (uint32_t i = 0; i < g_shared_heap.cache_count; ++i)
    g_shared_heap.caches[i].ownership = USGC_GOROUTINE_SHARED;
  g_shared_heap.caches[g_shared_heap.cache_count - 1].ownership = USGC_GLOBAL_SHARED;
  return 0;
}

void shared_heap_shutdown() {
  // No goroutine runs: the caches' runs go back to their blocks' lists by the next sweep.
  for (uint32_t i = 0; i < g_shared_heap.cache_count; ++i) {
    for (uint32_t c = 0; c < kSizeClassCount; ++c) account_used_run(g_shared_heap.caches[i], c);
  }
  usgc_free(g_shared_heap.caches);
  g_shared_heap.caches = nullptr;
  g_shared_heap.cache_count = 0;
}

void* allocate_shared(Mutator& m, uint64_t header, size_t bytes, uint32_t c,
                      uint64_t array_length) {
  // While a shared mark runs the next collection waits for it to end (no allocation blocks).
  if (g_shared_heap.collection_due.load(std::memory_order_relaxed) && !shared_mark_in_progress())
    collect_shared("budget", shared_cycle());
  AcquireFailure failure = AcquireFailure::kNone;
  void* object = try_allocate(header, bytes, c, array_length, &failure);
  if (object == nullptr && failure == AcquireFailure::kHeapLimit && collect_for_heap_limit(m)) {
    object = try_allocate(header, bytes, c, array_length, &failure);
  }
  if (object != nullptr) return object;
  if (failure == AcquireFailure::kHeapLimit) {
    count_add(g_counters.heap_limit_failures, 1);
    return fail(ENOMEM,
                "usgc_alloc: heap limit USGC_HEAP_MAX=%zu bytes reached (%zu bytes in use after "
                "collecting) allocating %zu bytes",
                heap_limit_bytes(), heap_bytes_in_use(), bytes);
  }
  return fail(ENOMEM, "usgc_alloc: the OS refused memory for the GC heap allocating %zu bytes",
              bytes);
}

void shared_heap_prepare_for_mark() {
  for (uint32_t i = 0; i < g_shared_heap.cache_count; ++i) {
    SharedCache& cache = g_shared_heap.caches[i];
    for (uint32_t c = 0; c < kSizeClassCount; ++c) {
      account_used_run(cache, c);
      cache.runs[c] = usgc_alloc_run{nullptr, nullptr};
      cache.run_begin[c] = nullptr;
      cache.current[c] = nullptr;
    }
  }
  for (SharedClass& cls : g_shared_heap.classes) {
    kernel::FutexMutexGuard guard(cls.lock);
    USGC_ASSERT(cls.unswept == nullptr, "every block is swept before a mark");
    cls.unswept = cls.swept;
    cls.swept = nullptr;
    // The partial lists are dropped without walking them (O(1) per list in the stop, not
    // O(partial blocks)): a block's next_partial is only read through a list head, and every
    // push (the sweep's file_swept_block) overwrites it.
    int span = g_shared_heap.partial_node_span.load(std::memory_order_relaxed);
    for (int node = 0; node < span; ++node) cls.partial[node] = nullptr;
  }
  kernel::FutexMutexGuard guard(g_shared_heap.large_lock);
  g_shared_heap.large_unswept = g_shared_heap.large_swept;
  g_shared_heap.large_swept = nullptr;
}

void shared_heap_restart_budget() {
  g_shared_heap.bytes_since_collection.store(0, std::memory_order_relaxed);
  g_shared_heap.collection_due.store(false, std::memory_order_relaxed);
}

size_t shared_heap_sweep_all() {
  size_t live = 0;
  for (SharedClass& cls : g_shared_heap.classes) {
    for (;;) {
      Block* b;
      {
        kernel::FutexMutexGuard guard(cls.lock);
        b = cls.unswept;
        if (b == nullptr) break;
        cls.unswept = b->next_in_heap;
      }
      count_add(g_counters.bytes_freed_shared, sweep_shared_block(b));
      live += file_swept_block(b);
    }
  }
  for (;;) {
    Block* b;
    {
      kernel::FutexMutexGuard guard(g_shared_heap.large_lock);
      b = g_shared_heap.large_unswept;
      if (b == nullptr) break;
      g_shared_heap.large_unswept = b->next_in_heap;
    }
    uint64_t header = *reinterpret_cast<uint64_t*>(b->slots_begin());
    if (b->shared_marked(0)) {
      live += b->mapping_bytes;
      kernel::FutexMutexGuard guard(g_shared_heap.large_lock);
      b->next_in_heap = g_shared_heap.large_swept;
      g_shared_heap.large_swept = b;
    } else {
      count_sub(
          g_counters.bytes_in_use[class_of(header) == Ownership::kGlobal ? USGC_GLOBAL_SHARED
                                                                         : USGC_GOROUTINE_SHARED],
          b->mapping_bytes);
      count_add(g_counters.bytes_freed_shared, b->mapping_bytes);
      release_large(b);
    }
  }
  return live;
}

void shared_heap_adopt_block(Block* b) {
  // Relaxed: a marker may read the owner meanwhile (try_mark_shared, gc/parallel_mark.hpp).
  __atomic_store_n(&b->owner_heap_id, uint64_t{0}, __ATOMIC_RELAXED);
  b->next_partial = nullptr;
  count_add(g_counters.bytes_freed_shared, sweep_shared_block(b));
  file_swept_block(b);
}

void shared_heap_adopt_large(Block* b) {
  __atomic_store_n(&b->owner_heap_id, uint64_t{0}, __ATOMIC_RELAXED);  // as above
  kernel::FutexMutexGuard guard(g_shared_heap.large_lock);
  b->next_in_heap = g_shared_heap.large_swept;
  g_shared_heap.large_swept = b;
}

bool shared_collection_due() {
  if (g_config.gc_percent < 0) return false;
  size_t budget =
      budget_after(g_shared_heap.live_bytes_after_collection.load(std::memory_order_relaxed),
                   g_config.min_shared_budget_bytes);
  size_t headroom = heap_headroom_bytes();
  if (headroom != SIZE_MAX && headroom / 4 < budget)
    budget = headroom / 4 > kMinimumBudgetNearLimit ? headroom / 4 : kMinimumBudgetNearLimit;
  return g_shared_heap.bytes_since_collection.load(std::memory_order_relaxed) >= budget;
}

void shared_heap_count_published(size_t bytes) {
  note_growth(bytes);
}
bool shared_collection_flagged() {
  return g_shared_heap.collection_due.load(std::memory_order_relaxed);
}

void shared_heap_set_live_bytes(size_t live_bytes) {
  g_shared_heap.live_bytes_after_collection.store(live_bytes, std::memory_order_relaxed);
}
size_t shared_heap_live_bytes() {
  return g_shared_heap.live_bytes_after_collection.load(std::memory_order_relaxed);
}
size_t shared_heap_bytes_since_collection() {
  return g_shared_heap.bytes_since_collection.load(std::memory_order_relaxed);
}

}  // namespace usgc::gc
