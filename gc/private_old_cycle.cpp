// gc/private_old_cycle.cpp — the incremental old-generation cycle of a private heap (design,
// invariants and pacing in gc/private_old_cycle.hpp). Runs on the owning goroutine only: at run
// refills (allocation slow path) and inside its private collections; never on a fast path.
#include "gc/private_old_cycle.hpp"

#include <cstring>

#include "gc/allocation.hpp"
#include "gc/gc_state.hpp"
#include "gc/private_pacer.hpp"
#include "gc/trace.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/thread_usage.hpp"

namespace usgc::gc {
namespace {

constexpr size_t kPollEveryObjects = 1024;
constexpr uint32_t kLazySweepBlocks = 8;
constexpr size_t kAssumedObjectBytes = 32;  // the first cycle's estimate of objects per byte

void set_phase(Mutator& m, OldCyclePhase phase) {
  m.old_cycle_phase = static_cast<uint8_t>(phase);
  // While the cycle marks, every store into an old object takes the slow path (its deletion
  // barrier, old_cycle_shade); otherwise the barrier stores old or null values inline.
  m.abi.old_private_key = old_private_key_of(m.abi.heap_id, phase == OldCyclePhase::kMarking);
}

// Traces up to `budget` grey objects (all of them: SIZE_MAX); *traced (optional) counts them.
// True when the grey stack is empty.
bool mark_some(Mutator& m, size_t budget, size_t* traced = nullptr) {
  const uint64_t old_id = old_id_of(m.abi.heap_id);
  size_t since_poll = 0;
  size_t done = 0;
  for (; done < budget && !m.old_grey.empty(); ++done) {
    void* object = m.old_grey.pop();
    uint64_t header = header_of(object);
    // Published since it was greyed: it and its closure are shared now.
    if (class_of(header) != Ownership::kPrivate || owner_of(header) != old_id) continue;
    // Young children are skipped by grey (not the cycle's business).
    const bool refers_to_shared = trace_private_children(
        object, header, [&](void* child) { old_cycle_grey(m, old_id, child); });
    // Keep remembered_shared complete and exact for what is traced (the header comment).
    uint64_t* word = header_address(object);
    if (refers_to_shared) {
      if (!(*word & kRememberedShared)) {
        *word |= kRememberedShared;
        m.remembered_shared.push(object);
      }
      m.old_traced_shared.push(object);
    } else if (*word & kRememberedShared) {
      // Written only when set: an unconditional store dirtied the header line of every object the
      // cycle traced (the whole live old generation written back to memory each cycle).
      *word &= ~kRememberedShared;
    }
    if (++since_poll >= kPollEveryObjects) {
      since_poll = 0;
      poll_for_safepoint();
    }
  }
  if (traced != nullptr) *traced = done;
  return m.old_grey.empty();
}

// A step's clock: when it started and, with USGC_TRACE=gc, what the kernel had charged the thread
// with then (read before the start: not part of the step's time) and the step's stretches
// (gc/pause_probe.hpp). A step is a bounded pause: while the clock exists its polls serve stops
// but defer preemption (Mutator::pause_defers_preemption).
class StepClock {
 public:
  kernel::ThreadUsage usage;
  uint64_t start_ns;
  bool probing = false;

  explicit StepClock(Mutator& m) : m_(m) {
    if (g_config.trace) {
      kernel::Result<kernel::ThreadUsage> read = kernel::read_thread_usage();
      if (read.ok()) usage = read.value();
    }
    start_ns = kernel::monotonic_ns();
    probing = g_config.trace && pause_probe_begin(m.pause_probe, start_ns);
    m.pause_defers_preemption = true;
  }
  // A step that did no work is not recorded (record_step): its probe stops here. The step is
  // over: a yield its polls deferred happens now.
  ~StepClock() {
    if (probing) pause_probe_end(m_.pause_probe, kernel::monotonic_ns());
    serve_deferred_preemption(m_);
  }
  StepClock(const StepClock&) = delete;
  StepClock& operator=(const StepClock&) = delete;

