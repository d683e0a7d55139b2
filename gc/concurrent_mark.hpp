// gc/concurrent_mark.hpp — what lets shared marking run while goroutines run: the marking phase
// flag, the deletion barrier's shade, the grey queue, and goroutine root scans outside the stop.
//
// The barrier is Yuasa's deletion barrier (snapshot at the beginning), on the write barrier's
// existing slow path: while marking, a store into a shared or global object first shades the
// value it overwrites (marks it and queues it grey). Why deletion and not Dijkstra insertion:
// the fast path lets a goroutine store any value into its own young private objects without a
// check, so insertions into private heaps are invisible; deletions from the shared heap all go
// through the slow path. With every goroutine's roots and private contribution (its nursery and
// remembered sets, gc/private_generations.hpp) scanned before it runs again ("black" goroutines,
// as Go scans a goroutine's stack before it resumes), an object reachable when marking began
// stays reachable from something grey, or was shaded when the last such path was cut: a black
// goroutine can only hold what it read from a scanned root or from the heap after its scan, and
// cutting a heap path to it shades it. Objects allocated or published while marking are marked
// at once (allocate black).
//
// Goroutine root scans. A cycle has an epoch; each Mutator's root_scan_state says whether its
// roots were scanned in this epoch (2 * epoch), are being scanned (2 * epoch + 1), or not yet.
//   - the start stop scans none (without a scheduler, GcHooks::resume_scans_goroutines false:
//     all of them); goroutines registered while marking are born scanned;
//   - every goroutine, parked or not: markers walk the registry (a cursor under the registry
//     lock, moved on by mutator_unregister) and claim each unscanned one with a CAS;
//   - a goroutine about to run (gc::set_current_mutator) that is still unscanned is scanned
//     there first, on the switching thread; if a marker is scanning it, the switch waits;
//   - a goroutine that resumes without a switch — its thread acknowledged the start stop at a
//     safepoint (SafepointHooks::resumed_from_stop), or comes back from native code or a
//     blocked call — goes through ensure_scanned the same way before it runs on. So the
//     goroutines the machines ran at the stop are scanned in parallel, each by its own thread
//     or a marker, with the world running (Go scans a running goroutine's stack at its own
//     safepoint, not in the stop); none runs unscanned, which is all the snapshot needs.
// A claimed goroutine cannot run, so it cannot exit: the scan never meets a freed Mutator.
// Termination: once the walk is done and the grey queue empty, the collector stops the world,
// waits for scans in progress (a thread without a P may be finishing one), drains what was shaded
// since, and turns marking off. Private collections meanwhile free no shared object (marks are
// incomplete until the end): shared_mark_in_progress() is read at every such decision, and it
// changes only in a stopped world, which a private collection meets only at its polls.
//
// The barrier's no-safepoint invariant (docs/gc.md, "A stop inside the barrier"): the snapshot
// assumes a mark starts or ends only where a goroutine can stop, so nothing that can reach a
// safepoint lies between the shade and the store it protects, or between a published object's
// mark bit and its header flip: no poll, no blocking call, no call through a PLT stub (the
// library is built with -fno-plt; an asynchronous safepoint may stop a thread on a stub, which
// is not usgc's code). Publication, which may call into libc, comes before the shade.
//
// Hot paths: the private allocation and the same-goroutine barrier are untouched. The switch to
// a goroutine tests one flag; the barrier's slow path tests it before a shared store.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gc/mutator.hpp"
#include "gc/parallel_mark.hpp"

namespace usgc::gc {

// Written only while the world is stopped (start and termination of a shared mark); read
// relaxed anywhere: the stop and the resume order the write before any goroutine runs again.
extern std::atomic<bool> g_shared_marking;
inline bool shared_mark_in_progress() {
  return g_shared_marking.load(std::memory_order_relaxed);
}

// The deletion barrier: marks `value` (a shared or global object not yet marked) and queues it.
[[gnu::cold, gnu::noinline]] void shade_slow(void* value);
inline void shade_if_marking(void* value) {
  if (__builtin_expect(shared_mark_in_progress(), 0)) shade_slow(value);
}

// Goroutine root scans (see above). ensure_scanned: the hook of gc::set_current_mutator.
[[gnu::cold, gnu::noinline]] void ensure_scanned_slow(Mutator& m);
uint32_t current_scan_done_state();
inline void ensure_scanned(Mutator& m) {
  // Acquire: pairs with finish_scan's release store (the scan is complete before the goroutine
  // runs).
  if (__builtin_expect(shared_mark_in_progress(), 0) &&
      m.root_scan_state.load(std::memory_order_acquire) != current_scan_done_state())
    ensure_scanned_slow(m);
}
// USGC_VERIFY, from the barrier's slow path while marking: m, which is running, was scanned (no
// goroutine runs unscanned during a mark: a resume path without ensure_scanned would break the
// snapshot). Aborts with the goroutine's id otherwise.
void check_running_mutator_scanned(const Mutator& m);
// Registry hooks, called under the registry lock.
void note_mutator_registered_locked(Mutator& m);
void note_mutator_unregistered_locked(Mutator& m);

// Tests only (consulted when USGC_VERIFY is on; set while no collection runs): asked by the
// collector before each concurrent round, again and again while it returns true (it yields or
// sleeps itself): the markers wait and the world runs, so a test can make goroutines act inside
// a mark before anything is traced.
extern bool (*g_concurrent_mark_test_gate)();

// The collector's side (gc/shared_collector.cpp). World stopped, registry lock held: a new epoch,
// the global roots shaded (every goroutine scanned only without a runtime: see above), the
// registry walk reset, marking on.
void begin_concurrent_mark_stopped();
// The markers' root source for the concurrent phase: claims and scans unscanned goroutines,
// then the runtime's roots (once), then takes the grey queue. False when nothing is left.
bool mark_some_roots(RootVisitor& visitor);
// Only the grey queue (the termination stop).
bool mark_grey_queue(RootVisitor& visitor);
bool concurrent_roots_pending();
// Objects in the grey queue now (a hint).
size_t grey_queue_size();
// World stopped: waits for root scans still under way, so the grey queue holds all they shaded.
void wait_for_root_scans_stopped();
// World stopped, grey queue drained: marking off. Returns the objects mutators shaded.
size_t end_concurrent_mark_stopped();

}  // namespace usgc::gc
