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
//
// The preemption-deferral rule: the polls of a bounded pause (a minor collection, a cycle step)
// serve stops but not preemption, which the pause serves once when it ends (poll_for_safepoint).
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
#include "kernel_iface/thread_usage.hpp"
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
      : m_(m),
        stack_(m.mark_stack),
        young_(m.abi.heap_id),
        old_(old_id_of(m.abi.heap_id)),
        full_(full) {}

  void visit(void* object) {
    uint64_t* header = header_address(object);
    uint64_t value = *header;
    if (class_of(value) != Ownership::kPrivate || (value & kPrivateMark)) return;
    uint64_t owner = owner_of(value);
    if (owner != young_ && (!full_ || owner != old_)) return;
    *header = value | kPrivateMark;
    // A minor collection also marks its survivors in their block's cycle bitmap: its sweep finds
    // them (and the free slots between them) from the bitmap, without reading the nursery's slots
    // (sweep_young_run_by_bitmap). A large object has its own list.
    if (!full_) {
      Block* b = block_of(object);
      if (b->kind != BlockKind::kLarge) set_cycle_mark(m_, b, b->slot_index_of(header));
    }
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
  Mutator& m_;
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
  USGC_ASSERT(!old_cycle_active(m), "a full collection completes a running cycle first");
  // The last cycle's marks stay on its survivors, some of which this collection frees: a new
  // epoch makes every bitmap clear (the free-slot invariant, gc/private_sweep.hpp).
  renew_cycle_epoch(m);
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
        --m.small_blocks;
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
  totals.phases.nursery_swept_at_ns = kernel::monotonic_ns();
  Block* large = m.large_objects;
  m.large_objects = nullptr;
  sweep_large_list(m, large, /*full=*/true, /*cycle=*/nullptr, totals);
  Block* young_large = m.young_large;
  m.young_large = nullptr;
  sweep_large_list(m, young_large, /*full=*/true, /*cycle=*/nullptr, totals);
  totals.phases.large_swept_at_ns = kernel::monotonic_ns();
}

// ---- minor collections ----

// Outside an old-generation cycle's mark, a minor collection's bit is cleared by its sweep (a
// set bit was set by this collection, in the current epoch).
void clear_minor_mark(Block* b, uint32_t index) {
  b->cycle_mark_bits[index / 64] &= ~(uint64_t{1} << (index % 64));
  --b->cycle_marked_slots;
}

// The same for every bit of slots [first, limit) of a logged run, `marked` of them set: the run's
// only set bits are this collection's marks (the free-slot invariant, gc/private_sweep.hpp), so
// they are cleared a word at a time (bits outside the run kept) rather than one per survivor.
void clear_minor_marks(Block* b, uint32_t first, uint32_t limit, uint32_t marked) {
  if (marked == 0) return;
  for (uint32_t index = first; index < limit;) {
    const uint32_t word = index / 64;
    const uint32_t end = limit - word * 64 < 64 ? limit - word * 64 : 64;
    const uint32_t begin = index % 64;
    const uint64_t high = end == 64 ? ~uint64_t{0} : (uint64_t{1} << end) - 1;
    b->cycle_mark_bits[word] &= ~(high & (~uint64_t{0} << begin));
    index = word * 64 + end;
  }
  b->cycle_marked_slots -= marked;
}

