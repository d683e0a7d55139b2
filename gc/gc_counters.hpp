// gc/gc_counters.hpp — the collector's statistics counters, declared once as a list from which
// the counters themselves, their snapshot, usgc_gc_get_stats and the statistics block's GC
// fields are generated.
//
// A counter is added in one place: a row of USGC_GC_EXPORTED_COUNTERS (and the field of the same
// name in usgc_gc_stats, include/usgc/gc.h, appended: the struct is an ABI) or of
// USGC_GC_INTERNAL_COUNTERS (tests and the stats block only). A row names
//   name      the GcCounters member, and for an exported row the usgc_gc_stats field;
//   elements  1 (a scalar std::atomic) or the length of the array;
//   reading   kPlain, or kAtLeastZero for a level that different paths add to and subtract from
//             at different times, so that it may dip below zero for a moment (read as 0 then);
//   storage   kOneWord (one std::atomic) or kStriped (gc/striped_counter.hpp: a line per thread,
//             summed when read) for a counter that every run refill writes: one process-wide
//             line written by every P's refills was a cross-core transfer per refill;
//   block     where the statistics block (usgc/stats_block.h) publishes it: `block.<field>`, or
//             `nowhere`.
// The static_assert below checks that the exported rows and usgc_gc_stats's four other fields
// make up the whole public struct, so a public field cannot be left unfilled.
//
// Concurrency: every counter is a relaxed atomic (a kStriped one a relaxed atomic per stripe),
// written on slow paths (run refills, collections, barrier slow paths) by any thread, read by
// usgc_gc_get_stats and the statistics publisher; no reader needs two counters to agree with each
// other.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "gc/striped_counter.hpp"
#include "usgc/gc.h"
#include "usgc/stats_block.h"

// X(name, elements, reading, storage, block)
#define USGC_GC_EXPORTED_COUNTERS(X)                                                            \
  X(bytes_in_use, 4, kAtLeastZero, kStriped, block.gc_bytes_in_use)                             \
  X(objects_allocated, 4, kPlain, kStriped, nowhere)                                            \
  X(private_collections, 1, kPlain, kOneWord, block.collections[USGC_STATS_GC_PRIVATE])         \
  X(shared_collections, 1, kPlain, kOneWord, block.collections[USGC_STATS_GC_SHARED])           \
  X(private_pause_total_ns, 1, kPlain, kOneWord, nowhere)                                       \
  X(private_pause_max_ns, 1, kPlain, kOneWord, block.private_max_pause_ns)                      \
  X(shared_pause_total_ns, 1, kPlain, kOneWord, nowhere)                                        \
  X(shared_pause_max_ns, 1, kPlain, kOneWord, block.max_pause_ns)                               \
  X(private_pause_histogram, USGC_GC_HISTOGRAM_BUCKETS, kPlain, kOneWord,                       \
    block.private_pause_histogram)                                                              \
  X(shared_pause_histogram, USGC_GC_HISTOGRAM_BUCKETS, kPlain, kOneWord, block.pause_histogram) \
  X(barrier_slow_paths, 1, kPlain, kOneWord, block.barrier_slow_paths)                          \
  X(publications, 1, kPlain, kOneWord, block.publications)                                      \
  X(objects_published, 1, kPlain, kOneWord, block.objects_published)                            \
  X(bytes_freed_private, 1, kPlain, kOneWord, nowhere)                                          \
  X(bytes_freed_shared, 1, kPlain, kOneWord, nowhere)                                           \
  X(heap_limit_failures, 1, kPlain, kOneWord, nowhere)                                          \
  X(last_pause_ns, 1, kPlain, kOneWord, block.last_pause_ns)                                    \
  X(shared_minor_collections, 1, kPlain, kOneWord, block.collections[USGC_STATS_GC_SHARED_MINOR])

#define USGC_GC_INTERNAL_COUNTERS(X)                                                      \
  X(explicit_collections, 1, kPlain, kOneWord, block.collections[USGC_STATS_GC_EXPLICIT]) \
  /* of private_collections, the minor ones */                                            \
  X(private_minor_collections, 1, kPlain, kOneWord, nowhere)                              \
  /* objects the last collection of each kind marked (tests): written by collectors */    \
  X(last_private_objects_marked, 1, kPlain, kOneWord, nowhere)                            \
  X(last_shared_objects_marked, 1, kPlain, kOneWord, nowhere)                             \
  /* old-generation objects marked by private marking: one-pause full collections and */  \
  /* the incremental cycles' traces (black promotions not counted) */                     \
  X(private_old_objects_marked, 1, kPlain, kOneWord, nowhere)                             \
  /* slots whose headers private old-generation sweeps read (slot by slot) */             \
  X(private_sweep_slots_read, 1, kPlain, kOneWord, nowhere)                               \
  /* blocks with survivors a cycle swept from its mark bitmap, reading no slot */         \
  X(private_bitmap_swept_blocks, 1, kPlain, kOneWord, nowhere)                            \
  /* blocks a cycle's sweep freed whole (none marked or published), reading no slot */    \
  X(private_dead_blocks_freed, 1, kPlain, kOneWord, nowhere)                              \
  /* nursery slots minor collections read (runs in blocks holding a published object) */  \
  X(private_nursery_slots_read, 1, kPlain, kOneWord, nowhere)                             \
  /* nursery slots minor collections swept from the bitmap, reading none */               \
  X(private_nursery_slots_bitmap_swept, 1, kPlain, kOneWord, nowhere)                     \
  /* steps of old-generation cycles goroutines did before parking (channels, select, */   \
  /* sleep: old_cycle_step_before_parking) */                                             \
  X(private_idle_steps, 1, kPlain, kOneWord, nowhere)

