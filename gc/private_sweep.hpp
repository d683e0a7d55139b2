// gc/private_sweep.hpp — what a goroutine's sweep of its old generation decides for one block
// or large object, shared by the one-pause full collection (gc/private_collector.cpp) and the
// incremental old-generation cycle's lazy sweep (gc/private_old_cycle.cpp).
//
// Both sweep a block only when every private object in it is old or a marked young one (no
// run is being bumped in it, no logged nursery run is unswept in it): a private object is live
// iff its private mark is set, and is then promoted (old id, mark cleared); a shared or global
// object published in place is dead iff a finished shared mark left its bit clear (the
// shared-liveness rule, gc/block.hpp). Runs on the owning goroutine only; not a hot path (once
// per block per old-generation cycle).
#pragma once

#include "gc/block_sweep.hpp"
#include "gc/concurrent_mark.hpp"
#include "gc/mutator.hpp"
#include "gc/object_header.hpp"
#include "kernel_iface/fatal.hpp"

namespace usgc::gc {

struct SweepTotals {
  size_t live_bytes = 0;  // old private bytes after the collection (full: all; minor: promoted)
  size_t freed_private_bytes = 0;
  size_t freed_shared_bytes = 0;
  Block* dead_large = nullptr;  // unmapped after the pause (next_in_heap)
  uint64_t marked_at_ns = 0;    // when marking ended (the sweep follows)
};

// The header of a surviving private object: owner -> old id, private mark cleared.
inline uint64_t promoted(uint64_t header, uint64_t old_id) {
  return (header & ~(kPrivateMark | (~uint64_t{0} << kOwnerShift))) | (old_id << kOwnerShift);
}

// Acknowledges a pending stop-the-world (or preemption) request, as a poll would
// (gc/private_collector.cpp).
void poll_for_safepoint();

inline void sweep_private_block(Block* b, uint64_t old_id, SweepTotals& totals) {
  const uint32_t slot_bytes = b->slot_bytes;
  bool holds_published = false;
  sweep_block(b, [&](char* slot, uint64_t header, uint32_t index) {
    if (class_of(header) == Ownership::kPrivate) {
      if (header & kPrivateMark) {
        *reinterpret_cast<uint64_t*>(slot) = promoted(header, old_id);
        return false;
      }
      totals.freed_private_bytes += slot_bytes;
      return true;
    }
    USGC_CHECK(class_of(header) != Ownership::kStackLocal,
               "gc: heap corruption: a STACK_LOCAL header in heap block %p", static_cast<void*>(b));
    // Published in place: freed when a finished shared mark left it unmarked (while one runs,
    // unmarked is not dead yet: gc/concurrent_mark.hpp).
    if (b->shared_marked(index) || shared_mark_in_progress()) {
      holds_published = true;
      return false;
    }
    totals.freed_shared_bytes += slot_bytes;
    return true;
  });
  b->holds_published = holds_published;
  // live_slots counts published ones too: pacing needs no more precision.
  totals.live_bytes += size_t{b->live_slots} * slot_bytes;
}

// A large object's fate: true when it stays (promoted if private and marked). full: an old
// private object without its mark is dead (minor: old objects stay). keep_mark: the private
// mark of a promoted object stays set (a minor collection while an old-generation mark runs:
// objects promoted then are black for it, gc/private_old_cycle.hpp).
inline bool keep_large(Block* b, uint64_t old_id, bool full, bool keep_mark, SweepTotals& totals) {
  uint64_t* header = reinterpret_cast<uint64_t*>(b->slots_begin());
  bool live;
  if (class_of(*header) == Ownership::kPrivate) {
    bool old = owner_of(*header) == old_id;
    bool marked = (*header & kPrivateMark) != 0;
    live = marked || (old && !full);
    if (live && !(old && !full)) {
      *header = promoted(*header, old_id) | (keep_mark ? kPrivateMark : 0);
    }
  } else {
    live = b->shared_marked(0) || shared_mark_in_progress();
  }
  if (live) {
    totals.live_bytes += b->mapping_bytes;
    return true;
  }
  (class_of(*header) == Ownership::kPrivate ? totals.freed_private_bytes
                                            : totals.freed_shared_bytes) += b->mapping_bytes;
  return false;
}

// Sweeps `list`, moving the survivors onto m.large_objects and the dead onto totals.dead_large.
inline void sweep_large_list(Mutator& m, Block* list, bool full, bool keep_mark,
                             SweepTotals& totals) {
  const uint64_t old_id = old_id_of(m.abi.heap_id);
  while (Block* b = list) {
    list = b->next_in_heap;
    if (keep_large(b, old_id, full, keep_mark, totals)) {
      b->next_in_heap = m.large_objects;
      m.large_objects = b;
    } else {
      b->next_in_heap = totals.dead_large;
      totals.dead_large = b;
    }
  }
}

}  // namespace usgc::gc