// Sweeps one logged run [begin, end) of block b, slot by slot (b holds an object published in
// place: its header, not the bitmap, says whether it is shared): promotes the marked young objects,
// frees the unmarked ones, and gives the run's free stretches back to the block as free runs.
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
  totals.phases.slots_swept += static_cast<size_t>(end - begin) / slot_bytes;
  for (char* slot = begin; slot < end; slot += slot_bytes, ++index) {
    uint64_t* word = reinterpret_cast<uint64_t*>(slot);
    uint64_t header = *word;
    bool is_free = header == 0;
    if (!is_free) {
      if (class_of(header) == Ownership::kPrivate) {
        USGC_ASSERT(owner_of(header) == young, "a logged run holds only young private objects");
        if (header & kPrivateMark) {
          *word = promoted(header, old_id);
          // Marked in the bitmap too (PrivateMarker::visit): black while a cycle marks.
          if (!black) clear_minor_mark(b, index);
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

// Sweeps one logged run [begin, end) of block b (objects made in [begin, used_end)), which holds
// no object published in place
// (Block::holds_published clear: every object in the run is young and private), from the cycle
// bitmap alone: the minor collection's marks (PrivateMarker::visit) are the run's only set bits
// (its slots were free when the run was taken, and the old-generation cycle marks only old
// objects). A set bit is a survivor: promoted (its header is the only slot word written); the
// runs of clear bits go back to the block as *dirty* free runs (gc/block.hpp, FreeRun): the dead
// objects' bytes stay where they are, zeroed in bulk when the run is handed out again
// (RunCache::take_run), outside any pause. No dead slot is read or written. While an
// old-generation cycle marks, the survivors keep their bits (promoted black); otherwise the bits
// are cleared again, so the bitmap holds only a cycle's marks between collections.
// Does not poll: a shared collection at a poll reads the logged runs as young objects, and a
// dirty run's stale bytes and run heads must not be read as headers (collect_minor clears the log
// before its next poll).
void sweep_young_run_by_bitmap(Mutator& m, Block* b, char* begin, char* used_end, char* end,
                               SweepTotals& totals) {
  const uint32_t slot_bytes = b->slot_bytes;
  const uint64_t old_id = old_id_of(m.abi.heap_id);
  const bool black = old_cycle_phase(m) == OldCyclePhase::kMarking;
  const uint32_t first = b->slot_index_of(begin);
  // Objects were made in [first, used); [used, limit) was never bumped (zero, not counted in use).
  const uint32_t used =
      first + static_cast<uint32_t>(static_cast<size_t>(used_end - begin) / slot_bytes);
  const uint32_t limit =
      first + static_cast<uint32_t>(static_cast<size_t>(end - begin) / slot_bytes);
  // A bitmap of another epoch: no survivor in the block (none was marked since its renewal).
  static const uint64_t kNoMarks[kMaxSlotsPerBlock / 64 + 1] = {};
  const uint64_t* bits = b->cycle_epoch == m.old_cycle_epoch ? b->cycle_mark_bits : kNoMarks;
  uint32_t live = 0;
  uint32_t index = first;
  while (index < limit) {
    uint32_t free_begin = find_bit(bits, index, limit, false);
    // Survivors [index, free_begin): promote them.
    for (uint32_t i = index; i < free_begin; ++i) {
      uint64_t* word = reinterpret_cast<uint64_t*>(b->slot_at(i));
      USGC_ASSERT(class_of(*word) == Ownership::kPrivate && owner_of(*word) == m.abi.heap_id &&
                      (*word & kPrivateMark),
                  "free-slot invariant (gc/private_sweep.hpp): a set cycle bit in a logged run "
                  "is a marked young object, slot %u of block %p has header 0x%lx",
                  i, static_cast<void*>(b), static_cast<unsigned long>(*word));
      *word = promoted(*word, old_id);
    }
    live += free_begin - index;
    if (free_begin == limit) break;
    uint32_t free_end = find_bit(bits, free_begin, limit, true);
    auto* run = reinterpret_cast<FreeRun*>(b->slot_at(free_begin));
    run->end = dirty_run_end(free_end == limit ? end : b->slot_at(free_end));
    run->next = b->free_runs;
    b->free_runs = run;
    uint32_t dead_end = free_end < used ? free_end : used;
    if (dead_end > free_begin)
      totals.freed_private_bytes += size_t{dead_end - free_begin} * slot_bytes;
    index = free_end;
  }
  if (!black) clear_minor_marks(b, first, limit, live);
  totals.live_bytes += size_t{live} * slot_bytes;
  totals.phases.bitmap_swept_slots += limit - first;
  b->live_slots += live;
  if (b->free_runs != nullptr && !b->on_partial_list) {
    b->next_partial = m.partial[b->size_class];
    m.partial[b->size_class] = b;
    b->on_partial_list = true;
  }
  pause_probe_checkpoint(m.pause_probe);  // not a poll (see above): only the clock
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

  // Sweep the nursery only (the logs are final; see collect_full). First the runs in blocks that
  // hold a published object, slot by slot (their headers say which objects are shared: the
  // shared-liveness rule), polling between runs; then every other run from the bitmap, without
  // a poll until the log is cleared (sweep_young_run_by_bitmap says why).
  for (size_t i = 0; i + 2 < m.young_runs.size(); i += 3) {
    char* begin = static_cast<char*>(m.young_runs.at(i));
    if (!block_of(begin)->holds_published) continue;
    sweep_young_run(m, begin, static_cast<char*>(m.young_runs.at(i + 2)), totals);
    poll_for_safepoint();
  }
  for (size_t i = 0; i + 2 < m.young_runs.size(); i += 3) {
    char* begin = static_cast<char*>(m.young_runs.at(i));
    Block* b = block_of(begin);
    if (b->holds_published) continue;
    sweep_young_run_by_bitmap(m, b, begin, static_cast<char*>(m.young_runs.at(i + 1)),
                              static_cast<char*>(m.young_runs.at(i + 2)), totals);
  }
  m.young_runs.clear();
  totals.phases.nursery_swept_at_ns = kernel::monotonic_ns();
  Block* young_large = m.young_large;
  m.young_large = nullptr;
  sweep_large_list(m, young_large, /*full=*/false,
                   /*cycle=*/old_cycle_phase(m) == OldCyclePhase::kMarking ? &m : nullptr, totals);
  totals.phases.large_swept_at_ns = kernel::monotonic_ns();
}

}  // namespace

void poll_for_safepoint() {
  Mutator* m = current_mutator();
  if (m != nullptr) pause_probe_checkpoint(m->pause_probe);
  safepoint::SafepointSlot* slot = safepoint::current_slot();
  if (slot == nullptr) return;
  // A bounded pause does not yield to the scheduler (the preemption-deferral rule,
  // Mutator::pause_defers_preemption): a yield here put the scheduler's work, a sleep of the
  // thread and whatever ran meanwhile inside the pause (up to 54 ms on a loaded machine; another
  // goroutine's whole time slice with two on a P). The pause yields when it ends instead
  // (serve_deferred_preemption). Stops are served at once, as always.
  const bool preemptible = m == nullptr || !m->pause_defers_preemption;
  const bool preempt = slot->preempt_requested.load(std::memory_order_relaxed) != 0;
  if (preempt && !preemptible) m->preemption_deferred = true;
  if (safepoint::safepoint_requested(slot) || (preemptible && preempt)) {
    safepoint::reach_safepoint(slot, preemptible);
    if (m != nullptr) pause_probe_skip(m->pause_probe);  // the stop is not the pause's work
  }
}

void serve_deferred_preemption(Mutator& m) {
  m.pause_defers_preemption = false;
  if (!m.preemption_deferred) return;
  m.preemption_deferred = false;
  poll_for_safepoint();
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
  // With USGC_TRACE=gc, what the kernel charged the thread with during the pause (outside the
  // measured interval: a few system calls).
  kernel::ThreadUsage usage_before;
  if (g_config.trace) {
    kernel::Result<kernel::ThreadUsage> usage = kernel::read_thread_usage();
    if (usage.ok()) usage_before = usage.value();
  }
  uint64_t start_ns = kernel::monotonic_ns();
  const bool probing = g_config.trace && pause_probe_begin(m.pause_probe, start_ns);
  retire_all_private_runs(m);
  if (m.bytes_since_collection > m.largest_nursery_bytes)
    m.largest_nursery_bytes = m.bytes_since_collection;
  size_t before_bytes = m.live_bytes_after_collection + m.bytes_since_collection;
  bool full_due = full_requested || private_full_collection_due(m);
  // A full collection the pacer asks for becomes an incremental cycle (gc/private_old_cycle.hpp),
  // started after this collection's minor one; requested ones (explicit, heap limit) complete a
  // running cycle, then collect in one pause.
  bool start_cycle = full_due && !full_requested && incremental_old_cycles_enabled();
  bool full = full_due && !start_cycle;
  // A minor collection (with its bounded share of the cycle's work) is a bounded pause: its polls
  // defer preemption. A one-pause full collection is not bounded: it may still yield at a poll.
  m.pause_defers_preemption = !full;

  size_t marked = 0;
  SweepTotals totals;
  if (!full || old_cycle_active(m)) {
    collect_minor(m, totals, &marked);
    totals.live_bytes += m.live_bytes_after_collection;  // the old generation stays
    m.young_runs.clear();
    // A cycle due while the last one still sweeps waits for that sweep (a bounded step here, and
    // at every refill: gc/private_pacer.hpp), then starts if the old generation is still past
    // the trigger. (A requested full collection completes the cycle: it is one pause anyway.)
    uint64_t cycle_begin_ns = kernel::monotonic_ns();
    if (old_cycle_active(m)) old_cycle_after_minor(m, totals, /*complete=*/full);
    if (start_cycle && (old_cycle_active(m) || totals.live_bytes < pacer_trigger_bytes(m)))
      start_cycle = false;
    if (start_cycle) {
      uint64_t start_begin_ns = kernel::monotonic_ns();
      old_cycle_start(m, totals.live_bytes);
      totals.phases.cycle_start_ns = kernel::monotonic_ns() - start_begin_ns;
    }
    totals.phases.cycle_ns = kernel::monotonic_ns() - cycle_begin_ns;
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
  // The nursery sweep's counts, once a collection: added per logged run (a run can be a few
  // slots), they were a contended atomic on a line every collecting goroutine writes, the hottest
  // instruction of the processData demo's collections (perf, 2026-12-06).
  count_add(g_counters.private_nursery_slots_read, totals.phases.slots_swept);
  count_add(g_counters.private_nursery_slots_bitmap_swept, totals.phases.bitmap_swept_slots);
  m.live_bytes_after_collection = totals.live_bytes;
  const size_t nursery_bytes = m.bytes_since_collection;
  m.bytes_since_collection = 0;
  old_cycle_end_if_swept(m);
  if (full) {
    m.old_bytes_after_full = totals.live_bytes;
    m.full_budget_bytes = budget_after(totals.live_bytes, g_config.min_private_budget_bytes);
  }
  // The nursery when generational: sized by the survival of the last minor collection (a minor
  // pause is its survivors' marking: gc/private_pacer.hpp, "The nursery"), the configured one
  // after a full collection; without generations every collection is full and the budget is
  // USGC_GC_PERCENT of the live heap, as before.
  if (!g_config.generational)
    m.collection_budget_bytes = m.full_budget_bytes;
  else if (full)
    m.collection_budget_bytes = g_config.min_private_budget_bytes;
  else
    m.collection_budget_bytes = nursery_bytes_after_minor(
        nursery_bytes, marked, m.collection_budget_bytes, g_config.min_private_budget_bytes);

  if (totals.phases.cycle_blocks_swept > m.most_cycle_blocks_in_collection)
    m.most_cycle_blocks_in_collection = totals.phases.cycle_blocks_swept;
  const uint64_t end_ns = kernel::monotonic_ns();
  uint64_t pause_ns = end_ns - start_ns;
  if (probing) pause_probe_end(m.pause_probe, end_ns);
  kernel::ThreadUsage usage_in_pause;
  if (g_config.trace) {
    kernel::Result<kernel::ThreadUsage> usage = kernel::read_thread_usage();
    if (usage.ok()) usage_in_pause = kernel::thread_usage_delta(usage_before, usage.value());
  }
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
  if (g_config.trace) {
    PrivateTrace t;
    t.number = number;
    t.goroutine_id = m.goroutine_id;
    t.reason = reason;
    t.minor = !full;
    t.before_bytes = before_bytes;
    t.after_bytes = totals.live_bytes;
    t.objects_marked = marked;
    t.pause_ns = pause_ns;
    t.mark_ns = totals.marked_at_ns - start_ns;
    const PausePhases& p = totals.phases;
    if (p.nursery_swept_at_ns >= totals.marked_at_ns)
      t.sweep_ns = p.nursery_swept_at_ns - totals.marked_at_ns;
    if (p.large_swept_at_ns >= p.nursery_swept_at_ns)
      t.large_ns = p.large_swept_at_ns - p.nursery_swept_at_ns;
    t.cycle_ns = p.cycle_ns;
    t.cycle_mark_ns = p.cycle_mark_ns;
    t.cycle_terminate_ns = p.cycle_terminate_ns;
    t.cycle_sweep_ns = p.cycle_sweep_ns;
    t.cycle_start_ns = p.cycle_start_ns;
    t.slots_swept = p.slots_swept;
    t.bitmap_swept_slots = p.bitmap_swept_slots;
    t.cycle_blocks_swept = p.cycle_blocks_swept;
    t.usage = usage_in_pause;
    t.longest_stretch_ns = m.pause_probe.longest_ns;
    t.checkpoints = m.pause_probe.checkpoints;
    trace_private_collection(t);
  }
  if (g_config.verify) verify_private_heap(m);
  m.collecting = false;
  serve_deferred_preemption(m);  // the pause is over: a yield its polls deferred happens now
}

}  // namespace usgc::gc
