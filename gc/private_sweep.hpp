// gc/private_sweep.hpp — what a goroutine's sweep of its old generation decides for one block
// or large object, shared by the one-pause full collection (gc/private_collector.cpp) and the
// incremental old-generation cycle's lazy sweep (gc/private_old_cycle.cpp).
//
// Both sweep a block only when every private object in it is old or a marked young one (no
// run is being bumped in it, no logged nursery run is unswept in it): a private object is live
// iff it is marked — the one-pause collection's private mark in its header (it is then promoted:
// old id, mark cleared), the cycle's bit in the block's cycle bitmap (no header is written); the
// cycle sweeps a block without a published object from that bitmap alone; a shared or global
// object published in place is dead iff a finished shared mark left its bit clear (the
// shared-liveness rule, gc/block.hpp). Runs on the owning goroutine only; not a hot path (once
// per block per old-generation cycle).
#pragma once

#include <cstring>

#include "gc/block_sweep.hpp"
#include "gc/concurrent_mark.hpp"
#include "gc/gc_state.hpp"
#include "gc/mutator.hpp"
#include "gc/object_header.hpp"
#include "gc/verify_log.hpp"
#include "kernel_iface/fatal.hpp"

namespace usgc::gc {

// Where a private pause went after its mark (USGC_TRACE=gc prints it): the clock's readings
// at the end of each phase, and the work done in it.
struct PausePhases {
  uint64_t nursery_swept_at_ns = 0;  // the logged runs (minor) or every block (full) swept
  uint64_t large_swept_at_ns = 0;    // young_large (and, full, large_objects) swept
  uint64_t cycle_ns = 0;             // the old-generation cycle's work inside this pause
  uint64_t cycle_mark_ns = 0;        //   of which: the rest of its mark (complete)
  uint64_t cycle_terminate_ns = 0;   //   its termination (the logs; no block is read)
  uint64_t cycle_sweep_ns = 0;       //   sweep steps (blocks released or swept)
  uint64_t cycle_start_ns = 0;       //   a new cycle's root scan
  size_t slots_swept = 0;            // nursery slots read by the minor sweep (slot by slot)
  size_t bitmap_swept_slots = 0;     // nursery slots swept from the bitmap (none read)
  size_t cycle_blocks_swept = 0;     // blocks the cycle released or swept in this pause
};

struct SweepTotals {
  size_t live_bytes = 0;  // old private bytes after the collection (full: all; minor: promoted)
  size_t freed_private_bytes = 0;
  size_t freed_shared_bytes = 0;
  Block* dead_large = nullptr;  // unmapped after the pause (next_in_heap)
  uint64_t marked_at_ns = 0;    // when marking ended (the sweep follows)
  PausePhases phases;
};

// The cycle's marks (gc/block.hpp, Block::cycle_mark_bits): one bit per slot of the block's
// bitmap for the cycle tagged m.old_cycle_epoch, bit 0 for a large object; a block tagged with
// another epoch reads as unmarked and is cleared by its first mark. Old objects are never marked
// in their headers by the cycle, so its sweep reads only the bitmaps (and no slot).
//
// The free-slot invariant of the cycle bitmaps: in a bitmap of the current epoch a set bit is on
// a slot that holds an object — one the running or last cycle marked (traced, shaded, promoted
// black), or a young object the running minor collection marked — never on a free slot. A run
// is therefore handed out with its bits clear (checked in debug builds when it is taken), and a
// minor collection's bitmap sweep reads every set bit of a logged run as its own mark. Who keeps
// it: the cycle's sweeps free only slots with a clear bit (clearing the bit of a published
// object they free); a minor collection's sweep clears the bits it set, unless a cycle marks;
// a one-pause full collection frees objects the last cycle marked (they died since), so it
// renews the epoch first (renew_cycle_epoch): every bitmap is then stale, i.e. clear.
// (Broken before the renewal: a full collection after a cycle left the cycle's bits on the slots
// it freed; young objects made there read as marked at the next minor collection, which
// promoted them unmarked — floating garbage whose young referents it freed.)
inline void renew_cycle_epoch(Mutator& m) {
  if (++m.old_cycle_epoch == 0) m.old_cycle_epoch = 1;  // 0 is a fresh block's
}
inline uint32_t cycle_mark_index(const Block* b, const void* object) {
  return b->kind == BlockKind::kLarge ? 0 : b->slot_index_of(object);
}
inline bool cycle_marked(const Mutator& m, const Block* b, uint32_t index) {
  return b->cycle_epoch == m.old_cycle_epoch &&
         ((b->cycle_mark_bits[index / 64] >> (index % 64)) & 1);
}
// Sets the mark of slot `index` of block b; true when it was clear. Counts it in the block
// (Block::cycle_marked_slots: the bitmap sweep frees a block with none without reading it).
inline bool set_cycle_mark(Mutator& m, Block* b, uint32_t index) {
  if (b->cycle_epoch != m.old_cycle_epoch) {
    b->cycle_epoch = m.old_cycle_epoch;
    b->cycle_marked_slots = 0;
    std::memset(b->cycle_mark_bits, 0, (size_t{b->slot_count} / 64 + 1) * sizeof(uint64_t));
  }
  uint64_t& word = b->cycle_mark_bits[index / 64];
  const uint64_t bit = uint64_t{1} << (index % 64);
  if (word & bit) return false;
  word |= bit;
  ++b->cycle_marked_slots;
  return true;
}

// Clears the mark of slot `index` of block b if it is set in the current epoch (the count may
// over-count afterwards, which Block::cycle_marked_slots allows).
inline void clear_cycle_mark(const Mutator& m, Block* b, uint32_t index) {
  if (b->cycle_epoch == m.old_cycle_epoch)
    b->cycle_mark_bits[index / 64] &= ~(uint64_t{1} << (index % 64));
}

// The header of a surviving private object: owner -> old id, private mark cleared.
inline uint64_t promoted(uint64_t header, uint64_t old_id) {
  return (header & ~(kPrivateMark | (~uint64_t{0} << kOwnerShift))) | (old_id << kOwnerShift);
}

// Acknowledges a pending stop-the-world (or preemption) request, as a poll would
// (gc/private_collector.cpp).
void poll_for_safepoint();

// The end of a bounded pause (the preemption-deferral rule, Mutator::pause_defers_preemption):
// clears the deferral and serves a preemption request one of the pause's polls left pending.
void serve_deferred_preemption(Mutator& m);

// Sweeps block b slot by slot, reading every header. cycle == nullptr: a one-pause full
// collection, whose marks are the private mark bits of the headers (a survivor is promoted, its
// mark cleared); else the old-generation cycle of *cycle, whose marks are the block's cycle
// bitmap (the block holds no young object then: no header is written for a survivor).
inline void sweep_private_block(Block* b, uint64_t old_id, const Mutator* cycle,
                                SweepTotals& totals) {
  const uint32_t slot_bytes = b->slot_bytes;
  bool holds_published = false;
  count_add(g_counters.private_sweep_slots_read, b->slot_count);
  sweep_block(b, [&](char* slot, uint64_t header, uint32_t index) {
    if (class_of(header) == Ownership::kPrivate) {
      if (cycle != nullptr) {
        if (cycle_marked(*cycle, b, index)) return false;
      } else if (header & kPrivateMark) {
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
    // Marked by the cycle before it was published: the free-slot invariant wants its bit clear.
    if (cycle != nullptr) clear_cycle_mark(*cycle, b, index);
    verify_log(VerifyEvent::kFreeShared, slot + kHeaderBytes, b, header);
    totals.freed_shared_bytes += slot_bytes;
    return true;
  });
  b->holds_published = holds_published;
  // live_slots counts published ones too: pacing needs no more precision.
  totals.live_bytes += size_t{b->live_slots} * slot_bytes;
}

// The first index in [from, limit) whose bit in `bits` equals `value` (limit if none).
inline uint32_t find_bit(const uint64_t* bits, uint32_t from, uint32_t limit, bool value) {
  while (from < limit) {
    uint64_t word = bits[from / 64];
    if (!value) word = ~word;
    word &= ~uint64_t{0} << (from % 64);
    if (word != 0) {
      uint32_t found = (from & ~63u) + static_cast<uint32_t>(__builtin_ctzll(word));
      return found < limit ? found : limit;
    }
    from = (from & ~63u) + 64;
  }
  return limit;
}

// Whether slots [begin, end) of small block b have no mark in m's current epoch (the free-slot
// invariant, for a run about to be handed out; debug builds check it).
inline bool cycle_marks_clear(const Mutator& m, Block* b, const char* begin, const char* end) {
  if (b->cycle_epoch != m.old_cycle_epoch || begin == end) return true;
  const uint32_t first = b->slot_index_of(begin);
  const uint32_t limit =
      first + static_cast<uint32_t>(static_cast<size_t>(end - begin) / b->slot_bytes);
  return find_bit(b->cycle_mark_bits, first, limit, true) == limit;
}

// The bitmap sweep of a block with survivors (Go's allocBits, mimalloc's page bitmap): block b
// holds only old private objects of m and free slots (no published object: holds_published
// clear; no young one: the cycle's unswept blocks get no runs). Its free runs are rebuilt from
// the cycle's bitmap alone, words at a time: every clear bit is a free slot, a dead object's
// bytes are left where they are and the run is *dirty* (gc/block.hpp, FreeRun), zeroed in bulk
// when it is handed out. No slot is read or written, except the heads of the new runs.
inline void sweep_block_by_bitmap(const Mutator& m, Block* b, SweepTotals& totals) {
  static const uint64_t kNoMarks[kMaxSlotsPerBlock / 64 + 1] = {};
  const uint64_t* bits = b->cycle_epoch == m.old_cycle_epoch ? b->cycle_mark_bits : kNoMarks;
  const uint32_t count = b->slot_count;
  // The old runs' heads are left as they are: they lie in the new dirty runs (a slot free before
  // is unmarked), so they are zeroed with them.
  FreeRun** tail = &b->free_runs;
  uint32_t live = 0;
  uint32_t index = 0;
  while (index < count) {
    uint32_t free_begin = find_bit(bits, index, count, false);
    live += free_begin - index;
    if (free_begin == count) break;
    uint32_t free_end = find_bit(bits, free_begin, count, true);
    auto* run = reinterpret_cast<FreeRun*>(b->slot_at(free_begin));
    run->end = dirty_run_end(b->slot_at(free_end));
    *tail = run;
    tail = &run->next;
    index = free_end;
  }
  *tail = nullptr;
  USGC_ASSERT(live <= b->live_slots, "the cycle marks only objects of the block");
  totals.freed_private_bytes += size_t{b->live_slots - live} * b->slot_bytes;
  b->live_slots = live;
  totals.live_bytes += size_t{live} * b->slot_bytes;
  count_add(g_counters.private_bitmap_swept_blocks, 1);
}

// A large object's fate: true when it stays (promoted if private and marked). full: an old
// private object without its mark is dead (minor: old objects stay). cycle: the old-generation
// cycle of *cycle is marking (a minor collection: a young object promoted now is marked black in
// its bitmap, gc/private_old_cycle.hpp) or ends its mark (full: an old object's mark is its
// bitmap's, not its header's); nullptr: no cycle's marks are involved.
inline bool keep_large(Block* b, uint64_t old_id, bool full, Mutator* cycle, SweepTotals& totals) {
  uint64_t* header = reinterpret_cast<uint64_t*>(b->slots_begin());
  bool live;
  if (class_of(*header) == Ownership::kPrivate) {
    bool old = owner_of(*header) == old_id;
    bool marked =
        (*header & kPrivateMark) != 0 || (cycle != nullptr && old && cycle_marked(*cycle, b, 0));
    live = marked || (old && !full);
    if (live && !(old && !full)) *header = promoted(*header, old_id);
    if (live && !old && cycle != nullptr) set_cycle_mark(*cycle, b, 0);
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
inline void sweep_large_list(Mutator& m, Block* list, bool full, Mutator* cycle,
                             SweepTotals& totals) {
  const uint64_t old_id = old_id_of(m.abi.heap_id);
  while (Block* b = list) {
    list = b->next_in_heap;
    if (keep_large(b, old_id, full, cycle, totals)) {
      b->next_in_heap = m.large_objects;
      m.large_objects = b;
    } else {
      b->next_in_heap = totals.dead_large;
      totals.dead_large = b;
    }
  }
}

}  // namespace usgc::gc
