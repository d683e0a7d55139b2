// gc/private_heap.cpp — a goroutine's private heap: runs of its own blocks per size class (its
// TLAB), private large objects, and the pacing of private collections.
//
// Allocation: usgc_alloc_private_fast (usgc/gc.h) bumps abi.runs[c]; when the run is exhausted
// this file takes the next free run of the current block, then a block from the partial list
// (swept, with free runs), and only then a new block — after a private collection if the
// goroutine has used its nursery since the last one (min_private_budget_bytes; a full one when
// the old generation reached the pacer's trigger: gc/private_pacer.hpp). Every run
// taken is logged as the nursery (gc/private_generations.hpp).
// No lock is taken except the block pool's when a new block is needed; no other thread reads
// these lists while the goroutine runs (gc/mutator.hpp).
#include <cerrno>
#include <cstring>

#include "gc/allocation.hpp"
#include "gc/gc_state.hpp"
#include "gc/private_old_cycle.hpp"
#include "gc/run_cache.hpp"
#include "gc/shared_heap.hpp"
#include "kernel_iface/fatal.hpp"
#include "safepoint/fork_child.hpp"

namespace usgc::gc {
namespace {

// The goroutine's run cache (gc/run_cache.hpp): its runs are in the ABI record.
RunCache run_cache(Mutator& m) {
  return RunCache{m.abi.runs, m.run_begin, m.current};
}

// Accounts run c's used part; the run is about to be emptied (refill, retire): the nursery log
// learns where its objects end (a minor collection frees exactly the objects made in it).
void account_used_run(Mutator& m, uint32_t c) {
  run_cache(m).account_used_run(c, USGC_GOROUTINE_PRIVATE);
  size_t entry = m.young_run_used_entry[c];
  if (entry != 0 && m.abi.runs[c].next != nullptr) m.young_runs.set(entry - 1, m.abi.runs[c].next);
  m.young_run_used_entry[c] = 0;
}

// Takes the next free run of block b (owned by m) into abi.runs[c]. False if it has none.
bool take_run(Mutator& m, uint32_t c, Block* b) {
  return run_cache(m).take_run(c, b, [&m, c](char* begin, char* end) {
    // A minor collection reads every set bit of a logged run as its own mark.
    USGC_ASSERT(cycle_marks_clear(m, block_of(begin), begin, end),
                "free-slot invariant (gc/private_sweep.hpp): run %p..%p of block %p handed out "
                "with a cycle mark set (block epoch %u, goroutine's %u)",
                static_cast<void*>(begin), static_cast<void*>(end),
                static_cast<void*>(block_of(begin)), block_of(begin)->cycle_epoch,
                m.old_cycle_epoch);
    // The nursery log (gc/private_generations.hpp), before any object is made in the run.
    m.young_runs.push(begin);
    m.young_runs.push(end);  // the objects' end: the run's until it is retired
    m.young_run_used_entry[c] = m.young_runs.size();
    m.young_runs.push(end);
    m.bytes_since_collection += static_cast<size_t>(end - begin);
    m.run_bytes_taken += static_cast<size_t>(end - begin);
  });
}

bool budget_exhausted(const Mutator& m) {
  if (g_config.gc_percent < 0 || m.collecting) return false;
  size_t budget = m.collection_budget_bytes;
  // Near the heap limit collections run sooner (GOMEMLIMIT's behaviour), but not on every refill.
  size_t headroom = heap_headroom_bytes();
  if (headroom != SIZE_MAX && headroom / 4 < budget)
    budget = headroom / 4 > kMinimumBudgetNearLimit ? headroom / 4 : kMinimumBudgetNearLimit;
  return m.bytes_since_collection >= budget;
}

void* failed_for(AcquireFailure failure, size_t bytes) {
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

// Makes abi.runs[c] non-empty. nullptr on success, else the failure already reported.
bool refill(Mutator& m, uint32_t c, size_t bytes) {
  account_used_run(m, c);
  run_cache(m).empty_run(c);  // a collection below must not account it again
  // Publications fill the shared heap without allocating there: its pacer is checked here too.
  if (shared_collection_flagged()) collect_shared("budget", shared_cycle());
  // A slice of an old-generation mark (gc/private_old_cycle.hpp), paced by the runs taken.
  old_cycle_refill_step(m);
  // The nursery bound: whatever block the next run would come from (the current one, a partial
  // one, a new one), a used-up nursery is collected first. (Checking only before a new block let
  // a goroutine with many partial blocks, as a cycle's sweep leaves them, take tens of MiB of
  // runs between two minor collections, and a minor pause grew with them.)
  if (budget_exhausted(m)) collect_private(m, "budget");
  if (m.current[c] != nullptr && take_run(m, c, m.current[c])) return true;
  m.current[c] = nullptr;
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Partial blocks first, then blocks the old-generation cycle has not swept yet (lazily, a
    // few per refill, until one has free slots).
    do {
      while (Block* b = m.partial[c]) {
        m.partial[c] = b->next_partial;
        b->next_partial = nullptr;
        b->on_partial_list = false;
        if (take_run(m, c, b)) return true;
      }
    } while (old_cycle_sweep_for_refill(m, c));
    AcquireFailure failure = AcquireFailure::kNone;
    Block* b = acquire_block(BlockKind::kSmall, c, m.abi.heap_id, &failure);
    if (b != nullptr) {
      b->next_in_heap = m.blocks[c];
      m.blocks[c] = b;
      ++m.small_blocks;
      bool taken = take_run(m, c, b);
      USGC_ASSERT(taken, "a new block has one run");
      return taken;
    }
    if (failure == AcquireFailure::kHeapLimit && attempt < 2 && collect_for_heap_limit(m)) continue;
    failed_for(failure, bytes);
    return false;
  }
  failed_for(AcquireFailure::kHeapLimit, bytes);
  return false;
}

void* allocate_private_large(Mutator& m, uint64_t header, size_t bytes) {
  if (budget_exhausted(m)) collect_private(m, "budget");
  old_cycle_refill_step(m);
  AcquireFailure failure = AcquireFailure::kNone;
  Block* b = acquire_large(bytes, m.abi.heap_id, &failure);
  if (b == nullptr && failure == AcquireFailure::kHeapLimit && collect_for_heap_limit(m)) {
    b = acquire_large(bytes, m.abi.heap_id, &failure);
  }
  if (b == nullptr) return failed_for(failure, bytes);
  b->next_in_heap = m.young_large;  // young until a collection promotes it onto large_objects
  m.young_large = b;
  m.bytes_since_collection += b->mapping_bytes;
  m.run_bytes_taken += b->mapping_bytes;
  count_add(g_counters.bytes_in_use[USGC_GOROUTINE_PRIVATE], b->mapping_bytes);
  count_add(g_counters.objects_allocated[USGC_GOROUTINE_PRIVATE], 1);
  char* slot = b->slots_begin();
  *reinterpret_cast<uint64_t*>(slot) = header | (m.abi.heap_id << kOwnerShift);
  return slot + kHeaderBytes;
}

}  // namespace

size_t budget_after(size_t live_bytes, size_t minimum_bytes) {
  size_t budget = g_config.gc_percent < 0
                      ? SIZE_MAX
                      : live_bytes / 100 * static_cast<size_t>(g_config.gc_percent);
  return budget < minimum_bytes ? minimum_bytes : budget;
}

void* allocate_private(Mutator& m, uint64_t header, size_t bytes, uint32_t c) {
  if (c == kNoSizeClass) return allocate_private_large(m, header, bytes);
  uint32_t slot_bytes = kSlotBytes[c];
  usgc_alloc_run& run = m.abi.runs[c];
  if (run.next + slot_bytes > run.limit || run.next == nullptr) {
    if (!refill(m, c, bytes)) return nullptr;
  }
  char* slot = run.next;
  run.next = slot + slot_bytes;
  *reinterpret_cast<uint64_t*>(slot) = header | (m.abi.heap_id << kOwnerShift);
  return slot + kHeaderBytes;
}

void retire_private_run(Mutator& m, uint32_t c) {
  account_used_run(m, c);
  run_cache(m).empty_run(c);
  m.current[c] = nullptr;
}

void retire_all_private_runs(Mutator& m) {
  for (uint32_t c = 0; c < kSizeClassCount; ++c) retire_private_run(m, c);
}

}  // namespace usgc::gc

// The inline fast path's slow path (usgc/gc.h).
extern "C" __attribute__((visibility("default"))) void* usgc_alloc_private_slow(
    const usgc_type_layout* layout) {
  using namespace usgc::gc;
  if (usgc::safepoint::in_fork_child()) return fail_in_fork_child("usgc_alloc_private_slow");
  Mutator* m = current_mutator();
  if (m == nullptr)
    return fail(EPERM,
                "usgc_alloc: the calling thread is not a goroutine (use usgc_run_main, usgc_go or "
                "usgc_attach_thread)");
  if (layout == nullptr || layout->size_class >= kSizeClassCount)
    return fail(EINVAL, "usgc_alloc_private_slow: bad layout");
  return allocate_private(*m, layout->header_bits, layout->slot_bytes, layout->size_class);
}
