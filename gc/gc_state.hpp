// gc/gc_state.hpp — the collector's configuration, statistics, hooks into the runtime, and the
// per-thread error message of the C API.
//
// Configuration is written once by gc_initialize (usgc_init) before any goroutine runs and read
// without synchronization after. Statistics are relaxed atomic counters written on slow paths
// (run refills, collections, barrier slow paths), read by usgc_gc_get_stats and the stats block.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gc/gc_counters.hpp"
#include "usgc/gc.h"
#include "usgc/stats_block.h"

namespace usgc::gc {

struct GcConfig {
  int gc_percent = 100;  // USGC_GC_PERCENT; < 0: automatic collection off
  bool verify = false;   // USGC_VERIFY (always on in debug builds)
  bool trace = false;    // USGC_TRACE=gc
  // USGC_TRACE_PAUSE_US in ns (USGC_TRACE=gc alone: 1 ms; 0: off): a shared stop whose pause
  // lasts this long is printed stretch by stretch (gc/shared_pause_probe.hpp).
  uint64_t pause_trace_ns = 0;
  size_t min_private_budget_bytes = 1 << 20;
  size_t min_shared_budget_bytes = 4 << 20;
  uint32_t marker_count = 1;    // parallel markers in a shared collection (one per P)
  bool generational = true;     // USGC_GC_GENERATIONAL: minor private and shared collections (0:
                                // every collection full)
  bool concurrent_mark = true;  // USGC_GC_CONCURRENT (0: the whole shared mark in one stop)
  // USGC_GC_INCREMENTAL (1, the default: paced full private collections are incremental
  // old-generation cycles, gc/private_old_cycle.hpp, started and paced by gc/private_pacer.hpp;
  // 0: one pause that marks and sweeps the old generation).
  bool incremental_private = true;
};
extern GcConfig g_config;

struct Mutator;

// What the runtime (the layer above) lends the collector.
struct GcHooks {
  // A goroutine about to wait for another thread's collection counts as stopped meanwhile.
  void (*enter_native)();
  void (*leave_native)();
  // The collector about to request a stop without keeping its P: enter_native, the P held back
  // from other machines until hand_off_held_processor (after the start stop's resume) or
  // leave_native (runtime/native.cpp, "Native for a stop"). Null: enter_native, nothing held.
  void (*enter_native_for_stop)();
  void (*hand_off_held_processor)();
  // Visits extra roots of shared collections (reference channels): calls visit(slot, context)
  // for every slot holding a reference. Called in the stopped world.
  void (*visit_runtime_roots)(void (*visit)(void** slot, void* context), void* context);
  // True when every thread that resumes a goroutine without switching to it (from a stop it
  // acknowledged at a safepoint, or back from native) first calls gc::ensure_scanned on it, as a
  // switch does (gc::set_current_mutator): then no goroutine is scanned inside the start stop of
  // a concurrent mark (gc/concurrent_mark.hpp). False (the GC without a scheduler): the start stop
  // scans every registered goroutine.
  bool resume_scans_goroutines;
};
extern GcHooks g_hooks;

// Reads the environment (see usgc/gc.h) and starts the marker threads: called by usgc_init with
// the number of Ps. gc_shutdown stops the threads (the heap and global roots stay).
int gc_initialize(uint32_t processor_count, const GcHooks& hooks);
void gc_shutdown();

extern GcCounters g_counters;

// A counter of g_counters: std::atomic<uint64_t> or StripedCounter (gc/gc_counters.hpp).
template <typename Word>
void count_add(Word& counter, uint64_t value) {
  counter.fetch_add(value, std::memory_order_relaxed);
}
template <typename Word>
void count_sub(Word& counter, uint64_t value) {
  counter.fetch_sub(value, std::memory_order_relaxed);
}
void record_pause(bool shared, uint64_t pause_ns);
// Fills the collector's fields of the live statistics block (usgc/stats_block.h).
void contribute_statistics(usgc_stats_block* block);

// The C API's error reporting: sets errno and the calling thread's usgc_last_error() text.
// Returns nullptr so allocation paths can `return fail(...)`.
void* fail(int error_number, const char* format, ...) __attribute__((format(printf, 2, 3)));
const char* last_error();
// A call refused in a fork() child of a running runtime (safepoint/fork_child.hpp):
// ENOTRECOVERABLE, usgc_last_error names `operation` and the reason. Returns nullptr, as fail does.
void* fail_in_fork_child(const char* operation);
// The same refusal for an entry that returns an error number: returns ENOTRECOVERABLE.
int error_in_fork_child(const char* operation);

}  // namespace usgc::gc
