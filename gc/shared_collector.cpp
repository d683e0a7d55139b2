// gc/shared_collector.cpp — the coordinated shared collection: a short stop to start, marking
// concurrent with the goroutines (gc/concurrent_mark.hpp), a short stop to finish, then the sweep
// with the world running.
//
// Sequence (one collection at a time, g_collection.collection_lock; the collector runs as a native
// call while it marks (step 3), so it holds no P then and no stop waits for it):
//   1. finish sweeping the previous cycle's blocks (a mark must never meet an unswept block: the
//      sweeper reads the bitmap the mark is rewriting);
//   2. the start stop: full marks start a new mark epoch, which clears every block's bitmap and
//      cards lazily (gc/block.hpp; minor ones keep them: generational, sticky mark bits); the
//      budget restarts; the global roots are shaded; marking on (no goroutine is scanned here:
//      gc/concurrent_mark.hpp);
//   3. with the world running: the markers (gc/parallel_mark.hpp) claim the goroutines not yet
//      scanned through a walk of the registry and scan their roots (a goroutine about to run
//      scans itself first), scan the dirty cards (minor), scan the runtime's roots, trace, and
//      take what the deletion barrier and the scans-before-resume shaded, until no goroutine is
//      left unscanned and nothing is grey;
//   4. the termination stop: wait for root scans still finishing, drain what was shaded since
//      (usually a handful of objects), marking off, flush the shared caches and turn swept blocks
//      into unswept ones (allocation while marking was black, so the sweep keeps it); with
//      USGC_VERIFY also sweep and verify here, so a verifier sees the swept heap;
//   5. restart the world, take a P back, then sweep the shared blocks (allocators that need a block
//   sweep one
//      themselves meanwhile: gc/shared_heap.hpp).
// USGC_GC_CONCURRENT=0 runs steps 2-4 inside one stop (the design before; for comparison).
// The collector keeps its P through each stop when the machine has a CPU for every runnable
// thread, as Go's stop-the-world initiator does (safepoint::requester_may_keep_slot, asked before
// each stop; stop_the_world's keep_slot): it acknowledges its own slot and spins on its own CPU
// for the last Ps, so no OS wake-up lies between "world stopped" and its work; it gives the P up
// only for the concurrent mark (after the start stop) and takes one back before the termination
// stop (the wait for a P that came after the end before; the sweep then runs on that P as
// before). Otherwise (a loaded machine, or USGC_SAFEPOINT_WAIT=sleep) it gives its P up before
// the start stop and takes one back after the termination stop, as before.
// The pause is the stopped world of steps 2 and 4, summed: from the moment the last P
// acknowledged each stop to the moment the world resumed (the resume store). Time to safepoint
// is reported apart, and the collector's P hand-off before the request and its wait for a P
// are neither (trace: handoff, rejoin). Sweeping and the private heaps' dead shared objects (each
// owner frees those at its next private collection) stay out of it.
// Minor or full: choose_kind below (full when asked for, when the old generation grew by
// USGC_GC_PERCENT since the last full one, or after 8 minors; USGC_GC_GENERATIONAL=0: always full).
// A goroutine that finds a collection in progress waits for it as a native call, so the
// collector's stop-the-world never waits for a goroutine that waits for the collector; while a
// mark runs, allocation does not start another collection (the budget counts towards the next).
// Waiting is for a collection to complete, not for the lock (Go's runtime.GC waits for a cycle
// the same way): a waiter sleeps on g_collection.collection_turn and returns as soon as a
// collection that satisfies it has completed (a pacer trigger: any one since the cycle it observed;
// an explicit request: one that began after the call, full if it asked for full), and takes the
// lock only if none has. Waiting on the lock itself let a goroutine that collects in a loop re-take
// it before a woken waiter ran, for seconds on end: the waiters' goroutines made no progress.
#include <atomic>

