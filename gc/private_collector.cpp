// gc/private_collector.cpp — a goroutine collects its own private heap, alone: minor collections
// of its nursery, and full ones (generations: gc/private_generations.hpp).
//
// Because of the private-heap invariant nothing outside goroutine G refers to an object G owns,
// so G's roots (gc/roots.hpp) are all that can keep one alive; G marks from them with the private
// mark bit in the header, never tracing into shared or global objects (none of them refers back).
//
// Minor (the nursery is used up): marks the young objects reachable from the roots and from the
// remembered_young objects (old objects are neither marked nor traced), then sweeps only the
// logged runs: a marked young object is promoted (owner -> old id, mark cleared), an unmarked one
// is freed (zeroed), and the free slots of each run go back to its block's free runs. The pause
// is bounded by the nursery (its survivors and its slots), not by the old generation.
// Full (explicit requests, the heap limit; with USGC_GC_INCREMENTAL=0 also when the old generation
// reaches the pacer's goal, gc/private_pacer.hpp, where by default an incremental cycle starts at
// the trigger instead: gc/private_old_cycle.hpp): marks everything reachable in one pause, sweeps
// every block —
//   header 0                          free
//   PRIVATE, marked                   live: clear the mark, promote
//   PRIVATE, unmarked                 dead: zero the slot
//   SHARED/GLOBAL (published in place, still in G's block): dead iff its shared mark bit is
//                                     clear (the shared-liveness rule, gc/block.hpp)
// rebuilds free runs, returns empty blocks, and rebuilds remembered_shared from what it traced.
// Either kind records the objects it marks that refer to shared objects (remembered_shared).
//
// Marking polls (every kPollEveryObjects objects) and so does the sweep (between blocks or runs):
// a stop-the-world does not wait for a private collection. While G is stopped a shared
// collection reads G's roots, nursery and remembered logs: marking leaves them intact, and they
// are final before the sweep starts (collect_full says why a half-swept heap is safe to read).
// Nobody else is stopped and nothing is locked (the pool's lock only to return blocks), so any
// number of goroutines collect at once. Dead large objects are unmapped after the pause is measured
// (they are unreachable already; the goroutine pays the munmap, nobody waits for it).
#include <cstring>

#include "gc/allocation.hpp"
#include "gc/block_sweep.hpp"
#include "gc/concurrent_mark.hpp"
#include "gc/gc_state.hpp"
#include "gc/private_generations.hpp"
#include "gc/private_old_cycle.hpp"
#include "gc/private_pacer.hpp"
#include "gc/private_sweep.hpp"
#include "gc/roots.hpp"
#include "gc/trace.hpp"
#include "gc/verifier.hpp"
#include "gc/verify_log.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"
#include "safepoint/stop_the_world.hpp"

namespace usgc::gc {
namespace {

constexpr size_t kPollEveryObjects = 1024;

// Marking for either kind. visit() marks a private object of m that this kind collects (minor:
// young only; full: young and old) and queues it; trace() visits an object's fields and says
// whether one refers to a shared or global object.
class PrivateMarker {
 public:
  PrivateMarker(Mutator& m, bool full)
      : stack_(m.mark_stack), young_(m.abi.heap_id), old_(old_id_of(m.abi.heap_id)), full_(full) {}

  void visit(void* object) {
    uint64_t* header = header_address(object);
    uint64_t value = *header;
    if (class_of(value) != Ownership::kPrivate || (value & kPrivateMark)) return;
    uint64_t owner = owner_of(value);
    if (owner != young_ && (!full_ || owner != old_)) return;
    *header = value | kPrivateMark;
    ++marked_;
    stack_.push(object);
  }

  // Visits the fields; true when one refers to a shared or global object.
  bool trace(void* object) {
    return trace_private_children(object, header_of(object), [&](void* child) { visit(child); });
  }

