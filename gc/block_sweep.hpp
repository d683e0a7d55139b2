// gc/block_sweep.hpp — the sweep of one block, shared by every sweeper (a goroutine's private
// collection, the shared heap's sweepers): walk the slots, free the dead ones, rebuild the runs.
//
// Who may call it: the block's owner (its goroutine, or whoever popped a shared block from its
// class list), never while a shared mark is running (the mark rewrites the bitmap the caller's
// rule reads). Keeps "free slots are zero" (gc/block.hpp): a freed slot is zeroed here, and the
// run heads left on the list from before are cleared first (dirty runs whole), so they are never
// read as headers.
#pragma once

#include <cstring>

#include "gc/block.hpp"

namespace usgc::gc {

// Zeroes the head words of the runs on the block's list (a dirty run whole: gc/block.hpp,
// FreeRun) and empties it: every free slot is all zero afterwards.
inline void forget_free_runs(Block* b) {
  for (FreeRun* run = b->free_runs; run != nullptr;) {
    FreeRun* next = run->next;
    if (run_is_dirty(run)) {
      std::memset(static_cast<void*>(run), 0,
                  static_cast<size_t>(run_end(run) - reinterpret_cast<char*>(run)));
    } else {
      run->end = nullptr;
      run->next = nullptr;
    }
    run = next;
  }
  b->free_runs = nullptr;
}

// Calls is_dead(slot, header, index) for every slot holding an object (header != 0); a true
// answer frees the slot (zeroed here). is_dead may rewrite a live object's header (clear a mark).
// Rebuilds the block's free runs in address order and its live_slots; returns the slots freed.
template <typename IsDead>
uint32_t sweep_block(Block* b, IsDead&& is_dead) {
  forget_free_runs(b);
  const uint32_t slot_bytes = b->slot_bytes;
  FreeRun** tail = &b->free_runs;
  char* run_start = nullptr;
  uint32_t live = 0;
  uint32_t freed = 0;
  for (uint32_t i = 0; i < b->slot_count; ++i) {
    char* slot = b->slot_at(i);
    uint64_t header = *reinterpret_cast<uint64_t*>(slot);
    bool is_free = header == 0;
    if (!is_free && is_dead(slot, header, i)) {
      std::memset(slot, 0, slot_bytes);
      ++freed;
      is_free = true;
    }
    if (is_free) {
      if (run_start == nullptr) run_start = slot;
      continue;
    }
    ++live;
    if (run_start != nullptr) {
      auto* run = reinterpret_cast<FreeRun*>(run_start);
      run->end = slot;
      *tail = run;
      tail = &run->next;
      run_start = nullptr;
    }
  }
  if (run_start != nullptr) {
    auto* run = reinterpret_cast<FreeRun*>(run_start);
    run->end = b->slots_end();
    *tail = run;
    tail = &run->next;
  }
  *tail = nullptr;
  b->live_slots = live;
  return freed;
}

}  // namespace usgc::gc
