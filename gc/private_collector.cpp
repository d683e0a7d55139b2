// gc/private_collector.cpp — a goroutine collects its own private heap, alone.
//
// Because of the private-heap invariant nothing outside goroutine G refers to an object G owns,
// so G's roots (gc/roots.hpp) are all that can keep one alive. G marks from them with the
// private mark bit in the header, never tracing into shared or global objects (none of them
// refers back), then sweeps each of its blocks:
//   header 0                          free
//   PRIVATE, marked                   live: clear the mark
//   PRIVATE, unmarked                 dead: zero the slot
//   SHARED/GLOBAL (published in place, still in G's block): dead iff its shared mark bit is
//                                     clear (the shared-liveness rule, gc/block.hpp)
// and rebuilds the block's free runs. Empty blocks go back to the pool. Nobody is stopped and
// nothing is locked (the pool's lock only to return blocks), so any number of goroutines
// collect at once. The collection does not poll: a stop-the-world waits for it to finish
// (its pause is bounded by the private heap's size; docs/gc.md).
#include <cstring>

#include "gc/allocation.hpp"
#include "gc/block_sweep.hpp"
#include "gc/gc_state.hpp"
#include "gc/roots.hpp"
#include "gc/trace.hpp"
#include "gc/verifier.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"

namespace usgc::gc {
namespace {

struct SweepTotals {
  size_t live_bytes = 0;
  size_t freed_private_bytes = 0;
  size_t freed_shared_bytes = 0;
};

void sweep_private_block(Block* b, SweepTotals& totals) {
  const uint32_t slot_bytes = b->slot_bytes;
  sweep_block(b, [&](char* slot, uint64_t header, uint32_t index) {
    if (class_of(header) == Ownership::kPrivate) {
      if (header & kPrivateMark) {
        *reinterpret_cast<uint64_t*>(slot) = header & ~kPrivateMark;
        return false;
      }
      totals.freed_private_bytes += slot_bytes;
      return true;
    }
    USGC_CHECK(class_of(header) != Ownership::kStackLocal,
               "gc: heap corruption: a STACK_LOCAL header in heap block %p", static_cast<void*>(b));
    if (b->shared_marked(index)) return false;  // published in place, still reachable
    totals.freed_shared_bytes += slot_bytes;
    return true;
  });
  totals.live_bytes += size_t{b->live_slots} * slot_bytes;
}

// Large objects of the private list: same rules, one slot each.
void sweep_private_large(Mutator& m, SweepTotals& totals) {
  Block** link = &m.large_objects;
  while (Block* b = *link) {
    uint64_t* header = reinterpret_cast<uint64_t*>(b->slots_begin());
    bool live;
    if (class_of(*header) == Ownership::kPrivate) {
      live = (*header & kPrivateMark) != 0;
      *header &= ~kPrivateMark;
    } else {
      live = b->shared_marked(0);
    }
    if (live) {
      totals.live_bytes += b->mapping_bytes;
      link = &b->next_in_heap;
      continue;
    }
    *link = b->next_in_heap;
    (class_of(*header) == Ownership::kPrivate ? totals.freed_private_bytes
                                              : totals.freed_shared_bytes) += b->mapping_bytes;
    release_large(b);
  }
}

void mark_from_roots(Mutator& m, size_t* marked_objects) {
  const uint64_t heap_id = m.abi.heap_id;
  MarkStack& stack = m.mark_stack;
  size_t marked = 0;
  auto visit = [&](void* object) {
    uint64_t* header = header_address(object);
    uint64_t value = *header;
    if (owner_of(value) != heap_id || class_of(value) != Ownership::kPrivate ||
        (value & kPrivateMark))
      return;
    *header = value | kPrivateMark;
    ++marked;
    stack.push(object);
  };
  for_each_mutator_root(m, [&](void** slot) { visit(*slot); });
  while (!stack.empty()) {
    void* object = stack.pop();
    uint64_t header = header_of(object);
    // Two passes: the children's headers are fetched together, then visited (their misses overlap).
    for_each_reference_field(object, header, [&](void** field) {
      if (void* value = *field) __builtin_prefetch(static_cast<char*>(value) - kHeaderBytes, 1);
    });
    for_each_reference_field(object, header, [&](void** field) {
      void* value = *field;
      if (is_object_pointer(value)) visit(value);
    });
  }
  *marked_objects = marked;
}

}  // namespace

void collect_private(Mutator& m, const char* reason) {
  if (m.collecting) return;
  m.collecting = true;
  uint64_t start_ns = kernel::monotonic_ns();
  retire_all_private_runs(m);
  size_t before_bytes = m.live_bytes_after_collection + m.bytes_since_collection;

  size_t marked = 0;
  mark_from_roots(m, &marked);

  SweepTotals totals;
  for (uint32_t c = 0; c < kSizeClassCount; ++c) {
    m.partial[c] = nullptr;
    Block** link = &m.blocks[c];
    while (Block* b = *link) {
      sweep_private_block(b, totals);
      if (b->live_slots == 0) {
        *link = b->next_in_heap;
        forget_free_runs(b);
        release_block(b);
        continue;
      }
      if (b->free_runs != nullptr) {
        b->next_partial = m.partial[c];
        m.partial[c] = b;
      }
      link = &b->next_in_heap;
    }
  }
  sweep_private_large(m, totals);

  count_sub(g_counters.bytes_in_use[USGC_GOROUTINE_PRIVATE], totals.freed_private_bytes);
  count_sub(g_counters.bytes_in_use[USGC_GOROUTINE_SHARED], totals.freed_shared_bytes);
  count_add(g_counters.bytes_freed_private, totals.freed_private_bytes);
  count_add(g_counters.bytes_freed_shared, totals.freed_shared_bytes);
  m.live_bytes_after_collection = totals.live_bytes;
  m.bytes_since_collection = 0;
  m.collection_budget_bytes = budget_after(totals.live_bytes, g_config.min_private_budget_bytes);

  uint64_t pause_ns = kernel::monotonic_ns() - start_ns;
  uint64_t number = g_counters.private_collections.fetch_add(1, std::memory_order_relaxed) + 1;
  record_pause(false, pause_ns);
  if (g_config.trace)
    trace_private_collection(number, m.goroutine_id, reason, before_bytes, totals.live_bytes,
                             marked, pause_ns);
  if (g_config.verify) verify_private_heap(m);
  m.collecting = false;
}

}  // namespace usgc::gc
