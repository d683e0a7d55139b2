// gc/run_cache.hpp — the run cache: per size class, the run being bump-allocated, where its part
// not yet counted in the statistics begins, and the block it came from. A goroutine's private heap
// keeps one (its runs are in the ABI record, usgc_mutator::runs: gc/mutator.hpp); the shared heap
// keeps one per P and one for the global class (gc/shared_heap.cpp). Both take runs from blocks
// and account them here; what differs (the nursery log, the pacer) is the caller's.
//
// Invariants, per size class c:
//   - runs[c] is empty ({nullptr, nullptr}) or a free run taken whole from current[c]: its head
//     words (a dirty run: all its bytes, gc/block.hpp) were zeroed when it was unlinked, so every
//     slot in it is zero until bumped;
//   - run_begin[c] is nullptr (nothing to account) or lies in runs[c] at or below runs[c].next:
//     run_begin[c]..runs[c].next is allocated and not yet counted.
// A run cache has one user at a time and no lock of its own: the goroutine for its private heap,
// the thread holding the P for a P's shared cache, the holder of the global cache's lock for the
// global one.
// Hot path: none (the refill slow path; the bump itself is inline in usgc/gc.h and
// gc/shared_heap.cpp).
#pragma once

#include <cstdint>
#include <cstring>

#include "gc/block.hpp"
#include "gc/gc_state.hpp"
#include "gc/size_classes.hpp"
#include "usgc/object.h"

namespace usgc::gc {

// A view of the three per-class arrays of one cache (each kSizeClassCount long), wherever its
// owner keeps them.
struct RunCache {
  usgc_alloc_run* runs;
  char** run_begin;
  Block** current;

  // Folds the part of run c used since it was last accounted into the statistics of `ownership`.
  void account_used_run(uint32_t c, usgc_ownership ownership) const {
    char* begin = run_begin[c];
    if (begin == nullptr) return;
    size_t used = static_cast<size_t>(runs[c].next - begin);
    count_add(g_counters.bytes_in_use[ownership], used);
    count_add(g_counters.objects_allocated[ownership], used / kSlotBytes[c]);
    run_begin[c] = runs[c].next;
  }

  // Empties run c (its used part accounted first: account_used_run).
  void empty_run(uint32_t c) const {
    runs[c] = usgc_alloc_run{nullptr, nullptr};
    run_begin[c] = nullptr;  // the run is empty: nothing must account it again
  }

  // Takes the next free run of block b into run c; false if b has none. The run is unlinked from
  // b first (its head words go back to zero, a dirty run all of it: every slot in it is zero
  // now), then
  // note_taken(begin, end) runs, then the run is installed with current[c] = b.
  template <typename NoteTaken>
  bool take_run(uint32_t c, Block* b, NoteTaken&& note_taken) const {
    FreeRun* run = b->free_runs;
    if (run == nullptr) return false;
    b->free_runs = run->next;
    char* begin = reinterpret_cast<char*>(run);
    char* end = run_end(run);
    if (run_is_dirty(run)) {
      // Left by a bitmap sweep with the bytes of dead objects: zeroed in bulk, here, once.
      std::memset(begin, 0, static_cast<size_t>(end - begin));
    } else {
      run->end = nullptr;
      run->next = nullptr;
    }
    note_taken(begin, end);
    runs[c] = usgc_alloc_run{begin, end};
    run_begin[c] = begin;
    current[c] = b;
    return true;
  }
};

}  // namespace usgc::gc