  // Drains the stack; on_refers_to_shared(object) for each traced object holding a shared ref.
  template <typename OnShared>
  void drain(OnShared&& on_refers_to_shared) {
    while (!stack_.empty()) {
      void* object = stack_.pop();
      if (trace(object)) on_refers_to_shared(object);
      if (++since_poll_ >= kPollEveryObjects) {
        since_poll_ = 0;
        poll_for_safepoint();
      }
    }
  }

  size_t marked() const { return marked_; }

 private:
  MarkStack& stack_;
  const uint64_t young_;
  const uint64_t old_;
  const bool full_;
  size_t marked_ = 0;
  size_t since_poll_ = 0;
};

// ---- full collections ----

// Clears `flag` on the still-valid entries of `log` and empties it.
void forget_remembered(Mutator& m, MarkStack& log, uint64_t flag) {
  for_each_remembered(m, log, flag, [&](void* object) { *header_address(object) &= ~flag; });
  log.clear();
}

void collect_full(Mutator& m, SweepTotals& totals, size_t* marked) {
  const uint64_t old_id = old_id_of(m.abi.heap_id);
  PrivateMarker marker(m, /*full=*/true);
  // The new remembered_shared is built aside: a shared collection at one of the marking's polls
  // still reads the current one.
  MarkStack rebuilt;
  for_each_mutator_root(m, [&](void** slot) { marker.visit(*slot); });
  marker.drain([&](void* object) { rebuilt.push(object); });
  *marked = marker.marked();
  count_add(g_counters.private_old_objects_marked, *marked);
  totals.marked_at_ns = kernel::monotonic_ns();

  // The logs are final before the sweep, which polls between blocks: a shared collection at a poll
  // reads the rebuilt remembered_shared (every live old holder of a shared reference), the
  // nursery log (swept runs hold promoted or free slots, unswept ones marked or dead young
  // objects, whose shared referents are still allocated — shared collections keep what any
  // private object refers to — and whose private referents, if freed already, read as zero
  // headers, which shared markers skip), and young_large, detached last.
  forget_remembered(m, m.remembered_shared, kRememberedShared);
  forget_remembered(m, m.remembered_young, kRememberedYoung);
  m.published_old.clear();  // every old referrer of them was traced, and is in `rebuilt`
  for (size_t i = 0; i < rebuilt.size(); ++i) {
    void* object = rebuilt.at(i);
    *header_address(object) |= kRememberedShared;
    m.remembered_shared.push(object);
  }
  rebuilt.release();
  for (uint32_t c = 0; c < kSizeClassCount; ++c) {
    m.partial[c] = nullptr;
    Block** link = &m.blocks[c];
    while (Block* b = *link) {
      sweep_private_block(b, old_id, /*cycle=*/nullptr, totals);
      b->on_partial_list = false;
      if (b->live_slots == 0) {
        *link = b->next_in_heap;
        forget_free_runs(b);
        release_block(b);
        continue;
      }
      if (b->free_runs != nullptr) {
        b->next_partial = m.partial[c];
        m.partial[c] = b;
        b->on_partial_list = true;
      }
      link = &b->next_in_heap;
      poll_for_safepoint();
    }
  }
  Block* large = m.large_objects;
  m.large_objects = nullptr;
  sweep_large_list(m, large, /*full=*/true, /*cycle=*/nullptr, totals);
  Block* young_large = m.young_large;
  m.young_large = nullptr;
  sweep_large_list(m, young_large, /*full=*/true, /*cycle=*/nullptr, totals);
}

// ---- minor collections ----

// Sweeps one logged run [begin, end) of block b: promotes the marked young objects, frees the
// unmarked ones, and gives the run's free stretches back to the block as free runs.
void sweep_young_run(Mutator& m, char* begin, char* end, SweepTotals& totals) {
  Block* b = block_of(begin);
  const uint32_t slot_bytes = b->slot_bytes;
  const uint64_t young = m.abi.heap_id;
  const uint64_t old_id = old_id_of(young);
  // Promoted black while an old-generation mark runs: marked in the cycle's bitmap
  // (gc/private_old_cycle.hpp).
  const bool black = old_cycle_phase(m) == OldCyclePhase::kMarking;
  uint32_t index = b->slot_index_of(begin);
  char* free_start = nullptr;
  uint32_t live = 0;
  auto close_free = [&](char* until) {
    if (free_start == nullptr) return;
    auto* run = reinterpret_cast<FreeRun*>(free_start);
    run->end = until;
    run->next = b->free_runs;
    b->free_runs = run;
    free_start = nullptr;
  };
  for (char* slot = begin; slot < end; slot += slot_bytes, ++index) {
    uint64_t* word = reinterpret_cast<uint64_t*>(slot);
    uint64_t header = *word;
    bool is_free = header == 0;
    if (!is_free) {
      if (class_of(header) == Ownership::kPrivate) {
        USGC_ASSERT(owner_of(header) == young, "a logged run holds only young private objects");
        if (header & kPrivateMark) {
          *word = promoted(header, old_id);
          if (black) set_cycle_mark(m, b, index);
          totals.live_bytes += slot_bytes;
        } else {
          std::memset(slot, 0, slot_bytes);
          totals.freed_private_bytes += slot_bytes;
          is_free = true;
        }
      } else if (is_shared_class(header) && !b->shared_marked(index) &&
                 !shared_mark_in_progress()) {
        // Published in this run and found dead by a full shared collection since.
        verify_log(VerifyEvent::kFreeShared, slot + kHeaderBytes, b, header, 1);
        std::memset(slot, 0, slot_bytes);
        totals.freed_shared_bytes += slot_bytes;
        is_free = true;
      }
    }
    if (is_free) {
      if (free_start == nullptr) free_start = slot;
      continue;
    }
    ++live;
    close_free(slot);
  }
  close_free(end);
  b->live_slots += live;
  if (b->free_runs != nullptr && !b->on_partial_list) {
    b->next_partial = m.partial[b->size_class];
    m.partial[b->size_class] = b;
    b->on_partial_list = true;
  }
}

void collect_minor(Mutator& m, SweepTotals& totals, size_t* marked) {
  PrivateMarker marker(m, /*full=*/false);
  auto remember_promoted = [&](void* object) {
    uint64_t* header = header_address(object);
    if (*header & kRememberedShared) return;
    *header |= kRememberedShared;
    m.remembered_shared.push(object);
  };
  for_each_mutator_root(m, [&](void** slot) { marker.visit(*slot); });
  // Old objects given young references: their fields are roots of this collection. One that also
  // refers to a shared object (a young one published since, say) joins remembered_shared before
  // it leaves remembered_young, so a shared collection at a poll always finds it in one of them.
  for_each_remembered(m, m.remembered_young, kRememberedYoung, [&](void* object) {
    if (marker.trace(object)) remember_promoted(object);
    *header_address(object) &= ~kRememberedYoung;
  });
  marker.drain(remember_promoted);
  *marked = marker.marked();
  totals.marked_at_ns = kernel::monotonic_ns();
  m.remembered_young.clear();

  // Sweep the nursery only, polling between runs (the logs are final; see collect_full).
  for (size_t i = 0; i + 1 < m.young_runs.size(); i += 2) {
    sweep_young_run(m, static_cast<char*>(m.young_runs.at(i)),
                    static_cast<char*>(m.young_runs.at(i + 1)), totals);
    poll_for_safepoint();
  }
  Block* young_large = m.young_large;
  m.young_large = nullptr;
  sweep_large_list(m, young_large, /*full=*/false,
                   /*cycle=*/old_cycle_phase(m) == OldCyclePhase::kMarking ? &m : nullptr, totals);
}

}  // namespace

void poll_for_safepoint() {
  safepoint::SafepointSlot* slot = safepoint::current_slot();
  if (slot != nullptr && (safepoint::safepoint_requested(slot) ||
                          slot->preempt_requested.load(std::memory_order_relaxed) != 0))
    safepoint::reach_safepoint(slot);
}

bool private_full_collection_due(const Mutator& m) {
  if (!g_config.generational) return true;
  // The running cycle's mark is the full collection; its sweep does not hold the next one up.
  if (old_cycle_phase(m) == OldCyclePhase::kMarking) return false;
  // Incremental cycles start at the pacer's trigger, ahead of the goal (gc/private_pacer.hpp);
  // a one-pause full collection at the goal.
  size_t trigger = incremental_old_cycles_enabled() ? pacer_trigger_bytes(m) : pacer_goal_bytes(m);
  return m.live_bytes_after_collection >= trigger;
}

void collect_private(Mutator& m, const char* reason, bool full_requested) {
  if (m.collecting) return;
  m.collecting = true;
  uint64_t start_ns = kernel::monotonic_ns();
  retire_all_private_runs(m);
  size_t before_bytes = m.live_bytes_after_collection + m.bytes_since_collection;
  bool full_due = full_requested || private_full_collection_due(m);
  // A full collection the pacer asks for becomes an incremental cycle (gc/private_old_cycle.hpp),
  // started after this collection's minor one; requested ones (explicit, heap limit) complete a
  // running cycle, then collect in one pause.
  bool start_cycle = full_due && !full_requested && incremental_old_cycles_enabled();
  bool full = full_due && !start_cycle;

  size_t marked = 0;
  SweepTotals totals;
  if (!full || old_cycle_active(m)) {
    collect_minor(m, totals, &marked);
    totals.live_bytes += m.live_bytes_after_collection;  // the old generation stays
    m.young_runs.clear();
    // A cycle due while the last one still sweeps finishes that sweep first (the pacer keeps
    // little of it left), then starts if the old generation is still past the trigger.
    if (old_cycle_active(m)) old_cycle_after_minor(m, totals, /*complete=*/full || start_cycle);
    if (start_cycle && totals.live_bytes < pacer_trigger_bytes(m)) start_cycle = false;
    if (start_cycle) old_cycle_start(m, totals.live_bytes);
  }
  if (full) {
    totals.live_bytes = 0;  // the full collection counts every survivor again
    collect_full(m, totals, &marked);
  }
  m.young_runs.clear();

  count_sub(g_counters.bytes_in_use[USGC_GOROUTINE_PRIVATE], totals.freed_private_bytes);
  count_sub(g_counters.bytes_in_use[USGC_GOROUTINE_SHARED], totals.freed_shared_bytes);
  count_add(g_counters.bytes_freed_private, totals.freed_private_bytes);
  count_add(g_counters.bytes_freed_shared, totals.freed_shared_bytes);
  m.live_bytes_after_collection = totals.live_bytes;
  m.bytes_since_collection = 0;
  old_cycle_end_if_swept(m);
  if (full) {
    m.old_bytes_after_full = totals.live_bytes;
    m.full_budget_bytes = budget_after(totals.live_bytes, g_config.min_private_budget_bytes);
  }
  // The nursery: fixed when generational (a minor pause is bounded by it); without generations
  // every collection is full and the budget is USGC_GC_PERCENT of the live heap, as before.
  m.collection_budget_bytes =
      g_config.generational ? g_config.min_private_budget_bytes : m.full_budget_bytes;

  uint64_t pause_ns = kernel::monotonic_ns() - start_ns;
  // Unreachable since the mark; unmapping them is the goroutine's cost, not part of the pause.
  for (Block* b = totals.dead_large; b != nullptr;) {
    Block* next = b->next_in_heap;
    release_large(b);
    b = next;
  }
  uint64_t number = g_counters.private_collections.fetch_add(1, std::memory_order_relaxed) + 1;
  if (!full) count_add(g_counters.private_minor_collections, 1);
  g_counters.last_private_objects_marked.store(marked, std::memory_order_relaxed);
  record_pause(false, pause_ns);
  if (g_config.trace)
    trace_private_collection(number, m.goroutine_id, reason, !full, before_bytes, totals.live_bytes,
                             marked, pause_ns, totals.marked_at_ns - start_ns);
  if (g_config.verify) verify_private_heap(m);
  m.collecting = false;
}

}  // namespace usgc::gc