 private:
  Mutator& m_;
};

// A step of the cycle outside a collection (at a refill, or before parking) is a pause: counted,
// the longest of each kind kept for the trace's end-of-cycle line, and with USGC_TRACE=gc one
// line of its own. where: "refill", "lazy" (a refill's sweep for its class) or "idle".
void record_step(Mutator& m, const StepClock& clock, bool slice, size_t work, const char* where) {
  const uint64_t end_ns = kernel::monotonic_ns();
  const uint64_t step_ns = end_ns - clock.start_ns;
  if (clock.probing) pause_probe_end(m.pause_probe, end_ns);
  m.old_cycle_work_ns += step_ns;
  record_pause(false, step_ns);
  if (slice && step_ns > m.old_cycle_longest_slice_ns) {
    m.old_cycle_longest_slice_ns = step_ns;
    m.old_cycle_longest_slice_objects = work;
  } else if (!slice && step_ns > m.old_cycle_longest_sweep_ns) {
    m.old_cycle_longest_sweep_ns = step_ns;
    m.old_cycle_longest_sweep_blocks = static_cast<uint32_t>(work);
  }
  if (g_config.trace) {
    PrivateStepTrace t;
    t.goroutine_id = m.goroutine_id;
    t.where = where;
    t.slice = slice;
    t.work = work;
    t.pause_ns = step_ns;
    t.longest_stretch_ns = m.pause_probe.longest_ns;
    t.checkpoints = m.pause_probe.checkpoints;
    kernel::Result<kernel::ThreadUsage> read = kernel::read_thread_usage();
    if (read.ok()) t.usage = kernel::thread_usage_delta(clock.usage, read.value());
    trace_private_step(t);
  }
}

// The objects that pass `keep` among log[from..), each once, in place of the log's contents
// (kOldCycleListed deduplicates; extra entries are appended from `extra` first).
template <typename Keep>
void rebuild_log(MarkStack& log, size_t from, const MarkStack* extra, Keep&& keep) {
  MarkStack kept;
  auto consider = [&](void* object) {
    uint64_t* header = header_address(object);
    if (!keep(*header) || (*header & kOldCycleListed)) return;
    *header |= kOldCycleListed;
    kept.push(object);
  };
  if (extra != nullptr)
    for (size_t i = 0; i < extra->size(); ++i) consider(extra->at(i));
  for (size_t i = from; i < log.size(); ++i) consider(log.at(i));
  log.clear();
  for (size_t i = 0; i < kept.size(); ++i) {
    *header_address(kept.at(i)) &= ~kOldCycleListed;
    log.push(kept.at(i));
  }
}

// The mark is complete (grey empty) and the nursery empty: rebuild the logs and hand every block
// and large object to the lazy sweep, unread.
void terminate_mark(Mutator& m, SweepTotals& totals) {
  const uint64_t old_id = old_id_of(m.abi.heap_id);
  // The pacer (gc/private_pacer.hpp): what the trace marked is the next cycle's base; the old
  // growth while it marked calibrates the next trigger.
  size_t grown = totals.live_bytes > m.old_cycle_start_old_bytes
                     ? totals.live_bytes - m.old_cycle_start_old_bytes
                     : 0;
  pacer_note_promotion(m, grown, m.run_bytes_taken - m.old_cycle_start_bytes);
  m.old_bytes_after_full = m.old_cycle_marked_bytes;
  m.full_budget_bytes = budget_after(m.old_cycle_marked_bytes, g_config.min_private_budget_bytes);
  m.old_cycle_expected_objects = m.old_cycle_marked + 1;
  count_add(g_counters.private_old_objects_marked, m.old_cycle_marked);
  rebuild_log(m.remembered_shared, m.remembered_shared_at_start, &m.old_traced_shared,
              [&](uint64_t header) {
                return class_of(header) == Ownership::kPrivate && owner_of(header) == old_id &&
                       (header & kRememberedShared);
              });
  m.old_traced_shared.release();
  // published_old: only what was published after the start can have an untraced old referrer.
  rebuild_log(m.published_old, m.published_old_at_start, nullptr,
              [](uint64_t header) { return is_shared_class(header); });
  m.old_grey.release();

  // The sweep is handed every block and large object as it is, none of them read here: the
  // termination costs the size classes, not the heap (a walk over the blocks here, to find the
  // dead ones, was 0.45 ms of one minor pause at binary-trees depth 20). The lazy sweep decides
  // each one when it reaches it (sweep_one: a block the cycle marked nothing in is dead, its
  // slots unread). Every run is retired and the nursery swept, so a block's live_slots are
  // exactly its objects; an unswept block gets no run, so they stay so until it is swept. The
  // partial lists are dropped without a walk (sweep_one clears on_partial_list).
  for (uint32_t c = 0; c < kSizeClassCount; ++c) {
    USGC_ASSERT(m.current[c] == nullptr, "the cycle terminates with every run retired");
    USGC_ASSERT(m.unswept[c] == nullptr, "the last cycle's sweep is over");
    m.partial[c] = nullptr;
    m.unswept[c] = m.blocks[c];
    m.blocks[c] = nullptr;
  }
  m.unswept_blocks = m.small_blocks;
  m.unswept_large = m.large_objects;
  m.large_objects = nullptr;
  m.sweep_blocks_total = m.unswept_blocks;
  m.sweep_blocks_done = 0;
  m.sweep_start_bytes = m.run_bytes_taken;
  set_phase(m, OldCyclePhase::kSweeping);
}

// Whether block b holds no live object: the cycle marked none of its objects (traced, shaded or
// promoted black: Block::cycle_marked_slots never under-counts) and none was published in place.
bool block_is_dead(const Mutator& m, const Block* b) {
  return !(b->cycle_epoch == m.old_cycle_epoch && b->cycle_marked_slots != 0) &&
         !b->holds_published;
}

// Frees every object of dead block b without reading a slot: the whole block becomes one dirty
// free run (its old runs' heads lie in it), zeroed in bulk when it is handed out or released.
void free_dead_block(Block* b, SweepTotals& swept) {
  swept.freed_private_bytes += size_t{b->live_slots} * b->slot_bytes;
  auto* run = reinterpret_cast<FreeRun*>(b->slots_begin());
  run->end = dirty_run_end(b->slots_end());
  run->next = nullptr;
  b->free_runs = run;
  b->live_slots = 0;
  b->cycle_marked_slots = 0;
  count_add(g_counters.private_dead_blocks_freed, 1);
}

// A sweep's freed bytes leave *live_bytes, and go to *totals (inside a collection, which settles
// them when it ends) or straight to the counters.
void account_freed(Mutator& m, const SweepTotals& swept, size_t* live_bytes, SweepTotals* totals) {
  size_t freed = swept.freed_private_bytes + swept.freed_shared_bytes;
  *live_bytes -= freed < *live_bytes ? freed : *live_bytes;
  m.old_cycle_freed_bytes += swept.freed_private_bytes;
  if (totals != nullptr) {
    totals->freed_private_bytes += swept.freed_private_bytes;
    totals->freed_shared_bytes += swept.freed_shared_bytes;
  } else {
    count_sub(g_counters.bytes_in_use[USGC_GOROUTINE_PRIVATE], swept.freed_private_bytes);
    count_sub(g_counters.bytes_in_use[USGC_GOROUTINE_SHARED], swept.freed_shared_bytes);
    count_add(g_counters.bytes_freed_private, swept.freed_private_bytes);
    count_add(g_counters.bytes_freed_shared, swept.freed_shared_bytes);
  }
}

// Sweeps the first unswept large object: back on large_objects, or dead (its bytes accounted as
// account_freed says, its mapping onto *dead_large, unmapped after the pause).
void sweep_one_large(Mutator& m, size_t* live_bytes, SweepTotals* totals, Block** dead_large) {
  Block* b = m.unswept_large;
  m.unswept_large = b->next_in_heap;
  b->next_in_heap = nullptr;
  SweepTotals swept;
  sweep_large_list(m, b, /*full=*/true, /*cycle=*/&m, swept);
  account_freed(m, swept, live_bytes, totals);
  if (swept.dead_large != nullptr) {
    swept.dead_large->next_in_heap = *dead_large;
    *dead_large = swept.dead_large;
  }
}

// Unmaps the dead large objects a sweep step outside a collection found (after its pause).
void release_dead_large(Block* list) {
  while (Block* b = list) {
    list = b->next_in_heap;
    release_large(b);
  }
}

// Sweeps the first unswept block of class c: a dead one is freed whole (free_dead_block), one
// without a published object from the bitmap, one with from its headers. It goes back on
// blocks[c] (and partial[c] with free slots, then true), or, empty, to the pool — unless
// for_refill: a refill of c takes it whole (its runs zeroed when handed out, not here).
bool sweep_one(Mutator& m, uint32_t c, size_t* live_bytes, SweepTotals* totals, bool for_refill) {
  Block* b = m.unswept[c];
  m.unswept[c] = b->next_in_heap;
  if (m.unswept_blocks != 0) --m.unswept_blocks;
  ++m.sweep_blocks_done;
  b->on_partial_list = false;  // the termination dropped the partial lists unwalked
  SweepTotals swept;
  // Without a published object the bitmap says everything; with one, its header must be read.
  if (block_is_dead(m, b))
    free_dead_block(b, swept);
  else if (b->holds_published)
    sweep_private_block(b, old_id_of(m.abi.heap_id), &m, swept);
  else
    sweep_block_by_bitmap(m, b, swept);
  account_freed(m, swept, live_bytes, totals);
  if (b->live_slots == 0 && !for_refill) {
    forget_free_runs(b);
    b->next_in_heap = nullptr;
    release_block(b);
    --m.small_blocks;
    return false;
  }
  b->next_in_heap = m.blocks[c];
  m.blocks[c] = b;
  if (b->free_runs == nullptr) return false;
  b->next_partial = m.partial[c];
  m.partial[c] = b;
  b->on_partial_list = true;
  return true;
}

// Sweeps up to `limit` unswept large objects and blocks (polling between blocks). Freed bytes go
// to *totals, or straight to the counters (and m.live_bytes_after_collection) without it; dead
// large objects to totals->dead_large, or to *dead_large without totals. Returns the count.
uint32_t sweep_some(Mutator& m, uint32_t limit, SweepTotals* totals, Block** dead_large) {
  const uint32_t asked = limit;
  size_t* live_bytes = totals != nullptr ? &totals->live_bytes : &m.live_bytes_after_collection;
  Block** dead = totals != nullptr ? &totals->dead_large : dead_large;
  for (; limit > 0 && m.unswept_large != nullptr; --limit)
    sweep_one_large(m, live_bytes, totals, dead);
  for (uint32_t c = 0; c < kSizeClassCount && limit > 0; ++c) {
    while (m.unswept[c] != nullptr && limit > 0) {
      sweep_one(m, c, live_bytes, totals, /*for_refill=*/false);
      --limit;
      poll_for_safepoint();
    }
  }
  return asked - limit;
}

// Whether the cycle's sweep has reached every block and large object.
bool sweep_done(const Mutator& m) {
  if (m.unswept_large != nullptr) return false;
  for (uint32_t c = 0; c < kSizeClassCount; ++c)
    if (m.unswept[c] != nullptr) return false;
  return true;
}

// The sweep is over (no dead or unswept block left): the cycle ends.
void end_cycle(Mutator& m, size_t live_bytes) {
  set_phase(m, OldCyclePhase::kIdle);
  if (g_config.trace)
    trace_private_old_cycle({m.goroutine_id, live_bytes, m.old_cycle_marked,
                             m.old_cycle_freed_bytes, m.old_cycle_work_ns,
                             kernel::monotonic_ns() - m.old_cycle_start_ns,
                             m.old_cycle_longest_slice_ns, m.old_cycle_longest_slice_objects,
                             m.old_cycle_longest_sweep_ns, m.old_cycle_longest_sweep_blocks});
}

}  // namespace

bool incremental_old_cycles_enabled() {
  return g_config.incremental_private && g_config.generational;
}

void old_cycle_start(Mutator& m, size_t old_bytes) {
  USGC_ASSERT(!old_cycle_active(m), "one old-generation cycle at a time");
  USGC_ASSERT(m.young_runs.empty() && m.young_large == nullptr,
              "the cycle starts with an empty nursery");
  set_phase(m, OldCyclePhase::kMarking);
  m.old_cycle_marked = 0;
  m.old_cycle_marked_bytes = 0;
  m.old_cycle_freed_bytes = 0;
  m.old_cycle_work_ns = 0;
  m.old_cycle_longest_slice_ns = 0;
  m.old_cycle_longest_slice_objects = 0;
  m.old_cycle_longest_sweep_ns = 0;
  m.old_cycle_longest_sweep_blocks = 0;
  m.old_cycle_start_ns = kernel::monotonic_ns();
  m.old_cycle_start_bytes = m.run_bytes_taken;
  m.old_cycle_start_old_bytes = old_bytes;
  renew_cycle_epoch(m);  // every bitmap stale: the cycle starts with no mark
  if (m.old_cycle_expected_objects == 0)
    m.old_cycle_expected_objects = old_bytes / kAssumedObjectBytes + 1;
  m.remembered_shared_at_start = m.remembered_shared.size();
  m.published_old_at_start = m.published_old.size();
  const uint64_t old_id = old_id_of(m.abi.heap_id);
  for_each_mutator_root(m, [&](void** slot) { old_cycle_grey(m, old_id, *slot); });
}

void old_cycle_refill_step(Mutator& m) {
  if (m.collecting) return;
  OldCyclePhase phase = old_cycle_phase(m);
  if (phase == OldCyclePhase::kMarking) {
    if (!m.old_grey.empty()) {
      StepClock clock(m);
      size_t traced = 0;
      mark_some(m, pacer_mark_slice_objects(m, m.old_cycle_expected_objects, m.old_grey.size()),
                &traced);
      record_step(m, clock, /*slice=*/true, traced, "refill");
    }
    // The mark is done: end it now with a minor collection (its pause is bounded by the nursery
    // in use), not when the nursery fills, so the objects promoted black meanwhile stay few.
    if (m.old_grey.empty()) collect_private(m, "old-cycle");
    return;
  }
  if (phase != OldCyclePhase::kSweeping) return;
  StepClock clock(m);
  Block* dead_large = nullptr;
  uint32_t swept = sweep_some(m, pacer_sweep_step_blocks(m), nullptr, &dead_large);
  record_step(m, clock, /*slice=*/false, swept, "refill");
  release_dead_large(dead_large);  // unreachable since the mark: after the pause
  old_cycle_end_if_swept(m);
}

bool old_cycle_sweep_for_refill(Mutator& m, uint32_t c) {
  if (old_cycle_phase(m) != OldCyclePhase::kSweeping) return false;
  // A used-up nursery is collected first (the refill's next step): blocks handed out here would
  // let it grow past its budget, and the minor pause with it.
  if (g_config.gc_percent >= 0 && m.bytes_since_collection >= m.collection_budget_bytes)
    return false;
  StepClock clock(m);
  bool found = false;
  uint32_t swept = 0;
  // A block emptied here (a dead one: no slot read) stays with the class whole, with no trip
  // through the pool; its run is zeroed when handed out.
  for (; swept < kLazySweepBlocks && m.unswept[c] != nullptr && !found; ++swept)
    found = sweep_one(m, c, &m.live_bytes_after_collection, nullptr, /*for_refill=*/true);
  if (swept != 0) record_step(m, clock, /*slice=*/false, swept, "lazy");  // no work, no pause
  old_cycle_end_if_swept(m);
  return found;
}

void old_cycle_after_minor(Mutator& m, SweepTotals& totals, bool complete) {
  PausePhases& phases = totals.phases;
  if (old_cycle_phase(m) == OldCyclePhase::kMarking) {
    uint64_t begin_ns = kernel::monotonic_ns();
    if (complete) mark_some(m, SIZE_MAX);
    uint64_t marked_ns = kernel::monotonic_ns();
    phases.cycle_mark_ns += marked_ns - begin_ns;
    if (!m.old_grey.empty()) return;
    terminate_mark(m, totals);
    phases.cycle_terminate_ns += kernel::monotonic_ns() - marked_ns;
    if (!complete) return;
  }
  if (old_cycle_phase(m) != OldCyclePhase::kSweeping) return;
  uint64_t begin_ns = kernel::monotonic_ns();
  phases.cycle_blocks_swept +=
      sweep_some(m, complete ? UINT32_MAX : kSweepBlocksPerMinor, &totals, nullptr);
  phases.cycle_sweep_ns += kernel::monotonic_ns() - begin_ns;
  if (sweep_done(m)) end_cycle(m, totals.live_bytes);
}

void old_cycle_end_if_swept(Mutator& m) {
  if (old_cycle_phase(m) != OldCyclePhase::kSweeping || !sweep_done(m)) return;
  end_cycle(m, m.live_bytes_after_collection);
}

bool old_cycle_idle_work_pending() {
  Mutator* m = current_mutator();
  // Collection off (USGC_GC_PERCENT=off): no cycle is due, whatever the heap.
  if (m == nullptr || m->collecting || !incremental_old_cycles_enabled() || g_config.gc_percent < 0)
    return false;
  return old_cycle_active(*m) || m->live_bytes_after_collection >= pacer_trigger_bytes(*m);
}

void old_cycle_finish_before_waiting() {
  if (!old_cycle_idle_work_pending()) return;
  Mutator& m = *current_mutator();
  if (!old_cycle_active(m)) collect_private(m, "idle");  // starts the due cycle
  if (old_cycle_phase(m) == OldCyclePhase::kMarking) {
    uint64_t start_ns = kernel::monotonic_ns();
    mark_some(m, SIZE_MAX);
    m.old_cycle_work_ns += kernel::monotonic_ns() - start_ns;
    collect_private(m, "idle");  // ends the mark
  }
  if (old_cycle_phase(m) == OldCyclePhase::kSweeping) {
    uint64_t start_ns = kernel::monotonic_ns();
    Block* dead_large = nullptr;
    sweep_some(m, UINT32_MAX, nullptr, &dead_large);
    release_dead_large(dead_large);
    m.old_cycle_work_ns += kernel::monotonic_ns() - start_ns;
    old_cycle_end_if_swept(m);
  }
}

bool old_cycle_step_before_parking() {
  if (!old_cycle_idle_work_pending()) return false;
  Mutator& m = *current_mutator();
  count_add(g_counters.private_idle_steps, 1);
  switch (old_cycle_phase(m)) {
    case OldCyclePhase::kIdle:
      collect_private(m, "idle");  // starts the due cycle after its minor collection
      break;
    case OldCyclePhase::kMarking:
      if (!m.old_grey.empty()) {
        StepClock clock(m);
        size_t traced = 0;
        mark_some(m, kMaxSliceObjects, &traced);
        record_step(m, clock, /*slice=*/true, traced, "idle");
      }
      if (m.old_grey.empty()) collect_private(m, "idle");  // ends the mark
      break;
    case OldCyclePhase::kSweeping: {
      StepClock clock(m);
      Block* dead_large = nullptr;
      uint32_t swept = sweep_some(m, kMaxSweepBlocksPerStep, nullptr, &dead_large);
      record_step(m, clock, /*slice=*/false, swept, "idle");
      release_dead_large(dead_large);
      old_cycle_end_if_swept(m);
      break;
    }
  }
  return true;
}

void old_cycle_abandon(Mutator& m) {
  for (uint32_t c = 0; c < kSizeClassCount; ++c) {
    while (Block* b = m.unswept[c]) {
      m.unswept[c] = b->next_in_heap;
      b->next_in_heap = m.blocks[c];
      m.blocks[c] = b;
    }
  }
  // Large objects the sweep has not reached join the others: the exit frees them by one rule.
  while (Block* b = m.unswept_large) {
    m.unswept_large = b->next_in_heap;
    b->next_in_heap = m.large_objects;
    m.large_objects = b;
  }
  m.unswept_blocks = 0;
  m.old_grey.release();
  m.old_traced_shared.release();
  m.old_cycle_expected_objects = 0;
  m.pacer_promotion_permille = 1000;
  set_phase(m, OldCyclePhase::kIdle);
}

}  // namespace usgc::gc