#define USGC_GC_COUNTERS(X) USGC_GC_EXPORTED_COUNTERS(X) USGC_GC_INTERNAL_COUNTERS(X)

namespace usgc::gc {

// One counter: a scalar, or an array of `elements`.
template <size_t elements, typename Value>
using CounterOf = std::conditional_t<elements == 1, Value, Value[elements]>;

enum CounterReading { kPlain, kAtLeastZero };
enum CounterStorage { kOneWord, kStriped };

template <CounterStorage storage>
using CounterWord = std::conditional_t<storage == kStriped, StripedCounter, std::atomic<uint64_t>>;

struct GcCounters {
#define USGC_GC_DECLARE_COUNTER(name, elements, reading, storage, block) \
  CounterOf<elements, CounterWord<storage>> name;
  USGC_GC_COUNTERS(USGC_GC_DECLARE_COUNTER)
#undef USGC_GC_DECLARE_COUNTER
};

// The counters' values at one moment (each read on its own, relaxed).
struct GcCounterValues {
#define USGC_GC_DECLARE_VALUE(name, elements, reading, storage, block) \
  CounterOf<elements, uint64_t> name;
  USGC_GC_COUNTERS(USGC_GC_DECLARE_VALUE)
#undef USGC_GC_DECLARE_VALUE
};

// Copies one counter (scalar or array) to a destination of the same shape; arrays copy the
// elements both have. The `nowhere` destination takes anything and keeps nothing.
struct Nowhere {};
inline void copy_counter(uint64_t value, uint64_t& destination) {
  destination = value;
}
template <size_t from_elements, size_t to_elements>
void copy_counter(const uint64_t (&values)[from_elements], uint64_t (&destination)[to_elements]) {
  for (size_t i = 0; i < from_elements && i < to_elements; ++i) destination[i] = values[i];
}
template <typename Value>
void copy_counter(const Value&, Nowhere) {}

template <typename Word>  // std::atomic<uint64_t> or StripedCounter
uint64_t read_counter(const Word& counter, CounterReading reading) {
  uint64_t value = counter.load(std::memory_order_relaxed);
  if (reading == kAtLeastZero && static_cast<int64_t>(value) < 0) return 0;
  return value;
}
template <typename Word, size_t elements>
void read_counter_into(const Word (&counters)[elements], uint64_t (&values)[elements],
                       CounterReading reading) {
  for (size_t i = 0; i < elements; ++i) values[i] = read_counter(counters[i], reading);
}
template <typename Word>
void read_counter_into(const Word& counter, uint64_t& value, CounterReading reading) {
  value = read_counter(counter, reading);
}

inline GcCounterValues read_counters(const GcCounters& counters) {
  GcCounterValues values;
#define USGC_GC_READ_COUNTER(name, elements, reading, storage, block) \
  read_counter_into(counters.name, values.name, reading);
  USGC_GC_COUNTERS(USGC_GC_READ_COUNTER)
#undef USGC_GC_READ_COUNTER
  return values;
}

// Fills usgc_gc_stats's counter fields (all but version, reserved, bytes_committed and
// heap_limit_bytes).
inline void export_counters(const GcCounterValues& values, usgc_gc_stats& stats) {
#define USGC_GC_EXPORT_COUNTER(name, elements, reading, storage, block) \
  copy_counter(values.name, stats.name);
  USGC_GC_EXPORTED_COUNTERS(USGC_GC_EXPORT_COUNTER)
#undef USGC_GC_EXPORT_COUNTER
}

// Fills the statistics block's fields of the `block` column (and nothing else).
inline void publish_counters(const GcCounterValues& values, usgc_stats_block& block) {
  struct {
    usgc_stats_block& block;
    Nowhere nowhere;
  } to{block, {}};
#define USGC_GC_PUBLISH_COUNTER(name, elements, reading, storage, destination) \
  copy_counter(values.name, to.destination);
  USGC_GC_COUNTERS(USGC_GC_PUBLISH_COUNTER)
#undef USGC_GC_PUBLISH_COUNTER
}

// usgc_gc_stats's fields are the exported counters plus these four.
#define USGC_GC_ADD_PUBLIC_BYTES(name, elements, reading, storage, block) \
  +(sizeof(usgc_gc_stats::name) == (elements) * sizeof(uint64_t) ? sizeof(usgc_gc_stats::name) : 0)
static_assert(sizeof(usgc_gc_stats::version) + sizeof(usgc_gc_stats::reserved) +
                      sizeof(usgc_gc_stats::bytes_committed) +
                      sizeof(usgc_gc_stats::heap_limit_bytes)
                          USGC_GC_EXPORTED_COUNTERS(USGC_GC_ADD_PUBLIC_BYTES) ==
                  sizeof(usgc_gc_stats),
              "every field of usgc_gc_stats is a row of USGC_GC_EXPORTED_COUNTERS of its size, "
              "or one of version, reserved, bytes_committed, heap_limit_bytes");
#undef USGC_GC_ADD_PUBLIC_BYTES

}  // namespace usgc::gc