#include "gc/allocation.hpp"
#include "gc/concurrent_mark.hpp"
#include "gc/gc_state.hpp"
#include "gc/heap_validate.hpp"
#include "gc/parallel_mark.hpp"
#include "gc/shared_heap.hpp"
#include "gc/shared_pause_probe.hpp"
#include "gc/trace.hpp"
#include "gc/verifier.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "safepoint/stop_the_world.hpp"
#include "usgc/usgc.h"

namespace usgc::gc {
namespace {

// The shared collections: one at a time, under collection_lock.
struct Collection {
  kernel::FutexMutex<kernel::LockRank::kGcCollection> collection_lock;
  // Completed shared collections: written under the lock (release store once a mark ends),
  // read (acquire) by shared_cycle and by waiters.
  std::atomic<uint64_t> cycle{0};
  // The cycle number of the last full collection; written under the lock before cycle's release
  // store, read after an acquire load of cycle or swept_cycle.
  std::atomic<uint64_t> last_full_cycle{0};
  // The last cycle whose sweep finished too (what an explicit request waits for: its caller may
  // read the statistics next); release store under the lock, acquire load by waiters.
  std::atomic<uint64_t> swept_cycle{0};
  // Bumped at every release of collection_lock; waiters sleep on it (futex word). Seq_cst with
  // collection_waiters: the releaser bumps then reads the waiter count, a waiter counts itself
  // then reads the turn, so one of them sees the other (no lost wake-up).
  std::atomic<uint32_t> collection_turn{0};
  std::atomic<uint32_t> collection_waiters{0};
  // Generational policy, under collection_lock.
  bool had_full_collection = false;
  uint32_t minors_since_full = 0;
  size_t live_bytes_after_full = 0;
};
constinit Collection g_collection;
constexpr uint32_t kMaxMinorsBetweenFulls = 8;  // bounds how long dead old objects linger

// Minor unless generations are off, the caller asked for everything, the old generation grew by
// USGC_GC_PERCENT since the last full collection, or enough minors ran (old objects that died
// are only found by a full one).
MarkKind choose_kind(bool full_requested, bool minor_requested) {
  if (full_requested || !g_config.generational || !g_collection.had_full_collection ||
      g_config.gc_percent < 0)
    return MarkKind::kFull;
  if (minor_requested) return MarkKind::kMinor;
  if (g_collection.minors_since_full >= kMaxMinorsBetweenFulls) return MarkKind::kFull;
  size_t grown_limit =
      g_collection.live_bytes_after_full +
      g_collection.live_bytes_after_full / 100 * static_cast<size_t>(g_config.gc_percent);
  if (shared_heap_live_bytes() >= grown_limit &&
      shared_heap_live_bytes() > g_config.min_shared_budget_bytes)
    return MarkKind::kFull;
  return MarkKind::kMinor;
}

// A full mark starts from clear bitmaps and cards: a new mark epoch makes every block stale, and
// each block is cleared when its first bit of the epoch is set (gc/block.hpp, "Lazy clearing by
// mark epoch"), by a marker or a publisher with the world running. O(1) in the stop.
void start_new_mark_epoch_stopped() {
  uint32_t epoch = g_shared_mark_epoch.load(std::memory_order_relaxed) + 2;
  g_shared_mark_epoch.store(epoch, std::memory_order_relaxed);
}

// The registered mutators as an array (the registry lock is held by the caller).
Mutator** snapshot_mutators(size_t* count) {
  size_t n = registered_mutator_count();
  auto** array = static_cast<Mutator**>(usgc_malloc((n + 1) * sizeof(Mutator*)));
  USGC_CHECK(array != nullptr, "gc: out of memory listing %zu goroutines for a shared collection",
             n);
  size_t i = 0;
  for (Mutator* m = first_registered_mutator(); m != nullptr; m = m->registry_next) array[i++] = m;
  *count = i;
  return array;
}

void unlock_collection() {
  g_collection.collection_lock.unlock();
  // Seq_cst (turn, then waiters): pairs with lock_collection_or_wait's seq_cst increment of
  // collection_waiters and load of the turn (no lost wake-up, see Collection).
  g_collection.collection_turn.fetch_add(1, std::memory_order_seq_cst);
  if (g_collection.collection_waiters.load(std::memory_order_seq_cst) != 0)
    kernel::futex_wake_all(&g_collection.collection_turn);
}

// Has a collection completed that this request can count as its own? entry_cycle:
// g_collection.cycle when the request was made. A pacer trigger (observed_cycle) is met by any
// collection since; an explicit one by a collection that began after the request (the one running
// at entry_cycle may have begun before it, so entry_cycle + 2) and whose sweep is done, full if
// full was asked for.
bool request_met(uint64_t observed_cycle, uint64_t entry_cycle, bool full_requested) {
  // Acquire (cycle, swept_cycle): pair with collect_shared's release stores: the collection's
  // effects and last_full_cycle are seen.
  if (observed_cycle != kAlwaysCollect)
    return g_collection.cycle.load(std::memory_order_acquire) != observed_cycle;
  if (g_collection.swept_cycle.load(std::memory_order_acquire) < entry_cycle + 2) return false;
  return !full_requested ||
         g_collection.last_full_cycle.load(std::memory_order_relaxed) >= entry_cycle + 2;
}

// The collection lock, or nothing if a collection that meets the request completed first. True:
// the caller holds the lock.
bool lock_collection_or_wait(uint64_t observed_cycle, uint64_t entry_cycle, bool full_requested) {
  if (g_collection.collection_lock.try_lock()) return true;
  // Seq_cst (waiters, then turn): pairs with unlock_collection's seq_cst bump and load.
  g_collection.collection_waiters.fetch_add(1, std::memory_order_seq_cst);
  bool locked = false;
  for (;;) {
    uint32_t turn = g_collection.collection_turn.load(std::memory_order_seq_cst);
    if (request_met(observed_cycle, entry_cycle, full_requested)) break;
    if (g_collection.collection_lock.try_lock()) {
      locked = true;
      break;
    }
    kernel::futex_wait(&g_collection.collection_turn, turn);
  }
  g_collection.collection_waiters.fetch_sub(1, std::memory_order_relaxed);
  return locked;
}

}  // namespace

uint64_t shared_cycle() {
  // Acquire: pairs with collect_shared's release store of the cycle.
  return g_collection.cycle.load(std::memory_order_acquire);
}

void collect_shared(const char* reason, uint64_t observed_cycle, bool full_requested,
                    bool minor_requested) {
  Mutator* self = current_mutator();
  // Acquire: pairs with the release store of the cycle below (by an earlier collection).
  const uint64_t entry_cycle = g_collection.cycle.load(std::memory_order_acquire);
  if (!g_collection.collection_lock.try_lock()) {
    // Wait as a native call: the collector may be stopping the world right now.
    if (self != nullptr) g_hooks.enter_native();
    bool locked = lock_collection_or_wait(observed_cycle, entry_cycle, full_requested);
    if (self != nullptr) g_hooks.leave_native();
    if (!locked) return;  // a collection that meets the request completed meanwhile
  }
  if (observed_cycle != kAlwaysCollect &&
      g_collection.cycle.load(std::memory_order_relaxed) != observed_cycle) {
    unlock_collection();  // someone collected while we waited: that is the collection asked for
    return;
  }
  size_t before_bytes = shared_heap_live_bytes() + shared_heap_bytes_since_collection();
  // 1. No unswept block may meet the mark.
  shared_heap_sweep_all();

  // The collector runs as a native call while it marks: it holds no P then (the goroutines keep
  // every P), and the stops never wait for it. It keeps its P through a stop when the safepoint
  // layer says it pays (requester_may_keep_slot: USGC_SAFEPOINT_WAIT=spin and a CPU free for
  // every runnable thread, asked before each stop); otherwise it is native from the stop's
  // request on, its P held back from other machines until the start stop's resume (a machine
  // woken for it would only stop at once, competing for the CPUs the stop needs:
  // runtime/native.cpp, "Native for a stop"), then handed on for the mark.
  uint64_t request_ns = kernel::monotonic_ns();
  const bool keep_p = self != nullptr && safepoint::current_slot() != nullptr &&
                      safepoint::requester_may_keep_slot();
  if (self != nullptr && !keep_p) {
    if (g_hooks.enter_native_for_stop != nullptr)
      g_hooks.enter_native_for_stop();
    else
      g_hooks.enter_native();
  }

  // 2. The start stop. world_stopped_ns: the last P's acknowledgement (safepoint's clock).
  // The probes time each stop's pause stretch by stretch (gc/shared_pause_probe.hpp).
  const bool probe_usage = g_config.pause_trace_ns != 0;
  StopProbe start_probe, end_probe;
  stop_probe_open(start_probe, probe_usage);
  usgc_stop_info start_info{};
  uint64_t start_stopped_ns = 0;
  int stop_error = safepoint::stop_the_world(&start_info, &start_stopped_ns, keep_p);
  USGC_CHECK(stop_error == 0, "gc: shared collection could not stop the world (error %d)",
             stop_error);
  start_probe.stopped_ns = start_stopped_ns;
  stop_probe_stretch(start_probe, "wake");
  MarkKind kind = choose_kind(full_requested, minor_requested);
  lock_mutator_registry();
  stop_probe_stretch(start_probe, "registry");
  if (kind == MarkKind::kFull)
    start_new_mark_epoch_stopped();  // a minor keeps the old marks (and reads the cards)
  shared_heap_restart_budget();
  begin_concurrent_mark_stopped();
  size_t mutator_count = registered_mutator_count();
  unlock_mutator_registry();  // the markers' registry walk takes it
  stop_probe_stretch(start_probe, "begin-mark");
  // USGC_GC_CONCURRENT=0: everything below happens in this one stop (the design before).
  const bool concurrent = g_config.concurrent_mark;
  uint64_t start_resumed_ns = 0;
  uint64_t start_resume_begin_ns = 0;  // the collector's work in the stop ends here
  int start_error = 0;
  if (concurrent) {
    start_resume_begin_ns = kernel::monotonic_ns();
    start_error = safepoint::start_the_world(&start_resumed_ns);
    USGC_CHECK(start_error == 0, "gc: shared collection could not restart the world (error %d)",
               start_error);
    start_probe.resumed_ns = start_resumed_ns;
    stop_probe_close(start_probe);
    if (keep_p) {
      // Like a goroutine that acknowledged the stop (resumed_from_stop): scanned before it runs
      // on, then native for the mark.
      ensure_scanned(*self);
      g_hooks.enter_native();
    } else if (self != nullptr && g_hooks.hand_off_held_processor != nullptr) {
      g_hooks.hand_off_held_processor();  // the P held back for the stop goes to the goroutines
    }
  }

  // 3. Concurrent marking, until no goroutine is left unscanned and nothing is grey.
  uint64_t mark_begin_ns = kernel::monotonic_ns();
  MarkResult marked{};
  bool scan_cards = true;
  do {
    // Tests only: a gate may hold the markers before a round (the world runs meanwhile).
    while (g_config.verify && g_concurrent_mark_test_gate != nullptr &&
           g_concurrent_mark_test_gate()) {
    }
    MarkResult round = mark_shared_heap(mark_some_roots, kind, scan_cards);
    scan_cards = false;
    marked.objects_marked += round.objects_marked;
    marked.markers = round.markers;
  } while (concurrent_roots_pending());
  uint64_t mark_end_ns = kernel::monotonic_ns();
  if (!concurrent) stop_probe_stretch(start_probe, "mark");  // inside the one stop

  // 4. The termination stop: what mutators shaded since, then marking off and the sweep's set-up.
  // Keeping its P, the collector takes one back first (it may wait for one: the rejoin; what
  // mutators shade meanwhile is drained in the stop).
  const bool keep_p_end = concurrent && self != nullptr && safepoint::requester_may_keep_slot();
  uint64_t rejoin_begin_ns = kernel::monotonic_ns();
  if (keep_p_end) g_hooks.leave_native();
  uint64_t rejoin_end_ns = kernel::monotonic_ns();
  usgc_stop_info end_info{};
  uint64_t end_stopped_ns = 0;
  // USGC_GC_CONCURRENT=0: one stop, whose stretches go on in the start probe.
  StopProbe& last_probe = concurrent ? end_probe : start_probe;
  const bool keep_slot_end = keep_p_end && safepoint::current_slot() != nullptr;
  if (concurrent) {
    stop_probe_open(end_probe, probe_usage);
    stop_error = safepoint::stop_the_world(&end_info, &end_stopped_ns, keep_slot_end);
    USGC_CHECK(stop_error == 0, "gc: shared collection could not stop the world (error %d)",
               stop_error);
    end_probe.stopped_ns = end_stopped_ns;
    stop_probe_stretch(end_probe, "wake");
  }
  lock_mutator_registry();
  stop_probe_stretch(last_probe, "registry");
  wait_for_root_scans_stopped();
  stop_probe_stretch(last_probe, "root-scans");
  // Usually a handful of objects: marker 0 alone, without waking the helpers (their wake-up
  // latency would be pause); a large remainder (or the whole mark, USGC_GC_CONCURRENT=0) in
  // parallel. Every marker is woken even when fewer CPUs are free: a helper the kernel does not
  // run never joins and costs nothing, and one that runs adds its share of a loaded machine's
  // CPUs (measured: docs/gc.md, "Parallel marking").
  constexpr size_t kSoloGreyObjects = 4096;
  const bool drain_solo = concurrent && grey_queue_size() < kSoloGreyObjects;
  MarkResult last = mark_shared_heap(mark_grey_queue, kind, false, drain_solo ? 1 : kAllMarkers);
  marked.objects_marked += last.objects_marked;
  stop_probe_stretch(last_probe, "drain");
  marked.objects_marked += end_concurrent_mark_stopped();
  stop_probe_stretch(last_probe, "end-mark");
  shared_heap_prepare_for_mark();
  stop_probe_stretch(last_probe, "prepare");
  size_t live_bytes = 0;
  bool swept_in_pause = g_config.verify || validation_requested();  // gc/heap_validate.hpp
  if (swept_in_pause) {
    live_bytes = shared_heap_sweep_all();
    size_t count = 0;
    Mutator** mutators = snapshot_mutators(&count);
    record_validation(verify_shared_heap(mutators, count));
    usgc_free(mutators);
    stop_probe_stretch(last_probe, "sweep-verify");
  }
  unlock_mutator_registry();
  uint64_t cycle = g_collection.cycle.load(std::memory_order_relaxed) + 1;
  if (kind == MarkKind::kFull) g_collection.last_full_cycle.store(cycle, std::memory_order_relaxed);
  // Release: a waiter that sees the new cycle sees the collection's effects (and the full mark).
  g_collection.cycle.store(cycle, std::memory_order_release);
  uint64_t end_resumed_ns = 0;
  const uint64_t end_resume_begin_ns = kernel::monotonic_ns();
  start_error = safepoint::start_the_world(&end_resumed_ns);
  USGC_CHECK(start_error == 0, "gc: shared collection could not restart the world (error %d)",
             start_error);
  last_probe.resumed_ns = end_resumed_ns;
  stop_probe_close(last_probe);

  // 5. Sweep with the world running, holding a P again (as a goroutine's own work: it does
  // not poll, so a stop requested meanwhile waits for the sweep, as for any goroutine).
  if (self != nullptr && !keep_p_end) {  // leave_native does nothing when we hold a P
    rejoin_begin_ns = kernel::monotonic_ns();
    g_hooks.leave_native();
    rejoin_end_ns = kernel::monotonic_ns();
  }
  uint64_t sweep_begin_ns = kernel::monotonic_ns();
  if (!swept_in_pause) live_bytes = shared_heap_sweep_all();
  shared_heap_set_live_bytes(live_bytes);
  if (kind == MarkKind::kFull) {
    g_collection.had_full_collection = true;
    g_collection.minors_since_full = 0;
    g_collection.live_bytes_after_full = live_bytes;
  } else {
    ++g_collection.minors_since_full;
  }
  uint64_t swept_ns = kernel::monotonic_ns();
  g_collection.swept_cycle.store(cycle, std::memory_order_release);  // pairs with request_met
  unlock_collection();

  // The pause is the stopped world only: from the last acknowledgement to the resume, twice
  // (the start and the termination stop), summed. Time to safepoint is reported apart.
  if (!concurrent) {  // one stop: it began at the start and ended at the end
    start_resumed_ns = end_stopped_ns = start_stopped_ns;
  }
  uint64_t start_pause_ns =
      start_resumed_ns > start_stopped_ns ? start_resumed_ns - start_stopped_ns : 0;
  uint64_t end_pause_ns = end_resumed_ns > end_stopped_ns ? end_resumed_ns - end_stopped_ns : 0;
  uint64_t pause_ns = start_pause_ns + end_pause_ns;
  uint64_t request_sent_ns = start_stopped_ns - start_info.time_to_safepoint_ns;
  g_counters.shared_collections.fetch_add(1, std::memory_order_relaxed);
  g_counters.last_shared_objects_marked.store(marked.objects_marked, std::memory_order_relaxed);
  if (kind == MarkKind::kMinor)
    g_counters.shared_minor_collections.fetch_add(1, std::memory_order_relaxed);
  record_pause(true, pause_ns);
  if (g_config.trace) {
    SharedTrace trace{};
    trace.number = cycle;
    trace.goroutine_id = self != nullptr ? self->goroutine_id : 0;
    trace.reason = reason;
    trace.minor = kind == MarkKind::kMinor;
    trace.before_bytes = before_bytes;
    trace.after_bytes = live_bytes;
    trace.pause_ns = pause_ns;
    trace.start_pause_ns = start_pause_ns;
    trace.end_pause_ns = end_pause_ns;
    trace.wake_ns = start_info.requester_wake_ns + end_info.requester_wake_ns;
    trace.resume_ns =
        (start_resumed_ns > start_resume_begin_ns && start_resume_begin_ns != 0
             ? start_resumed_ns - start_resume_begin_ns
             : 0) +
        (end_resumed_ns > end_resume_begin_ns ? end_resumed_ns - end_resume_begin_ns : 0);
    trace.time_to_safepoint_ns = start_info.time_to_safepoint_ns > end_info.time_to_safepoint_ns
                                     ? start_info.time_to_safepoint_ns
                                     : end_info.time_to_safepoint_ns;
    trace.handoff_ns = request_sent_ns > request_ns ? request_sent_ns - request_ns : 0;
    trace.mark_ns = mark_end_ns - mark_begin_ns;
    trace.rejoin_ns = rejoin_end_ns - rejoin_begin_ns;
    trace.sweep_ns = swept_ns - sweep_begin_ns;
    trace.objects_marked = marked.objects_marked;
    trace.markers = marked.markers;
    trace.goroutines = mutator_count;
    trace_shared_collection(trace);
  }
  if (g_config.pause_trace_ns != 0) {
    SharedStopTrace stop{};
    stop.number = cycle;
    for (const StopProbe* probe : {&start_probe, &end_probe}) {
      if (probe == &end_probe && !concurrent) break;
      if (stop_probe_pause_ns(*probe) < g_config.pause_trace_ns) continue;
      stop.which = probe == &start_probe ? "start" : "end";
      stop.kept_p = probe == &start_probe ? keep_p : keep_slot_end;  // asked to keep it
      stop.probe = probe;
      stop.drained = probe == &last_probe;
      stop.drained_objects = last.objects_marked;
      stop.drain_markers = last.markers;
      trace_shared_stop(stop);
    }
  }
}

bool collect_for_heap_limit(Mutator& m) {
  if (!m.collecting) collect_private(m, "heap limit", /*full_requested=*/true);
  collect_shared("heap limit", shared_cycle(), /*full_requested=*/true);
  return true;
}

}  // namespace usgc::gc
